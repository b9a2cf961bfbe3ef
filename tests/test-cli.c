/* Golden tests of zpcidctl against every fixture host: check (text and JSON) and list. */
#include <glib.h>
#include <string.h>
#include <sys/wait.h>

#include "test-common.h"

static char *
run_ctl(const char *const *args, int *exit_status)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autoptr(GError) error = NULL;
    gint status;

    g_ptr_array_add(argv, (char *)g_getenv("ZPCIDCTL"));
    for (guint i = 0; args[i] != NULL; i++)
        g_ptr_array_add(argv, (char *)args[i]);
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, 0, NULL, NULL, &out, &err,
                               &status, &error));
    g_assert_no_error(error);
    g_assert_true(WIFEXITED(status));
    *exit_status = WEXITSTATUS(status);
    if (*err != '\0' && g_test_verbose())
        g_printerr("%s", err);
    return g_steal_pointer(&out);
}

static void
test_host_golden(gconstpointer data)
{
    const char *name = data;
    g_autofree char *root = test_host_path(name);
    g_autofree char *golden = g_build_filename(test_data_dir(), "golden", name, NULL);
    const char *check_json[] = {"--host-root", root, "--json", "check", NULL};
    const char *check_text[] = {"check", "--host-root", root, NULL};
    const char *list_json[] = {"--host-root", root, "list", "--json", NULL};
    const char *list_text[] = {"--host-root", root, "list", NULL};
    struct {
        const char *const *args;
        const char *file;
    } runs[] = {
        {check_json, "check.json"},
        {check_text, "check.txt"},
        {list_json, "list.json"},
        {list_text, "list.txt"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(runs); i++) {
        int status;
        g_autofree char *out = run_ctl(runs[i].args, &status);
        g_autofree char *actual = g_strdup_printf("%s[exit %d]\n", out, status);
        g_autofree char *path = g_build_filename(golden, runs[i].file, NULL);
        test_assert_golden(path, actual);
    }
}

static void
test_json_errors(void)
{
    g_autofree char *root = test_host_path("z16-lpar-ready");
    const char *bad_spec[] = {"--host-root", root, "--json", "show", "uid:0", NULL};
    const char *missing[] = {"--host-root", root, "--json", "show", "0x9999", NULL};
    const char *bad_root[] = {"--host-root", "/nonexistent/zpcid", "--json", "list", NULL};
    const char *bad_cmd[] = {"--json", "frobnicate", NULL};
    const char *bad_verdict[] = {"--host-root", root, "--verdict", "maybe", "check", NULL};
    int status;
    g_autofree char *a = run_ctl(bad_spec, &status);
    g_autofree char *b = NULL, *c = NULL, *d = NULL, *e = NULL;

    g_assert_cmpint(status, ==, 2);
    g_assert_true(g_str_has_prefix(a, "{"));
    g_assert_nonnull(strstr(a, "org.zpcid1.Error.InvalidArgument"));
    b = run_ctl(missing, &status);
    g_assert_cmpint(status, ==, 2);
    g_assert_nonnull(strstr(b, "org.zpcid1.Error.NotFound"));
    c = run_ctl(bad_root, &status);
    g_assert_cmpint(status, ==, 2);
    g_assert_nonnull(strstr(c, "/nonexistent/zpcid"));
    d = run_ctl(bad_cmd, &status);
    g_assert_cmpint(status, ==, 2);
    g_assert_nonnull(strstr(d, "frobnicate"));
    e = run_ctl(bad_verdict, &status);
    g_assert_cmpint(status, ==, 2);
}

static void
test_verdict_option(void)
{
    g_autofree char *root = test_host_path("z13-lpar");
    const char *interp[] = {"--host-root", root, "--json", "check", NULL};
    const char *pass[] = {"--host-root", root, "--verdict", "passthrough", "--json", "check", NULL};
    int status;
    g_autofree char *a = run_ctl(interp, &status);
    g_autofree char *b = NULL;

    g_assert_cmpint(status, ==, 1);
    b = run_ctl(pass, &status);
    g_assert_cmpint(status, ==, 0);
}

int
main(int argc, char **argv)
{
    g_autoptr(GDir) dir = NULL;
    g_autofree char *hosts = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *name;

    g_test_init(&argc, &argv, NULL);
    hosts = g_build_filename(test_data_dir(), "hosts", NULL);
    dir = g_dir_open(hosts, 0, NULL);
    g_assert_nonnull(dir);
    while ((name = g_dir_read_name(dir)) != NULL)
        g_ptr_array_add(names, g_strdup(name));
    g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
    for (guint i = 0; i < names->len; i++) {
        const char *host = g_ptr_array_index(names, i);
        g_autofree char *path = g_strdup_printf("/cli/golden/%s", host);
        g_test_add_data_func(path, host, test_host_golden);
    }
    g_test_add_func("/cli/json-errors", test_json_errors);
    g_test_add_func("/cli/verdict-option", test_verdict_option);
    return g_test_run();
}
