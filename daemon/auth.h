/* Who may call the mutating methods: polkit when it can judge our callers, otherwise root
 * only. Every check is asynchronous; nothing here blocks the main loop. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ZPCID_TYPE_AUTH (zpcid_auth_get_type())
G_DECLARE_FINAL_TYPE(ZpcidAuth, zpcid_auth, ZPCID, AUTH, GObject)

/* @use_polkit: FALSE when polkit cannot know our callers (a private bus that is not the one
 * polkit watches); then only uid 0 is allowed. With TRUE, polkit decides while an authority
 * owns its name on the system bus, and uid 0 alone is allowed while none does. */
ZpcidAuth *zpcid_auth_new(gboolean use_polkit);

/* Asks whether the sender of @invocation may do @action_id. @details (string to string, may
 * be NULL) go to polkit for admin rules. On refusal the error is ZPCID_ERROR_NOT_AUTHORIZED
 * with @denied_message, a whole sentence naming what was refused. */
void zpcid_auth_check_async(ZpcidAuth *self, GDBusMethodInvocation *invocation,
                            const char *action_id, GHashTable *details, gboolean allow_interaction,
                            const char *denied_message, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data);
gboolean zpcid_auth_check_finish(ZpcidAuth *self, GAsyncResult *result, GError **error);

G_END_DECLS
