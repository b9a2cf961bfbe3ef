#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Generate a zpcid host tree: an IBM Z host laid out as in docs/host-trees.md.

The tree is what zpcid would see below /: sysfs with zPCI functions, /proc, /dev, /boot,
/lib/modules and the fixture/ answers a tree cannot give itself. Output is a pure function
of the options, so a seed reproduces a tree byte for byte.

    mkhost.py OUTDIR --functions N [--machine 3931] [--hypervisor lpar|kvm|zvm]
              [--kernel 6.12.38+deb12-s390x] [--no-vfio] [--vfio-not-loaded]
              [--no-zdev-kvm] [--uid-checking on|off] [--se-host] [--standby K]
              [--pf-with-vfs K] [--vfs-per-pf V] [--seed S]

Run it without the simulated kernel preloaded for OUTDIR (ZPCID_SIMKERNEL_ROOT unset):
it writes driver_override files, which the shim would treat as kernel writes.
"""

import argparse
import os
import random
import re
import sys

# Machine types whose KVM refuses zPCI interpretation (kvm_s390_pci_interp_allowed()).
NO_INTERP_MACHINES = {0x2817, 0x2818, 0x2827, 0x2828, 0x2964, 0x2965}

# PCI identity per kind: pft, vendor, device, subsystem vendor/device, class, native driver.
KINDS = {
    'roce': (0x0a, 0x15b3, 0x1016, 0x15b3, 0x0062, 0x020000, 'mlx5_core'),
    'roce-pf': (0x0c, 0x15b3, 0x101d, 0x15b3, 0x0083, 0x020000, 'mlx5_core'),
    'roce-vf': (0x0c, 0x15b3, 0x101e, 0x15b3, 0x0083, 0x020000, 'mlx5_core'),
    'nvme': (0x0b, 0x144d, 0xa824, 0x1014, 0x0621, 0x010802, 'nvme'),
    'ism': (0x05, 0x1014, 0x04ed, 0x1014, 0x04ed, 0x088000, 'ism'),
    'virtio-net': (0x00, 0x1af4, 0x1041, 0x1af4, 0x1100, 0x020000, 'virtio-pci'),
    'virtio-blk': (0x00, 0x1af4, 0x1042, 0x1af4, 0x1100, 0x010000, 'virtio-pci'),
    # Unclassified function no Linux driver claims: probing it binds nothing.
    'unc': (0x00, 0x1014, 0x062b, 0x1014, 0x062b, 0xff0000, None),
}

PFGID = {'roce': 0x0a, 'roce-pf': 0x0c, 'roce-vf': 0x0c, 'nvme': 0x0b, 'ism': 0x05, 'unc': 0x01}

UTIL_TEXT = {
    'roce': 'ROCE EXPRESS2 25GBE',
    'roce-pf': 'NETWORK EXPRESS PF',
    'roce-vf': 'NETWORK EXPRESS VF',
    'nvme': 'NVME STORAGE 3.2TB',
    'ism': 'ISM',
    'virtio-net': '',
    'virtio-blk': '',
    'unc': 'UNCLASSIFIED',
}

# Module of each driver, for sys/module and the driver's module link.
DRIVER_MODULE = {
    'mlx5_core': 'mlx5_core',
    'nvme': 'nvme',
    'ism': 'ism',
    'virtio-pci': 'virtio_pci',
    'vfio-pci': 'vfio_pci',
}

# The first functions are fixed so that tests can rely on them; the seed shapes the rest.
# (kind, state, extra): state is 'native', 'unbound' or 'vfio'.
HEAD = [
    ('roce', 'native', 'up'),           # 0: netdev up
    ('nvme', 'native', 'mounted'),      # 1: p1 mounted, p2 swap
    ('ism', 'native', None),            # 2
    ('roce', 'unbound', None),          # 3: native driver recorded, not bound
    ('nvme', 'vfio', None),             # 4: on vfio-pci via driver_override
    ('virtio-net', 'native', None),     # 5: virtio0/net/eth0
    ('virtio-blk', 'native', None),     # 6: virtio1/block/vda, vda1 mounted
    ('roce', 'vfio', None),             # 7
    ('nvme', 'unbound', None),          # 8
    ('nvme', 'native', None),           # 9: idle disk
    ('roce', 'native', 'down'),         # 10: netdev down
    ('unc', 'unbound', None),           # 11: no native driver
    ('nvme', 'native', 'holder'),       # 12: disk held by dm-0
]

FEATURES = ('esan3 zarch stfle msa ldisp eimm dfp edat etf3eh highgprs te vx vxd vxe gs '
            'vxe2 vxp sort dflt vxp2 nnpa')
FACILITIES_LPAR = [
    0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
    28, 30, 31, 32, 33, 34, 35, 36, 37, 38, 40, 41, 42, 43, 44, 45, 47, 48, 49, 50, 51, 52, 53,
    54, 55, 57, 58, 59, 60, 61, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 80,
    81, 82, 129, 130, 131, 132, 133, 134, 135, 138, 139, 141, 142, 144, 145, 146, 148, 149,
    150, 151, 152, 153, 155, 156, 158, 161, 165, 192, 193, 194, 196, 197,
]
# A guest sees what its hypervisor offers: no MIO (153), no ultravisor host bits.
FACILITIES_GUEST = [f for f in FACILITIES_LPAR if f not in (153, 155, 156, 161)]

FORBIDDEN_ROOTS = ('/sys', '/proc', '/dev', '/etc')


class Function:
    __slots__ = ('pos', 'kind', 'state', 'extra', 'fid', 'fh', 'uid', 'domain', 'devfn',
                 'pchid', 'pfgid', 'vfn', 'port', 'pfip', 'group', 'driver', 'native',
                 'override', 'pf', 'vfs', 'netdev', 'disk', 'virtio', 'addr', 'fidparm')

    def __init__(self, **kw):
        for name in self.__slots__:
            setattr(self, name, kw.get(name))

    @property
    def devrel(self):
        return 'sys/devices/pci%04x:00/%s' % (self.domain, self.addr)


class Tree:
    """Writes below the output root only; every symlink target is made relative."""

    def __init__(self, root):
        self.root = root
        self.dirs = set()

    def path(self, rel):
        return os.path.join(self.root, rel)

    def mkdir(self, rel):
        if rel in self.dirs:
            return
        os.makedirs(self.path(rel), exist_ok=True)
        d = rel
        while d and d not in self.dirs:
            self.dirs.add(d)
            d = os.path.dirname(d)

    def file(self, rel, data, mode=0o444):
        self.mkdir(os.path.dirname(rel))
        write_at(None, self.path(rel), data, mode)

    def link(self, rel, target_rel):
        """Symlink @rel pointing at @target_rel, both relative to the root."""
        parent = os.path.dirname(rel)
        self.mkdir(parent)
        os.symlink(os.path.relpath(target_rel, parent or '.'), self.path(rel))


def write_at(dir_fd, name, data, mode=0o444):
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode,
                 dir_fd=dir_fd)
    try:
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)


def kernel_version(release):
    m = re.match(r'(\d+)\.(\d+)', release)
    if not m:
        raise SystemExit('mkhost: cannot parse the kernel release %r' % release)
    return int(m.group(1)), int(m.group(2))


def check_outdir(outdir):
    real = os.path.realpath(outdir)
    if real == '/':
        raise SystemExit('mkhost: refusing to write a host tree to /')
    for bad in FORBIDDEN_ROOTS:
        if real == bad or real.startswith(bad + '/'):
            raise SystemExit('mkhost: refusing to write a host tree under %s' % bad)
    if os.path.lexists(real):
        if not os.path.isdir(real) or os.path.islink(outdir):
            raise SystemExit('mkhost: %s exists and is not a directory' % outdir)
        if os.listdir(real):
            raise SystemExit('mkhost: %s is not empty' % outdir)
    return real


def ebcdic_util(text):
    raw = text.encode('cp037')[:64]
    return raw + b'\x40' * (64 - len(raw))


def plan(args, rng):
    """Decides every function's identity; touches no file."""
    n = args.functions
    vfs_per_pf = args.vfs_per_pf
    pf_total = args.pf_with_vfs * (1 + vfs_per_pf)
    if pf_total > n:
        raise SystemExit('mkhost: --pf-with-vfs %d needs %d functions, --functions is %d'
                         % (args.pf_with_vfs, pf_total, n))
    vfio = not args.no_vfio and not args.vfio_not_loaded

    specs = []  # (kind, state, extra, pf_index or None)
    head = HEAD[:max(0, n - pf_total)]
    for kind, state, extra in head:
        specs.append((kind, state, extra, None))
    for _ in range(args.pf_with_vfs):
        specs.append(('roce-pf', 'native', 'up', None))
        for v in range(vfs_per_pf):
            state = ('native', 'unbound', 'vfio')[v % 3]
            specs.append(('roce-vf', state, None, len(specs) - 1 - v))
    kinds = ['roce'] * 35 + ['nvme'] * 25 + ['ism'] * 5 + ['unc'] * 5
    states = ['native'] * 6 + ['unbound'] * 2 + ['vfio'] * 2
    while len(specs) < n:
        kind = rng.choice(kinds)
        state = rng.choice(states)
        if kind == 'unc':
            state = 'unbound'
        specs.append((kind, state, None, None))

    fixed = len(head) + pf_total
    fid = rng.randrange(0x10, 0x400) << 4
    uid = 0
    pchids = {k: rng.sample(range(0x100, 0x800), 8) for k in KINDS}
    funcs = []
    next_domain = 0
    nvme = virtio = 0
    for pos, (kind, state, extra, pf_pos) in enumerate(specs):
        if state == 'vfio' and not vfio:
            state = 'unbound'
        # Gaps only in the seeded tail, so the head and the PFs keep fixed addresses.
        uid += 1 if pos < fixed or rng.random() < 0.7 else rng.randrange(2, 4)
        if uid > 0xffff:
            raise SystemExit('mkhost: too many functions for 16-bit UIDs')
        fid += 1 if rng.random() < 0.8 else rng.randrange(2, 16)
        pft, vendor, device, sv, sd, cls, native = KINDS[kind]
        f = Function(pos=pos, kind=kind, state=state, extra=extra, fid=fid, uid=uid,
                     fh=0x80000000 | ((pos + 1) & 0xffff),
                     pchid=0 if kind.startswith('virtio') else rng.choice(pchids[kind]),
                     pfgid=PFGID.get(kind, 0x00),
                     vfn=0, port=0, native=native, vfs=[],
                     pfip=[rng.randrange(0x100) for _ in range(4)],
                     fidparm=0)
        if kind == 'roce':
            f.vfn = rng.randrange(1, 0x20)
            f.port = rng.choice((1, 2))
        if kind == 'roce-pf':
            f.port = 1
        if kind == 'roce-vf':
            pf = funcs[pf_pos]
            f.pf = pf
            f.vfn = len(pf.vfs) + 1
            f.port = pf.port
            f.pchid = pf.pchid
            f.pfip = list(pf.pfip)
            f.fidparm = 0x01
            pf.vfs.append(f)
        # Domain = UID under UID checking; otherwise the lowest free one in probe order. VFs
        # of a PF in this partition share its bus, at devfn = their VF number.
        if f.pf is not None:
            f.domain = f.pf.domain
            f.devfn = f.vfn
        else:
            f.devfn = 0
            if args.uid_checking == 'on':
                f.domain = uid & 0xffff
            else:
                f.domain = next_domain
                next_domain += 1
        f.addr = '%04x:00:%02x.%d' % (f.domain, f.devfn >> 3, f.devfn & 7)
        f.group = pos
        f.driver = {'native': native, 'unbound': None, 'vfio': 'vfio-pci'}[state]
        f.override = 'vfio-pci' if state == 'vfio' else None
        if f.driver == 'mlx5_core':
            if args.uid_checking == 'on':
                f.netdev = 'eno%d' % uid
            else:
                f.netdev = 'enP%dp0s%d' % (f.domain, f.devfn >> 3)
                if f.devfn & 7:
                    f.netdev += 'f%d' % (f.devfn & 7)
        elif f.driver == 'nvme':
            f.disk = 'nvme%d' % nvme
            nvme += 1
        elif f.driver == 'virtio-pci':
            f.virtio = 'virtio%d' % virtio
            virtio += 1
        funcs.append(f)

    standby = []
    for k in range(args.standby):
        uid += 1
        fid += 1
        if args.uid_checking == 'on':
            domain = uid & 0xffff
        else:
            domain = next_domain
            next_domain += 1
        standby.append((fid, domain))
    return funcs, standby


def make_function(tree, f, args, ver):
    dev = f.devrel
    tree.mkdir(dev)
    dfd = os.open(tree.path(dev), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pft, vendor, device, sv, sd, cls, native = KINDS[f.kind]
        attrs = {
            'function_id': '0x%08x\n' % f.fid,
            'function_handle': '0x%08x\n' % f.fh,
            'uid': '0x%x\n' % f.uid,
            'uid_is_unique': '1\n' if args.uid_checking == 'on' else '0\n',
            'pchid': '0x%04x\n' % f.pchid,
            'pfgid': '0x%02x\n' % f.pfgid,
            'pft': '0x%02x\n' % pft,
            'vfn': '0x%04x\n' % f.vfn,
            'port': '%d\n' % f.port,
            'mio_enabled': '1\n' if args.hypervisor == 'lpar' else '0\n',
            'vendor': '0x%04x\n' % vendor,
            'device': '0x%04x\n' % device,
            'subsystem_vendor': '0x%04x\n' % sv,
            'subsystem_device': '0x%04x\n' % sd,
            'class': '0x%06x\n' % cls,
        }
        if args.uid_checking == 'on':
            attrs['index'] = '%u\n' % f.uid
        if ver >= (6, 13):
            attrs['fidparm'] = '0x%02x\n' % f.fidparm
        for name, value in attrs.items():
            write_at(dfd, name, value)
        write_at(dfd, 'util_string', ebcdic_util(UTIL_TEXT[f.kind]))
        write_at(dfd, 'driver_override', (f.override or '(null)') + '\n', 0o644)
        os.mkdir('pfip', 0o755, dir_fd=dfd)
        for i, seg in enumerate(f.pfip):
            write_at(dfd, 'pfip/segment%d' % i, '0x%02x\n' % seg)
        if f.kind == 'roce-pf':
            write_at(dfd, 'sriov_totalvfs', '%d\n' % max(8, len(f.vfs)))
            write_at(dfd, 'sriov_numvfs', '%d\n' % len(f.vfs), 0o664)
            write_at(dfd, 'sriov_drivers_autoprobe', '1\n', 0o644)
    finally:
        os.close(dfd)

    tree.link('sys/bus/pci/devices/' + f.addr, dev)
    tree.link(dev + '/subsystem', 'sys/bus/pci')
    group = 'sys/kernel/iommu_groups/%d' % f.group
    tree.link(dev + '/iommu_group', group)
    tree.link(group + '/devices/' + f.addr, dev)
    if f.pf is not None:
        tree.link(dev + '/physfn', f.pf.devrel)
        tree.link(f.pf.devrel + '/virtfn%d' % (f.vfn - 1), dev)
    if f.driver:
        tree.link(dev + '/driver', 'sys/bus/pci/drivers/' + f.driver)
        tree.link('sys/bus/pci/drivers/%s/%s' % (f.driver, f.addr), dev)
        if f.driver == 'vfio-pci':
            tree.file('dev/vfio/%d' % f.group, '', 0o600)
    slot = 'sys/bus/pci/slots/%08x' % f.fid
    tree.file(slot + '/power', '1\n', 0o644)
    tree.file(slot + '/address', '%04x:00:%02x\n' % (f.domain, f.devfn >> 3))

    if f.netdev:
        net = dev + '/net/' + f.netdev
        make_netdev(tree, net, f, f.extra != 'down')
    if f.disk:
        ctrl = dev + '/nvme/' + f.disk
        tree.file(ctrl + '/model', 'SAMSUNG MZPLJ3T2HBJR-00007               \n')
        tree.file(ctrl + '/serial', 'S4YNNA0R%06d      \n' % f.pos)
        tree.link('sys/class/nvme/' + f.disk, ctrl)
        make_disk(tree, ctrl + '/' + f.disk + 'n1', f.disk + 'n1', 'p', 259, f)
    if f.virtio:
        vdir = dev + '/' + f.virtio
        tree.file(vdir + '/device', '0x%04x\n' % (1 if f.kind == 'virtio-net' else 2))
        tree.file(vdir + '/vendor', '0x554d4551\n')
        tree.link('sys/bus/virtio/devices/' + f.virtio, vdir)
        if f.kind == 'virtio-net':
            f.netdev = 'eth0'
            make_netdev(tree, vdir + '/net/eth0', f, True)
        else:
            make_disk(tree, vdir + '/block/vda', 'vda', '', 252, f)


def make_netdev(tree, net, f, up):
    tree.file(net + '/operstate', 'up\n' if up else 'down\n')
    tree.file(net + '/flags', '0x1003\n' if up else '0x1002\n')
    tree.file(net + '/address', '82:%02x:%02x:%02x:%02x:%02x\n'
              % ((f.fid >> 24) & 0xff, (f.fid >> 16) & 0xff, (f.fid >> 8) & 0xff, f.fid & 0xff,
                 f.pos & 0xff))
    tree.link('sys/class/net/' + os.path.basename(net), net)


def make_disk(tree, disk, name, sep, major, f):
    tree.file(disk + '/dev', '%d:%d\n' % (major, f.pos * 16))
    tree.file(disk + '/size', '%d\n' % (6251233968 if major == 259 else 41943040))
    tree.mkdir(disk + '/holders')
    tree.link('sys/class/block/' + name, disk)
    for p in (1, 2):
        part = '%s%s%d' % (name, sep, p)
        tree.file('%s/%s/partition' % (disk, part), '%d\n' % p)
        tree.file('%s/%s/dev' % (disk, part), '%d:%d\n' % (major, f.pos * 16 + p))
        tree.mkdir('%s/%s/holders' % (disk, part))
        tree.link('sys/class/block/' + part, disk + '/' + part)
    if f.extra == 'holder':
        tree.file('sys/devices/virtual/block/dm-0/dm/name', 'vg0-data\n')
        tree.link('sys/class/block/dm-0', 'sys/devices/virtual/block/dm-0')
        tree.link(disk + '/holders/dm-0', 'sys/devices/virtual/block/dm-0')


def make_drivers(tree, args, kvm_loaded):
    drivers = ['mlx5_core', 'nvme', 'ism', 'virtio-pci']
    vfio_loaded = not args.no_vfio and not args.vfio_not_loaded
    if vfio_loaded:
        drivers.append('vfio-pci')
    for drv in drivers:
        d = 'sys/bus/pci/drivers/' + drv
        for name in ('bind', 'unbind', 'new_id', 'remove_id', 'uevent'):
            tree.file(d + '/' + name, '', 0o200)
        tree.link(d + '/module', 'sys/module/' + DRIVER_MODULE[drv])
        make_module(tree, DRIVER_MODULE[drv], {})
    tree.file('sys/bus/pci/drivers_probe', '', 0o200)
    tree.file('sys/bus/pci/drivers_autoprobe', '1\n', 0o644)
    tree.file('sys/bus/pci/rescan', '', 0o200)
    tree.mkdir('sys/bus/pci/slots')
    tree.mkdir('sys/class/net')
    tree.mkdir('sys/class/block')
    tree.mkdir('sys/kernel/iommu_groups')
    make_module(tree, 'mlx5_ib', {})
    make_module(tree, 'nvme_core', {})
    if vfio_loaded:
        make_module(tree, 'vfio', {})
        make_module(tree, 'vfio_pci_core', {})
        make_module(tree, 'vfio_pci', {'ids': '\n', 'nointxmask': 'N\n',
                                       'disable_idle_d3': 'N\n', 'enable_sriov': 'N\n',
                                       'disable_denylist': 'N\n'})
        make_module(tree, 'vfio_iommu_type1', {'dma_entry_limit': '65535\n',
                                               'disable_hugepages': 'N\n',
                                               'allow_unsafe_interrupts': 'N\n'})
        make_module(tree, 'irqbypass', {})
        tree.file('dev/vfio/vfio', '', 0o666)
    if kvm_loaded:
        make_module(tree, 'kvm', {'nested': '0\n', 'hpage': '0\n', 'use_gisa': '1\n',
                                  'halt_poll_max_steal': '10\n', 'async_destroy': '1\n'})
        tree.file('dev/kvm', '', 0o660)


def make_module(tree, name, params):
    d = 'sys/module/' + name
    if d in tree.dirs:
        return
    tree.file(d + '/initstate', 'live\n')
    tree.file(d + '/refcnt', '1\n')
    for p, v in params.items():
        tree.file('%s/parameters/%s' % (d, p), v)


def make_proc(tree, args, funcs):
    machine = args.machine
    lpar = args.hypervisor == 'lpar'
    feats = FEATURES + (' pcimio sie' if lpar else '')
    facs = FACILITIES_LPAR if lpar else FACILITIES_GUEST
    ncpu = 4 if lpar else 2
    lines = [
        'vendor_id       : IBM/S390',
        '# processors    : %d' % ncpu,
        'bogomips per cpu: 3241.00',
        'max thread id   : 1' if lpar else 'max thread id   : 0',
        'features\t: %s ' % feats,
        'facilities      :' + ''.join(' %d' % x for x in facs),
        'cache0          : level=1 type=Data scope=Private size=128K line_size=256 associativity=8',
        'cache1          : level=1 type=Instruction scope=Private size=128K line_size=256 associativity=8',
        'cache2          : level=2 type=Unified scope=Private size=32768K line_size=256 associativity=16',
        'cache3          : level=3 type=Unified scope=Shared size=262144K line_size=256 associativity=128',
    ]
    for c in range(ncpu):
        lines.append('processor %d: version = 00,  identification = 123456,  machine = %04X'
                     % (c, machine))
    for c in range(ncpu):
        lines += ['', 'cpu number      : %d' % c, 'version         : 00',
                  'identification  : 123456', 'machine         : %04X' % machine,
                  'cpu MHz dynamic : 5200', 'cpu MHz static  : 5200']
    tree.file('proc/cpuinfo', '\n'.join(lines) + '\n')

    sysinfo = [
        'Manufacturer:         IBM',
        'Type:                 %04X' % machine,
        'LIC Identifier:       %016x' % (0x7d3c0a1b00000000 | args.seed & 0xffffffff),
        'Model:                701              A01',
        'Model Capacity:       701              00000000',
        'Sequence Code:        00000000000%05X' % (0xde4c8 ^ (args.seed & 0xfffff)),
        'Plant:                02',
        'Model Temp. Capacity: 701              00000000',
        'Capacity Adj. Ind.:   100',
        'Capacity Ch. Reason:  0',
        'Capacity Transient:   0',
        '',
        'CPUs Total:           200',
        'CPUs Configured:      4',
        'CPUs Standby:         0',
        'CPUs Reserved:        196',
        '',
        'LPAR Number:          12',
        'LPAR Characteristics: Shared',
        'LPAR Name:            LPAR12  ',
        'LPAR Adjustment:      250',
        'LPAR CPUs Total:      4',
        'LPAR CPUs Configured: 4',
        'LPAR CPUs Standby:    0',
        'LPAR CPUs Reserved:   0',
        'LPAR CPUs Dedicated:  0',
        'LPAR CPUs Shared:     4',
    ]
    if args.hypervisor != 'lpar':
        cp = 'KVM/Linux' if args.hypervisor == 'kvm' else 'z/VM    7.3.0'
        name = 'KVMguest' if args.hypervisor == 'kvm' else 'LINUX01'
        sysinfo += [
            '',
            'VM00 Name:            %-8.8s' % name,
            'VM00 Control Program: %-16.16s' % cp,
            'VM00 Adjustment:      1000' if args.hypervisor == 'kvm' else 'VM00 Adjustment:      83',
            'VM00 CPUs Total:      2',
            'VM00 CPUs Configured: 2',
            'VM00 CPUs Standby:    0',
            'VM00 CPUs Reserved:   0',
        ]
    tree.file('proc/sysinfo', '\n'.join(sysinfo) + '\n')
    tree.file('proc/sys/kernel/osrelease', args.kernel + '\n')
    tree.file('proc/sys/kernel/arch', 's390x\n')
    root_dev = '/dev/vda1' if args.hypervisor == 'kvm' else '/dev/dasda1'
    cmdline = 'root=%s crashkernel=196M' % root_dev
    if args.se_host:
        cmdline += ' prot_virt=1'
    tree.file('proc/cmdline', cmdline + '\n')

    mounts = [
        '22 1 %s / / rw,relatime shared:1 - ext4 %s rw' % (
            '252:1' if args.hypervisor == 'kvm' else '94:1', root_dev),
        '23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw',
        '24 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:3 - proc proc rw',
        '25 22 0:5 / /dev rw,nosuid,relatime shared:4 - devtmpfs udev rw,size=4012345k,nr_inodes=1003086,mode=755',
        '26 25 0:23 / /dev/pts rw,nosuid,noexec,relatime shared:5 - devpts devpts rw,gid=5,mode=620,ptmxmode=000',
        '27 22 0:24 / /run rw,nosuid,nodev,noexec,relatime shared:6 - tmpfs tmpfs rw,size=805124k,mode=755',
    ]
    swaps = ['Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority']
    mid = 40
    for f in funcs:
        if f.extra == 'mounted' and f.disk:
            mounts.append('%d 22 259:%d / /srv/data rw,relatime shared:%d - xfs /dev/%sn1p1 '
                          'rw,attr2,inode64,logbufs=8,logbsize=32k,noquota'
                          % (mid, f.pos * 16 + 1, mid, f.disk))
            swaps.append(swap_line('/dev/%sn1p2' % f.disk, 8388604, 0, -2))
            mid += 1
        if f.kind == 'virtio-blk' and f.virtio and args.hypervisor != 'kvm':
            mounts.append('%d 22 252:%d / /srv/scratch rw,relatime shared:%d - ext4 /dev/vda1 rw'
                          % (mid, f.pos * 16 + 1, mid))
            mid += 1
    tree.file('proc/self/mountinfo', '\n'.join(mounts) + '\n')
    tree.file('proc/swaps', '\n'.join(swaps) + '\n')


def swap_line(path, size, used, prio):
    # The layout of swap_show() in mm/swapfile.c.
    return '%s%*s%s\t%d\t%s%d\t%s%d' % (
        path, 40 - len(path) if len(path) < 40 else 1, ' ', 'partition', size,
        '\t' if size < 10000000 else '', used, '\t' if used < 10000000 else '', prio)


def make_boot(tree, args, nfuncs):
    zdev_kvm = not args.no_zdev_kvm
    cfg = [
        '#',
        '# Automatically generated file; DO NOT EDIT.',
        '# Linux/s390 %s Kernel Configuration' % args.kernel.split('+')[0].split('-')[0],
        '#',
        'CONFIG_64BIT=y',
        'CONFIG_S390=y',
        'CONFIG_PCI=y',
        'CONFIG_PCI_NR_FUNCTIONS=%d' % (64 if nfuncs <= 64 else 4096),
        'CONFIG_HOTPLUG_PCI=y',
        'CONFIG_HOTPLUG_PCI_S390=y',
        'CONFIG_PCI_IOV=y',
        'CONFIG_IOMMU_SUPPORT=y',
        'CONFIG_S390_IOMMU=y',
        'CONFIG_VIRTUALIZATION=y',
        'CONFIG_KVM=m',
        '# CONFIG_KVM_S390_UCONTROL is not set',
        'CONFIG_S390_UV_UAPI=m',
        'CONFIG_PROTECTED_VIRTUALIZATION_GUEST=y',
        'CONFIG_MLX5_CORE=m',
        'CONFIG_BLK_DEV_NVME=m',
        'CONFIG_ISM=m',
        'CONFIG_VIRTIO_PCI=m',
    ]
    if args.no_vfio:
        cfg += ['# CONFIG_VFIO is not set']
    else:
        cfg += [
            'CONFIG_VFIO=m',
            'CONFIG_VFIO_GROUP=y',
            'CONFIG_VFIO_CONTAINER=y',
            'CONFIG_VFIO_IOMMU_TYPE1=m',
            '# CONFIG_VFIO_NOIOMMU is not set',
            'CONFIG_VFIO_VIRQFD=y',
            'CONFIG_VFIO_PCI_CORE=m',
            'CONFIG_VFIO_PCI_MMAP=y',
            'CONFIG_VFIO_PCI=m',
            'CONFIG_VFIO_PCI_ZDEV_KVM=y' if zdev_kvm else '# CONFIG_VFIO_PCI_ZDEV_KVM is not set',
        ]
    cfg += ['# CONFIG_IOMMUFD is not set', 'CONFIG_IRQ_BYPASS_MANAGER=m']
    tree.file('boot/config-' + args.kernel, '\n'.join(cfg) + '\n', 0o644)

    mods = 'lib/modules/' + args.kernel
    dep = [
        'kernel/arch/s390/kvm/kvm.ko:',
        'kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko: kernel/net/psample/psample.ko',
        'kernel/drivers/nvme/host/nvme.ko: kernel/drivers/nvme/host/nvme-core.ko',
        'kernel/drivers/nvme/host/nvme-core.ko:',
        'kernel/drivers/s390/net/ism.ko:',
        'kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko',
        'kernel/virt/lib/irqbypass.ko:',
        'kernel/arch/s390/kernel/uvdevice.ko:',
    ]
    if not args.no_vfio:
        dep += [
            'kernel/drivers/vfio/vfio.ko:',
            'kernel/drivers/vfio/vfio_iommu_type1.ko: kernel/drivers/vfio/vfio.ko',
            'kernel/drivers/vfio/pci/vfio-pci-core.ko: kernel/drivers/vfio/vfio.ko kernel/virt/lib/irqbypass.ko',
            'kernel/drivers/vfio/pci/vfio-pci.ko: kernel/drivers/vfio/pci/vfio-pci-core.ko kernel/drivers/vfio/vfio.ko kernel/virt/lib/irqbypass.ko',
        ]
    tree.file(mods + '/modules.dep', '\n'.join(dep) + '\n', 0o644)
    builtin = [
        'kernel/drivers/pci/hotplug/s390_pci_hpc.ko',
        'kernel/drivers/iommu/s390-iommu.ko',
        'kernel/arch/s390/pci/pci.ko',
    ]
    tree.file(mods + '/modules.builtin', '\n'.join(builtin) + '\n', 0o644)


def main(argv=None):
    p = argparse.ArgumentParser(description='Generate a zpcid host tree.')
    p.add_argument('outdir')
    p.add_argument('--functions', type=int, required=True)
    p.add_argument('--machine', default='3931')
    p.add_argument('--hypervisor', choices=('lpar', 'kvm', 'zvm'), default='lpar')
    p.add_argument('--kernel', default='6.12.38+deb12-s390x')
    p.add_argument('--no-vfio', action='store_true', help='kernel built without VFIO')
    p.add_argument('--vfio-not-loaded', action='store_true',
                   help='VFIO built as modules but not loaded')
    p.add_argument('--no-zdev-kvm', action='store_true')
    p.add_argument('--uid-checking', choices=('on', 'off'), default='on')
    p.add_argument('--se-host', action='store_true')
    p.add_argument('--standby', type=int, default=0)
    p.add_argument('--pf-with-vfs', type=int, default=0)
    p.add_argument('--vfs-per-pf', type=int, default=2, choices=range(1, 8))
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)

    if not re.fullmatch(r'[0-9a-fA-F]{4}', args.machine):
        p.error('--machine takes a 4-digit machine type such as 3931')
    args.machine = int(args.machine, 16)
    if not re.fullmatch(r'[A-Za-z0-9._+~-]+', args.kernel):
        p.error('--kernel must be a plain release string')
    if args.functions < 0 or args.standby < 0 or args.pf_with_vfs < 0:
        p.error('counts must not be negative')
    if args.no_vfio:
        args.vfio_not_loaded = False
    ver = kernel_version(args.kernel)
    outdir = check_outdir(args.outdir)
    rng = random.Random(args.seed)
    funcs, standby = plan(args, rng)

    os.umask(0o022)
    os.makedirs(outdir, exist_ok=True)
    tree = Tree(outdir)
    lpar = args.hypervisor == 'lpar'
    # Without SIE (a guest without nesting) kvm.ko refuses to load.
    kvm_loaded = lpar
    make_drivers(tree, args, kvm_loaded)
    for f in funcs:
        make_function(tree, f, args, ver)
    for fid, domain in standby:
        slot = 'sys/bus/pci/slots/%08x' % fid
        tree.file(slot + '/power', '0\n', 0o644)
        tree.file(slot + '/address', '%04x:00:00\n' % domain)
    make_proc(tree, args, funcs)
    make_boot(tree, args, len(funcs) + len(standby))

    if ver >= (6, 18):
        tree.file('sys/firmware/clp/uid_checking', '1\n' if args.uid_checking == 'on' else '0\n')
    tree.file('sys/firmware/uv/prot_virt_host', '1\n' if args.se_host else '0\n')
    tree.file('sys/firmware/uv/prot_virt_guest', '0\n')
    interp = (kvm_loaded and not args.no_zdev_kvm and not args.no_vfio
              and args.machine not in NO_INTERP_MACHINES)
    tree.file('fixture/kvm-check-extension', '221 %d\n' % (1 if interp else 0), 0o644)
    natives = ['# <pci address> <driver the kernel would probe without driver_override>']
    natives += ['%s %s' % (f.addr, f.native) for f in funcs if f.native]
    tree.file('fixture/native-drivers', '\n'.join(natives) + '\n', 0o644)
    tree.file('README',
              'mkhost.py: %s %04X, kernel %s, %d functions (%d standby, %d PFs with VFs), '
              'UID checking %s, seed %d\n'
              % ({'lpar': 'LPAR', 'kvm': 'KVM guest', 'zvm': 'z/VM guest'}[args.hypervisor],
                 args.machine, args.kernel, len(funcs), len(standby), args.pf_with_vfs,
                 args.uid_checking, args.seed), 0o644)
    return 0


if __name__ == '__main__':
    sys.exit(main())
