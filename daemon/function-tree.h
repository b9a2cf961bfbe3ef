/* The functions on the bus without an object per function: one subtree registration below
 * /org/zpcid1/functions answers for every node, and an org.freedesktop.DBus.ObjectManager at
 * /org/zpcid1 lists them. What the tree keeps per function is what it last published: the
 * inventory's snapshot and the extras. Get, GetAll and GetManagedObjects write the a{sv} from
 * it when asked (src/variant-writer.h), and a new publication is compared with it to announce
 * exactly what changed.
 *
 * Everything runs in the main context: calls wait while the main thread is busy, so a caller
 * never sees a half-read host. */
#pragma once

#include <gio/gio.h>

#include "function.h"
#include "variant.h"

G_BEGIN_DECLS

typedef struct _ZpcidFunctionTree ZpcidFunctionTree;

/* A method call of org.zpcid1.Function on the function @fid; the handler owns the reply.
 * The function may have left the inventory since the call arrived. */
typedef void (*ZpcidFunctionTreeMethodFunc)(guint32 fid, const char *method, GVariant *parameters,
                                            GDBusMethodInvocation *invocation, gpointer user_data);

ZpcidFunctionTree *zpcid_function_tree_new(ZpcidFunctionTreeMethodFunc method_func,
                                           gpointer user_data);
void zpcid_function_tree_free(ZpcidFunctionTree *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidFunctionTree, zpcid_function_tree_free)

/* Serves the functions on @connection from now on. */
gboolean zpcid_function_tree_register(ZpcidFunctionTree *self, GDBusConnection *connection,
                                      GError **error);
void zpcid_function_tree_unregister(ZpcidFunctionTree *self);

/* While quiet, publications are served but not announced: for the first scan, which no
 * caller can have seen the other side of (every call waits for it to end). */
void zpcid_function_tree_set_quiet(ZpcidFunctionTree *self, gboolean quiet);

/* Makes @function with @extra what the bus shows: InterfacesAdded for a new FID,
 * PropertiesChanged with the properties that differ for a known one, nothing if none does. */
void zpcid_function_tree_publish(ZpcidFunctionTree *self, ZpcidFunction *function,
                                 const ZpcidFunctionExtra *extra);
/* Takes the function @fid off the bus (InterfacesRemoved). */
void zpcid_function_tree_withdraw(ZpcidFunctionTree *self, guint32 fid);
guint zpcid_function_tree_get_count(ZpcidFunctionTree *self);

/* "/org/zpcid1/functions/00001822". */
char *zpcid_function_tree_path(guint32 fid);

G_END_DECLS
