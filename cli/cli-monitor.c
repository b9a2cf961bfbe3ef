#include "cli-monitor.h"

#include <glib-unix.h>
#include <glib/gi18n-lib.h>
#include <stdio.h>

#include "cli-output.h"
#include "zpcid-names.h"

typedef struct {
    CliContext *ctx;
    GMainLoop *loop;
} Monitor;

static guint32
path_fid(const char *path)
{
    const char *base = strrchr(path, '/');
    return base != NULL ? (guint32)g_ascii_strtoull(base + 1, NULL, 16) : 0;
}

static gboolean
is_function_path(const char *path)
{
    return g_str_has_prefix(path, ZPCID_DBUS_FUNCTIONS_PATH "/");
}

/* One JSON object per line, so that a reader can act on every event as it comes. */
static void
emit_json(const char *event, const char *path, GVariant *properties, const char *const *removed)
{
    GVariantBuilder b;

    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "event", g_variant_new_string(event));
    if (path != NULL) {
        g_variant_builder_add(&b, "{sv}", "path", g_variant_new_object_path(path));
        if (is_function_path(path))
            g_variant_builder_add(&b, "{sv}", "fid", g_variant_new_uint32(path_fid(path)));
    }
    if (properties != NULL)
        g_variant_builder_add(&b, "{sv}", "properties", properties);
    if (removed != NULL)
        g_variant_builder_add(&b, "{sv}", "interfaces", g_variant_new_strv(removed, -1));
    {
        g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_builder_end(&b));
        g_autofree char *text = cli_variant_to_json_compact(v);
        printf("%s\n", text);
    }
    fflush(stdout);
}

/* "Driver=“vfio-pci” State=“vfio”" */
static char *
describe_properties(GVariant *properties)
{
    GString *s = g_string_new(NULL);
    GVariantIter iter;
    const char *key;
    GVariant *value;

    g_variant_iter_init(&iter, properties);
    while (g_variant_iter_loop(&iter, "{&sv}", &key, &value)) {
        g_autofree char *text = cli_format_value(value);
        g_string_append_printf(s, "%s%s=%s", s->len > 0 ? " " : "", key, text);
    }
    return g_string_free(s, FALSE);
}

static void
on_interfaces_added(GDBusConnection *bus, const char *sender, const char *object_path,
                    const char *interface, const char *signal, GVariant *parameters,
                    gpointer user_data)
{
    Monitor *m = user_data;
    const char *path;
    g_autoptr(GVariant) interfaces = NULL;
    g_autoptr(GVariant) props = NULL;

    g_variant_get(parameters, "(&o@a{sa{sv}})", &path, &interfaces);
    props = g_variant_lookup_value(interfaces, ZPCID_DBUS_IFACE_FUNCTION, G_VARIANT_TYPE_VARDICT);
    if (props == NULL)
        return;
    if (m->ctx->json) {
        emit_json("added", path, cli_source_order_function(props), NULL);
        return;
    }
    {
        const char *address = "", *state = "", *driver = "";
        g_variant_lookup(props, "Address", "&s", &address);
        g_variant_lookup(props, "State", "&s", &state);
        g_variant_lookup(props, "Driver", "&s", &driver);
        printf("added    0x%08x  %s  %s  %s\n", path_fid(path), *address != '\0' ? address : "-",
               state, *driver != '\0' ? driver : "-");
    }
    fflush(stdout);
}

static void
on_interfaces_removed(GDBusConnection *bus, const char *sender, const char *object_path,
                      const char *interface, const char *signal, GVariant *parameters,
                      gpointer user_data)
{
    Monitor *m = user_data;
    const char *path;
    g_autofree const char **interfaces = NULL;

    g_variant_get(parameters, "(&o^a&s)", &path, &interfaces);
    if (!g_strv_contains(interfaces, ZPCID_DBUS_IFACE_FUNCTION))
        return;
    if (m->ctx->json) {
        emit_json("removed", path, NULL, interfaces);
        return;
    }
    printf("removed  0x%08x\n", path_fid(path));
    fflush(stdout);
}

static void
on_properties_changed(GDBusConnection *bus, const char *sender, const char *object_path,
                      const char *interface, const char *signal, GVariant *parameters,
                      gpointer user_data)
{
    Monitor *m = user_data;
    const char *iface;
    g_autoptr(GVariant) changed = NULL;
    g_autofree char *text = NULL;

    g_variant_get(parameters, "(&s@a{sv}as)", &iface, &changed, NULL);
    if (!g_str_equal(iface, ZPCID_DBUS_IFACE_FUNCTION) &&
        !g_str_equal(iface, ZPCID_DBUS_IFACE_MANAGER))
        return;
    if (m->ctx->json) {
        emit_json("changed", object_path, g_variant_ref(changed), NULL);
        return;
    }
    text = describe_properties(changed);
    if (is_function_path(object_path))
        printf("changed  0x%08x  %s\n", path_fid(object_path), text);
    else
        printf("changed  manager     %s\n", text);
    fflush(stdout);
}

static void
on_readiness_changed(GDBusConnection *bus, const char *sender, const char *object_path,
                     const char *interface, const char *signal, GVariant *parameters,
                     gpointer user_data)
{
    Monitor *m = user_data;
    gboolean passthrough, interpretation;

    g_variant_get(parameters, "(bb)", &passthrough, &interpretation);
    if (m->ctx->json) {
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "passthrough", g_variant_new_boolean(passthrough));
        g_variant_builder_add(&b, "{sv}", "interpretation",
                              g_variant_new_boolean(interpretation));
        emit_json("readiness", NULL, g_variant_builder_end(&b), NULL);
        return;
    }
    printf("readiness  passthrough %s, interpretation %s\n",
           passthrough ? _("ready") : _("not ready"), interpretation ? _("ready") : _("not ready"));
    fflush(stdout);
}

static void
on_name_appeared(GDBusConnection *bus, const char *name, const char *owner, gpointer user_data)
{
    Monitor *m = user_data;

    if (m->ctx->json) {
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "running", g_variant_new_boolean(TRUE));
        emit_json("daemon", NULL, g_variant_builder_end(&b), NULL);
        return;
    }
    printf("daemon   %s\n", _("running"));
    fflush(stdout);
}

static void
on_name_vanished(GDBusConnection *bus, const char *name, gpointer user_data)
{
    Monitor *m = user_data;

    if (m->ctx->json) {
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "running", g_variant_new_boolean(FALSE));
        emit_json("daemon", NULL, g_variant_builder_end(&b), NULL);
        return;
    }
    printf("daemon   %s\n", _("stopped"));
    fflush(stdout);
}

static gboolean
on_quit(gpointer user_data)
{
    Monitor *m = user_data;

    g_main_loop_quit(m->loop);
    return G_SOURCE_CONTINUE;
}

int
cli_monitor_run(CliContext *ctx, GError **error)
{
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_autoptr(GVariant) reply = NULL;
    Monitor m = {ctx, loop};
    guint subs[4];
    guint watch, sigint, sigterm;

    subs[0] = g_dbus_connection_signal_subscribe(
        ctx->bus, ZPCID_DBUS_NAME, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded",
        ZPCID_DBUS_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_interfaces_added, &m, NULL);
    subs[1] = g_dbus_connection_signal_subscribe(
        ctx->bus, ZPCID_DBUS_NAME, "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
        ZPCID_DBUS_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_interfaces_removed, &m, NULL);
    subs[2] = g_dbus_connection_signal_subscribe(
        ctx->bus, ZPCID_DBUS_NAME, "org.freedesktop.DBus.Properties", "PropertiesChanged", NULL,
        NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_properties_changed, &m, NULL);
    subs[3] = g_dbus_connection_signal_subscribe(
        ctx->bus, ZPCID_DBUS_NAME, ZPCID_DBUS_IFACE_MANAGER, "ReadinessChanged", ZPCID_DBUS_PATH,
        NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_readiness_changed, &m, NULL);
    watch = g_bus_watch_name_on_connection(ctx->bus, ZPCID_DBUS_NAME,
                                           G_BUS_NAME_WATCHER_FLAGS_NONE, on_name_appeared,
                                           on_name_vanished, &m, NULL);

    /* A round trip after the match rules: once it returns, the bus has them, so nothing
     * that happens after the message below is missed. */
    reply = g_dbus_connection_call_sync(ctx->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "GetId", NULL, NULL,
                                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
    if (reply == NULL)
        return 2;
    g_printerr("%s\n", _("Monitoring zpcid; stop with Ctrl+C."));

    sigint = g_unix_signal_add(SIGINT, on_quit, &m);
    sigterm = g_unix_signal_add(SIGTERM, on_quit, &m);
    g_main_loop_run(loop);
    g_source_remove(sigint);
    g_source_remove(sigterm);
    g_bus_unwatch_name(watch);
    for (guint i = 0; i < G_N_ELEMENTS(subs); i++)
        g_dbus_connection_signal_unsubscribe(ctx->bus, subs[i]);
    return 0;
}
