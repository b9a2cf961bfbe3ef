#include "function-tree.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "zpcid-dbus-generated.h"
#include "zpcid-names.h"

#define OBJECT_MANAGER_IFACE "org.freedesktop.DBus.ObjectManager"
#define PROPERTIES_IFACE     "org.freedesktop.DBus.Properties"
/* "%08x" of a FID. */
#define NODE_LEN 8

static const char object_manager_xml[] =
    "<node><interface name='" OBJECT_MANAGER_IFACE "'>"
    "<method name='GetManagedObjects'>"
    "<arg type='a{oa{sa{sv}}}' name='object_paths_interfaces_and_properties' direction='out'/>"
    "</method>"
    "<signal name='InterfacesAdded'><arg type='o' name='object_path'/>"
    "<arg type='a{sa{sv}}' name='interfaces_and_properties'/></signal>"
    "<signal name='InterfacesRemoved'><arg type='o' name='object_path'/>"
    "<arg type='as' name='interfaces'/></signal>"
    "</interface></node>";

struct _ZpcidFunctionTree {
    ZpcidFunctionTreeMethodFunc method_func;
    gpointer user_data;
    /* GUINT_TO_POINTER(fid) -> the a{sv} last published, in serialized form: one block of
     * ~1 KiB instead of a tree of ~130 small GVariants, which Get, GetAll and
     * GetManagedObjects hand out without building it, and new publications are compared with. */
    GHashTable *entries;
    GDBusConnection *connection;
    guint object_manager_id;
    guint subtree_id;
    gboolean quiet;
    GDBusNodeInfo *object_manager_info;
    GVariant *function_iface_name; /* "org.zpcid1.Function", shared by every GMO entry */
};

char *
zpcid_function_tree_path(guint32 fid)
{
    return g_strdup_printf(ZPCID_DBUS_FUNCTIONS_PATH "/%08x", fid);
}

/* The FID of a node name, only in the one spelling the tree hands out. */
static gboolean
parse_node(const char *node, guint32 *fid)
{
    if (node == NULL || strlen(node) != NODE_LEN)
        return FALSE;
    for (const char *p = node; *p != '\0'; p++) {
        if (!g_ascii_isdigit(*p) && !(*p >= 'a' && *p <= 'f'))
            return FALSE;
    }
    *fid = (guint32)g_ascii_strtoull(node, NULL, 16);
    return TRUE;
}

static gboolean
parse_path(const char *object_path, guint32 *fid)
{
    const char *slash = strrchr(object_path, '/');
    return slash != NULL && parse_node(slash + 1, fid);
}

/* The properties published for @fid, NULL if it is not on the bus. */
static GVariant *
lookup(ZpcidFunctionTree *self, guint32 fid)
{
    return g_hash_table_lookup(self->entries, GUINT_TO_POINTER(fid));
}

/* ---- org.zpcid1.Function ---- */

static void
function_method_call(GDBusConnection *connection, const char *sender, const char *object_path,
                     const char *interface_name, const char *method_name, GVariant *parameters,
                     GDBusMethodInvocation *invocation, gpointer user_data)
{
    ZpcidFunctionTree *self = user_data;
    guint32 fid = 0;

    /* Introspection found the node when the call arrived; it may be gone by now, which the
     * handler answers. */
    if (!parse_path(object_path, &fid)) {
        g_dbus_method_invocation_return_error(invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT,
                                              _("There is no object at “%s”."), object_path);
        return;
    }
    self->method_func(fid, method_name, parameters, invocation, self->user_data);
}

static GVariant *
function_get_property(GDBusConnection *connection, const char *sender, const char *object_path,
                      const char *interface_name, const char *property_name, GError **error,
                      gpointer user_data)
{
    ZpcidFunctionTree *self = user_data;
    guint32 fid = 0;
    GVariant *properties = parse_path(object_path, &fid) ? lookup(self, fid) : NULL;
    GVariant *value;

    if (properties == NULL) {
        g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT,
                    _("The function “0x%08x” is gone."), fid);
        return NULL;
    }
    value = g_variant_lookup_value(properties, property_name, NULL);
    if (value == NULL)
        g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                    _("The property “%s” has no value."), property_name);
    return value;
}

static const GDBusInterfaceVTable function_vtable = {
    .method_call = function_method_call,
    .get_property = function_get_property,
};

/* ---- the subtree ---- */

static char **
subtree_enumerate(GDBusConnection *connection, const char *sender, const char *object_path,
                  gpointer user_data)
{
    ZpcidFunctionTree *self = user_data;
    GPtrArray *nodes = g_ptr_array_new_full(g_hash_table_size(self->entries) + 1, NULL);
    GHashTableIter iter;
    gpointer key;

    g_hash_table_iter_init(&iter, self->entries);
    while (g_hash_table_iter_next(&iter, &key, NULL))
        g_ptr_array_add(nodes, g_strdup_printf("%08x", GPOINTER_TO_UINT(key)));
    g_ptr_array_add(nodes, NULL);
    return (char **)g_ptr_array_free(nodes, FALSE);
}

static GDBusInterfaceInfo **
subtree_introspect(GDBusConnection *connection, const char *sender, const char *object_path,
                   const char *node, gpointer user_data)
{
    ZpcidFunctionTree *self = user_data;
    GDBusInterfaceInfo **infos;
    guint32 fid;

    /* The subtree's root holds no interface, only the function nodes. */
    if (node == NULL)
        return g_new0(GDBusInterfaceInfo *, 1);
    if (!parse_node(node, &fid) || lookup(self, fid) == NULL)
        return NULL;
    infos = g_new0(GDBusInterfaceInfo *, 2);
    infos[0] = g_dbus_interface_info_ref(zpcid_dbus_function_interface_info());
    return infos;
}

static const GDBusInterfaceVTable *
subtree_dispatch(GDBusConnection *connection, const char *sender, const char *object_path,
                 const char *interface_name, const char *node, gpointer *out_user_data,
                 gpointer user_data)
{
    if (g_strcmp0(interface_name, ZPCID_DBUS_IFACE_FUNCTION) != 0)
        return NULL;
    *out_user_data = user_data;
    return &function_vtable;
}

static const GDBusSubtreeVTable subtree_vtable = {
    .enumerate = subtree_enumerate,
    .introspect = subtree_introspect,
    .dispatch = subtree_dispatch,
};

/* ---- org.freedesktop.DBus.ObjectManager ---- */

/* a{sa{sv}} of one function. */
static GVariant *
interfaces_of(ZpcidFunctionTree *self, GVariant *properties)
{
    /* Neither is floating: the dict entry takes a reference of its own to each. */
    GVariant *entry = g_variant_new_dict_entry(self->function_iface_name, properties);
    return g_variant_new_array(NULL, &entry, 1);
}

static GVariant *
managed_objects(ZpcidFunctionTree *self)
{
    guint n = g_hash_table_size(self->entries);
    g_autofree GVariant **objects = g_new(GVariant *, MAX(n, 1));
    GHashTableIter iter;
    gpointer key, value;
    guint i = 0;

    g_hash_table_iter_init(&iter, self->entries);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        g_autofree char *path = zpcid_function_tree_path(GPOINTER_TO_UINT(key));
        objects[i++] =
            g_variant_new_dict_entry(g_variant_new_object_path(path), interfaces_of(self, value));
    }
    return g_variant_new("(@a{oa{sa{sv}}})",
                         g_variant_new_array(G_VARIANT_TYPE("{oa{sa{sv}}}"), objects, n));
}

static void
object_manager_method_call(GDBusConnection *connection, const char *sender, const char *object_path,
                           const char *interface_name, const char *method_name,
                           GVariant *parameters, GDBusMethodInvocation *invocation,
                           gpointer user_data)
{
    /* The only method; GDBus has checked name and signature against the introspection. */
    g_dbus_method_invocation_return_value(invocation, managed_objects(user_data));
}

static const GDBusInterfaceVTable object_manager_vtable = {
    .method_call = object_manager_method_call,
};

/* ---- announcements ---- */

static gboolean
announcing(ZpcidFunctionTree *self)
{
    return self->connection != NULL && !self->quiet;
}

static void
emit(ZpcidFunctionTree *self, const char *path, const char *iface, const char *signal,
     GVariant *params)
{
    g_autoptr(GError) error = NULL;

    if (!g_dbus_connection_emit_signal(self->connection, NULL, path, iface, signal, params, &error))
        g_debug("%s.%s on %s was not sent: %s", iface, signal, path, error->message);
}

/* PropertiesChanged with what differs between @old and @new (a{sv} built in the same order
 * by zpcid_function_to_variant). */
static void
announce_changes(ZpcidFunctionTree *self, guint32 fid, GVariant *old, GVariant *new)
{
    g_autofree char *path = NULL;
    GVariantBuilder changed;
    gsize n = g_variant_n_children(new);
    gboolean any = FALSE;

    g_variant_builder_init(&changed, G_VARIANT_TYPE_VARDICT);
    for (gsize i = 0; i < n; i++) {
        g_autoptr(GVariant) entry = g_variant_get_child_value(new, i);
        g_autoptr(GVariant) key = g_variant_get_child_value(entry, 0);
        g_autoptr(GVariant) boxed = g_variant_get_child_value(entry, 1);
        g_autoptr(GVariant) value = g_variant_get_variant(boxed);
        g_autoptr(GVariant) before =
            g_variant_lookup_value(old, g_variant_get_string(key, NULL), NULL);

        if (before == NULL || !g_variant_equal(before, value)) {
            g_variant_builder_add_value(&changed, entry);
            any = TRUE;
        }
    }
    if (!any) {
        g_variant_builder_clear(&changed);
        return;
    }
    path = zpcid_function_tree_path(fid);
    emit(self, path, PROPERTIES_IFACE, "PropertiesChanged",
         g_variant_new("(sa{sv}as)", ZPCID_DBUS_IFACE_FUNCTION, &changed, NULL));
}

void
zpcid_function_tree_publish(ZpcidFunctionTree *self, ZpcidFunction *function,
                            const ZpcidFunctionExtra *extra)
{
    guint32 fid = (guint32)function->fid;
    GVariant *old = lookup(self, fid);
    GVariant *properties = g_variant_ref_sink(zpcid_function_to_variant(function, extra));

    (void)g_variant_get_data(properties);
    /* Serialized both: the comparison is one memcmp. */
    if (old != NULL && g_variant_equal(old, properties)) {
        g_variant_unref(properties);
        return;
    }
    if (announcing(self)) {
        if (old == NULL) {
            g_autofree char *path = zpcid_function_tree_path(fid);
            emit(self, ZPCID_DBUS_PATH, OBJECT_MANAGER_IFACE, "InterfacesAdded",
                 g_variant_new("(o@a{sa{sv}})", path, interfaces_of(self, properties)));
        } else {
            announce_changes(self, fid, old, properties);
        }
    }
    /* Replaces (and unrefs) @old only now: the comparison above read it. */
    g_hash_table_replace(self->entries, GUINT_TO_POINTER(fid), properties);
}

void
zpcid_function_tree_withdraw(ZpcidFunctionTree *self, guint32 fid)
{
    if (!g_hash_table_remove(self->entries, GUINT_TO_POINTER(fid)))
        return;
    if (announcing(self)) {
        g_autofree char *path = zpcid_function_tree_path(fid);
        const char *ifaces[] = {ZPCID_DBUS_IFACE_FUNCTION, NULL};
        emit(self, ZPCID_DBUS_PATH, OBJECT_MANAGER_IFACE, "InterfacesRemoved",
             g_variant_new("(o^as)", path, ifaces));
    }
}

guint
zpcid_function_tree_get_count(ZpcidFunctionTree *self)
{
    return g_hash_table_size(self->entries);
}

void
zpcid_function_tree_set_quiet(ZpcidFunctionTree *self, gboolean quiet)
{
    self->quiet = quiet;
}

/* ---- life cycle ---- */

ZpcidFunctionTree *
zpcid_function_tree_new(ZpcidFunctionTreeMethodFunc method_func, gpointer user_data)
{
    ZpcidFunctionTree *self = g_new0(ZpcidFunctionTree, 1);

    self->method_func = method_func;
    self->user_data = user_data;
    self->entries =
        g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)g_variant_unref);
    /* Static XML: it parses. */
    self->object_manager_info = g_dbus_node_info_new_for_xml(object_manager_xml, NULL);
    self->function_iface_name = g_variant_ref_sink(g_variant_new_string(ZPCID_DBUS_IFACE_FUNCTION));
    return self;
}

gboolean
zpcid_function_tree_register(ZpcidFunctionTree *self, GDBusConnection *connection, GError **error)
{
    g_return_val_if_fail(self->connection == NULL, FALSE);

    self->object_manager_id = g_dbus_connection_register_object(
        connection, ZPCID_DBUS_PATH, self->object_manager_info->interfaces[0],
        &object_manager_vtable, self, NULL, error);
    if (self->object_manager_id == 0)
        return FALSE;
    /* Unenumerated nodes are dispatched too: GDBus would otherwise list all functions for
     * every call to check that one exists; introspect() refuses unknown FIDs instead. */
    self->subtree_id = g_dbus_connection_register_subtree(
        connection, ZPCID_DBUS_FUNCTIONS_PATH, &subtree_vtable,
        G_DBUS_SUBTREE_FLAGS_DISPATCH_TO_UNENUMERATED_NODES, self, NULL, error);
    if (self->subtree_id == 0) {
        g_dbus_connection_unregister_object(connection, self->object_manager_id);
        self->object_manager_id = 0;
        return FALSE;
    }
    self->connection = g_object_ref(connection);
    return TRUE;
}

void
zpcid_function_tree_unregister(ZpcidFunctionTree *self)
{
    if (self->connection == NULL)
        return;
    g_dbus_connection_unregister_subtree(self->connection, self->subtree_id);
    g_dbus_connection_unregister_object(self->connection, self->object_manager_id);
    self->subtree_id = 0;
    self->object_manager_id = 0;
    g_clear_object(&self->connection);
}

void
zpcid_function_tree_free(ZpcidFunctionTree *self)
{
    if (self == NULL)
        return;
    zpcid_function_tree_unregister(self);
    g_hash_table_unref(self->entries);
    g_variant_unref(self->function_iface_name);
    g_dbus_node_info_unref(self->object_manager_info);
    g_free(self);
}
