#include "binder-test-util.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char **
bt_clean_environ(void)
{
    char **env = g_get_environ();
    env = g_environ_unsetenv(env, "LD_PRELOAD");
    env = g_environ_unsetenv(env, "ZPCID_SIMKERNEL_ROOT");
    return env;
}

static void
run(const char *const *argv)
{
    g_auto(GStrv) env = bt_clean_environ();
    g_autoptr(GError) error = NULL;
    g_autofree char *err = NULL;
    gint status = 0;

    if (!g_spawn_sync(NULL, (char **)argv, env, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                      NULL, NULL, NULL, &err, &status, &error))
        g_error("%s: %s", argv[0], error->message);
    if (!g_spawn_check_wait_status(status, NULL))
        g_error("%s %s failed: %s", argv[0], argv[1], err);
}

void
bt_assert_not_live(const char *root)
{
    g_autofree char *real = g_canonicalize_filename(root, NULL);
    static const char *const forbidden[] = {"/sys", "/proc", "/dev", "/etc", "/usr", "/boot"};

    if (g_str_equal(real, "/"))
        g_error("refusing to run a mutating binder test on the real root");
    for (guint i = 0; i < G_N_ELEMENTS(forbidden); i++) {
        if (g_str_equal(real, forbidden[i]) ||
            (g_str_has_prefix(real, forbidden[i]) && real[strlen(forbidden[i])] == '/'))
            g_error("refusing to run a mutating binder test under %s", forbidden[i]);
    }
}

void
bt_make_host(const char *dir, const char *const *args)
{
    const char *mkhost = g_getenv("MKHOST");
    g_autoptr(GPtrArray) argv = g_ptr_array_new();

    g_assert_nonnull(mkhost);
    bt_assert_not_live(dir);
    g_ptr_array_add(argv, (gpointer) "python3");
    g_ptr_array_add(argv, (gpointer)mkhost);
    g_ptr_array_add(argv, (gpointer)dir);
    for (guint i = 0; args != NULL && args[i] != NULL; i++)
        g_ptr_array_add(argv, (gpointer)args[i]);
    g_ptr_array_add(argv, NULL);
    run((const char *const *)argv->pdata);
}

void
bt_copy_tree(const char *src, const char *dst)
{
    g_autofree char *src_dot = g_build_filename(src, ".", NULL);
    const char *argv[] = {"cp", "-a", src_dot, dst, NULL};

    bt_assert_not_live(dst);
    g_assert_cmpint(g_mkdir_with_parents(dst, 0755), ==, 0);
    run(argv);
}

void
bt_remove_tmp(const char *tmp)
{
    const char *argv[] = {"rm", "-rf", tmp, NULL};

    if (tmp == NULL)
        return;
    /* Only ever remove what the tests made. */
    g_assert_nonnull(strstr(tmp, "zpcid-bind-"));
    run(argv);
}

static GPtrArray *
list_dir(const char *path)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    const char *name;

    while (dir != NULL && (name = g_dir_read_name(dir)) != NULL)
        g_ptr_array_add(names, g_strdup(name));
    return names;
}

static gboolean
is_address(const char *name)
{
    return g_ascii_isxdigit(name[0]) && strchr(name, ':') != NULL;
}

static void
reset_link(const char *path, const char *tmpl_path)
{
    g_autofree char *target = g_file_read_link(tmpl_path, NULL);

    g_unlink(path);
    if (target != NULL)
        g_assert_cmpint(symlink(target, path), ==, 0);
}

void
bt_reset_tree(const char *root, const char *tmpl)
{
    g_autofree char *devices = g_build_filename(tmpl, "sys/bus/pci/devices", NULL);
    g_autofree char *drivers = g_build_filename(tmpl, "sys/bus/pci/drivers", NULL);
    g_autoptr(GPtrArray) addrs = list_dir(devices);
    g_autoptr(GPtrArray) drvs = list_dir(drivers);
    g_autofree char *faults = g_build_filename(root, "fixture", "faults", NULL);

    bt_assert_not_live(root);
    g_unlink(faults);
    for (guint i = 0; i < addrs->len; i++) {
        const char *addr = g_ptr_array_index(addrs, i);
        g_autofree char *t_dev = g_build_filename(devices, addr, NULL);
        g_autofree char *dev_link = g_build_filename(root, "sys/bus/pci/devices", addr, NULL);
        g_autofree char *real = realpath(dev_link, NULL);
        g_autofree char *t_ov = g_build_filename(t_dev, "driver_override", NULL);
        g_autofree char *ov = NULL;
        g_autofree char *t_drv = g_build_filename(t_dev, "driver", NULL);
        g_autofree char *drv = NULL;
        g_autofree char *data = NULL;

        g_assert_nonnull(real);
        ov = g_build_filename(real, "driver_override", NULL);
        drv = g_build_filename(real, "driver", NULL);
        /* Replaced, not written: a write to driver_override is the simulated kernel's. */
        g_assert_true(g_file_get_contents(t_ov, &data, NULL, NULL));
        g_assert_true(g_file_set_contents_full(ov, data, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, NULL));
        reset_link(drv, t_drv);
    }
    for (guint i = 0; i < drvs->len; i++) {
        const char *d = g_ptr_array_index(drvs, i);
        g_autofree char *dir = g_build_filename(root, "sys/bus/pci/drivers", d, NULL);
        g_autofree char *t_dir = g_build_filename(drivers, d, NULL);
        g_autoptr(GPtrArray) now = list_dir(dir);
        g_autoptr(GPtrArray) want = list_dir(t_dir);

        for (guint k = 0; k < now->len; k++) {
            const char *e = g_ptr_array_index(now, k);
            g_autofree char *path = g_build_filename(dir, e, NULL);
            if (is_address(e))
                g_unlink(path);
        }
        for (guint k = 0; k < want->len; k++) {
            const char *e = g_ptr_array_index(want, k);
            g_autofree char *path = g_build_filename(dir, e, NULL);
            g_autofree char *t_path = g_build_filename(t_dir, e, NULL);
            if (is_address(e))
                reset_link(path, t_path);
        }
    }
}

static gint
cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *
bt_snapshot(const char *root)
{
    GString *s = g_string_new(NULL);
    g_autofree char *devices = g_build_filename(root, "sys/bus/pci/devices", NULL);
    g_autofree char *drivers = g_build_filename(root, "sys/bus/pci/drivers", NULL);
    g_autoptr(GPtrArray) addrs = list_dir(devices);
    g_autoptr(GPtrArray) drvs = list_dir(drivers);

    g_ptr_array_sort(addrs, cmp_str);
    g_ptr_array_sort(drvs, cmp_str);
    for (guint i = 0; i < addrs->len; i++) {
        const char *addr = g_ptr_array_index(addrs, i);
        g_autofree char *link = g_build_filename(devices, addr, "driver", NULL);
        g_autofree char *ovp = g_build_filename(devices, addr, "driver_override", NULL);
        g_autofree char *target = g_file_read_link(link, NULL);
        g_autofree char *override = NULL;

        if (!g_file_get_contents(ovp, &override, NULL, NULL))
            override = g_strdup("<missing>\n");
        g_string_append_printf(s, "%s driver=%s override=%s", addr,
                               target != NULL ? target : "-", override);
        if (!g_str_has_suffix(override, "\n"))
            g_string_append_c(s, '\n');
    }
    for (guint i = 0; i < drvs->len; i++) {
        const char *drv = g_ptr_array_index(drvs, i);
        g_autofree char *dpath = g_build_filename(drivers, drv, NULL);
        g_autoptr(GPtrArray) entries = list_dir(dpath);

        g_ptr_array_sort(entries, cmp_str);
        for (guint k = 0; k < entries->len; k++) {
            const char *e = g_ptr_array_index(entries, k);
            g_autofree char *epath = g_build_filename(dpath, e, NULL);
            g_autofree char *target = NULL;

            if (!is_address(e))
                continue;
            target = g_file_read_link(epath, NULL);
            g_string_append_printf(s, "drivers/%s/%s -> %s\n", drv, e, target ? target : "?");
        }
    }
    return g_string_free(s, FALSE);
}

/* tests/simkernel reads fixture/faults: "<address|*> <op> <effect> [<argument>]" per line. */
static void
fault_add(const char *root, const char *line)
{
    g_autofree char *path = g_build_filename(root, "fixture", "faults", NULL);
    g_autofree char *old = NULL;
    g_autofree char *text = NULL;

    g_file_get_contents(path, &old, NULL, NULL);
    text = g_strconcat(old != NULL ? old : "", line, "\n", NULL);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

void
bt_fault_clear(const char *root)
{
    g_autofree char *path = g_build_filename(root, "fixture", "faults", NULL);
    g_unlink(path);
}

void
bt_fault_errno(const char *root, const char *op, const char *address, int err_no)
{
    g_autofree char *line = g_strdup_printf("%s %s errno %d", address, op, err_no);
    fault_add(root, line);
}

void
bt_fault_delay(const char *root, const char *op, const char *address, guint ms)
{
    g_autofree char *line = g_strdup_printf("%s %s delay %u", address, op, ms);
    fault_add(root, line);
}

void
bt_fault_probe_nothing(const char *root, const char *address)
{
    g_autofree char *line = g_strdup_printf("%s probe nothing", address);
    fault_add(root, line);
}

void
bt_fault_probe_wrong(const char *root, const char *address, const char *driver)
{
    g_autofree char *line = g_strdup_printf("%s probe wrong %s", address, driver);
    fault_add(root, line);
}

void
bt_fault_vanish(const char *root, const char *op, const char *address, gboolean after)
{
    g_autofree char *line = g_strdup_printf("%s %s %s", address, op,
                                            after ? "vanish-after" : "vanish");
    fault_add(root, line);
}
