#include "auth.h"

#include <glib/gi18n-lib.h>
#include <polkit/polkit.h>

#include "error.h"

struct _ZpcidAuth {
    GObject parent;
    gboolean use_polkit;
    gboolean authority_pending; /* polkit_authority_get_async() has not answered yet */
    PolkitAuthority *authority;
    GPtrArray *waiting; /* GTask: checks that arrived before the authority */
};

G_DEFINE_TYPE(ZpcidAuth, zpcid_auth, G_TYPE_OBJECT)

typedef struct {
    GDBusMethodInvocation *invocation;
    char *action_id;
    GHashTable *details;
    gboolean allow_interaction;
    char *denied_message;
} Check;

static void
check_free(Check *check)
{
    g_clear_object(&check->invocation);
    g_free(check->action_id);
    g_clear_pointer(&check->details, g_hash_table_unref);
    g_free(check->denied_message);
    g_free(check);
}

static void dispatch(ZpcidAuth *self, GTask *task);

static void
zpcid_auth_finalize(GObject *object)
{
    ZpcidAuth *self = ZPCID_AUTH(object);

    g_clear_object(&self->authority);
    g_ptr_array_unref(self->waiting);
    G_OBJECT_CLASS(zpcid_auth_parent_class)->finalize(object);
}

static void
zpcid_auth_class_init(ZpcidAuthClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = zpcid_auth_finalize;
}

static void
zpcid_auth_init(ZpcidAuth *self)
{
    self->waiting = g_ptr_array_new_with_free_func(g_object_unref);
}

static void
on_authority(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(ZpcidAuth) self = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) waiting = NULL;

    self->authority = polkit_authority_get_finish(result, &error);
    if (self->authority == NULL)
        g_info("polkit is not available, so only root may change functions: %s", error->message);
    self->authority_pending = FALSE;
    /* Checks that came in meanwhile are decided now, in their order. */
    waiting = g_steal_pointer(&self->waiting);
    self->waiting = g_ptr_array_new_with_free_func(g_object_unref);
    /* dispatch() hands each task's one reference on to the call it starts; freeing the array
     * must not drop it too (a use-after-free found by valgrind). */
    g_ptr_array_set_free_func(waiting, NULL);
    for (guint i = 0; i < waiting->len; i++)
        dispatch(self, g_ptr_array_index(waiting, i));
}

ZpcidAuth *
zpcid_auth_new(gboolean use_polkit)
{
    ZpcidAuth *self = g_object_new(ZPCID_TYPE_AUTH, NULL);

    self->use_polkit = use_polkit;
    if (use_polkit) {
        self->authority_pending = TRUE;
        polkit_authority_get_async(NULL, on_authority, g_object_ref(self));
    }
    return self;
}

static void
deny(GTask *task)
{
    Check *check = g_task_get_task_data(task);

    g_task_return_new_error(task, ZPCID_ERROR, ZPCID_ERROR_NOT_AUTHORIZED, "%s",
                            check->denied_message);
}

static void
on_unix_user(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result,
                                                              &error);
    guint32 uid;

    if (reply == NULL) {
        /* Not knowing the caller means not allowing it. */
        g_info("The caller's user could not be determined: %s", error->message);
        deny(task);
        return;
    }
    g_variant_get(reply, "(u)", &uid);
    if (uid != 0) {
        deny(task);
        return;
    }
    g_task_return_boolean(task, TRUE);
}

/* The rule without polkit: only root changes the host. */
static void
check_root(GTask *task)
{
    Check *check = g_task_get_task_data(task);
    GDBusConnection *connection = g_dbus_method_invocation_get_connection(check->invocation);

    g_dbus_connection_call(connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "GetConnectionUnixUser",
                           g_variant_new("(s)", g_dbus_method_invocation_get_sender(
                                                    check->invocation)),
                           G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1,
                           g_task_get_cancellable(task), on_unix_user, task);
}

static void
on_polkit(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(PolkitAuthorizationResult) answer = NULL;

    answer = polkit_authority_check_authorization_finish(POLKIT_AUTHORITY(source), result,
                                                         &error);
    if (answer == NULL) {
        if (g_task_return_error_if_cancelled(task))
            return;
        /* polkit went away between the owner check and the call: the same as no polkit. */
        g_info("polkit could not be asked, so only root is allowed: %s", error->message);
        check_root(g_steal_pointer(&task));
        return;
    }
    if (!polkit_authorization_result_get_is_authorized(answer)) {
        deny(task);
        return;
    }
    g_task_return_boolean(task, TRUE);
}

static void
dispatch(ZpcidAuth *self, GTask *task)
{
    Check *check = g_task_get_task_data(task);
    g_autofree char *owner = NULL;
    g_autoptr(PolkitSubject) subject = NULL;
    g_autoptr(PolkitDetails) details = NULL;
    PolkitCheckAuthorizationFlags flags = POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE;
    GHashTableIter iter;
    gpointer key, value;

    if (self->authority != NULL)
        owner = polkit_authority_get_owner(self->authority);
    if (owner == NULL) {
        check_root(task);
        return;
    }
    subject = polkit_system_bus_name_new(g_dbus_method_invocation_get_sender(check->invocation));
    details = polkit_details_new();
    if (check->details != NULL) {
        g_hash_table_iter_init(&iter, check->details);
        while (g_hash_table_iter_next(&iter, &key, &value))
            polkit_details_insert(details, key, value);
    }
    polkit_details_insert(details, "polkit.gettext_domain", GETTEXT_PACKAGE);
    if (check->allow_interaction)
        flags |= POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION;
    polkit_authority_check_authorization(self->authority, subject, check->action_id, details,
                                         flags, g_task_get_cancellable(task), on_polkit, task);
}

void
zpcid_auth_check_async(ZpcidAuth *self, GDBusMethodInvocation *invocation,
                       const char *action_id, GHashTable *details, gboolean allow_interaction,
                       const char *denied_message, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = g_task_new(self, cancellable, callback, user_data);
    Check *check = g_new0(Check, 1);

    g_task_set_source_tag(task, zpcid_auth_check_async);
    check->invocation = g_object_ref(invocation);
    check->action_id = g_strdup(action_id);
    check->details = details != NULL ? g_hash_table_ref(details) : NULL;
    check->allow_interaction = allow_interaction;
    check->denied_message = g_strdup(denied_message);
    g_task_set_task_data(task, check, (GDestroyNotify)check_free);

    if (self->authority_pending) {
        g_ptr_array_add(self->waiting, task);
        return;
    }
    dispatch(self, task);
}

gboolean
zpcid_auth_check_finish(ZpcidAuth *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}
