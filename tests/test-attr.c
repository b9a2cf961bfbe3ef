#include <glib.h>
#include <string.h>

#include "attr.h"
#include "error.h"
#include "hostinfo.h"

#define P "/sys/devices/pci0005:00/0005:00:00.0/x"

static void
test_hex(void)
{
    guint64 v;
    g_autoptr(GError) error = NULL;

    g_assert_true(zpcid_attr_parse_hex(P, "0x00000011\n", 11, 8, G_MAXUINT32, &v, NULL));
    g_assert_cmpuint(v, ==, 0x11);
    g_assert_true(zpcid_attr_parse_hex(P, "0x5\n", 4, 8, G_MAXUINT32, &v, NULL));
    g_assert_cmpuint(v, ==, 5);
    g_assert_true(zpcid_attr_parse_hex(P, "0xffff", 6, 4, 0xffff, &v, NULL));
    g_assert_false(zpcid_attr_parse_hex(P, "0x\n", 3, 8, G_MAXUINT32, &v, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED);
    g_assert_nonnull(strstr(error->message, P));
    g_clear_error(&error);
    g_assert_false(zpcid_attr_parse_hex(P, "17\n", 3, 8, G_MAXUINT32, &v, &error));
    g_clear_error(&error);
    g_assert_false(zpcid_attr_parse_hex(P, "0x123456789\n", 12, 8, G_MAXUINT32, &v, &error));
    g_clear_error(&error);
    g_assert_false(zpcid_attr_parse_hex(P, "0x11\n\n", 6, 8, G_MAXUINT32, &v, &error));
    g_clear_error(&error);
    g_assert_false(zpcid_attr_parse_hex(P, "0x1\0002\n", 6, 8, G_MAXUINT32, &v, &error));
    g_clear_error(&error);
    g_assert_false(zpcid_attr_parse_hex(P, "", 0, 8, G_MAXUINT32, &v, &error));
    g_assert_nonnull(strstr(error->message, "“”"));
    g_clear_error(&error);
    g_assert_false(zpcid_attr_parse_hex(P, "0x1ff\n", 6, 4, 0xff, &v, &error));
    g_assert_nonnull(strstr(error->message, "out of range"));
}

static void
test_dec_bool_word(void)
{
    gint64 v;
    gboolean b;
    char *w = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_true(zpcid_attr_parse_dec(P, "291\n", 4, 0, G_MAXUINT32, &v, NULL));
    g_assert_cmpint(v, ==, 291);
    g_assert_false(zpcid_attr_parse_dec(P, "-1\n", 3, 0, 10, &v, &error));
    g_clear_error(&error);
    g_assert_false(zpcid_attr_parse_dec(P, "12a\n", 4, 0, 100, &v, &error));
    g_clear_error(&error);
    g_assert_false(zpcid_attr_parse_dec(P, "99999999999999999999\n", 21, 0, G_MAXINT64, &v,
                                        &error));
    g_clear_error(&error);
    g_assert_true(zpcid_attr_parse_bool(P, "1\n", 2, &b, NULL));
    g_assert_true(b);
    g_assert_true(zpcid_attr_parse_bool(P, "0\n", 2, &b, NULL));
    g_assert_false(b);
    g_assert_false(zpcid_attr_parse_bool(P, "2\n", 2, &b, &error));
    g_clear_error(&error);
    g_assert_true(zpcid_attr_parse_word(P, "(null)\n", 7, &w, NULL));
    g_assert_null(w);
    g_assert_true(zpcid_attr_parse_word(P, "vfio-pci\n", 9, &w, NULL));
    g_assert_cmpstr(w, ==, "vfio-pci");
    g_free(w);
    g_assert_false(zpcid_attr_parse_word(P, "a b\n", 4, &w, &error));
}

static void
test_ebcdic(void)
{
    /* "ROCE EXPRESS2" in EBCDIC 037, blank-padded to 64 bytes. */
    guint8 data[64];
    static const guint8 text[] = {0xd9, 0xd6, 0xc3, 0xc5, 0x40, 0xc5, 0xe7, 0xd7,
                                  0xd9, 0xc5, 0xe2, 0xe2, 0xf2};
    g_autofree char *s = NULL;
    g_autofree char *odd = NULL;
    static const guint8 weird[] = {0x81, 0x00, 0xff, 0x5b};

    memset(data, 0x40, sizeof(data));
    memcpy(data, text, sizeof(text));
    s = zpcid_ebcdic_to_utf8(data, sizeof(data));
    g_assert_cmpstr(s, ==, "ROCE EXPRESS2");
    odd = zpcid_ebcdic_to_utf8(weird, sizeof(weird));
    g_assert_cmpstr(odd, ==, "a ?$");
}

static void
test_cpuinfo(void)
{
    const char *old_format = "vendor_id       : IBM/S390\n"
                             "# processors    : 2\n"
                             "features\t: esan3 zarch stfle msa ldisp eimm dfp edat etf3eh highgprs "
                             "te vx vxd vxe gs vxe2 vxp sort dflt vxp2 nnpa pcimio sie \n"
                             "facilities      : 0 1 2 3 69 71 72 153\n"
                             "processor 0: version = FF,  identification = 0133E8,  machine = 3931\n";
    const char *new_format = "vendor_id       : IBM/S390\n"
                             "features\t: esan3 zarch\n"
                             "cpu number      : 0\n"
                             "machine         : 8561\n";
    g_autoptr(ZpcidCpuInfo) a = zpcid_cpuinfo_parse(old_format);
    g_autoptr(ZpcidCpuInfo) b = zpcid_cpuinfo_parse(new_format);
    g_autoptr(ZpcidCpuInfo) c = zpcid_cpuinfo_parse("garbage\n: :\nmachine = zz\n");

    g_assert_true(a->is_s390);
    g_assert_true(zpcid_cpuinfo_has_feature(a, "sie"));
    g_assert_false(zpcid_cpuinfo_has_feature(a, "si"));
    g_assert_cmpint(zpcid_cpuinfo_has_facility(a, 69), ==, 1);
    g_assert_cmpint(zpcid_cpuinfo_has_facility(a, 70), ==, 0);
    g_assert_cmpint(a->machine_type, ==, 0x3931);
    g_assert_cmpint(b->machine_type, ==, 0x8561);
    g_assert_cmpint(zpcid_cpuinfo_has_facility(b, 69), ==, -1);
    g_assert_false(c->is_s390);
    g_assert_cmpint(c->machine_type, ==, -1);
}

static void
test_sysinfo(void)
{
    g_autoptr(ZpcidSysInfo) lpar =
        zpcid_sysinfo_parse("Manufacturer:         IBM\nLPAR Number:          1F\n"
                            "LPAR Name:            LP01    \n");
    g_autoptr(ZpcidSysInfo) kvm = zpcid_sysinfo_parse(
        "LPAR Number:          1F\nVM00 Name:            KVMguest\n"
        "VM00 Control Program: KVM/Linux       \n");
    g_autoptr(ZpcidSysInfo) zvm =
        zpcid_sysinfo_parse("LPAR Name:  LP02\nVM00 Control Program: z/VM    7.3.0   \n");
    g_autoptr(ZpcidSysInfo) none = zpcid_sysinfo_parse("");

    g_assert_cmpint(lpar->hypervisor, ==, ZPCID_HYPERVISOR_LPAR);
    g_assert_cmpstr(lpar->lpar_name, ==, "LP01");
    g_assert_cmpint(kvm->hypervisor, ==, ZPCID_HYPERVISOR_KVM);
    g_assert_cmpint(zvm->hypervisor, ==, ZPCID_HYPERVISOR_ZVM);
    g_assert_cmpint(none->hypervisor, ==, ZPCID_HYPERVISOR_UNKNOWN);
}

static void
test_kconfig_modules(void)
{
    g_autoptr(GHashTable) config = zpcid_kconfig_parse(
        "#\n# comment\nCONFIG_VFIO_PCI=m\nCONFIG_S390_IOMMU=y\n# CONFIG_VFIO_NOIOMMU is not set\n"
        "CONFIG_LOCALVERSION=\"-s390x\"\nCONFIG_BROKEN\n");
    g_autoptr(GHashTable) dep = zpcid_modules_list_parse(
        "kernel/drivers/vfio/pci/vfio-pci.ko.xz: kernel/drivers/vfio/vfio.ko.xz\n"
        "kernel/drivers/vfio/vfio.ko.xz:\n\nkernel/arch/s390/kvm/kvm.ko\n");

    g_assert_cmpstr(g_hash_table_lookup(config, "CONFIG_VFIO_PCI"), ==, "m");
    g_assert_cmpstr(g_hash_table_lookup(config, "CONFIG_S390_IOMMU"), ==, "y");
    g_assert_cmpstr(g_hash_table_lookup(config, "CONFIG_VFIO_NOIOMMU"), ==, "n");
    g_assert_cmpstr(g_hash_table_lookup(config, "CONFIG_LOCALVERSION"), ==, "-s390x");
    g_assert_null(g_hash_table_lookup(config, "CONFIG_BROKEN"));
    g_assert_true(g_hash_table_contains(dep, "vfio_pci"));
    g_assert_true(g_hash_table_contains(dep, "vfio"));
    g_assert_true(g_hash_table_contains(dep, "kvm"));
    g_assert_cmpuint(g_hash_table_size(dep), ==, 3);
}

static void
test_machine_types(void)
{
    static const gint excluded[] = {0x2817, 0x2818, 0x2827, 0x2828, 0x2964, 0x2965};

    for (gsize i = 0; i < G_N_ELEMENTS(excluded); i++)
        g_assert_true(zpcid_machine_type_excludes_interpretation(excluded[i]));
    g_assert_false(zpcid_machine_type_excludes_interpretation(0x3906));
    g_assert_false(zpcid_machine_type_excludes_interpretation(0x3931));
    g_assert_false(zpcid_machine_type_excludes_interpretation(0x1234));
    g_assert_cmpstr(zpcid_machine_type_name(0x3931), ==, "IBM z16 A01");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/attr/hex", test_hex);
    g_test_add_func("/attr/dec-bool-word", test_dec_bool_word);
    g_test_add_func("/attr/ebcdic", test_ebcdic);
    g_test_add_func("/hostinfo/cpuinfo", test_cpuinfo);
    g_test_add_func("/hostinfo/sysinfo", test_sysinfo);
    g_test_add_func("/hostinfo/kconfig-modules", test_kconfig_modules);
    g_test_add_func("/hostinfo/machine-types", test_machine_types);
    return g_test_run();
}
