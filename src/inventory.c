#include "inventory.h"

#include <dirent.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attr.h"
#include "error.h"
#include "spec.h"

struct _ZpcidInventory {
    GObject parent;
    ZpcidHost *host;
    GHashTable *by_fid;     /* guint32 fid -> ZpcidFunction */
    GHashTable *by_address; /* address -> ZpcidFunction (not owned) */
    GPtrArray *errors;
};

enum { SIGNAL_ADDED, SIGNAL_REMOVED, SIGNAL_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_TYPE(ZpcidInventory, zpcid_inventory, G_TYPE_OBJECT)

static void
zpcid_inventory_finalize(GObject *object)
{
    ZpcidInventory *self = ZPCID_INVENTORY(object);

    g_hash_table_unref(self->by_address);
    g_hash_table_unref(self->by_fid);
    g_ptr_array_unref(self->errors);
    zpcid_host_unref(self->host);
    G_OBJECT_CLASS(zpcid_inventory_parent_class)->finalize(object);
}

static void
zpcid_inventory_class_init(ZpcidInventoryClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = zpcid_inventory_finalize;

    signals[SIGNAL_ADDED] =
        g_signal_new("function-added", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
    signals[SIGNAL_REMOVED] =
        g_signal_new("function-removed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
    signals[SIGNAL_CHANGED] =
        g_signal_new("function-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 2, G_TYPE_POINTER, G_TYPE_POINTER);
}

static void
zpcid_inventory_init(ZpcidInventory *self)
{
    self->by_fid = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                         (GDestroyNotify)zpcid_function_unref);
    self->by_address = g_hash_table_new(g_str_hash, g_str_equal);
    self->errors = g_ptr_array_new_with_free_func(g_free);
}

ZpcidInventory *
zpcid_inventory_new(ZpcidHost *host)
{
    ZpcidInventory *self = g_object_new(ZPCID_TYPE_INVENTORY, NULL);

    self->host = zpcid_host_ref(host);
    return self;
}

ZpcidHost *
zpcid_inventory_get_host(ZpcidInventory *self)
{
    return self->host;
}

/* Holders: interfaces and disks whose sysfs path runs through a function's directory. */
typedef struct {
    GHashTable *netdevs;   /* address -> GPtrArray of names */
    GHashTable *blockdevs; /* address -> GPtrArray of names */
} Holders;

static void
holders_clear(Holders *h)
{
    g_clear_pointer(&h->netdevs, g_hash_table_unref);
    g_clear_pointer(&h->blockdevs, g_hash_table_unref);
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Deeper than any class device below a PCI function (.../nvme/nvme0/nvme0n1/nvme0n1p1 is 4);
 * only bounds what a hostile tree can make us walk. */
#define CANDIDATE_DEPTH 16

/* Adds the names of all directories below @dir to @into, without following links (sysfs's
 * device tree is a tree of real directories) and without entering another PCI function. */
static void
collect_dir_names(int dir_fd, guint depth, GHashTable *into)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *ent;

    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((ent = readdir(d)) != NULL) {
        struct stat st;
        int sub;

        if (g_str_equal(ent->d_name, ".") || g_str_equal(ent->d_name, "..") ||
            zpcid_pci_address_is_valid(ent->d_name))
            continue;
        if (ent->d_type == DT_UNKNOWN) {
            if (fstatat(dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                !S_ISDIR(st.st_mode))
                continue;
        } else if (ent->d_type != DT_DIR) {
            continue;
        }
        g_hash_table_add(into, g_strdup(ent->d_name));
        if (depth + 1 >= CANDIDATE_DEPTH)
            continue;
        sub = openat(dirfd(d), ent->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
            collect_dir_names(sub, depth + 1, into);
            close(sub);
        }
    }
    closedir(d);
}

/* The class links that may name @address: a class link is named after the device directory
 * it points to, and the owner of that directory is the last PCI function on its path, so
 * only names of directories inside the function's own directory can qualify. Reading those
 * few links instead of all of them keeps a uevent's cost independent of the host's size. */
static GHashTable *
candidate_names(ZpcidHost *host, const char *address)
{
    g_autofree char *rel = g_build_filename("sys/bus/pci/devices", address, NULL);
    g_autoptr(ZpcidDir) dir = zpcid_host_open_dir(host, rel, NULL);
    GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    if (dir != NULL)
        collect_dir_names(dir->fd, 0, names);
    return names;
}

static void
scan_class(ZpcidHost *host, const char *class_rel, gboolean disks_only, const char *only_address,
           GHashTable *candidates, GHashTable *into)
{
    g_autoptr(ZpcidDir) dir = zpcid_host_open_dir(host, class_rel, NULL);
    g_autoptr(GPtrArray) names = NULL;
    g_autoptr(GHashTable) known = NULL;

    if (dir == NULL)
        return;
    if (candidates != NULL) {
        /* Asked by name, the class directory is not even listed. */
        GHashTableIter iter;
        gpointer key;

        names = g_ptr_array_new_with_free_func(g_free);
        g_hash_table_iter_init(&iter, candidates);
        while (g_hash_table_iter_next(&iter, &key, NULL))
            g_ptr_array_add(names, g_strdup(key));
        g_ptr_array_sort(names, compare_names);
    } else {
        names = zpcid_dir_list(dir, NULL);
        if (names == NULL)
            return;
        known = g_hash_table_new(g_str_hash, g_str_equal);
        for (guint i = 0; i < names->len; i++)
            g_hash_table_add(known, g_ptr_array_index(names, i));
    }
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *target = zpcid_dir_read_link(dir, name, NULL);
        g_autofree char *address = NULL;
        GPtrArray *list;

        if (target == NULL)
            continue;
        if (disks_only) {
            /* A partition sits below its disk (.../vda/vda1); the disk stands for it. */
            g_autofree char *dirname = g_path_get_dirname(target);
            g_autofree char *parent = g_path_get_basename(dirname);
            gboolean listed = known != NULL
                                  ? g_hash_table_contains(known, parent)
                                  : !g_str_equal(parent, ".") && !g_str_equal(parent, "..") &&
                                        zpcid_dir_has(dir, parent);
            if (listed)
                continue;
        }
        address = zpcid_sysfs_link_owner(target);
        if (address == NULL || (only_address != NULL && !g_str_equal(address, only_address)))
            continue;
        list = g_hash_table_lookup(into, address);
        if (list == NULL) {
            list = g_ptr_array_new_with_free_func(g_free);
            g_hash_table_insert(into, g_strdup(address), list);
        }
        g_ptr_array_add(list, g_strdup(name));
    }
}

static void
holders_scan(ZpcidHost *host, const char *only_address, Holders *h)
{
    g_autoptr(GHashTable) candidates =
        only_address != NULL ? candidate_names(host, only_address) : NULL;

    h->netdevs =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
    h->blockdevs =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
    scan_class(host, "sys/class/net", FALSE, only_address, candidates, h->netdevs);
    scan_class(host, "sys/class/block", TRUE, only_address, candidates, h->blockdevs);
}

static void
copy_names(GPtrArray *to, GPtrArray *from)
{
    if (from == NULL)
        return;
    for (guint i = 0; i < from->len; i++)
        g_ptr_array_add(to, g_strdup(g_ptr_array_index(from, i)));
}

/* Slot power, or -1 when there is no slot; unreadable slots are noted in @errors. */
static gint
read_slot_power(ZpcidHost *host, guint32 fid, GPtrArray *errors)
{
    g_autoptr(GError) error = NULL;
    gint power = zpcid_slot_read_power(host, fid, &error);

    if (power < 0 && !zpcid_error_is_not_found(error) && errors != NULL)
        g_ptr_array_add(errors, g_strdup(error->message));
    return power;
}

static ZpcidFunction *
load_function(ZpcidInventory *self, const char *address, Holders *holders)
{
    g_autoptr(GError) error = NULL;
    ZpcidFunction *f = zpcid_function_load(self->host, address, &error);

    if (f == NULL)
        return NULL;
    copy_names(f->netdevs, g_hash_table_lookup(holders->netdevs, address));
    copy_names(f->blockdevs, g_hash_table_lookup(holders->blockdevs, address));
    if (f->fid != ZPCID_UNKNOWN)
        f->slot_power = read_slot_power(self->host, (guint32)f->fid, f->errors);
    return f;
}

/* Installs @f (or removes @fid when @f is NULL) and tells listeners what changed. */
static void
replace_function(ZpcidInventory *self, guint32 fid, ZpcidFunction *f)
{
    ZpcidFunction *old = g_hash_table_lookup(self->by_fid, GUINT_TO_POINTER(fid));
    g_autoptr(ZpcidFunction) old_ref = old != NULL ? zpcid_function_ref(old) : NULL;

    if (old == NULL && f == NULL)
        return;
    if (old != NULL && f != NULL && zpcid_function_equal(old, f)) {
        zpcid_function_unref(f);
        return;
    }
    if (old != NULL && old->address != NULL)
        g_hash_table_remove(self->by_address, old->address);
    if (f == NULL) {
        g_hash_table_remove(self->by_fid, GUINT_TO_POINTER(fid));
        g_signal_emit(self, signals[SIGNAL_REMOVED], 0, old_ref);
        return;
    }
    g_hash_table_replace(self->by_fid, GUINT_TO_POINTER(fid), f);
    if (f->address != NULL)
        g_hash_table_replace(self->by_address, f->address, f);
    if (old_ref == NULL)
        g_signal_emit(self, signals[SIGNAL_ADDED], 0, f);
    else
        g_signal_emit(self, signals[SIGNAL_CHANGED], 0, old_ref, f);
}

static GPtrArray *
list_slots(ZpcidHost *host, GPtrArray *errors)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDir) dir = zpcid_host_open_dir(host, "sys/bus/pci/slots", &error);
    g_autoptr(GPtrArray) names = NULL;
    GPtrArray *fids = g_ptr_array_new();

    if (dir == NULL) {
        if (!zpcid_error_is_not_found(error))
            g_ptr_array_add(errors, g_strdup(error->message));
        return fids;
    }
    names = zpcid_dir_list(dir, &error);
    if (names == NULL) {
        g_ptr_array_add(errors, g_strdup(error->message));
        return fids;
    }
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        char hex[16];
        guint64 fid;

        /* zPCI slots are named by FID as 8 hex digits; other hotplug drivers use others. */
        if (strlen(name) != 8)
            continue;
        g_snprintf(hex, sizeof(hex), "0x%s", name);
        if (zpcid_parse_id(hex, G_MAXUINT32, &fid, NULL))
            g_ptr_array_add(fids, GUINT_TO_POINTER((guint32)fid));
    }
    return fids;
}

gboolean
zpcid_inventory_scan(ZpcidInventory *self, GError **error)
{
    g_autoptr(ZpcidDir) dir = NULL;
    g_autoptr(GPtrArray) names = NULL;
    g_autoptr(GPtrArray) slots = NULL;
    g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_autoptr(GPtrArray) stale = g_ptr_array_new();
    g_autoptr(GError) local_error = NULL;
    Holders holders = {0};
    GHashTableIter iter;
    gpointer key;

    g_ptr_array_set_size(self->errors, 0);
    dir = zpcid_host_open_dir(self->host, "sys/bus/pci/devices", &local_error);
    if (dir == NULL && !zpcid_error_is_not_found(local_error)) {
        g_propagate_error(error, g_steal_pointer(&local_error));
        return FALSE;
    }
    if (dir != NULL) {
        names = zpcid_dir_list(dir, error);
        if (names == NULL)
            return FALSE;
    }
    holders_scan(self->host, NULL, &holders);
    for (guint i = 0; names != NULL && i < names->len; i++) {
        const char *address = g_ptr_array_index(names, i);
        ZpcidFunction *f;

        if (!zpcid_pci_address_is_valid(address)) {
            g_autofree char *quoted = g_strescape(address, NULL);
            g_ptr_array_add(self->errors,
                            g_strdup_printf(_("The entry “%s” in “%s” is not a PCI address and was "
                                              "ignored."),
                                            quoted, dir->path));
            continue;
        }
        f = load_function(self, address, &holders);
        if (f == NULL)
            continue; /* vanished while we looked */
        /* Only zPCI functions have a FID; other PCI devices are not ours to manage. */
        if (f->fid == ZPCID_UNKNOWN) {
            if (f->errors->len > 0)
                g_ptr_array_add(self->errors,
                                g_strdup_printf(_("The PCI function “%s” was ignored: %s"), address,
                                                (char *)g_ptr_array_index(f->errors, 0)));
            zpcid_function_unref(f);
            continue;
        }
        if (g_hash_table_contains(seen, GUINT_TO_POINTER((guint32)f->fid))) {
            g_ptr_array_add(self->errors,
                            g_strdup_printf(_("The PCI function “%s” reports the FID 0x%08x, which "
                                              "another function already has; it was ignored."),
                                            address, (guint32)f->fid));
            zpcid_function_unref(f);
            continue;
        }
        g_hash_table_add(seen, GUINT_TO_POINTER((guint32)f->fid));
        replace_function(self, (guint32)f->fid, f);
    }
    holders_clear(&holders);

    slots = list_slots(self->host, self->errors);
    for (guint i = 0; i < slots->len; i++) {
        guint32 fid = GPOINTER_TO_UINT(g_ptr_array_index(slots, i));
        if (g_hash_table_contains(seen, GUINT_TO_POINTER(fid)))
            continue;
        g_hash_table_add(seen, GUINT_TO_POINTER(fid));
        zpcid_inventory_refresh_slot(self, fid);
    }

    g_hash_table_iter_init(&iter, self->by_fid);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
        if (!g_hash_table_contains(seen, key))
            g_ptr_array_add(stale, key);
    }
    for (guint i = 0; i < stale->len; i++)
        replace_function(self, GPOINTER_TO_UINT(g_ptr_array_index(stale, i)), NULL);
    return TRUE;
}

void
zpcid_inventory_refresh_address(ZpcidInventory *self, const char *address)
{
    ZpcidFunction *old = zpcid_inventory_lookup_address(self, address);
    ZpcidFunction *f;
    Holders holders = {0};

    if (!zpcid_pci_address_is_valid(address))
        return;
    holders_scan(self->host, address, &holders);
    f = load_function(self, address, &holders);
    holders_clear(&holders);

    if (f == NULL || f->fid == ZPCID_UNKNOWN) {
        g_clear_pointer(&f, zpcid_function_unref);
        if (old != NULL) {
            guint32 fid = (guint32)old->fid;
            /* A function that left the configured state may stay behind as standby. */
            replace_function(self, fid, NULL);
            zpcid_inventory_refresh_slot(self, fid);
        }
        return;
    }
    if (old != NULL && old->fid != f->fid)
        replace_function(self, (guint32)old->fid, NULL);
    replace_function(self, (guint32)f->fid, f);
}

void
zpcid_inventory_refresh_slot(ZpcidInventory *self, guint32 fid)
{
    ZpcidFunction *current = zpcid_inventory_lookup_fid(self, fid);
    gint power;

    if (current != NULL && current->address != NULL) {
        /* A configured function: its slot's power is part of its snapshot. */
        g_autofree char *address = g_strdup(current->address);
        zpcid_inventory_refresh_address(self, address);
        return;
    }
    power = read_slot_power(self->host, fid, NULL);
    if (power < 0) {
        replace_function(self, fid, NULL);
        return;
    }
    {
        ZpcidFunction *standby = zpcid_function_new_standby(fid);
        standby->slot_power = power;
        replace_function(self, fid, standby);
    }
}

static gint
compare_fid(gconstpointer a, gconstpointer b)
{
    const ZpcidFunction *fa = *(ZpcidFunction *const *)a;
    const ZpcidFunction *fb = *(ZpcidFunction *const *)b;
    return fa->fid < fb->fid ? -1 : fa->fid > fb->fid;
}

GPtrArray *
zpcid_inventory_list(ZpcidInventory *self)
{
    GPtrArray *list =
        g_ptr_array_new_full(g_hash_table_size(self->by_fid), (GDestroyNotify)zpcid_function_unref);
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, self->by_fid);
    while (g_hash_table_iter_next(&iter, NULL, &value))
        g_ptr_array_add(list, zpcid_function_ref(value));
    g_ptr_array_sort(list, compare_fid);
    return list;
}

void
zpcid_inventory_foreach(ZpcidInventory *self,
                        void (*func)(ZpcidFunction *function, gpointer user_data),
                        gpointer user_data)
{
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, self->by_fid);
    while (g_hash_table_iter_next(&iter, NULL, &value))
        func(value, user_data);
}

guint
zpcid_inventory_get_count(ZpcidInventory *self)
{
    return g_hash_table_size(self->by_fid);
}

ZpcidFunction *
zpcid_inventory_lookup_fid(ZpcidInventory *self, guint32 fid)
{
    return g_hash_table_lookup(self->by_fid, GUINT_TO_POINTER(fid));
}

ZpcidFunction *
zpcid_inventory_lookup_address(ZpcidInventory *self, const char *address)
{
    return g_hash_table_lookup(self->by_address, address);
}

ZpcidFunction *
zpcid_inventory_resolve(ZpcidInventory *self, const char *text, GError **error)
{
    ZpcidSpec spec;
    ZpcidFunction *f = NULL;
    g_autofree char *canonical = NULL;

    if (!zpcid_spec_parse(text, &spec, error))
        return NULL;
    switch (spec.kind) {
    case ZPCID_SPEC_FID:
        f = zpcid_inventory_lookup_fid(self, spec.id);
        break;
    case ZPCID_SPEC_ADDRESS: {
        g_autofree char *address = zpcid_pci_address_format(&spec.address);
        f = zpcid_inventory_lookup_address(self, address);
        break;
    }
    case ZPCID_SPEC_UID: {
        GHashTableIter iter;
        gpointer value;
        guint matches = 0;

        g_hash_table_iter_init(&iter, self->by_fid);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
            ZpcidFunction *candidate = value;
            if (candidate->uid == (gint64)spec.id) {
                f = candidate;
                matches++;
            }
        }
        /* Without UID checking the firmware does not keep UIDs unique. */
        if (matches > 1) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_CONFLICT,
                        _("The UID “0x%04x” is shared by %u functions; name the function by its "
                          "FID or PCI address."),
                        spec.id, matches);
            return NULL;
        }
        break;
    }
    }
    if (f == NULL) {
        canonical = zpcid_spec_format(&spec);
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND,
                    _("No zPCI function matches “%s” on this host."), canonical);
        return NULL;
    }
    return zpcid_function_ref(f);
}

GPtrArray *
zpcid_inventory_get_errors(ZpcidInventory *self)
{
    return self->errors;
}
