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

/* What was last published of one function: the inventory's snapshot (immutable, shared with
 * the inventory) and copies of the extras. The a{sv} is written from it when asked
 * (ZpcidVariantWriter), which keeps ~1 KiB per function out of the daemon's memory. */
typedef struct {
    ZpcidFunction *function;
    char *host_driver;
    char **domains;
    char *owner;
    gboolean persistent;
} Entry;

struct _ZpcidFunctionTree {
    ZpcidFunctionTreeMethodFunc method_func;
    gpointer user_data;
    GHashTable *entries; /* GUINT_TO_POINTER(fid) -> Entry */
    GDBusConnection *connection;
    guint object_manager_id;
    guint subtree_id;
    gboolean quiet;
    GDBusNodeInfo *object_manager_info;
    /* The a{sv} of the function read last: GDBus answers GetAll with one get_property()
     * per property, which would otherwise write it ~30 times. */
    guint32 cached_fid;
    GVariant *cached_properties;
};

static Entry *
entry_new(ZpcidFunction *function, const ZpcidFunctionExtra *extra)
{
    static const ZpcidFunctionExtra none = {0};
    Entry *e = g_new0(Entry, 1);

    if (extra == NULL)
        extra = &none;

    e->function = zpcid_function_ref(function);
    /* Empty values are kept as NULL: most functions have none, and the a{sv} is the same. */
    if (extra->host_driver != NULL && extra->host_driver[0] != '\0')
        e->host_driver = g_strdup(extra->host_driver);
    if (extra->domains != NULL && extra->domains[0] != NULL)
        e->domains = g_strdupv((char **)extra->domains);
    if (extra->owner != NULL && extra->owner[0] != '\0')
        e->owner = g_strdup(extra->owner);
    e->persistent = extra->persistent;
    return e;
}

static void
entry_free(Entry *e)
{
    zpcid_function_unref(e->function);
    g_free(e->host_driver);
    g_strfreev(e->domains);
    g_free(e->owner);
    g_free(e);
}

static void
entry_write(Entry *e, ZpcidVariantWriter *writer)
{
    ZpcidFunctionExtra extra = {e->host_driver, (const char *const *)e->domains, e->persistent,
                                e->owner};
    zpcid_function_write_properties(writer, e->function, &extra);
}

/* The a{sv} of @e (not floating). */
static GVariant *
entry_properties(Entry *e)
{
    ZpcidVariantWriter *writer = zpcid_variant_writer_new(1024);

    entry_write(e, writer);
    return g_variant_ref_sink(zpcid_variant_writer_end(writer, G_VARIANT_TYPE_VARDICT));
}

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

/* What is published for @fid, NULL if it is not on the bus. */
static Entry *
lookup(ZpcidFunctionTree *self, guint32 fid)
{
    return g_hash_table_lookup(self->entries, GUINT_TO_POINTER(fid));
}

static void
forget_cached(ZpcidFunctionTree *self, guint32 fid)
{
    if (self->cached_properties != NULL && self->cached_fid == fid)
        g_clear_pointer(&self->cached_properties, g_variant_unref);
}

/* The a{sv} published for @fid (owned by the tree), NULL if it is not on the bus. */
static GVariant *
lookup_properties(ZpcidFunctionTree *self, guint32 fid)
{
    Entry *e = lookup(self, fid);

    if (e == NULL)
        return NULL;
    if (self->cached_properties == NULL || self->cached_fid != fid) {
        g_clear_pointer(&self->cached_properties, g_variant_unref);
        self->cached_properties = entry_properties(e);
        self->cached_fid = fid;
    }
    return self->cached_properties;
}

/* ---- org.zpcid1.Function ---- */

/* Get and GetAll from the function's a{sv}, written once for both: GDBus's own GetAll would
 * ask for each of the ~33 properties on its own. */
static void
answer_properties(ZpcidFunctionTree *self, guint32 fid, const char *method_name,
                  GVariant *parameters, GDBusMethodInvocation *invocation)
{
    GVariant *properties = lookup_properties(self, fid);
    const char *name = NULL;
    g_autoptr(GVariant) value = NULL;

    if (properties == NULL) {
        g_dbus_method_invocation_return_error(invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT,
                                              _("The function “0x%08x” is gone."), fid);
        return;
    }
    if (g_str_equal(method_name, "GetAll")) {
        g_dbus_method_invocation_return_value(invocation, g_variant_new("(@a{sv})", properties));
        return;
    }
    g_variant_get_child(parameters, 1, "&s", &name);
    value = g_variant_lookup_value(properties, name, NULL);
    if (value == NULL) {
        g_dbus_method_invocation_return_error(invocation, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                                              _("The property “%s” has no value."), name);
        return;
    }
    g_dbus_method_invocation_return_value(invocation,
                                          g_variant_new("(@v)", g_variant_new_variant(value)));
}

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
    if (g_str_equal(interface_name, PROPERTIES_IFACE))
        answer_properties(self, fid, method_name, parameters, invocation);
    else
        self->method_func(fid, method_name, parameters, invocation, self->user_data);
}

/* Without get_property in the vtable, GDBus checks Get and GetAll against the introspection
 * (and refuses Set: every property is read-only) and passes them to method_call. */
static const GDBusInterfaceVTable function_vtable = {
    .method_call = function_method_call,
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

/* a{sa{sv}} of one function, into @writer. */
static void
write_interfaces(Entry *e, ZpcidVariantWriter *writer)
{
    zpcid_variant_writer_open_array(writer, 8);
    zpcid_variant_writer_open_tuple(writer, 8);
    zpcid_variant_writer_put_string(writer, ZPCID_DBUS_IFACE_FUNCTION);
    zpcid_variant_writer_mark(writer);
    entry_write(e, writer);
    zpcid_variant_writer_close(writer);
    zpcid_variant_writer_mark(writer);
    zpcid_variant_writer_close(writer);
}

/* The reply (a{oa{sa{sv}}}), written in one pass: ~1 KiB per function. */
static GVariant *
managed_objects(ZpcidFunctionTree *self)
{
    ZpcidVariantWriter *writer =
        zpcid_variant_writer_new((gsize)g_hash_table_size(self->entries) * 1024);
    GHashTableIter iter;
    gpointer key, value;

    /* (a{...}): a tuple whose only member is last has no framing, so it is the array. */
    zpcid_variant_writer_open_array(writer, 8);
    g_hash_table_iter_init(&iter, self->entries);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        char path[sizeof(ZPCID_DBUS_FUNCTIONS_PATH) + 1 + NODE_LEN];

        g_snprintf(path, sizeof(path), ZPCID_DBUS_FUNCTIONS_PATH "/%08x", GPOINTER_TO_UINT(key));
        zpcid_variant_writer_open_tuple(writer, 8);
        zpcid_variant_writer_put_string(writer, path);
        zpcid_variant_writer_mark(writer);
        write_interfaces(value, writer);
        zpcid_variant_writer_close(writer);
        zpcid_variant_writer_mark(writer);
    }
    zpcid_variant_writer_close(writer);
    return zpcid_variant_writer_end(writer, G_VARIANT_TYPE("(a{oa{sa{sv}}})"));
}

/* a{sa{sv}} of one function, for InterfacesAdded. */
static GVariant *
interfaces_of(Entry *e)
{
    ZpcidVariantWriter *writer = zpcid_variant_writer_new(1024);

    write_interfaces(e, writer);
    return zpcid_variant_writer_end(writer, G_VARIANT_TYPE("a{sa{sv}}"));
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
    Entry *old = lookup(self, fid);
    Entry *new = entry_new(function, extra);

    if (old != NULL) {
        g_autoptr(GVariant) before = entry_properties(old);
        g_autoptr(GVariant) after = entry_properties(new);

        /* Both written in normal form: the comparison is one memcmp. */
        if (g_variant_equal(before, after)) {
            entry_free(new);
            return;
        }
        if (announcing(self))
            announce_changes(self, fid, before, after);
    } else if (announcing(self)) {
        g_autofree char *path = zpcid_function_tree_path(fid);
        emit(self, ZPCID_DBUS_PATH, OBJECT_MANAGER_IFACE, "InterfacesAdded",
             g_variant_new("(o@a{sa{sv}})", path, interfaces_of(new)));
    }
    forget_cached(self, fid);
    g_hash_table_replace(self->entries, GUINT_TO_POINTER(fid), new);
}

void
zpcid_function_tree_withdraw(ZpcidFunctionTree *self, guint32 fid)
{
    if (!g_hash_table_remove(self->entries, GUINT_TO_POINTER(fid)))
        return;
    forget_cached(self, fid);
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
        g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)entry_free);
    /* Static XML: it parses. */
    self->object_manager_info = g_dbus_node_info_new_for_xml(object_manager_xml, NULL);
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
    g_clear_pointer(&self->cached_properties, g_variant_unref);
    g_dbus_node_info_unref(self->object_manager_info);
    g_free(self);
}
