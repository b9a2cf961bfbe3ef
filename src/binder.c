#include "binder.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "attr.h"
#include "binder-private.h"
#include "error.h"
#include "function.h"
#include "guards.h"
#include "journal.h"
#include "spec.h"

#define DEFAULT_MAX_WORKERS 16
#define DEFAULT_VERIFY_GRACE_MS 1000
#define DEFAULT_RETRY_BASE_MS 1000
#define REAPPLY_MAX_ATTEMPTS 8
#define REAPPLY_MAX_DELAY_FACTOR 64
/* The coordinator wakes at least this often to notice cancellation. */
#define WAIT_SLICE_US (50 * G_TIME_SPAN_MILLISECOND)
#define POLL_INTERVAL_US (5 * G_TIME_SPAN_MILLISECOND)
#define LOCK_FILE "lock"

#define PCI_BUS "sys/bus/pci"
#define PCI_DRIVERS "sys/bus/pci/drivers"
#define PCI_DEVICES "sys/bus/pci/devices"

static const char *const guard_names[ZPCID_GUARD_LAST] = {
    [ZPCID_GUARD_NET] = "net",
    [ZPCID_GUARD_BLOCK] = "block",
    [ZPCID_GUARD_SRIOV] = "sriov",
    [ZPCID_GUARD_DOMAIN] = "domain",
    [ZPCID_GUARD_STANDBY] = "standby",
    [ZPCID_GUARD_IOMMU_GROUP] = "iommu-group",
    [ZPCID_GUARD_IDENTITY] = "identity",
};

#define OVERRIDABLE_GUARDS                                                                   \
    (ZPCID_GUARD_BIT(ZPCID_GUARD_NET) | ZPCID_GUARD_BIT(ZPCID_GUARD_BLOCK) |                 \
     ZPCID_GUARD_BIT(ZPCID_GUARD_SRIOV) | ZPCID_GUARD_BIT(ZPCID_GUARD_DOMAIN))

const char *
zpcid_guard_to_string(ZpcidGuard guard)
{
    if ((guint)guard >= ZPCID_GUARD_LAST)
        return NULL;
    return guard_names[guard];
}

gboolean
zpcid_guard_from_string(const char *name, ZpcidGuard *guard, GError **error)
{
    for (guint i = 0; i < ZPCID_GUARD_LAST; i++) {
        if (g_strcmp0(name, guard_names[i]) == 0) {
            *guard = (ZpcidGuard)i;
            return TRUE;
        }
    }
    g_autofree char *quoted = zpcid_error_quote(name);
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                _("“%s” is not a guard; the guards are “net”, “block”, “sriov”, “domain”, "
                  "“standby”, “iommu-group” and “identity”."),
                quoted);
    return FALSE;
}

gboolean
zpcid_guard_is_overridable(ZpcidGuard guard)
{
    return (guint)guard < ZPCID_GUARD_LAST && (OVERRIDABLE_GUARDS & ZPCID_GUARD_BIT(guard));
}

static GStrv
guard_mask_to_strv(guint mask)
{
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();

    for (guint i = 0; i < ZPCID_GUARD_LAST; i++) {
        if (mask & ZPCID_GUARD_BIT(i))
            g_strv_builder_add(b, guard_names[i]);
    }
    return g_strv_builder_end(b);
}

static guint
guard_strv_to_mask(char **names)
{
    guint mask = 0;

    for (guint i = 0; names != NULL && names[i] != NULL; i++) {
        ZpcidGuard g;
        if (zpcid_guard_from_string(names[i], &g, NULL) && zpcid_guard_is_overridable(g))
            mask |= ZPCID_GUARD_BIT(g);
    }
    return mask;
}

/* The owner ends up in the journal, in messages and in a D-Bus property: keep it plain. */
static gboolean
owner_is_valid(const char *owner)
{
    gsize n = strlen(owner);

    if (n == 0 || n > ZPCID_BIND_OWNER_MAX)
        return FALSE;
    for (gsize i = 0; i < n; i++) {
        if (owner[i] < 0x20 || owner[i] > 0x7e)
            return FALSE;
    }
    return TRUE;
}

gboolean
zpcid_bind_options_from_variant(GVariant *asv, ZpcidBindOptions *options, GError **error)
{
    GVariantIter iter;
    const char *key;
    GVariant *value;
    ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;

    if (asv == NULL) {
        *options = opts;
        return TRUE;
    }
    if (!g_variant_is_of_type(asv, G_VARIANT_TYPE_VARDICT)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The options must be of type “a{sv}”, not “%s”."),
                    g_variant_get_type_string(asv));
        return FALSE;
    }
    g_variant_iter_init(&iter, asv);
    while (g_variant_iter_loop(&iter, "{&sv}", &key, &value)) {
        const char *expected = NULL;

        if (g_str_has_prefix(key, "auth."))
            continue;
        if (g_str_equal(key, "dry-run"))
            expected = "b";
        else if (g_str_equal(key, "persistent"))
            expected = "b";
        else if (g_str_equal(key, "timeout"))
            expected = "u";
        else if (g_str_equal(key, "allow-guards"))
            expected = "as";
        else if (g_str_equal(key, "owner"))
            expected = "s";
        if (expected == NULL) {
            g_autofree char *quoted = zpcid_error_quote(key);
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                        _("“%s” is not an option of binding; the options are “dry-run”, "
                          "“persistent”, “timeout”, “allow-guards” and “owner”."),
                        quoted);
            g_variant_unref(value);
            return FALSE;
        }
        if (!g_variant_is_of_type(value, G_VARIANT_TYPE(expected))) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                        _("The option “%s” must be of type “%s”, not “%s”."), key, expected,
                        g_variant_get_type_string(value));
            g_variant_unref(value);
            return FALSE;
        }
        if (g_str_equal(key, "dry-run")) {
            opts.dry_run = g_variant_get_boolean(value);
        } else if (g_str_equal(key, "persistent")) {
            opts.persistent = g_variant_get_boolean(value);
        } else if (g_str_equal(key, "timeout")) {
            opts.timeout_ms = g_variant_get_uint32(value);
        } else if (g_str_equal(key, "owner")) {
            /* Borrowed: @asv outlives the options (the caller keeps the message). */
            opts.owner = g_variant_get_string(value, NULL);
            if (!owner_is_valid(opts.owner)) {
                g_autofree char *quoted = zpcid_error_quote(opts.owner);
                g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                            _("The owner “%s” is not valid: it must be 1 to %d printable ASCII "
                              "characters."),
                            quoted, ZPCID_BIND_OWNER_MAX);
                g_variant_unref(value);
                return FALSE;
            }
        } else {
            g_autofree const char **names = g_variant_get_strv(value, NULL);
            for (guint i = 0; names[i] != NULL; i++) {
                ZpcidGuard g;
                if (!zpcid_guard_from_string(names[i], &g, error)) {
                    g_variant_unref(value);
                    return FALSE;
                }
                if (!zpcid_guard_is_overridable(g)) {
                    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                                _("The guard “%s” cannot be overridden: it is about whether "
                                  "the move can work at all."),
                                names[i]);
                    g_variant_unref(value);
                    return FALSE;
                }
                opts.allow_guards |= ZPCID_GUARD_BIT(g);
            }
        }
    }
    *options = opts;
    return TRUE;
}

static void
function_result_free(ZpcidBindFunctionResult *r)
{
    if (r == NULL)
        return;
    g_free(r->address);
    g_free(r->driver_before);
    g_free(r->driver_after);
    g_ptr_array_unref(r->steps);
    g_free(r);
}

static ZpcidBindReport *
report_new(void)
{
    ZpcidBindReport *report = g_new0(ZpcidBindReport, 1);

    report->functions = g_ptr_array_new_with_free_func((GDestroyNotify)function_result_free);
    report->warnings = g_ptr_array_new_with_free_func(g_free);
    return report;
}

void
zpcid_bind_report_free(ZpcidBindReport *report)
{
    if (report == NULL)
        return;
    g_ptr_array_unref(report->functions);
    g_ptr_array_unref(report->warnings);
    g_free(report);
}

/* ---- the binder object ---- */

struct _ZpcidBinder {
    GObject parent;

    ZpcidHost *host;
    ZpcidInventory *inventory;
    char *state_dir;
    ZpcidBinderFlags flags;
    int lock_fd;
    ZpcidJournal *journal;
    GThreadPool *pool;
    GMainContext *context;

    /* Main thread only. */
    guint n_running;      /* transactions whose thread has not reported back */
    GHashTable *busy;     /* fid -> TRUE while a transaction or a stuck step holds it */
    GHashTable *deferred; /* busy fids whose uevents were left to the end of the transaction */
    GHashTable *bindings; /* fid -> ZpcidJournalBinding, a copy of the store */

    GMutex lookup_lock; /* serializes the domain lookup */
    ZpcidDomainLookupFunc lookup;
    gpointer lookup_data;
    GDestroyNotify lookup_destroy;

    ZpcidBinderStepHook step_hook;
    gpointer step_hook_data;
    guint retry_base_ms;
    guint verify_grace_ms;
};

enum { SIGNAL_FUNCTION_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(ZpcidBinder, zpcid_binder, G_TYPE_OBJECT)

static void
zpcid_binder_finalize(GObject *object)
{
    ZpcidBinder *self = ZPCID_BINDER(object);

    /* Work items hold references, so no work is left; do not wait, as the last reference
     * may be dropped by a pool thread. */
    if (self->pool != NULL)
        g_thread_pool_free(self->pool, TRUE, FALSE);
    if (self->lookup_destroy != NULL)
        self->lookup_destroy(self->lookup_data);
    g_mutex_clear(&self->lookup_lock);
    g_clear_pointer(&self->journal, zpcid_journal_free);
    if (self->lock_fd >= 0)
        close(self->lock_fd);
    g_hash_table_unref(self->busy);
    g_hash_table_unref(self->deferred);
    g_hash_table_unref(self->bindings);
    g_clear_object(&self->inventory);
    g_clear_pointer(&self->host, zpcid_host_unref);
    g_clear_pointer(&self->context, g_main_context_unref);
    g_free(self->state_dir);
    G_OBJECT_CLASS(zpcid_binder_parent_class)->finalize(object);
}

static void
zpcid_binder_class_init(ZpcidBinderClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = zpcid_binder_finalize;
    signals[SIGNAL_FUNCTION_CHANGED] =
        g_signal_new("function-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                     NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
}

static void
zpcid_binder_init(ZpcidBinder *self)
{
    self->lock_fd = -1;
    self->busy = g_hash_table_new(g_direct_hash, g_direct_equal);
    self->deferred = g_hash_table_new(g_direct_hash, g_direct_equal);
    self->bindings = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                           (GDestroyNotify)zpcid_journal_binding_free);
    g_mutex_init(&self->lookup_lock);
    self->retry_base_ms = DEFAULT_RETRY_BASE_MS;
    self->verify_grace_ms = DEFAULT_VERIFY_GRACE_MS;
}

static void
reload_bindings(ZpcidBinder *self)
{
    g_autoptr(GPtrArray) all = zpcid_journal_dup_bindings(self->journal);

    g_hash_table_remove_all(self->bindings);
    for (guint i = 0; i < all->len; i++) {
        ZpcidJournalBinding *b = g_ptr_array_index(all, i);
        g_hash_table_replace(self->bindings, GUINT_TO_POINTER(b->fid),
                             zpcid_journal_binding_copy(b));
    }
}

static gboolean
take_lock(ZpcidBinder *self, GError **error)
{
    g_autofree char *path = g_build_filename(self->state_dir, LOCK_FILE, NULL);

    if (g_mkdir_with_parents(self->state_dir, 0700) < 0) {
        int saved = errno;
        g_set_error(error, ZPCID_ERROR, zpcid_error_code_from_errno(saved),
                    _("Could not create the state directory “%s”: %s."), self->state_dir,
                    g_strerror(saved));
        return FALSE;
    }
    self->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (self->lock_fd < 0) {
        int saved = errno;
        g_set_error(error, ZPCID_ERROR, zpcid_error_code_from_errno(saved),
                    _("Could not open the lock file “%s”: %s."), path, g_strerror(saved));
        return FALSE;
    }
    /* Two binders on one store would each replay and rewrite the other's journal. The lock
     * dies with the process, so a killed daemon never leaves it behind. */
    if (flock(self->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        int saved = errno;
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_BUSY,
                    saved == EWOULDBLOCK
                        ? _("Another zpcid uses the state directory “%s”.")
                        : _("Could not lock the state directory “%s”."),
                    self->state_dir);
        return FALSE;
    }
    return TRUE;
}

static void pool_func(gpointer data, gpointer user_data);

ZpcidBinder *
zpcid_binder_new(ZpcidHost *host, ZpcidInventory *inventory, const char *state_dir,
                 ZpcidBinderFlags flags, GError **error)
{
    g_autoptr(ZpcidBinder) self = g_object_new(ZPCID_TYPE_BINDER, NULL);

    g_return_val_if_fail(host != NULL && inventory != NULL && state_dir != NULL, NULL);
    self->host = zpcid_host_ref(host);
    self->inventory = g_object_ref(inventory);
    self->state_dir = g_canonicalize_filename(state_dir, NULL);
    self->flags = flags;
    self->context = g_main_context_ref_thread_default();
    if (!take_lock(self, error))
        return NULL;
    self->journal = zpcid_journal_open(self->state_dir, error);
    if (self->journal == NULL)
        return NULL;
    self->pool = g_thread_pool_new(pool_func, NULL, DEFAULT_MAX_WORKERS, FALSE, error);
    if (self->pool == NULL)
        return NULL;
    reload_bindings(self);
    return g_steal_pointer(&self);
}

void
zpcid_binder_set_max_workers(ZpcidBinder *self, guint max_workers)
{
    g_return_if_fail(ZPCID_IS_BINDER(self));
    g_thread_pool_set_max_threads(self->pool, (gint)MAX(max_workers, 1), NULL);
}

void
zpcid_binder_set_domain_lookup(ZpcidBinder *self, ZpcidDomainLookupFunc func, gpointer user_data,
                               GDestroyNotify destroy)
{
    g_return_if_fail(ZPCID_IS_BINDER(self));
    g_mutex_lock(&self->lookup_lock);
    if (self->lookup_destroy != NULL)
        self->lookup_destroy(self->lookup_data);
    self->lookup = func;
    self->lookup_data = user_data;
    self->lookup_destroy = destroy;
    g_mutex_unlock(&self->lookup_lock);
}

void
zpcid_binder_set_step_hook(ZpcidBinder *self, ZpcidBinderStepHook hook, gpointer user_data)
{
    self->step_hook = hook;
    self->step_hook_data = user_data;
}

ZpcidJournal *
zpcid_binder_get_journal(ZpcidBinder *self)
{
    return self->journal;
}

void
zpcid_binder_set_retry_base_ms(ZpcidBinder *self, guint ms)
{
    self->retry_base_ms = MAX(ms, 1);
}

void
zpcid_binder_set_verify_grace_ms(ZpcidBinder *self, guint ms)
{
    self->verify_grace_ms = ms;
}

const char *
zpcid_binder_get_host_driver(ZpcidBinder *self, guint32 fid)
{
    ZpcidJournalBinding *b = g_hash_table_lookup(self->bindings, GUINT_TO_POINTER(fid));
    return b != NULL ? b->host_driver : NULL;
}

gboolean
zpcid_binder_is_persistent(ZpcidBinder *self, guint32 fid)
{
    ZpcidJournalBinding *b = g_hash_table_lookup(self->bindings, GUINT_TO_POINTER(fid));
    return b != NULL && b->persistent;
}

const char *
zpcid_binder_get_owner(ZpcidBinder *self, guint32 fid)
{
    ZpcidJournalBinding *b = g_hash_table_lookup(self->bindings, GUINT_TO_POINTER(fid));
    return b != NULL ? b->owner : NULL;
}

gboolean
zpcid_binder_is_busy(ZpcidBinder *self, guint32 fid)
{
    return g_hash_table_contains(self->busy, GUINT_TO_POINTER(fid));
}

gboolean
zpcid_binder_defer_refresh(ZpcidBinder *self, guint32 fid)
{
    if (!zpcid_binder_is_busy(self, fid))
        return FALSE;
    g_hash_table_add(self->deferred, GUINT_TO_POINTER(fid));
    return TRUE;
}

/* ---- transactions ---- */

typedef enum {
    OP_BIND,
    OP_UNBIND,
    OP_RECOVER,
} Operation;

typedef enum {
    WORK_PREFLIGHT,
    WORK_APPLY,
    WORK_RESTORE,
} WorkKind;

typedef struct _Txn Txn;

typedef struct {
    Txn *txn; /* the job lives as long as its transaction */
    guint32 fid;
    gint64 uid;
    char *address;
    char *label;
    char *journal_id; /* transaction record the job's steps are announced in */
    ZpcidDir *dev;

    /* What the function looked like before; the state rollback restores. */
    char *driver_before;
    char *override_before;
    /* Unbind: the driver the kernel must give it back to (NULL: whatever binds). */
    char *host_driver;
    gboolean noop;
    GPtrArray *plan;  /* char*: steps a dry run reports */
    GPtrArray *hits;  /* ZpcidGuardHit* */
    GPtrArray *warnings;
    GPtrArray *done;  /* char*: steps made */
    char *driver_after;

    /* Under txn->lock. */
    gboolean queued;
    gboolean in_step;
    gint64 step_started;
    char *step_name;
    char *step_file;
    gboolean stuck;  /* the coordinator gave up waiting: the worker owns the cleanup */
    gboolean touched;
    gboolean stopped;
    gboolean vanished;
    GError *error;
    GError *restore_error;
} Job;

struct _Txn {
    gint ref_count;
    ZpcidBinder *binder;
    Operation op;
    ZpcidBindOptions options; /* options.owner points at owner */
    char *owner;
    GCancellable *cancellable;
    GTask *task;
    GPtrArray *jobs; /* Job*, in request order */
    GArray *fids;    /* guint32: the request */
    gint64 timeout_us;
    gint64 grace_us;

    GMutex lock;
    GCond cond;
    gboolean abort;
    GError *error;

    GPtrArray *warnings;
    ZpcidBindReport *report;
    GError *final_error;
};

static void
job_free(Job *job)
{
    g_free(job->address);
    g_free(job->label);
    g_free(job->journal_id);
    zpcid_dir_free(job->dev);
    g_free(job->driver_before);
    g_free(job->override_before);
    g_free(job->host_driver);
    g_ptr_array_unref(job->plan);
    g_ptr_array_unref(job->hits);
    g_ptr_array_unref(job->warnings);
    g_ptr_array_unref(job->done);
    g_free(job->driver_after);
    g_free(job->step_name);
    g_free(job->step_file);
    g_clear_error(&job->error);
    g_clear_error(&job->restore_error);
    g_free(job);
}

static Job *
job_new(Txn *txn, guint32 fid, gint64 uid, const char *address)
{
    Job *job = g_new0(Job, 1);

    job->txn = txn;
    job->fid = fid;
    job->uid = uid;
    job->address = g_strdup(address);
    job->label = address != NULL ? g_strdup_printf("0x%08x (%s)", fid, address)
                                 : g_strdup_printf("0x%08x", fid);
    job->plan = g_ptr_array_new_with_free_func(g_free);
    job->hits = g_ptr_array_new_with_free_func((GDestroyNotify)zpcid_guard_hit_free);
    job->warnings = g_ptr_array_new_with_free_func(g_free);
    job->done = g_ptr_array_new_with_free_func(g_free);
    return job;
}

static Txn *
txn_new(ZpcidBinder *binder, Operation op, const ZpcidBindOptions *options,
        GCancellable *cancellable)
{
    Txn *txn = g_new0(Txn, 1);
    guint timeout_ms;

    txn->ref_count = 1;
    txn->binder = g_object_ref(binder);
    txn->op = op;
    if (options != NULL)
        txn->options = *options;
    txn->owner = g_strdup(txn->options.owner);
    txn->options.owner = txn->owner;
    timeout_ms = txn->options.timeout_ms != 0 ? txn->options.timeout_ms
                                              : ZPCID_BIND_DEFAULT_TIMEOUT_MS;
    txn->timeout_us = (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND;
    txn->grace_us = MIN((gint64)binder->verify_grace_ms * G_TIME_SPAN_MILLISECOND, txn->timeout_us);
    txn->cancellable = cancellable != NULL ? g_object_ref(cancellable) : NULL;
    txn->jobs = g_ptr_array_new_with_free_func((GDestroyNotify)job_free);
    txn->fids = g_array_new(FALSE, FALSE, sizeof(guint32));
    txn->warnings = g_ptr_array_new_with_free_func(g_free);
    g_mutex_init(&txn->lock);
    g_cond_init(&txn->cond);
    return txn;
}

static Txn *
txn_ref(Txn *txn)
{
    g_atomic_int_inc(&txn->ref_count);
    return txn;
}

static void
txn_unref(Txn *txn)
{
    if (txn == NULL || !g_atomic_int_dec_and_test(&txn->ref_count))
        return;
    g_ptr_array_unref(txn->jobs);
    g_array_unref(txn->fids);
    g_ptr_array_unref(txn->warnings);
    zpcid_bind_report_free(txn->report);
    g_clear_error(&txn->error);
    g_clear_error(&txn->final_error);
    g_clear_object(&txn->task);
    g_clear_object(&txn->cancellable);
    g_mutex_clear(&txn->lock);
    g_cond_clear(&txn->cond);
    g_object_unref(txn->binder);
    g_free(txn->owner);
    g_free(txn);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Txn, txn_unref)

/* Records the first failure of the transaction and stops the others' forward steps. */
static void
txn_fail(Txn *txn, const GError *error)
{
    g_mutex_lock(&txn->lock);
    if (txn->error == NULL)
        txn->error = g_error_copy(error);
    txn->abort = TRUE;
    g_cond_broadcast(&txn->cond);
    g_mutex_unlock(&txn->lock);
}

/* ---- kernel I/O of one job ---- */

static const char *
errno_name(int err_no)
{
    switch (err_no) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "?";
    }
}

/* The data written, printable: a lone "\n" (clearing driver_override) shows as "\n". */
static char *
printable(const char *data)
{
    g_autofree char *stripped = g_strdup(data);
    g_strchomp(stripped);
    if (*stripped == '\0')
        return g_strdup("\\n");
    return g_strescape(stripped, NULL);
}

static gboolean
driver_name_is_safe(const char *name)
{
    if (name == NULL || *name == '\0' || strlen(name) > 255 || g_str_equal(name, ".") ||
        g_str_equal(name, ".."))
        return FALSE;
    return strchr(name, '/') == NULL;
}

/* Current driver (NULL: none) through the device directory. */
static gboolean
read_driver(ZpcidDir *dev, char **driver, GError **error)
{
    g_autoptr(GError) local = NULL;

    *driver = zpcid_dir_read_link_name(dev, "driver", &local);
    if (*driver != NULL)
        return TRUE;
    if (zpcid_error_is_not_found(local))
        return TRUE;
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
}

static gboolean
read_override(ZpcidDir *dev, char **override, GError **error)
{
    g_autofree char *path = g_build_filename(dev->path, "driver_override", NULL);
    gsize len;
    g_autofree char *data = zpcid_dir_read(dev, "driver_override", ZPCID_ATTR_MAX_SIZE, &len, error);
    g_autofree char *copy = NULL;

    *override = NULL;
    if (data == NULL)
        return FALSE;
    copy = g_strdup(data);
    /* Some kernels show a cleared override as an empty line rather than "(null)". */
    if (*g_strstrip(copy) == '\0')
        return TRUE;
    return zpcid_attr_parse_word(path, data, len, override, error);
}

/* Whether @error says the device is not there (removed, or not a zPCI function), as opposed
 * to being there but unreadable. */
static gboolean
error_is_gone(const GError *error)
{
    return zpcid_error_is_not_found(error) ||
           g_error_matches(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND);
}

/* Is the device directory gone (function deconfigured or hot-unplugged)? */
static gboolean
device_vanished(Job *job)
{
    g_autoptr(GError) error = NULL;
    gint64 fid, uid;

    /* read_identity() takes a missing function_id for an old kernel (fid unknown); in a
     * directory that had one, it means the directory is gone. */
    if (zpcid_function_read_identity(job->dev, &fid, &uid, &error))
        return fid == ZPCID_UNKNOWN;
    return error_is_gone(error);
}

static gboolean
check_identity(Job *job, const char *step, GError **error)
{
    g_autofree char *message = NULL;

    if (zpcid_guard_check_identity(job->dev, job->fid, job->uid, job->label, &message))
        return TRUE;
    if (device_vanished(job)) {
        job->vanished = TRUE;
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND,
                    _("Function %s disappeared before the step “%s”."), job->label, step);
        return FALSE;
    }
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_CONFLICT,
                _("The step “%s” was not made: %s"), step, message);
    return FALSE;
}

/* Opens the step: journals a step back (before anything happens), then starts its clock. A
 * forward step is not started once the transaction is aborted or cancelled. */
static gboolean
step_begin(Job *job, const char *step, const char *file, gboolean forward, GError **error)
{
    Txn *txn = job->txn;
    ZpcidBinder *binder = txn->binder;

    if (forward) {
        gboolean stop;
        g_mutex_lock(&txn->lock);
        /* A job that stops for a cancellation aborts the transaction itself: the coordinator
         * looks at the cancellable only while jobs are pending, so it could otherwise find
         * them all done and commit a function stopped between two steps. */
        if (!txn->abort && g_cancellable_is_cancelled(txn->cancellable)) {
            txn->abort = TRUE;
            if (txn->error == NULL)
                txn->error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                 _("The request was cancelled."));
            g_cond_broadcast(&txn->cond);
        }
        stop = txn->abort;
        if (stop)
            job->stopped = TRUE;
        g_mutex_unlock(&txn->lock);
        if (stop) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                        _("Function %s: stopped before the step “%s”."), job->label, step);
            return FALSE;
        }
    }
    /* Only steps back are journaled one by one. Recovery never reads a step: it compares
     * the kernel's state with each member's before and after, which the transaction's
     * first record made durable before any write. A forward note would cost a rewrite of
     * the whole store and two fsyncs per kernel write for nothing but a diagnostic. */
    if (!forward && job->journal_id != NULL &&
        !zpcid_journal_note_step(binder->journal, job->journal_id, job->fid, step, file, TRUE,
                                 error))
        return FALSE;
    g_mutex_lock(&txn->lock);
    job->in_step = TRUE;
    job->step_started = g_get_monotonic_time();
    g_free(job->step_name);
    job->step_name = g_strdup(step);
    g_free(job->step_file);
    job->step_file = g_strdup(file);
    g_mutex_unlock(&txn->lock);
    return TRUE;
}

static void
step_end(Job *job)
{
    g_mutex_lock(&job->txn->lock);
    job->in_step = FALSE;
    g_cond_broadcast(&job->txn->cond);
    g_mutex_unlock(&job->txn->lock);
}

/* One kernel write of the current step; the message names function, step, file, errno. */
static gboolean
job_write(Job *job, const char *step, ZpcidDir *dir, const char *name, const char *data,
          GError **error)
{
    ZpcidBinder *binder = job->txn->binder;
    g_autoptr(GError) local = NULL;
    g_autofree char *path = g_build_filename(dir->path, name, NULL);
    g_autofree char *shown = printable(data);
    int err_no = 0;
    gboolean ok;

    g_mutex_lock(&job->txn->lock);
    job->touched = TRUE;
    g_mutex_unlock(&job->txn->lock);
    if (binder->step_hook != NULL)
        binder->step_hook(job->fid, step, FALSE, binder->step_hook_data);
    ok = zpcid_dir_write(dir, name, data, &err_no, &local);
    if (binder->step_hook != NULL)
        binder->step_hook(job->fid, step, TRUE, binder->step_hook_data);
    if (!ok) {
        g_set_error(error, ZPCID_ERROR,
                    err_no != 0 ? zpcid_error_code_from_errno(err_no) : ZPCID_ERROR_FAILED,
                    _("Function %s: the step “%s” failed: writing “%s” to “%s” returned errno "
                      "%d (%s, %s)."),
                    job->label, step, shown, path, err_no, errno_name(err_no),
                    g_strerror(err_no));
        return FALSE;
    }
    g_ptr_array_add(job->done, g_strdup_printf(_("Wrote “%s” to “%s”."), shown, path));
    return TRUE;
}

static gboolean
verify_override(Job *job, const char *step, const char *want, GError **error)
{
    g_autofree char *path = g_build_filename(job->dev->path, "driver_override", NULL);
    g_autofree char *got = NULL;
    g_autoptr(GError) local = NULL;

    if (!read_override(job->dev, &got, &local)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                    _("Function %s: the step “%s” could not be checked: %s"), job->label, step,
                    local->message);
        return FALSE;
    }
    if (g_strcmp0(got, want) == 0)
        return TRUE;
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                _("Function %s: after the step “%s”, “%s” reads “%s” instead of “%s”."),
                job->label, step, path, got != NULL ? got : "(null)",
                want != NULL ? want : "(null)");
    return FALSE;
}

/* Waits up to the grace time for the driver link to settle on @want (NULL: on no driver;
 * @any: on any driver); *@got is what is bound in the end. FALSE with @error only when the
 * link cannot be read; *@matched tells whether it settled as wanted. */
static gboolean
wait_driver(Job *job, const char *want, gboolean any, char **got, gboolean *matched,
            GError **error)
{
    gint64 deadline = g_get_monotonic_time() + job->txn->grace_us;

    for (;;) {
        g_autofree char *driver = NULL;

        if (!read_driver(job->dev, &driver, error))
            return FALSE;
        *matched = any ? driver != NULL : g_strcmp0(driver, want) == 0;
        /* Unbinding is synchronous; only a probe may still be running. */
        if (*matched || (want == NULL && !any) || g_get_monotonic_time() >= deadline) {
            g_free(*got);
            *got = g_steal_pointer(&driver);
            return TRUE;
        }
        g_usleep(POLL_INTERVAL_US);
    }
}

static void
set_driver_mismatch(Job *job, const char *step, const char *file, const char *want,
                    const char *got, GError **error)
{
    /* A missing driver link may mean a missing device. */
    if (got == NULL && device_vanished(job)) {
        job->vanished = TRUE;
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND,
                    _("Function %s disappeared during the step “%s” (“%s”)."), job->label, step,
                    file);
        return;
    }
    if (want == NULL)
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                    _("Function %s: after the step “%s” (“%s”) it is still bound to “%s”."),
                    job->label, step, file, got);
    else if (got == NULL)
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                    _("Function %s: after the step “%s” (“%s”) no driver is bound; "
                      "“%s” was expected."),
                    job->label, step, file, want);
    else
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                    _("Function %s: after the step “%s” (“%s”) the driver “%s” is bound "
                      "instead of “%s”."),
                    job->label, step, file, got, want);
}

static ZpcidDir *
open_bus_dir(ZpcidBinder *binder, const char *driver, GError **error)
{
    g_autofree char *rel = driver != NULL ? g_build_filename(PCI_DRIVERS, driver, NULL)
                                          : g_strdup(PCI_BUS);
    return zpcid_host_open_dir(binder->host, rel, error);
}

/* Step: write @value into driver_override (NULL clears it). */
static gboolean
step_override(Job *job, const char *step, const char *value, gboolean forward, GError **error)
{
    g_autofree char *file = g_build_filename(job->dev->path, "driver_override", NULL);
    gboolean ok;

    if (!step_begin(job, step, file, forward, error))
        return FALSE;
    /* A lone newline clears; an empty write is not reliably a clear on every kernel. */
    ok = check_identity(job, step, error) &&
         job_write(job, step, job->dev, "driver_override", value != NULL ? value : "\n", error) &&
         verify_override(job, step, value, error);
    step_end(job);
    return ok;
}

/* Step: detach the function from @driver through drivers/<driver>/unbind. */
static gboolean
step_unbind(Job *job, const char *step, const char *driver, gboolean forward, GError **error)
{
    ZpcidBinder *binder = job->txn->binder;
    g_autoptr(ZpcidDir) drv = NULL;
    g_autofree char *file = NULL;
    g_autofree char *got = NULL;
    gboolean ok;

    if (!driver_name_is_safe(driver)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED,
                    _("Function %s: the driver name “%s” is not usable in a path."), job->label,
                    driver);
        return FALSE;
    }
    drv = open_bus_dir(binder, driver, error);
    if (drv == NULL)
        return FALSE;
    file = g_build_filename(drv->path, "unbind", NULL);
    if (!step_begin(job, step, file, forward, error))
        return FALSE;
    ok = check_identity(job, step, error) && job_write(job, step, drv, "unbind", job->address, error);
    if (ok) {
        gboolean matched = FALSE;
        ok = wait_driver(job, NULL, FALSE, &got, &matched, error);
        if (ok && !matched) {
            set_driver_mismatch(job, step, file, NULL, got, error);
            ok = FALSE;
        }
    }
    step_end(job);
    return ok;
}

/* Step: let the kernel probe (drivers_probe) or bind a named driver (drivers/<d>/bind), then
 * check the driver link: the probe write succeeds even when nothing binds. With @any, any
 * driver or none is accepted and *@got tells which. */
static gboolean
step_attach(Job *job, const char *step, const char *via_driver, const char *want, gboolean any,
            gboolean forward, char **got, GError **error)
{
    ZpcidBinder *binder = job->txn->binder;
    g_autoptr(ZpcidDir) dir = NULL;
    const char *name = via_driver != NULL ? "bind" : "drivers_probe";
    g_autofree char *file = NULL;
    gboolean ok;

    if (via_driver != NULL && !driver_name_is_safe(via_driver)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED,
                    _("Function %s: the driver name “%s” is not usable in a path."), job->label,
                    via_driver);
        return FALSE;
    }
    dir = open_bus_dir(binder, via_driver, error);
    if (dir == NULL)
        return FALSE;
    file = g_build_filename(dir->path, name, NULL);
    if (!step_begin(job, step, file, forward, error))
        return FALSE;
    ok = check_identity(job, step, error) && job_write(job, step, dir, name, job->address, error);
    if (ok) {
        gboolean matched = FALSE;
        ok = wait_driver(job, want, any, got, &matched, error);
        if (ok && !matched && !any) {
            set_driver_mismatch(job, step, file, want, *got, error);
            ok = FALSE;
        }
    }
    step_end(job);
    return ok;
}

/* ---- preflight: read, guard, plan; no writes ---- */

static void
plan_add(Job *job, char *sentence)
{
    g_ptr_array_add(job->plan, sentence);
}

static void
check_domains(Job *job)
{
    Txn *txn = job->txn;
    ZpcidBinder *binder = txn->binder;
    g_auto(GStrv) running = NULL;
    g_auto(GStrv) defined = NULL;
    g_autoptr(GError) error = NULL;
    gboolean have_lookup, ok = FALSE;

    g_mutex_lock(&binder->lookup_lock);
    have_lookup = binder->lookup != NULL;
    if (have_lookup)
        ok = binder->lookup(job->address, job->fid, job->uid, &running, &defined,
                            binder->lookup_data, &error);
    g_mutex_unlock(&binder->lookup_lock);

    if (!have_lookup) {
        g_ptr_array_add(job->warnings,
                        g_strdup_printf(_("Function %s: libvirt domains were not checked."),
                                        job->label));
        return;
    }
    if (!ok) {
        ZpcidGuardHit *hit = g_new0(ZpcidGuardHit, 1);
        hit->guard = ZPCID_GUARD_DOMAIN;
        hit->message = g_strdup_printf(_("Function %s: libvirt could not be asked which "
                                         "domains use it: %s"),
                                       job->label, error != NULL ? error->message : "?");
        g_ptr_array_add(job->hits, hit);
        return;
    }
    for (guint i = 0; running != NULL && running[i] != NULL; i++) {
        ZpcidGuardHit *hit = g_new0(ZpcidGuardHit, 1);
        hit->guard = ZPCID_GUARD_DOMAIN;
        hit->message = g_strdup_printf(_("Function %s is used by the running libvirt domain "
                                         "“%s”."),
                                       job->label, running[i]);
        g_ptr_array_add(job->hits, hit);
    }
    for (guint i = 0; defined != NULL && defined[i] != NULL; i++)
        g_ptr_array_add(job->warnings,
                        g_strdup_printf(_("Function %s is part of the defined libvirt domain "
                                          "“%s”."),
                                        job->label, defined[i]));
}

static void
job_preflight(Job *job)
{
    Txn *txn = job->txn;
    ZpcidBinder *binder = txn->binder;
    g_autofree char *rel = g_build_filename(PCI_DEVICES, job->address, NULL);
    g_autoptr(GError) error = NULL;
    guint which;
    g_autofree char *probe = NULL;

    job->dev = zpcid_host_open_dir(binder->host, rel, &error);
    if (job->dev == NULL) {
        job->error = g_error_new(ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND,
                                 _("Function %s cannot be opened: %s"), job->label,
                                 error->message);
        return;
    }
    which = ZPCID_GUARD_BIT(ZPCID_GUARD_IDENTITY) | ZPCID_GUARD_BIT(ZPCID_GUARD_STANDBY);
    if (txn->op == OP_BIND)
        which |= ZPCID_GUARD_BIT(ZPCID_GUARD_IOMMU_GROUP) | ZPCID_GUARD_BIT(ZPCID_GUARD_SRIOV) |
                 ZPCID_GUARD_BIT(ZPCID_GUARD_NET) | ZPCID_GUARD_BIT(ZPCID_GUARD_BLOCK);
    which &= ~txn->options.allow_guards;
    zpcid_guards_check(binder->host, job->dev, job->address, job->fid, job->uid, which,
                       job->label, job->hits);
    /* A wrong identity makes every other answer meaningless. */
    for (guint i = 0; i < job->hits->len; i++) {
        ZpcidGuardHit *hit = g_ptr_array_index(job->hits, i);
        if (hit->guard == ZPCID_GUARD_IDENTITY)
            return;
    }

    if (!read_driver(job->dev, &job->driver_before, &error) ||
        !read_override(job->dev, &job->override_before, &error)) {
        job->error = g_error_new(ZPCID_ERROR, ZPCID_ERROR_FAILED,
                                 _("Function %s cannot be read: %s"), job->label, error->message);
        return;
    }
    if (job->driver_before != NULL && !driver_name_is_safe(job->driver_before)) {
        job->error = g_error_new(ZPCID_ERROR, ZPCID_ERROR_MALFORMED,
                                 _("Function %s: the driver name “%s” is not usable in a path."),
                                 job->label, job->driver_before);
        return;
    }
    if (!(txn->options.allow_guards & ZPCID_GUARD_BIT(ZPCID_GUARD_DOMAIN)))
        check_domains(job);

    probe = zpcid_host_display_path(binder->host, PCI_BUS "/drivers_probe");
    if (txn->op == OP_BIND) {
        job->noop = g_strcmp0(job->driver_before, ZPCID_VFIO_DRIVER) == 0;
        if (job->noop) {
            job->driver_after = g_strdup(ZPCID_VFIO_DRIVER);
            return;
        }
        if (g_strcmp0(job->override_before, ZPCID_VFIO_DRIVER) != 0)
            plan_add(job, g_strdup_printf(_("Write “%s” to “%s/driver_override”."),
                                          ZPCID_VFIO_DRIVER, job->dev->path));
        if (job->driver_before != NULL) {
            g_autofree char *unbind = zpcid_host_display_path(binder->host, PCI_DRIVERS);
            plan_add(job, g_strdup_printf(_("Unbind it from “%s” by writing “%s” to “%s/%s/unbind”."),
                                          job->driver_before, job->address, unbind,
                                          job->driver_before));
        }
        plan_add(job, g_strdup_printf(_("Write “%s” to “%s” and check that “%s” is bound."),
                                      job->address, probe, ZPCID_VFIO_DRIVER));
        job->driver_after = g_strdup(ZPCID_VFIO_DRIVER);
    } else {
        gboolean on_vfio = g_strcmp0(job->driver_before, ZPCID_VFIO_DRIVER) == 0;
        job->noop = !on_vfio && job->override_before == NULL;
        if (job->noop) {
            job->driver_after = g_strdup(job->driver_before);
            return;
        }
        if (job->override_before != NULL)
            plan_add(job, g_strdup_printf(_("Clear “%s/driver_override” (now “%s”)."),
                                          job->dev->path, job->override_before));
        if (on_vfio) {
            g_autofree char *unbind = zpcid_host_display_path(binder->host, PCI_DRIVERS);
            plan_add(job, g_strdup_printf(_("Unbind it from “%s” by writing “%s” to “%s/%s/unbind”."),
                                          ZPCID_VFIO_DRIVER, job->address, unbind,
                                          ZPCID_VFIO_DRIVER));
        }
        if (on_vfio || job->driver_before == NULL) {
            if (job->host_driver != NULL)
                plan_add(job, g_strdup_printf(_("Write “%s” to “%s” and check that “%s” is "
                                                "bound again."),
                                              job->address, probe, job->host_driver));
            else
                plan_add(job, g_strdup_printf(_("Write “%s” to “%s” and report which driver "
                                                "binds."),
                                              job->address, probe));
            job->driver_after = g_strdup(job->host_driver);
        } else {
            job->driver_after = g_strdup(job->driver_before);
        }
    }
}

/* ---- apply: the forward steps, in order ---- */

static gboolean
job_apply_bind(Job *job, GError **error)
{
    g_autofree char *got = NULL;

    if (g_strcmp0(job->override_before, ZPCID_VFIO_DRIVER) != 0 &&
        !step_override(job, "override", ZPCID_VFIO_DRIVER, TRUE, error))
        return FALSE;
    if (job->driver_before != NULL && !step_unbind(job, "unbind", job->driver_before, TRUE, error))
        return FALSE;
    if (!step_attach(job, "probe", NULL, ZPCID_VFIO_DRIVER, FALSE, TRUE, &got, error))
        return FALSE;
    g_free(job->driver_after);
    job->driver_after = g_steal_pointer(&got);
    return TRUE;
}

static gboolean
job_apply_unbind(Job *job, GError **error)
{
    gboolean on_vfio = g_strcmp0(job->driver_before, ZPCID_VFIO_DRIVER) == 0;
    g_autofree char *got = NULL;

    if (job->override_before != NULL && !step_override(job, "clear-override", NULL, TRUE, error))
        return FALSE;
    if (on_vfio && !step_unbind(job, "unbind", ZPCID_VFIO_DRIVER, TRUE, error))
        return FALSE;
    if (!on_vfio && job->driver_before != NULL)
        return TRUE;
    if (job->host_driver != NULL) {
        if (!step_attach(job, "probe", NULL, job->host_driver, FALSE, TRUE, &got, error))
            return FALSE;
    } else {
        /* Nothing recorded: whatever the kernel picks is the answer, even nothing. */
        if (!step_attach(job, "probe", NULL, NULL, TRUE, TRUE, &got, error))
            return FALSE;
        if (got == NULL)
            g_ptr_array_add(job->warnings,
                            g_strdup_printf(_("Function %s is not bound to any driver now: no "
                                              "host driver claimed it."),
                                            job->label));
    }
    g_free(job->driver_after);
    job->driver_after = g_steal_pointer(&got);
    return TRUE;
}

/* ---- restore: drive a function back to the recorded state ---- */

static gboolean
job_restore(Job *job, GError **error)
{
    g_autofree char *override = NULL;
    g_autofree char *driver = NULL;
    g_autofree char *got = NULL;
    g_autoptr(GError) local = NULL;

    if (device_vanished(job)) {
        /* A function that comes back is a fresh device without override or driver. */
        job->vanished = TRUE;
        return TRUE;
    }
    if (!read_override(job->dev, &override, &local) || !read_driver(job->dev, &driver, &local)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                    _("Function %s cannot be read to move it back: %s"), job->label,
                    local->message);
        return FALSE;
    }
    if (g_strcmp0(override, job->override_before) != 0 &&
        !step_override(job, "restore-override", job->override_before, FALSE, error))
        return FALSE;
    if (g_strcmp0(driver, job->driver_before) == 0)
        return TRUE;
    if (driver != NULL && !step_unbind(job, "restore-unbind", driver, FALSE, error))
        return FALSE;
    if (job->driver_before == NULL)
        return TRUE;
    /* bind names the driver, so the kernel cannot pick another one. */
    return step_attach(job, "restore-bind", job->driver_before, job->driver_before, FALSE, FALSE,
                       &got, error);
}

/* ---- the worker ---- */

typedef struct {
    Job *job;
    WorkKind kind;
} Work;

static void release_orphan(Job *job);

static void
push_work(Txn *txn, Job *job, WorkKind kind)
{
    Work *w = g_new0(Work, 1);

    w->job = job;
    w->kind = kind;
    g_mutex_lock(&txn->lock);
    job->queued = TRUE;
    g_mutex_unlock(&txn->lock);
    txn_ref(txn);
    g_thread_pool_push(txn->binder->pool, w, NULL);
}

static void
pool_func(gpointer data, gpointer user_data)
{
    g_autofree Work *w = data;
    Job *job = w->job;
    Txn *txn = job->txn;
    g_autoptr(GError) error = NULL;
    gboolean ok = TRUE;
    gboolean orphan;

    switch (w->kind) {
    case WORK_PREFLIGHT:
        job_preflight(job);
        break;
    case WORK_APPLY:
        ok = txn->op == OP_BIND ? job_apply_bind(job, &error) : job_apply_unbind(job, &error);
        if (!ok && !job->stopped)
            txn_fail(txn, error);
        break;
    case WORK_RESTORE:
        ok = job_restore(job, &error);
        break;
    }

    g_mutex_lock(&txn->lock);
    if (w->kind == WORK_APPLY && !ok && !job->stopped && job->error == NULL)
        job->error = g_error_copy(error);
    if (w->kind == WORK_RESTORE && !ok && job->restore_error == NULL)
        job->restore_error = g_error_copy(error);
    orphan = job->stuck;
    job->queued = FALSE;
    g_cond_broadcast(&txn->cond);
    g_mutex_unlock(&txn->lock);

    /* The coordinator stopped waiting for this job; its step has come back only now. */
    if (orphan) {
        if (w->kind != WORK_PREFLIGHT) {
            g_autoptr(GError) restore_error = NULL;
            gboolean restored = w->kind == WORK_RESTORE ? ok : job_restore(job, &restore_error);
            if (restored && job->journal_id != NULL)
                zpcid_journal_settle(txn->binder->journal, job->journal_id, job->fid, NULL);
            else if (!restored)
                g_warning("%s", restore_error != NULL ? restore_error->message
                                                      : error != NULL ? error->message : "");
        }
        release_orphan(job);
    }
    txn_unref(txn);
}

/* Waits for the queued @jobs; marks as stuck a job whose step outlives the timeout. */
static void
wait_jobs(Txn *txn, GPtrArray *jobs, gboolean forward)
{
    g_mutex_lock(&txn->lock);
    for (;;) {
        gint64 now = g_get_monotonic_time();
        gint64 wake = now + WAIT_SLICE_US;
        guint pending = 0;

        for (guint i = 0; i < jobs->len; i++) {
            Job *job = g_ptr_array_index(jobs, i);
            gint64 deadline;

            if (!job->queued || job->stuck)
                continue;
            pending++;
            if (!job->in_step)
                continue;
            deadline = job->step_started + txn->timeout_us;
            if (now < deadline) {
                wake = MIN(wake, deadline);
                continue;
            }
            job->stuck = TRUE;
            {
                g_autoptr(GError) e =
                    g_error_new(ZPCID_ERROR, ZPCID_ERROR_FAILED,
                                _("Function %s: the step “%s” did not finish within %" PRId64
                                  " ms (writing “%s”)."),
                                job->label, job->step_name,
                                txn->timeout_us / G_TIME_SPAN_MILLISECOND, job->step_file);
                if (forward) {
                    if (txn->error == NULL)
                        txn->error = g_error_copy(e);
                    txn->abort = TRUE;
                } else if (job->restore_error == NULL) {
                    job->restore_error = g_error_copy(e);
                }
            }
            pending--;
        }
        if (pending == 0)
            break;
        if (forward && !txn->abort && g_cancellable_is_cancelled(txn->cancellable)) {
            txn->abort = TRUE;
            if (txn->error == NULL)
                txn->error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                 _("The request was cancelled."));
        }
        g_cond_wait_until(&txn->cond, &txn->lock, wake);
    }
    g_mutex_unlock(&txn->lock);
}

static void
run_phase(Txn *txn, GPtrArray *jobs, WorkKind kind)
{
    for (guint i = 0; i < jobs->len; i++)
        push_work(txn, g_ptr_array_index(jobs, i), kind);
    wait_jobs(txn, jobs, kind == WORK_APPLY || kind == WORK_PREFLIGHT);
}

/* ---- the coordinator ---- */

static ZpcidJournalTxn *
journal_txn_for(Txn *txn, GPtrArray *changing)
{
    ZpcidJournalTxn *jt = zpcid_journal_txn_new(txn->op == OP_BIND ? "bind" : "unbind");

    jt->persistent = txn->options.persistent;
    jt->allow_guards = guard_mask_to_strv(txn->options.allow_guards);
    if (txn->op == OP_BIND)
        jt->owner = g_strdup(txn->owner);
    g_array_append_vals(jt->fids, txn->fids->data, txn->fids->len);
    for (guint i = 0; i < changing->len; i++) {
        Job *job = g_ptr_array_index(changing, i);
        ZpcidJournalMember *m = zpcid_journal_member_new();
        m->fid = job->fid;
        m->uid = job->uid;
        m->address = g_strdup(job->address);
        m->driver_before = g_strdup(job->driver_before);
        m->override_before = g_strdup(job->override_before);
        if (txn->op == OP_BIND) {
            m->driver_after = g_strdup(ZPCID_VFIO_DRIVER);
            m->override_after = g_strdup(ZPCID_VFIO_DRIVER);
        } else {
            m->driver_after = g_strdup(job->host_driver);
            m->driver_after_any = job->host_driver == NULL;
        }
        g_ptr_array_add(jt->members, m);
    }
    return jt;
}

/* Bindings a successful transaction leaves in the store. */
static GPtrArray *
bindings_after(ZpcidBinder *binder, const ZpcidJournalTxn *jt)
{
    GPtrArray *set = g_ptr_array_new_with_free_func((GDestroyNotify)zpcid_journal_binding_free);

    if (!g_str_equal(jt->operation, "bind"))
        return set;
    for (guint i = 0; i < jt->members->len; i++) {
        ZpcidJournalMember *m = g_ptr_array_index(jt->members, i);
        ZpcidJournalBinding *b = g_new0(ZpcidJournalBinding, 1);
        b->fid = m->fid;
        b->uid = m->uid;
        b->address = g_strdup(m->address);
        b->host_driver = g_strdup(m->driver_before);
        b->persistent = jt->persistent;
        b->allow_guards = g_strdupv(jt->allow_guards);
        b->owner = g_strdup(jt->owner);
        g_ptr_array_add(set, b);
    }
    /* A function that was on vfio-pci already keeps its record, but a persistent request
     * must still bring it back at boot. */
    for (guint i = 0; jt->persistent && i < jt->fids->len; i++) {
        guint32 fid = g_array_index(jt->fids, guint32, i);
        gboolean member = FALSE;
        g_autoptr(ZpcidJournalBinding) old = NULL;
        ZpcidJournalBinding *b;

        for (guint k = 0; k < jt->members->len; k++)
            member |= ((ZpcidJournalMember *)g_ptr_array_index(jt->members, k))->fid == fid;
        if (member)
            continue;
        old = zpcid_journal_lookup_binding(binder->journal, fid);
        b = old != NULL ? zpcid_journal_binding_copy(old) : g_new0(ZpcidJournalBinding, 1);
        if (old == NULL) {
            b->fid = fid;
            b->uid = -1;
        }
        b->persistent = TRUE;
        g_strfreev(b->allow_guards);
        b->allow_guards = g_strdupv(jt->allow_guards);
        g_ptr_array_add(set, b);
    }
    return set;
}

static gboolean
commit(ZpcidBinder *binder, const ZpcidJournalTxn *jt, GError **error)
{
    g_autoptr(GPtrArray) set = bindings_after(binder, jt);
    gboolean unbind = g_str_equal(jt->operation, "unbind");

    return zpcid_journal_commit(binder->journal, jt->id, set,
                                unbind ? (const guint32 *)(gpointer)jt->fids->data : NULL,
                                unbind ? jt->fids->len : 0, error);
}

static gboolean
ensure_vfio_driver(Txn *txn, GError **error)
{
    ZpcidBinder *binder = txn->binder;
    const char *rel = PCI_DRIVERS "/" ZPCID_VFIO_DRIVER;

    if (zpcid_host_exists(binder->host, rel))
        return TRUE;
    if ((binder->flags & ZPCID_BINDER_FLAGS_LOAD_VFIO) && zpcid_host_is_live(binder->host)) {
        const char *argv[] = {"modprobe", "vfio-pci", NULL};
        g_autoptr(GError) local = NULL;
        g_autofree char *err_out = NULL;
        gint status = 0;

        if (g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                         NULL, NULL, NULL, &err_out, &status, &local) &&
            g_spawn_check_wait_status(status, &local)) {
            /* The driver directory appears when the module has registered. */
            for (guint i = 0; i < 100 && !zpcid_host_exists(binder->host, rel); i++)
                g_usleep(20 * G_TIME_SPAN_MILLISECOND);
            if (zpcid_host_exists(binder->host, rel))
                return TRUE;
        }
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_READY,
                    _("The vfio-pci driver could not be loaded: “modprobe vfio-pci” failed (%s)."),
                    local != NULL ? local->message : g_strstrip(err_out != NULL ? err_out : ""));
        return FALSE;
    }
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_READY,
                _("The vfio-pci driver is not loaded (no “%s”). Load it with “modprobe vfio-pci” "
                  "or let zpcid load it in its configuration."),
                rel);
    return FALSE;
}

static ZpcidBindReport *
build_report(Txn *txn)
{
    ZpcidBindReport *report = report_new();

    for (guint i = 0; i < txn->jobs->len; i++) {
        Job *job = g_ptr_array_index(txn->jobs, i);
        ZpcidBindFunctionResult *r = g_new0(ZpcidBindFunctionResult, 1);

        r->fid = job->fid;
        r->uid = job->uid;
        r->address = g_strdup(job->address);
        r->driver_before = g_strdup(job->driver_before);
        r->driver_after = g_strdup(job->driver_after);
        r->steps = g_ptr_array_new_with_free_func(g_free);
        if (job->noop) {
            r->outcome = ZPCID_BIND_OUTCOME_UNCHANGED;
        } else if (txn->options.dry_run) {
            r->outcome = ZPCID_BIND_OUTCOME_WOULD_CHANGE;
            for (guint k = 0; k < job->plan->len; k++)
                g_ptr_array_add(r->steps, g_strdup(g_ptr_array_index(job->plan, k)));
        } else {
            r->outcome = ZPCID_BIND_OUTCOME_CHANGED;
            for (guint k = 0; k < job->done->len; k++)
                g_ptr_array_add(r->steps, g_strdup(g_ptr_array_index(job->done, k)));
        }
        for (guint k = 0; k < job->warnings->len; k++)
            g_ptr_array_add(report->warnings, g_strdup(g_ptr_array_index(job->warnings, k)));
        g_ptr_array_add(report->functions, r);
    }
    for (guint k = 0; k < txn->warnings->len; k++)
        g_ptr_array_add(report->warnings, g_strdup(g_ptr_array_index(txn->warnings, k)));
    return report;
}

static char *
describe_state(Job *job)
{
    g_autofree char *driver = NULL;
    g_autofree char *override = NULL;

    if (device_vanished(job))
        return g_strdup(_("it has disappeared"));
    read_driver(job->dev, &driver, NULL);
    read_override(job->dev, &override, NULL);
    return g_strdup_printf(_("it is left with the driver “%s” and driver_override “%s”"),
                           driver != NULL ? driver : _("none"),
                           override != NULL ? override : "(null)");
}

/* After a failure: moves back every function that was touched, then composes the error. */
static void
roll_back(Txn *txn, GPtrArray *changing, ZpcidJournalTxn *jt)
{
    ZpcidBinder *binder = txn->binder;
    g_autoptr(GPtrArray) restore = g_ptr_array_new();
    g_autoptr(GString) msg = NULL;
    gboolean all_back = TRUE;
    GError *first;

    g_mutex_lock(&txn->lock);
    for (guint i = 0; i < changing->len; i++) {
        Job *job = g_ptr_array_index(changing, i);
        if (job->stuck)
            continue;
        if (job->touched)
            g_ptr_array_add(restore, job);
    }
    g_mutex_unlock(&txn->lock);

    run_phase(txn, restore, WORK_RESTORE);

    g_mutex_lock(&txn->lock);
    first = txn->error;
    msg = g_string_new(first->message);
    for (guint i = 0; i < changing->len; i++) {
        Job *job = g_ptr_array_index(changing, i);

        if (job->stuck) {
            all_back = FALSE;
            g_string_append_c(msg, '\n');
            g_string_append_printf(msg,
                                   _("Function %s is still waiting for the kernel in the step "
                                     "“%s” (“%s”); zpcid moves it back when the write returns and "
                                     "keeps it busy until then."),
                                   job->label, job->step_name, job->step_file);
            continue;
        }
        if (job->restore_error != NULL) {
            g_autofree char *state = NULL;
            all_back = FALSE;
            g_mutex_unlock(&txn->lock);
            state = describe_state(job);
            g_mutex_lock(&txn->lock);
            g_string_append_c(msg, '\n');
            g_string_append_printf(msg,
                                   _("Function %s could not be moved back (%s); %s. zpcid tries "
                                     "again when it starts."),
                                   job->label, job->restore_error->message, state);
            continue;
        }
        if (job->vanished)
            g_ptr_array_add(txn->warnings,
                            g_strdup_printf(_("Function %s disappeared during the request."),
                                            job->label));
        if (jt != NULL)
            zpcid_journal_settle(binder->journal, jt->id, job->fid, NULL);
    }
    if (all_back) {
        g_string_append_c(msg, ' ');
        g_string_append(msg, changing->len > 1 ? _("Every function was left as it was.")
                                               : _("The function was left as it was."));
    }
    txn->final_error = g_error_new_literal(first->domain, first->code, msg->str);
    g_mutex_unlock(&txn->lock);
}

static void
txn_run(Txn *txn)
{
    ZpcidBinder *binder = txn->binder;
    g_autoptr(GPtrArray) changing = g_ptr_array_new();
    g_autoptr(GString) refusals = NULL;
    g_autoptr(ZpcidJournalTxn) jt = NULL;
    g_autoptr(GError) error = NULL;

    run_phase(txn, txn->jobs, WORK_PREFLIGHT);

    for (guint i = 0; i < txn->jobs->len; i++) {
        Job *job = g_ptr_array_index(txn->jobs, i);
        if (job->error != NULL && txn->final_error == NULL)
            txn->final_error = g_error_copy(job->error);
        for (guint k = 0; k < job->hits->len; k++) {
            ZpcidGuardHit *hit = g_ptr_array_index(job->hits, k);
            if (refusals == NULL)
                refusals = g_string_new(NULL);
            else
                g_string_append_c(refusals, '\n');
            if (zpcid_guard_is_overridable(hit->guard))
                g_string_append_printf(refusals, _("%s (guard “%s”)"), hit->message,
                                       zpcid_guard_to_string(hit->guard));
            else
                g_string_append(refusals, hit->message);
        }
        if (!job->noop)
            g_ptr_array_add(changing, job);
    }
    if (txn->final_error != NULL)
        return;
    if (refusals != NULL) {
        txn->final_error = g_error_new_literal(ZPCID_ERROR, ZPCID_ERROR_BUSY, refusals->str);
        return;
    }
    if (txn->options.dry_run || changing->len == 0) {
        if (!txn->options.dry_run && txn->op == OP_BIND && txn->options.persistent) {
            g_autoptr(ZpcidJournalTxn) none = journal_txn_for(txn, changing);
            if (!commit(binder, none, &txn->final_error))
                return;
        } else if (!txn->options.dry_run && txn->op == OP_UNBIND) {
            if (!zpcid_journal_commit(binder->journal, NULL, NULL,
                                      (const guint32 *)(gpointer)txn->fids->data, txn->fids->len,
                                      &txn->final_error))
                return;
        }
        txn->report = build_report(txn);
        return;
    }
    if (zpcid_host_is_live(binder->host) && !(binder->flags & ZPCID_BINDER_FLAGS_LIVE_HOST)) {
        txn->final_error = g_error_new(ZPCID_ERROR, ZPCID_ERROR_NOT_AUTHORIZED,
                                       _("This zpcid was not started to change the live host: "
                                         "“%s” is the real root."),
                                       zpcid_host_get_root(binder->host));
        return;
    }
    if (txn->op == OP_BIND && !ensure_vfio_driver(txn, &txn->final_error))
        return;

    jt = journal_txn_for(txn, changing);
    if (!zpcid_journal_begin(binder->journal, jt, &txn->final_error))
        return;
    for (guint i = 0; i < changing->len; i++) {
        Job *job = g_ptr_array_index(changing, i);
        job->journal_id = g_strdup(jt->id);
    }

    run_phase(txn, changing, WORK_APPLY);

    if (!txn->abort && !commit(binder, jt, &error))
        txn_fail(txn, error);
    if (txn->abort) {
        roll_back(txn, changing, jt);
        return;
    }
    txn->report = build_report(txn);
}

static gboolean txn_done_in_main(gpointer data);

/* Runs @func in the binder's context, always from its own dispatch. Not
 * g_main_context_invoke(): when no thread iterates the context at that moment (before the
 * daemon's main loop runs, or in a test between two iterations) it calls @func right here, in
 * the worker thread, beside the main thread's use of the binder's tables. */
static void
run_in_context(ZpcidBinder *binder, GSourceFunc func, gpointer data, GDestroyNotify notify)
{
    GSource *source = g_idle_source_new();

    g_source_set_priority(source, G_PRIORITY_DEFAULT);
    g_source_set_callback(source, func, data, notify);
    g_source_attach(source, binder->context);
    g_source_unref(source);
}

static gpointer
txn_thread(gpointer data)
{
    Txn *txn = data;

    txn_run(txn);
    run_in_context(txn->binder, txn_done_in_main, txn, (GDestroyNotify)txn_unref);
    return NULL;
}

static void
refresh_function(ZpcidBinder *binder, guint32 fid, const char *address)
{
    if (address != NULL)
        zpcid_inventory_refresh_address(binder->inventory, address);
    g_signal_emit(binder, signals[SIGNAL_FUNCTION_CHANGED], 0, (guint)fid);
}

static gboolean
txn_done_in_main(gpointer data)
{
    Txn *txn = data;
    ZpcidBinder *binder = txn->binder;
    g_autoptr(GPtrArray) refresh = g_ptr_array_new();

    g_mutex_lock(&txn->lock);
    for (guint i = 0; i < txn->jobs->len; i++) {
        Job *job = g_ptr_array_index(txn->jobs, i);
        if (job->stuck)
            continue;
        g_hash_table_remove(binder->busy, GUINT_TO_POINTER(job->fid));
        g_ptr_array_add(refresh, job);
    }
    g_mutex_unlock(&txn->lock);

    binder->n_running--;
    reload_bindings(binder);
    /* Every function is read once, here, where the transaction left it: the uevents of its
     * steps were deferred to this read (zpcid_binder_defer_refresh()). A dry run writes
     * nothing, so only a function whose uevent (somebody else's change) was deferred. */
    for (guint i = 0; i < refresh->len; i++) {
        Job *job = g_ptr_array_index(refresh, i);
        gboolean deferred = g_hash_table_remove(binder->deferred, GUINT_TO_POINTER(job->fid));
        if (!txn->options.dry_run || deferred)
            refresh_function(binder, job->fid, job->address);
    }
    if (txn->final_error != NULL)
        g_task_return_error(txn->task, g_steal_pointer(&txn->final_error));
    else
        g_task_return_pointer(txn->task, g_steal_pointer(&txn->report),
                              (GDestroyNotify)zpcid_bind_report_free);
    return G_SOURCE_REMOVE;
}

typedef struct {
    ZpcidBinder *binder;
    guint32 fid;
    char *address;
} Orphan;

static gboolean
orphan_done_in_main(gpointer data)
{
    Orphan *o = data;

    g_hash_table_remove(o->binder->busy, GUINT_TO_POINTER(o->fid));
    g_hash_table_remove(o->binder->deferred, GUINT_TO_POINTER(o->fid));
    reload_bindings(o->binder);
    refresh_function(o->binder, o->fid, o->address);
    return G_SOURCE_REMOVE;
}

static void
orphan_free(Orphan *o)
{
    g_object_unref(o->binder);
    g_free(o->address);
    g_free(o);
}

static void
release_orphan(Job *job)
{
    Orphan *o = g_new0(Orphan, 1);

    o->binder = g_object_ref(job->txn->binder);
    o->fid = job->fid;
    o->address = g_strdup(job->address);
    run_in_context(o->binder, orphan_done_in_main, o, (GDestroyNotify)orphan_free);
}

/* ---- requests ---- */

/* The FIDs among @fids whose binding was made for @owner, in request order. */
static GArray *
owned_fids(ZpcidBinder *self, const guint32 *fids, guint n_fids, const char *owner)
{
    GArray *owned = g_array_new(FALSE, FALSE, sizeof(guint32));

    for (guint i = 0; i < n_fids; i++) {
        ZpcidJournalBinding *b = g_hash_table_lookup(self->bindings, GUINT_TO_POINTER(fids[i]));
        if (b != NULL && g_strcmp0(b->owner, owner) == 0)
            g_array_append_val(owned, fids[i]);
    }
    return owned;
}

static void
start_request(ZpcidBinder *self, Operation op, const guint32 *fids, guint n_fids,
              const ZpcidBindOptions *options, GCancellable *cancellable,
              GAsyncReadyCallback callback, gpointer user_data, gpointer source_tag)
{
    g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
    g_autoptr(Txn) txn = NULL;
    g_autoptr(GString) standby = NULL;
    g_autoptr(GArray) owned = NULL;
    ZpcidBindOptions defaults = ZPCID_BIND_OPTIONS_INIT;

    g_task_set_source_tag(task, source_tag);
    /* The caller learns what happened: a transaction that committed before the cancel
     * reports success, one that was stopped reports its rollback. */
    g_task_set_check_cancellable(task, FALSE);
    if (options == NULL)
        options = &defaults;
    if (op == OP_UNBIND && options->owner != NULL && n_fids > 0) {
        owned = owned_fids(self, fids, n_fids, options->owner);
        if (owned->len == 0) {
            /* Nothing of this owner's is left: a success that changes nothing. */
            g_task_return_pointer(task, report_new(), (GDestroyNotify)zpcid_bind_report_free);
            return;
        }
        fids = (const guint32 *)(gpointer)owned->data;
        n_fids = owned->len;
    }
    if (n_fids == 0) {
        g_task_return_new_error(task, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                                _("No function was given."));
        return;
    }
    if (options->allow_guards & ~OVERRIDABLE_GUARDS) {
        g_task_return_new_error(task, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                                _("Only the guards “net”, “block”, “sriov” and “domain” can be "
                                  "overridden."));
        return;
    }
    for (guint i = 0; i < n_fids; i++) {
        ZpcidFunction *f;

        for (guint k = 0; k < i; k++) {
            if (fids[k] == fids[i]) {
                g_task_return_new_error(task, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                                        _("The function 0x%08x is named twice."), fids[i]);
                return;
            }
        }
        f = zpcid_inventory_lookup_fid(self->inventory, fids[i]);
        if (f == NULL) {
            g_task_return_new_error(task, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND,
                                    _("There is no function with the FID 0x%08x."), fids[i]);
            return;
        }
        if (f->address == NULL) {
            if (standby == NULL)
                standby = g_string_new(NULL);
            else
                g_string_append_c(standby, '\n');
            g_string_append_printf(standby, _("Function 0x%08x is in standby: configure it first."),
                                   fids[i]);
        }
    }
    for (guint i = 0; i < n_fids; i++) {
        if (g_hash_table_contains(self->busy, GUINT_TO_POINTER(fids[i]))) {
            g_task_return_new_error(task, ZPCID_ERROR, ZPCID_ERROR_BUSY,
                                    _("Function 0x%08x is busy with another request."), fids[i]);
            return;
        }
    }
    if (standby != NULL) {
        g_task_return_new_error(task, ZPCID_ERROR, ZPCID_ERROR_BUSY, "%s", standby->str);
        return;
    }

    txn = txn_new(self, op, options, cancellable);
    txn->task = g_object_ref(task);
    g_array_append_vals(txn->fids, fids, n_fids);
    for (guint i = 0; i < n_fids; i++) {
        ZpcidFunction *f = zpcid_inventory_lookup_fid(self->inventory, fids[i]);
        Job *job = job_new(txn, fids[i], f->uid, f->address);
        if (op == OP_UNBIND) {
            ZpcidJournalBinding *b = g_hash_table_lookup(self->bindings, GUINT_TO_POINTER(fids[i]));
            if (b != NULL)
                job->host_driver = g_strdup(b->host_driver);
        }
        g_ptr_array_add(txn->jobs, job);
        g_hash_table_add(self->busy, GUINT_TO_POINTER(fids[i]));
    }
    self->n_running++;
    g_thread_unref(g_thread_new("zpcid-bind", txn_thread, txn_ref(txn)));
}

void
zpcid_binder_bind_async(ZpcidBinder *self, const guint32 *fids, guint n_fids,
                        const ZpcidBindOptions *options, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data)
{
    g_return_if_fail(ZPCID_IS_BINDER(self));
    start_request(self, OP_BIND, fids, n_fids, options, cancellable, callback, user_data,
                  zpcid_binder_bind_async);
}

ZpcidBindReport *
zpcid_binder_bind_finish(ZpcidBinder *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, self), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

void
zpcid_binder_unbind_async(ZpcidBinder *self, const guint32 *fids, guint n_fids,
                          const ZpcidBindOptions *options, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
    g_return_if_fail(ZPCID_IS_BINDER(self));
    start_request(self, OP_UNBIND, fids, n_fids, options, cancellable, callback, user_data,
                  zpcid_binder_unbind_async);
}

ZpcidBindReport *
zpcid_binder_unbind_finish(ZpcidBinder *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, self), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- recovery ---- */

/* FID -> PCI address of every configured function, read through sysfs (not the inventory,
 * which may not have been scanned yet). A device that is there but cannot be read is not in
 * the map either, so the map alone cannot tell "gone" from "unknown": @unreadable gets the
 * first such error, and while it is set a FID missing from the map is not a deconfigured
 * function. */
static GHashTable *
scan_addresses(ZpcidHost *host, GError **unreadable)
{
    GHashTable *map = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    g_autoptr(GError) local = NULL;
    g_autoptr(ZpcidDir) devices = zpcid_host_open_dir(host, PCI_DEVICES, &local);
    g_autoptr(GPtrArray) names = devices != NULL ? zpcid_dir_list(devices, &local) : NULL;

    if (names == NULL) {
        /* No PCI bus at all: every function is gone indeed. */
        if (local != NULL && !error_is_gone(local))
            g_propagate_error(unreadable, g_steal_pointer(&local));
        return map;
    }
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *rel = NULL;
        g_autoptr(ZpcidDir) dev = NULL;
        gint64 fid, uid;

        if (!zpcid_pci_address_is_valid(name))
            continue;
        rel = g_build_filename(PCI_DEVICES, name, NULL);
        dev = zpcid_host_open_dir(host, rel, &local);
        if (dev != NULL && zpcid_function_read_identity(dev, &fid, &uid, &local) && fid >= 0)
            g_hash_table_replace(map, GUINT_TO_POINTER((guint32)fid), g_strdup(name));
        if (local != NULL && !error_is_gone(local) && unreadable != NULL && *unreadable == NULL)
            g_propagate_error(unreadable, g_steal_pointer(&local));
        g_clear_error(&local);
    }
    return map;
}

static gboolean
member_in_target(ZpcidDir *dev, const ZpcidJournalMember *m)
{
    g_autofree char *driver = NULL;
    g_autofree char *override = NULL;

    if (!read_driver(dev, &driver, NULL) || !read_override(dev, &override, NULL))
        return FALSE;
    if (g_strcmp0(override, m->override_after) != 0)
        return FALSE;
    if (m->driver_after_any)
        return driver == NULL || !g_str_equal(driver, ZPCID_VFIO_DRIVER);
    return g_strcmp0(driver, m->driver_after) == 0;
}

/* Drops records of functions that are no longer what zpcid made of them: a non-persistent
 * binding whose function is not on vfio-pci (after a reboot) or whose UID changed. */
static void
prune_bindings(ZpcidBinder *self, GHashTable *addresses, gboolean scan_complete)
{
    g_autoptr(GPtrArray) all = zpcid_journal_dup_bindings(self->journal);
    g_autoptr(GArray) drop = g_array_new(FALSE, FALSE, sizeof(guint32));

    for (guint i = 0; i < all->len; i++) {
        ZpcidJournalBinding *b = g_ptr_array_index(all, i);
        const char *address = g_hash_table_lookup(addresses, GUINT_TO_POINTER(b->fid));
        g_autofree char *rel = NULL;
        g_autoptr(ZpcidDir) dev = NULL;
        g_autofree char *driver = NULL;
        gint64 fid, uid;

        if (address == NULL) {
            if (!b->persistent && scan_complete)
                g_array_append_val(drop, b->fid);
            continue;
        }
        rel = g_build_filename(PCI_DEVICES, address, NULL);
        dev = zpcid_host_open_dir(self->host, rel, NULL);
        if (dev == NULL || !zpcid_function_read_identity(dev, &fid, &uid, NULL))
            continue;
        if (b->uid >= 0 && uid != b->uid) {
            g_message(_("Function 0x%08x now has the UID 0x%04" PRIx64 " instead of "
                        "0x%04" PRIx64 "; its binding record is dropped."),
                      b->fid, uid, b->uid);
            g_array_append_val(drop, b->fid);
            continue;
        }
        if (!b->persistent && read_driver(dev, &driver, NULL) &&
            g_strcmp0(driver, ZPCID_VFIO_DRIVER) != 0)
            g_array_append_val(drop, b->fid);
    }
    if (drop->len > 0)
        zpcid_journal_commit(self->journal, NULL, NULL, (const guint32 *)(gpointer)drop->data,
                             drop->len, NULL);
}

/* Appends @line (taken) to what recovery could not do. */
static GString *
failures_add(GString *failures, char *line)
{
    if (failures == NULL)
        failures = g_string_new(NULL);
    else
        g_string_append_c(failures, '\n');
    g_string_append(failures, line);
    g_free(line);
    return failures;
}

gboolean
zpcid_binder_recover(ZpcidBinder *self, GError **error)
{
    g_autoptr(GPtrArray) txns = zpcid_journal_dup_transactions(self->journal);
    g_autoptr(GError) unreadable = NULL;
    g_autoptr(GHashTable) addresses = scan_addresses(self->host, &unreadable);
    g_autoptr(Txn) txn = NULL;
    g_autoptr(GPtrArray) restore = g_ptr_array_new();
    g_autoptr(GString) failures = NULL;
    g_autoptr(GPtrArray) refresh = g_ptr_array_new();

    g_return_val_if_fail(ZPCID_IS_BINDER(self), FALSE);

    if (txns->len > 0 && zpcid_host_is_live(self->host) &&
        !(self->flags & ZPCID_BINDER_FLAGS_LIVE_HOST)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_AUTHORIZED,
                    _("The journal has unfinished transactions, but this zpcid was not started "
                      "to change the live host."));
        return FALSE;
    }

    txn = txn_new(self, OP_RECOVER, NULL, NULL);
    for (guint t = 0; t < txns->len; t++) {
        ZpcidJournalTxn *jt = g_ptr_array_index(txns, t);
        g_autoptr(GPtrArray) jobs = g_ptr_array_new();
        gboolean complete = TRUE;
        gboolean unknown = FALSE;

        for (guint i = 0; i < jt->members->len; i++) {
            ZpcidJournalMember *m = g_ptr_array_index(jt->members, i);
            const char *address = g_hash_table_lookup(addresses, GUINT_TO_POINTER(m->fid));
            g_autofree char *rel = NULL;
            g_autoptr(GError) local = NULL;
            Job *job;
            gint64 fid, uid;

            /* Not found while some device could not be read: it may be that one. Forgetting
             * it would leave it half moved with no record of where it came from. */
            if (address == NULL && unreadable != NULL) {
                g_autofree char *label = g_strdup_printf("0x%08x", m->fid);
                failures = failures_add(
                    failures, g_strdup_printf(_("Function %s cannot be read to move it back: %s"),
                                              label, unreadable->message));
                unknown = TRUE;
                continue;
            }
            if (address == NULL) {
                /* Deconfigured since: it will come back as a fresh device. */
                g_message(_("Function 0x%08x of an unfinished transaction is gone; nothing to "
                            "repair."),
                          m->fid);
                zpcid_journal_settle(self->journal, jt->id, m->fid, NULL);
                continue;
            }
            job = job_new(txn, m->fid, m->uid, address);
            g_ptr_array_add(txn->jobs, job);
            job->journal_id = g_strdup(jt->id);
            job->driver_before = g_strdup(m->driver_before);
            job->override_before = g_strdup(m->override_before);
            rel = g_build_filename(PCI_DEVICES, address, NULL);
            job->dev = zpcid_host_open_dir(self->host, rel, &local);
            if (job->dev == NULL || !zpcid_function_read_identity(job->dev, &fid, &uid, &local)) {
                if (error_is_gone(local)) {
                    g_message(_("Function 0x%08x of an unfinished transaction is gone; nothing "
                                "to repair."),
                              m->fid);
                    zpcid_journal_settle(self->journal, jt->id, m->fid, NULL);
                    continue;
                }
                failures = failures_add(
                    failures, g_strdup_printf(_("Function %s cannot be read to move it back: %s"),
                                              job->label, local->message));
                unknown = TRUE;
                continue;
            }
            if (m->uid >= 0 && uid != m->uid) {
                g_message(_("Function 0x%08x now has the UID 0x%04" PRIx64 " instead "
                            "of 0x%04" PRIx64 "; it is not the device of the "
                            "journal and is left alone."),
                          m->fid, uid, m->uid);
                job->noop = TRUE;
                zpcid_journal_settle(self->journal, jt->id, m->fid, NULL);
                continue;
            }
            g_ptr_array_add(jobs, job);
            if (!member_in_target(job->dev, m))
                complete = FALSE;
        }
        /* Whether to complete or to undo is decided for the whole transaction, which needs
         * every member's state: left as it is, it is decided at the next start. */
        if (unknown)
            continue;
        /* Every function got where the transaction was going: only the commit is missing. */
        if (complete && jobs->len > 0 && jobs->len == jt->members->len) {
            g_autoptr(GError) local = NULL;
            if (!commit(self, jt, &local)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return FALSE;
            }
            for (guint i = 0; i < jobs->len; i++)
                g_ptr_array_add(refresh, g_ptr_array_index(jobs, i));
            continue;
        }
        for (guint i = 0; i < jobs->len; i++)
            g_ptr_array_add(restore, g_ptr_array_index(jobs, i));
    }

    run_phase(txn, restore, WORK_RESTORE);

    g_mutex_lock(&txn->lock);
    for (guint i = 0; i < restore->len; i++) {
        Job *job = g_ptr_array_index(restore, i);
        if (job->stuck || job->restore_error != NULL) {
            if (failures == NULL)
                failures = g_string_new(NULL);
            else
                g_string_append_c(failures, '\n');
            if (job->stuck)
                g_string_append_printf(failures,
                                       _("Function %s: the step “%s” did not finish (“%s”)."),
                                       job->label, job->step_name, job->step_file);
            else
                g_string_append(failures, job->restore_error->message);
            continue;
        }
        zpcid_journal_settle(self->journal, job->journal_id, job->fid, NULL);
        g_ptr_array_add(refresh, job);
    }
    for (guint i = 0; i < restore->len; i++) {
        Job *job = g_ptr_array_index(restore, i);
        if (job->stuck)
            g_hash_table_add(self->busy, GUINT_TO_POINTER(job->fid));
    }
    g_mutex_unlock(&txn->lock);

    prune_bindings(self, addresses, unreadable == NULL);
    reload_bindings(self);
    for (guint i = 0; i < refresh->len; i++) {
        Job *job = g_ptr_array_index(refresh, i);
        if (job->touched || job->journal_id != NULL)
            refresh_function(self, job->fid, job->address);
    }
    if (failures != NULL) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                    _("The journal could not be replayed for every function:\n%s"), failures->str);
        return FALSE;
    }
    return TRUE;
}

/* ---- persistent bindings at start ---- */

typedef struct {
    guint32 fid;
    guint attempts;
    gint64 next_at;
    gboolean in_flight;
    gboolean finished;
    guint allow;
    char *last_error;
} ReapplyItem;

typedef struct {
    ZpcidBinder *binder;
    GTask *task;
    GArray *items; /* ReapplyItem */
    GSource *timer; /* in the binder's context, not necessarily the global default */
    GSource *cancel_source;
    ZpcidBindReport *report;
} Reapply;

static void reapply_tick(Reapply *r);

static void
reapply_free(Reapply *r)
{
    for (guint i = 0; i < r->items->len; i++)
        g_free(g_array_index(r->items, ReapplyItem, i).last_error);
    g_array_unref(r->items);
    zpcid_bind_report_free(r->report);
    g_object_unref(r->binder);
    g_free(r);
}

static void
reapply_failed(Reapply *r, ReapplyItem *item, const char *reason)
{
    ZpcidBinder *binder = r->binder;
    guint factor;

    item->attempts++;
    g_free(item->last_error);
    item->last_error = g_strdup(reason);
    if (item->attempts >= REAPPLY_MAX_ATTEMPTS ||
        g_cancellable_is_cancelled(g_task_get_cancellable(r->task))) {
        item->finished = TRUE;
        g_ptr_array_add(r->report->warnings,
                        g_strdup_printf(_("The persistent binding of function 0x%08x was not "
                                          "applied after %u attempts: %s"),
                                        item->fid, item->attempts, reason));
        return;
    }
    factor = MIN(1u << (item->attempts - 1), REAPPLY_MAX_DELAY_FACTOR);
    item->next_at = g_get_monotonic_time() +
                    (gint64)binder->retry_base_ms * factor * G_TIME_SPAN_MILLISECOND;
}

typedef struct {
    Reapply *r;
    guint index;
} ReapplyCall;

static void
reapply_bind_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autofree ReapplyCall *call = user_data;
    Reapply *r = call->r;
    ReapplyItem *item = &g_array_index(r->items, ReapplyItem, call->index);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = zpcid_binder_bind_finish(ZPCID_BINDER(source), result, &error);

    item->in_flight = FALSE;
    if (report != NULL) {
        item->finished = TRUE;
        g_ptr_array_extend_and_steal(r->report->functions, g_steal_pointer(&report->functions));
        report->functions = g_ptr_array_new();
    } else {
        reapply_failed(r, item, error->message);
    }
    reapply_tick(r);
}

static gboolean
reapply_timer(gpointer data)
{
    Reapply *r = data;

    g_clear_pointer(&r->timer, g_source_unref);
    reapply_tick(r);
    return G_SOURCE_REMOVE;
}

static void
reapply_tick(Reapply *r)
{
    gint64 now = g_get_monotonic_time();
    gint64 next = G_MAXINT64;
    gboolean busy = FALSE;
    GCancellable *cancellable = g_task_get_cancellable(r->task);

    for (guint i = 0; i < r->items->len; i++) {
        ReapplyItem *item = &g_array_index(r->items, ReapplyItem, i);
        ZpcidFunction *f;

        if (item->finished)
            continue;
        busy = TRUE;
        if (item->in_flight)
            continue;
        if (g_cancellable_is_cancelled(cancellable)) {
            item->finished = TRUE;
            continue;
        }
        if (item->next_at > now) {
            next = MIN(next, item->next_at);
            continue;
        }
        f = zpcid_inventory_lookup_fid(r->binder->inventory, item->fid);
        if (f != NULL && g_strcmp0(f->driver, ZPCID_VFIO_DRIVER) == 0) {
            item->finished = TRUE;
            continue;
        }
        if (f == NULL || f->address == NULL) {
            g_autofree char *reason =
                g_strdup_printf(_("Function 0x%08x is not configured."), item->fid);
            reapply_failed(r, item, reason);
            if (!item->finished)
                next = MIN(next, item->next_at);
            continue;
        }
        {
            ZpcidBindOptions opts = ZPCID_BIND_OPTIONS_INIT;
            ReapplyCall *call = g_new0(ReapplyCall, 1);
            guint32 fid = item->fid;

            opts.persistent = TRUE;
            opts.allow_guards = item->allow;
            call->r = r;
            call->index = i;
            item->in_flight = TRUE;
            zpcid_binder_bind_async(r->binder, &fid, 1, &opts, NULL, reapply_bind_done, call);
        }
    }
    busy = FALSE;
    for (guint i = 0; i < r->items->len; i++) {
        ReapplyItem *item = &g_array_index(r->items, ReapplyItem, i);
        if (!item->finished)
            busy = TRUE;
    }
    if (!busy) {
        GTask *task = r->task;
        if (r->timer != NULL) {
            g_source_destroy(r->timer);
            g_clear_pointer(&r->timer, g_source_unref);
        }
        if (r->cancel_source != NULL) {
            g_source_destroy(r->cancel_source);
            g_clear_pointer(&r->cancel_source, g_source_unref);
        }
        g_task_return_pointer(task, g_steal_pointer(&r->report),
                              (GDestroyNotify)zpcid_bind_report_free);
        g_object_unref(task);
        return;
    }
    if (next != G_MAXINT64 && r->timer == NULL) {
        gint64 delay_ms = MAX((next - now) / G_TIME_SPAN_MILLISECOND, 1);
        r->timer = g_timeout_source_new((guint)MIN(delay_ms, G_MAXUINT));
        g_source_set_callback(r->timer, reapply_timer, r, NULL);
        g_source_attach(r->timer, r->binder->context);
    }
}

/* A GCancellableSource in the binder's context, so that cancelling from any thread ends
 * the waits for retries there. */
static gboolean
reapply_cancelled(GCancellable *cancellable, gpointer data)
{
    Reapply *r = data;

    if (r->timer != NULL) {
        g_source_destroy(r->timer);
        g_clear_pointer(&r->timer, g_source_unref);
    }
    g_clear_pointer(&r->cancel_source, g_source_unref);
    reapply_tick(r);
    return G_SOURCE_REMOVE;
}

void
zpcid_binder_reapply_persistent_async(ZpcidBinder *self, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = g_task_new(self, cancellable, callback, user_data);
    g_autoptr(GPtrArray) all = zpcid_journal_dup_bindings(self->journal);
    Reapply *r = g_new0(Reapply, 1);

    g_task_set_source_tag(task, zpcid_binder_reapply_persistent_async);
    /* Cancelling only stops the retries: the report of what was done is still wanted. */
    g_task_set_check_cancellable(task, FALSE);
    r->binder = g_object_ref(self);
    r->task = task;
    r->report = report_new();
    r->items = g_array_new(FALSE, TRUE, sizeof(ReapplyItem));
    for (guint i = 0; i < all->len; i++) {
        ZpcidJournalBinding *b = g_ptr_array_index(all, i);
        ReapplyItem item = {0};
        if (!b->persistent)
            continue;
        item.fid = b->fid;
        item.allow = guard_strv_to_mask(b->allow_guards);
        g_array_append_val(r->items, item);
    }
    /* The task owns r; r keeps a reference on the task until it returns. */
    g_task_set_task_data(task, r, (GDestroyNotify)reapply_free);
    if (cancellable != NULL) {
        r->cancel_source = g_cancellable_source_new(cancellable);
        g_source_set_callback(r->cancel_source, (GSourceFunc)(GCallback)reapply_cancelled, r,
                              NULL);
        g_source_attach(r->cancel_source, self->context);
    }
    reapply_tick(r);
}

ZpcidBindReport *
zpcid_binder_reapply_persistent_finish(ZpcidBinder *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, self), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

gboolean
zpcid_binder_is_idle(ZpcidBinder *self)
{
    g_return_val_if_fail(ZPCID_IS_BINDER(self), TRUE);
    return self->n_running == 0;
}
