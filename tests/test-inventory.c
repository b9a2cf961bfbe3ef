#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "inventory.h"
#include "test-common.h"

#define DEV1 "sys/devices/pci0001:00/0001:00:00.0"

static ZpcidInventory *
scan(const char *root)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidHost) host = zpcid_host_new(root, &error);
    ZpcidInventory *inv;

    g_assert_no_error(error);
    inv = zpcid_inventory_new(host);
    g_assert_true(zpcid_inventory_scan(inv, &error));
    g_assert_no_error(error);
    return inv;
}

static void
test_scan_ready_host(void)
{
    g_autofree char *root = test_host_path("z16-lpar-ready");
    g_autoptr(ZpcidInventory) inv = scan(root);
    g_autoptr(GPtrArray) list = zpcid_inventory_list(inv);
    ZpcidFunction *f;
    g_autoptr(ZpcidFunction) by_uid = NULL;
    g_autoptr(ZpcidFunction) by_addr = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_cmpuint(list->len, ==, 5);
    f = zpcid_inventory_lookup_fid(inv, 0x1822);
    g_assert_nonnull(f);
    g_assert_cmpstr(f->address, ==, "0001:00:00.0");
    g_assert_cmpstr(f->devpath, ==, DEV1);
    g_assert_cmpint(f->uid, ==, 1);
    g_assert_cmpint(f->uid_is_unique, ==, 1);
    g_assert_cmpint(f->index, ==, 1);
    g_assert_cmpint(f->pft, ==, 0x0a);
    g_assert_cmpint(f->vendor_id, ==, 0x15b3);
    g_assert_cmpint(f->class_code, ==, 0x020000);
    g_assert_cmpstr(f->driver, ==, "mlx5_core");
    g_assert_null(f->driver_override);
    g_assert_cmpint(f->iommu_group, >=, 0);
    g_assert_cmpint(f->slot_power, ==, 1);
    g_assert_cmpint(f->mio_enabled, >=, 0);
    g_assert_nonnull(f->util_string);
    g_assert_cmpuint(f->netdevs->len, ==, 1);
    g_assert_cmpuint(f->errors->len, ==, 0);
    g_assert_cmpint(zpcid_function_get_state(f), ==, ZPCID_FUNCTION_STATE_HOST);

    f = zpcid_inventory_lookup_fid(inv, 0x1823);
    g_assert_cmpuint(f->blockdevs->len, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(f->blockdevs, 0), ==, "nvme0n1");

    f = zpcid_inventory_lookup_fid(inv, 0x182c);
    g_assert_cmpuint(f->virtfns->len, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(f->virtfns, 0), ==, "0003:00:00.1");
    f = zpcid_inventory_lookup_fid(inv, 0x182d);
    g_assert_cmpstr(f->physfn, ==, "0003:00:00.0");

    f = zpcid_inventory_lookup_fid(inv, 0x182e);
    g_assert_null(f->address);
    g_assert_cmpint(zpcid_function_get_state(f), ==, ZPCID_FUNCTION_STATE_STANDBY);
    g_assert_cmpint(f->slot_power, ==, 0);

    by_uid = zpcid_inventory_resolve(inv, "uid:0x2", &error);
    g_assert_no_error(error);
    g_assert_cmpint(by_uid->fid, ==, 0x1823);
    by_addr = zpcid_inventory_resolve(inv, "0003:00:00.1", &error);
    g_assert_no_error(error);
    g_assert_cmpint(by_addr->fid, ==, 0x182d);
    g_assert_null(zpcid_inventory_resolve(inv, "0x99", &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "fid:0x00000099"));
    g_clear_error(&error);
    g_assert_null(zpcid_inventory_resolve(inv, "0005:00:00.0/../..", &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
}

typedef struct {
    guint added, removed, changed;
} Events;

static void
on_added(ZpcidInventory *inv, ZpcidFunction *f, Events *e)
{
    e->added++;
}

static void
on_removed(ZpcidInventory *inv, ZpcidFunction *f, Events *e)
{
    e->removed++;
}

static void
on_changed(ZpcidInventory *inv, ZpcidFunction *old, ZpcidFunction *f, Events *e)
{
    e->changed++;
}

static void
test_refresh_one(void)
{
    g_autofree char *root = test_copy_host("z16-lpar-ready");
    g_autoptr(ZpcidInventory) inv = scan(root);
    g_autofree char *driver = g_build_filename(root, DEV1, "driver", NULL);
    g_autofree char *link = g_build_filename(root, "sys/bus/pci/devices/0001:00:00.0", NULL);
    g_autofree char *moved = g_build_filename(root, "moved-link", NULL);
    Events e = {0};

    g_signal_connect(inv, "function-added", G_CALLBACK(on_added), &e);
    g_signal_connect(inv, "function-removed", G_CALLBACK(on_removed), &e);
    g_signal_connect(inv, "function-changed", G_CALLBACK(on_changed), &e);

    /* Nothing changed: no signal. */
    zpcid_inventory_refresh_address(inv, "0001:00:00.0");
    g_assert_cmpuint(e.changed, ==, 0);

    /* The driver goes away: one change, state unbound. */
    g_assert_cmpint(g_unlink(driver), ==, 0);
    zpcid_inventory_refresh_address(inv, "0001:00:00.0");
    g_assert_cmpuint(e.changed, ==, 1);
    g_assert_cmpint(zpcid_function_get_state(zpcid_inventory_lookup_fid(inv, 0x1822)), ==,
                    ZPCID_FUNCTION_STATE_UNBOUND);

    /* The function is deconfigured: removed, and its slot leaves it in standby. */
    g_assert_cmpint(g_rename(link, moved), ==, 0);
    test_write_file(root, "sys/bus/pci/slots/00001822/power", "0\n", -1);
    zpcid_inventory_refresh_address(inv, "0001:00:00.0");
    g_assert_cmpuint(e.removed, ==, 1);
    g_assert_cmpuint(e.added, ==, 1);
    g_assert_null(zpcid_inventory_lookup_fid(inv, 0x1822)->address);

    /* And comes back. */
    g_assert_cmpint(g_rename(moved, link), ==, 0);
    test_write_file(root, "sys/bus/pci/slots/00001822/power", "1\n", -1);
    zpcid_inventory_refresh_address(inv, "0001:00:00.0");
    g_assert_cmpuint(e.changed, ==, 2);
    g_assert_cmpstr(zpcid_inventory_lookup_fid(inv, 0x1822)->address, ==, "0001:00:00.0");

    /* Hostile names never reach a path. */
    zpcid_inventory_refresh_address(inv, "../../../etc");
    g_assert_cmpuint(zpcid_inventory_get_count(inv), ==, 5);
    test_remove_tree(root);
}

/* A uevent re-reads one function and looks for its interfaces and disks from its own
 * directory (not through every class link): on a generated host with PFs, VFs, netdevs,
 * partitioned and held disks, that must find exactly what the full scan found. */
static void
test_refresh_matches_scan(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *tmp = g_dir_make_tmp("zpcid-host-XXXXXX", &error);
    g_autofree char *root = g_build_filename(tmp, "host", NULL);
    const char *argv[] = {"python3", g_getenv("MKHOST"), root, "--functions", "48",
                          "--pf-with-vfs", "2", "--vfs-per-pf", "3", "--seed", "3", NULL};
    g_autoptr(ZpcidInventory) inv = NULL;
    g_autoptr(GPtrArray) list = NULL;
    guint netdevs = 0, blockdevs = 0;
    gint status;
    Events e = {0};

    g_assert_no_error(error);
    g_assert_nonnull(argv[1]);
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                               NULL, &status, &error));
    g_assert_no_error(error);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    inv = scan(root);
    g_signal_connect(inv, "function-added", G_CALLBACK(on_added), &e);
    g_signal_connect(inv, "function-removed", G_CALLBACK(on_removed), &e);
    g_signal_connect(inv, "function-changed", G_CALLBACK(on_changed), &e);
    list = zpcid_inventory_list(inv);
    for (guint i = 0; i < list->len; i++) {
        ZpcidFunction *f = g_ptr_array_index(list, i);
        if (f->address == NULL)
            continue;
        netdevs += f->netdevs->len;
        blockdevs += f->blockdevs->len;
        zpcid_inventory_refresh_address(inv, f->address);
    }
    g_assert_cmpuint(netdevs, >, 5);
    g_assert_cmpuint(blockdevs, >, 5);
    g_assert_cmpuint(e.changed + e.added + e.removed, ==, 0);
    test_remove_tree(root);
}

/* Writes @content into attribute @attr of function 0001:00:00.0 and returns its errors. */
static ZpcidFunction *
load_with(const char *root, const char *attr, const char *content, gssize len)
{
    g_autoptr(ZpcidInventory) inv = NULL;
    g_autofree char *rel = g_build_filename(DEV1, attr, NULL);
    ZpcidFunction *f;

    test_write_file(root, rel, content, len);
    inv = scan(root);
    f = zpcid_inventory_lookup_fid(inv, 0x1822);
    g_assert_nonnull(f);
    return zpcid_function_ref(f);
}

static void
assert_error_names(ZpcidFunction *f, const char *file, const char *fragment)
{
    gboolean found = FALSE;

    for (guint i = 0; i < f->errors->len; i++) {
        const char *msg = g_ptr_array_index(f->errors, i);
        if (strstr(msg, file) != NULL && (fragment == NULL || strstr(msg, fragment) != NULL))
            found = TRUE;
    }
    if (!found) {
        for (guint i = 0; i < f->errors->len; i++)
            g_printerr("error: %s\n", (char *)g_ptr_array_index(f->errors, i));
    }
    g_assert_true(found);
}

static void
test_malformed(void)
{
    g_autofree char *root = test_copy_host("z16-lpar-ready");
    g_autofree char *huge = g_strnfill(8192, '7');
    ZpcidFunction *f;

    /* Truncated: the kernel never prints a bare "0x". */
    f = load_with(root, "uid", "0x", -1);
    g_assert_cmpint(f->uid, ==, ZPCID_UNKNOWN);
    assert_error_names(f, "devices/0001:00:00.0/uid", "hexadecimal");
    zpcid_function_unref(f);

    /* Garbage with binary bytes. */
    f = load_with(root, "uid", "\xff\xfe\x00garbage", 10);
    g_assert_cmpint(f->uid, ==, ZPCID_UNKNOWN);
    assert_error_names(f, "devices/0001:00:00.0/uid", NULL);
    zpcid_function_unref(f);

    /* Huge: more than a page is not a sysfs attribute. */
    f = load_with(root, "pchid", huge, -1);
    g_assert_cmpint(f->pchid, ==, ZPCID_UNKNOWN);
    assert_error_names(f, "devices/0001:00:00.0/pchid", "larger than 4096 bytes");
    zpcid_function_unref(f);
    test_write_file(root, DEV1 "/pchid", "0x0100\n", -1);

    /* Out of range for its format. */
    f = load_with(root, "pfgid", "0x1ff\n", -1);
    assert_error_names(f, "devices/0001:00:00.0/pfgid", "out of range");
    zpcid_function_unref(f);
    test_write_file(root, DEV1 "/pfgid", "0x01\n", -1);

    /* util_string of the wrong size. */
    f = load_with(root, "util_string", "short", -1);
    g_assert_null(f->util_string);
    assert_error_names(f, "devices/0001:00:00.0/util_string", "64 bytes");
    zpcid_function_unref(f);

    /* Missing files are an older kernel, not an error. */
    {
        g_autofree char *path = g_build_filename(root, DEV1, "mio_enabled", NULL);
        g_autofree char *uidp = g_build_filename(root, DEV1, "uid", NULL);
        g_autofree char *utilp = g_build_filename(root, DEV1, "util_string", NULL);
        g_autoptr(ZpcidInventory) inv = NULL;
        g_unlink(path);
        g_unlink(uidp);
        g_unlink(utilp);
        inv = scan(root);
        f = zpcid_inventory_lookup_fid(inv, 0x1822);
        g_assert_cmpint(f->mio_enabled, ==, -1);
        g_assert_cmpint(f->uid, ==, ZPCID_UNKNOWN);
        g_assert_cmpuint(f->errors->len, ==, 0);
    }

    /* A FIFO must not block the reader. */
    {
        g_autofree char *path = g_build_filename(root, DEV1, "port", NULL);
        g_unlink(path);
        g_assert_cmpint(mkfifo(path, 0644), ==, 0);
        f = load_with(root, "vfn", "0x0001\n", -1);
        g_assert_cmpint(f->port, ==, ZPCID_UNKNOWN);
        assert_error_names(f, "devices/0001:00:00.0/port", "not a regular file");
        zpcid_function_unref(f);
    }

    /* An attribute that is a symlink is refused, not followed. */
    {
        g_autofree char *path = g_build_filename(root, DEV1, "vfn", NULL);
        g_unlink(path);
        g_assert_cmpint(symlink("/etc/passwd", path), ==, 0);
        f = load_with(root, "pft", "0x0a\n", -1);
        g_assert_cmpint(f->vfn, ==, ZPCID_UNKNOWN);
        assert_error_names(f, "devices/0001:00:00.0/vfn", NULL);
        zpcid_function_unref(f);
    }
    test_remove_tree(root);
}

static void
test_symlink_loops(void)
{
    g_autofree char *root = test_copy_host("z16-lpar-ready");
    g_autofree char *devlink = g_build_filename(root, "sys/bus/pci/devices/0002:00:00.0", NULL);
    g_autofree char *driver = g_build_filename(root, DEV1, "driver", NULL);
    g_autofree char *bogus = g_build_filename(root, "sys/bus/pci/devices/not-an-address", NULL);
    g_autofree char *escape = g_build_filename(root, "sys/bus/pci/devices/0009:00:00.0", NULL);
    g_autoptr(ZpcidInventory) inv = NULL;
    GPtrArray *errors;
    gboolean named_bogus = FALSE;

    /* A device link that points at itself, a driver link loop, a stray entry, and an
     * absolute link that would leave the root. */
    g_unlink(devlink);
    g_assert_cmpint(symlink("0002:00:00.0", devlink), ==, 0);
    g_unlink(driver);
    g_assert_cmpint(symlink("driver", driver), ==, 0);
    g_assert_cmpint(symlink("/sys/devices", bogus), ==, 0);
    g_assert_cmpint(symlink("/sys/bus/pci/devices/0009:00:00.0", escape), ==, 0);

    inv = scan(root);
    /* 0002 is gone (standby via its slot), 0001 still loads. */
    g_assert_nonnull(zpcid_inventory_lookup_fid(inv, 0x1822));
    g_assert_null(zpcid_inventory_lookup_address(inv, "0002:00:00.0"));
    g_assert_null(zpcid_inventory_lookup_address(inv, "0009:00:00.0"));
    /* The driver link's target name is still what the link says. */
    g_assert_cmpstr(zpcid_inventory_lookup_fid(inv, 0x1822)->driver, ==, "driver");
    errors = zpcid_inventory_get_errors(inv);
    for (guint i = 0; i < errors->len; i++) {
        if (strstr(g_ptr_array_index(errors, i), "not-an-address") != NULL)
            named_bogus = TRUE;
    }
    g_assert_true(named_bogus);
    test_remove_tree(root);
}

static void
test_empty_and_missing_roots(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *tmp = g_dir_make_tmp("zpcid-empty-XXXXXX", &error);
    g_autoptr(ZpcidInventory) inv = scan(tmp);

    g_assert_cmpuint(zpcid_inventory_get_count(inv), ==, 0);
    g_assert_null(zpcid_host_new("/nonexistent/zpcid/root", &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND);
    g_rmdir(tmp);
}

typedef struct {
    char *dir;
    gint stop;
} Renamer;

/* Renames a file back and forth until told to stop: on a busy host something always does. */
static gpointer
rename_loop(gpointer data)
{
    Renamer *r = data;
    g_autofree char *a = g_build_filename(r->dir, "a", NULL);
    g_autofree char *b = g_build_filename(r->dir, "b", NULL);

    g_assert_true(g_file_set_contents(a, "", 0, NULL));
    while (!g_atomic_int_get(&r->stop)) {
        g_assert_cmpint(g_rename(a, b), ==, 0);
        g_assert_cmpint(g_rename(b, a), ==, 0);
    }
    return NULL;
}

/* Every scan of an unchanged tree reads the same functions while renames happen elsewhere on
 * the system (openat2() with RESOLVE_IN_ROOT then fails lookups through ".." with EAGAIN,
 * which once made configured functions look as if they were in standby). */
static void
test_stable_under_renames(void)
{
    g_autofree char *root = test_host_path("z16-lpar-ready");
    g_autoptr(ZpcidInventory) first = scan(root);
    g_autoptr(GPtrArray) expected = zpcid_inventory_list(first);
    Renamer r = {g_dir_make_tmp("zpcid-renames-XXXXXX", NULL), 0};
    GThread *thread;

    g_assert_nonnull(r.dir);
    thread = g_thread_new("renamer", rename_loop, &r);
    for (guint round = 0; round < 300; round++) {
        g_autoptr(ZpcidInventory) again = scan(root);
        g_autoptr(GPtrArray) list = zpcid_inventory_list(again);

        g_assert_cmpuint(list->len, ==, expected->len);
        for (guint i = 0; i < list->len; i++)
            g_assert_true(
                zpcid_function_equal(g_ptr_array_index(list, i), g_ptr_array_index(expected, i)));
    }
    g_atomic_int_set(&r.stop, 1);
    g_thread_join(thread);
    {
        g_autofree char *a = g_build_filename(r.dir, "a", NULL);
        g_assert_cmpint(g_remove(a), ==, 0);
        g_assert_cmpint(g_rmdir(r.dir), ==, 0);
    }
    g_free(r.dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/inventory/scan", test_scan_ready_host);
    g_test_add_func("/inventory/refresh-one", test_refresh_one);
    g_test_add_func("/inventory/refresh-matches-scan", test_refresh_matches_scan);
    g_test_add_func("/inventory/malformed", test_malformed);
    g_test_add_func("/inventory/symlink-loops", test_symlink_loops);
    g_test_add_func("/inventory/empty-root", test_empty_and_missing_roots);
    g_test_add_func("/inventory/stable-under-renames", test_stable_under_renames);
    return g_test_run();
}
