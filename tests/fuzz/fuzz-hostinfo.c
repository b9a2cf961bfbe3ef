/* Fuzz target: /proc/cpuinfo, /proc/sysinfo, kernel config and module list parsers. */
#include <glib.h>
#include <stdint.h>

#include "hostinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = g_strndup((const char *)data, size);
    g_autoptr(ZpcidCpuInfo) cpu = zpcid_cpuinfo_parse(text);
    g_autoptr(ZpcidSysInfo) sys = zpcid_sysinfo_parse(text);
    g_autoptr(GHashTable) config = zpcid_kconfig_parse(text);
    g_autoptr(GHashTable) modules = zpcid_modules_list_parse(text);

    /* Any text gives a result, however empty. */
    g_assert_nonnull(sys);
    g_assert_nonnull(config);
    g_assert_nonnull(modules);
    g_assert_true(cpu->machine_type >= -1 && cpu->machine_type <= 0xffff);
    zpcid_cpuinfo_has_feature(cpu, "sie");
    zpcid_cpuinfo_has_facility(cpu, 69);
    return 0;
}
