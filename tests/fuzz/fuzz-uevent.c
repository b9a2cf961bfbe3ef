/* Fuzz target: kernel uevent datagrams (netlink bytes) and the decision what they concern. */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "spec.h"
#include "uevent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every string the parser hands on is printable UTF-8, as the kernel's are. */
static void
assert_clean(const char *text)
{
    g_assert_true(g_utf8_validate(text, -1, NULL));
    for (const char *p = text; *p != '\0'; p++)
        g_assert_true((guchar)*p >= 0x20 && *p != 0x7f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *error = NULL;
    g_autoptr(ZpcidUevent) event = zpcid_uevent_parse(data, size, &error);
    ZpcidUeventTarget target;
    GHashTableIter iter;
    gpointer key, value;

    if (event == NULL) {
        g_assert_true(error->domain == ZPCID_ERROR);
        g_assert_cmpint(error->code, ==, ZPCID_ERROR_INVALID_ARGUMENT);
        g_assert_true(g_utf8_validate(error->message, -1, NULL));
        g_error_free(error);
        return 0;
    }
    g_assert_cmpuint(size, <=, ZPCID_UEVENT_MAX_SIZE);
    g_assert_true(event->action[0] != '\0');
    g_assert_true(event->devpath[0] == '/');
    g_assert_cmpstr(zpcid_uevent_get(event, "ACTION"), ==, event->action);
    g_assert_cmpstr(zpcid_uevent_get(event, "DEVPATH"), ==, event->devpath);
    g_assert_cmpstr(zpcid_uevent_get(event, "SUBSYSTEM"), ==, event->subsystem);
    g_hash_table_iter_init(&iter, event->env);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        assert_clean(key);
        assert_clean(value);
    }

    if (!zpcid_uevent_classify(event, &target)) {
        g_assert_cmpint(target.kind, ==, ZPCID_UEVENT_TARGET_NONE);
        return 0;
    }
    switch (target.kind) {
    case ZPCID_UEVENT_TARGET_FUNCTION:
        /* The address is used to build a sysfs path: it must be a plain PCI address. */
        g_assert_true(zpcid_pci_address_is_valid(target.address));
        g_assert_null(strchr(target.address, '/'));
        break;
    case ZPCID_UEVENT_TARGET_SLOT:
    case ZPCID_UEVENT_TARGET_READINESS:
        break;
    default:
        g_assert_not_reached();
    }
    return 0;
}
