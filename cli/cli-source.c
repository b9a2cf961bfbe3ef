#include "cli-source.h"

#include <glib/gi18n-lib.h>

#include "error.h"
#include "readiness.h"
#include "variant.h"
#include "zpcid-names.h"

/* Mutating calls may wait for a polkit agent and for the kernel; the daemon bounds them. */
#define CALL_TIMEOUT_MUTATE G_MAXINT

gboolean
cli_source_is_daemon(CliContext *ctx)
{
    return ctx->host_root == NULL;
}

/* Turns the bus's own errors into sentences a person can act on. The D-Bus error name is
 * kept (--json prints it); errors from zpcid itself pass unchanged. */
static void
explain_error(GError **error)
{
    g_autofree char *name = NULL;
    g_autofree char *message = NULL;
    GError *e;

    if (error == NULL || *error == NULL)
        return;
    e = *error;
    name = g_dbus_error_get_remote_error(e);
    if (g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
        g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER) ||
        g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND)) {
        message = g_strdup_printf(_("The zpcid daemon is not running (nothing owns “%s” on the "
                                    "bus); start it with “systemctl start zpcid”, or use "
                                    "--host-root to read a host tree."),
                                  ZPCID_DBUS_NAME);
    } else if (g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED)) {
        g_dbus_error_strip_remote_error(e);
        message = g_strdup_printf(_("The bus refused the call to zpcid: %s"), e->message);
    } else if (g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY) ||
               g_error_matches(e, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
        message = g_strdup(_("The zpcid daemon did not answer in time."));
    } else {
        return;
    }
    g_clear_error(error);
    *error = g_dbus_error_new_for_dbus_error(name != NULL ? name : ZPCID_DBUS_ERROR_FAILED,
                                             message);
}

static GDBusConnection *
connect_bus(CliContext *ctx, GError **error)
{
    g_autoptr(GError) local_error = NULL;
    GDBusConnection *bus;

    if (ctx->bus_address != NULL) {
        bus = g_dbus_connection_new_for_address_sync(
            ctx->bus_address,
            G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
            NULL, NULL, &local_error);
    } else {
        bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &local_error);
    }
    if (bus == NULL) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_READY,
                    _("The D-Bus bus could not be reached, so zpcid cannot be asked: %s"),
                    local_error->message);
        return NULL;
    }
    return bus;
}

gboolean
cli_source_open(CliContext *ctx, GError **error)
{
    if (!cli_source_is_daemon(ctx)) {
        ctx->host = zpcid_host_new_default(ctx->host_root, error);
        if (ctx->host == NULL)
            return FALSE;
        ctx->inventory = zpcid_inventory_new(ctx->host);
        return zpcid_inventory_scan(ctx->inventory, error);
    }
    /* Registers org.zpcid1.Error.* so that replies become ZPCID_ERROR codes. */
    (void)zpcid_error_quark();
    ctx->bus = connect_bus(ctx, error);
    if (ctx->bus == NULL)
        return FALSE;
    ctx->manager = zpcid_dbus_manager_proxy_new_sync(
        ctx->bus, G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES | G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
        ZPCID_DBUS_NAME, ZPCID_DBUS_PATH, NULL, error);
    return ctx->manager != NULL;
}

void
cli_source_close(CliContext *ctx)
{
    g_clear_object(&ctx->manager);
    g_clear_object(&ctx->bus);
    g_clear_object(&ctx->inventory);
    g_clear_pointer(&ctx->host, zpcid_host_unref);
    g_clear_pointer(&ctx->host_root, g_free);
    g_clear_pointer(&ctx->bus_address, g_free);
}

static GVariant *
with_auth(CliContext *ctx, GVariant *options)
{
    GVariantBuilder b;
    GVariantIter iter;
    const char *key;
    GVariant *value;

    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    if (options != NULL) {
        g_autoptr(GVariant) owned = g_variant_ref_sink(options);
        g_variant_iter_init(&iter, owned);
        while (g_variant_iter_loop(&iter, "{&sv}", &key, &value))
            g_variant_builder_add(&b, "{sv}", key, value);
    }
    if (!ctx->allow_interaction)
        g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_NO_USER_INTERACTION,
                              g_variant_new_boolean(TRUE));
    return g_variant_builder_end(&b);
}

static GVariant *
empty_options(CliContext *ctx)
{
    return with_auth(ctx, NULL);
}

/* ---- the order of the Function properties ---- */

static GPtrArray *
property_order(void)
{
    static GPtrArray *order;

    if (order == NULL) {
        g_autoptr(ZpcidFunction) dummy = zpcid_function_new_standby(0);
        g_autoptr(GVariant) props = g_variant_ref_sink(zpcid_function_to_variant(dummy, NULL));
        GVariantIter iter;
        const char *key;

        order = g_ptr_array_new_with_free_func(g_free);
        g_variant_iter_init(&iter, props);
        while (g_variant_iter_next(&iter, "{&sv}", &key, NULL))
            g_ptr_array_add(order, g_strdup(key));
    }
    return order;
}

GVariant *
cli_source_order_function(GVariant *properties)
{
    GPtrArray *order = property_order();
    GVariantBuilder b;
    GVariantIter iter;
    const char *key;
    GVariant *value;

    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    for (guint i = 0; i < order->len; i++) {
        g_autoptr(GVariant) v = g_variant_lookup_value(properties, g_ptr_array_index(order, i),
                                                       NULL);
        if (v != NULL)
            g_variant_builder_add(&b, "{sv}", (const char *)g_ptr_array_index(order, i), v);
    }
    /* Properties of a newer daemon that this zpcidctl does not know come last. */
    g_variant_iter_init(&iter, properties);
    while (g_variant_iter_loop(&iter, "{&sv}", &key, &value)) {
        gboolean known = FALSE;
        for (guint i = 0; i < order->len && !known; i++)
            known = g_str_equal(key, g_ptr_array_index(order, i));
        if (!known)
            g_variant_builder_add(&b, "{sv}", key, value);
    }
    return g_variant_builder_end(&b);
}

/* ---- reading ---- */

GVariant *
cli_source_check(CliContext *ctx, GError **error)
{
    g_autofree char *verdict = NULL;
    g_autoptr(GVariant) results = NULL;

    if (!cli_source_is_daemon(ctx)) {
        g_autoptr(ZpcidReport) report = zpcid_readiness_evaluate(ctx->host, ctx->inventory);
        return g_variant_ref_sink(zpcid_report_to_variant(report));
    }
    if (!zpcid_dbus_manager_call_check_sync(ctx->manager, empty_options(ctx), &verdict, &results,
                                            NULL, error)) {
        explain_error(error);
        return NULL;
    }
    return g_variant_ref_sink(g_variant_new("(s@a(sssss))", verdict, results));
}

static gint
compare_fid(gconstpointer a, gconstpointer b)
{
    GVariant *va = *(GVariant **)a;
    GVariant *vb = *(GVariant **)b;
    guint32 fa = 0, fb = 0;

    g_variant_lookup(va, "Fid", "u", &fa);
    g_variant_lookup(vb, "Fid", "u", &fb);
    return fa < fb ? -1 : fa > fb;
}

/* The Function dicts of GetManagedObjects, sorted by FID. */
static GPtrArray *
managed_functions(CliContext *ctx, GError **error)
{
    g_autoptr(GVariant) reply = NULL;
    g_autoptr(GVariantIter) objects = NULL;
    g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
    const char *path;
    GVariant *interfaces;

    reply = g_dbus_connection_call_sync(ctx->bus, ZPCID_DBUS_NAME, ZPCID_DBUS_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                                        NULL, G_VARIANT_TYPE("(a{oa{sa{sv}}})"),
                                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
    if (reply == NULL) {
        explain_error(error);
        return NULL;
    }
    g_variant_get(reply, "(a{oa{sa{sv}}})", &objects);
    while (g_variant_iter_loop(objects, "{&o@a{sa{sv}}}", &path, &interfaces)) {
        GVariant *props = g_variant_lookup_value(interfaces, ZPCID_DBUS_IFACE_FUNCTION,
                                                 G_VARIANT_TYPE_VARDICT);
        if (props != NULL)
            g_ptr_array_add(list, props);
    }
    g_ptr_array_sort(list, compare_fid);
    return g_steal_pointer(&list);
}

GVariant *
cli_source_list(CliContext *ctx, GError **error)
{
    GVariantBuilder b;

    g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
    if (!cli_source_is_daemon(ctx)) {
        g_autoptr(GPtrArray) list = zpcid_inventory_list(ctx->inventory);
        for (guint i = 0; i < list->len; i++)
            g_variant_builder_add_value(&b, zpcid_function_to_variant(g_ptr_array_index(list, i),
                                                                      NULL));
    } else {
        g_autoptr(GPtrArray) list = managed_functions(ctx, error);
        if (list == NULL) {
            g_variant_builder_clear(&b);
            return NULL;
        }
        for (guint i = 0; i < list->len; i++)
            g_variant_builder_add_value(&b, cli_source_order_function(g_ptr_array_index(list, i)));
    }
    return g_variant_ref_sink(g_variant_builder_end(&b));
}

typedef struct {
    GVariant *reply;
    GError *error;
    gboolean done;
} Reply;

static void
on_get_all(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Reply *r = user_data;

    r->reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &r->error);
    r->done = TRUE;
}

/* The Function properties of every path, in order, as "aa{sv}". The calls are all sent
 * before the first reply is read, so that they do not wait for each other's round trip
 * through the bus and the daemon. */
static GVariant *
get_all_many(CliContext *ctx, const char *const *paths, GError **error)
{
    guint n = g_strv_length((char **)paths);
    g_autofree Reply *replies = g_new0(Reply, n);
    g_autoptr(GMainContext) context = g_main_context_new();
    GVariantBuilder b;
    GError *first = NULL;

    g_main_context_push_thread_default(context);
    for (guint i = 0; i < n; i++)
        g_dbus_connection_call(
            ctx->bus, ZPCID_DBUS_NAME, paths[i], "org.freedesktop.DBus.Properties", "GetAll",
            g_variant_new("(s)", ZPCID_DBUS_IFACE_FUNCTION), G_VARIANT_TYPE("(a{sv})"),
            G_DBUS_CALL_FLAGS_NONE, -1, NULL, on_get_all, &replies[i]);
    for (guint i = 0; i < n; i++) {
        while (!replies[i].done)
            g_main_context_iteration(context, TRUE);
    }
    g_main_context_pop_thread_default(context);

    g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
    for (guint i = 0; i < n; i++) {
        if (replies[i].reply != NULL) {
            g_autoptr(GVariant) reply = replies[i].reply;
            g_autoptr(GVariant) props = NULL;

            g_variant_get(reply, "(@a{sv})", &props);
            g_variant_builder_add_value(&b, cli_source_order_function(props));
        } else if (first == NULL) {
            first = replies[i].error;
        } else {
            g_error_free(replies[i].error);
        }
    }
    if (first != NULL) {
        g_variant_builder_clear(&b);
        g_propagate_error(error, first);
        explain_error(error);
        return NULL;
    }
    return g_variant_ref_sink(g_variant_builder_end(&b));
}

static GVariant *
get_all(CliContext *ctx, const char *path, GError **error)
{
    const char *one[] = {path, NULL};
    g_autoptr(GVariant) list = get_all_many(ctx, one, error);

    return list != NULL ? g_variant_get_child_value(list, 0) : NULL;
}

GVariant *
cli_source_show(CliContext *ctx, const char *spec, GError **error)
{
    g_autofree char *path = NULL;

    if (!cli_source_is_daemon(ctx)) {
        g_autoptr(ZpcidFunction) f = zpcid_inventory_resolve(ctx->inventory, spec, error);
        if (f == NULL)
            return NULL;
        return g_variant_ref_sink(zpcid_function_to_variant(f, NULL));
    }
    if (!zpcid_dbus_manager_call_resolve_function_sync(ctx->manager, spec, empty_options(ctx),
                                                       &path, NULL, error)) {
        explain_error(error);
        return NULL;
    }
    return get_all(ctx, path, error);
}

/* ---- changing ---- */

GVariant *
cli_source_bind(CliContext *ctx, const char *const *specs, GVariant *options, gboolean unbind,
                GError **error)
{
    g_auto(GStrv) paths = NULL;
    gboolean ok;

    g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(ctx->manager), CALL_TIMEOUT_MUTATE);
    if (unbind)
        ok = zpcid_dbus_manager_call_unbind_sync(ctx->manager, specs, with_auth(ctx, options),
                                                 &paths, NULL, error);
    else
        ok = zpcid_dbus_manager_call_bind_sync(ctx->manager, specs, with_auth(ctx, options),
                                               &paths, NULL, error);
    if (!ok) {
        explain_error(error);
        return NULL;
    }
    return get_all_many(ctx, (const char *const *)paths, error);
}

char *
cli_source_domain_xml(CliContext *ctx, const char *const *specs, GVariant *options,
                      GError **error)
{
    char *xml = NULL;

    g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(ctx->manager), CALL_TIMEOUT_MUTATE);
    if (!zpcid_dbus_manager_call_get_domain_xml_sync(ctx->manager, specs, with_auth(ctx, options),
                                                     &xml, NULL, error)) {
        explain_error(error);
        return NULL;
    }
    return xml;
}

gboolean
cli_source_attach(CliContext *ctx, const char *domain, const char *const *specs,
                  GVariant *options, gboolean detach, GError **error)
{
    gboolean ok;

    g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(ctx->manager), CALL_TIMEOUT_MUTATE);
    if (detach)
        ok = zpcid_dbus_manager_call_detach_from_domain_sync(ctx->manager, domain, specs,
                                                             with_auth(ctx, options), NULL, error);
    else
        ok = zpcid_dbus_manager_call_attach_to_domain_sync(ctx->manager, domain, specs,
                                                           with_auth(ctx, options), NULL, error);
    if (!ok)
        explain_error(error);
    return ok;
}
