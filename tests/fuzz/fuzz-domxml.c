/* Fuzz target: a domain XML document from the outside (D-Bus MergeDomainXml, libvirt's
 * definitions) merged with a fixed request for the functions of a fixture host. */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "domxml.h"
#include "error.h"
#include "inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The request the daemon would build for every configured function of the fixture host
 * (see xml_job_new() in daemon/methods.c), read once. */
static ZpcidDomxmlRequest *
fixture_request(void)
{
    static ZpcidDomxmlRequest request;
    static GArray *functions;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidHost) host = NULL;
    g_autoptr(ZpcidInventory) inventory = NULL;
    g_autoptr(GPtrArray) list = NULL;

    if (functions != NULL)
        return &request;
    host = zpcid_host_new(ZPCID_FUZZ_HOST_ROOT, &error);
    g_assert_no_error(error);
    inventory = zpcid_inventory_new(host);
    g_assert_true(zpcid_inventory_scan(inventory, &error));
    list = zpcid_inventory_list(inventory);
    functions = g_array_new(FALSE, TRUE, sizeof(ZpcidDomxmlFunction));
    for (guint i = 0; i < list->len; i++) {
        const ZpcidFunction *f = g_ptr_array_index(list, i);
        ZpcidDomxmlFunction fn = {0};

        if (f->address == NULL)
            continue; /* standby */
        g_assert_true(zpcid_pci_address_parse(f->address, &fn.address, NULL));
        fn.fid = (guint32)f->fid;
        fn.uid_known = f->uid > 0;
        fn.uid = fn.uid_known ? (guint32)f->uid : 0;
        fn.uid_checking = f->uid_is_unique == 1;
        fn.managed = TRUE;
        g_array_append_val(functions, fn);
    }
    g_assert_cmpuint(functions->len, >=, 2);
    request.functions = (const ZpcidDomxmlFunction *)functions->data;
    request.n_functions = functions->len;
    request.policy = ZPCID_ZPCI_POLICY_AUTO;
    request.interpretation = ZPCID_INTERPRETATION_PREFERRED;
    request.verdict.ok = TRUE;
    return &request;
}

static void
assert_error(GError *error)
{
    g_assert_nonnull(error);
    g_assert_true(error->domain == ZPCID_ERROR);
    /* Only typed errors reach the bus: no FAILED for what the caller sent. */
    g_assert_true(error->code == ZPCID_ERROR_INVALID_ARGUMENT ||
                  error->code == ZPCID_ERROR_CONFLICT || error->code == ZPCID_ERROR_NOT_READY ||
                  error->code == ZPCID_ERROR_UNSUPPORTED);
    g_assert_true(g_utf8_validate(error->message, -1, NULL));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ZpcidDomxmlRequest *request = fixture_request();
    /* D-Bus strings end at the first NUL, as the daemon receives them. */
    g_autofree char *xml = g_strndup((const char *)data, size);
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlResult) merged = NULL;
    g_autoptr(ZpcidDomxmlResult) fragments = NULL;
    g_autoptr(ZpcidDomxmlInfo) info = zpcid_domxml_inspect(xml, &error);

    if (info == NULL) {
        assert_error(error);
        g_clear_error(&error);
    }
    merged = zpcid_domxml_merge(request, xml, &error);
    if (merged == NULL) {
        assert_error(error);
        g_clear_error(&error);
    } else {
        g_autoptr(ZpcidDomxmlInfo) out = zpcid_domxml_inspect(merged->xml, &error);
        g_autoptr(ZpcidDomxmlResult) again = NULL;

        /* The input was a domain zpcid could read, and the output still is one. */
        g_assert_nonnull(info);
        g_assert_no_error(error);
        g_assert_cmpuint(merged->hostdevs->len, ==, request->n_functions);
        for (gsize i = 0; i < request->n_functions; i++)
            g_assert_true(zpcid_domxml_info_uses(out, &request->functions[i].address));
        g_assert_cmpuint(out->sources->len, ==, info->sources->len + request->n_functions);
        /* Merging again finds the functions present. */
        again = zpcid_domxml_merge(request, merged->xml, &error);
        g_assert_null(again);
        g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_CONFLICT);
        g_clear_error(&error);
    }
    fragments = zpcid_domxml_build_hostdevs(request, xml, &error);
    if (fragments == NULL) {
        assert_error(error);
    } else {
        g_assert_cmpuint(fragments->hostdevs->len, ==, request->n_functions);
        g_assert_nonnull(fragments->metadata);
    }
    return 0;
}
