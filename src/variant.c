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

static void
add_strv(GVariantBuilder *b, const char *key, GPtrArray *items)
{
    GVariantBuilder arr;

    g_variant_builder_init(&arr, G_VARIANT_TYPE_STRING_ARRAY);
    for (guint i = 0; items != NULL && i < items->len; i++)
        g_variant_builder_add(&arr, "s", (const char *)g_ptr_array_index(items, i));
    g_variant_builder_add(b, "{sv}", key, g_variant_builder_end(&arr));
}

static void
add_holders(GVariantBuilder *b, const ZpcidFunction *f)
{
    GVariantBuilder arr;

    g_variant_builder_init(&arr, G_VARIANT_TYPE("a(ss)"));
    for (guint i = 0; i < f->netdevs->len; i++)
        g_variant_builder_add(&arr, "(ss)", "net", (const char *)g_ptr_array_index(f->netdevs, i));
    for (guint i = 0; i < f->blockdevs->len; i++)
        g_variant_builder_add(&arr, "(ss)", "block",
                              (const char *)g_ptr_array_index(f->blockdevs, i));
    for (guint i = 0; i < f->virtfns->len; i++)
        g_variant_builder_add(&arr, "(ss)", "vf", (const char *)g_ptr_array_index(f->virtfns, i));
    g_variant_builder_add(b, "{sv}", "Holders", g_variant_builder_end(&arr));
}

#define ADD(key, fmt, value) g_variant_builder_add(&b, "{sv}", key, g_variant_new(fmt, value))

GVariant *
zpcid_function_to_variant(const ZpcidFunction *f, const ZpcidFunctionExtra *extra)
{
    GVariantBuilder b;
    GVariantBuilder pfip;
    GVariantBuilder domains;

    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    ADD("Fid", "u", (guint32)f->fid);
    ADD("Address", "s", f->address != NULL ? f->address : "");
    ADD("State", "s", zpcid_function_state_to_string(zpcid_function_get_state(f)));
    ADD("FunctionHandle", "u", f->function_handle >= 0 ? (guint32)f->function_handle : 0);
    ADD("Uid", "u", f->uid >= 0 ? (guint32)f->uid : 0);
    ADD("UidIsUnique", "b", f->uid_is_unique == 1);
    ADD("Index", "x", f->index);
    ADD("Pchid", "x", f->pchid);
    ADD("Pfgid", "x", f->pfgid);
    ADD("Pft", "x", f->pft);
    ADD("Vfn", "x", f->vfn);
    ADD("Port", "x", f->port);
    ADD("Fidparm", "x", f->fidparm);
    ADD("MioEnabled", "b", f->mio_enabled == 1);
    g_variant_builder_init(&pfip, G_VARIANT_TYPE("ax"));
    for (guint i = 0; i < G_N_ELEMENTS(f->pfip); i++)
        g_variant_builder_add(&pfip, "x", f->pfip[i]);
    g_variant_builder_add(&b, "{sv}", "Pfip", g_variant_builder_end(&pfip));
    ADD("UtilString", "s", f->util_string != NULL ? f->util_string : "");
    ADD("VendorId", "x", f->vendor_id);
    ADD("DeviceId", "x", f->device_id);
    ADD("SubsystemVendorId", "x", f->subsystem_vendor_id);
    ADD("SubsystemId", "x", f->subsystem_id);
    ADD("ClassCode", "x", f->class_code);
    ADD("Driver", "s", f->driver != NULL ? f->driver : "");
    ADD("DriverOverride", "s", f->driver_override != NULL ? f->driver_override : "");
    ADD("HostDriver", "s", extra != NULL && extra->host_driver != NULL ? extra->host_driver : "");
    ADD("IommuGroup", "x", f->iommu_group);
    ADD("Physfn", "s", f->physfn != NULL ? f->physfn : "");
    ADD("SriovNumVfs", "x", f->sriov_numvfs);
    ADD("SlotPower", "i", f->slot_power);
    add_holders(&b, f);
    g_variant_builder_init(&domains, G_VARIANT_TYPE_STRING_ARRAY);
    for (guint i = 0; extra != NULL && extra->domains != NULL && extra->domains[i] != NULL; i++)
        g_variant_builder_add(&domains, "s", extra->domains[i]);
    g_variant_builder_add(&b, "{sv}", "Domains", g_variant_builder_end(&domains));
    ADD("Persistent", "b", extra != NULL && extra->persistent);
    ADD("Owner", "s", extra != NULL && extra->owner != NULL ? extra->owner : "");
    add_strv(&b, "Errors", f->errors);
    return g_variant_builder_end(&b);
}
