#include <glib.h>
#include <string.h>

#include "error.h"
#include "spec.h"

static void
test_address_valid(void)
{
    ZpcidPciAddress a;
    g_autofree char *text = NULL;

    g_assert_true(zpcid_pci_address_parse("0005:00:00.0", &a, NULL));
    g_assert_cmpuint(a.domain, ==, 5);
    g_assert_true(zpcid_pci_address_parse("ffff:ff:1f.7", &a, NULL));
    g_assert_cmpuint(a.bus, ==, 0xff);
    g_assert_cmpuint(a.slot, ==, 0x1f);
    g_assert_cmpuint(a.function, ==, 7);
    text = zpcid_pci_address_format(&a);
    g_assert_cmpstr(text, ==, "ffff:ff:1f.7");
    g_assert_true(zpcid_pci_address_parse("10000:00:00.0", &a, NULL));
    g_assert_cmpuint(a.domain, ==, 0x10000);
    g_assert_true(zpcid_pci_address_is_valid("0005:00:00.0"));
    /* Only the kernel's spelling may name a directory. */
    g_assert_false(zpcid_pci_address_is_valid("0005:0A:00.0"));
}

static void
test_address_hostile(void)
{
    static const char *const bad[] = {
        "",           "../../..",      "0005:00:00.0/../..", "0005:00:00.0\n", "0005:00:20.0",
        "0005:00:00.8", "005:00:00.0", "0005:00:00",         "0005:00:00.00",  "0005:00.00.0",
        "zzzz:00:00.0", "0005:00:00.0 ", " 0005:00:00.0",    "000000005:00:00.0",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        ZpcidPciAddress a;
        g_assert_false(zpcid_pci_address_parse(bad[i], &a, &error));
        g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
        g_assert_false(zpcid_pci_address_is_valid(bad[i]));
    }
}

static void
test_spec_kinds(void)
{
    ZpcidSpec s;
    g_autofree char *a = NULL, *b = NULL, *c = NULL;

    g_assert_true(zpcid_spec_parse("0x11", &s, NULL));
    g_assert_cmpint(s.kind, ==, ZPCID_SPEC_FID);
    g_assert_cmpuint(s.id, ==, 0x11);
    a = zpcid_spec_format(&s);
    g_assert_cmpstr(a, ==, "fid:0x00000011");
    g_assert_true(zpcid_spec_parse("17", &s, NULL));
    g_assert_cmpuint(s.id, ==, 17);
    g_assert_true(zpcid_spec_parse("0", &s, NULL));
    g_assert_cmpuint(s.id, ==, 0);
    g_assert_true(zpcid_spec_parse("fid:0xffffffff", &s, NULL));
    g_assert_cmpuint(s.id, ==, 0xffffffff);
    g_assert_true(zpcid_spec_parse("uid:0x5", &s, NULL));
    g_assert_cmpint(s.kind, ==, ZPCID_SPEC_UID);
    b = zpcid_spec_format(&s);
    g_assert_cmpstr(b, ==, "uid:0x0005");
    g_assert_true(zpcid_spec_parse("uid:65535", &s, NULL));
    g_assert_true(zpcid_spec_parse("0005:00:00.0", &s, NULL));
    g_assert_cmpint(s.kind, ==, ZPCID_SPEC_ADDRESS);
    c = zpcid_spec_format(&s);
    g_assert_cmpstr(c, ==, "0005:00:00.0");
}

static void
test_spec_hostile(void)
{
    g_autofree char *huge = g_strnfill(4096, 'a');
    const char *bad[] = {
        "", "uid:0", "uid:0x0", "uid:0x10000", "uid:65536", "0010", "uid:0010", "0x", "0x1g",
        "0x100000000", "4294967296", "fid:", "uid:", "-1", "../../..", "0005:00:00.0/../..",
        "0x11\n", "fid:0x11 ", huge, "uid:0x5\n", "99999999999999999999999",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        ZpcidSpec s;
        g_assert_false(zpcid_spec_parse(bad[i], &s, &error));
        g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
        g_assert_true(g_str_has_suffix(error->message, "."));
        /* Hostile input is shown short and escaped, never verbatim. */
        g_assert_null(strchr(error->message, '\n'));
        g_assert_cmpuint(strlen(error->message), <, 400);
    }
}

static void
test_parse_id_octal_trap(void)
{
    g_autoptr(GError) error = NULL;
    guint64 v;

    g_assert_false(zpcid_parse_id("0010", 0xffff, &v, &error));
    g_assert_nonnull(strstr(error->message, "leading zeros"));
    g_assert_true(zpcid_parse_id("0x0010", 0xffff, &v, NULL));
    g_assert_cmpuint(v, ==, 16);
    g_assert_true(zpcid_parse_id("10", 0xffff, &v, NULL));
    g_assert_cmpuint(v, ==, 10);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/spec/address/valid", test_address_valid);
    g_test_add_func("/spec/address/hostile", test_address_hostile);
    g_test_add_func("/spec/kinds", test_spec_kinds);
    g_test_add_func("/spec/hostile", test_spec_hostile);
    g_test_add_func("/spec/octal-trap", test_parse_id_octal_trap);
    return g_test_run();
}
