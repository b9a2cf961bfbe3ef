/* Parsers for the host-wide files the readiness engine reads: /proc/cpuinfo, /proc/sysinfo,
 * the kernel config and the module lists. Pure functions of their text, so they can be
 * unit-tested and fuzzed. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    gboolean is_s390;      /* "vendor_id : IBM/S390" */
    GPtrArray *features;   /* words of "features" */
    GHashTable *facilities; /* STFLE bits of "facilities" (GUINT_TO_POINTER(bit)) or NULL */
    gint machine_type;     /* "machine = 3931" / "machine : 3931", -1 unknown */
} ZpcidCpuInfo;

typedef enum {
    ZPCID_HYPERVISOR_UNKNOWN,
    ZPCID_HYPERVISOR_LPAR,
    ZPCID_HYPERVISOR_KVM,
    ZPCID_HYPERVISOR_ZVM,
    ZPCID_HYPERVISOR_OTHER,
} ZpcidHypervisor;

typedef struct {
    ZpcidHypervisor hypervisor;
    char *control_program; /* "VM00 Control Program" value of a guest */
    char *lpar_name;
} ZpcidSysInfo;

ZpcidCpuInfo *zpcid_cpuinfo_parse(const char *text);
void zpcid_cpuinfo_free(ZpcidCpuInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidCpuInfo, zpcid_cpuinfo_free)
gboolean zpcid_cpuinfo_has_feature(const ZpcidCpuInfo *info, const char *feature);
/* -1 when the kernel does not print facilities, else 0 or 1. */
gint zpcid_cpuinfo_has_facility(const ZpcidCpuInfo *info, guint bit);

ZpcidSysInfo *zpcid_sysinfo_parse(const char *text);
void zpcid_sysinfo_free(ZpcidSysInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidSysInfo, zpcid_sysinfo_free)

/* CONFIG_FOO=value lines; "# CONFIG_FOO is not set" gives "n". Keys keep the CONFIG_ prefix. */
GHashTable *zpcid_kconfig_parse(const char *text);

/* Module names (with '-' folded to '_') from modules.builtin or modules.dep text. */
GHashTable *zpcid_modules_list_parse(const char *text);
/* "vfio-pci" -> "vfio_pci", as the kernel names modules in /sys/module. */
char *zpcid_module_name_normalize(const char *name);

/* Marketing name of an IBM Z machine type, or NULL. */
const char *zpcid_machine_type_name(gint machine_type);
/* TRUE for the machine types on which KVM never allows zPCI interpretation. */
gboolean zpcid_machine_type_excludes_interpretation(gint machine_type);

G_END_DECLS
