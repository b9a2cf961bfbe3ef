#include "function.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "attr.h"
#include "error.h"
#include "spec.h"

#define UTIL_STRING_LENGTH 64

static ZpcidFunction *
function_new(void)
{
    ZpcidFunction *f = g_new0(ZpcidFunction, 1);

    f->ref_count = 1;
    f->fid = f->function_handle = f->uid = f->index = ZPCID_UNKNOWN;
    f->pchid = f->pfgid = f->pft = f->vfn = f->port = f->fidparm = ZPCID_UNKNOWN;
    for (guint i = 0; i < G_N_ELEMENTS(f->pfip); i++)
        f->pfip[i] = ZPCID_UNKNOWN;
    f->uid_is_unique = f->mio_enabled = -1;
    f->vendor_id = f->device_id = f->subsystem_vendor_id = f->subsystem_id = ZPCID_UNKNOWN;
    f->class_code = f->iommu_group = f->sriov_numvfs = ZPCID_UNKNOWN;
    f->slot_power = -1;
    f->virtfns = g_ptr_array_new_with_free_func(g_free);
    f->netdevs = g_ptr_array_new_with_free_func(g_free);
    f->blockdevs = g_ptr_array_new_with_free_func(g_free);
    f->errors = g_ptr_array_new_with_free_func(g_free);
    return f;
}

ZpcidFunction *
zpcid_function_ref(ZpcidFunction *function)
{
    g_atomic_int_inc(&function->ref_count);
    return function;
}

void
zpcid_function_unref(ZpcidFunction *f)
{
    if (f == NULL || !g_atomic_int_dec_and_test(&f->ref_count))
        return;
    g_free(f->address);
    g_free(f->devpath);
    g_free(f->util_string);
    g_free(f->driver);
    g_free(f->driver_override);
    g_free(f->physfn);
    g_ptr_array_unref(f->virtfns);
    g_ptr_array_unref(f->netdevs);
    g_ptr_array_unref(f->blockdevs);
    g_ptr_array_unref(f->errors);
    g_free(f);
}

ZpcidFunction *
zpcid_function_new_standby(guint32 fid)
{
    ZpcidFunction *f = function_new();

    f->fid = fid;
    f->slot_power = 0;
    return f;
}

/* A missing attribute only means an older kernel; anything else is worth reporting. */
static void
note_error(ZpcidFunction *f, GError *error)
{
    if (!zpcid_error_is_not_found(error))
        g_ptr_array_add(f->errors, g_strdup(error->message));
}

static char *
read_attr(ZpcidFunction *f, ZpcidDir *dir, const char *name, gsize *len)
{
    g_autoptr(GError) error = NULL;
    char *data = zpcid_dir_read(dir, name, ZPCID_ATTR_MAX_SIZE, len, &error);

    if (data == NULL)
        note_error(f, error);
    return data;
}

static void
read_hex(ZpcidFunction *f, ZpcidDir *dir, const char *name, guint digits, guint64 max,
         gint64 *out)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    gsize len;
    g_autofree char *data = read_attr(f, dir, name, &len);
    guint64 v;

    if (data == NULL)
        return;
    path = g_build_filename(dir->path, name, NULL);
    if (zpcid_attr_parse_hex(path, data, len, digits, max, &v, &error))
        *out = (gint64)v;
    else
        note_error(f, error);
}

static void
read_dec(ZpcidFunction *f, ZpcidDir *dir, const char *name, gint64 max, gint64 *out)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    gsize len;
    g_autofree char *data = read_attr(f, dir, name, &len);

    if (data == NULL)
        return;
    path = g_build_filename(dir->path, name, NULL);
    if (!zpcid_attr_parse_dec(path, data, len, 0, max, out, &error)) {
        *out = ZPCID_UNKNOWN;
        note_error(f, error);
    }
}

static void
read_bool(ZpcidFunction *f, ZpcidDir *dir, const char *name, gint *out)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    gsize len;
    g_autofree char *data = read_attr(f, dir, name, &len);
    gboolean v;

    if (data == NULL)
        return;
    path = g_build_filename(dir->path, name, NULL);
    if (zpcid_attr_parse_bool(path, data, len, &v, &error))
        *out = v ? 1 : 0;
    else
        note_error(f, error);
}

static void
read_util_string(ZpcidFunction *f, ZpcidDir *dir)
{
    gsize len;
    g_autofree char *data = read_attr(f, dir, "util_string", &len);

    if (data == NULL)
        return;
    if (len != UTIL_STRING_LENGTH) {
        g_autofree char *path = g_build_filename(dir->path, "util_string", NULL);
        g_ptr_array_add(f->errors,
                        g_strdup_printf(_("The file “%s” holds %zu"
                                          " bytes instead of the 64 bytes of a utility string."),
                                        path, len));
        return;
    }
    f->util_string = zpcid_ebcdic_to_utf8((const guint8 *)data, len);
}

/* Name of the symlink target, or NULL (and nothing noted) when the link does not exist. */
static char *
read_link_name(ZpcidFunction *f, ZpcidDir *dir, const char *name)
{
    g_autoptr(GError) error = NULL;
    char *target = zpcid_dir_read_link_name(dir, name, &error);

    if (target == NULL)
        note_error(f, error);
    return target;
}

static char *
read_link_address(ZpcidFunction *f, ZpcidDir *dir, const char *name)
{
    g_autofree char *target = read_link_name(f, dir, name);

    if (target != NULL && !zpcid_pci_address_is_valid(target)) {
        g_autofree char *path = g_build_filename(dir->path, name, NULL);
        g_ptr_array_add(f->errors,
                        g_strdup_printf(_("The link “%s” points to “%s”, which is not a PCI device."),
                                        path, target));
        return NULL;
    }
    return g_steal_pointer(&target);
}

static void
read_driver_override(ZpcidFunction *f, ZpcidDir *dir)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    gsize len;
    g_autofree char *data = read_attr(f, dir, "driver_override", &len);

    if (data == NULL)
        return;
    path = g_build_filename(dir->path, "driver_override", NULL);
    if (!zpcid_attr_parse_word(path, data, len, &f->driver_override, &error))
        note_error(f, error);
}

static void
read_iommu_group(ZpcidFunction *f, ZpcidDir *dir)
{
    g_autofree char *group = read_link_name(f, dir, "iommu_group");
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;

    if (group == NULL)
        return;
    path = g_build_filename(dir->path, "iommu_group", NULL);
    if (!zpcid_attr_parse_dec(path, group, strlen(group), 0, G_MAXINT32, &f->iommu_group, &error)) {
        f->iommu_group = ZPCID_UNKNOWN;
        note_error(f, error);
    }
}

static void
read_virtfns(ZpcidFunction *f, ZpcidDir *dir)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) names = zpcid_dir_list(dir, &error);

    if (names == NULL) {
        note_error(f, error);
        return;
    }
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        char *vf;

        if (!g_str_has_prefix(name, "virtfn"))
            continue;
        vf = read_link_address(f, dir, name);
        if (vf != NULL)
            g_ptr_array_add(f->virtfns, vf);
    }
}

static void
read_pfip(ZpcidFunction *f, ZpcidDir *dir)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDir) pfip = zpcid_dir_open(dir, "pfip", &error);

    if (pfip == NULL) {
        note_error(f, error);
        return;
    }
    for (guint i = 0; i < G_N_ELEMENTS(f->pfip); i++) {
        char name[16];
        g_snprintf(name, sizeof(name), "segment%u", i);
        read_hex(f, pfip, name, 2, 0xff, &f->pfip[i]);
    }
}

/* sys/bus/pci/devices/<addr> links to ../../../devices/...; keep "sys/devices/..." so that
 * uevent DEVPATHs and class links can be matched against it. */
static char *
resolve_devpath(ZpcidHost *host, const char *address)
{
    g_autofree char *rel = g_build_filename("sys/bus/pci/devices", address, NULL);
    g_autofree char *target = zpcid_host_read_link(host, rel, NULL);
    const char *p;

    if (target == NULL)
        return g_steal_pointer(&rel);
    p = target;
    while (g_str_has_prefix(p, "../"))
        p += 3;
    return g_build_filename("sys", p, NULL);
}

gboolean
zpcid_function_read_identity(ZpcidDir *device, gint64 *fid, gint64 *uid, GError **error)
{
    g_autoptr(ZpcidFunction) f = function_new();

    read_hex(f, device, "function_id", 8, G_MAXUINT32, &f->fid);
    read_hex(f, device, "uid", 8, G_MAXUINT32, &f->uid);
    if (f->errors->len > 0) {
        g_set_error_literal(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED,
                            g_ptr_array_index(f->errors, 0));
        return FALSE;
    }
    /* Every zPCI function has a function_id; without one the directory is gone (or never
     * was a zPCI function), which callers must not mistake for a FID. */
    if (f->fid == ZPCID_UNKNOWN) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND,
                    _("The device “%s” has no function_id: it is gone or not a zPCI function."),
                    device->path);
        return FALSE;
    }
    *fid = f->fid;
    *uid = f->uid;
    return TRUE;
}

ZpcidFunction *
zpcid_function_load(ZpcidHost *host, const char *address, GError **error)
{
    g_autoptr(ZpcidFunction) f = NULL;
    g_autoptr(ZpcidDir) dir = NULL;
    g_autofree char *rel = NULL;

    if (!zpcid_pci_address_is_valid(address)) {
        g_autofree char *quoted = g_strescape(address, NULL);
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("“%s” is not a PCI address of the form 0005:00:00.0."), quoted);
        return NULL;
    }
    rel = g_build_filename("sys/bus/pci/devices", address, NULL);
    dir = zpcid_host_open_dir(host, rel, error);
    if (dir == NULL)
        return NULL;

    f = function_new();
    f->address = g_strdup(address);
    f->devpath = resolve_devpath(host, address);

    read_hex(f, dir, "function_id", 8, G_MAXUINT32, &f->fid);
    read_hex(f, dir, "function_handle", 8, G_MAXUINT32, &f->function_handle);
    read_hex(f, dir, "uid", 8, G_MAXUINT32, &f->uid);
    read_bool(f, dir, "uid_is_unique", &f->uid_is_unique);
    read_dec(f, dir, "index", G_MAXUINT32, &f->index);
    read_hex(f, dir, "pchid", 4, 0xffff, &f->pchid);
    read_hex(f, dir, "pfgid", 2, 0xff, &f->pfgid);
    read_hex(f, dir, "pft", 2, 0xff, &f->pft);
    read_hex(f, dir, "vfn", 4, 0xffff, &f->vfn);
    read_dec(f, dir, "port", G_MAXINT32, &f->port);
    read_hex(f, dir, "fidparm", 2, 0xff, &f->fidparm);
    read_bool(f, dir, "mio_enabled", &f->mio_enabled);
    read_pfip(f, dir);
    read_util_string(f, dir);

    read_hex(f, dir, "vendor", 4, 0xffff, &f->vendor_id);
    read_hex(f, dir, "device", 4, 0xffff, &f->device_id);
    read_hex(f, dir, "subsystem_vendor", 4, 0xffff, &f->subsystem_vendor_id);
    read_hex(f, dir, "subsystem_device", 4, 0xffff, &f->subsystem_id);
    read_hex(f, dir, "class", 6, 0xffffff, &f->class_code);

    f->driver = read_link_name(f, dir, "driver");
    read_driver_override(f, dir);
    read_iommu_group(f, dir);
    f->physfn = read_link_address(f, dir, "physfn");
    /* The kernel links virtfnN only from an SR-IOV PF, which always has sriov_numvfs;
     * listing the whole directory of every other function was an eighth of a scan. */
    if (zpcid_dir_has(dir, "sriov_numvfs"))
        read_virtfns(f, dir);
    read_dec(f, dir, "sriov_numvfs", G_MAXUINT16, &f->sriov_numvfs);

    return g_steal_pointer(&f);
}

gint
zpcid_slot_read_power(ZpcidHost *host, guint32 fid, GError **error)
{
    g_autofree char *rel = g_strdup_printf("sys/bus/pci/slots/%08x/power", fid);
    g_autofree char *path = zpcid_host_display_path(host, rel);
    gsize len;
    g_autofree char *data = zpcid_host_read(host, rel, ZPCID_ATTR_MAX_SIZE, &len, error);
    gboolean on;

    if (data == NULL || !zpcid_attr_parse_bool(path, data, len, &on, error))
        return -1;
    return on ? 1 : 0;
}

char *
zpcid_sysfs_link_owner(const char *target)
{
    g_auto(GStrv) parts = g_strsplit(target, "/", -1);

    for (guint i = g_strv_length(parts); i > 0; i--) {
        if (zpcid_pci_address_is_valid(parts[i - 1]))
            return g_strdup(parts[i - 1]);
    }
    return NULL;
}

ZpcidFunctionState
zpcid_function_get_state(const ZpcidFunction *f)
{
    if (f->address == NULL)
        return ZPCID_FUNCTION_STATE_STANDBY;
    if (f->driver == NULL)
        return ZPCID_FUNCTION_STATE_UNBOUND;
    if (g_str_equal(f->driver, ZPCID_VFIO_DRIVER))
        return ZPCID_FUNCTION_STATE_VFIO;
    return ZPCID_FUNCTION_STATE_HOST;
}

const char *
zpcid_function_state_to_string(ZpcidFunctionState state)
{
    switch (state) {
    case ZPCID_FUNCTION_STATE_HOST:
        return "host";
    case ZPCID_FUNCTION_STATE_VFIO:
        return "vfio";
    case ZPCID_FUNCTION_STATE_UNBOUND:
        return "unbound";
    case ZPCID_FUNCTION_STATE_STANDBY:
        return "standby";
    }
    return "unknown";
}

char *
zpcid_function_dup_id(const ZpcidFunction *f)
{
    return g_strdup_printf("%08x", (guint32)f->fid);
}

static gboolean
strv_equal(GPtrArray *a, GPtrArray *b)
{
    if (a->len != b->len)
        return FALSE;
    for (guint i = 0; i < a->len; i++) {
        if (!g_str_equal(g_ptr_array_index(a, i), g_ptr_array_index(b, i)))
            return FALSE;
    }
    return TRUE;
}

gboolean
zpcid_function_equal(const ZpcidFunction *a, const ZpcidFunction *b)
{
    return g_strcmp0(a->address, b->address) == 0 && a->fid == b->fid &&
           a->function_handle == b->function_handle && a->uid == b->uid &&
           a->index == b->index && a->pchid == b->pchid && a->pfgid == b->pfgid &&
           a->pft == b->pft && a->vfn == b->vfn && a->port == b->port &&
           a->fidparm == b->fidparm && memcmp(a->pfip, b->pfip, sizeof(a->pfip)) == 0 &&
           a->uid_is_unique == b->uid_is_unique && a->mio_enabled == b->mio_enabled &&
           g_strcmp0(a->util_string, b->util_string) == 0 && a->vendor_id == b->vendor_id &&
           a->device_id == b->device_id && a->subsystem_vendor_id == b->subsystem_vendor_id &&
           a->subsystem_id == b->subsystem_id && a->class_code == b->class_code &&
           g_strcmp0(a->driver, b->driver) == 0 &&
           g_strcmp0(a->driver_override, b->driver_override) == 0 &&
           a->iommu_group == b->iommu_group && g_strcmp0(a->physfn, b->physfn) == 0 &&
           strv_equal(a->virtfns, b->virtfns) && a->sriov_numvfs == b->sriov_numvfs &&
           strv_equal(a->netdevs, b->netdevs) && strv_equal(a->blockdevs, b->blockdevs) &&
           a->slot_power == b->slot_power && strv_equal(a->errors, b->errors);
}
