#include "function-object.h"

#include "zpcid-names.h"

struct _ZpcidFunctionObject {
    ZpcidDBusFunctionSkeleton parent;
    guint32 fid;
    char *path;
    GVariant *cache; /* a{sv} of every property, as announced */
};

G_DEFINE_TYPE(ZpcidFunctionObject, zpcid_function_object, ZPCID_DBUS_TYPE_FUNCTION_SKELETON)

/* D-Bus property name -> GParamSpec of the generated skeleton. */
static GHashTable *property_specs;

static void
zpcid_function_object_finalize(GObject *object)
{
    ZpcidFunctionObject *self = ZPCID_FUNCTION_OBJECT(object);

    g_clear_pointer(&self->cache, g_variant_unref);
    g_free(self->path);
    G_OBJECT_CLASS(zpcid_function_object_parent_class)->finalize(object);
}

static GVariant *
get_properties(GDBusInterfaceSkeleton *skeleton)
{
    ZpcidFunctionObject *self = ZPCID_FUNCTION_OBJECT(skeleton);

    if (self->cache == NULL) {
        return G_DBUS_INTERFACE_SKELETON_CLASS(zpcid_function_object_parent_class)
            ->get_properties(skeleton);
    }
    return g_variant_ref(self->cache);
}

/* gdbus-codegen names the GObject property of "FunctionHandle" "function-handle": a dash
 * where a capital follows a small letter. */
static char *
hyphen_name(const char *camel)
{
    GString *s = g_string_new(NULL);
    gboolean prev_lower = FALSE;

    for (const char *p = camel; *p != '\0'; p++) {
        if (g_ascii_isupper(*p)) {
            if (prev_lower)
                g_string_append_c(s, '-');
            prev_lower = FALSE;
        } else {
            prev_lower = TRUE;
        }
        g_string_append_c(s, g_ascii_tolower(*p));
    }
    return g_string_free(s, FALSE);
}

static void
zpcid_function_object_class_init(ZpcidFunctionObjectClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GDBusInterfaceInfo *info = zpcid_dbus_function_interface_info();

    object_class->finalize = zpcid_function_object_finalize;
    G_DBUS_INTERFACE_SKELETON_CLASS(klass)->get_properties = get_properties;

    property_specs = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; info->properties[i] != NULL; i++) {
        g_autofree char *name = hyphen_name(info->properties[i]->name);
        GParamSpec *pspec = g_object_class_find_property(object_class, name);

        if (pspec == NULL) {
            g_warning("The generated Function skeleton has no property for “%s”.",
                      info->properties[i]->name);
            continue;
        }
        g_hash_table_insert(property_specs, info->properties[i]->name, pspec);
    }
}

static void
zpcid_function_object_init(ZpcidFunctionObject *self)
{
}

ZpcidFunctionObject *
zpcid_function_object_new(guint32 fid)
{
    ZpcidFunctionObject *self = g_object_new(ZPCID_TYPE_FUNCTION_OBJECT, NULL);

    self->fid = fid;
    self->path = g_strdup_printf(ZPCID_DBUS_FUNCTIONS_PATH "/%08x", fid);
    return self;
}

guint32
zpcid_function_object_get_fid(ZpcidFunctionObject *self)
{
    return self->fid;
}

const char *
zpcid_function_object_get_path(ZpcidFunctionObject *self)
{
    return self->path;
}

void
zpcid_function_object_update(ZpcidFunctionObject *self, GVariant *properties)
{
    g_autoptr(GVariant) props = g_variant_ref_sink(properties);
    GVariantBuilder cache;
    gsize n;

    if (self->cache != NULL && g_variant_equal(self->cache, props))
        return;
    /* Only what the introspection data declares goes on the bus, whatever the core adds. */
    g_variant_builder_init(&cache, G_VARIANT_TYPE_VARDICT);
    g_object_freeze_notify(G_OBJECT(self));
    /* Child by child rather than g_variant_iter_loop(), which would serialize @props first
     * only to take it apart again: half of what an update cost. */
    n = g_variant_n_children(props);
    for (gsize i = 0; i < n; i++) {
        g_autoptr(GVariant) entry = g_variant_get_child_value(props, i);
        g_autoptr(GVariant) name = g_variant_get_child_value(entry, 0);
        g_autoptr(GVariant) boxed = g_variant_get_child_value(entry, 1);
        g_autoptr(GVariant) value = g_variant_get_variant(boxed);
        const char *key = g_variant_get_string(name, NULL);
        GParamSpec *pspec = g_hash_table_lookup(property_specs, key);
        GValue gvalue = G_VALUE_INIT;

        if (pspec == NULL)
            continue;
        g_variant_builder_add_value(&cache, entry);
        /* The skeleton compares with the current value and queues only real changes. It keeps
         * containers ("ax", "a(ss)") as GVariants, and a child of @props shares its whole
         * buffer: a copy of its own keeps @props from staying alive next to the cache. */
        if (!g_variant_type_is_basic(g_variant_get_type(value))) {
            gsize size = g_variant_get_size(value);
            gpointer data = g_memdup2(g_variant_get_data(value), size);
            GVariant *copy = g_variant_new_from_data(g_variant_get_type(value), data, size, TRUE,
                                                     g_free, data);
            g_dbus_gvariant_to_gvalue(g_variant_ref_sink(copy), &gvalue);
            g_variant_unref(copy);
        } else {
            g_dbus_gvariant_to_gvalue(value, &gvalue);
        }
        g_object_set_property(G_OBJECT(self), pspec->name, &gvalue);
        g_value_unset(&gvalue);
    }
    g_object_thaw_notify(G_OBJECT(self));
    g_clear_pointer(&self->cache, g_variant_unref);
    self->cache = g_variant_ref_sink(g_variant_builder_end(&cache));
    /* In serialized form the cache is one block instead of a tree of ~100 small GVariants:
     * half the daemon's memory at 4096 functions. */
    (void)g_variant_get_data(self->cache);
}
