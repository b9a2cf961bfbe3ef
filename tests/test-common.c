#include "test-common.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
test_data_dir(void)
{
    const char *dir = g_getenv("ZPCID_TEST_DATA");
    g_assert_nonnull(dir);
    return dir;
}

char *
test_host_path(const char *name)
{
    return g_build_filename(test_data_dir(), "hosts", name, NULL);
}

char *
test_copy_host(const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *src = test_host_path(name);
    g_autofree char *tmp = g_dir_make_tmp("zpcid-host-XXXXXX", &error);
    g_autofree char *dst = NULL;
    g_autofree char *src_dot = g_build_filename(src, ".", NULL);
    const char *argv[] = {"cp", "-a", src_dot, NULL, NULL};
    gint status = 0;

    g_assert_no_error(error);
    dst = g_build_filename(tmp, "host", NULL);
    g_assert_cmpint(g_mkdir(dst, 0755), ==, 0);
    argv[3] = dst;
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                               NULL, &status, &error));
    g_assert_no_error(error);
    g_assert_cmpint(status, ==, 0);
    return g_steal_pointer(&dst);
}

void
test_remove_tree(const char *path)
{
    g_autofree char *parent = g_path_get_dirname(path);
    const char *argv[] = {"rm", "-rf", parent, NULL};

    /* Only ever remove what test_copy_host() made. */
    g_assert_true(strstr(parent, "zpcid-host-") != NULL);
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                 NULL);
}

void
test_assert_golden(const char *path, const char *actual)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *expected = NULL;

    if (g_strcmp0(g_getenv("ZPCID_TEST_REGENERATE"), "1") == 0) {
        g_autofree char *dir = g_path_get_dirname(path);
        g_mkdir_with_parents(dir, 0755);
        g_assert_true(g_file_set_contents(path, actual, -1, &error));
        g_assert_no_error(error);
        return;
    }
    if (!g_file_get_contents(path, &expected, NULL, &error))
        g_error("Golden file missing (run with ZPCID_TEST_REGENERATE=1): %s", error->message);
    if (!g_str_equal(expected, actual)) {
        g_printerr("--- expected %s\n%s\n--- actual\n%s\n", path, expected, actual);
        g_assert_cmpstr(actual, ==, expected);
    }
}

void
test_write_file(const char *root, const char *rel, const char *contents, gssize len)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename(root, rel, NULL);
    g_autofree char *dir = g_path_get_dirname(path);

    g_mkdir_with_parents(dir, 0755);
    g_unlink(path);
    g_assert_true(g_file_set_contents(path, contents, len, &error));
    g_assert_no_error(error);
}

GArray *
test_children_of(GPid pid)
{
    g_autoptr(GDir) dir = g_dir_open("/proc", 0, NULL);
    GArray *children = g_array_new(FALSE, FALSE, sizeof(GPid));
    const char *name;

    if (dir == NULL)
        return children;
    while ((name = g_dir_read_name(dir)) != NULL) {
        g_autofree char *path = g_build_filename("/proc", name, "stat", NULL);
        g_autofree char *stat = NULL;
        const char *end;
        char state;
        int ppid;

        if (!g_ascii_isdigit(name[0]) || !g_file_get_contents(path, &stat, NULL, NULL))
            continue;
        /* "pid (comm) state ppid ...": comm may hold spaces and parentheses. */
        end = strrchr(stat, ')');
        if (end == NULL || sscanf(end + 1, " %c %d", &state, &ppid) != 2)
            continue;
        if (ppid == pid && state != 'Z') {
            GPid child = (GPid)atoi(name);
            g_array_append_val(children, child);
        }
    }
    return children;
}
