'''polkitd mock that records every CheckAuthorization

The polkitd template of python3-dbusmock, plus a record of each check (action, details,
flags) that TakeChecks() returns and forgets, so that tests can assert the polkit details
zpcid sends. Allowed actions are set with SetAllowed() as with the original template.
'''

import dbus

from dbusmock import MOCK_IFACE
from dbusmock.templates import polkitd

BUS_NAME = polkitd.BUS_NAME
MAIN_OBJ = polkitd.MAIN_OBJ
MAIN_IFACE = polkitd.MAIN_IFACE
SYSTEM_BUS = True


def load(mock, parameters):
    polkitd.load(mock, parameters)
    mock.checks = []


@dbus.service.method(MAIN_IFACE,
                     in_signature='(sa{sv})sa{ss}us',
                     out_signature='(bba{ss})')
def CheckAuthorization(self, _subject, action_id, details, flags, _cancellation_id):
    self.checks.append((str(action_id),
                        dbus.Dictionary({str(k): str(v) for k, v in details.items()},
                                        signature='ss'),
                        dbus.UInt32(flags)))
    allowed = action_id in self.allowed or self.allow_unknown
    return (allowed, False, {'test': 'test'})


@dbus.service.method(MAIN_IFACE, in_signature='(sa{sv})ss')
def RegisterAuthenticationAgent(_self, _subject, _locale, _object_path):
    pass


@dbus.service.method(MOCK_IFACE, in_signature='b', out_signature='')
def AllowUnknown(self, default):
    self.allow_unknown = default


@dbus.service.method(MOCK_IFACE, in_signature='as', out_signature='')
def SetAllowed(self, actions):
    self.allowed = actions


@dbus.service.method(MOCK_IFACE, in_signature='', out_signature='a(sa{ss}u)')
def TakeChecks(self):
    checks, self.checks = self.checks, []
    return dbus.Array(checks, signature='(sa{ss}u)')
