/* The uevent parser: the kernel's own messages, and everything else refused. */
#include <glib.h>
#include <string.h>

#include "error.h"
#include "uevent.h"

/* Builds a message from NUL-separated parts written with '|' for readability. */
static GBytes *
message(const char *text)
{
    gsize len = strlen(text);
    char *buf = g_strdup(text);

    for (gsize i = 0; i < len; i++) {
        if (buf[i] == '|')
            buf[i] = '\0';
    }
    return g_bytes_new_take(buf, len);
}

static ZpcidUevent *
parse(const char *text, GError **error)
{
    g_autoptr(GBytes) bytes = message(text);
    gsize len;
    const guint8 *data = g_bytes_get_data(bytes, &len);

    return zpcid_uevent_parse(data, len, error);
}

static void
test_pci_bind(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidUevent) ev = parse("bind@/devices/pci0001:00/0001:00:00.0|ACTION=bind|"
                                      "DEVPATH=/devices/pci0001:00/0001:00:00.0|SUBSYSTEM=pci|"
                                      "DRIVER=vfio-pci|PCI_SLOT_NAME=0001:00:00.0|SEQNUM=4711|",
                                      &error);
    ZpcidUeventTarget target;

    g_assert_no_error(error);
    g_assert_cmpstr(ev->action, ==, "bind");
    g_assert_cmpstr(ev->devpath, ==, "/devices/pci0001:00/0001:00:00.0");
    g_assert_cmpstr(ev->subsystem, ==, "pci");
    g_assert_cmpstr(zpcid_uevent_get(ev, "DRIVER"), ==, "vfio-pci");
    g_assert_cmpstr(zpcid_uevent_get(ev, "SEQNUM"), ==, "4711");
    g_assert_true(zpcid_uevent_classify(ev, &target));
    g_assert_cmpint(target.kind, ==, ZPCID_UEVENT_TARGET_FUNCTION);
    g_assert_cmpstr(target.address, ==, "0001:00:00.0");
}

static void
test_header_only(void)
{
    g_autoptr(GError) error = NULL;
    /* Without fields (and without the final NUL) the header still says what happened. */
    g_autoptr(ZpcidUevent) ev = parse("remove@/devices/pci0002:00/0002:00:00.0", &error);
    ZpcidUeventTarget target;

    g_assert_no_error(error);
    g_assert_cmpstr(zpcid_uevent_get(ev, "ACTION"), ==, "remove");
    g_assert_null(ev->subsystem);
    g_assert_false(zpcid_uevent_classify(ev, &target));
    g_assert_cmpint(target.kind, ==, ZPCID_UEVENT_TARGET_NONE);
}

static void
test_classify(void)
{
    static const struct {
        const char *text;
        ZpcidUeventTargetKind kind;
        const char *address;
        guint32 fid;
    } cases[] = {
        {"add@/devices/pci0001:00/0001:00:00.0/net/eno1|SUBSYSTEM=net|INTERFACE=eno1|",
         ZPCID_UEVENT_TARGET_FUNCTION, "0001:00:00.0", 0},
        {"add@/devices/pci0002:00/0002:00:00.0/nvme/nvme0/nvme0n1/nvme0n1p1|SUBSYSTEM=block|",
         ZPCID_UEVENT_TARGET_FUNCTION, "0002:00:00.0", 0},
        {"add@/devices/pci0003:00/0003:00:00.0/0003:00:00.1|SUBSYSTEM=pci|",
         ZPCID_UEVENT_TARGET_FUNCTION, "0003:00:00.1", 0},
        {"add@/bus/pci/slots/0000182f|", ZPCID_UEVENT_TARGET_SLOT, NULL, 0x182f},
        {"change@/bus/pci/slots/0000182e|SUBSYSTEM=slots|", ZPCID_UEVENT_TARGET_SLOT, NULL,
         0x182e},
        {"add@/module/vfio_pci|SUBSYSTEM=module|", ZPCID_UEVENT_TARGET_READINESS, NULL, 0},
        {"add@/devices/virtual/misc/kvm|SUBSYSTEM=misc|DEVNAME=kvm|",
         ZPCID_UEVENT_TARGET_READINESS, NULL, 0},
        {"add@/devices/virtual/vfio/3|SUBSYSTEM=vfio|", ZPCID_UEVENT_TARGET_READINESS, NULL, 0},
        /* Not ours: other modules, virtual net devices, odd slot names, non-PCI devices. */
        {"add@/module/ext4|SUBSYSTEM=module|", ZPCID_UEVENT_TARGET_NONE, NULL, 0},
        {"add@/devices/virtual/net/lo|SUBSYSTEM=net|", ZPCID_UEVENT_TARGET_NONE, NULL, 0},
        {"add@/bus/pci/slots/1|", ZPCID_UEVENT_TARGET_NONE, NULL, 0},
        {"add@/bus/pci/slots/0000182G|", ZPCID_UEVENT_TARGET_NONE, NULL, 0},
        {"add@/devices/css0/0.0.0000|SUBSYSTEM=css|", ZPCID_UEVENT_TARGET_NONE, NULL, 0},
        {"add@/devices/pci0001:00/0001:00:00.0/msi_irqs|SUBSYSTEM=pci|",
         ZPCID_UEVENT_TARGET_NONE, NULL, 0},
        {"add@/devices/pci0001:00/0001:00:00.0|SUBSYSTEM=pci|PCI_SLOT_NAME=../../etc|",
         ZPCID_UEVENT_TARGET_FUNCTION, "0001:00:00.0", 0},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(ZpcidUevent) ev = parse(cases[i].text, &error);
        ZpcidUeventTarget target;
        gboolean ok;

        g_test_message("case %" G_GSIZE_FORMAT ": %s", i, cases[i].text);
        g_assert_no_error(error);
        ok = zpcid_uevent_classify(ev, &target);
        g_assert_cmpint(ok, ==, cases[i].kind != ZPCID_UEVENT_TARGET_NONE);
        g_assert_cmpint(target.kind, ==, cases[i].kind);
        if (cases[i].address != NULL)
            g_assert_cmpstr(target.address, ==, cases[i].address);
        if (cases[i].kind == ZPCID_UEVENT_TARGET_SLOT)
            g_assert_cmpuint(target.fid, ==, cases[i].fid);
    }
}

static void
test_refused(void)
{
    static const char *const bad[] = {
        "",
        "add",                                    /* no @ */
        "@/devices/x|",                           /* no action */
        "add@|",                                  /* no devpath */
        "add@devices/x|",                         /* devpath not absolute */
        "libudev|add@/devices/x|",                /* udev's monitor format */
        "add@/devices/x|NOEQUALS|",               /* field without = */
        "add@/devices/x|=value|",                 /* empty key */
        "add@/devices/x|lower=case|",             /* not a kernel key */
        "add@/devices/x|ACTION=remove|",          /* header and ACTION disagree */
        "add@/devices/x|DEVPATH=/devices/y|",     /* header and DEVPATH disagree */
        "add@/devices/x|A=1|A=2|",                /* repeated key */
        "add@/devices/x|A=new\nline|",            /* control character */
        "add@/devi\tces/x|",                      /* control character in the header */
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(ZpcidUevent) ev = parse(bad[i], &error);

        g_test_message("case %" G_GSIZE_FORMAT, i);
        g_assert_null(ev);
        g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    }
}

static void
test_limits(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GString) s = g_string_new("add@/devices/x");
    const guint8 bad_utf8[] = {'a', 'd', 'd', '@', '/', 0xff, 0xfe, 0};
    ZpcidUevent *ev;

    g_string_append_c(s, '\0');
    while (s->len <= ZPCID_UEVENT_MAX_SIZE)
        g_string_append(s, "K=v");
    ev = zpcid_uevent_parse((const guint8 *)s->str, s->len, &error);
    g_assert_null(ev);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    ev = zpcid_uevent_parse(bad_utf8, sizeof(bad_utf8), &error);
    g_assert_null(ev);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/uevent/pci-bind", test_pci_bind);
    g_test_add_func("/uevent/header-only", test_header_only);
    g_test_add_func("/uevent/classify", test_classify);
    g_test_add_func("/uevent/refused", test_refused);
    g_test_add_func("/uevent/limits", test_limits);
    return g_test_run();
}
