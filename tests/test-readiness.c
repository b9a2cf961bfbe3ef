#include <glib.h>
#include <string.h>

#include "readiness.h"
#include "test-common.h"

typedef struct {
    const char *host;
    gboolean passthrough;
    gboolean interpretation;
    const char *check_id;     /* a check that must have ... */
    ZpcidCheckStatus status;  /* ... this status */
} Expectation;

static const Expectation expectations[] = {
    {"z16-lpar-ready", TRUE, TRUE, "kvm-cap-zpci-op", ZPCID_CHECK_PASS},
    {"z13-lpar", TRUE, FALSE, "machine-type", ZPCID_CHECK_FAIL},
    {"kvm-guest", TRUE, FALSE, "hypervisor", ZPCID_CHECK_FAIL},
    {"no-vfio", FALSE, FALSE, "vfio-modules", ZPCID_CHECK_FAIL},
    {"no-zdev-kvm", TRUE, FALSE, "config-vfio-pci-zdev-kvm", ZPCID_CHECK_FAIL},
    {"se-host", TRUE, TRUE, "secure-execution", ZPCID_CHECK_WARN},
    {"uid-checking-off", TRUE, TRUE, "uid-checking", ZPCID_CHECK_WARN},
    {"x86_64-host", FALSE, FALSE, "architecture", ZPCID_CHECK_FAIL},
    {"s390x-qemu-capture", TRUE, FALSE, "kvm-module", ZPCID_CHECK_FAIL},
};

static ZpcidReport *
evaluate(const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *root = test_host_path(name);
    g_autoptr(ZpcidHost) host = zpcid_host_new(root, &error);
    g_autoptr(ZpcidInventory) inv = NULL;

    g_assert_no_error(error);
    inv = zpcid_inventory_new(host);
    g_assert_true(zpcid_inventory_scan(inv, &error));
    return zpcid_readiness_evaluate(host, inv);
}

static void
test_host(gconstpointer data)
{
    const Expectation *e = data;
    g_autofree char *root = test_host_path(e->host);
    g_autoptr(ZpcidReport) report = NULL;
    const ZpcidCheck *check;

    if (!g_file_test(root, G_FILE_TEST_IS_DIR)) {
        g_test_skip("fixture host not present");
        return;
    }
    report = evaluate(e->host);
    g_assert_cmpint(report->passthrough, ==, e->passthrough);
    g_assert_cmpint(report->interpretation, ==, e->interpretation);
    check = zpcid_report_find(report, e->check_id);
    g_assert_nonnull(check);
    g_assert_cmpint(check->status, ==, e->status);
    /* Every check a person must act on says how. */
    for (guint i = 0; i < report->checks->len; i++) {
        const ZpcidCheck *c = g_ptr_array_index(report->checks, i);
        g_assert_true(g_str_has_suffix(c->summary, "."));
        if (c->status == ZPCID_CHECK_FAIL || c->status == ZPCID_CHECK_WARN)
            g_assert_cmpstr(c->remedy, !=, "");
    }
    /* A failing check that blocks a verdict is reported as that verdict's first failure. */
    if (!e->interpretation)
        g_assert_nonnull(zpcid_report_first_failure(report, ZPCID_AFFECTS_INTERPRETATION));
}

static void
test_check_ids_stable(void)
{
    g_autoptr(ZpcidReport) report = evaluate("z16-lpar-ready");
    static const char *const ids[] = {
        "architecture", "machine-type", "hypervisor", "zpci-facility", "aen-ais-facilities",
        "sie", "kvm-module", "dev-kvm", "kvm-cap-zpci-op", "config-vfio-pci",
        "config-s390-iommu", "config-vfio-pci-zdev-kvm", "vfio-modules", "dev-vfio",
        "functions", "iommu-groups", "uid-checking", "function-attributes", "secure-execution",
    };

    g_assert_cmpuint(report->checks->len, ==, G_N_ELEMENTS(ids));
    for (gsize i = 0; i < G_N_ELEMENTS(ids); i++) {
        const ZpcidCheck *c = g_ptr_array_index(report->checks, i);
        g_assert_cmpstr(c->id, ==, ids[i]);
    }
}

static void
test_vfio_not_loaded(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *root = test_copy_host("z16-lpar-ready");
    g_autofree char *mod = g_build_filename(root, "sys/module/vfio_pci", NULL);
    g_autofree char *rm_argv0 = NULL;
    const char *argv[] = {"rm", "-rf", mod, NULL};
    g_autoptr(ZpcidHost) host = NULL;
    g_autoptr(ZpcidReport) report = NULL;
    const ZpcidCheck *c;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                               NULL, NULL, &error));
    host = zpcid_host_new(root, &error);
    report = zpcid_readiness_evaluate(host, NULL);
    c = zpcid_report_find(report, "vfio-modules");
    g_assert_cmpint(c->status, ==, ZPCID_CHECK_WARN);
    g_assert_nonnull(strstr(c->summary, "vfio_pci"));
    g_assert_nonnull(strstr(c->remedy, "modprobe vfio-pci"));
    test_remove_tree(root);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (gsize i = 0; i < G_N_ELEMENTS(expectations); i++) {
        g_autofree char *name = g_strdup_printf("/readiness/host/%s", expectations[i].host);
        g_test_add_data_func(name, &expectations[i], test_host);
    }
    g_test_add_func("/readiness/check-ids", test_check_ids_stable);
    g_test_add_func("/readiness/vfio-not-loaded", test_vfio_not_loaded);
    return g_test_run();
}
