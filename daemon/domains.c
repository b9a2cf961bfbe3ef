#include "domains.h"

#include <glib/gi18n-lib.h>

#include "error.h"
#include "zpcid-names.h"

/* An unused helper leaves after this long: libvirt's client library and its connection cost
 * the helper ~11 MiB, and starting it again costs ~30 ms. */
#define DEFAULT_HELPER_IDLE_MS (10 * 1000)

struct _ZpcidDomains {
    GObject parent;
    char *uri;
    GMutex lock; /* guards client, last_used and idle_source */
    ZpcidLibvirtClient *client;
    gint64 last_used;      /* monotonic µs of the last call through client */
    GSource *idle_source;  /* closes an unused client (in context) */
    GMainContext *context; /* the main thread's */
    guint idle_ms;
    GHashTable *users; /* address -> GStrv of domain names (main thread only) */
    guint n_running; /* jobs in a worker thread whose GTask has not completed */
    gboolean refreshing;
    gboolean refresh_again;
    GPtrArray *waiting_current; /* GTask: complete when the running refresh ends */
    GPtrArray *waiting_next;    /* GTask: complete when the next refresh ends */
};

enum { SIGNAL_USERS_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_TYPE(ZpcidDomains, zpcid_domains, G_TYPE_OBJECT)

static const char *const no_users[] = {NULL};

static void
zpcid_domains_finalize(GObject *object)
{
    ZpcidDomains *self = ZPCID_DOMAINS(object);

    if (self->idle_source != NULL) {
        g_source_destroy(self->idle_source);
        g_source_unref(self->idle_source);
    }
    g_clear_pointer(&self->client, zpcid_libvirt_client_free);
    g_main_context_unref(self->context);
    g_mutex_clear(&self->lock);
    g_hash_table_unref(self->users);
    g_ptr_array_unref(self->waiting_current);
    g_ptr_array_unref(self->waiting_next);
    g_free(self->uri);
    G_OBJECT_CLASS(zpcid_domains_parent_class)->finalize(object);
}

static void
zpcid_domains_class_init(ZpcidDomainsClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = zpcid_domains_finalize;
    signals[SIGNAL_USERS_CHANGED] = g_signal_new("users-changed", G_TYPE_FROM_CLASS(klass),
                                                 G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                 G_TYPE_NONE, 1, G_TYPE_STRV);
}

static void
zpcid_domains_init(ZpcidDomains *self)
{
    g_mutex_init(&self->lock);
    self->users = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify)g_strfreev);
    self->waiting_current = g_ptr_array_new_with_free_func(g_object_unref);
    self->waiting_next = g_ptr_array_new_with_free_func(g_object_unref);
    self->context = g_main_context_ref_thread_default();
}

ZpcidDomains *
zpcid_domains_new(const char *uri)
{
    ZpcidDomains *self = g_object_new(ZPCID_TYPE_DOMAINS, NULL);

    const char *idle = g_getenv(ZPCID_ENV_LIBVIRT_HELPER_IDLE_MS);
    guint64 ms;

    self->uri = g_strdup(uri);
    self->idle_ms = idle != NULL && g_ascii_string_to_unsigned(idle, 10, 1, G_MAXUINT, &ms, NULL)
                        ? (guint)ms
                        : DEFAULT_HELPER_IDLE_MS;
    return self;
}

const char *
zpcid_domains_get_uri(ZpcidDomains *self)
{
    return self->uri;
}

/* In the main thread, every idle_ms while a client is open. A job holding the lock is not
 * waited for: the main loop never blocks on libvirt. */
static gboolean
on_idle_check(gpointer user_data)
{
    ZpcidDomains *self = user_data;

    if (!g_mutex_trylock(&self->lock))
        return G_SOURCE_CONTINUE;
    if (self->client != NULL &&
        g_get_monotonic_time() - self->last_used < (gint64)self->idle_ms * 1000) {
        g_mutex_unlock(&self->lock);
        return G_SOURCE_CONTINUE;
    }
    if (self->client != NULL)
        g_debug("The libvirt helper (pid %s) was not used for %u ms; it is let go.",
                zpcid_libvirt_client_get_pid(self->client), self->idle_ms);
    g_clear_pointer(&self->client, zpcid_libvirt_client_free);
    g_source_unref(self->idle_source);
    self->idle_source = NULL;
    g_mutex_unlock(&self->lock);
    return G_SOURCE_REMOVE;
}

static gboolean
ensure_client(ZpcidDomains *self, GError **error)
{
    if (self->client != NULL && !zpcid_libvirt_client_is_usable(self->client))
        g_clear_pointer(&self->client, zpcid_libvirt_client_free);
    if (self->client == NULL) {
        self->client = zpcid_libvirt_client_start(self->uri, error);
        if (self->client == NULL)
            return FALSE;
        g_debug("Started the libvirt helper (pid %s) for “%s”.",
                zpcid_libvirt_client_get_pid(self->client), self->uri);
    }
    return TRUE;
}

/* Runs @job through the helper, started if needed; called with the lock held, in a worker
 * thread. */
static gpointer
run_locked(ZpcidDomains *self, ZpcidVirtJob job, gpointer data, GError **error)
{
    g_autoptr(GError) local_error = NULL;
    gpointer result;
    guint answered;

    if (!ensure_client(self, error))
        return NULL;
    answered = zpcid_libvirt_client_get_answered(self->client);
    result = job(self->client, data, &local_error);
    if (result == NULL && zpcid_libvirt_client_lost_before(self->client, answered)) {
        /* The helper died (or had died unseen) before it answered the job's first call.
         * Every job begins by reading, so nothing was changed: once more with a new one. */
        g_info("zpcid's libvirt helper went away (%s); starting it again.", local_error->message);
        g_clear_error(&local_error);
        if (!ensure_client(self, error))
            return NULL;
        result = job(self->client, data, &local_error);
    }
    if (local_error != NULL)
        g_propagate_error(error, g_steal_pointer(&local_error));
    self->last_used = g_get_monotonic_time();
    if (self->idle_source == NULL) {
        self->idle_source = g_timeout_source_new(self->idle_ms);
        g_source_set_callback(self->idle_source, on_idle_check, self, NULL);
        g_source_attach(self->idle_source, self->context);
    }
    return result;
}

typedef struct {
    ZpcidVirtJob job;
    gpointer data;
    GDestroyNotify data_free;
    GDestroyNotify result_free;
} Job;

static void
job_free(Job *job)
{
    if (job->data_free != NULL && job->data != NULL)
        job->data_free(job->data);
    g_free(job);
}

static void
run_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
    ZpcidDomains *self = source;
    Job *job = task_data;
    GError *error = NULL;
    gpointer result;

    g_mutex_lock(&self->lock);
    result = run_locked(self, job->job, job->data, &error);
    g_mutex_unlock(&self->lock);
    if (result == NULL && error == NULL) {
        error = g_error_new_literal(ZPCID_ERROR, ZPCID_ERROR_FAILED,
                                    _("libvirt gave no answer and no reason."));
    }
    if (error != NULL)
        g_task_return_error(task, error);
    else
        g_task_return_pointer(task, result, job->result_free);
}

/* The task holds a reference to @self until it completes, so @self is alive here. */
static void
on_job_completed(GTask *task, GParamSpec *pspec, ZpcidDomains *self)
{
    self->n_running--;
}

void
zpcid_domains_run_async(ZpcidDomains *self, ZpcidVirtJob job, gpointer data,
                        GDestroyNotify data_free, GDestroyNotify result_free,
                        GAsyncReadyCallback callback, gpointer user_data)
{
    /* No cancellable: a job runs to its end once started, and what libvirt did must reach
     * the caller (a GTask whose cancellable fired reports only "cancelled", even for an
     * attach that was done). */
    g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
    Job *j = g_new0(Job, 1);

    j->job = job;
    j->data = data;
    j->data_free = data_free;
    j->result_free = result_free;
    g_task_set_source_tag(task, zpcid_domains_run_async);
    g_task_set_task_data(task, j, (GDestroyNotify)job_free);
    self->n_running++;
    g_signal_connect(task, "notify::completed", G_CALLBACK(on_job_completed), self);
    g_task_run_in_thread(task, run_in_thread);
}

gboolean
zpcid_domains_is_idle(ZpcidDomains *self)
{
    return self->n_running == 0;
}

gpointer
zpcid_domains_run_finish(ZpcidDomains *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, self), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

static gpointer
lookup_job(ZpcidLibvirtClient *client, gpointer data, GError **error)
{
    return zpcid_libvirt_client_domains_using(client, data, error);
}

gboolean
zpcid_domains_lookup(const char *address, guint32 fid, gint64 uid, char ***running,
                     char ***defined, gpointer user_data, GError **error)
{
    ZpcidDomains *self = user_data;
    g_autoptr(GVariant) refs = NULL;
    g_autoptr(GStrvBuilder) run = g_strv_builder_new();
    g_autoptr(GStrvBuilder) def = g_strv_builder_new();
    GVariantIter iter;
    const char *name;
    gboolean is_running;

    g_mutex_lock(&self->lock);
    refs = run_locked(self, lookup_job, (gpointer)address, error);
    g_mutex_unlock(&self->lock);
    if (refs == NULL)
        return FALSE;
    g_variant_iter_init(&iter, refs);
    while (g_variant_iter_next(&iter, "(&sbbb)", &name, &is_running, NULL, NULL))
        g_strv_builder_add(is_running ? run : def, name);
    *running = g_strv_builder_end(run);
    *defined = g_strv_builder_end(def);
    return TRUE;
}

const char *const *
zpcid_domains_get_users(ZpcidDomains *self, const char *address)
{
    const char *const *names = NULL;

    if (address != NULL)
        names = g_hash_table_lookup(self->users, address);
    return names != NULL ? names : no_users;
}

static gpointer
users_job(ZpcidLibvirtClient *client, gpointer data, GError **error)
{
    g_autoptr(GVariant) users = zpcid_libvirt_client_list_pci_users(client, error);
    g_autoptr(GHashTable) sets = NULL;
    GHashTable *map;
    GHashTableIter iter;
    GVariantIter users_iter;
    gpointer key, value;
    const char *address, *domain;

    if (users == NULL)
        return NULL;
    /* address -> set of names: a domain may reference a function in live and config XML. */
    sets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                 (GDestroyNotify)g_hash_table_unref);
    g_variant_iter_init(&users_iter, users);
    while (
        g_variant_iter_next(&users_iter, "(&sb&sbbb)", &address, NULL, &domain, NULL, NULL, NULL)) {
        GHashTable *names = g_hash_table_lookup(sets, address);

        if (names == NULL) {
            names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
            g_hash_table_insert(sets, g_strdup(address), names);
        }
        g_hash_table_add(names, g_strdup(domain));
    }
    map = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_strfreev);
    g_hash_table_iter_init(&iter, sets);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        g_autofree const char **names = (const char **)g_hash_table_get_keys_as_array(value, NULL);
        GStrv sorted;

        sorted = g_strdupv((char **)names);
        qsort(sorted, g_strv_length(sorted), sizeof(char *), (GCompareFunc)g_strcmp0);
        g_hash_table_insert(map, g_strdup(key), sorted);
    }
    return map;
}

static void start_refresh(ZpcidDomains *self);

static gboolean
strv_equal0(const char *const *a, const char *const *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return g_strv_equal(a, b);
}

static void
on_users(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(ZpcidDomains) self = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GHashTable) map = zpcid_domains_run_finish(self, result, &error);
    g_autoptr(GStrvBuilder) changed = g_strv_builder_new();
    g_auto(GStrv) addresses = NULL;
    GHashTableIter iter;
    gpointer key, value;

    self->refreshing = FALSE;
    if (map == NULL) {
        /* Keep what we knew: a libvirt that is down says nothing about the domains. */
        g_info("The libvirt domains could not be read from “%s”: %s", self->uri,
               error->message);
    } else {
        g_hash_table_iter_init(&iter, map);
        while (g_hash_table_iter_next(&iter, &key, &value)) {
            if (!strv_equal0(g_hash_table_lookup(self->users, key), value))
                g_strv_builder_add(changed, key);
        }
        g_hash_table_iter_init(&iter, self->users);
        while (g_hash_table_iter_next(&iter, &key, NULL)) {
            if (!g_hash_table_contains(map, key))
                g_strv_builder_add(changed, key);
        }
        g_hash_table_unref(self->users);
        self->users = g_steal_pointer(&map);
        addresses = g_strv_builder_end(changed);
        if (addresses[0] != NULL)
            g_signal_emit(self, signals[SIGNAL_USERS_CHANGED], 0, addresses);
    }
    {
        g_autoptr(GPtrArray) done = g_steal_pointer(&self->waiting_current);
        self->waiting_current = g_steal_pointer(&self->waiting_next);
        self->waiting_next = g_ptr_array_new_with_free_func(g_object_unref);
        for (guint i = 0; i < done->len; i++)
            g_task_return_boolean(g_ptr_array_index(done, i), TRUE);
    }
    if (self->refresh_again) {
        self->refresh_again = FALSE;
        start_refresh(self);
    }
}

static void
start_refresh(ZpcidDomains *self)
{
    self->refreshing = TRUE;
    zpcid_domains_run_async(self, users_job, NULL, NULL, (GDestroyNotify)g_hash_table_unref,
                            on_users, g_object_ref(self));
}

void
zpcid_domains_refresh_async(ZpcidDomains *self, GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = callback != NULL ? g_task_new(self, NULL, callback, user_data) : NULL;

    if (self->refreshing) {
        /* The running refresh may have read libvirt before the change the caller made. */
        self->refresh_again = TRUE;
        if (task != NULL)
            g_ptr_array_add(self->waiting_next, task);
        return;
    }
    if (task != NULL)
        g_ptr_array_add(self->waiting_current, task);
    start_refresh(self);
}

void
zpcid_domains_refresh_finish(ZpcidDomains *self, GAsyncResult *result)
{
    g_task_propagate_boolean(G_TASK(result), NULL);
}

void
zpcid_domains_refresh(ZpcidDomains *self)
{
    zpcid_domains_refresh_async(self, NULL, NULL);
}
