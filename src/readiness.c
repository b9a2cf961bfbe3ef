#include "readiness.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gi18n-lib.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "hostinfo.h"

#define PROC_FILE_MAX (4 * 1024 * 1024)
#define KCONFIG_MAX   (16 * 1024 * 1024)
#define MODLIST_MAX   (16 * 1024 * 1024)

/* STFLE facility numbers (kernel-zpci.md §2.3). */
#define FACILITY_ZPCI 69
#define FACILITY_AEN  71
#define FACILITY_AIS  72

struct _ZpcidBootFacts {
    char *arch;
    char *release;
    ZpcidCpuInfo *cpu;
    ZpcidSysInfo *sys;
    GHashTable *kconfig; /* NULL when not found */
    char *kconfig_path;
    GHashTable *builtin;  /* NULL when not found */
    GHashTable *loadable; /* NULL when not found */
    gboolean s390x;
};

typedef struct {
    ZpcidHost *host;
    ZpcidInventory *inventory;
    ZpcidReport *report;

    const ZpcidBootFacts *boot;
} Facts;

static const struct {
    const char *id;
    const char *title;
} check_titles[] = {
    {"architecture", N_("Checking the CPU architecture")},
    {"machine-type", N_("Checking the machine type")},
    {"hypervisor", N_("Checking whether this is an LPAR or a guest")},
    {"zpci-facility", N_("Checking for the zPCI facility")},
    {"aen-ais-facilities", N_("Checking for adapter event and suppression facilities")},
    {"sie", N_("Checking for the SIE virtualization feature")},
    {"kvm-module", N_("Checking that the kvm module is loaded")},
    {"dev-kvm", N_("Checking for /dev/kvm")},
    {"kvm-cap-zpci-op", N_("Checking KVM for zPCI interpretation (capability 221)")},
    {"config-vfio-pci", N_("Checking the kernel for CONFIG_VFIO_PCI")},
    {"config-s390-iommu", N_("Checking the kernel for CONFIG_S390_IOMMU")},
    {"config-vfio-pci-zdev-kvm", N_("Checking the kernel for CONFIG_VFIO_PCI_ZDEV_KVM")},
    {"vfio-modules", N_("Checking the vfio, vfio_iommu_type1 and vfio_pci modules")},
    {"dev-vfio", N_("Checking for /dev/vfio/vfio")},
    {"functions", N_("Checking for configured zPCI functions")},
    {"iommu-groups", N_("Checking for one IOMMU group per zPCI function")},
    {"uid-checking", N_("Checking for UID checking")},
    {"secure-execution", N_("Checking for Secure Execution")},
    {"function-attributes", N_("Checking that every zPCI attribute could be read")},
};

const char *
zpcid_check_title(const char *id)
{
    for (gsize i = 0; i < G_N_ELEMENTS(check_titles); i++) {
        if (g_str_equal(check_titles[i].id, id))
            return _(check_titles[i].title);
    }
    return id;
}

static const char *
intern_id(const char *id)
{
    for (gsize i = 0; i < G_N_ELEMENTS(check_titles); i++) {
        if (g_str_equal(check_titles[i].id, id))
            return check_titles[i].id;
    }
    g_return_val_if_reached("unknown");
}

static void G_GNUC_PRINTF(6, 7)
    add_check(Facts *f, const char *id, ZpcidCheckStatus status, ZpcidAffects affects,
              const char *remedy, const char *summary_fmt, ...)
{
    ZpcidCheck *check = g_new0(ZpcidCheck, 1);
    va_list args;

    check->id = intern_id(id);
    check->status = status;
    check->affects = affects;
    va_start(args, summary_fmt);
    check->summary = g_strdup_vprintf(summary_fmt, args);
    va_end(args);
    check->detail = g_strdup("");
    check->remedy = g_strdup(remedy != NULL ? remedy : "");
    g_ptr_array_add(f->report->checks, check);
}

/* Sets the detail of the check added last. */
static void G_GNUC_PRINTF(2, 3) set_detail(Facts *f, const char *fmt, ...)
{
    ZpcidCheck *check = g_ptr_array_index(f->report->checks, f->report->checks->len - 1);
    va_list args;

    g_free(check->detail);
    va_start(args, fmt);
    check->detail = g_strdup_vprintf(fmt, args);
    va_end(args);
}

static void
check_free(ZpcidCheck *check)
{
    g_free(check->summary);
    g_free(check->detail);
    g_free(check->remedy);
    g_free(check);
}

void
zpcid_report_free(ZpcidReport *report)
{
    if (report == NULL)
        return;
    g_ptr_array_unref(report->checks);
    g_free(report);
}

static char *
read_text(ZpcidHost *host, const char *rel, gsize max)
{
    return zpcid_host_read(host, rel, max, NULL, NULL);
}

static char *
read_stripped(ZpcidHost *host, const char *rel)
{
    char *text = read_text(host, rel, ZPCID_ATTR_MAX_SIZE);
    return text != NULL ? g_strstrip(text) : NULL;
}

static char *
read_gzip(ZpcidHost *host, const char *rel, gsize max)
{
    gsize len;
    g_autofree char *packed = zpcid_host_read(host, rel, max, &len, NULL);
    g_autoptr(GZlibDecompressor) z = NULL;
    g_autoptr(GByteArray) out = NULL;
    guint8 buf[65536];
    gsize in_pos = 0;

    if (packed == NULL)
        return NULL;
    z = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
    out = g_byte_array_new();
    for (;;) {
        gsize read = 0, written = 0;
        GConverterResult r =
            g_converter_convert(G_CONVERTER(z), packed + in_pos, len - in_pos, buf, sizeof(buf),
                                G_CONVERTER_INPUT_AT_END, &read, &written, NULL);
        if (r == G_CONVERTER_ERROR)
            return NULL;
        in_pos += read;
        g_byte_array_append(out, buf, (guint)written);
        if (out->len > max)
            return NULL;
        if (r == G_CONVERTER_FINISHED)
            break;
    }
    g_byte_array_append(out, (const guint8 *)"", 1);
    return (char *)g_byte_array_free(g_steal_pointer(&out), FALSE);
}

ZpcidBootFacts *
zpcid_boot_facts_read(ZpcidHost *host)
{
    ZpcidBootFacts *f = g_new0(ZpcidBootFacts, 1);
    g_autofree char *cpuinfo = read_text(host, "proc/cpuinfo", PROC_FILE_MAX);
    g_autofree char *sysinfo = read_text(host, "proc/sysinfo", PROC_FILE_MAX);
    g_autofree char *config = NULL;

    f->arch = read_stripped(host, "proc/sys/kernel/arch");
    if (f->arch == NULL && zpcid_host_is_live(host)) {
        /* /proc/sys/kernel/arch is recent; the running kernel's uname says the same. */
        struct utsname u;
        if (uname(&u) == 0)
            f->arch = g_strdup(u.machine);
    }
    f->release = read_stripped(host, "proc/sys/kernel/osrelease");
    f->cpu = zpcid_cpuinfo_parse(cpuinfo != NULL ? cpuinfo : "");
    f->sys = zpcid_sysinfo_parse(sysinfo != NULL ? sysinfo : "");
    if (f->arch == NULL && f->cpu->is_s390)
        f->arch = g_strdup("s390x");
    f->s390x = g_strcmp0(f->arch, "s390x") == 0;

    if (f->release != NULL) {
        g_autofree char *rel = g_strdup_printf("boot/config-%s", f->release);
        config = read_text(host, rel, KCONFIG_MAX);
        if (config != NULL)
            f->kconfig_path = g_strconcat("/", rel, NULL);
    }
    if (config == NULL) {
        config = read_gzip(host, "proc/config.gz", KCONFIG_MAX);
        if (config != NULL)
            f->kconfig_path = g_strdup("/proc/config.gz");
    }
    if (config != NULL)
        f->kconfig = zpcid_kconfig_parse(config);

    if (f->release != NULL) {
        g_autofree char *builtin_rel =
            g_strdup_printf("lib/modules/%s/modules.builtin", f->release);
        g_autofree char *dep_rel = g_strdup_printf("lib/modules/%s/modules.dep", f->release);
        g_autofree char *builtin = read_text(host, builtin_rel, MODLIST_MAX);
        g_autofree char *dep = read_text(host, dep_rel, MODLIST_MAX);
        if (builtin != NULL)
            f->builtin = zpcid_modules_list_parse(builtin);
        if (dep != NULL)
            f->loadable = zpcid_modules_list_parse(dep);
    }
    return f;
}

void
zpcid_boot_facts_free(ZpcidBootFacts *f)
{
    if (f == NULL)
        return;
    g_free(f->arch);
    g_free(f->release);
    zpcid_cpuinfo_free(f->cpu);
    zpcid_sysinfo_free(f->sys);
    if (f->kconfig != NULL)
        g_hash_table_unref(f->kconfig);
    g_free(f->kconfig_path);
    if (f->builtin != NULL)
        g_hash_table_unref(f->builtin);
    if (f->loadable != NULL)
        g_hash_table_unref(f->loadable);
    g_free(f);
}

static void
check_architecture(Facts *f)
{
    if (f->boot->arch == NULL) {
        add_check(f, "architecture", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_BOTH,
                  _("Run zpcid on an IBM Z or LinuxONE host, or point --host-root at a complete "
                    "host tree."),
                  _("The CPU architecture could not be determined."));
        set_detail(f, _("Neither /proc/sys/kernel/arch nor /proc/cpuinfo could be read."));
        return;
    }
    if (f->boot->s390x) {
        add_check(f, "architecture", ZPCID_CHECK_PASS, ZPCID_AFFECTS_BOTH, NULL,
                  _("The host is an s390x machine."));
    } else {
        add_check(f, "architecture", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_BOTH,
                  _("zPCI passthrough exists only on IBM Z and LinuxONE; run zpcid there."),
                  _("The host architecture is “%s”, not s390x."), f->boot->arch);
    }
    set_detail(f, _("/proc/sys/kernel/arch reads “%s”."), f->boot->arch);
}

static void
check_machine_type(Facts *f)
{
    gint type = f->boot->cpu->machine_type;
    const char *name = zpcid_machine_type_name(type);
    g_autofree char *label = NULL;

    if (!f->boot->s390x) {
        add_check(f, "machine-type", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("The machine type applies to s390x hosts only."));
        return;
    }
    if (type < 0) {
        add_check(f, "machine-type", ZPCID_CHECK_WARN, ZPCID_AFFECTS_INTERPRETATION,
                  _("Check that /proc/cpuinfo is readable."),
                  _("The machine type could not be read."));
        set_detail(f, _("/proc/cpuinfo has no “machine” field."));
        return;
    }
    label = name != NULL ? g_strdup_printf("%04x (%s)", (guint)type, name)
                         : g_strdup_printf("%04x", (guint)type);
    if (zpcid_machine_type_excludes_interpretation(type)) {
        add_check(f, "machine-type", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_INTERPRETATION,
                  _("zPCI interpretation needs an IBM z14 or newer; on this machine guests use "
                    "intercepted passthrough, which still works."),
                  _("The machine type “%s” does not support zPCI interpretation."), label);
    } else {
        add_check(f, "machine-type", ZPCID_CHECK_PASS, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("The machine type “%s” supports zPCI interpretation."), label);
    }
    set_detail(f, _("/proc/cpuinfo reports machine = %04x."), (guint)type);
}

static void
check_hypervisor(Facts *f)
{
    const char *cp = f->boot->sys->control_program;

    if (!f->boot->s390x) {
        add_check(f, "hypervisor", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("The LPAR or guest question applies to s390x hosts only."));
        return;
    }
    switch (f->boot->sys->hypervisor) {
    case ZPCID_HYPERVISOR_LPAR:
        add_check(f, "hypervisor", ZPCID_CHECK_PASS, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("The host runs directly in an LPAR."));
        if (f->boot->sys->lpar_name != NULL)
            set_detail(f, _("/proc/sysinfo names the LPAR “%s” and shows no hypervisor above it."),
                       f->boot->sys->lpar_name);
        else
            set_detail(f, _("/proc/sysinfo shows no hypervisor above the LPAR."));
        return;
    case ZPCID_HYPERVISOR_KVM:
        add_check(f, "hypervisor", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_INTERPRETATION,
                  _("Run the guests on a host that owns an LPAR; nested guests fall back to "
                    "intercepted passthrough."),
                  _("The host is itself a KVM guest, where zPCI interpretation is not "
                    "available."));
        break;
    case ZPCID_HYPERVISOR_ZVM:
        add_check(f, "hypervisor", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_INTERPRETATION,
                  _("Run the guests on a host that owns an LPAR; z/VM guests fall back to "
                    "intercepted passthrough."),
                  _("The host is a z/VM guest, where zPCI interpretation is not available."));
        break;
    case ZPCID_HYPERVISOR_OTHER:
        add_check(f, "hypervisor", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_INTERPRETATION,
                  _("Run the guests on a host that owns an LPAR."),
                  _("The host is a guest of the hypervisor “%s”, where zPCI interpretation is not "
                    "available."),
                  cp);
        break;
    case ZPCID_HYPERVISOR_UNKNOWN:
        add_check(f, "hypervisor", ZPCID_CHECK_WARN, ZPCID_AFFECTS_INTERPRETATION,
                  _("Check that /proc/sysinfo is readable."),
                  _("Whether the host is an LPAR or a guest could not be determined."));
        set_detail(f, _("/proc/sysinfo is missing or has neither LPAR nor VM lines."));
        return;
    }
    set_detail(f, _("/proc/sysinfo reports “VM00 Control Program: %s”."), cp);
}

static void
check_facilities(Facts *f)
{
    gint zpci = zpcid_cpuinfo_has_facility(f->boot->cpu, FACILITY_ZPCI);
    gint aen = zpcid_cpuinfo_has_facility(f->boot->cpu, FACILITY_AEN);
    gint ais = zpcid_cpuinfo_has_facility(f->boot->cpu, FACILITY_AIS);
    guint functions = f->inventory != NULL ? zpcid_inventory_get_count(f->inventory) : 0;

    if (!f->boot->s390x) {
        add_check(f, "zpci-facility", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_BOTH, NULL,
                  _("The zPCI facility exists on s390x hosts only."));
        add_check(f, "aen-ais-facilities", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("The adapter facilities exist on s390x hosts only."));
        return;
    }
    if (zpci < 0) {
        /* Kernels that do not print facilities still show zPCI through its functions. */
        if (functions > 0) {
            add_check(f, "zpci-facility", ZPCID_CHECK_PASS, ZPCID_AFFECTS_BOTH, NULL,
                      _("zPCI is available: the kernel shows zPCI functions."));
        } else {
            add_check(f, "zpci-facility", ZPCID_CHECK_WARN, ZPCID_AFFECTS_BOTH,
                      _("Check for PCI functions in the LPAR's I/O configuration."),
                      _("Whether zPCI is available could not be determined."));
        }
        set_detail(f, _("/proc/cpuinfo has no “facilities” line."));
    } else if (zpci == 1) {
        add_check(f, "zpci-facility", ZPCID_CHECK_PASS, ZPCID_AFFECTS_BOTH, NULL,
                  _("The CPU offers the zPCI facility (69)."));
        set_detail(f, _("/proc/cpuinfo lists facility 69."));
    } else {
        add_check(f, "zpci-facility", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_BOTH,
                  _("Enable PCI for this LPAR or guest (for a KVM guest, the “zpci” CPU model "
                    "feature)."),
                  _("The CPU does not offer the zPCI facility (69), so the kernel shows no PCI "
                    "functions."));
        set_detail(f, _("/proc/cpuinfo lacks facility 69."));
    }

    if (aen == 1 && ais == 1) {
        add_check(f, "aen-ais-facilities", ZPCID_CHECK_PASS, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("The CPU offers adapter event notification (71) and interruption suppression "
                    "(72)."));
        set_detail(f, _("/proc/cpuinfo lists facilities 71 and 72."));
    } else if (aen < 0) {
        add_check(f, "aen-ais-facilities", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("The kernel does not list CPU facilities."));
    } else {
        add_check(f, "aen-ais-facilities", ZPCID_CHECK_WARN, ZPCID_AFFECTS_INTERPRETATION,
                  _("Use an LPAR on IBM z14 or newer; the kernel decides from firmware bits that "
                    "usually come with these facilities."),
                  _("The CPU lacks adapter event notification (71) or interruption suppression "
                    "(72), which interpreted zPCI interrupts rely on."));
        set_detail(f, _("/proc/cpuinfo: facility 71 %s, facility 72 %s."),
                   aen == 1 ? _("present") : _("absent"), ais == 1 ? _("present") : _("absent"));
    }
}

/* KVM matters to the interpretation verdict: kvm registers the zPCI hook that vfio-pci's zdev
 * code calls when a guest opens the function. Binding to vfio-pci itself works without it
 * (user-space drivers, or KVM loaded later), so these checks do not block passthrough. */
static void
check_kvm(Facts *f)
{
    gboolean sie = zpcid_cpuinfo_has_feature(f->boot->cpu, "sie");
    gboolean kvm_loaded = zpcid_host_exists(f->host, "sys/module/kvm");
    gboolean dev_kvm = zpcid_host_exists(f->host, "dev/kvm");

    if (!f->boot->s390x) {
        add_check(f, "sie", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("SIE exists on s390x hosts only."));
    } else if (sie) {
        add_check(f, "sie", ZPCID_CHECK_PASS, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("The CPU offers SIE, so this host can run KVM guests."));
        set_detail(f, _("/proc/cpuinfo lists the feature “sie”."));
    } else {
        add_check(f, "sie", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_INTERPRETATION,
                  _("Run on an LPAR, or enable nested virtualization on the KVM host (kvm "
                    "module parameter nested=1 and the sief2 CPU feature)."),
                  _("The CPU does not offer SIE, so this host cannot run KVM guests."));
        set_detail(f, _("/proc/cpuinfo does not list the feature “sie”."));
    }

    if (kvm_loaded) {
        add_check(f, "kvm-module", ZPCID_CHECK_PASS, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("The kvm module is loaded and has registered the zPCI KVM hook."));
        set_detail(f, _("/sys/module/kvm exists."));
    } else {
        add_check(f, "kvm-module", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_INTERPRETATION,
                  _("Load it with “modprobe kvm”; if that fails with “No such device”, the CPU "
                    "lacks SIE."),
                  _("The kvm module is not loaded, so vfio-pci has no zPCI KVM hook to call."));
        set_detail(f, _("/sys/module/kvm does not exist."));
    }

    if (dev_kvm) {
        add_check(f, "dev-kvm", ZPCID_CHECK_PASS, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("The device /dev/kvm exists."));
    } else {
        add_check(f, "dev-kvm", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_INTERPRETATION,
                  _("Load the kvm module; it creates /dev/kvm."),
                  _("The device /dev/kvm does not exist."));
    }
}

/* Returns the answer of KVM_CHECK_EXTENSION(@cap), or -1 with @why set. */
static gint
kvm_check_extension(Facts *f, guint cap, char **source, char **why)
{
    if (zpcid_host_is_live(f->host)) {
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int r;

        *source = g_strdup("ioctl(/dev/kvm, KVM_CHECK_EXTENSION)");
        if (fd < 0) {
            *why = g_strdup_printf(_("/dev/kvm could not be opened: %s."), g_strerror(errno));
            return -1;
        }
        r = ioctl(fd, KVM_CHECK_EXTENSION, (unsigned long)cap);
        close(fd);
        if (r < 0) {
            *why = g_strdup_printf(_("KVM_CHECK_EXTENSION failed: %s."), g_strerror(errno));
            return -1;
        }
        return r > 0 ? 1 : 0;
    }

    /* A host tree cannot answer an ioctl; it carries the answer the real host gave. */
    {
        g_autofree char *text =
            read_text(f->host, "fixture/kvm-check-extension", ZPCID_ATTR_MAX_SIZE);
        g_auto(GStrv) lines = NULL;

        *source = g_strdup("/fixture/kvm-check-extension");
        if (text == NULL) {
            *why = g_strdup(_("The host tree records no KVM_CHECK_EXTENSION answers."));
            return -1;
        }
        lines = g_strsplit(text, "\n", -1);
        for (guint i = 0; lines[i] != NULL; i++) {
            guint c, v;
            if (sscanf(lines[i], "%u %u", &c, &v) == 2 && c == cap)
                return v > 0 ? 1 : 0;
        }
        *why = g_strdup_printf(_("The host tree records no answer for capability %u."), cap);
        return -1;
    }
}

static void
check_kvm_cap(Facts *f)
{
    g_autofree char *source = NULL;
    g_autofree char *why = NULL;
    gint answer;

    if (!f->boot->s390x) {
        add_check(f, "kvm-cap-zpci-op", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("KVM_CAP_S390_ZPCI_OP exists on s390x hosts only."));
        return;
    }
    if (!zpcid_host_exists(f->host, "dev/kvm")) {
        add_check(f, "kvm-cap-zpci-op", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_INTERPRETATION,
                  _("Load the kvm module, then check again."),
                  _("KVM cannot be asked for zPCI interpretation because /dev/kvm does not "
                    "exist."));
        return;
    }
    answer = kvm_check_extension(f, ZPCID_KVM_CAP_S390_ZPCI_OP, &source, &why);
    if (answer == 1) {
        add_check(f, "kvm-cap-zpci-op", ZPCID_CHECK_PASS, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("KVM reports KVM_CAP_S390_ZPCI_OP: guests get interpreted zPCI."));
        set_detail(f, _("%s answered 1 for capability 221."), source);
    } else if (answer == 0) {
        add_check(f, "kvm-cap-zpci-op", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_INTERPRETATION,
                  _("Use an LPAR on IBM z14 or newer with a kernel built with "
                    "CONFIG_VFIO_PCI_ZDEV_KVM=y; QEMU otherwise falls back to intercepted "
                    "passthrough without a word."),
                  _("KVM does not report KVM_CAP_S390_ZPCI_OP, so guests get intercepted instead "
                    "of interpreted zPCI."));
        set_detail(f, _("%s answered 0 for capability 221."), source);
    } else {
        add_check(f, "kvm-cap-zpci-op", ZPCID_CHECK_WARN, ZPCID_AFFECTS_INTERPRETATION,
                  _("Run the check as root so that /dev/kvm can be opened."),
                  _("KVM could not be asked for KVM_CAP_S390_ZPCI_OP."));
        set_detail(f, "%s", why);
    }
}

/* "y", "m", "n" or NULL (config not found). */
static const char *
kconfig_value(Facts *f, const char *option)
{
    const char *v;

    if (f->boot->kconfig == NULL)
        return NULL;
    v = g_hash_table_lookup(f->boot->kconfig, option);
    return v != NULL ? v : "n";
}

static void
check_kconfig_option(Facts *f, const char *id, const char *option, ZpcidAffects affects,
                     gboolean module_ok, const char *missing_summary, const char *remedy)
{
    const char *v = kconfig_value(f, option);

    if (!f->boot->s390x) {
        add_check(f, id, ZPCID_CHECK_SKIP, affects, NULL,
                  _("The option “%s” matters on s390x hosts only."), option);
        return;
    }
    if (v == NULL) {
        add_check(f, id, ZPCID_CHECK_WARN, affects,
                  _("Install the kernel's config file as /boot/config-<release> or enable "
                    "CONFIG_IKCONFIG_PROC."),
                  _("The kernel configuration could not be found, so “%s” is unknown."), option);
        set_detail(f, _("Neither /boot/config-%s nor /proc/config.gz could be read."),
                   f->boot->release != NULL ? f->boot->release : "?");
        return;
    }
    if (g_str_equal(v, "y") || (module_ok && g_str_equal(v, "m"))) {
        add_check(f, id, ZPCID_CHECK_PASS, affects, NULL, _("The kernel has “%s=%s”."), option, v);
    } else {
        add_check(f, id, ZPCID_CHECK_FAIL, affects, remedy, "%s", missing_summary);
    }
    set_detail(f, _("%s sets “%s” to “%s”."), f->boot->kconfig_path, option, v);
}

static void
check_kconfig(Facts *f)
{
    check_kconfig_option(f, "config-vfio-pci", "CONFIG_VFIO_PCI", ZPCID_AFFECTS_BOTH, TRUE,
                         _("The kernel is built without vfio-pci (CONFIG_VFIO_PCI)."),
                         _("Install a kernel built with CONFIG_VFIO_PCI=m, such as Debian's 6.12 "
                           "kernel from bookworm-backports."));
    check_kconfig_option(f, "config-s390-iommu", "CONFIG_S390_IOMMU", ZPCID_AFFECTS_BOTH, FALSE,
                         _("The kernel is built without the s390 IOMMU driver "
                           "(CONFIG_S390_IOMMU)."),
                         _("Install a kernel built with CONFIG_S390_IOMMU=y."));
    check_kconfig_option(f, "config-vfio-pci-zdev-kvm", "CONFIG_VFIO_PCI_ZDEV_KVM",
                         ZPCID_AFFECTS_INTERPRETATION, FALSE,
                         _("The kernel is built without the s390 KVM extensions of vfio-pci "
                           "(CONFIG_VFIO_PCI_ZDEV_KVM), so zPCI interpretation is off."),
                         _("Install a kernel built with CONFIG_VFIO_PCI_ZDEV_KVM=y (kernel 6.0 or "
                           "newer)."));
}

typedef enum { MOD_LOADED, MOD_BUILTIN, MOD_LOADABLE, MOD_MISSING } ModuleState;

static ModuleState
module_state(Facts *f, const char *name)
{
    g_autofree char *rel = g_strdup_printf("sys/module/%s", name);
    const char *config_option = NULL;
    const char *v;

    if (zpcid_host_exists(f->host, rel))
        return MOD_LOADED;
    if (f->boot->builtin != NULL && g_hash_table_contains(f->boot->builtin, name))
        return MOD_BUILTIN;
    if (f->boot->loadable != NULL && g_hash_table_contains(f->boot->loadable, name))
        return MOD_LOADABLE;
    /* Without module lists, the config tells whether the module can exist at all. */
    if (g_str_equal(name, "vfio"))
        config_option = "CONFIG_VFIO";
    else if (g_str_equal(name, "vfio_pci"))
        config_option = "CONFIG_VFIO_PCI";
    else if (g_str_equal(name, "vfio_iommu_type1"))
        config_option = "CONFIG_VFIO_IOMMU_TYPE1";
    v = config_option != NULL ? kconfig_value(f, config_option) : NULL;
    if (f->boot->loadable == NULL && v != NULL && g_str_equal(v, "m"))
        return MOD_LOADABLE;
    if (f->boot->builtin == NULL && v != NULL && g_str_equal(v, "y"))
        return MOD_BUILTIN;
    return MOD_MISSING;
}

static void
check_vfio_modules(Facts *f)
{
    static const char *const names[] = {"vfio", "vfio_iommu_type1", "vfio_pci"};
    g_autoptr(GString) missing = g_string_new(NULL);
    g_autoptr(GString) unloaded = g_string_new(NULL);
    g_autoptr(GString) detail = g_string_new(NULL);
    gboolean vfio_present;

    if (!f->boot->s390x) {
        add_check(f, "vfio-modules", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_BOTH, NULL,
                  _("The vfio modules are checked on s390x hosts only."));
        add_check(f, "dev-vfio", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_BOTH, NULL,
                  _("/dev/vfio/vfio is checked on s390x hosts only."));
        return;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        ModuleState s = module_state(f, names[i]);
        const char *word = s == MOD_LOADED     ? "loaded"
                           : s == MOD_BUILTIN  ? "built-in"
                           : s == MOD_LOADABLE ? "not loaded"
                                               : "missing";
        g_string_append_printf(detail, "%s%s: %s", i > 0 ? ", " : "", names[i], word);
        if (s == MOD_MISSING)
            g_string_append_printf(missing, "%s%s", missing->len > 0 ? ", " : "", names[i]);
        else if (s == MOD_LOADABLE)
            g_string_append_printf(unloaded, "%s%s", unloaded->len > 0 ? ", " : "", names[i]);
    }
    if (missing->len > 0) {
        add_check(f, "vfio-modules", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_BOTH,
                  _("Install a kernel that ships the vfio modules (CONFIG_VFIO_PCI=m), such as "
                    "Debian's 6.12 kernel from bookworm-backports."),
                  _("The kernel lacks the modules “%s”."), missing->str);
    } else if (unloaded->len > 0) {
        add_check(f, "vfio-modules", ZPCID_CHECK_WARN, ZPCID_AFFECTS_BOTH,
                  _("Load them with “modprobe vfio-pci”, or let zpcid load them on the first "
                    "bind (option load-vfio-pci in zpcid.conf)."),
                  _("The modules “%s” are available but not loaded."), unloaded->str);
    } else {
        add_check(f, "vfio-modules", ZPCID_CHECK_PASS, ZPCID_AFFECTS_BOTH, NULL,
                  _("The vfio, vfio_iommu_type1 and vfio_pci modules are loaded or built in."));
    }
    set_detail(f, _("Module states from /sys/module and /lib/modules: %s."), detail->str);

    vfio_present = module_state(f, "vfio") == MOD_LOADED || module_state(f, "vfio") == MOD_BUILTIN;
    if (zpcid_host_exists(f->host, "dev/vfio/vfio")) {
        add_check(f, "dev-vfio", ZPCID_CHECK_PASS, ZPCID_AFFECTS_BOTH, NULL,
                  _("The VFIO container device /dev/vfio/vfio exists."));
    } else if (!vfio_present) {
        add_check(f, "dev-vfio", ZPCID_CHECK_WARN, ZPCID_AFFECTS_BOTH,
                  _("Load the vfio module; it creates /dev/vfio/vfio."),
                  _("The VFIO container device /dev/vfio/vfio does not exist yet."));
    } else {
        add_check(f, "dev-vfio", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_BOTH,
                  _("Check that devtmpfs is mounted on /dev and that udev is running."),
                  _("The vfio module is loaded but /dev/vfio/vfio does not exist."));
    }
}

typedef struct {
    guint configured, standby, without_group, broken;
    gint unique;
} FunctionCounts;

static void
count_function(ZpcidFunction *fn, gpointer user_data)
{
    FunctionCounts *c = user_data;

    if (fn->address == NULL) {
        c->standby++;
        return;
    }
    c->configured++;
    if (fn->uid_is_unique >= 0)
        c->unique = fn->uid_is_unique;
    if (fn->iommu_group == ZPCID_UNKNOWN)
        c->without_group++;
    if (fn->errors->len > 0)
        c->broken++;
}

/* Only when something is wrong: the first few offenders in FID order, so the detail is the
 * same on every call. */
static void
name_offenders(Facts *f, GString *no_group, GString *bad)
{
    g_autoptr(GPtrArray) list = zpcid_inventory_list(f->inventory);
    guint without_group = 0, broken = 0;

    for (guint i = 0; i < list->len; i++) {
        ZpcidFunction *fn = g_ptr_array_index(list, i);

        if (fn->address == NULL)
            continue;
        if (fn->iommu_group == ZPCID_UNKNOWN && ++without_group <= 8)
            g_string_append_printf(no_group, "%s%s", no_group->len > 0 ? ", " : "", fn->address);
        if (fn->errors->len > 0 && ++broken <= 8)
            g_string_append_printf(bad, "%s%s", bad->len > 0 ? " " : "",
                                   (char *)g_ptr_array_index(fn->errors, 0));
    }
}

static void
check_functions(Facts *f)
{
    g_autoptr(GString) no_group = g_string_new(NULL);
    g_autoptr(GString) bad = g_string_new(NULL);
    FunctionCounts counts = {.unique = -1};
    g_autofree char *uid_checking = read_stripped(f->host, "sys/firmware/clp/uid_checking");

    if (f->inventory != NULL) {
        zpcid_inventory_foreach(f->inventory, count_function, &counts);
        if (counts.without_group > 0 || counts.broken > 0)
            name_offenders(f, no_group, bad);
    }

    if (!f->boot->s390x && counts.configured == 0) {
        add_check(f, "functions", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_BOTH, NULL,
                  _("zPCI functions exist on s390x hosts only."));
    } else if (counts.configured > 0) {
        add_check(f, "functions", ZPCID_CHECK_PASS, ZPCID_AFFECTS_BOTH, NULL,
                  g_dngettext(GETTEXT_PACKAGE, "%u zPCI function is configured.",
                              "%u zPCI functions are configured.", counts.configured),
                  counts.configured);
        set_detail(f,
                   _("/sys/bus/pci/devices lists %u configured and /sys/bus/pci/slots %u "
                     "standby functions."),
                   counts.configured, counts.standby);
    } else if (counts.standby > 0) {
        add_check(f, "functions", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_BOTH,
                  _("Configure a function with “echo 1 > /sys/bus/pci/slots/<fid>/power” or "
                    "“chzdev”."),
                  g_dngettext(GETTEXT_PACKAGE, "No zPCI function is configured; %u is in standby.",
                              "No zPCI function is configured; %u are in standby.", counts.standby),
                  counts.standby);
    } else {
        add_check(f, "functions", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_BOTH,
                  _("Define PCI functions for this LPAR in the I/O configuration (HMC or IOCDS)."),
                  _("The host has no zPCI functions."));
        set_detail(f, _("/sys/bus/pci/devices and /sys/bus/pci/slots list no zPCI function."));
    }

    if (counts.configured == 0) {
        add_check(f, "iommu-groups", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_BOTH, NULL,
                  _("There is no configured function whose IOMMU group could be checked."));
    } else if (counts.without_group == 0) {
        add_check(f, "iommu-groups", ZPCID_CHECK_PASS, ZPCID_AFFECTS_BOTH, NULL,
                  _("Every configured zPCI function has its own IOMMU group."));
    } else {
        add_check(f, "iommu-groups", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_BOTH,
                  _("Boot a kernel with CONFIG_S390_IOMMU=y and do not disable the IOMMU on the "
                    "kernel command line."),
                  g_dngettext(GETTEXT_PACKAGE, "%u zPCI function has no IOMMU group: %s.",
                              "%u zPCI functions have no IOMMU group: %s.", counts.without_group),
                  counts.without_group, no_group->str);
        set_detail(f, _("The functions have no iommu_group link in sysfs."));
    }

    if (uid_checking != NULL &&
        (g_str_equal(uid_checking, "0") || g_str_equal(uid_checking, "1"))) {
        counts.unique = g_str_equal(uid_checking, "1");
    }
    if (counts.unique < 0) {
        add_check(f, "uid-checking", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_NONE, NULL,
                  _("UID checking could not be determined without a configured function."));
    } else if (counts.unique == 1) {
        add_check(f, "uid-checking", ZPCID_CHECK_PASS, ZPCID_AFFECTS_NONE, NULL,
                  _("UID checking is on: UIDs are unique and guests can mirror them."));
    } else {
        add_check(f, "uid-checking", ZPCID_CHECK_WARN, ZPCID_AFFECTS_NONE,
                  _("Enable UID checking in the LPAR's I/O configuration to give guests the host's "
                    "UIDs; until then use the auto or explicit uid policy."),
                  _("UID checking is off: UIDs may repeat, so guests cannot mirror host UIDs."));
    }
    if (counts.unique >= 0)
        set_detail(f,
                   uid_checking != NULL ? _("/sys/firmware/clp/uid_checking reads “%d”.")
                                        : _("The functions' uid_is_unique files read “%d”."),
                   counts.unique);

    if (counts.broken == 0) {
        add_check(f, "function-attributes", ZPCID_CHECK_PASS, ZPCID_AFFECTS_NONE, NULL,
                  _("Every zPCI attribute that the kernel provides could be read."));
    } else {
        add_check(f, "function-attributes", ZPCID_CHECK_WARN, ZPCID_AFFECTS_NONE,
                  _("Report the files named in the detail; the kernel or a tool changed them."),
                  g_dngettext(GETTEXT_PACKAGE, "%u zPCI function has unreadable attributes.",
                              "%u zPCI functions have unreadable attributes.", counts.broken),
                  counts.broken);
        set_detail(f, "%s", bad->str);
    }
}

static void
check_secure_execution(Facts *f)
{
    g_autofree char *host = read_stripped(f->host, "sys/firmware/uv/prot_virt_host");
    g_autofree char *guest = read_stripped(f->host, "sys/firmware/uv/prot_virt_guest");

    if (!f->boot->s390x) {
        add_check(f, "secure-execution", ZPCID_CHECK_SKIP, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("Secure Execution exists on s390x hosts only."));
        return;
    }
    if (g_strcmp0(guest, "1") == 0) {
        add_check(f, "secure-execution", ZPCID_CHECK_FAIL, ZPCID_AFFECTS_BOTH,
                  _("Run the guests on a host that is not itself a Secure Execution guest."),
                  _("The host is a Secure Execution guest and cannot run KVM guests."));
        set_detail(f, _("/sys/firmware/uv/prot_virt_guest reads “1”."));
    } else if (g_strcmp0(host, "1") == 0) {
        add_check(f, "secure-execution", ZPCID_CHECK_WARN, ZPCID_AFFECTS_INTERPRETATION,
                  _("Expect intercepted passthrough for protected guests; ordinary guests still "
                    "get interpretation."),
                  _("The host runs Secure Execution: protected (s390-pv) guests do not use zPCI "
                    "interpretation."));
        set_detail(f, _("/sys/firmware/uv/prot_virt_host reads “1”."));
    } else {
        add_check(f, "secure-execution", ZPCID_CHECK_PASS, ZPCID_AFFECTS_INTERPRETATION, NULL,
                  _("Secure Execution is not active, so it does not affect interpretation."));
        if (host != NULL)
            set_detail(f, _("/sys/firmware/uv/prot_virt_host reads “%s”."), host);
        else
            set_detail(f, _("/sys/firmware/uv/prot_virt_host does not exist."));
    }
}

ZpcidReport *
zpcid_readiness_evaluate(ZpcidHost *host, ZpcidInventory *inventory)
{
    g_autoptr(ZpcidBootFacts) boot = zpcid_boot_facts_read(host);

    return zpcid_readiness_evaluate_with(host, inventory, boot);
}

ZpcidReport *
zpcid_readiness_evaluate_with(ZpcidHost *host, ZpcidInventory *inventory,
                              const ZpcidBootFacts *boot)
{
    Facts f = {.host = host, .inventory = inventory, .boot = boot};
    ZpcidReport *report = g_new0(ZpcidReport, 1);

    report->checks = g_ptr_array_new_with_free_func((GDestroyNotify)check_free);
    f.report = report;

    check_architecture(&f);
    check_machine_type(&f);
    check_hypervisor(&f);
    check_facilities(&f);
    check_kvm(&f);
    check_kvm_cap(&f);
    check_kconfig(&f);
    check_vfio_modules(&f);
    check_functions(&f);
    check_secure_execution(&f);

    report->passthrough = zpcid_report_first_failure(report, ZPCID_AFFECTS_PASSTHROUGH) == NULL;
    report->interpretation =
        report->passthrough &&
        zpcid_report_first_failure(report, ZPCID_AFFECTS_INTERPRETATION) == NULL;
    return report;
}

const ZpcidCheck *
zpcid_report_find(const ZpcidReport *report, const char *id)
{
    for (guint i = 0; i < report->checks->len; i++) {
        const ZpcidCheck *c = g_ptr_array_index(report->checks, i);
        if (g_str_equal(c->id, id))
            return c;
    }
    return NULL;
}

const ZpcidCheck *
zpcid_report_first_failure(const ZpcidReport *report, ZpcidAffects verdict)
{
    for (guint i = 0; i < report->checks->len; i++) {
        const ZpcidCheck *c = g_ptr_array_index(report->checks, i);
        if (c->status == ZPCID_CHECK_FAIL && (c->affects & verdict) != 0)
            return c;
    }
    return NULL;
}

static const char *const status_names[] = {"pass", "warn", "fail", "skip"};

const char *
zpcid_check_status_to_string(ZpcidCheckStatus status)
{
    return status <= ZPCID_CHECK_SKIP ? status_names[status] : "fail";
}

gboolean
zpcid_check_status_from_string(const char *text, ZpcidCheckStatus *status)
{
    for (gsize i = 0; i < G_N_ELEMENTS(status_names); i++) {
        if (g_str_equal(text, status_names[i])) {
            *status = (ZpcidCheckStatus)i;
            return TRUE;
        }
    }
    return FALSE;
}
