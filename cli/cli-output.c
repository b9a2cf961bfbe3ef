#include "cli-output.h"

#include <gio/gio.h>
#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "readiness.h"

static char *
snake_case(const char *camel)
{
    GString *s = g_string_new(NULL);

    for (const char *p = camel; *p != '\0'; p++) {
        if (g_ascii_isupper(*p) && p != camel)
            g_string_append_c(s, '_');
        g_string_append_c(s, g_ascii_tolower(*p));
    }
    return g_string_free(s, FALSE);
}

static JsonNode *
variant_to_node(GVariant *v)
{
    JsonNode *node = json_node_alloc();

    if (g_variant_is_of_type(v, G_VARIANT_TYPE_VARIANT)) {
        g_autoptr(GVariant) inner = g_variant_get_variant(v);
        json_node_unref(node);
        return variant_to_node(inner);
    }
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_VARDICT)) {
        JsonObject *obj = json_object_new();
        GVariantIter iter;
        const char *key;
        GVariant *value;

        g_variant_iter_init(&iter, v);
        while (g_variant_iter_loop(&iter, "{&sv}", &key, &value)) {
            g_autofree char *name = snake_case(key);
            json_object_set_member(obj, name, variant_to_node(value));
        }
        return json_node_init_object(node, obj);
    }
    switch (g_variant_classify(v)) {
    case G_VARIANT_CLASS_BOOLEAN:
        return json_node_init_boolean(node, g_variant_get_boolean(v));
    case G_VARIANT_CLASS_INT64: {
        gint64 x = g_variant_get_int64(v);
        return x < 0 ? json_node_init_null(node) : json_node_init_int(node, x);
    }
    case G_VARIANT_CLASS_INT32:
        return json_node_init_int(node, g_variant_get_int32(v));
    case G_VARIANT_CLASS_UINT32:
        return json_node_init_int(node, g_variant_get_uint32(v));
    case G_VARIANT_CLASS_UINT16:
        return json_node_init_int(node, g_variant_get_uint16(v));
    case G_VARIANT_CLASS_BYTE:
        return json_node_init_int(node, g_variant_get_byte(v));
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
        return json_node_init_string(node, g_variant_get_string(v, NULL));
    case G_VARIANT_CLASS_ARRAY:
    case G_VARIANT_CLASS_TUPLE: {
        JsonArray *arr = json_array_new();
        GVariantIter iter;
        GVariant *child;

        g_variant_iter_init(&iter, v);
        while ((child = g_variant_iter_next_value(&iter)) != NULL) {
            json_array_add_element(arr, variant_to_node(child));
            g_variant_unref(child);
        }
        return json_node_init_array(node, arr);
    }
    default:
        return json_node_init_null(node);
    }
}

static char *
node_to_string_full(JsonNode *node, gboolean pretty)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();

    json_generator_set_pretty(gen, pretty);
    json_generator_set_root(gen, node);
    return json_generator_to_data(gen, NULL);
}

static char *
node_to_string(JsonNode *node)
{
    return node_to_string_full(node, TRUE);
}

char *
cli_variant_to_json(GVariant *value)
{
    g_autoptr(JsonNode) node = variant_to_node(value);
    return node_to_string(node);
}

char *
cli_variant_to_json_compact(GVariant *value)
{
    g_autoptr(JsonNode) node = variant_to_node(value);
    return node_to_string_full(node, FALSE);
}

char *
cli_format_value(GVariant *value)
{
    if (g_variant_is_of_type(value, G_VARIANT_TYPE_INT64)) {
        gint64 x = g_variant_get_int64(value);
        return x < 0 ? g_strdup(_("unknown")) : g_strdup_printf("0x%" G_GINT64_MODIFIER "x", x);
    }
    if (g_variant_is_of_type(value, G_VARIANT_TYPE_UINT32))
        return g_strdup_printf("0x%08x", g_variant_get_uint32(value));
    if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING))
        return g_strdup_printf("“%s”", g_variant_get_string(value, NULL));
    return g_variant_print(value, FALSE);
}

static void
print_json_node(JsonNode *node)
{
    g_autofree char *text = node_to_string(node);
    printf("%s\n", text);
}

gboolean
cli_verdict_satisfies(const char *verdict, const char *required)
{
    if (g_str_equal(required, "passthrough"))
        return g_str_equal(verdict, "passthrough") || g_str_equal(verdict, "interpretation");
    return g_str_equal(verdict, "interpretation");
}

static const char *
status_label(const char *status)
{
    if (g_str_equal(status, "pass"))
        return _("PASS");
    if (g_str_equal(status, "warn"))
        return _("WARN");
    if (g_str_equal(status, "fail"))
        return _("FAIL");
    return _("SKIP");
}

/* Pads by characters, not bytes, so translated titles stay aligned. */
static void
print_padded(const char *text, glong width)
{
    glong len = g_utf8_strlen(text, -1);
    fputs(text, stdout);
    for (glong i = len; i < width; i++)
        fputc(' ', stdout);
}

void
cli_print_report(GVariant *report, gboolean json)
{
    const char *verdict;
    g_autoptr(GVariantIter) iter = NULL;
    const char *id, *status, *summary, *detail, *remedy;

    g_variant_get(report, "(&sa(sssss))", &verdict, &iter);
    if (json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) root = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "verdict");
        json_builder_add_string_value(b, verdict);
        json_builder_set_member_name(b, "passthrough");
        json_builder_add_boolean_value(b, cli_verdict_satisfies(verdict, "passthrough"));
        json_builder_set_member_name(b, "interpretation");
        json_builder_add_boolean_value(b, cli_verdict_satisfies(verdict, "interpretation"));
        json_builder_set_member_name(b, "checks");
        json_builder_begin_array(b);
        while (g_variant_iter_next(iter, "(&s&s&s&s&s)", &id, &status, &summary, &detail,
                                   &remedy)) {
            json_builder_begin_object(b);
            json_builder_set_member_name(b, "id");
            json_builder_add_string_value(b, id);
            json_builder_set_member_name(b, "status");
            json_builder_add_string_value(b, status);
            json_builder_set_member_name(b, "summary");
            json_builder_add_string_value(b, summary);
            json_builder_set_member_name(b, "detail");
            json_builder_add_string_value(b, detail);
            json_builder_set_member_name(b, "remedy");
            json_builder_add_string_value(b, remedy);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        print_json_node(root);
        return;
    }

    while (g_variant_iter_next(iter, "(&s&s&s&s&s)", &id, &status, &summary, &detail, &remedy)) {
        printf("zPCI: ");
        print_padded(zpcid_check_title(id), 60);
        if (g_str_equal(status, "pass"))
            printf(": %s\n", status_label(status));
        else
            printf(": %s (%s)\n", status_label(status), summary);
        if (*remedy != '\0' && (g_str_equal(status, "fail") || g_str_equal(status, "warn")))
            printf("      %s %s\n", _("Remedy:"), remedy);
    }
    printf("\n");
    print_padded(_("Passthrough:"), 16);
    printf("%s\n", cli_verdict_satisfies(verdict, "passthrough") ? _("ready") : _("not ready"));
    print_padded(_("Interpretation:"), 16);
    printf("%s\n", cli_verdict_satisfies(verdict, "interpretation") ? _("ready") : _("not ready"));
}

static gint64
lookup_x(GVariant *dict, const char *key)
{
    gint64 v = -1;
    g_variant_lookup(dict, key, "x", &v);
    return v;
}

static guint32
lookup_u(GVariant *dict, const char *key)
{
    guint32 v = 0;
    g_variant_lookup(dict, key, "u", &v);
    return v;
}

static const char *
lookup_s(GVariant *dict, const char *key)
{
    const char *v = "";
    g_variant_lookup(dict, key, "&s", &v);
    return v;
}

static char *
format_hex(gint64 v, int digits)
{
    return v < 0 ? g_strdup("-") : g_strdup_printf("0x%0*" G_GINT64_MODIFIER "x", digits, v);
}

static char *
format_holders(GVariant *dict)
{
    g_autoptr(GVariant) holders = g_variant_lookup_value(dict, "Holders", G_VARIANT_TYPE("a(ss)"));
    GString *s = g_string_new(NULL);
    GVariantIter iter;
    const char *kind, *name;

    if (holders != NULL) {
        g_variant_iter_init(&iter, holders);
        while (g_variant_iter_next(&iter, "(&s&s)", &kind, &name))
            g_string_append_printf(s, "%s%s:%s", s->len > 0 ? "," : "", kind, name);
    }
    if (s->len == 0)
        g_string_append(s, "-");
    return g_string_free(s, FALSE);
}

void
cli_print_function_list(GVariant *functions, gboolean json)
{
    GVariantIter iter;
    GVariant *f;

    if (json) {
        g_autofree char *text = cli_variant_to_json(functions);
        printf("%s\n", text);
        return;
    }
    printf("%-10s  %-12s  %-6s  %-4s  %-7s  %-12s  %-9s  %s\n", "FID", "ADDRESS", "UID", "PFT",
           "STATE", "DRIVER", "ID", "HOLDERS");
    g_variant_iter_init(&iter, functions);
    while ((f = g_variant_iter_next_value(&iter)) != NULL) {
        g_autofree char *uid = NULL;
        g_autofree char *pft = format_hex(lookup_x(f, "Pft"), 2);
        g_autofree char *holders = format_holders(f);
        g_autofree char *ids = NULL;
        const char *address = lookup_s(f, "Address");
        const char *driver = lookup_s(f, "Driver");
        guint32 uid_value = lookup_u(f, "Uid");
        gint64 vendor = lookup_x(f, "VendorId"), device = lookup_x(f, "DeviceId");

        uid = uid_value != 0 ? g_strdup_printf("0x%04x", uid_value) : g_strdup("-");
        ids = vendor >= 0 && device >= 0
                  ? g_strdup_printf("%04" G_GINT64_MODIFIER "x:%04" G_GINT64_MODIFIER "x", vendor,
                                    device)
                  : g_strdup("-");
        printf("0x%08x  %-12s  %-6s  %-4s  %-7s  %-12s  %-9s  %s\n", lookup_u(f, "Fid"),
               *address != '\0' ? address : "-", uid, pft, lookup_s(f, "State"),
               *driver != '\0' ? driver : "-", ids, holders);
        g_variant_unref(f);
    }
}

void
cli_print_function(GVariant *function, gboolean json)
{
    GVariantIter iter;
    const char *key;
    GVariant *value;

    if (json) {
        g_autofree char *text = cli_variant_to_json(function);
        printf("%s\n", text);
        return;
    }
    g_variant_iter_init(&iter, function);
    while (g_variant_iter_loop(&iter, "{&sv}", &key, &value)) {
        g_autofree char *text = NULL;

        if (g_variant_is_of_type(value, G_VARIANT_TYPE_INT64)) {
            gint64 x = g_variant_get_int64(value);
            text = x < 0 ? g_strdup(_("unknown")) : g_strdup_printf("0x%" G_GINT64_MODIFIER "x", x);
        } else if (g_variant_is_of_type(value, G_VARIANT_TYPE_UINT32)) {
            text = g_strdup_printf("0x%08x", g_variant_get_uint32(value));
        } else if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
            text = g_strdup(g_variant_get_string(value, NULL));
        } else {
            text = g_variant_print(value, FALSE);
        }
        printf("%-18s %s\n", key, text);
    }
}

void
cli_print_error(const GError *error, gboolean json)
{
    if (json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *remote = g_dbus_error_get_remote_error(error);
        const char *name = remote != NULL ? remote
                           : error->domain == ZPCID_ERROR
                               ? zpcid_error_dbus_name((ZpcidError)error->code)
                               : "org.zpcid1.Error.Failed";
        g_dbus_error_strip_remote_error((GError *)error);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "error");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, name);
        json_builder_set_member_name(b, "message");
        json_builder_add_string_value(b, error->message);
        json_builder_end_object(b);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        print_json_node(root);
        return;
    }
    g_dbus_error_strip_remote_error((GError *)error);
    g_printerr("zpcidctl: %s\n", error->message);
}
