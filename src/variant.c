#include "variant.h"

const char *
zpcid_report_verdict(const ZpcidReport *report)
{
    if (report->interpretation)
        return "interpretation";
    if (report->passthrough)
        return "passthrough";
    return "none";
}

GVariant *
zpcid_report_to_variant(const ZpcidReport *report)
{
    GVariantBuilder results;

    g_variant_builder_init(&results, G_VARIANT_TYPE("a(sssss)"));
    for (guint i = 0; i < report->checks->len; i++) {
        const ZpcidCheck *c = g_ptr_array_index(report->checks, i);
        g_variant_builder_add(&results, "(sssss)", c->id, zpcid_check_status_to_string(c->status),
                              c->summary, c->detail, c->remedy);
    }
    return g_variant_new("(sa(sssss))", zpcid_report_verdict(report), &results);
}

/* One {sv} entry of an a{sv}: key, value in a variant; the value is written between
 * entry_begin() and entry_end() with its type string. */
static void
entry_begin(ZpcidVariantWriter *w, const char *key)
{
    zpcid_variant_writer_open_tuple(w, 8);
    zpcid_variant_writer_put_string(w, key);
    zpcid_variant_writer_mark(w);
    zpcid_variant_writer_open_variant(w);
}

static void
entry_end(ZpcidVariantWriter *w, const char *type_string)
{
    zpcid_variant_writer_close_variant(w, type_string);
    zpcid_variant_writer_close(w);
    zpcid_variant_writer_mark(w);
}

static void
add_u(ZpcidVariantWriter *w, const char *key, guint32 value)
{
    entry_begin(w, key);
    zpcid_variant_writer_put_uint32(w, value);
    entry_end(w, "u");
}

static void
add_i(ZpcidVariantWriter *w, const char *key, gint32 value)
{
    entry_begin(w, key);
    zpcid_variant_writer_put_int32(w, value);
    entry_end(w, "i");
}

static void
add_x(ZpcidVariantWriter *w, const char *key, gint64 value)
{
    entry_begin(w, key);
    zpcid_variant_writer_put_int64(w, value);
    entry_end(w, "x");
}

static void
add_b(ZpcidVariantWriter *w, const char *key, gboolean value)
{
    entry_begin(w, key);
    zpcid_variant_writer_put_boolean(w, value);
    entry_end(w, "b");
}

/* @value NULL is written as "". */
static void
add_s(ZpcidVariantWriter *w, const char *key, const char *value)
{
    entry_begin(w, key);
    zpcid_variant_writer_put_string(w, value != NULL ? value : "");
    entry_end(w, "s");
}

static void
put_strings(ZpcidVariantWriter *w, const char *const *items, guint n)
{
    zpcid_variant_writer_open_array(w, 1);
    for (guint i = 0; i < n; i++) {
        zpcid_variant_writer_put_string(w, items[i]);
        zpcid_variant_writer_mark(w);
    }
    zpcid_variant_writer_close(w);
}

static void
add_strv(ZpcidVariantWriter *w, const char *key, const char *const *items, guint n)
{
    entry_begin(w, key);
    put_strings(w, items, n);
    entry_end(w, "as");
}

static void
put_holders(ZpcidVariantWriter *w, const char *kind, GPtrArray *names)
{
    for (guint i = 0; i < names->len; i++) {
        zpcid_variant_writer_open_tuple(w, 1);
        zpcid_variant_writer_put_string(w, kind);
        zpcid_variant_writer_mark(w);
        zpcid_variant_writer_put_string(w, g_ptr_array_index(names, i));
        zpcid_variant_writer_close(w);
        zpcid_variant_writer_mark(w);
    }
}

void
zpcid_function_write_properties(ZpcidVariantWriter *w, const ZpcidFunction *f,
                                const ZpcidFunctionExtra *extra)
{
    const char *const *domains = extra != NULL ? extra->domains : NULL;

    zpcid_variant_writer_open_array(w, 8);
    add_u(w, "Fid", (guint32)f->fid);
    add_s(w, "Address", f->address);
    add_s(w, "State", zpcid_function_state_to_string(zpcid_function_get_state(f)));
    add_u(w, "FunctionHandle", f->function_handle >= 0 ? (guint32)f->function_handle : 0);
    add_u(w, "Uid", f->uid >= 0 ? (guint32)f->uid : 0);
    add_b(w, "UidIsUnique", f->uid_is_unique == 1);
    add_x(w, "Index", f->index);
    add_x(w, "Pchid", f->pchid);
    add_x(w, "Pfgid", f->pfgid);
    add_x(w, "Pft", f->pft);
    add_x(w, "Vfn", f->vfn);
    add_x(w, "Port", f->port);
    add_x(w, "Fidparm", f->fidparm);
    add_b(w, "MioEnabled", f->mio_enabled == 1);
    entry_begin(w, "Pfip");
    zpcid_variant_writer_open_array(w, 8);
    for (guint i = 0; i < G_N_ELEMENTS(f->pfip); i++)
        zpcid_variant_writer_put_int64(w, f->pfip[i]);
    zpcid_variant_writer_close(w);
    entry_end(w, "ax");
    add_s(w, "UtilString", f->util_string);
    add_x(w, "VendorId", f->vendor_id);
    add_x(w, "DeviceId", f->device_id);
    add_x(w, "SubsystemVendorId", f->subsystem_vendor_id);
    add_x(w, "SubsystemId", f->subsystem_id);
    add_x(w, "ClassCode", f->class_code);
    add_s(w, "Driver", f->driver);
    add_s(w, "DriverOverride", f->driver_override);
    add_s(w, "HostDriver", extra != NULL ? extra->host_driver : NULL);
    add_x(w, "IommuGroup", f->iommu_group);
    add_s(w, "Physfn", f->physfn);
    add_x(w, "SriovNumVfs", f->sriov_numvfs);
    add_i(w, "SlotPower", f->slot_power);
    entry_begin(w, "Holders");
    zpcid_variant_writer_open_array(w, 1);
    put_holders(w, "net", f->netdevs);
    put_holders(w, "block", f->blockdevs);
    put_holders(w, "vf", f->virtfns);
    zpcid_variant_writer_close(w);
    entry_end(w, "a(ss)");
    add_strv(w, "Domains", domains, domains != NULL ? g_strv_length((char **)domains) : 0);
    add_b(w, "Persistent", extra != NULL && extra->persistent);
    add_s(w, "Owner", extra != NULL ? extra->owner : NULL);
    add_strv(w, "Errors", (const char *const *)f->errors->pdata, f->errors->len);
    zpcid_variant_writer_close(w);
}

GVariant *
zpcid_function_to_variant(const ZpcidFunction *f, const ZpcidFunctionExtra *extra)
{
    ZpcidVariantWriter *w = zpcid_variant_writer_new(1024);

    zpcid_function_write_properties(w, f, extra);
    return zpcid_variant_writer_end(w, G_VARIANT_TYPE_VARDICT);
}
