/* virt.c against libvirt's test driver (test:///default): define, users of a function, merge
 * into a domain fetched by name, metadata, attach/detach and libvirt's error text. */
#include <glib.h>
#include <libvirt/libvirt.h>
#include <locale.h>
#include <string.h>

#include "domxml.h"
#include "error.h"
#include "virt.h"
#include "zpcid-names.h"

#define TEST_URI "test:///default"

static const ZpcidDomxmlFunction functions[] = {
    {.address = {5, 0, 0, 0}, .fid = 0x11, .uid = 5, .uid_known = TRUE, .uid_checking = TRUE,
     .managed = TRUE},
    {.address = {6, 0, 0, 0}, .fid = 0x12, .uid = 6, .uid_known = TRUE, .uid_checking = TRUE,
     .managed = TRUE},
    {.address = {7, 0, 0, 0}, .fid = 0x2a, .uid = 7, .uid_known = TRUE, .uid_checking = TRUE,
     .managed = FALSE},
};

static const ZpcidDomxmlFunction extra_function = {
    .address = {8, 0, 0, 0}, .fid = 0x30, .uid = 8, .uid_known = TRUE, .uid_checking = TRUE,
    .managed = TRUE};

static ZpcidVirt *
connect_test(void)
{
    g_autoptr(GError) error = NULL;
    ZpcidVirt *virt = zpcid_virt_connect(TEST_URI, &error);

    g_assert_no_error(error);
    g_assert_nonnull(virt);
    return virt;
}

/* Defines a new s390x test-driver domain with the three functions (mirror). */
static void
define_guest(ZpcidVirt *virt, const char *name)
{
    ZpcidDomxmlRequest req = {
        .functions = functions,
        .n_functions = G_N_ELEMENTS(functions),
        .policy = ZPCID_ZPCI_POLICY_MIRROR,
        .interpretation = ZPCID_INTERPRETATION_REQUIRED,
        .verdict = {.ok = TRUE},
    };
    ZpcidDomxmlDomainParams params = {.name = name, .type = "test"};
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlResult) result = zpcid_domxml_new_domain(&req, &params, &error);
    g_autofree char *defined = NULL;

    g_assert_no_error(error);
    defined = zpcid_virt_define(virt, result->xml, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(defined, ==, name);
}

static ZpcidVirtPciUser *
find_user(GPtrArray *users, guint32 pci_domain, const char *name)
{
    for (guint i = 0; i < users->len; i++) {
        ZpcidVirtPciUser *u = g_ptr_array_index(users, i);
        if (u->address.domain == pci_domain && g_strcmp0(u->domain.name, name) == 0)
            return u;
    }
    return NULL;
}

static void
test_bad_uri(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidVirt) virt = zpcid_virt_connect("zpcid-bogus:///nowhere", &error);

    g_assert_null(virt);
    g_assert_nonnull(error);
    g_assert_true(error->domain == ZPCID_ERROR);
    /* Our sentence, then libvirt's own text. */
    g_assert_true(g_str_has_prefix(error->message,
                                   "Could not connect to libvirt at “zpcid-bogus:///nowhere”: "));
    g_assert_cmpuint(strlen(error->message), >, strlen("Could not connect to libvirt at "
                                                       "“zpcid-bogus:///nowhere”: "));
}

static void
test_missing_domain(void)
{
    g_autoptr(ZpcidVirt) virt = connect_test();
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = zpcid_virt_get_domain_xml(virt, "zpcid-no-such-domain", FALSE, &error);

    g_assert_null(xml);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "zpcid-no-such-domain"));
}

static void
test_define_invalid_schema(void)
{
    /* uid > 16 bits: caught by libvirt's RNG through VIR_DOMAIN_DEFINE_VALIDATE (the test
     * driver itself would keep it, libvirt-zpci.md §6.2 t03). */
    static const char xml[] =
        "<domain type='test'><name>zpcid-bad-schema</name><memory>1048576</memory>"
        "<os><type arch='s390x' machine='s390-ccw-virtio'>hvm</type></os><devices>"
        "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0001' "
        "bus='0x00' slot='0x00' function='0x0'/></source><address type='pci'><zpci "
        "uid='0x10000' fid='0x00000001'/></address></hostdev></devices></domain>";
    g_autoptr(ZpcidVirt) virt = connect_test();
    g_autoptr(GError) error = NULL;
    g_autofree char *name = zpcid_virt_define(virt, xml, &error);

    g_assert_null(name);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "failed to validate against schema"));
}

static void
test_users_and_merge(void)
{
    g_autoptr(ZpcidVirt) virt = connect_test();
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) users = NULL;
    g_autoptr(GPtrArray) refs = NULL;
    g_autoptr(ZpcidDomxmlInfo) info = NULL;
    g_autoptr(ZpcidDomxmlResult) merged = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *redefined = NULL;
    ZpcidPciAddress a5 = {5, 0, 0, 0}, a9 = {9, 0, 0, 0};
    ZpcidDomxmlRequest req = {
        .functions = &extra_function,
        .n_functions = 1,
        .policy = ZPCID_ZPCI_POLICY_AUTO,
        .interpretation = ZPCID_INTERPRETATION_PREFERRED,
        .verdict = {.ok = TRUE},
    };
    ZpcidVirtPciUser *u;

    define_guest(virt, "zpcid-users");

    refs = zpcid_virt_domains_using(virt, &a5, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(refs->len, ==, 1);
    g_assert_cmpstr(((ZpcidVirtDomainRef *)g_ptr_array_index(refs, 0))->name, ==,
                    "zpcid-users");
    g_assert_false(((ZpcidVirtDomainRef *)g_ptr_array_index(refs, 0))->running);
    g_clear_pointer(&refs, g_ptr_array_unref);
    refs = zpcid_virt_domains_using(virt, &a9, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(refs->len, ==, 0);

    /* The test driver keeps our zpci ids as written. */
    xml = zpcid_virt_get_domain_xml(virt, "zpcid-users", TRUE, &error);
    g_assert_no_error(error);
    info = zpcid_domxml_inspect(xml, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(info->zpci->len, ==, 3);
    g_assert_cmpuint(g_array_index(info->zpci, ZpcidDomxmlZpci, 2).uid, ==, 7);
    g_assert_cmpuint(g_array_index(info->zpci, ZpcidDomxmlZpci, 2).fid, ==, 0x2a);
    g_assert_cmpuint(info->intents->len, ==, 3);

    /* Merge into the domain as libvirt gives it, by name, and define the result. */
    merged = zpcid_domxml_merge(&req, xml, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g_array_index(merged->ids, ZpcidZpciIds, 0).uid, ==, 1);
    g_assert_cmpuint(g_array_index(merged->ids, ZpcidZpciIds, 0).fid, ==, 0);
    redefined = zpcid_virt_define(virt, merged->xml, &error);
    g_assert_no_error(error);

    /* Running: live and persistent definitions both name the functions. */
    {
        virConnectPtr conn = virConnectOpen(TEST_URI);
        virDomainPtr dom = virDomainLookupByName(conn, "zpcid-users");
        g_assert_cmpint(virDomainCreate(dom), ==, 0);
        virDomainFree(dom);
        virConnectClose(conn);
    }
    users = zpcid_virt_list_pci_users(virt, &error);
    g_assert_no_error(error);
    for (guint32 d = 5; d <= 8; d++) {
        u = find_user(users, d, "zpcid-users");
        g_assert_true(u != NULL && u->domain.running && u->domain.live && u->domain.config);
    }
    g_assert_null(find_user(users, 5, "test"));

    {
        virConnectPtr conn = virConnectOpen(TEST_URI);
        virDomainPtr dom = virDomainLookupByName(conn, "zpcid-users");
        virDomainDestroy(dom);
        virDomainFree(dom);
        virConnectClose(conn);
    }
    g_assert_true(zpcid_virt_undefine(virt, "zpcid-users", &error));
    g_assert_no_error(error);
}

static void
test_metadata(void)
{
    g_autoptr(ZpcidVirt) virt = connect_test();
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlResult) result = NULL;
    g_autoptr(ZpcidDomxmlInfo) info = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *meta = NULL;
    ZpcidDomxmlRequest req = {
        .functions = &extra_function,
        .n_functions = 1,
        .policy = ZPCID_ZPCI_POLICY_MIRROR,
        .interpretation = ZPCID_INTERPRETATION_REQUIRED,
        .verdict = {.ok = TRUE},
    };

    define_guest(virt, "zpcid-meta");
    xml = zpcid_virt_get_domain_xml(virt, "zpcid-meta", TRUE, &error);
    g_assert_no_error(error);
    /* The record for an attach: the domain's existing entries plus the new function. */
    result = zpcid_domxml_build_hostdevs(&req, xml, &error);
    g_assert_no_error(error);
    zpcid_virt_set_metadata(virt, "zpcid-meta", result->metadata, ZPCID_VIRT_AFFECT_CONFIG,
                            &error);
    g_assert_no_error(error);
    meta = zpcid_virt_get_metadata(virt, "zpcid-meta", TRUE, &error);
    g_assert_no_error(error);
    g_test_message("metadata as libvirt returns it: %s", meta);
    g_assert_nonnull(strstr(meta, "passthrough"));
    g_assert_nonnull(strstr(meta, "0008:00:00.0"));
    g_clear_pointer(&xml, g_free);
    xml = zpcid_virt_get_domain_xml(virt, "zpcid-meta", TRUE, &error);
    info = zpcid_domxml_inspect(xml, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(info->intents->len, ==, 4);
    g_assert_cmpuint(g_array_index(info->intents, ZpcidDomxmlIntent, 3).address.domain, ==, 8);

    g_assert_true(zpcid_virt_set_metadata(virt, "zpcid-meta", NULL, ZPCID_VIRT_AFFECT_CONFIG,
                                          &error));
    g_clear_pointer(&meta, g_free);
    meta = zpcid_virt_get_metadata(virt, "zpcid-meta", TRUE, &error);
    g_assert_null(meta);
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_true(zpcid_virt_undefine(virt, "zpcid-meta", &error));
}

static void
test_attach_detach(void)
{
    g_autoptr(ZpcidVirt) virt = connect_test();
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlResult) result = NULL;
    g_autofree char *xml = NULL;
    ZpcidDomxmlRequest req = {
        .functions = &extra_function,
        .n_functions = 1,
        .policy = ZPCID_ZPCI_POLICY_MIRROR,
        .interpretation = ZPCID_INTERPRETATION_OFF,
    };
    const char *fragment;
    gboolean ok;

    define_guest(virt, "zpcid-attach");
    xml = zpcid_virt_get_domain_xml(virt, "zpcid-attach", TRUE, &error);
    g_assert_no_error(error);
    result = zpcid_domxml_build_hostdevs(&req, xml, &error);
    g_assert_no_error(error);
    fragment = g_ptr_array_index(result->hostdevs, 0);

    /* The test driver cannot change a persistent definition (9.0: no attach at all; 11.x:
     * live only): libvirt's text must reach the caller. */
    ok = zpcid_virt_attach(virt, "zpcid-attach", fragment, ZPCID_VIRT_AFFECT_CONFIG, &error);
    g_assert_false(ok);
    g_assert_nonnull(error);
    g_assert_true(g_str_has_prefix(error->message,
                                   "libvirt could not attach the device to the domain "
                                   "“zpcid-attach”: "));
    g_assert_true(strstr(error->message, "virDomainAttachDeviceFlags") != NULL ||
                  strstr(error->message, "unsupported flags") != NULL);
    g_assert_true(error->code == ZPCID_ERROR_UNSUPPORTED ||
                  error->code == ZPCID_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    {
        virConnectPtr conn = virConnectOpen(TEST_URI);
        virDomainPtr dom = virDomainLookupByName(conn, "zpcid-attach");
        g_assert_cmpint(virDomainCreate(dom), ==, 0);
        virDomainFree(dom);
        virConnectClose(conn);
    }
    ok = zpcid_virt_attach(virt, "zpcid-attach", fragment, ZPCID_VIRT_AFFECT_LIVE, &error);
    if (ok) {
        /* libvirt >= 10.0: the live definition has it, then loses it again. */
        g_autoptr(GPtrArray) refs = NULL;
        refs = zpcid_virt_domains_using(virt, &extra_function.address, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(refs->len, ==, 1);
        g_assert_true(((ZpcidVirtDomainRef *)g_ptr_array_index(refs, 0))->live);
        g_assert_false(((ZpcidVirtDomainRef *)g_ptr_array_index(refs, 0))->config);
        g_assert_true(zpcid_virt_detach(virt, "zpcid-attach", fragment, ZPCID_VIRT_AFFECT_LIVE,
                                        &error));
        g_assert_no_error(error);
    } else {
        g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_UNSUPPORTED);
        g_assert_nonnull(strstr(error->message, "this function is not supported by the "
                                                "connection driver: virDomainAttachDeviceFlags"));
        g_test_message("test driver has no hotplug: %s", error->message);
        g_clear_error(&error);
        g_assert_false(zpcid_virt_detach(virt, "zpcid-attach", fragment,
                                         ZPCID_VIRT_AFFECT_LIVE, &error));
        g_assert_nonnull(error);
        g_assert_true(g_str_has_prefix(error->message, "libvirt could not detach the device "));
        g_clear_error(&error);
    }

    {
        virConnectPtr conn = virConnectOpen(TEST_URI);
        virDomainPtr dom = virDomainLookupByName(conn, "zpcid-attach");
        virDomainDestroy(dom);
        virDomainFree(dom);
        virConnectClose(conn);
    }
    g_assert_true(zpcid_virt_undefine(virt, "zpcid-attach", &error));
}

int
main(int argc, char **argv)
{
    setlocale(LC_ALL, "C.UTF-8");
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/virt/bad-uri", test_bad_uri);
    g_test_add_func("/virt/missing-domain", test_missing_domain);
    g_test_add_func("/virt/define-invalid-schema", test_define_invalid_schema);
    g_test_add_func("/virt/users-and-merge", test_users_and_merge);
    g_test_add_func("/virt/metadata", test_metadata);
    g_test_add_func("/virt/attach-detach", test_attach_detach);
    return g_test_run();
}
