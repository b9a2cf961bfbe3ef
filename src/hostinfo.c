#include "hostinfo.h"

#include <string.h>

/* Splits "key : value" (any blanks around the colon); NULL when there is no colon. */
static char *
line_value(const char *line, const char *key)
{
    gsize klen = strlen(key);
    const char *p;

    if (strncmp(line, key, klen) != 0)
        return NULL;
    p = line + klen;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    return g_strstrip(g_strdup(p));
}

static gint
parse_machine_field(const char *s)
{
    gint64 v = 0;
    guint digits = 0;

    while (*s == ' ')
        s++;
    for (; g_ascii_isxdigit(*s) && digits < 4; s++, digits++)
        v = v * 16 + g_ascii_xdigit_value(*s);
    /* Machine types are printed %04X: four hex digits that read as the decimal model. */
    return digits == 4 ? (gint)v : -1;
}

ZpcidCpuInfo *
zpcid_cpuinfo_parse(const char *text)
{
    ZpcidCpuInfo *info = g_new0(ZpcidCpuInfo, 1);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

    info->features = g_ptr_array_new_with_free_func(g_free);
    info->machine_type = -1;
    for (guint i = 0; lines[i] != NULL; i++) {
        const char *line = lines[i];
        g_autofree char *value = NULL;
        const char *m;

        if ((value = line_value(line, "vendor_id")) != NULL) {
            info->is_s390 = g_str_equal(value, "IBM/S390");
        } else if ((value = line_value(line, "features")) != NULL) {
            g_auto(GStrv) words = g_strsplit_set(value, " \t", -1);
            g_ptr_array_set_size(info->features, 0);
            for (guint w = 0; words[w] != NULL; w++) {
                if (*words[w] != '\0')
                    g_ptr_array_add(info->features, g_strdup(words[w]));
            }
        } else if ((value = line_value(line, "facilities")) != NULL) {
            g_auto(GStrv) words = g_strsplit_set(value, " \t", -1);
            if (info->facilities == NULL)
                info->facilities = g_hash_table_new(g_direct_hash, g_direct_equal);
            for (guint w = 0; words[w] != NULL; w++) {
                guint64 bit;
                if (*words[w] != '\0' && g_ascii_string_to_unsigned(words[w], 10, 0, 1 << 16, &bit,
                                                                  NULL))
                    g_hash_table_add(info->facilities, GUINT_TO_POINTER((guint)bit));
            }
        } else if (info->machine_type < 0 && (m = strstr(line, "machine = ")) != NULL) {
            /* Old format: "processor 0: version = 00,  identification = ...,  machine = 3931". */
            info->machine_type = parse_machine_field(m + strlen("machine = "));
        } else if (info->machine_type < 0 && (value = line_value(line, "machine")) != NULL) {
            /* Per-CPU blocks of newer kernels: "machine         : 3931". */
            info->machine_type = parse_machine_field(value);
        }
    }
    return info;
}

void
zpcid_cpuinfo_free(ZpcidCpuInfo *info)
{
    if (info == NULL)
        return;
    g_ptr_array_unref(info->features);
    if (info->facilities != NULL)
        g_hash_table_unref(info->facilities);
    g_free(info);
}

gboolean
zpcid_cpuinfo_has_feature(const ZpcidCpuInfo *info, const char *feature)
{
    for (guint i = 0; i < info->features->len; i++) {
        if (g_str_equal(g_ptr_array_index(info->features, i), feature))
            return TRUE;
    }
    return FALSE;
}

gint
zpcid_cpuinfo_has_facility(const ZpcidCpuInfo *info, guint bit)
{
    if (info->facilities == NULL)
        return -1;
    return g_hash_table_contains(info->facilities, GUINT_TO_POINTER(bit)) ? 1 : 0;
}

ZpcidSysInfo *
zpcid_sysinfo_parse(const char *text)
{
    ZpcidSysInfo *info = g_new0(ZpcidSysInfo, 1);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    gboolean has_lpar = FALSE;

    for (guint i = 0; lines[i] != NULL; i++) {
        g_autofree char *value = NULL;

        if ((value = line_value(lines[i], "VM00 Control Program")) != NULL) {
            g_free(info->control_program);
            info->control_program = g_steal_pointer(&value);
        } else if ((value = line_value(lines[i], "LPAR Name")) != NULL) {
            g_free(info->lpar_name);
            info->lpar_name = g_steal_pointer(&value);
            has_lpar = TRUE;
        } else if (g_str_has_prefix(lines[i], "LPAR Number")) {
            has_lpar = TRUE;
        }
    }
    /* STSI 3.2.2 (the VM00 lines) exists only above configuration level 2, i.e. in a guest. */
    if (info->control_program != NULL) {
        if (g_str_has_prefix(info->control_program, "KVM"))
            info->hypervisor = ZPCID_HYPERVISOR_KVM;
        else if (g_str_has_prefix(info->control_program, "z/VM"))
            info->hypervisor = ZPCID_HYPERVISOR_ZVM;
        else
            info->hypervisor = ZPCID_HYPERVISOR_OTHER;
    } else if (has_lpar) {
        info->hypervisor = ZPCID_HYPERVISOR_LPAR;
    }
    return info;
}

void
zpcid_sysinfo_free(ZpcidSysInfo *info)
{
    if (info == NULL)
        return;
    g_free(info->control_program);
    g_free(info->lpar_name);
    g_free(info);
}

GHashTable *
zpcid_kconfig_parse(const char *text)
{
    GHashTable *config = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

    for (guint i = 0; lines[i] != NULL; i++) {
        const char *line = lines[i];
        const char *eq;

        if (g_str_has_prefix(line, "# CONFIG_") && g_str_has_suffix(line, " is not set")) {
            gsize len = strlen(line) - strlen("# ") - strlen(" is not set");
            g_hash_table_replace(config, g_strndup(line + 2, len), g_strdup("n"));
        } else if (g_str_has_prefix(line, "CONFIG_") && (eq = strchr(line, '=')) != NULL) {
            g_autofree char *value = g_strdup(eq + 1);
            gsize vlen = strlen(value);
            /* String options are quoted; keep their content only. */
            if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
                value[vlen - 1] = '\0';
                memmove(value, value + 1, vlen - 1);
            }
            g_hash_table_replace(config, g_strndup(line, (gsize)(eq - line)),
                                 g_steal_pointer(&value));
        }
    }
    return config;
}

char *
zpcid_module_name_normalize(const char *name)
{
    char *n = g_strdup(name);
    g_strdelimit(n, "-", '_');
    return n;
}

GHashTable *
zpcid_modules_list_parse(const char *text)
{
    GHashTable *modules = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

    for (guint i = 0; lines[i] != NULL; i++) {
        g_autofree char *path = NULL;
        g_autofree char *base = NULL;
        const char *colon = strchr(lines[i], ':');
        char *dot;

        /* modules.dep: "kernel/drivers/vfio/pci/vfio-pci.ko.xz: deps"; modules.builtin: path. */
        path = colon != NULL ? g_strndup(lines[i], (gsize)(colon - lines[i]))
                             : g_strstrip(g_strdup(lines[i]));
        if (*path == '\0')
            continue;
        base = g_path_get_basename(path);
        dot = strstr(base, ".ko");
        if (dot == NULL)
            continue;
        *dot = '\0';
        g_hash_table_add(modules, zpcid_module_name_normalize(base));
    }
    return modules;
}

typedef struct {
    gint type;
    const char *name;
    gboolean no_interpretation;
} MachineType;

/* kvm_s390_pci_interp_allowed() refuses the machines without SHM support. */
static const MachineType machine_types[] = {
    {0x2817, "IBM z196", TRUE},      {0x2818, "IBM z114", TRUE},
    {0x2827, "IBM zEC12", TRUE},     {0x2828, "IBM zBC12", TRUE},
    {0x2964, "IBM z13", TRUE},       {0x2965, "IBM z13s", TRUE},
    {0x3906, "IBM z14", FALSE},      {0x3907, "IBM z14 ZR1", FALSE},
    {0x8561, "IBM z15 T01", FALSE},  {0x8562, "IBM z15 T02", FALSE},
    {0x3931, "IBM z16 A01", FALSE},  {0x3932, "IBM z16 A02", FALSE},
    {0x9175, "IBM z17 ME1", FALSE},
};

static const MachineType *
find_machine_type(gint type)
{
    for (gsize i = 0; i < G_N_ELEMENTS(machine_types); i++) {
        if (machine_types[i].type == type)
            return &machine_types[i];
    }
    return NULL;
}

const char *
zpcid_machine_type_name(gint machine_type)
{
    const MachineType *m = find_machine_type(machine_type);
    return m != NULL ? m->name : NULL;
}

gboolean
zpcid_machine_type_excludes_interpretation(gint machine_type)
{
    const MachineType *m = find_machine_type(machine_type);
    return m != NULL && m->no_interpretation;
}
