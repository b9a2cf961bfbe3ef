#include "cli-source.h"

#include "readiness.h"
#include "variant.h"

gboolean
cli_source_open(CliContext *ctx, GError **error)
{
    ctx->host = zpcid_host_new_default(ctx->host_root, error);
    if (ctx->host == NULL)
        return FALSE;
    ctx->inventory = zpcid_inventory_new(ctx->host);
    return zpcid_inventory_scan(ctx->inventory, error);
}

void
cli_source_close(CliContext *ctx)
{
    g_clear_object(&ctx->inventory);
    g_clear_pointer(&ctx->host, zpcid_host_unref);
    g_clear_pointer(&ctx->host_root, g_free);
}

GVariant *
cli_source_check(CliContext *ctx, GError **error)
{
    g_autoptr(ZpcidReport) report = zpcid_readiness_evaluate(ctx->host, ctx->inventory);
    return g_variant_ref_sink(zpcid_report_to_variant(report));
}

GVariant *
cli_source_list(CliContext *ctx, GError **error)
{
    g_autoptr(GPtrArray) list = zpcid_inventory_list(ctx->inventory);
    GVariantBuilder b;

    g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
    for (guint i = 0; i < list->len; i++)
        g_variant_builder_add_value(&b, zpcid_function_to_variant(g_ptr_array_index(list, i), NULL));
    return g_variant_ref_sink(g_variant_builder_end(&b));
}

GVariant *
cli_source_show(CliContext *ctx, const char *spec, GError **error)
{
    g_autoptr(ZpcidFunction) f = zpcid_inventory_resolve(ctx->inventory, spec, error);

    if (f == NULL)
        return NULL;
    return g_variant_ref_sink(zpcid_function_to_variant(f, NULL));
}
