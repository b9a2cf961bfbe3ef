/* Runs one binder operation against a host tree and can kill itself in the middle.
 *
 *   zpcid-bind-helper ROOT STATE_DIR bind|unbind FID[,FID...] [WORKERS]
 *   zpcid-bind-helper ROOT STATE_DIR recover
 *
 * With ZPCID_CRASH_AT_STEP=N it sends itself SIGKILL at the N-th crash point: before and
 * after every kernel write, and before writing and before renaming each journal update.
 * On a normal end it prints "points=<number of crash points passed>". Exit status: 0 done,
 * 1 the operation failed (message on stderr), 2 usage or setup error. */
#include <glib.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "binder-private.h"
#include "binder.h"
#include "inventory.h"
#include "journal.h"

static guint crash_at;
static gint points;
/* Kernel writes are atomic for a killed process; the simulated kernel's several file
 * operations are not. Writes hold this for reading and the kill takes it for writing, so
 * that no other worker is inside one when the process dies. */
static GRWLock kernel_lock;

static void
point(void)
{
    gint n = g_atomic_int_add(&points, 1) + 1;

    if (crash_at != 0 && (guint)n == crash_at) {
        g_rw_lock_writer_lock(&kernel_lock);
        raise(SIGKILL);
    }
}

static void
on_step(guint32 fid, const char *step, gboolean after, gpointer data)
{
    if (!after) {
        point();
        g_rw_lock_reader_lock(&kernel_lock);
    } else {
        g_rw_lock_reader_unlock(&kernel_lock);
        point();
    }
}

static void
on_journal(guint n, gboolean before_rename, gpointer data)
{
    point();
}

typedef struct {
    gboolean done;
    ZpcidBindReport *report;
    GError *error;
    gboolean bind;
} Wait;

static void
on_done(GObject *source, GAsyncResult *result, gpointer data)
{
    Wait *w = data;

    w->report = w->bind ? zpcid_binder_bind_finish(ZPCID_BINDER(source), result, &w->error)
                        : zpcid_binder_unbind_finish(ZPCID_BINDER(source), result, &w->error);
    w->done = TRUE;
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidHost) host = NULL;
    g_autoptr(ZpcidInventory) inv = NULL;
    g_autoptr(ZpcidBinder) binder = NULL;
    const char *crash = g_getenv("ZPCID_CRASH_AT_STEP");

    if (argc < 4)
        return 2;
    if (crash != NULL)
        crash_at = (guint)g_ascii_strtoull(crash, NULL, 10);
    host = zpcid_host_new(argv[1], &error);
    if (host == NULL || zpcid_host_is_live(host)) {
        g_printerr("%s\n", host == NULL ? error->message : "refusing the real root");
        return 2;
    }
    inv = zpcid_inventory_new(host);
    if (!zpcid_inventory_scan(inv, &error)) {
        g_printerr("%s\n", error->message);
        return 2;
    }
    binder = zpcid_binder_new(host, inv, argv[2], ZPCID_BINDER_FLAGS_NONE, &error);
    if (binder == NULL) {
        g_printerr("%s\n", error->message);
        return 2;
    }
    zpcid_binder_set_step_hook(binder, on_step, NULL);
    zpcid_journal_set_hook(zpcid_binder_get_journal(binder), on_journal, NULL);

    if (g_str_equal(argv[3], "recover")) {
        if (!zpcid_binder_recover(binder, &error)) {
            g_printerr("%s\n", error->message);
            return 1;
        }
    } else if (argc >= 5 && (g_str_equal(argv[3], "bind") || g_str_equal(argv[3], "unbind"))) {
        g_auto(GStrv) parts = g_strsplit(argv[4], ",", -1);
        g_autoptr(GArray) fids = g_array_new(FALSE, FALSE, sizeof(guint32));
        ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
        Wait w = {0};

        for (guint i = 0; parts[i] != NULL; i++) {
            guint32 fid = (guint32)g_ascii_strtoull(parts[i], NULL, 0);
            g_array_append_val(fids, fid);
        }
        if (argc >= 6)
            zpcid_binder_set_max_workers(binder, (guint)g_ascii_strtoull(argv[5], NULL, 10));
        opts.allow_guards = ZPCID_GUARD_BIT(ZPCID_GUARD_NET) | ZPCID_GUARD_BIT(ZPCID_GUARD_BLOCK) |
                            ZPCID_GUARD_BIT(ZPCID_GUARD_DOMAIN);
        w.bind = g_str_equal(argv[3], "bind");
        if (w.bind)
            zpcid_binder_bind_async(binder, (guint32 *)(gpointer)fids->data, fids->len, &opts,
                                    NULL, on_done, &w);
        else
            zpcid_binder_unbind_async(binder, (guint32 *)(gpointer)fids->data, fids->len, &opts,
                                      NULL, on_done, &w);
        while (!w.done)
            g_main_context_iteration(NULL, TRUE);
        zpcid_bind_report_free(w.report);
        if (w.error != NULL) {
            g_printerr("%s\n", w.error->message);
            g_print("points=%d\n", g_atomic_int_get(&points));
            g_error_free(w.error);
            return 1;
        }
    } else {
        return 2;
    }
    g_print("points=%d\n", g_atomic_int_get(&points));
    return 0;
}
