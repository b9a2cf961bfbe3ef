/* Binds 64 functions whose host driver takes 100 ms to unbind, once one after another (one
 * worker) and once in parallel (the default pool), on the simulated kernel, and prints both
 * times and their ratio. The target is a ratio of at least 4; this is a benchmark, not a
 * test, so it reports and does not fail on a slow machine.
 *
 *   LD_PRELOAD=.../libzpcid-simkernel.so MKHOST=.../mkhost.py bench-bind [N] [DELAY_MS] [REPEAT]
 *
 * The last line is JSON for bench/run-bench.py: {"serial": [s...], "parallel": [s...]}. */
#include <glib.h>
#include <stdlib.h>

#include "binder-test-util.h"
#include "binder.h"
#include "inventory.h"

typedef struct {
    gboolean done;
    ZpcidBindReport *report;
    GError *error;
} Wait;

static void
on_done(GObject *source, GAsyncResult *result, gpointer data)
{
    Wait *w = data;
    w->report = zpcid_binder_bind_finish(ZPCID_BINDER(source), result, &w->error);
    w->done = TRUE;
}

/* Seconds to bind @n host-bound functions of a fresh copy of @tmpl with @workers workers. */
static double
run_once(const char *tmp, const char *tmpl, const char *name, guint n, guint workers)
{
    g_autofree char *root = g_build_filename(tmp, name, NULL);
    g_autofree char *state = g_strconcat(root, "-state", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidHost) host = NULL;
    g_autoptr(ZpcidInventory) inv = NULL;
    g_autoptr(ZpcidBinder) binder = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(GArray) fids = g_array_new(FALSE, FALSE, sizeof(guint32));
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    Wait w = {0};
    gint64 t0, t1;

    bt_copy_tree(tmpl, root);
    g_setenv("ZPCID_SIMKERNEL_ROOT", root, TRUE);
    host = zpcid_host_new(root, &error);
    g_assert_no_error(error);
    inv = zpcid_inventory_new(host);
    g_assert_true(zpcid_inventory_scan(inv, &error));
    binder = zpcid_binder_new(host, inv, state, ZPCID_BINDER_FLAGS_NONE, &error);
    g_assert_no_error(error);
    zpcid_binder_set_max_workers(binder, workers);
    list = zpcid_inventory_list(inv);
    for (guint i = 0; i < list->len && fids->len < n; i++) {
        ZpcidFunction *f = g_ptr_array_index(list, i);
        guint32 fid = (guint32)f->fid;
        if (f->driver != NULL && !g_str_equal(f->driver, "vfio-pci"))
            g_array_append_val(fids, fid);
    }
    if (fids->len < n)
        g_error("the tree has only %u functions on a host driver", fids->len);
    /* In a tree most interfaces are up and disks mounted; the guards are not measured. */
    opts.allow_guards = ZPCID_GUARD_BIT(ZPCID_GUARD_NET) | ZPCID_GUARD_BIT(ZPCID_GUARD_BLOCK) |
                        ZPCID_GUARD_BIT(ZPCID_GUARD_SRIOV) | ZPCID_GUARD_BIT(ZPCID_GUARD_DOMAIN);

    t0 = g_get_monotonic_time();
    zpcid_binder_bind_async(binder, (guint32 *)(gpointer)fids->data, fids->len, &opts, NULL,
                            on_done, &w);
    while (!w.done)
        g_main_context_iteration(NULL, TRUE);
    t1 = g_get_monotonic_time();
    if (w.error != NULL)
        g_error("bind failed: %s", w.error->message);
    for (guint i = 0; i < w.report->functions->len; i++) {
        ZpcidBindFunctionResult *r = g_ptr_array_index(w.report->functions, i);
        g_assert_cmpint(r->outcome, ==, ZPCID_BIND_OUTCOME_CHANGED);
    }
    zpcid_bind_report_free(w.report);
    g_unsetenv("ZPCID_SIMKERNEL_ROOT");
    return (double)(t1 - t0) / G_USEC_PER_SEC;
}

int
main(int argc, char **argv)
{
    guint n = argc > 1 ? (guint)atoi(argv[1]) : 64;
    guint delay = argc > 2 ? (guint)atoi(argv[2]) : 100;
    guint repeat = argc > 3 ? (guint)atoi(argv[3]) : 1;
    g_autoptr(GString) json = g_string_new("{\"serial\": [");
    g_autoptr(GString) json_parallel = g_string_new("\"parallel\": [");
    g_autoptr(GError) error = NULL;
    g_autofree char *tmp = g_dir_make_tmp("zpcid-bind-bench-XXXXXX", &error);
    g_autofree char *tmpl = g_build_filename(tmp, "template", NULL);
    g_autofree char *count = g_strdup_printf("%u", n * 2 + 16);
    g_autofree char *faults = NULL;
    g_autofree char *line = g_strdup_printf("* unbind delay %u\n", delay);
    const char *args[] = {"--functions", count, "--seed", "1", NULL};
    double serial, parallel;

    g_assert_no_error(error);
    bt_make_host(tmpl, args);
    faults = g_build_filename(tmpl, "fixture", "faults", NULL);
    g_assert_true(g_file_set_contents(faults, line, -1, NULL));

    g_print("bind of %u functions, %u ms unbind delay each, on the simulated kernel\n", n, delay);
    for (guint i = 0; i < repeat; i++) {
        g_autofree char *serial_name = g_strdup_printf("serial%u", i);
        g_autofree char *parallel_name = g_strdup_printf("parallel%u", i);

        serial = run_once(tmp, tmpl, serial_name, n, 1);
        parallel = run_once(tmp, tmpl, parallel_name, n, 16);
        g_print("  one after another (1 worker):  %7.3f s\n", serial);
        g_print("  in parallel (16 workers):      %7.3f s\n", parallel);
        g_print("  speed-up:                      %7.2fx (target >= 4x)\n", serial / parallel);
        g_string_append_printf(json, "%s%.6f", i > 0 ? ", " : "", serial);
        g_string_append_printf(json_parallel, "%s%.6f", i > 0 ? ", " : "", parallel);
    }
    g_print("%s], %s]}\n", json->str, json_parallel->str);
    bt_remove_tmp(tmp);
    return 0;
}
