#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

#define FORMAT_NAME "zpcid-binder"
#define TMP_SUFFIX ".tmp"

struct _ZpcidJournal {
    char *dir;
    char *path;
    int dir_fd;

    GMutex lock;
    GCond cond;
    GPtrArray *txns;     /* ZpcidJournalTxn* */
    GPtrArray *bindings; /* ZpcidJournalBinding* */

    /* Group commit: every change bumps change_gen; a caller waits until written_gen has
     * caught up with the generation of its change, writing itself if nobody else is. */
    guint64 change_gen;
    guint64 written_gen;
    guint64 failed_gen;
    char *failed_message;
    gboolean writing;
    guint n_writes;

    ZpcidJournalHook hook;
    gpointer hook_data;
};

ZpcidJournalMember *
zpcid_journal_member_new(void)
{
    ZpcidJournalMember *m = g_new0(ZpcidJournalMember, 1);
    m->uid = -1;
    return m;
}

ZpcidJournalMember *
zpcid_journal_member_copy(const ZpcidJournalMember *src)
{
    ZpcidJournalMember *m = g_new0(ZpcidJournalMember, 1);

    m->fid = src->fid;
    m->uid = src->uid;
    m->address = g_strdup(src->address);
    m->driver_before = g_strdup(src->driver_before);
    m->override_before = g_strdup(src->override_before);
    m->driver_after = g_strdup(src->driver_after);
    m->driver_after_any = src->driver_after_any;
    m->override_after = g_strdup(src->override_after);
    m->step = g_strdup(src->step);
    m->file = g_strdup(src->file);
    m->rolling_back = src->rolling_back;
    return m;
}

void
zpcid_journal_member_free(ZpcidJournalMember *m)
{
    if (m == NULL)
        return;
    g_free(m->address);
    g_free(m->driver_before);
    g_free(m->override_before);
    g_free(m->driver_after);
    g_free(m->override_after);
    g_free(m->step);
    g_free(m->file);
    g_free(m);
}

ZpcidJournalTxn *
zpcid_journal_txn_new(const char *operation)
{
    ZpcidJournalTxn *t = g_new0(ZpcidJournalTxn, 1);

    t->operation = g_strdup(operation);
    t->fids = g_array_new(FALSE, FALSE, sizeof(guint32));
    t->members = g_ptr_array_new_with_free_func((GDestroyNotify)zpcid_journal_member_free);
    return t;
}

ZpcidJournalTxn *
zpcid_journal_txn_copy(const ZpcidJournalTxn *src)
{
    ZpcidJournalTxn *t = zpcid_journal_txn_new(src->operation);

    t->id = g_strdup(src->id);
    t->persistent = src->persistent;
    t->allow_guards = g_strdupv(src->allow_guards);
    t->owner = g_strdup(src->owner);
    g_array_append_vals(t->fids, src->fids->data, src->fids->len);
    for (guint i = 0; i < src->members->len; i++)
        g_ptr_array_add(t->members, zpcid_journal_member_copy(g_ptr_array_index(src->members, i)));
    return t;
}

void
zpcid_journal_txn_free(ZpcidJournalTxn *t)
{
    if (t == NULL)
        return;
    g_free(t->id);
    g_free(t->operation);
    g_strfreev(t->allow_guards);
    g_free(t->owner);
    g_array_unref(t->fids);
    g_ptr_array_unref(t->members);
    g_free(t);
}

ZpcidJournalBinding *
zpcid_journal_binding_copy(const ZpcidJournalBinding *src)
{
    ZpcidJournalBinding *b = g_new0(ZpcidJournalBinding, 1);

    b->fid = src->fid;
    b->uid = src->uid;
    b->address = g_strdup(src->address);
    b->host_driver = g_strdup(src->host_driver);
    b->persistent = src->persistent;
    b->allow_guards = g_strdupv(src->allow_guards);
    b->owner = g_strdup(src->owner);
    return b;
}

void
zpcid_journal_binding_free(ZpcidJournalBinding *b)
{
    if (b == NULL)
        return;
    g_free(b->address);
    g_free(b->host_driver);
    g_strfreev(b->allow_guards);
    g_free(b->owner);
    g_free(b);
}

/* ---- JSON ---- */

static void
add_string_or_null(JsonBuilder *b, const char *name, const char *value)
{
    json_builder_set_member_name(b, name);
    if (value != NULL)
        json_builder_add_string_value(b, value);
    else
        json_builder_add_null_value(b);
}

static void
add_strv(JsonBuilder *b, const char *name, char **strv)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_array(b);
    for (guint k = 0; strv != NULL && strv[k] != NULL; k++)
        json_builder_add_string_value(b, strv[k]);
    json_builder_end_array(b);
}

static char *
serialize(ZpcidJournal *j)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *text = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "format");
    json_builder_add_string_value(b, FORMAT_NAME);
    json_builder_set_member_name(b, "version");
    json_builder_add_int_value(b, ZPCID_JOURNAL_VERSION);

    json_builder_set_member_name(b, "bindings");
    json_builder_begin_array(b);
    for (guint i = 0; i < j->bindings->len; i++) {
        ZpcidJournalBinding *bd = g_ptr_array_index(j->bindings, i);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "fid");
        json_builder_add_int_value(b, bd->fid);
        json_builder_set_member_name(b, "uid");
        json_builder_add_int_value(b, bd->uid);
        add_string_or_null(b, "address", bd->address);
        add_string_or_null(b, "host-driver", bd->host_driver);
        json_builder_set_member_name(b, "persistent");
        json_builder_add_boolean_value(b, bd->persistent);
        add_strv(b, "allow-guards", bd->allow_guards);
        add_string_or_null(b, "owner", bd->owner);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);

    json_builder_set_member_name(b, "transactions");
    json_builder_begin_array(b);
    for (guint i = 0; i < j->txns->len; i++) {
        ZpcidJournalTxn *t = g_ptr_array_index(j->txns, i);
        json_builder_begin_object(b);
        add_string_or_null(b, "id", t->id);
        add_string_or_null(b, "operation", t->operation);
        json_builder_set_member_name(b, "persistent");
        json_builder_add_boolean_value(b, t->persistent);
        add_strv(b, "allow-guards", t->allow_guards);
        add_string_or_null(b, "owner", t->owner);
        json_builder_set_member_name(b, "fids");
        json_builder_begin_array(b);
        for (guint k = 0; k < t->fids->len; k++)
            json_builder_add_int_value(b, g_array_index(t->fids, guint32, k));
        json_builder_end_array(b);
        json_builder_set_member_name(b, "functions");
        json_builder_begin_array(b);
        for (guint k = 0; k < t->members->len; k++) {
            ZpcidJournalMember *m = g_ptr_array_index(t->members, k);
            json_builder_begin_object(b);
            json_builder_set_member_name(b, "fid");
            json_builder_add_int_value(b, m->fid);
            json_builder_set_member_name(b, "uid");
            json_builder_add_int_value(b, m->uid);
            add_string_or_null(b, "address", m->address);
            add_string_or_null(b, "driver-before", m->driver_before);
            add_string_or_null(b, "override-before", m->override_before);
            add_string_or_null(b, "driver-after", m->driver_after);
            json_builder_set_member_name(b, "driver-after-any");
            json_builder_add_boolean_value(b, m->driver_after_any);
            add_string_or_null(b, "override-after", m->override_after);
            add_string_or_null(b, "step", m->step);
            add_string_or_null(b, "file", m->file);
            json_builder_set_member_name(b, "rolling-back");
            json_builder_add_boolean_value(b, m->rolling_back);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);

    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    text = json_generator_to_data(gen, NULL);
    return g_strconcat(text, "\n", NULL);
}

/* Reads a member that must be a string or null; FALSE for anything else. */
static gboolean
get_string_or_null(JsonObject *o, const char *name, char **out)
{
    JsonNode *n = json_object_get_member(o, name);

    *out = NULL;
    if (n == NULL || JSON_NODE_HOLDS_NULL(n))
        return TRUE;
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return FALSE;
    *out = g_strdup(json_node_get_string(n));
    return TRUE;
}

static gboolean
get_int(JsonObject *o, const char *name, gint64 min, gint64 max, gint64 *out)
{
    JsonNode *n = json_object_get_member(o, name);

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
        return FALSE;
    *out = json_node_get_int(n);
    return *out >= min && *out <= max;
}

static gboolean
get_bool(JsonObject *o, const char *name, gboolean *out)
{
    JsonNode *n = json_object_get_member(o, name);

    *out = FALSE;
    if (n == NULL)
        return TRUE;
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
        return FALSE;
    *out = json_node_get_boolean(n);
    return TRUE;
}

static JsonArray *
get_array(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    if (n == NULL || !JSON_NODE_HOLDS_ARRAY(n))
        return NULL;
    return json_node_get_array(n);
}

/* An optional array of strings; FALSE when it holds anything else. */
static gboolean
get_strv(JsonObject *o, const char *name, GStrv *out)
{
    JsonArray *arr = get_array(o, name);
    g_autoptr(GStrvBuilder) sb = g_strv_builder_new();

    *out = NULL;
    if (arr == NULL)
        return json_object_get_member(o, name) == NULL;
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonNode *g = json_array_get_element(arr, i);
        if (!JSON_NODE_HOLDS_VALUE(g) || json_node_get_value_type(g) != G_TYPE_STRING)
            return FALSE;
        g_strv_builder_add(sb, json_node_get_string(g));
    }
    *out = g_strv_builder_end(sb);
    return TRUE;
}

static ZpcidJournalBinding *
parse_binding(JsonNode *node)
{
    g_autoptr(ZpcidJournalBinding) b = g_new0(ZpcidJournalBinding, 1);
    JsonObject *o;
    gint64 v;

    if (!JSON_NODE_HOLDS_OBJECT(node))
        return NULL;
    o = json_node_get_object(node);
    if (!get_int(o, "fid", 0, G_MAXUINT32, &v))
        return NULL;
    b->fid = (guint32)v;
    if (!get_int(o, "uid", -1, G_MAXUINT32, &b->uid))
        return NULL;
    if (!get_string_or_null(o, "address", &b->address) ||
        !get_string_or_null(o, "host-driver", &b->host_driver) ||
        !get_bool(o, "persistent", &b->persistent) ||
        !get_strv(o, "allow-guards", &b->allow_guards) ||
        !get_string_or_null(o, "owner", &b->owner))
        return NULL;
    return g_steal_pointer(&b);
}

static ZpcidJournalMember *
parse_member(JsonNode *node)
{
    g_autoptr(ZpcidJournalMember) m = zpcid_journal_member_new();
    JsonObject *o;
    gint64 v;

    if (!JSON_NODE_HOLDS_OBJECT(node))
        return NULL;
    o = json_node_get_object(node);
    if (!get_int(o, "fid", 0, G_MAXUINT32, &v))
        return NULL;
    m->fid = (guint32)v;
    if (!get_int(o, "uid", -1, G_MAXUINT32, &m->uid))
        return NULL;
    if (!get_string_or_null(o, "address", &m->address) ||
        !get_string_or_null(o, "driver-before", &m->driver_before) ||
        !get_string_or_null(o, "override-before", &m->override_before) ||
        !get_string_or_null(o, "driver-after", &m->driver_after) ||
        !get_bool(o, "driver-after-any", &m->driver_after_any) ||
        !get_string_or_null(o, "override-after", &m->override_after) ||
        !get_string_or_null(o, "step", &m->step) ||
        !get_string_or_null(o, "file", &m->file) ||
        !get_bool(o, "rolling-back", &m->rolling_back))
        return NULL;
    return g_steal_pointer(&m);
}

static ZpcidJournalTxn *
parse_txn(JsonNode *node)
{
    g_autoptr(ZpcidJournalTxn) t = NULL;
    g_autofree char *op = NULL;
    JsonObject *o;
    JsonArray *members;
    JsonArray *fids;

    if (!JSON_NODE_HOLDS_OBJECT(node))
        return NULL;
    o = json_node_get_object(node);
    if (!get_string_or_null(o, "operation", &op) || op == NULL ||
        (!g_str_equal(op, "bind") && !g_str_equal(op, "unbind")))
        return NULL;
    t = zpcid_journal_txn_new(op);
    if (!get_string_or_null(o, "id", &t->id) || t->id == NULL ||
        !get_bool(o, "persistent", &t->persistent) ||
        !get_strv(o, "allow-guards", &t->allow_guards) ||
        !get_string_or_null(o, "owner", &t->owner))
        return NULL;
    fids = get_array(o, "fids");
    for (guint i = 0; fids != NULL && i < json_array_get_length(fids); i++) {
        JsonNode *n = json_array_get_element(fids, i);
        gint64 v;
        guint32 fid;
        if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
            return NULL;
        v = json_node_get_int(n);
        if (v < 0 || v > G_MAXUINT32)
            return NULL;
        fid = (guint32)v;
        g_array_append_val(t->fids, fid);
    }
    members = get_array(o, "functions");
    if (members == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(members); i++) {
        ZpcidJournalMember *m = parse_member(json_array_get_element(members, i));
        if (m == NULL)
            return NULL;
        g_ptr_array_add(t->members, m);
    }
    return g_steal_pointer(&t);
}

static gboolean
load(ZpcidJournal *j, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autofree char *data = NULL;
    gsize len;
    JsonObject *o;
    JsonArray *arr;
    g_autofree char *format = NULL;
    gint64 version;

    if (!g_file_get_contents(j->path, &data, &len, &local)) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return TRUE;
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                    _("Could not read the binder state “%s”: %s."), j->path, local->message);
        return FALSE;
    }
    if (!json_parser_load_from_data(parser, data, (gssize)len, &local) ||
        json_parser_get_root(parser) == NULL ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED,
                    _("The binder state “%s” is damaged (%s); zpcid does not overwrite it. "
                      "Move it away to start without recorded bindings."),
                    j->path, local != NULL ? local->message : _("not a JSON object"));
        return FALSE;
    }
    o = json_node_get_object(json_parser_get_root(parser));
    if (!get_string_or_null(o, "format", &format) || g_strcmp0(format, FORMAT_NAME) != 0 ||
        !get_int(o, "version", 0, G_MAXINT32, &version)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED,
                    _("The file “%s” is not a zpcid binder state; zpcid does not overwrite it."),
                    j->path);
        return FALSE;
    }
    if (version != ZPCID_JOURNAL_VERSION) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_UNSUPPORTED,
                    _("The binder state “%s” has version %" PRId64
                      ", but this zpcid reads only version %d."),
                    j->path, version, ZPCID_JOURNAL_VERSION);
        return FALSE;
    }
    arr = get_array(o, "bindings");
    for (guint i = 0; arr != NULL && i < json_array_get_length(arr); i++) {
        ZpcidJournalBinding *b = parse_binding(json_array_get_element(arr, i));
        if (b == NULL)
            goto malformed;
        g_ptr_array_add(j->bindings, b);
    }
    arr = get_array(o, "transactions");
    for (guint i = 0; arr != NULL && i < json_array_get_length(arr); i++) {
        ZpcidJournalTxn *t = parse_txn(json_array_get_element(arr, i));
        if (t == NULL)
            goto malformed;
        g_ptr_array_add(j->txns, t);
    }
    return TRUE;

malformed:
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED,
                _("The binder state “%s” has a record zpcid cannot read; zpcid does not "
                  "overwrite it."),
                j->path);
    return FALSE;
}

ZpcidJournal *
zpcid_journal_open(const char *state_dir, GError **error)
{
    g_autoptr(ZpcidJournal) j = g_new0(ZpcidJournal, 1);

    g_mutex_init(&j->lock);
    g_cond_init(&j->cond);
    j->dir_fd = -1;
    j->txns = g_ptr_array_new_with_free_func((GDestroyNotify)zpcid_journal_txn_free);
    j->bindings = g_ptr_array_new_with_free_func((GDestroyNotify)zpcid_journal_binding_free);
    j->dir = g_canonicalize_filename(state_dir, NULL);
    j->path = g_build_filename(j->dir, ZPCID_JOURNAL_FILE, NULL);

    if (g_mkdir_with_parents(j->dir, 0700) < 0) {
        int saved = errno;
        g_set_error(error, ZPCID_ERROR, zpcid_error_code_from_errno(saved),
                    _("Could not create the state directory “%s”: %s."), j->dir,
                    g_strerror(saved));
        return NULL;
    }
    j->dir_fd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->dir_fd < 0) {
        int saved = errno;
        g_set_error(error, ZPCID_ERROR, zpcid_error_code_from_errno(saved),
                    _("Could not open the state directory “%s”: %s."), j->dir,
                    g_strerror(saved));
        return NULL;
    }
    if (!load(j, error))
        return NULL;
    return g_steal_pointer(&j);
}

void
zpcid_journal_free(ZpcidJournal *j)
{
    if (j == NULL)
        return;
    if (j->dir_fd >= 0)
        close(j->dir_fd);
    g_ptr_array_unref(j->txns);
    g_ptr_array_unref(j->bindings);
    g_free(j->failed_message);
    g_free(j->dir);
    g_free(j->path);
    g_mutex_clear(&j->lock);
    g_cond_clear(&j->cond);
    g_free(j);
}

const char *
zpcid_journal_get_path(ZpcidJournal *j)
{
    return j->path;
}

void
zpcid_journal_set_hook(ZpcidJournal *j, ZpcidJournalHook hook, gpointer user_data)
{
    g_mutex_lock(&j->lock);
    j->hook = hook;
    j->hook_data = user_data;
    g_mutex_unlock(&j->lock);
}

static gboolean
write_all(int fd, const char *data, gsize len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return FALSE;
        }
        data += n;
        len -= (gsize)n;
    }
    return TRUE;
}

/* Replaces the store atomically: after a crash either the old or the new file is there,
 * and once this returns the new one survives a power cut. */
static gboolean
write_atomic(ZpcidJournal *j, const char *data, guint n, ZpcidJournalHook hook, gpointer hook_data,
             GError **error)
{
    g_autofree char *tmp_name = g_strconcat(ZPCID_JOURNAL_FILE, TMP_SUFFIX, NULL);
    int fd;
    int saved;

    if (hook != NULL)
        hook(n, FALSE, hook_data);
    fd = openat(j->dir_fd, tmp_name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    if (!write_all(fd, data, strlen(data)) || fsync(fd) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        goto fail;
    }
    if (close(fd) < 0 && errno != EINTR)
        goto fail;
    if (hook != NULL)
        hook(n, TRUE, hook_data);
    if (renameat(j->dir_fd, tmp_name, j->dir_fd, ZPCID_JOURNAL_FILE) < 0)
        goto fail;
    if (fsync(j->dir_fd) < 0)
        goto fail;
    return TRUE;

fail:
    saved = errno;
    g_set_error(error, ZPCID_ERROR, zpcid_error_code_from_errno(saved),
                _("Could not write the binder state “%s”: %s."), j->path, g_strerror(saved));
    return FALSE;
}

/* With the lock held: returns once generation @gen is on disk. */
static gboolean
flush_locked(ZpcidJournal *j, guint64 gen, GError **error)
{
    while (j->written_gen < gen) {
        g_autofree char *data = NULL;
        g_autoptr(GError) local = NULL;
        ZpcidJournalHook hook;
        gpointer hook_data;
        guint64 target;
        guint n;
        gboolean ok;

        if (j->writing) {
            g_cond_wait(&j->cond, &j->lock);
            if (j->failed_gen >= gen && j->written_gen < gen) {
                g_set_error_literal(error, ZPCID_ERROR, ZPCID_ERROR_FAILED, j->failed_message);
                return FALSE;
            }
            continue;
        }
        j->writing = TRUE;
        data = serialize(j);
        target = j->change_gen;
        n = ++j->n_writes;
        hook = j->hook;
        hook_data = j->hook_data;
        g_mutex_unlock(&j->lock);
        ok = write_atomic(j, data, n, hook, hook_data, &local);
        g_mutex_lock(&j->lock);
        j->writing = FALSE;
        if (ok) {
            j->written_gen = MAX(j->written_gen, target);
        } else {
            j->failed_gen = target;
            g_free(j->failed_message);
            j->failed_message = g_strdup(local->message);
        }
        g_cond_broadcast(&j->cond);
        if (!ok) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
changed_locked(ZpcidJournal *j, GError **error)
{
    guint64 gen = ++j->change_gen;
    return flush_locked(j, gen, error);
}

static ZpcidJournalTxn *
find_txn(ZpcidJournal *j, const char *id, guint *index)
{
    for (guint i = 0; i < j->txns->len; i++) {
        ZpcidJournalTxn *t = g_ptr_array_index(j->txns, i);
        if (g_strcmp0(t->id, id) == 0) {
            if (index != NULL)
                *index = i;
            return t;
        }
    }
    return NULL;
}

static ZpcidJournalMember *
find_member(ZpcidJournalTxn *t, guint32 fid, guint *index)
{
    for (guint i = 0; i < t->members->len; i++) {
        ZpcidJournalMember *m = g_ptr_array_index(t->members, i);
        if (m->fid == fid) {
            if (index != NULL)
                *index = i;
            return m;
        }
    }
    return NULL;
}

gboolean
zpcid_journal_begin(ZpcidJournal *j, ZpcidJournalTxn *txn, GError **error)
{
    gboolean ok;

    if (txn->id == NULL)
        txn->id = g_uuid_string_random();
    g_mutex_lock(&j->lock);
    g_ptr_array_add(j->txns, zpcid_journal_txn_copy(txn));
    ok = changed_locked(j, error);
    g_mutex_unlock(&j->lock);
    return ok;
}

gboolean
zpcid_journal_note_step(ZpcidJournal *j, const char *txn_id, guint32 fid, const char *step,
                        const char *file, gboolean rolling_back, GError **error)
{
    ZpcidJournalTxn *t;
    ZpcidJournalMember *m;
    gboolean ok;

    g_mutex_lock(&j->lock);
    t = find_txn(j, txn_id, NULL);
    m = t != NULL ? find_member(t, fid, NULL) : NULL;
    if (m == NULL) {
        g_mutex_unlock(&j->lock);
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                    _("The journal has no record of function 0x%08x in transaction “%s”."), fid,
                    txn_id);
        return FALSE;
    }
    g_free(m->step);
    m->step = g_strdup(step);
    g_free(m->file);
    m->file = g_strdup(file);
    m->rolling_back = rolling_back;
    ok = changed_locked(j, error);
    g_mutex_unlock(&j->lock);
    return ok;
}

gboolean
zpcid_journal_settle(ZpcidJournal *j, const char *txn_id, guint32 fid, GError **error)
{
    ZpcidJournalTxn *t;
    guint ti, mi;
    gboolean ok;

    g_mutex_lock(&j->lock);
    t = find_txn(j, txn_id, &ti);
    if (t == NULL || find_member(t, fid, &mi) == NULL) {
        g_mutex_unlock(&j->lock);
        return TRUE;
    }
    g_ptr_array_remove_index(t->members, mi);
    if (t->members->len == 0)
        g_ptr_array_remove_index(j->txns, ti);
    ok = changed_locked(j, error);
    g_mutex_unlock(&j->lock);
    return ok;
}

static gboolean
remove_binding_locked(ZpcidJournal *j, guint32 fid)
{
    for (guint i = 0; i < j->bindings->len; i++) {
        ZpcidJournalBinding *b = g_ptr_array_index(j->bindings, i);
        if (b->fid == fid) {
            g_ptr_array_remove_index(j->bindings, i);
            return TRUE;
        }
    }
    return FALSE;
}

static gint
compare_bindings(gconstpointer a, gconstpointer b)
{
    const ZpcidJournalBinding *x = *(ZpcidJournalBinding *const *)a;
    const ZpcidJournalBinding *y = *(ZpcidJournalBinding *const *)b;
    return x->fid < y->fid ? -1 : x->fid > y->fid;
}

gboolean
zpcid_journal_commit(ZpcidJournal *j, const char *txn_id, GPtrArray *set,
                     const guint32 *remove_fids, guint n_remove, GError **error)
{
    guint ti;
    gboolean ok;

    gboolean changed = set != NULL && set->len > 0;

    g_mutex_lock(&j->lock);
    if (txn_id != NULL && find_txn(j, txn_id, &ti) != NULL) {
        g_ptr_array_remove_index(j->txns, ti);
        changed = TRUE;
    }
    for (guint i = 0; i < n_remove; i++)
        changed |= remove_binding_locked(j, remove_fids[i]);
    /* Nothing to forget (a release of functions zpcid never bound): no write at all. */
    if (!changed) {
        g_mutex_unlock(&j->lock);
        return TRUE;
    }
    for (guint i = 0; set != NULL && i < set->len; i++) {
        ZpcidJournalBinding *b = g_ptr_array_index(set, i);
        remove_binding_locked(j, b->fid);
        g_ptr_array_add(j->bindings, zpcid_journal_binding_copy(b));
    }
    /* Sorted by FID so that the file reads well and diffs stay small. */
    g_ptr_array_sort(j->bindings, compare_bindings);
    ok = changed_locked(j, error);
    g_mutex_unlock(&j->lock);
    return ok;
}

GPtrArray *
zpcid_journal_dup_transactions(ZpcidJournal *j)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)zpcid_journal_txn_free);

    g_mutex_lock(&j->lock);
    for (guint i = 0; i < j->txns->len; i++)
        g_ptr_array_add(out, zpcid_journal_txn_copy(g_ptr_array_index(j->txns, i)));
    g_mutex_unlock(&j->lock);
    return out;
}

GPtrArray *
zpcid_journal_dup_bindings(ZpcidJournal *j)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)zpcid_journal_binding_free);

    g_mutex_lock(&j->lock);
    for (guint i = 0; i < j->bindings->len; i++)
        g_ptr_array_add(out, zpcid_journal_binding_copy(g_ptr_array_index(j->bindings, i)));
    g_mutex_unlock(&j->lock);
    return out;
}

ZpcidJournalBinding *
zpcid_journal_lookup_binding(ZpcidJournal *j, guint32 fid)
{
    ZpcidJournalBinding *found = NULL;

    g_mutex_lock(&j->lock);
    for (guint i = 0; i < j->bindings->len; i++) {
        ZpcidJournalBinding *b = g_ptr_array_index(j->bindings, i);
        if (b->fid == fid) {
            found = zpcid_journal_binding_copy(b);
            break;
        }
    }
    g_mutex_unlock(&j->lock);
    return found;
}
