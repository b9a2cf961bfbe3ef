#include "guards.h"

#include <glib/gi18n-lib.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <string.h>

#include "attr.h"
#include "error.h"
#include "function.h"
#include "spec.h"

/* /proc/self/mountinfo and friends can be long on busy hosts. */
#define PROC_MAX_SIZE (4 * 1024 * 1024)

void
zpcid_guard_hit_free(ZpcidGuardHit *hit)
{
    if (hit == NULL)
        return;
    g_free(hit->message);
    g_free(hit);
}

static void
add_hit(GPtrArray *hits, ZpcidGuard guard, char *message)
{
    ZpcidGuardHit *hit = g_new0(ZpcidGuardHit, 1);

    hit->guard = guard;
    hit->message = message;
    g_ptr_array_add(hits, hit);
}

gboolean
zpcid_guard_check_identity(ZpcidDir *device, guint32 fid, gint64 uid, const char *label,
                           char **message)
{
    g_autoptr(GError) error = NULL;
    gint64 got_fid, got_uid;

    if (!zpcid_function_read_identity(device, &got_fid, &got_uid, &error)) {
        *message = g_strdup_printf(_("Function %s: its identity could not be read through "
                                     "“%s”: %s"),
                                   label, device->path, error->message);
        return FALSE;
    }
    if (got_fid == ZPCID_UNKNOWN) {
        *message = g_strdup_printf(_("Function %s: “%s” has no readable function_id; the "
                                     "device is gone or not a zPCI function."),
                                   label, device->path);
        return FALSE;
    }
    if (got_fid != (gint64)fid) {
        *message = g_strdup_printf(_("Function %s: the device “%s” now has the FID "
                                     "0x%08" PRIx64 "; the PCI address was reused."),
                                   label, device->path, got_fid);
        return FALSE;
    }
    if (uid != ZPCID_UNKNOWN && got_uid != uid) {
        *message = g_strdup_printf(_("Function %s: the device “%s” now has the UID "
                                     "0x%04" PRIx64 " instead of 0x%04"
                                     PRIx64 "."),
                                   label, device->path, got_uid, uid);
        return FALSE;
    }
    return TRUE;
}

gboolean
zpcid_guard_check_standby(ZpcidHost *host, guint32 fid, const char *label, char **message)
{
    g_autofree char *rel = NULL;
    g_autofree char *path = NULL;

    /* No slot (a VF) or an unreadable one: the device directory decides elsewhere. */
    if (zpcid_slot_read_power(host, fid, NULL) != 0)
        return TRUE;
    rel = g_strdup_printf("sys/bus/pci/slots/%08x/power", fid);
    path = zpcid_host_display_path(host, rel);
    *message = g_strdup_printf(_("Function %s is in standby (“%s” is 0): configure it first."),
                               label, path);
    return FALSE;
}

static void
check_iommu(ZpcidDir *device, const char *label, GPtrArray *hits)
{
    g_autofree char *group = zpcid_dir_read_link_name(device, "iommu_group", NULL);

    if (group == NULL)
        add_hit(hits, ZPCID_GUARD_IOMMU_GROUP,
                g_strdup_printf(_("Function %s has no IOMMU group (no “%s/iommu_group”), so "
                                  "vfio-pci cannot drive it."),
                                label, device->path));
}

static void
check_sriov(ZpcidDir *device, const char *label, GPtrArray *hits)
{
    g_autofree char *path = g_build_filename(device->path, "sriov_numvfs", NULL);
    gsize len;
    g_autofree char *data = zpcid_dir_read(device, "sriov_numvfs", ZPCID_ATTR_MAX_SIZE, &len, NULL);
    gint64 n;

    if (data == NULL || !zpcid_attr_parse_dec(path, data, len, 0, G_MAXUINT16, &n, NULL) || n == 0)
        return;
    add_hit(hits, ZPCID_GUARD_SRIOV,
            g_strdup_printf(_("Function %s is a physical function with %" PRId64
                              " virtual functions enabled (“%s”)."),
                            label, n, path));
}

/* Names in the class directory @class_rel whose device sits on @address. */
static GPtrArray *
class_devices_of(ZpcidHost *host, const char *class_rel, const char *address)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(ZpcidDir) dir = zpcid_host_open_dir(host, class_rel, NULL);
    g_autoptr(GPtrArray) names = dir != NULL ? zpcid_dir_list(dir, NULL) : NULL;

    for (guint i = 0; names != NULL && i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *target = zpcid_dir_read_link(dir, name, NULL);

        g_autofree char *owner = target != NULL ? zpcid_sysfs_link_owner(target) : NULL;

        if (g_strcmp0(owner, address) == 0)
            g_ptr_array_add(out, g_strdup(name));
    }
    return out;
}

static char *
read_class_attr(ZpcidHost *host, const char *class_rel, const char *name, const char *attr)
{
    g_autofree char *rel = g_build_filename(class_rel, name, attr, NULL);
    char *data = zpcid_host_read(host, rel, ZPCID_ATTR_MAX_SIZE, NULL, NULL);

    if (data != NULL)
        g_strstrip(data);
    return data;
}

/* Interfaces with an address: IPv6 from proc/net/if_inet6 (last column), IPv4 from the
 * routes in proc/net/route (first column) and, on the live host, getifaddrs(). */
static GHashTable *
interfaces_with_addresses(ZpcidHost *host)
{
    GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autofree char *inet6 = zpcid_host_read(host, "proc/net/if_inet6", PROC_MAX_SIZE, NULL, NULL);
    g_autofree char *route = zpcid_host_read(host, "proc/net/route", PROC_MAX_SIZE, NULL, NULL);

    if (inet6 != NULL) {
        g_auto(GStrv) lines = g_strsplit(inet6, "\n", -1);
        for (guint i = 0; lines[i] != NULL; i++) {
            g_auto(GStrv) f = g_strsplit_set(g_strstrip(lines[i]), " \t", -1);
            guint n = g_strv_length(f);
            if (n >= 6 && *f[n - 1] != '\0')
                g_hash_table_add(set, g_strdup(f[n - 1]));
        }
    }
    if (route != NULL) {
        g_auto(GStrv) lines = g_strsplit(route, "\n", -1);
        /* The first line is the header ("Iface Destination ..."). */
        for (guint i = 1; lines[0] != NULL && lines[i] != NULL; i++) {
            g_auto(GStrv) f = g_strsplit_set(g_strstrip(lines[i]), " \t", 2);
            if (f[0] != NULL && *f[0] != '\0')
                g_hash_table_add(set, g_strdup(f[0]));
        }
    }
    if (zpcid_host_is_live(host)) {
        struct ifaddrs *ifa = NULL;
        if (getifaddrs(&ifa) == 0) {
            for (struct ifaddrs *p = ifa; p != NULL; p = p->ifa_next) {
                if (p->ifa_addr != NULL && p->ifa_name != NULL)
                    g_hash_table_add(set, g_strdup(p->ifa_name));
            }
            freeifaddrs(ifa);
        }
    }
    return set;
}

static void
check_net(ZpcidHost *host, const char *address, const char *label, GPtrArray *hits)
{
    g_autoptr(GPtrArray) ifaces = class_devices_of(host, "sys/class/net", address);
    g_autoptr(GHashTable) addressed = NULL;

    if (ifaces->len == 0)
        return;
    addressed = interfaces_with_addresses(host);
    for (guint i = 0; i < ifaces->len; i++) {
        const char *name = g_ptr_array_index(ifaces, i);
        g_autofree char *operstate = read_class_attr(host, "sys/class/net", name, "operstate");
        g_autofree char *flags_text = read_class_attr(host, "sys/class/net", name, "flags");
        guint64 flags = 0;
        gboolean up;

        if (flags_text != NULL)
            flags = g_ascii_strtoull(flags_text, NULL, 16);
        /* IFF_UP is the administrative state; operstate "up" covers a missing flags file. */
        up = (flags & IFF_UP) != 0 || g_strcmp0(operstate, "up") == 0;
        if (up)
            add_hit(hits, ZPCID_GUARD_NET,
                    g_strdup_printf(_("Function %s carries the network interface “%s”, which "
                                      "is up."),
                                    label, name));
        else if (g_hash_table_contains(addressed, name))
            add_hit(hits, ZPCID_GUARD_NET,
                    g_strdup_printf(_("Function %s carries the network interface “%s”, which "
                                      "has addresses."),
                                    label, name));
    }
}

typedef struct {
    char *majmin;
    char *source;
    char *mountpoint;
} Mount;

static void
mount_free(Mount *m)
{
    g_free(m->majmin);
    g_free(m->source);
    g_free(m->mountpoint);
    g_free(m);
}

/* proc/self/mountinfo: "id parent maj:min root mountpoint opts [tags] - fstype source super". */
static GPtrArray *
read_mounts(ZpcidHost *host)
{
    GPtrArray *mounts = g_ptr_array_new_with_free_func((GDestroyNotify)mount_free);
    g_autofree char *data = zpcid_host_read(host, "proc/self/mountinfo", PROC_MAX_SIZE, NULL, NULL);
    g_auto(GStrv) lines = NULL;

    if (data == NULL)
        return mounts;
    lines = g_strsplit(data, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        g_auto(GStrv) f = g_strsplit(lines[i], " ", -1);
        guint n = g_strv_length(f);
        Mount *m;
        guint sep;

        if (n < 5)
            continue;
        for (sep = 6; sep < n && !g_str_equal(f[sep], "-"); sep++)
            ;
        m = g_new0(Mount, 1);
        m->majmin = g_strdup(f[2]);
        m->mountpoint = g_strcompress(f[4]);
        m->source = sep + 2 < n ? g_strcompress(f[sep + 2]) : NULL;
        g_ptr_array_add(mounts, m);
    }
    return mounts;
}

/* Basenames of the /dev block devices in proc/swaps. */
static GPtrArray *
read_swaps(ZpcidHost *host)
{
    GPtrArray *swaps = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *data = zpcid_host_read(host, "proc/swaps", PROC_MAX_SIZE, NULL, NULL);
    g_auto(GStrv) lines = NULL;

    if (data == NULL)
        return swaps;
    lines = g_strsplit(data, "\n", -1);
    for (guint i = 1; lines[0] != NULL && lines[i] != NULL; i++) {
        g_auto(GStrv) f = g_strsplit_set(lines[i], " \t", 2);
        if (f[0] != NULL && g_str_has_prefix(f[0], "/dev/"))
            g_ptr_array_add(swaps, g_strcompress(f[0]));
    }
    return swaps;
}

/* A friendlier name for a holder: the device-mapper name (LVM, crypt) when there is one. */
static char *
holder_display(ZpcidHost *host, const char *holder)
{
    g_autofree char *dm = read_class_attr(host, "sys/class/block", holder, "dm/name");

    if (dm != NULL && *dm != '\0')
        return g_strdup_printf("%s (%s)", holder, dm);
    return g_strdup(holder);
}

static void
check_block(ZpcidHost *host, const char *address, const char *label, GPtrArray *hits)
{
    g_autoptr(GPtrArray) devs = class_devices_of(host, "sys/class/block", address);
    g_autoptr(GPtrArray) mounts = NULL;
    g_autoptr(GPtrArray) swaps = NULL;

    if (devs->len == 0)
        return;
    mounts = read_mounts(host);
    swaps = read_swaps(host);
    for (guint i = 0; i < devs->len; i++) {
        const char *name = g_ptr_array_index(devs, i);
        g_autofree char *majmin = read_class_attr(host, "sys/class/block", name, "dev");
        g_autofree char *devnode = g_strconcat("/dev/", name, NULL);
        g_autofree char *holders_rel = g_build_filename("sys/class/block", name, "holders", NULL);
        g_autoptr(ZpcidDir) holders_dir = zpcid_host_open_dir(host, holders_rel, NULL);
        g_autoptr(GPtrArray) holders = holders_dir != NULL ? zpcid_dir_list(holders_dir, NULL) : NULL;

        for (guint k = 0; k < mounts->len; k++) {
            Mount *m = g_ptr_array_index(mounts, k);
            if ((majmin != NULL && g_str_equal(m->majmin, majmin)) ||
                g_strcmp0(m->source, devnode) == 0) {
                add_hit(hits, ZPCID_GUARD_BLOCK,
                        g_strdup_printf(_("Function %s carries the block device “%s”, which is "
                                          "mounted on “%s”."),
                                        label, name, m->mountpoint));
                break;
            }
        }
        for (guint k = 0; k < swaps->len; k++) {
            if (g_str_equal(g_ptr_array_index(swaps, k), devnode)) {
                add_hit(hits, ZPCID_GUARD_BLOCK,
                        g_strdup_printf(_("Function %s carries the block device “%s”, which is "
                                          "used as swap."),
                                        label, name));
                break;
            }
        }
        if (holders != NULL && holders->len > 0) {
            g_autoptr(GPtrArray) shown = g_ptr_array_new_with_free_func(g_free);
            g_autofree char *list = NULL;
            for (guint k = 0; k < holders->len; k++)
                g_ptr_array_add(shown, holder_display(host, g_ptr_array_index(holders, k)));
            g_ptr_array_add(shown, NULL);
            list = g_strjoinv(", ", (char **)shown->pdata);
            add_hit(hits, ZPCID_GUARD_BLOCK,
                    g_strdup_printf(_("Function %s carries the block device “%s”, which is held "
                                      "by “%s” (device mapper, MD RAID or LVM)."),
                                    label, name, list));
        }
    }
}

void
zpcid_guards_check(ZpcidHost *host, ZpcidDir *device, const char *address, guint32 fid,
                   gint64 uid, guint which, const char *label, GPtrArray *hits)
{
    char *message = NULL;

    if ((which & ZPCID_GUARD_BIT(ZPCID_GUARD_IDENTITY)) &&
        !zpcid_guard_check_identity(device, fid, uid, label, &message))
        add_hit(hits, ZPCID_GUARD_IDENTITY, message);
    if ((which & ZPCID_GUARD_BIT(ZPCID_GUARD_STANDBY)) &&
        !zpcid_guard_check_standby(host, fid, label, &message))
        add_hit(hits, ZPCID_GUARD_STANDBY, message);
    if (which & ZPCID_GUARD_BIT(ZPCID_GUARD_IOMMU_GROUP))
        check_iommu(device, label, hits);
    if (which & ZPCID_GUARD_BIT(ZPCID_GUARD_SRIOV))
        check_sriov(device, label, hits);
    if (which & ZPCID_GUARD_BIT(ZPCID_GUARD_NET))
        check_net(host, address, label, hits);
    if (which & ZPCID_GUARD_BIT(ZPCID_GUARD_BLOCK))
        check_block(host, address, label, hits);
}
