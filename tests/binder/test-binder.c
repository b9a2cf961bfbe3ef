/* The binder against generated host trees on the simulated kernel.
 *
 * Positions refer to mkhost.py's fixed head of functions: 0 RoCE with its interface up,
 * 1 NVMe with a mounted and a swap partition, 2 ISM (idle), 3 RoCE unbound, 4 NVMe on
 * vfio-pci, 5 virtio-net up, 6 virtio-blk mounted, 7 RoCE on vfio-pci, 8 NVMe unbound,
 * 9 NVMe idle, 10 RoCE with its interface down, 11 unclaimed, 12 NVMe held by dm-0. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "binder-private.h"
#include "binder-test-util.h"
#include "binder.h"
#include "error.h"
#include "inventory.h"
#include "journal.h"

#define ALLOW_ALL                                                                            \
    (ZPCID_GUARD_BIT(ZPCID_GUARD_NET) | ZPCID_GUARD_BIT(ZPCID_GUARD_BLOCK) |                 \
     ZPCID_GUARD_BIT(ZPCID_GUARD_SRIOV) | ZPCID_GUARD_BIT(ZPCID_GUARD_DOMAIN))

typedef struct {
    char *tmp;
    char *root;
    char *state;
    ZpcidHost *host;
    ZpcidInventory *inv;
    ZpcidBinder *binder;
} Fx;

static void
fx_open(Fx *fx)
{
    g_autoptr(GError) error = NULL;

    fx->host = zpcid_host_new(fx->root, &error);
    g_assert_no_error(error);
    g_assert_false(zpcid_host_is_live(fx->host));
    fx->inv = zpcid_inventory_new(fx->host);
    g_assert_true(zpcid_inventory_scan(fx->inv, &error));
    g_assert_no_error(error);
    fx->binder = zpcid_binder_new(fx->host, fx->inv, fx->state, ZPCID_BINDER_FLAGS_NONE, &error);
    g_assert_no_error(error);
    zpcid_binder_set_verify_grace_ms(fx->binder, 100);
}

static void
fx_close(Fx *fx)
{
    g_clear_object(&fx->binder);
    g_clear_object(&fx->inv);
    g_clear_pointer(&fx->host, zpcid_host_unref);
}

static void
fx_setup_args(Fx *fx, const char *const *args)
{
    g_autoptr(GError) error = NULL;

    fx->tmp = g_dir_make_tmp("zpcid-bind-XXXXXX", &error);
    g_assert_no_error(error);
    fx->root = g_build_filename(fx->tmp, "host", NULL);
    fx->state = g_build_filename(fx->tmp, "state", NULL);
    bt_make_host(fx->root, args);
    bt_assert_not_live(fx->root);
    g_setenv("ZPCID_SIMKERNEL_ROOT", fx->root, TRUE);
    fx_open(fx);
}

static void
fx_setup(Fx *fx, gconstpointer data)
{
    static const char *const args[] = {"--functions", "16", NULL};
    fx_setup_args(fx, args);
}

static void
fx_teardown(Fx *fx, gconstpointer data)
{
    fx_close(fx);
    g_unsetenv("ZPCID_SIMKERNEL_ROOT");
    bt_remove_tmp(fx->tmp);
    g_free(fx->tmp);
    g_free(fx->root);
    g_free(fx->state);
}

static ZpcidFunction *
fx_function(Fx *fx, guint pos)
{
    g_autoptr(GPtrArray) list = zpcid_inventory_list(fx->inv);
    g_assert_cmpuint(pos, <, list->len);
    return g_ptr_array_index(list, pos);
}

static guint32
fx_fid(Fx *fx, guint pos)
{
    return (guint32)fx_function(fx, pos)->fid;
}

static const char *
fx_addr(Fx *fx, guint pos)
{
    return fx_function(fx, pos)->address;
}

static char *
fx_driver(Fx *fx, guint pos)
{
    g_autofree char *link = g_build_filename(fx->root, "sys/bus/pci/devices", fx_addr(fx, pos),
                                             "driver", NULL);
    g_autofree char *target = g_file_read_link(link, NULL);
    return target != NULL ? g_path_get_basename(target) : NULL;
}

static char *
fx_override(Fx *fx, guint pos)
{
    g_autofree char *path = g_build_filename(fx->root, "sys/bus/pci/devices", fx_addr(fx, pos),
                                             "driver_override", NULL);
    char *data = NULL;
    g_assert_true(g_file_get_contents(path, &data, NULL, NULL));
    return g_strstrip(data);
}

typedef struct {
    gboolean done;
    gboolean bind;
    ZpcidBindReport *report;
    GError *error;
} Wait;

static void
on_done(GObject *source, GAsyncResult *result, gpointer data)
{
    Wait *w = data;

    w->report = w->bind ? zpcid_binder_bind_finish(ZPCID_BINDER(source), result, &w->error)
                        : zpcid_binder_unbind_finish(ZPCID_BINDER(source), result, &w->error);
    w->done = TRUE;
}

static void
start(Fx *fx, Wait *w, gboolean bind, const guint32 *fids, guint n, const ZpcidBindOptions *opts,
      GCancellable *cancellable)
{
    memset(w, 0, sizeof(*w));
    w->bind = bind;
    if (bind)
        zpcid_binder_bind_async(fx->binder, fids, n, opts, cancellable, on_done, w);
    else
        zpcid_binder_unbind_async(fx->binder, fids, n, opts, cancellable, on_done, w);
}

static void
finish(Wait *w)
{
    while (!w->done)
        g_main_context_iteration(NULL, TRUE);
}

static ZpcidBindReport *
run(Fx *fx, gboolean bind, const guint32 *fids, guint n, const ZpcidBindOptions *opts,
    GError **error)
{
    Wait w;

    start(fx, &w, bind, fids, n, opts, NULL);
    finish(&w);
    if (w.error != NULL)
        g_propagate_error(error, w.error);
    return w.report;
}

/* Waits until no transaction holds any function (stuck steps release them late). */
static void
wait_idle(Fx *fx, const guint32 *fids, guint n)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;

    for (;;) {
        gboolean busy = FALSE;
        for (guint i = 0; i < n; i++)
            busy |= zpcid_binder_is_busy(fx->binder, fids[i]);
        if (!busy)
            return;
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_main_context_iteration(NULL, FALSE);
        g_usleep(10000);
    }
}

static guint
n_transactions(Fx *fx)
{
    g_autoptr(GPtrArray) txns = zpcid_journal_dup_transactions(zpcid_binder_get_journal(fx->binder));
    return txns->len;
}

/* A write as the kernel's own tools would make it (for "reboots" and tampering). */
static void
kernel_write(Fx *fx, const char *rel, const char *data)
{
    g_autofree char *path = g_build_filename(fx->root, rel, NULL);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, data, strlen(data)), ==, (gssize)strlen(data));
    close(fd);
}

static void
assert_unchanged(Fx *fx, const char *before)
{
    g_autofree char *after = bt_snapshot(fx->root);
    g_assert_cmpstr(after, ==, before);
    g_assert_cmpuint(n_transactions(fx), ==, 0);
}

/* ---- basic operation ---- */

static void
test_bind_unbind(Fx *fx, gconstpointer data)
{
    guint32 fids[] = {fx_fid(fx, 2), fx_fid(fx, 9)};
    g_autofree char *before = bt_snapshot(fx->root);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = run(fx, TRUE, fids, 2, NULL, &error);
    g_autoptr(ZpcidBindReport) report2 = NULL;
    ZpcidBindFunctionResult *r;
    g_autofree char *d2 = NULL, *d9 = NULL, *o2 = NULL;

    g_assert_no_error(error);
    g_assert_cmpuint(report->functions->len, ==, 2);
    r = g_ptr_array_index(report->functions, 0);
    g_assert_cmpuint(r->fid, ==, fids[0]);
    g_assert_cmpint(r->outcome, ==, ZPCID_BIND_OUTCOME_CHANGED);
    g_assert_cmpstr(r->driver_before, ==, "ism");
    g_assert_cmpstr(r->driver_after, ==, "vfio-pci");
    g_assert_cmpuint(r->steps->len, ==, 3);
    d2 = fx_driver(fx, 2);
    d9 = fx_driver(fx, 9);
    o2 = fx_override(fx, 2);
    g_assert_cmpstr(d2, ==, "vfio-pci");
    g_assert_cmpstr(d9, ==, "vfio-pci");
    g_assert_cmpstr(o2, ==, "vfio-pci");
    g_assert_cmpstr(zpcid_binder_get_host_driver(fx->binder, fids[0]), ==, "ism");
    g_assert_cmpstr(zpcid_binder_get_host_driver(fx->binder, fids[1]), ==, "nvme");
    g_assert_false(zpcid_binder_is_persistent(fx->binder, fids[0]));
    g_assert_false(zpcid_binder_is_busy(fx->binder, fids[0]));
    g_assert_cmpuint(n_transactions(fx), ==, 0);
    /* The inventory was refreshed before the callback. */
    g_assert_cmpstr(zpcid_inventory_lookup_fid(fx->inv, fids[0])->driver, ==, "vfio-pci");

    report2 = run(fx, FALSE, fids, 2, NULL, &error);
    g_assert_no_error(error);
    r = g_ptr_array_index(report2->functions, 1);
    g_assert_cmpint(r->outcome, ==, ZPCID_BIND_OUTCOME_CHANGED);
    g_assert_cmpstr(r->driver_after, ==, "nvme");
    assert_unchanged(fx, before);
    g_assert_null(zpcid_binder_get_host_driver(fx->binder, fids[0]));
}

static void
test_bind_unbound(Fx *fx, gconstpointer data)
{
    guint32 fid = fx_fid(fx, 3);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = run(fx, TRUE, &fid, 1, NULL, &error);
    g_autoptr(ZpcidBindReport) report2 = NULL;
    ZpcidBindFunctionResult *r;

    g_assert_no_error(error);
    r = g_ptr_array_index(report->functions, 0);
    g_assert_null(r->driver_before);
    g_assert_cmpuint(r->steps->len, ==, 2); /* override, probe: nothing to unbind */
    g_assert_null(zpcid_binder_get_host_driver(fx->binder, fid));

    /* No host driver was recorded: the release takes whatever the kernel binds. */
    report2 = run(fx, FALSE, &fid, 1, NULL, &error);
    g_assert_no_error(error);
    r = g_ptr_array_index(report2->functions, 0);
    g_assert_cmpstr(r->driver_after, ==, "mlx5_core");
}

static void
test_noop(Fx *fx, gconstpointer data)
{
    guint32 on_vfio[] = {fx_fid(fx, 4), fx_fid(fx, 7)};
    guint32 on_host = fx_fid(fx, 9);
    g_autofree char *before = bt_snapshot(fx->root);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = run(fx, TRUE, on_vfio, 2, NULL, &error);
    g_autoptr(ZpcidBindReport) report2 = NULL;

    g_assert_no_error(error);
    for (guint i = 0; i < 2; i++) {
        ZpcidBindFunctionResult *r = g_ptr_array_index(report->functions, i);
        g_assert_cmpint(r->outcome, ==, ZPCID_BIND_OUTCOME_UNCHANGED);
        g_assert_cmpuint(r->steps->len, ==, 0);
    }
    report2 = run(fx, FALSE, &on_host, 1, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(((ZpcidBindFunctionResult *)g_ptr_array_index(report2->functions, 0))->outcome,
                    ==, ZPCID_BIND_OUTCOME_UNCHANGED);
    assert_unchanged(fx, before);
    /* No journal was written for nothing to do. */
    g_assert_false(g_file_test(zpcid_journal_get_path(zpcid_binder_get_journal(fx->binder)),
                               G_FILE_TEST_EXISTS));
}

static void
test_unbind_foreign(Fx *fx, gconstpointer data)
{
    /* On vfio-pci, but not by zpcid: the kernel picks the driver. */
    guint32 fid = fx_fid(fx, 4);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = run(fx, FALSE, &fid, 1, NULL, &error);
    ZpcidBindFunctionResult *r;
    g_autofree char *o = NULL;

    g_assert_no_error(error);
    r = g_ptr_array_index(report->functions, 0);
    g_assert_cmpstr(r->driver_before, ==, "vfio-pci");
    g_assert_cmpstr(r->driver_after, ==, "nvme");
    o = fx_override(fx, 4);
    g_assert_cmpstr(o, ==, "(null)");
}

static void
test_dry_run(Fx *fx, gconstpointer data)
{
    guint32 fids[] = {fx_fid(fx, 2), fx_fid(fx, 3)};
    g_autofree char *before = bt_snapshot(fx->root);
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = NULL;
    ZpcidBindFunctionResult *r;

    opts.dry_run = TRUE;
    report = run(fx, TRUE, fids, 2, &opts, &error);
    g_assert_no_error(error);
    r = g_ptr_array_index(report->functions, 0);
    g_assert_cmpint(r->outcome, ==, ZPCID_BIND_OUTCOME_WOULD_CHANGE);
    g_assert_cmpuint(r->steps->len, ==, 3);
    g_assert_nonnull(strstr(g_ptr_array_index(r->steps, 1), "ism/unbind"));
    r = g_ptr_array_index(report->functions, 1);
    g_assert_cmpuint(r->steps->len, ==, 2);
    assert_unchanged(fx, before);
    g_assert_null(zpcid_binder_get_host_driver(fx->binder, fids[0]));
}

/* A uevent of a function a transaction holds is left to the transaction, which reads the
 * function when it ends; even a dry run, which otherwise reads nothing. */
static void
test_deferred_refresh(Fx *fx, gconstpointer data)
{
    guint32 fid = fx_fid(fx, 2);
    g_autofree char *rel =
        g_build_filename("sys/bus/pci/devices", fx_addr(fx, 2), "driver_override", NULL);
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    Wait w;

    opts.dry_run = TRUE;
    g_assert_false(zpcid_binder_defer_refresh(fx->binder, fid));
    start(fx, &w, TRUE, &fid, 1, &opts, NULL);
    /* Somebody else's change while the dry run holds the function. */
    kernel_write(fx, rel, "vfio-pci\n");
    g_assert_true(zpcid_binder_defer_refresh(fx->binder, fid));
    g_assert_false(zpcid_binder_defer_refresh(fx->binder, fx_fid(fx, 9)));
    g_assert_null(zpcid_inventory_lookup_fid(fx->inv, fid)->driver_override);
    finish(&w);
    g_assert_no_error(w.error);
    zpcid_bind_report_free(w.report);
    g_assert_cmpstr(zpcid_inventory_lookup_fid(fx->inv, fid)->driver_override, ==, "vfio-pci");
    g_assert_false(zpcid_binder_defer_refresh(fx->binder, fid));

    /* A dry run without a deferred uevent reads nothing: the write below stays unseen. */
    kernel_write(fx, rel, "\n");
    start(fx, &w, TRUE, &fid, 1, &opts, NULL);
    finish(&w);
    g_assert_no_error(w.error);
    zpcid_bind_report_free(w.report);
    g_assert_cmpstr(zpcid_inventory_lookup_fid(fx->inv, fid)->driver_override, ==, "vfio-pci");
}

static void
test_invalid(Fx *fx, gconstpointer data)
{
    guint32 dup[] = {fx_fid(fx, 2), fx_fid(fx, 2)};
    guint32 unknown = 0xfffffff0;
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    g_autoptr(GError) error = NULL;

    g_assert_null(run(fx, TRUE, dup, 0, NULL, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    g_assert_null(run(fx, TRUE, dup, 2, NULL, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    g_assert_null(run(fx, TRUE, &unknown, 1, NULL, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND);
    g_clear_error(&error);
    opts.allow_guards = ZPCID_GUARD_BIT(ZPCID_GUARD_IDENTITY);
    g_assert_null(run(fx, TRUE, dup, 1, &opts, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
}

/* The owner is recorded only with what the request moved, survives a restart, and Unbind with
 * an owner gives back only that owner's functions. */
static void
test_owner(Fx *fx, gconstpointer data)
{
    guint32 fids[] = {fx_fid(fx, 2), fx_fid(fx, 4)};
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = NULL;
    g_autofree char *store = NULL;
    g_autofree char *d2 = NULL, *d4 = NULL;
    g_autofree char *owner = g_strdup("libvirt:c7a5fdbd-cdaf-9455-926a-d65c16db1809");
    ZpcidBindFunctionResult *r;

    opts.owner = owner;
    report = run(fx, TRUE, fids, 2, &opts, &error);
    g_assert_no_error(error);
    /* The binder keeps its own copy. */
    owner[0] = 'X';
    g_assert_cmpstr(zpcid_binder_get_owner(fx->binder, fids[0]), ==,
                    "libvirt:c7a5fdbd-cdaf-9455-926a-d65c16db1809");
    /* Already on vfio-pci before: not this owner's. */
    g_assert_null(zpcid_binder_get_owner(fx->binder, fids[1]));
    g_assert_true(g_file_get_contents(zpcid_journal_get_path(zpcid_binder_get_journal(fx->binder)),
                                      &store, NULL, NULL));
    g_assert_nonnull(strstr(store, "\"owner\" : \"libvirt:c7a5fdbd-cdaf-9455-926a-d65c16db1809\""));

    fx_close(fx);
    fx_open(fx);
    g_assert_true(zpcid_binder_recover(fx->binder, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(zpcid_binder_get_owner(fx->binder, fids[0]), ==,
                    "libvirt:c7a5fdbd-cdaf-9455-926a-d65c16db1809");

    /* Somebody else's owner: nothing is given back, and that is no error. */
    g_clear_pointer(&report, zpcid_bind_report_free);
    opts.owner = "libvirt:other";
    report = run(fx, FALSE, fids, 2, &opts, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(report->functions->len, ==, 0);
    d2 = fx_driver(fx, 2);
    g_assert_cmpstr(d2, ==, "vfio-pci");

    g_clear_pointer(&report, zpcid_bind_report_free);
    opts.owner = "libvirt:c7a5fdbd-cdaf-9455-926a-d65c16db1809";
    report = run(fx, FALSE, fids, 2, &opts, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(report->functions->len, ==, 1);
    r = g_ptr_array_index(report->functions, 0);
    g_assert_cmpuint(r->fid, ==, fids[0]);
    g_clear_pointer(&d2, g_free);
    d2 = fx_driver(fx, 2);
    d4 = fx_driver(fx, 4);
    g_assert_cmpstr(d2, ==, "ism");
    g_assert_cmpstr(d4, ==, "vfio-pci");
    g_assert_null(zpcid_binder_get_owner(fx->binder, fids[0]));
}

static void
test_options_variant(void)
{
    ZpcidBindOptions opts;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) good = g_variant_ref_sink(g_variant_new_parsed(
        "{'dry-run': <true>, 'persistent': <true>, 'timeout': <uint32 2500>, "
        "'allow-guards': <['net', 'domain']>, 'auth.no_user_interaction': <true>}"));
    g_autoptr(GVariant) typo = g_variant_ref_sink(g_variant_new_parsed("{'dryrun': <true>}"));
    g_autoptr(GVariant) type = g_variant_ref_sink(g_variant_new_parsed("{'timeout': <5>}"));
    g_autoptr(GVariant) guard = g_variant_ref_sink(
        g_variant_new_parsed("{'allow-guards': <['identity']>}"));
    ZpcidGuard g;

    g_assert_true(zpcid_bind_options_from_variant(good, &opts, &error));
    g_assert_no_error(error);
    g_assert_true(opts.dry_run && opts.persistent);
    g_assert_cmpuint(opts.timeout_ms, ==, 2500);
    g_assert_cmpuint(opts.allow_guards, ==,
                     ZPCID_GUARD_BIT(ZPCID_GUARD_NET) | ZPCID_GUARD_BIT(ZPCID_GUARD_DOMAIN));
    g_assert_false(zpcid_bind_options_from_variant(typo, &opts, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    g_assert_false(zpcid_bind_options_from_variant(type, &opts, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    g_assert_false(zpcid_bind_options_from_variant(guard, &opts, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    {
        g_autoptr(GVariant) owner =
            g_variant_ref_sink(g_variant_new_parsed("{'owner': <'libvirt:1234'>}"));
        g_autoptr(GVariant) empty = g_variant_ref_sink(g_variant_new_parsed("{'owner': <''>}"));
        g_autoptr(GVariant) control = g_variant_ref_sink(
            g_variant_new_parsed("{'owner': <'a\\nb'>}"));

        g_assert_true(zpcid_bind_options_from_variant(owner, &opts, &error));
        g_assert_cmpstr(opts.owner, ==, "libvirt:1234");
        g_assert_false(zpcid_bind_options_from_variant(empty, &opts, &error));
        g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
        g_assert_false(zpcid_bind_options_from_variant(control, &opts, &error));
        g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
    }

    for (guint i = 0; i < ZPCID_GUARD_LAST; i++) {
        g_assert_true(zpcid_guard_from_string(zpcid_guard_to_string(i), &g, NULL));
        g_assert_cmpint(g, ==, i);
    }
    g_assert_false(zpcid_guard_from_string("nope", &g, NULL));
    g_assert_true(zpcid_guard_is_overridable(ZPCID_GUARD_BLOCK));
    g_assert_false(zpcid_guard_is_overridable(ZPCID_GUARD_STANDBY));
}

static void
fx_setup_no_vfio(Fx *fx, gconstpointer data)
{
    static const char *const args[] = {"--functions", "16", "--vfio-not-loaded", NULL};
    fx_setup_args(fx, args);
}

static void
test_vfio_not_loaded(Fx *fx, gconstpointer data)
{
    /* Without the flag to load it (and never on a tree), a missing vfio-pci is NOT_READY. */
    guint32 fid = fx_fid(fx, 2);
    g_autofree char *before = bt_snapshot(fx->root);
    g_autoptr(GError) error = NULL;

    g_assert_null(run(fx, TRUE, &fid, 1, NULL, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_READY);
    assert_unchanged(fx, before);
}

/* ---- guards ---- */

/* Binding @pos is refused with BUSY naming @needle; nothing changes; allowing @guard (if
 * overridable) lets it through. */
static void
assert_guarded(Fx *fx, guint pos, const char *needle, gint guard)
{
    guint32 fid = fx_fid(fx, pos);
    g_autofree char *before = bt_snapshot(fx->root);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = run(fx, TRUE, &fid, 1, NULL, &error);

    g_assert_null(report);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_BUSY);
    if (strstr(error->message, needle) == NULL)
        g_error("“%s” not in: %s", needle, error->message);
    assert_unchanged(fx, before);
    g_assert_false(zpcid_binder_is_busy(fx->binder, fid));
    if (guard >= 0) {
        ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
        g_autofree char *tag = g_strdup_printf("(guard “%s”)", zpcid_guard_to_string(guard));
        g_autoptr(ZpcidBindReport) ok = NULL;
        g_autofree char *driver = NULL;

        g_assert_nonnull(strstr(error->message, tag));
        opts.allow_guards = ZPCID_GUARD_BIT(guard);
        ok = run(fx, TRUE, &fid, 1, &opts, &error);
        g_assert_no_error(ok != NULL ? NULL : error);
        driver = fx_driver(fx, pos);
        g_assert_cmpstr(driver, ==, "vfio-pci");
    }
}

static void
test_guard_net_up(Fx *fx, gconstpointer data)
{
    ZpcidFunction *f = fx_function(fx, 0);
    g_assert_cmpuint(f->netdevs->len, ==, 1);
    assert_guarded(fx, 0, g_ptr_array_index(f->netdevs, 0), ZPCID_GUARD_NET);
}

static void
test_guard_net_virtio(Fx *fx, gconstpointer data)
{
    assert_guarded(fx, 5, "“eth0”, which is up", ZPCID_GUARD_NET);
}

static void
test_guard_net_addresses(Fx *fx, gconstpointer data)
{
    ZpcidFunction *f = fx_function(fx, 10);
    const char *ifname = g_ptr_array_index(f->netdevs, 0);
    g_autofree char *line = g_strdup_printf(
        "fe80000000000000000000000000000a 03 40 20 80 %8s\n", ifname);

    g_autofree char *path = g_build_filename(fx->root, "proc/net/if_inet6", NULL);
    g_autofree char *dir = g_path_get_dirname(path);

    g_mkdir_with_parents(dir, 0755);
    g_assert_true(g_file_set_contents(path, line, -1, NULL));
    assert_guarded(fx, 10, "has addresses", ZPCID_GUARD_NET);
}

static void
test_guard_net_route(Fx *fx, gconstpointer data)
{
    ZpcidFunction *f = fx_function(fx, 10);
    g_autofree char *text = g_strdup_printf(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "%s\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
        (const char *)g_ptr_array_index(f->netdevs, 0));
    g_autofree char *path = g_build_filename(fx->root, "proc/net/route", NULL);
    g_autofree char *dir = g_path_get_dirname(path);

    g_mkdir_with_parents(dir, 0755);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    assert_guarded(fx, 10, "has addresses", ZPCID_GUARD_NET);
}

static void
test_guard_net_down(Fx *fx, gconstpointer data)
{
    /* An interface that is down and has no address does not hold the function. */
    guint32 fid = fx_fid(fx, 10);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = run(fx, TRUE, &fid, 1, NULL, &error);
    g_assert_no_error(error);
}

static void
test_guard_block_mounted(Fx *fx, gconstpointer data)
{
    assert_guarded(fx, 1, "mounted on “/srv/data”", ZPCID_GUARD_BLOCK);
}

static void
test_guard_block_swap(Fx *fx, gconstpointer data)
{
    assert_guarded(fx, 1, "used as swap", ZPCID_GUARD_BLOCK);
}

static void
test_guard_block_virtio(Fx *fx, gconstpointer data)
{
    assert_guarded(fx, 6, "“vda1”, which is mounted on “/srv/scratch”", ZPCID_GUARD_BLOCK);
}

static void
test_guard_block_holders(Fx *fx, gconstpointer data)
{
    assert_guarded(fx, 12, "held by “dm-0 (vg0-data)”", ZPCID_GUARD_BLOCK);
}

static void
fx_setup_sriov(Fx *fx, gconstpointer data)
{
    static const char *const args[] = {"--functions", "16", "--pf-with-vfs", "1", NULL};
    fx_setup_args(fx, args);
}

static void
test_guard_sriov(Fx *fx, gconstpointer data)
{
    /* The PF follows the 13 head functions; its interface is up too. */
    guint32 fid = fx_fid(fx, 13);
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = NULL;

    g_assert_cmpint(fx_function(fx, 13)->sriov_numvfs, ==, 2);
    opts.allow_guards = ZPCID_GUARD_BIT(ZPCID_GUARD_NET);
    report = run(fx, TRUE, &fid, 1, &opts, &error);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_BUSY);
    g_assert_nonnull(strstr(error->message, "2 virtual functions enabled"));
    g_assert_nonnull(strstr(error->message, "(guard “sriov”)"));
    g_clear_error(&error);
    opts.allow_guards |= ZPCID_GUARD_BIT(ZPCID_GUARD_SRIOV);
    report = run(fx, TRUE, &fid, 1, &opts, &error);
    g_assert_no_error(error);
}

typedef struct {
    const char *address;
    const char *running;
    const char *defined;
    gboolean fail;
    guint calls;
} Lookup;

static gboolean
lookup_domains(const char *address, guint32 fid, gint64 uid, char ***running, char ***defined,
               gpointer data, GError **error)
{
    Lookup *l = data;

    l->calls++;
    if (l->fail) {
        g_set_error_literal(error, ZPCID_ERROR, ZPCID_ERROR_FAILED, "libvirtd is not running");
        return FALSE;
    }
    if (g_strcmp0(address, l->address) == 0) {
        if (l->running != NULL)
            *running = g_strsplit(l->running, ",", -1);
        if (l->defined != NULL)
            *defined = g_strsplit(l->defined, ",", -1);
    }
    return TRUE;
}

static void
test_guard_domain(Fx *fx, gconstpointer data)
{
    /* Copies: a binding replaces the inventory's snapshots. */
    g_autofree char *addr2 = g_strdup(fx_addr(fx, 2));
    g_autofree char *addr9 = g_strdup(fx_addr(fx, 9));
    Lookup l = {addr2, "guest1", NULL, FALSE, 0};
    guint32 fid9 = fx_fid(fx, 9);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = NULL;

    zpcid_binder_set_domain_lookup(fx->binder, lookup_domains, &l, NULL);
    assert_guarded(fx, 2, "running libvirt domain “guest1”", ZPCID_GUARD_DOMAIN);
    g_assert_cmpuint(l.calls, ==, 1); /* allowing the guard skips the lookup */

    /* A defined domain is a warning only. */
    l.address = addr9;
    l.running = NULL;
    l.defined = "guest2";
    report = run(fx, TRUE, &fid9, 1, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(report->warnings->len, ==, 1);
    g_assert_nonnull(strstr(g_ptr_array_index(report->warnings, 0), "“guest2”"));
    g_clear_pointer(&report, zpcid_bind_report_free);

    /* Releasing a function a running guest uses is refused too. */
    l.running = "guest3";
    report = run(fx, FALSE, &fid9, 1, NULL, &error);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_BUSY);
    g_assert_nonnull(strstr(error->message, "“guest3”"));
    g_clear_error(&error);

    /* If libvirt cannot be asked, the guard refuses. */
    l.fail = TRUE;
    report = run(fx, FALSE, &fid9, 1, NULL, &error);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_BUSY);
    g_assert_nonnull(strstr(error->message, "libvirtd is not running"));
    zpcid_binder_set_domain_lookup(fx->binder, NULL, NULL, NULL);
}

static void
test_guard_no_lookup_warns(Fx *fx, gconstpointer data)
{
    guint32 fid = fx_fid(fx, 2);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = run(fx, TRUE, &fid, 1, NULL, &error);

    g_assert_no_error(error);
    g_assert_cmpuint(report->warnings->len, ==, 1);
    g_assert_nonnull(strstr(g_ptr_array_index(report->warnings, 0), "libvirt domains were not checked"));
}

static void
fx_setup_standby(Fx *fx, gconstpointer data)
{
    static const char *const args[] = {"--functions", "16", "--standby", "1", NULL};
    fx_setup_args(fx, args);
}

static void
test_guard_standby(Fx *fx, gconstpointer data)
{
    ZpcidFunction *f = fx_function(fx, 16);
    guint32 fid = (guint32)f->fid;
    guint32 fids[] = {fx_fid(fx, 2), fid};
    g_autofree char *before = bt_snapshot(fx->root);
    g_autoptr(GError) error = NULL;

    g_assert_null(f->address);
    g_assert_null(run(fx, TRUE, fids, 2, NULL, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_BUSY);
    g_assert_nonnull(strstr(error->message, "standby"));
    assert_unchanged(fx, before);
}

static void
test_guard_standby_slot(Fx *fx, gconstpointer data)
{
    /* The slot went to standby under us; the inventory has not seen it yet. */
    guint32 fid = fx_fid(fx, 2);
    g_autofree char *rel = g_strdup_printf("sys/bus/pci/slots/%08x/power", fid);
    g_autofree char *path = g_build_filename(fx->root, rel, NULL);

    g_assert_true(g_file_set_contents(path, "0\n", -1, NULL));
    assert_guarded(fx, 2, "is in standby", -1);
}

static void
test_guard_iommu(Fx *fx, gconstpointer data)
{
    ZpcidFunction *f = fx_function(fx, 2);
    g_autofree char *link = g_build_filename(fx->root, f->devpath, "iommu_group", NULL);
    guint32 fid = (guint32)f->fid;
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    g_autoptr(GError) error = NULL;

    g_assert_cmpint(g_unlink(link), ==, 0);
    assert_guarded(fx, 2, "has no IOMMU group", -1);
    /* Not overridable. */
    opts.allow_guards = ZPCID_GUARD_BIT(ZPCID_GUARD_IOMMU_GROUP);
    g_assert_null(run(fx, TRUE, &fid, 1, &opts, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
}

static void
test_guard_identity_fid(Fx *fx, gconstpointer data)
{
    /* The address now belongs to another function (hotplug reused it). */
    ZpcidFunction *f = fx_function(fx, 2);
    g_autofree char *path = g_build_filename(fx->root, f->devpath, "function_id", NULL);

    g_assert_true(g_file_set_contents(path, "0x0badf00d\n", -1, NULL));
    assert_guarded(fx, 2, "now has the FID 0x0badf00d", -1);
}

static void
test_guard_identity_uid(Fx *fx, gconstpointer data)
{
    ZpcidFunction *f = fx_function(fx, 2);
    g_autofree char *path = g_build_filename(fx->root, f->devpath, "uid", NULL);

    g_assert_true(g_file_set_contents(path, "0x7777\n", -1, NULL));
    assert_guarded(fx, 2, "now has the UID 0x7777", -1);
}

static void
test_guard_all_or_nothing(Fx *fx, gconstpointer data)
{
    /* One refused function stops the whole request before anything is written; every
     * refusal is reported at once. */
    guint32 fids[] = {fx_fid(fx, 2), fx_fid(fx, 0), fx_fid(fx, 9), fx_fid(fx, 12)};
    g_autofree char *before = bt_snapshot(fx->root);
    g_autoptr(GError) error = NULL;

    g_assert_null(run(fx, TRUE, fids, 4, NULL, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_BUSY);
    g_assert_nonnull(strstr(error->message, "(guard “net”)"));
    g_assert_nonnull(strstr(error->message, "(guard “block”)"));
    assert_unchanged(fx, before);
    g_assert_false(g_file_test(zpcid_journal_get_path(zpcid_binder_get_journal(fx->binder)),
                               G_FILE_TEST_EXISTS));
}

/* ---- faults: every one leaves every function as it was ---- */

static guint32 fault_fids[3];

static void
fault_set(Fx *fx)
{
    fault_fids[0] = fx_fid(fx, 2);  /* ism */
    fault_fids[1] = fx_fid(fx, 9);  /* nvme */
    fault_fids[2] = fx_fid(fx, 10); /* mlx5_core */
}

static GError *
fault_bind(Fx *fx, const ZpcidBindOptions *opts, const char *before)
{
    GError *error = NULL;
    ZpcidBindReport *report = run(fx, TRUE, fault_fids, 3, opts, &error);

    g_assert_null(report);
    g_assert_nonnull(error);
    wait_idle(fx, fault_fids, 3);
    bt_fault_clear(fx->root);
    assert_unchanged(fx, before);
    for (guint i = 0; i < 3; i++)
        g_assert_null(zpcid_binder_get_host_driver(fx->binder, fault_fids[i]));
    return error;
}

static void
assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        g_error("“%s” not in: %s", needle, haystack);
}

static void
test_fault_unbind_ebusy(Fx *fx, gconstpointer data)
{
    g_autofree char *before = bt_snapshot(fx->root);
    g_autoptr(GError) error = NULL;
    g_autofree char *fid = NULL;

    fault_set(fx);
    bt_fault_errno(fx->root, "unbind", fx_addr(fx, 10), EBUSY);
    error = fault_bind(fx, NULL, before);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_BUSY);
    fid = g_strdup_printf("0x%08x (%s)", fault_fids[2], fx_addr(fx, 10));
    assert_contains(error->message, fid);
    assert_contains(error->message, "step “unbind”");
    assert_contains(error->message, "sys/bus/pci/drivers/mlx5_core/unbind");
    assert_contains(error->message, "errno 16 (EBUSY");
    assert_contains(error->message, "Every function was left as it was.");
}

static void
test_fault_override_einval(Fx *fx, gconstpointer data)
{
    g_autofree char *before = bt_snapshot(fx->root);
    g_autoptr(GError) error = NULL;

    fault_set(fx);
    bt_fault_errno(fx->root, "override", fx_addr(fx, 9), EINVAL);
    error = fault_bind(fx, NULL, before);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    assert_contains(error->message, "driver_override");
    assert_contains(error->message, "errno 22 (EINVAL");
}

static void
test_fault_probe_nothing(Fx *fx, gconstpointer data)
{
    g_autofree char *before = bt_snapshot(fx->root);
    g_autoptr(GError) error = NULL;

    fault_set(fx);
    bt_fault_probe_nothing(fx->root, fx_addr(fx, 9));
    error = fault_bind(fx, NULL, before);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED);
    assert_contains(error->message, "step “probe”");
    assert_contains(error->message, "no driver is bound; “vfio-pci” was expected");
}

static void
test_fault_probe_wrong(Fx *fx, gconstpointer data)
{
    g_autofree char *before = bt_snapshot(fx->root);
    g_autoptr(GError) error = NULL;

    fault_set(fx);
    bt_fault_probe_wrong(fx->root, fx_addr(fx, 9), "ism");
    error = fault_bind(fx, NULL, before);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED);
    assert_contains(error->message, "the driver “ism” is bound instead of “vfio-pci”");
}

static void
test_fault_slow_unbind(Fx *fx, gconstpointer data)
{
    g_autofree char *before = bt_snapshot(fx->root);
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    g_autoptr(GError) error = NULL;
    gint64 t0 = g_get_monotonic_time();
    ZpcidBindReport *report;

    fault_set(fx);
    opts.timeout_ms = 200;
    bt_fault_delay(fx->root, "unbind", fx_addr(fx, 10), 1500);
    report = run(fx, TRUE, fault_fids, 3, &opts, &error);
    g_assert_null(report);
    /* Reported without waiting for the kernel... */
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 1400 * G_TIME_SPAN_MILLISECOND);
    assert_contains(error->message, "did not finish within 200 ms");
    assert_contains(error->message, "still waiting for the kernel");
    /* ...and the function stays busy until its write returns and it is moved back. */
    g_assert_true(zpcid_binder_is_busy(fx->binder, fault_fids[2]));
    g_assert_false(zpcid_binder_is_busy(fx->binder, fault_fids[0]));
    wait_idle(fx, fault_fids, 3);
    bt_fault_clear(fx->root);
    assert_unchanged(fx, before);
}

static void
check_vanish(Fx *fx, gboolean after)
{
    g_autofree char *before = bt_snapshot(fx->root);
    g_autofree char *gone = NULL;
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) lines_before = NULL;
    g_autofree char *after_snap = NULL;
    g_autoptr(GString) kept = g_string_new(NULL);
    ZpcidBindReport *report;

    fault_set(fx);
    gone = g_strdup(fx_addr(fx, 9));
    bt_fault_vanish(fx->root, "probe", gone, after);
    report = run(fx, TRUE, fault_fids, 3, NULL, &error);
    g_assert_null(report);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND);
    assert_contains(error->message, gone);
    assert_contains(error->message, after ? "disappeared" : "errno 19 (ENODEV");
    bt_fault_clear(fx->root);
    g_assert_cmpuint(n_transactions(fx), ==, 0);
    /* Every other function is back; the one that left is simply gone. */
    lines_before = g_strsplit(before, "\n", -1);
    for (guint i = 0; lines_before[i] != NULL; i++) {
        if (strstr(lines_before[i], gone) == NULL && *lines_before[i] != '\0')
            g_string_append_printf(kept, "%s\n", lines_before[i]);
    }
    after_snap = bt_snapshot(fx->root);
    g_assert_null(strstr(after_snap, gone));
    g_assert_cmpstr(after_snap, ==, kept->str);
}

static void
test_fault_vanish(Fx *fx, gconstpointer data)
{
    check_vanish(fx, FALSE);
}

static void
test_fault_vanish_after(Fx *fx, gconstpointer data)
{
    check_vanish(fx, TRUE);
}

static void
test_fault_release(Fx *fx, gconstpointer data)
{
    /* Releasing: the host driver does not come back, so everything returns to vfio-pci. */
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = NULL;
    g_autofree char *bound = NULL;
    g_autofree char *after = NULL;

    fault_set(fx);
    report = run(fx, TRUE, fault_fids, 3, NULL, &error);
    g_assert_no_error(error);
    bound = bt_snapshot(fx->root);
    bt_fault_probe_nothing(fx->root, fx_addr(fx, 2));
    g_assert_null(run(fx, FALSE, fault_fids, 3, NULL, &error));
    bt_fault_clear(fx->root);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED);
    assert_contains(error->message, "no driver is bound; “ism” was expected");
    assert_unchanged(fx, bound);
    g_assert_cmpstr(zpcid_binder_get_host_driver(fx->binder, fault_fids[0]), ==, "ism");
    g_clear_error(&error);

    bt_fault_errno(fx->root, "unbind", fx_addr(fx, 10), EBUSY);
    g_assert_null(run(fx, FALSE, fault_fids, 3, NULL, &error));
    bt_fault_clear(fx->root);
    assert_contains(error->message, "vfio-pci/unbind");
    assert_unchanged(fx, bound);
}

static void
test_fault_cancel(Fx *fx, gconstpointer data)
{
    g_autofree char *before = bt_snapshot(fx->root);
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    Wait w;

    fault_set(fx);
    zpcid_binder_set_max_workers(fx->binder, 1);
    bt_fault_delay(fx->root, "unbind", fx_addr(fx, 2), 300);
    start(fx, &w, TRUE, fault_fids, 3, NULL, cancellable);
    g_usleep(100 * G_TIME_SPAN_MILLISECOND);
    g_cancellable_cancel(cancellable);
    finish(&w);
    g_assert_error(w.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error(&w.error);
    bt_fault_clear(fx->root);
    assert_unchanged(fx, before);
}

/* ---- concurrency ---- */

static void
fx_setup_64(Fx *fx, gconstpointer data)
{
    static const char *const args[] = {"--functions", "64", "--seed", "7", NULL};
    fx_setup_args(fx, args);
}

static void
test_parallel(Fx *fx, gconstpointer data)
{
    g_autoptr(GPtrArray) list = zpcid_inventory_list(fx->inv);
    g_autoptr(GArray) fids = g_array_new(FALSE, FALSE, sizeof(guint32));
    g_autoptr(GPtrArray) drivers = g_ptr_array_new_with_free_func(g_free);
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = NULL;
    g_autoptr(ZpcidBindReport) report2 = NULL;
    guint changed = 0;

    for (guint i = 0; i < list->len; i++) {
        ZpcidFunction *f = g_ptr_array_index(list, i);
        guint32 fid = (guint32)f->fid;
        g_array_append_val(fids, fid);
        g_ptr_array_add(drivers, g_strdup(f->driver));
    }
    g_assert_cmpuint(fids->len, ==, 64);
    opts.allow_guards = ALLOW_ALL;
    for (guint i = 0; i < 64; i++)
        bt_fault_delay(fx->root, "unbind", ((ZpcidFunction *)g_ptr_array_index(list, i))->address, 20);
    report = run(fx, TRUE, (guint32 *)(gpointer)fids->data, fids->len, &opts, &error);
    g_assert_no_error(error);
    for (guint i = 0; i < 64; i++) {
        ZpcidBindFunctionResult *r = g_ptr_array_index(report->functions, i);
        g_autofree char *d = fx_driver(fx, i);
        g_assert_cmpstr(d, ==, "vfio-pci");
        changed += r->outcome == ZPCID_BIND_OUTCOME_CHANGED;
    }
    g_assert_cmpuint(changed, >, 40);

    report2 = run(fx, FALSE, (guint32 *)(gpointer)fids->data, fids->len, &opts, &error);
    g_assert_no_error(error);
    for (guint i = 0; i < 64; i++) {
        const char *was = g_ptr_array_index(drivers, i);
        g_autofree char *d = fx_driver(fx, i);
        if (was != NULL && !g_str_equal(was, "vfio-pci"))
            g_assert_cmpstr(d, ==, was);
        else
            g_assert_cmpstr(d, !=, "vfio-pci");
    }
    g_assert_cmpuint(n_transactions(fx), ==, 0);
}

static void
test_race(Fx *fx, gconstpointer data)
{
    guint32 a[] = {fx_fid(fx, 2), fx_fid(fx, 10)};
    guint32 b[] = {fx_fid(fx, 10), fx_fid(fx, 9)};
    guint32 c[] = {fx_fid(fx, 9)};
    Wait w1, w2, w3, w4;

    bt_fault_delay(fx->root, "unbind", fx_addr(fx, 10), 300);
    start(fx, &w1, TRUE, a, 2, NULL, NULL);
    start(fx, &w2, TRUE, b, 2, NULL, NULL);   /* overlaps on 10 */
    start(fx, &w3, FALSE, a, 1, NULL, NULL);  /* releases 2 while it moves */
    start(fx, &w4, TRUE, c, 1, NULL, NULL);   /* disjoint: runs alongside */
    finish(&w1);
    finish(&w2);
    finish(&w3);
    finish(&w4);
    bt_fault_clear(fx->root);
    g_assert_no_error(w1.error);
    g_assert_error(w2.error, ZPCID_ERROR, ZPCID_ERROR_BUSY);
    assert_contains(w2.error->message, "busy with another request");
    g_assert_error(w3.error, ZPCID_ERROR, ZPCID_ERROR_BUSY);
    g_assert_no_error(w4.error);
    g_clear_error(&w2.error);
    g_clear_error(&w3.error);
    zpcid_bind_report_free(w1.report);
    zpcid_bind_report_free(w4.report);
    for (guint pos = 0; pos < 16; pos++) {
        g_autofree char *d = fx_driver(fx, pos);
        if (pos == 2 || pos == 9 || pos == 10)
            g_assert_cmpstr(d, ==, "vfio-pci");
    }
    /* Once the first is done, the function is free again. */
    w2.done = FALSE;
    start(fx, &w2, FALSE, b, 2, NULL, NULL);
    finish(&w2);
    g_assert_no_error(w2.error);
    zpcid_bind_report_free(w2.report);
}

/* ---- persistence and recovery ---- */

/* What a reboot does to a function: back on its native driver, no override. */
static void
reboot_function(Fx *fx, const char *address, const char *native)
{
    g_autofree char *ov = g_build_filename("sys/bus/pci/devices", address, "driver_override", NULL);
    g_autofree char *bind = g_build_filename("sys/bus/pci/drivers", native, "bind", NULL);

    kernel_write(fx, ov, "\n");
    kernel_write(fx, "sys/bus/pci/drivers/vfio-pci/unbind", address);
    kernel_write(fx, bind, address);
}

typedef struct {
    gboolean done;
    ZpcidBindReport *report;
    GError *error;
} ReapplyWait;

static void
on_reapplied(GObject *source, GAsyncResult *result, gpointer data)
{
    ReapplyWait *w = data;
    w->report = zpcid_binder_reapply_persistent_finish(ZPCID_BINDER(source), result, &w->error);
    w->done = TRUE;
}

static void
test_persistent(Fx *fx, gconstpointer data)
{
    guint32 fids[] = {fx_fid(fx, 2), fx_fid(fx, 9)};
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = NULL;
    ReapplyWait rw = {0};
    g_autofree char *d2 = NULL, *d9 = NULL;
    g_autofree char *store = NULL;
    g_autofree char *addr2 = NULL, *addr9 = NULL;

    opts.persistent = TRUE;
    opts.allow_guards = ZPCID_GUARD_BIT(ZPCID_GUARD_NET);
    report = run(fx, TRUE, fids, 1, &opts, &error);
    g_assert_no_error(error);
    g_clear_pointer(&report, zpcid_bind_report_free);
    report = run(fx, TRUE, fids + 1, 1, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(zpcid_binder_is_persistent(fx->binder, fids[0]));
    g_assert_false(zpcid_binder_is_persistent(fx->binder, fids[1]));
    g_assert_true(g_file_get_contents(zpcid_journal_get_path(zpcid_binder_get_journal(fx->binder)),
                                      &store, NULL, NULL));
    assert_contains(store, "\"format\" : \"zpcid-binder\"");
    assert_contains(store, "\"host-driver\" : \"ism\"");
    assert_contains(store, "\"allow-guards\" : [\n        \"net\"");

    /* Reboot: both functions come up on their native drivers. */
    addr2 = g_strdup(fx_addr(fx, 2));
    addr9 = g_strdup(fx_addr(fx, 9));
    fx_close(fx);
    reboot_function(fx, addr2, "ism");
    reboot_function(fx, addr9, "nvme");
    fx_open(fx);
    zpcid_binder_set_retry_base_ms(fx->binder, 10);
    g_assert_true(zpcid_binder_recover(fx->binder, &error));
    g_assert_no_error(error);
    /* The non-persistent record is stale now; the persistent one stays. */
    g_assert_null(zpcid_binder_get_host_driver(fx->binder, fids[1]));
    g_assert_true(zpcid_binder_is_persistent(fx->binder, fids[0]));

    zpcid_binder_reapply_persistent_async(fx->binder, NULL, on_reapplied, &rw);
    while (!rw.done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_no_error(rw.error);
    g_assert_cmpuint(rw.report->functions->len, ==, 1);
    zpcid_bind_report_free(rw.report);
    d2 = fx_driver(fx, 2);
    d9 = fx_driver(fx, 9);
    g_assert_cmpstr(d2, ==, "vfio-pci");
    g_assert_cmpstr(d9, ==, "nvme");

    /* Releasing forgets the persistent binding. */
    g_clear_pointer(&report, zpcid_bind_report_free);
    report = run(fx, FALSE, fids, 1, NULL, &error);
    g_assert_no_error(error);
    g_assert_false(zpcid_binder_is_persistent(fx->binder, fids[0]));
}

static void
test_persistent_noop(Fx *fx, gconstpointer data)
{
    /* Already on vfio-pci: nothing to do now, but it is to be bound at every start. */
    guint32 fid = fx_fid(fx, 4);
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = NULL;

    opts.persistent = TRUE;
    report = run(fx, TRUE, &fid, 1, &opts, &error);
    g_assert_no_error(error);
    g_assert_true(zpcid_binder_is_persistent(fx->binder, fid));
    g_assert_null(zpcid_binder_get_host_driver(fx->binder, fid));
}

static void
test_reapply_backoff(Fx *fx, gconstpointer data)
{
    guint32 fid = fx_fid(fx, 2);
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = NULL;
    ReapplyWait rw = {0};
    gint64 t0;
    guint64 elapsed;
    g_autofree char *addr = NULL;

    opts.persistent = TRUE;
    report = run(fx, TRUE, &fid, 1, &opts, &error);
    g_assert_no_error(error);
    addr = g_strdup(fx_addr(fx, 2));
    fx_close(fx);
    reboot_function(fx, addr, "ism");
    fx_open(fx);
    g_assert_true(zpcid_binder_recover(fx->binder, &error));
    /* Every attempt fails: the binder retries with growing pauses, then gives up. */
    bt_fault_errno(fx->root, "override", fx_addr(fx, 2), EIO);
    zpcid_binder_set_retry_base_ms(fx->binder, 10);
    t0 = g_get_monotonic_time();
    zpcid_binder_reapply_persistent_async(fx->binder, NULL, on_reapplied, &rw);
    while (!rw.done)
        g_main_context_iteration(NULL, TRUE);
    elapsed = (guint64)(g_get_monotonic_time() - t0);
    bt_fault_clear(fx->root);
    g_assert_no_error(rw.error);
    g_assert_cmpuint(rw.report->functions->len, ==, 0);
    g_assert_cmpuint(rw.report->warnings->len, ==, 1);
    assert_contains(g_ptr_array_index(rw.report->warnings, 0), "after 8 attempts");
    zpcid_bind_report_free(rw.report);
    /* 10 + 20 + 40 + ... + 640 ms of pauses: back-off, not a retry storm. */
    g_assert_cmpuint(elapsed, >=, 1270 * G_TIME_SPAN_MILLISECOND);
    g_assert_true(zpcid_binder_is_persistent(fx->binder, fid));
}

static gboolean
cancel_later(gpointer data)
{
    g_cancellable_cancel(data);
    return G_SOURCE_REMOVE;
}

static void
test_reapply_cancel(Fx *fx, gconstpointer data)
{
    /* Cancelling ends the waits between retries at once (the daemon stopping). */
    guint32 fid = fx_fid(fx, 2);
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = NULL;
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    g_autofree char *addr = NULL;
    ReapplyWait rw = {0};
    gint64 t0;

    opts.persistent = TRUE;
    report = run(fx, TRUE, &fid, 1, &opts, &error);
    g_assert_no_error(error);
    addr = g_strdup(fx_addr(fx, 2));
    fx_close(fx);
    reboot_function(fx, addr, "ism");
    fx_open(fx);
    g_assert_true(zpcid_binder_recover(fx->binder, &error));
    bt_fault_errno(fx->root, "override", addr, EIO);
    zpcid_binder_set_retry_base_ms(fx->binder, 5000);
    t0 = g_get_monotonic_time();
    zpcid_binder_reapply_persistent_async(fx->binder, cancellable, on_reapplied, &rw);
    g_timeout_add(100, cancel_later, cancellable);
    while (!rw.done)
        g_main_context_iteration(NULL, TRUE);
    bt_fault_clear(fx->root);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 3 * G_TIME_SPAN_SECOND);
    g_assert_no_error(rw.error);
    g_assert_cmpuint(rw.report->functions->len, ==, 0);
    zpcid_bind_report_free(rw.report);
}

static void
test_store_damaged(Fx *fx, gconstpointer data)
{
    g_autofree char *path = g_build_filename(fx->state, "binder.json", NULL);
    g_autofree char *back = NULL;
    g_autoptr(GError) error = NULL;
    ZpcidBinder *b;

    fx_close(fx);
    g_assert_true(g_file_set_contents(path, "{ not json", -1, NULL));
    fx->host = zpcid_host_new(fx->root, NULL);
    fx->inv = zpcid_inventory_new(fx->host);
    b = zpcid_binder_new(fx->host, fx->inv, fx->state, 0, &error);
    g_assert_null(b);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED);
    g_clear_error(&error);
    g_assert_true(g_file_get_contents(path, &back, NULL, NULL));
    g_assert_cmpstr(back, ==, "{ not json");

    g_assert_true(g_file_set_contents(path, "{\"format\": \"zpcid-binder\", \"version\": 2}", -1, NULL));
    b = zpcid_binder_new(fx->host, fx->inv, fx->state, 0, &error);
    g_assert_null(b);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_UNSUPPORTED);
    g_clear_error(&error);

    g_assert_true(g_file_set_contents(path, "{\"format\": \"something-else\", \"version\": 1}", -1, NULL));
    b = zpcid_binder_new(fx->host, fx->inv, fx->state, 0, &error);
    g_assert_null(b);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED);
}

static void
test_store_locked(Fx *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    ZpcidBinder *second = zpcid_binder_new(fx->host, fx->inv, fx->state, 0, &error);

    g_assert_null(second);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_BUSY);
}

static void
test_journal_roundtrip(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *tmp = g_dir_make_tmp("zpcid-bind-XXXXXX", &error);
    g_autoptr(ZpcidJournal) j = zpcid_journal_open(tmp, &error);
    g_autoptr(ZpcidJournalTxn) t = zpcid_journal_txn_new("bind");
    ZpcidJournalMember *m = zpcid_journal_member_new();
    g_autoptr(GPtrArray) set = g_ptr_array_new_with_free_func((GDestroyNotify)zpcid_journal_binding_free);
    ZpcidJournalBinding *b = g_new0(ZpcidJournalBinding, 1);
    g_autoptr(GPtrArray) txns = NULL;
    g_autoptr(ZpcidJournal) j2 = NULL;
    g_autoptr(ZpcidJournalBinding) found = NULL;
    ZpcidJournalMember *m2;
    guint32 fid = 0x11;

    g_assert_no_error(error);
    m->fid = 0x11;
    m->uid = 5;
    m->address = g_strdup("0005:00:00.0");
    m->driver_before = g_strdup("mlx5_core");
    m->driver_after = g_strdup("vfio-pci");
    m->override_after = g_strdup("vfio-pci");
    g_ptr_array_add(t->members, m);
    g_array_append_val(t->fids, fid);
    t->persistent = TRUE;
    g_assert_true(zpcid_journal_begin(j, t, &error));
    g_assert_nonnull(t->id);
    g_assert_true(zpcid_journal_note_step(j, t->id, 0x11, "unbind", "/x/unbind", FALSE, &error));
    g_assert_no_error(error);

    /* What a crashed daemon leaves is what the next one reads. */
    zpcid_journal_free(g_steal_pointer(&j));
    j2 = zpcid_journal_open(tmp, &error);
    g_assert_no_error(error);
    txns = zpcid_journal_dup_transactions(j2);
    g_assert_cmpuint(txns->len, ==, 1);
    m2 = g_ptr_array_index(((ZpcidJournalTxn *)g_ptr_array_index(txns, 0))->members, 0);
    g_assert_cmpuint(m2->fid, ==, 0x11);
    g_assert_cmpint(m2->uid, ==, 5);
    g_assert_cmpstr(m2->driver_before, ==, "mlx5_core");
    g_assert_null(m2->override_before);
    g_assert_cmpstr(m2->step, ==, "unbind");
    g_assert_true(((ZpcidJournalTxn *)g_ptr_array_index(txns, 0))->persistent);

    b->fid = 0x11;
    b->uid = 5;
    b->host_driver = g_strdup("mlx5_core");
    g_ptr_array_add(set, b);
    g_assert_true(zpcid_journal_commit(j2, t->id, set, NULL, 0, &error));
    g_clear_pointer(&txns, g_ptr_array_unref);
    txns = zpcid_journal_dup_transactions(j2);
    g_assert_cmpuint(txns->len, ==, 0);
    found = zpcid_journal_lookup_binding(j2, 0x11);
    g_assert_cmpstr(found->host_driver, ==, "mlx5_core");
    bt_remove_tmp(tmp);
}

static void
test_live_refused(void)
{
    /* A binder on the real root without the live flag never changes anything: here, it
     * refuses to replay a journal (which it would have to write to the kernel for). */
    g_autoptr(GError) error = NULL;
    g_autofree char *tmp = g_dir_make_tmp("zpcid-bind-XXXXXX", &error);
    g_autoptr(ZpcidHost) host = zpcid_host_new("/", &error);
    g_autoptr(ZpcidInventory) inv = zpcid_inventory_new(host);
    g_autofree char *path = g_build_filename(tmp, "binder.json", NULL);
    g_autoptr(ZpcidBinder) binder = NULL;

    g_assert_true(zpcid_host_is_live(host));
    g_assert_true(g_file_set_contents(
        path,
        "{\"format\": \"zpcid-binder\", \"version\": 1, \"bindings\": [], \"transactions\": "
        "[{\"id\": \"t\", \"operation\": \"bind\", \"functions\": [{\"fid\": 4294967040, "
        "\"uid\": 1, \"driver-before\": \"ism\"}]}]}",
        -1, NULL));
    binder = zpcid_binder_new(host, inv, tmp, ZPCID_BINDER_FLAGS_NONE, &error);
    g_assert_no_error(error);
    g_assert_false(zpcid_binder_recover(binder, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_AUTHORIZED);
    g_clear_object(&binder);
    bt_remove_tmp(tmp);
}

/* ---- crash at every step ---- */

typedef struct {
    int status;  /* exit status, or -signal */
    guint points;
    char *err;
} HelperResult;

static HelperResult
helper(const char *root, const char *state, const char *op, const char *fids, guint crash_at,
       const char *workers)
{
    const char *path = g_getenv("ZPCID_BIND_HELPER");
    const char *argv[] = {path, root, state, op, fids, workers, NULL};
    g_auto(GStrv) env = g_get_environ();
    g_autofree char *out = NULL;
    g_autoptr(GError) error = NULL;
    HelperResult r = {0};
    gint status;
    const char *p;

    g_assert_nonnull(path);
    env = g_environ_setenv(env, "ZPCID_SIMKERNEL_ROOT", root, TRUE);
    if (crash_at > 0) {
        g_autofree char *n = g_strdup_printf("%u", crash_at);
        env = g_environ_setenv(env, "ZPCID_CRASH_AT_STEP", n, TRUE);
    } else {
        env = g_environ_unsetenv(env, "ZPCID_CRASH_AT_STEP");
    }
    g_assert_true(g_spawn_sync(NULL, (char **)argv, env, 0, NULL, NULL, &out, &r.err, &status,
                               &error));
    g_assert_no_error(error);
    if (WIFSIGNALED(status))
        r.status = -WTERMSIG(status);
    else
        r.status = WEXITSTATUS(status);
    p = out != NULL ? strstr(out, "points=") : NULL;
    if (p != NULL)
        r.points = (guint)g_ascii_strtoull(p + 7, NULL, 10);
    return r;
}

/* FID -> host driver of the bindings in the store, and the number of open transactions. */
static GHashTable *
read_store(const char *state, guint *n_txns)
{
    g_autofree char *path = g_build_filename(state, "binder.json", NULL);
    GHashTable *map = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *o;
    JsonArray *arr;

    *n_txns = 0;
    if (!g_file_test(path, G_FILE_TEST_EXISTS))
        return map;
    g_assert_true(json_parser_load_from_file(parser, path, NULL));
    o = json_node_get_object(json_parser_get_root(parser));
    arr = json_object_get_array_member(o, "bindings");
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *b = json_array_get_object_element(arr, i);
        const char *drv = json_object_get_null_member(b, "host-driver")
                              ? "" : json_object_get_string_member(b, "host-driver");
        g_hash_table_insert(map, GUINT_TO_POINTER((guint32)json_object_get_int_member(b, "fid")),
                            g_strdup(drv));
    }
    *n_txns = json_array_get_length(json_object_get_array_member(o, "transactions"));
    return map;
}

typedef struct {
    const char *op;
    gboolean start_bound; /* the functions start on vfio-pci (bound by a clean run) */
    gboolean fault;       /* the last function's unbind fails: every run rolls back */
    const char *workers;
} CrashCase;

static void
test_crash(gconstpointer data)
{
    const CrashCase *cc = data;
    static const char *const args[] = {"--functions", "13", NULL};
    g_autoptr(GError) error = NULL;
    g_autofree char *tmp = g_dir_make_tmp("zpcid-bind-XXXXXX", &error);
    g_autofree char *tmpl = g_build_filename(tmp, "template", NULL);
    g_autofree char *tmpl_state = g_build_filename(tmp, "template-state", NULL);
    g_autofree char *root = g_build_filename(tmp, "host", NULL);
    g_autofree char *state = g_build_filename(tmp, "state", NULL);
    g_autofree char *native = NULL;
    g_autofree char *bound = NULL;
    g_autofree char *fid_list = NULL;
    g_autofree char *last_addr = NULL;
    guint32 fids[3];
    guint crashes = 0;

    bt_make_host(tmpl, args);
    {
        g_autoptr(ZpcidHost) host = zpcid_host_new(tmpl, NULL);
        g_autoptr(ZpcidInventory) inv = zpcid_inventory_new(host);
        g_autoptr(GPtrArray) list = NULL;
        g_assert_true(zpcid_inventory_scan(inv, NULL));
        list = zpcid_inventory_list(inv);
        /* ism, nvme, mlx5_core: three drivers, all idle. */
        fids[0] = (guint32)((ZpcidFunction *)g_ptr_array_index(list, 2))->fid;
        fids[1] = (guint32)((ZpcidFunction *)g_ptr_array_index(list, 9))->fid;
        fids[2] = (guint32)((ZpcidFunction *)g_ptr_array_index(list, 10))->fid;
        last_addr = g_strdup(((ZpcidFunction *)g_ptr_array_index(list, 10))->address);
    }
    fid_list = g_strdup_printf("0x%x,0x%x,0x%x", fids[0], fids[1], fids[2]);
    native = bt_snapshot(tmpl);

    /* The bound state, from a clean run on a copy. */
    bt_copy_tree(tmpl, root);
    {
        HelperResult r = helper(root, state, "bind", fid_list, 0, "1");
        g_assert_cmpint(r.status, ==, 0);
        g_free(r.err);
    }
    bound = bt_snapshot(root);
    g_assert_cmpstr(bound, !=, native);
    if (cc->start_bound) {
        const char *argv[] = {"rm", "-rf", tmpl, NULL};
        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                   NULL, NULL, NULL, NULL));
        bt_copy_tree(root, tmpl);
        bt_copy_tree(state, tmpl_state);
    }

    for (guint n = 1;; n++) {
        const char *argv[] = {"rm", "-rf", state, NULL};
        HelperResult r, rec;
        g_autofree char *snap = NULL;
        g_autoptr(GHashTable) store = NULL;
        guint n_txns;
        gboolean at_start, at_end;

        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                   NULL, NULL, NULL, NULL));
        bt_reset_tree(root, tmpl);
        snap = bt_snapshot(root);
        g_assert_cmpstr(snap, ==, cc->start_bound ? bound : native);
        g_clear_pointer(&snap, g_free);
        if (cc->start_bound)
            bt_copy_tree(tmpl_state, state);
        if (cc->fault)
            bt_fault_errno(root, "unbind", last_addr, EBUSY);

        r = helper(root, state, cc->op, fid_list, n, cc->workers);
        if (r.status == 0 || r.status == 1) {
            /* The run got past its last crash point: every point has been tried. (In
             * parallel runs group commit varies the number of journal writes a little.) */
            if (r.status != (cc->fault ? 1 : 0) || r.points >= n)
                g_error("the run to crash at point %u ended with status %d after %u points: %s", n,
                        r.status, r.points, r.err);
            g_free(r.err);
            break;
        }
        g_assert_cmpint(r.status, ==, -SIGKILL);
        g_free(r.err);
        crashes++;
        bt_fault_clear(root);

        rec = helper(root, state, "recover", "", 0, NULL);
        if (rec.status != 0)
            g_error("recovery after a crash at point %u failed: %s", n, rec.err);
        g_free(rec.err);

        /* Consistent: every function where the request found it, or every function where
         * it was going; the journal is empty; the store says exactly which. */
        snap = bt_snapshot(root);
        at_start = g_str_equal(snap, cc->start_bound ? bound : native);
        at_end = g_str_equal(snap, cc->start_bound ? native : bound);
        if (!at_start && !at_end)
            g_error("inconsistent host after a crash at point %u:\n%s", n, snap);
        if (cc->fault)
            g_assert_true(at_start);
        store = read_store(state, &n_txns);
        g_assert_cmpuint(n_txns, ==, 0);
        for (guint i = 0; i < 3; i++) {
            const char *drv = g_hash_table_lookup(store, GUINT_TO_POINTER(fids[i]));
            gboolean on_vfio = cc->start_bound ? at_start : at_end;
            static const char *const natives[] = {"ism", "nvme", "mlx5_core"};
            if (on_vfio)
                g_assert_cmpstr(drv, ==, natives[i]);
            else
                g_assert_null(drv);
        }
    }
    g_assert_cmpuint(crashes, >=, 10);
    if (g_test_verbose())
        g_test_message("%s: %u crash points, every one recovered", cc->op, crashes);
    bt_remove_tmp(tmp);
}

/* A device that is there but cannot be read is not a deconfigured one: recovery keeps the
 * whole transaction (deciding to complete or undo needs every member) and reports it, and
 * the next recovery, with the device readable again, undoes the move. Recovery used to take
 * the unreadable function for gone, forget it, and leave it half moved. */
static void
test_crash_unreadable(void)
{
    static const char *const args[] = {"--functions", "13", NULL};
    g_autoptr(GError) error = NULL;
    g_autofree char *tmp = g_dir_make_tmp("zpcid-bind-XXXXXX", &error);
    g_autofree char *root = g_build_filename(tmp, "host", NULL);
    g_autofree char *state = g_build_filename(tmp, "state", NULL);
    g_autofree char *native = NULL;
    g_autofree char *half = NULL;
    g_autofree char *snap = NULL;
    g_autofree char *fid_list = NULL;
    g_autofree char *fid_attr = NULL;
    g_autofree char *fid_saved = NULL;
    g_autoptr(GHashTable) store = NULL;
    HelperResult r;
    guint n_txns;

    bt_make_host(root, args);
    {
        g_autoptr(ZpcidHost) host = zpcid_host_new(root, NULL);
        g_autoptr(ZpcidInventory) inv = zpcid_inventory_new(host);
        g_autoptr(GPtrArray) list = NULL;
        ZpcidFunction *first, *second;
        g_autofree char *dev = NULL;
        g_autofree char *real = NULL;

        g_assert_true(zpcid_inventory_scan(inv, NULL));
        list = zpcid_inventory_list(inv);
        first = g_ptr_array_index(list, 2);
        second = g_ptr_array_index(list, 9);
        fid_list = g_strdup_printf("0x%x,0x%x", (guint32)first->fid, (guint32)second->fid);
        dev = g_build_filename(root, "sys/bus/pci/devices", first->address, NULL);
        real = realpath(dev, NULL);
        g_assert_nonnull(real);
        fid_attr = g_build_filename(real, "function_id", NULL);
        fid_saved = g_build_filename(real, "function_id.saved", NULL);
    }
    native = bt_snapshot(root);

    /* Point 6: the first function is off its driver (1-2: the journal's first record, 3-4:
     * the override, 5-6: the unbind). */
    r = helper(root, state, "bind", fid_list, 6, "1");
    g_assert_cmpint(r.status, ==, -SIGKILL);
    g_free(r.err);
    half = bt_snapshot(root);
    g_assert_cmpstr(half, !=, native);

    /* Its function_id turns into something read() refuses: the device is there, unreadable. */
    g_assert_cmpint(g_rename(fid_attr, fid_saved), ==, 0);
    g_assert_cmpint(g_mkdir(fid_attr, 0755), ==, 0);
    r = helper(root, state, "recover", "", 0, NULL);
    g_assert_cmpint(r.status, ==, 1);
    g_assert_nonnull(strstr(r.err, "cannot be read to move it back"));
    g_free(r.err);
    snap = bt_snapshot(root);
    g_assert_cmpstr(snap, ==, half);
    store = read_store(state, &n_txns);
    g_assert_cmpuint(n_txns, ==, 1);
    g_clear_pointer(&store, g_hash_table_unref);
    g_clear_pointer(&snap, g_free);

    g_assert_cmpint(g_rmdir(fid_attr), ==, 0);
    g_assert_cmpint(g_rename(fid_saved, fid_attr), ==, 0);
    r = helper(root, state, "recover", "", 0, NULL);
    if (r.status != 0)
        g_error("recovery with the function readable again failed: %s", r.err);
    g_free(r.err);
    snap = bt_snapshot(root);
    g_assert_cmpstr(snap, ==, native);
    store = read_store(state, &n_txns);
    g_assert_cmpuint(n_txns, ==, 0);
    g_assert_cmpuint(g_hash_table_size(store), ==, 0);
    bt_remove_tmp(tmp);
}

int
main(int argc, char **argv)
{
    static const CrashCase crash_bind = {"bind", FALSE, FALSE, "1"};
    static const CrashCase crash_bind_parallel = {"bind", FALSE, FALSE, "3"};
    static const CrashCase crash_unbind = {"unbind", TRUE, FALSE, "1"};
    static const CrashCase crash_rollback = {"bind", FALSE, TRUE, "1"};

    g_test_init(&argc, &argv, NULL);

#define FX(path, fn) g_test_add(path, Fx, NULL, fx_setup, fn, fx_teardown)
    FX("/binder/bind-unbind", test_bind_unbind);
    FX("/binder/bind-unbound", test_bind_unbound);
    FX("/binder/noop", test_noop);
    FX("/binder/unbind-foreign", test_unbind_foreign);
    FX("/binder/dry-run", test_dry_run);
    FX("/binder/deferred-refresh", test_deferred_refresh);
    FX("/binder/invalid", test_invalid);
    FX("/binder/owner", test_owner);
    g_test_add_func("/binder/options-variant", test_options_variant);
    g_test_add("/binder/vfio-not-loaded", Fx, NULL, fx_setup_no_vfio, test_vfio_not_loaded,
               fx_teardown);

    FX("/binder/guard/net-up", test_guard_net_up);
    FX("/binder/guard/net-virtio", test_guard_net_virtio);
    FX("/binder/guard/net-addresses", test_guard_net_addresses);
    FX("/binder/guard/net-route", test_guard_net_route);
    FX("/binder/guard/net-down", test_guard_net_down);
    FX("/binder/guard/block-mounted", test_guard_block_mounted);
    FX("/binder/guard/block-swap", test_guard_block_swap);
    FX("/binder/guard/block-virtio", test_guard_block_virtio);
    FX("/binder/guard/block-holders", test_guard_block_holders);
    g_test_add("/binder/guard/sriov", Fx, NULL, fx_setup_sriov, test_guard_sriov, fx_teardown);
    FX("/binder/guard/domain", test_guard_domain);
    FX("/binder/guard/no-lookup-warns", test_guard_no_lookup_warns);
    g_test_add("/binder/guard/standby", Fx, NULL, fx_setup_standby, test_guard_standby, fx_teardown);
    FX("/binder/guard/standby-slot", test_guard_standby_slot);
    FX("/binder/guard/iommu-group", test_guard_iommu);
    FX("/binder/guard/identity-fid", test_guard_identity_fid);
    FX("/binder/guard/identity-uid", test_guard_identity_uid);
    FX("/binder/guard/all-or-nothing", test_guard_all_or_nothing);

    FX("/binder/fault/unbind-ebusy", test_fault_unbind_ebusy);
    FX("/binder/fault/override-einval", test_fault_override_einval);
    FX("/binder/fault/probe-binds-nothing", test_fault_probe_nothing);
    FX("/binder/fault/probe-binds-wrong-driver", test_fault_probe_wrong);
    FX("/binder/fault/slow-unbind-timeout", test_fault_slow_unbind);
    FX("/binder/fault/device-vanishes", test_fault_vanish);
    FX("/binder/fault/device-vanishes-after", test_fault_vanish_after);
    FX("/binder/fault/release", test_fault_release);
    FX("/binder/fault/cancel", test_fault_cancel);

    g_test_add("/binder/parallel-64", Fx, NULL, fx_setup_64, test_parallel, fx_teardown);
    FX("/binder/race", test_race);

    FX("/binder/persistent", test_persistent);
    FX("/binder/persistent-noop", test_persistent_noop);
    FX("/binder/reapply-backoff", test_reapply_backoff);
    FX("/binder/reapply-cancel", test_reapply_cancel);
    FX("/binder/store/damaged", test_store_damaged);
    FX("/binder/store/locked", test_store_locked);
    g_test_add_func("/binder/journal/roundtrip", test_journal_roundtrip);
    g_test_add_func("/binder/live-refused", test_live_refused);

    g_test_add_data_func("/binder/crash/bind", &crash_bind, test_crash);
    g_test_add_data_func("/binder/crash/bind-parallel", &crash_bind_parallel, test_crash);
    g_test_add_data_func("/binder/crash/unbind", &crash_unbind, test_crash);
    g_test_add_data_func("/binder/crash/rollback", &crash_rollback, test_crash);
    g_test_add_func("/binder/crash/unreadable", test_crash_unreadable);
#undef FX

    return g_test_run();
}
