/* zpcid over D-Bus, end to end: a private dbus-daemon running zpcid's own bus policy, the
 * real zpcid on a generated host tree (binds happen under the simulated kernel), a fake
 * polkit (python3-dbusmock's polkitd template) and the real zpcidctl. Every test starts its
 * own bus and daemon, so that none sees another's changes. The fixture is dbus-fixture.c. */
#include <errno.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dbus-fixture.h"
#include "error.h"
#include "inventory.h"
#include "readiness.h"
#include "test-common.h"
#include "variant.h"
#include "zpcid-dbus-generated.h"
#include "zpcid-names.h"

/* ======================================================================================= */

static void
test_manager_properties(void)
{
    Env *env = env_new(ENV_DEFAULT);
    g_autoptr(GVariant) props = get_all(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER);
    g_autoptr(GVariant) objects = NULL;
    g_autoptr(GVariant) check = NULL;
    g_autoptr(ZpcidHost) host = zpcid_host_new(env->host, NULL);
    g_autoptr(ZpcidInventory) inventory = zpcid_inventory_new(host);
    g_autoptr(ZpcidReport) report = NULL;
    g_autoptr(GVariant) expected = NULL;
    const char *s;
    gboolean b;
    guint32 count;

    g_assert_true(g_variant_lookup(props, "Version", "&s", &s));
    g_assert_cmpstr(s, ==, ZPCID_VERSION);
    g_assert_true(g_variant_lookup(props, "Architecture", "&s", &s));
    g_assert_cmpstr(s, ==, "s390x");
    g_assert_true(zpcid_inventory_scan(inventory, NULL));
    report = zpcid_readiness_evaluate(host, inventory);
    g_assert_true(g_variant_lookup(props, "PassthroughReady", "b", &b));
    g_assert_cmpint(b, ==, report->passthrough);
    g_assert_true(g_variant_lookup(props, "InterpretationReady", "b", &b));
    g_assert_cmpint(b, ==, report->interpretation);
    g_assert_true(g_variant_lookup(props, "FunctionCount", "u", &count));
    g_assert_cmpuint(count, ==, zpcid_inventory_get_count(inventory));
    g_assert_cmpuint(count, ==, 14);

    /* Check() says what the readiness engine says about the same tree. */
    check = manager_call(env, "Check", g_variant_new("(a{sv})", NULL));
    expected = g_variant_ref_sink(zpcid_report_to_variant(report));
    g_assert_true(g_variant_equal(check, expected));
    g_variant_unref(g_steal_pointer(&check));
    check = manager_call(env, "Check", g_variant_new("(@a{sv})", options_no_interaction()));

    objects = call_ok(env, ZPCID_DBUS_PATH, "org.freedesktop.DBus.ObjectManager",
                      "GetManagedObjects", NULL);
    g_assert_cmpuint(g_variant_n_children(g_variant_get_child_value(objects, 0)), ==, count);
    env_free(env);
}

static void
test_function_objects(void)
{
    Env *env = env_new(ENV_DEFAULT);
    g_autoptr(GVariant) reply = call_ok(env, ZPCID_DBUS_PATH, "org.freedesktop.DBus.ObjectManager",
                                        "GetManagedObjects", NULL);
    g_autoptr(GVariantIter) iter = NULL;
    g_autoptr(ZpcidHost) host = zpcid_host_new(env->host, NULL);
    g_autoptr(ZpcidInventory) inventory = zpcid_inventory_new(host);
    GDBusInterfaceInfo *info = zpcid_dbus_function_interface_info();
    const char *path;
    GVariant *interfaces;
    guint n = 0;

    g_assert_true(zpcid_inventory_scan(inventory, NULL));
    g_variant_get(reply, "(a{oa{sa{sv}}})", &iter);
    while (g_variant_iter_loop(iter, "{&o@a{sa{sv}}}", &path, &interfaces)) {
        g_autoptr(GVariant) managed = g_variant_lookup_value(interfaces, ZPCID_DBUS_IFACE_FUNCTION,
                                                             G_VARIANT_TYPE_VARDICT);
        g_autoptr(GVariant) all = get_all(env, path, ZPCID_DBUS_IFACE_FUNCTION);
        g_autoptr(GVariant) local = NULL;
        g_autofree char *expected_path = NULL;
        ZpcidFunction *f;
        guint32 fid;
        guint n_props = 0;

        g_assert_nonnull(managed);
        g_assert_cmpuint(g_variant_n_children(interfaces), ==, 1);
        g_assert_true(g_variant_lookup(managed, "Fid", "u", &fid));
        expected_path = g_strdup_printf(ZPCID_DBUS_FUNCTIONS_PATH "/%08x", fid);
        g_assert_cmpstr(path, ==, expected_path);

        /* The cached dict of GetManagedObjects, GetAll and the introspection data agree. */
        for (guint i = 0; info->properties[i] != NULL; i++) {
            const char *name = info->properties[i]->name;
            g_autoptr(GVariant) a = g_variant_lookup_value(managed, name, NULL);
            g_autoptr(GVariant) b = g_variant_lookup_value(all, name, NULL);

            g_assert_nonnull(a);
            g_assert_nonnull(b);
            g_assert_true(g_variant_equal(a, b));
            g_assert_cmpstr(g_variant_get_type_string(a), ==, info->properties[i]->signature);
            n_props++;
        }
        g_assert_cmpuint(g_variant_n_children(managed), ==, n_props);
        g_assert_cmpuint(g_variant_n_children(all), ==, n_props);

        /* And they are what the core reads from the tree. */
        f = zpcid_inventory_lookup_fid(inventory, fid);
        g_assert_nonnull(f);
        local = g_variant_ref_sink(zpcid_function_to_variant(f, NULL));
        for (guint i = 0; info->properties[i] != NULL; i++) {
            const char *name = info->properties[i]->name;
            g_autoptr(GVariant) a = g_variant_lookup_value(managed, name, NULL);
            g_autoptr(GVariant) b = g_variant_lookup_value(local, name, NULL);
            g_assert_true(g_variant_equal(a, b));
        }
        n++;
    }
    g_assert_cmpuint(n, ==, zpcid_inventory_get_count(inventory));

    /* Introspection of a function names exactly the interfaces zpcid offers. */
    {
        g_autofree char *fpath = resolve(env, ADDR_ISM);
        g_autoptr(GVariant) xml = call_ok(env, fpath, "org.freedesktop.DBus.Introspectable",
                                          "Introspect", NULL);
        const char *text;
        g_autoptr(GDBusNodeInfo) node = NULL;
        GDBusInterfaceInfo *iface;

        g_variant_get(xml, "(&s)", &text);
        node = g_dbus_node_info_new_for_xml(text, NULL);
        g_assert_nonnull(node);
        iface = g_dbus_node_info_lookup_interface(node, ZPCID_DBUS_IFACE_FUNCTION);
        g_assert_nonnull(iface);
        for (guint i = 0; info->properties[i] != NULL; i++)
            g_assert_nonnull(g_dbus_interface_info_lookup_property(iface,
                                                                   info->properties[i]->name));
        g_assert_nonnull(g_dbus_interface_info_lookup_method(iface, "GetHostdevXml"));
    }
    env_free(env);
}

static void
test_resolve(void)
{
    Env *env = env_new(ENV_DEFAULT);
    g_autofree char *by_address = resolve(env, ADDR_IDLE_NVME);
    g_autofree char *by_uid = resolve(env, "uid:0xa");
    g_autofree char *fid = NULL;
    g_autofree char *by_fid = NULL;
    g_autofree char *message = NULL;
    g_autoptr(GVariant) props = get_all(env, by_address, ZPCID_DBUS_IFACE_FUNCTION);
    guint32 fid_value;

    g_assert_cmpstr(by_address, ==, by_uid);
    g_assert_true(g_variant_lookup(props, "Fid", "u", &fid_value));
    fid = g_strdup_printf("0x%x", fid_value);
    by_fid = resolve(env, fid);
    g_assert_cmpstr(by_fid, ==, by_address);

    message = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "ResolveFunction",
                         g_variant_new("(sa{sv})", "0xdeadbeef", NULL),
                         ZPCID_DBUS_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(message, "0xdeadbeef"));
    env_free(env);
}

/* Every method refuses unknown options, wrong option types and malformed specs with
 * InvalidArgument, before asking anybody for authorization. */
static void
test_invalid_arguments(void)
{
    Env *env = env_new(ENV_DEFAULT);
    g_autofree char *fpath = resolve(env, ADDR_IDLE_NVME);
    const char *bogus_options[] = {
        "{'bogus': <1>}",
        "{'auth.no_user_interaction': <'yes'>}",
        "{'auth.bogus': <true>}",
    };
    const char *bad_specs[] = {"0x", "uid:0", "uid:0x10000", "0005:00:00", "fid:zz", "007",
                               "0005:00:00.0/../..", ""};

    for (gsize i = 0; i < G_N_ELEMENTS(bogus_options); i++) {
        g_autoptr(GVariant) opts = g_variant_parse(G_VARIANT_TYPE_VARDICT, bogus_options[i],
                                                   NULL, NULL, NULL);
        const char *specs[] = {ADDR_IDLE_NVME, NULL};
        struct {
            const char *path, *iface, *method;
            GVariant *params;
        } calls[] = {
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Check", g_variant_new("(@a{sv})", opts)},
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "ResolveFunction",
             g_variant_new("(s@a{sv})", ADDR_IDLE_NVME, opts)},
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Bind",
             g_variant_new("(^as@a{sv})", specs, opts)},
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Unbind",
             g_variant_new("(^as@a{sv})", specs, opts)},
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "GetDomainXml",
             g_variant_new("(^as@a{sv})", specs, opts)},
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "AttachToDomain",
             g_variant_new("(s^as@a{sv})", "zpcid-guest", specs, opts)},
            {ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "DetachFromDomain",
             g_variant_new("(s^as@a{sv})", "zpcid-guest", specs, opts)},
            {fpath, ZPCID_DBUS_IFACE_FUNCTION, "Bind", g_variant_new("(@a{sv})", opts)},
            {fpath, ZPCID_DBUS_IFACE_FUNCTION, "Unbind", g_variant_new("(@a{sv})", opts)},
            {fpath, ZPCID_DBUS_IFACE_FUNCTION, "GetHostdevXml", g_variant_new("(@a{sv})", opts)},
        };

        for (gsize j = 0; j < G_N_ELEMENTS(calls); j++) {
            g_autofree char *message = NULL;
            g_test_message("%s %s", calls[j].method, bogus_options[i]);
            message = call_fails(env, calls[j].path, calls[j].iface, calls[j].method,
                                 calls[j].params, ERR_INVALID);
        }
    }

    for (gsize i = 0; i < G_N_ELEMENTS(bad_specs); i++) {
        const char *specs[] = {bad_specs[i], NULL};
        const char *methods[] = {"Bind", "Unbind", "GetDomainXml"};
        g_autofree char *message = NULL;

        g_test_message("spec “%s”", bad_specs[i]);
        message = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "ResolveFunction",
                             g_variant_new("(sa{sv})", bad_specs[i], NULL), ERR_INVALID);
        for (gsize j = 0; j < G_N_ELEMENTS(methods); j++) {
            g_free(message);
            message = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, methods[j],
                                 g_variant_new("(^asa{sv})", specs, NULL), ERR_INVALID);
        }
        g_free(message);
        message = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "AttachToDomain",
                             g_variant_new("(s^asa{sv})", "zpcid-guest", specs, NULL),
                             ERR_INVALID);
        g_free(message);
        message = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "DetachFromDomain",
                             g_variant_new("(s^asa{sv})", "zpcid-guest", specs, NULL),
                             ERR_INVALID);
    }

    /* No function, the same function twice, an empty domain name. */
    {
        const char *none[] = {NULL};
        const char *twice[] = {ADDR_IDLE_NVME, "uid:0xa", NULL};
        const char *one[] = {ADDR_IDLE_NVME, NULL};
        g_autofree char *m1 = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Bind",
                                         g_variant_new("(^asa{sv})", none, NULL), ERR_INVALID);
        g_autofree char *m3 = NULL;
        g_autofree char *m2 = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER,
                                         "GetDomainXml", g_variant_new("(^asa{sv})", twice, NULL),
                                         ERR_INVALID);
        m3 = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "AttachToDomain",
                        g_variant_new("(s^asa{sv})", "", one, NULL), ERR_INVALID);
        g_assert_nonnull(strstr(m1, "No function"));
        g_assert_nonnull(strstr(m2, "twice"));
        g_assert_nonnull(strstr(m3, "empty"));
    }
    env_free(env);
}

static void
test_domain_xml(void)
{
    Env *env = env_new(ENV_DEFAULT);
    const char *one[] = {ADDR_IDLE_NVME, NULL};
    g_autofree char *standby_fid = NULL;
    const char *standby[] = {NULL, NULL};
    g_autofree char *fpath = resolve(env, ADDR_IDLE_NVME);
    g_autofree char *guest_path = g_build_filename(g_getenv("ZPCID_TEST_DATA"), "domxml",
                                                   "domains", "guest1.xml", NULL);
    g_autofree char *guest = NULL;
    g_autoptr(GVariant) reply = NULL;
    g_autoptr(GVariant) hostdev = NULL;
    const char *xml;
    const char *fragment;
    GVariantBuilder b;

    standby_fid = find_standby(env, NULL);
    standby[0] = standby_fid;

    /* Fragments, mirrored ids by default (the host has UID checking). */
    reply = manager_call(env, "GetDomainXml", g_variant_new("(^asa{sv})", one, NULL));
    g_variant_get(reply, "(&s)", &xml);
    g_assert_nonnull(strstr(xml, "<hostdev"));
    g_assert_nonnull(strstr(xml, "uid=\"0x000a\""));
    g_assert_nonnull(strstr(xml, "domain=\"0x000a\""));
    hostdev = call_ok(env, fpath, ZPCID_DBUS_IFACE_FUNCTION, "GetHostdevXml",
                      g_variant_new("(a{sv})", NULL));
    g_variant_get(hostdev, "(&s)", &fragment);
    g_assert_cmpstr(fragment, ==, xml);
    g_clear_pointer(&reply, g_variant_unref);

    /* Explicit ids. */
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_POLICY, g_variant_new_string("explicit"));
    g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_IDS,
                          g_variant_new_parsed("[(uint32 7, uint32 0x77)]"));
    reply = manager_call(env, "GetDomainXml", g_variant_new("(^as@a{sv})", one,
                                                            g_variant_builder_end(&b)));
    g_variant_get(reply, "(&s)", &xml);
    g_assert_nonnull(strstr(xml, "uid=\"0x0007\""));
    g_assert_nonnull(strstr(xml, "fid=\"0x00000077\""));
    g_clear_pointer(&reply, g_variant_unref);

    /* Merged into a whole domain. */
    g_assert_true(g_file_get_contents(guest_path, &guest, NULL, NULL));
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_MERGE, g_variant_new_string(guest));
    reply = manager_call(env, "GetDomainXml", g_variant_new("(^as@a{sv})", one,
                                                            g_variant_builder_end(&b)));
    g_variant_get(reply, "(&s)", &xml);
    g_assert_nonnull(strstr(xml, "<domain"));
    g_assert_nonnull(strstr(xml, "domain=\"0x000a\""));
    g_assert_nonnull(strstr(xml, ZPCID_LIBVIRT_METADATA_NS));
    g_clear_pointer(&reply, g_variant_unref);

    /* A new domain. */
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_NEW_DOMAIN, g_variant_new_string("zpcid-new"));
    reply = manager_call(env, "GetDomainXml", g_variant_new("(^as@a{sv})", one,
                                                            g_variant_builder_end(&b)));
    g_variant_get(reply, "(&s)", &xml);
    g_assert_nonnull(strstr(xml, "<name>zpcid-new</name>"));
    g_clear_pointer(&reply, g_variant_unref);

    /* Refusals. */
    {
        g_autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL, *m5 = NULL;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_POLICY, g_variant_new_string("explicit"));
        m1 = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "GetDomainXml",
                        g_variant_new("(^as@a{sv})", one, g_variant_builder_end(&b)),
                        ERR_INVALID);
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_POLICY, g_variant_new_string("bogus"));
        m2 = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "GetDomainXml",
                        g_variant_new("(^as@a{sv})", one, g_variant_builder_end(&b)),
                        ERR_INVALID);
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_MERGE, g_variant_new_string(guest));
        g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_NEW_DOMAIN, g_variant_new_string("x"));
        m3 = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "GetDomainXml",
                        g_variant_new("(^as@a{sv})", one, g_variant_builder_end(&b)),
                        ERR_INVALID);
        m4 = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "GetDomainXml",
                        g_variant_new("(^asa{sv})", standby, NULL), ZPCID_DBUS_ERROR_NOT_READY);
        g_assert_nonnull(strstr(m4, "standby"));
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_MERGE,
                              g_variant_new_string("<domain><os><type arch='x86_64'>hvm</type>"
                                                   "</os></domain>"));
        m5 = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "GetDomainXml",
                        g_variant_new("(^as@a{sv})", one, g_variant_builder_end(&b)),
                        ZPCID_DBUS_ERROR_UNSUPPORTED);
    }
    env_free(env);
}

static gboolean
strv_variant_equal(GVariant *v, const char *const *expected)
{
    g_autofree const char **strv = g_variant_get_strv(v, NULL);
    return g_strv_equal(strv, expected);
}

/* libvirt: the Domains property, a domain's definition as merge target, attach and detach. */
static void
test_libvirt_domains(void)
{
    Env *env = env_new(ENV_GUEST);
    g_autofree char *used = resolve(env, ADDR_NET_UP);
    g_autofree char *unused = resolve(env, ADDR_IDLE_NVME);
    const char *guest[] = {"zpcid-guest", NULL};
    const char *nothing[] = {NULL};
    const char *one[] = {ADDR_IDLE_NVME, NULL};
    const char *used_spec[] = {ADDR_NET_UP, NULL};
    g_autoptr(GVariant) props = NULL;
    g_autoptr(GVariant) domains = NULL;
    g_autoptr(GVariant) reply = NULL;
    g_autoptr(GError) error = NULL;
    const char *xml;
    GVariantBuilder b;

    /* Read in the background after start: wait until it shows. */
    for (guint i = 0; i < 200; i++) {
        g_clear_pointer(&props, g_variant_unref);
        g_clear_pointer(&domains, g_variant_unref);
        props = get_all(env, used, ZPCID_DBUS_IFACE_FUNCTION);
        domains = g_variant_lookup_value(props, "Domains", G_VARIANT_TYPE_STRING_ARRAY);
        if (g_variant_n_children(domains) > 0)
            break;
        g_usleep(50 * 1000);
    }
    g_assert_true(strv_variant_equal(domains, guest));
    g_clear_pointer(&props, g_variant_unref);
    g_clear_pointer(&domains, g_variant_unref);
    props = get_all(env, unused, ZPCID_DBUS_IFACE_FUNCTION);
    domains = g_variant_lookup_value(props, "Domains", G_VARIANT_TYPE_STRING_ARRAY);
    g_assert_true(strv_variant_equal(domains, nothing));

    /* Merged into the guest's definition, fetched by name. */
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_DOMAIN, g_variant_new_string("zpcid-guest"));
    reply = manager_call(env, "GetDomainXml", g_variant_new("(^as@a{sv})", one,
                                                            g_variant_builder_end(&b)));
    g_variant_get(reply, "(&s)", &xml);
    g_assert_nonnull(strstr(xml, "<name>zpcid-guest</name>"));
    g_assert_nonnull(strstr(xml, "domain=\"0x000a\""));
    /* The guest's own device is kept as libvirt wrote it. */
    g_assert_nonnull(strstr(xml, "domain='0x0001'"));

    /* A function the guest does not use cannot be detached from it. */
    g_free(call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "DetachFromDomain",
                      g_variant_new("(s^asa{sv})", "zpcid-guest", one, NULL),
                      ZPCID_DBUS_ERROR_NOT_FOUND));
    g_free(call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "AttachToDomain",
                      g_variant_new("(s^asa{sv})", "zpcid-none", one, NULL),
                      ZPCID_DBUS_ERROR_NOT_FOUND));

    /* The test driver of libvirt 9 cannot hotplug (later ones can, live only): either the
     * device is attached, or libvirt's refusal reaches the caller. */
    g_clear_pointer(&reply, g_variant_unref);
    reply = call(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "AttachToDomain",
                 g_variant_new("(s^asa{sv})", "zpcid-guest", one, NULL), &error);
    if (reply == NULL) {
        g_autofree char *name = g_dbus_error_get_remote_error(error);
        g_test_message("AttachToDomain: %s", error->message);
        g_assert_true(g_str_equal(name, ZPCID_DBUS_ERROR_UNSUPPORTED) ||
                      g_str_equal(name, ZPCID_DBUS_ERROR_INVALID_ARG));
        g_clear_error(&error);
    }
    reply = call(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "DetachFromDomain",
                 g_variant_new("(s^asa{sv})", "zpcid-guest", used_spec, NULL), &error);
    if (reply == NULL) {
        g_autofree char *name = g_dbus_error_get_remote_error(error);
        g_test_message("DetachFromDomain: %s", error->message);
        g_assert_true(g_str_equal(name, ZPCID_DBUS_ERROR_UNSUPPORTED) ||
                      g_str_equal(name, ZPCID_DBUS_ERROR_INVALID_ARG));
        g_clear_error(&error);
    }
    env_free(env);
}

static gboolean
maps_library(GPid pid, const char *library)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/maps", (int)pid);
    g_autofree char *maps = NULL;

    g_assert_true(g_file_get_contents(path, &maps, NULL, NULL));
    return strstr(maps, library) != NULL;
}

/* The one zpcid-libvirt-helper of @daemon, with @wait waiting for it to appear; 0 if there is
 * none. */
static GPid
helper_of(GPid daemon, gboolean wait)
{
    for (guint i = 0; i < 200; i++) {
        g_autoptr(GArray) children = test_children_of(daemon);

        if (children->len > 0) {
            GPid helper = g_array_index(children, GPid, 0);
            g_autofree char *exe_link = g_strdup_printf("/proc/%d/exe", (int)helper);
            g_autofree char *exe = g_file_read_link(exe_link, NULL);

            g_assert_cmpuint(children->len, ==, 1);
            g_assert_nonnull(exe);
            g_assert_true(g_str_has_suffix(exe, "/" ZPCID_LIBVIRT_HELPER_PROGRAM));
            return helper;
        }
        if (!wait)
            return 0;
        g_usleep(20 * 1000);
    }
    g_error("zpcid started no libvirt helper");
}

static void
fetch_guest_xml(Env *env)
{
    const char *one[] = {ADDR_IDLE_NVME, NULL};
    g_autoptr(GVariant) reply = NULL;
    GVariantBuilder b;
    const char *xml;

    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_DOMAIN, g_variant_new_string("zpcid-guest"));
    reply = manager_call(env, "GetDomainXml",
                         g_variant_new("(^as@a{sv})", one, g_variant_builder_end(&b)));
    g_variant_get(reply, "(&s)", &xml);
    g_assert_nonnull(strstr(xml, "<name>zpcid-guest</name>"));
}

/* libvirt's client runs in zpcid-libvirt-helper, never in the daemon: started on first use,
 * started again when it died (the caller does not notice), let go when unused. */
static void
test_libvirt_helper(void)
{
    Env *env;
    GPid daemon, helper, again;

    g_setenv(ZPCID_ENV_LIBVIRT_HELPER_IDLE_MS, "500", TRUE);
    env = env_new(ENV_GUEST);
    g_unsetenv(ZPCID_ENV_LIBVIRT_HELPER_IDLE_MS);
    daemon = (GPid)atoi(g_subprocess_get_identifier(env->daemon));

    fetch_guest_xml(env);
    helper = helper_of(daemon, TRUE);
    g_assert_true(maps_library(helper, "/libvirt.so"));
    g_assert_false(maps_library(daemon, "/libvirt.so"));

    /* Killed between two calls: the next call gets its answer from a new helper, whether or
     * not the daemon saw the death before the call came (that is a race: several rounds). */
    for (guint round = 0; round < 6; round++) {
        g_assert_cmpint(kill(helper, SIGKILL), ==, 0);
        fetch_guest_xml(env);
        again = helper_of(daemon, TRUE);
        g_assert_cmpint(again, !=, helper);
        helper = again;
    }

    /* Unused for the idle time: gone, and started again by the next call. */
    for (guint i = 0; i < 100 && helper_of(daemon, FALSE) != 0; i++)
        g_usleep(50 * 1000);
    g_assert_cmpint(helper_of(daemon, FALSE), ==, 0);
    fetch_guest_xml(env);
    g_assert_cmpint(helper_of(daemon, TRUE), !=, again);
    g_assert_false(maps_library(daemon, "/libvirt.so"));
    g_assert_true(daemon_alive(env));
    env_free(env);
}

/* Binding through the bus moves links in the tree (simulated kernel), and the properties show
 * the new state when the reply arrives. */
static void
test_bind_unbind(void)
{
    Env *env;
    g_autofree char *path = NULL;
    g_autoptr(GVariant) reply = NULL;
    g_autoptr(GVariant) props = NULL;
    g_autoptr(GVariant) changed = NULL;
    g_autofree char *link = NULL;
    g_autofree char *target = NULL;
    const char *one[] = {ADDR_IDLE_NVME, NULL};
    const char *busy[] = {ADDR_NET_UP, NULL};
    g_autofree const char **paths = NULL;
    const char *s;
    gboolean b;
    GVariantBuilder opts;

    if (!simkernel_available()) {
        g_test_skip("The simulated kernel (tests/simkernel) is not built.");
        return;
    }
    env = env_new(ENV_DEFAULT);
    path = resolve(env, ADDR_IDLE_NVME);
    flush_signals(env);

    reply = manager_call(env, "Bind", g_variant_new("(^asa{sv})", one, NULL));
    g_variant_get(reply, "(^a&o)", &paths);
    g_assert_cmpuint(g_strv_length((char **)paths), ==, 1);
    g_assert_cmpstr(paths[0], ==, path);
    props = get_all(env, path, ZPCID_DBUS_IFACE_FUNCTION);
    g_assert_true(g_variant_lookup(props, "Driver", "&s", &s));
    g_assert_cmpstr(s, ==, "vfio-pci");
    g_assert_true(g_variant_lookup(props, "State", "&s", &s));
    g_assert_cmpstr(s, ==, "vfio");
    g_assert_true(g_variant_lookup(props, "HostDriver", "&s", &s));
    g_assert_cmpstr(s, ==, "nvme");
    /* The change was announced before the reply. */
    changed = wait_signal(env, "PropertiesChanged", path, "Driver");
    link = g_build_filename(env->host, "sys/bus/pci/devices", ADDR_IDLE_NVME, "driver", NULL);
    target = g_file_read_link(link, NULL);
    g_assert_nonnull(target);
    g_assert_true(g_str_has_suffix(target, "/vfio-pci"));

    /* Unbind gives it back to nvme. */
    g_clear_pointer(&reply, g_variant_unref);
    g_clear_pointer(&props, g_variant_unref);
    reply = manager_call(env, "Unbind", g_variant_new("(^asa{sv})", one, NULL));
    props = get_all(env, path, ZPCID_DBUS_IFACE_FUNCTION);
    g_assert_true(g_variant_lookup(props, "Driver", "&s", &s));
    g_assert_cmpstr(s, ==, "nvme");
    g_assert_true(g_variant_lookup(props, "HostDriver", "&s", &s));
    g_assert_cmpstr(s, ==, "");

    /* Function.Bind: a dry run changes nothing; then persistent for real. */
    g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&opts, "{sv}", ZPCID_OPTION_DRY_RUN, g_variant_new_boolean(TRUE));
    g_clear_pointer(&reply, g_variant_unref);
    reply = call_ok(env, path, ZPCID_DBUS_IFACE_FUNCTION, "Bind",
                    g_variant_new("(@a{sv})", g_variant_builder_end(&opts)));
    g_free(target);
    target = function_string(env, ADDR_IDLE_NVME, "Driver");
    g_assert_cmpstr(target, ==, "nvme");
    g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&opts, "{sv}", ZPCID_OPTION_PERSISTENT, g_variant_new_boolean(TRUE));
    g_clear_pointer(&reply, g_variant_unref);
    reply = call_ok(env, path, ZPCID_DBUS_IFACE_FUNCTION, "Bind",
                    g_variant_new("(@a{sv})", g_variant_builder_end(&opts)));
    g_clear_pointer(&props, g_variant_unref);
    props = get_all(env, path, ZPCID_DBUS_IFACE_FUNCTION);
    g_assert_true(g_variant_lookup(props, "Driver", "&s", &s));
    g_assert_cmpstr(s, ==, "vfio-pci");
    g_assert_true(g_variant_lookup(props, "Persistent", "b", &b));
    g_assert_true(b);
    g_clear_pointer(&reply, g_variant_unref);
    reply = call_ok(env, path, ZPCID_DBUS_IFACE_FUNCTION, "Unbind",
                    g_variant_new("(a{sv})", NULL));
    g_clear_pointer(&props, g_variant_unref);
    props = get_all(env, path, ZPCID_DBUS_IFACE_FUNCTION);
    g_assert_true(g_variant_lookup(props, "Driver", "&s", &s));
    g_assert_cmpstr(s, ==, "nvme");
    g_assert_true(g_variant_lookup(props, "Persistent", "b", &b));
    g_assert_false(b);

    /* A function in use is refused and left alone. */
    g_free(call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Bind",
                      g_variant_new("(^asa{sv})", busy, NULL), ZPCID_DBUS_ERROR_BUSY));
    g_free(target);
    target = function_string(env, ADDR_NET_UP, "Driver");
    g_assert_cmpstr(target, ==, "mlx5_core");
    env_free(env);
}

static void
on_bind_reply(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

    g_assert_no_error(error);
    *(gboolean *)user_data = TRUE;
}

static gboolean
is_true(gpointer data)
{
    return *(gboolean *)data;
}

/* The uevents of a function that a bind is moving are left to the binder, which reads the
 * function once the move is done: in between, the bus shows the function as it was, not
 * the unbound state the uevent of the unbind step announces; after the reply, as it is. */
static void
test_uevent_during_bind(void)
{
    Env *env;
    g_autofree char *link = NULL;
    g_autofree char *driver = NULL;
    g_autofree char *state = NULL;
    g_autoptr(GVariant) check = NULL;
    const char *one[] = {ADDR_IDLE_NVME, NULL};
    gboolean done = FALSE;
    gint64 deadline = g_get_monotonic_time() + TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;

    if (!simkernel_available()) {
        g_test_skip("The simulated kernel (tests/simkernel) is not built.");
        return;
    }
    env = env_new(ENV_DEFAULT);
    link = g_build_filename(env->host, "sys/bus/pci/devices", ADDR_IDLE_NVME, "driver", NULL);
    /* Long enough for the calls below, between the unbind step and the probe. */
    test_write_file(env->host, "fixture/faults", "* probe delay 1500\n", -1);
    g_dbus_connection_call(env->conn, ZPCID_DBUS_NAME, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER,
                           "Bind", g_variant_new("(^asa{sv})", one, NULL), NULL,
                           G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, on_bind_reply, &done);
    while (g_file_test(link, G_FILE_TEST_IS_SYMLINK)) {
        g_assert_false(done);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_main_context_iteration(NULL, FALSE);
        g_usleep(2000);
    }
    send_uevent(env, "unbind", "/devices/pci000a:00/" ADDR_IDLE_NVME, "SUBSYSTEM=pci",
                "PCI_SLOT_NAME=" ADDR_IDLE_NVME, NULL);
    /* Check takes in the uevents waiting on the socket before it answers. */
    check = manager_call(env, "Check", g_variant_new("(a{sv})", NULL));
    driver = function_string(env, ADDR_IDLE_NVME, "Driver");
    g_assert_false(done);
    g_assert_cmpstr(driver, ==, "nvme");

    g_assert_true(wait_until(is_true, &done));
    g_free(driver);
    driver = function_string(env, ADDR_IDLE_NVME, "Driver");
    state = function_string(env, ADDR_IDLE_NVME, "State");
    g_assert_cmpstr(driver, ==, "vfio-pci");
    g_assert_cmpstr(state, ==, "vfio");
    env_free(env);
}

/* The uevents of one function that wait together are one read of it: a driver change sends
 * "unbind", the remove of its disk and "bind". Counted by the opens of one attribute that
 * only the function's read opens; zpcid is stopped while they are sent, so that it finds
 * them all waiting. */
static void
test_uevent_burst(void)
{
    Env *env = env_new(ENV_DEFAULT);
    g_autofree char *attr =
        g_build_filename(env->host, "sys/bus/pci/devices", ADDR_IDLE_NVME, "pchid", NULL);
    g_autoptr(GVariant) check = NULL;
    const char *devpath = "/devices/pci000a:00/" ADDR_IDLE_NVME;
    struct inotify_event *event;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    guint opens = 0;
    ssize_t len;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    /* The name comes before the scan: a call returns once the scan's own reads are done. */
    g_variant_unref(manager_call(env, "Check", g_variant_new("(a{sv})", NULL)));
    /* With the closes in between, inotify does not merge the opens into one event. */
    g_assert_cmpint(inotify_add_watch(fd, attr, IN_OPEN | IN_CLOSE_NOWRITE), >=, 0);
    g_subprocess_send_signal(env->daemon, SIGSTOP);
    send_uevent(env, "unbind", devpath, "SUBSYSTEM=pci", "PCI_SLOT_NAME=" ADDR_IDLE_NVME, NULL);
    send_uevent(env, "remove", "/devices/pci000a:00/" ADDR_IDLE_NVME "/nvme/nvme0/nvme0n1",
                "SUBSYSTEM=block", NULL);
    send_uevent(env, "bind", devpath, "SUBSYSTEM=pci", "DRIVER=nvme",
                "PCI_SLOT_NAME=" ADDR_IDLE_NVME, NULL);
    g_subprocess_send_signal(env->daemon, SIGCONT);
    /* Check takes in the uevents waiting on the socket before it answers. */
    check = manager_call(env, "Check", g_variant_new("(a{sv})", NULL));
    while ((len = read(fd, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + len; p += sizeof(*event) + event->len) {
            event = (struct inotify_event *)p;
            opens += (event->mask & IN_OPEN) != 0;
        }
    }
    close(fd);
    g_test_message("opens %u", opens);
    g_assert_cmpuint(opens, ==, 1);
    env_free(env);
}

/* Kernel changes reach the bus: a new function, a driver change, a new interface on it, its
 * removal, a standby slot coming and going, and a module that decides the readiness. */
static void
test_uevents(void)
{
    Env *env = env_new(ENV_DEFAULT);
    const char *dev = "sys/devices/pci00f0:00/00f0:00:00.0";
    const char *devpath = "/devices/pci00f0:00/00f0:00:00.0";
    const char *path = ZPCID_DBUS_FUNCTIONS_PATH "/00ab0000";
    struct {
        const char *name, *value;
    } attrs[] = {
        {"function_id", "0x00ab0000\n"}, {"function_handle", "0x80000f00\n"},
        {"uid", "0xf0\n"},               {"uid_is_unique", "1\n"},
        {"pchid", "0x0123\n"},           {"pfgid", "0x05\n"},
        {"pft", "0x05\n"},               {"vfn", "0x0000\n"},
        {"port", "0\n"},                 {"vendor", "0x1014\n"},
        {"device", "0x04ed\n"},          {"subsystem_vendor", "0x1014\n"},
        {"subsystem_device", "0x04ed\n"}, {"class", "0x088000\n"},
        {"driver_override", "(null)\n"},
    };
    g_autoptr(GVariant) added = NULL;
    g_autoptr(GVariant) changed = NULL;
    g_autoptr(GVariant) removed = NULL;
    g_autoptr(GVariant) props = NULL;
    g_autoptr(GVariant) count = NULL;
    g_autoptr(GVariant) readiness = NULL;
    g_autoptr(GVariant) holders = NULL;
    g_autofree char *standby_path = NULL;
    g_autofree char *module = g_build_filename(env->host, "sys/module/kvm", NULL);
    g_autofree char *module_away = g_build_filename(env->tmp, "kvm", NULL);
    const char *object;
    const char *s;
    gboolean passthrough, interpretation;

    flush_signals(env);
    /* Hotplug: the function's directory, its bus link and its slot, then "add". */
    for (gsize i = 0; i < G_N_ELEMENTS(attrs); i++) {
        g_autofree char *rel = g_build_filename(dev, attrs[i].name, NULL);
        test_write_file(env->host, rel, attrs[i].value, -1);
    }
    host_symlink(env, "sys/bus/pci/devices/00f0:00:00.0", "../../../devices/pci00f0:00/00f0:00:00.0");
    /* With its own IOMMU group, as the kernel gives every zPCI function. */
    host_symlink(env, "sys/devices/pci00f0:00/00f0:00:00.0/iommu_group",
                 "../../../kernel/iommu_groups/99");
    host_symlink(env, "sys/kernel/iommu_groups/99/devices/00f0:00:00.0",
                 "../../../../devices/pci00f0:00/00f0:00:00.0");
    test_write_file(env->host, "sys/bus/pci/slots/00ab0000/power", "1\n", -1);
    test_write_file(env->host, "sys/bus/pci/slots/00ab0000/address", "00f0:00:00\n", -1);
    send_uevent(env, "add", devpath, "SUBSYSTEM=pci", "PCI_SLOT_NAME=00f0:00:00.0", NULL);
    added = wait_signal(env, "InterfacesAdded", path, NULL);
    {
        g_autoptr(GVariant) ifaces = g_variant_get_child_value(added, 1);
        g_autoptr(GVariant) fprops = g_variant_lookup_value(ifaces, ZPCID_DBUS_IFACE_FUNCTION,
                                                            G_VARIANT_TYPE_VARDICT);
        guint32 fid;
        g_assert_nonnull(fprops);
        g_assert_true(g_variant_lookup(fprops, "Fid", "u", &fid));
        g_assert_cmpuint(fid, ==, 0x00ab0000);
        g_assert_true(g_variant_lookup(fprops, "Address", "&s", &s));
        g_assert_cmpstr(s, ==, "00f0:00:00.0");
        g_assert_true(g_variant_lookup(fprops, "State", "&s", &s));
        g_assert_cmpstr(s, ==, "unbound");
    }
    count = wait_signal(env, "PropertiesChanged", ZPCID_DBUS_PATH, "FunctionCount");

    /* A driver binds: "bind" refreshes the function, one PropertiesChanged for all. */
    host_symlink(env, "sys/devices/pci00f0:00/00f0:00:00.0/driver", "../../../bus/pci/drivers/ism");
    host_symlink(env, "sys/bus/pci/drivers/ism/00f0:00:00.0",
                 "../../../../devices/pci00f0:00/00f0:00:00.0");
    send_uevent(env, "bind", devpath, "SUBSYSTEM=pci", "PCI_SLOT_NAME=00f0:00:00.0",
                "DRIVER=ism", NULL);
    changed = wait_signal(env, "PropertiesChanged", path, "Driver");
    {
        g_autoptr(GVariant) c = g_variant_get_child_value(changed, 1);
        g_assert_true(g_variant_lookup(c, "Driver", "&s", &s));
        g_assert_cmpstr(s, ==, "ism");
        g_assert_true(g_variant_lookup(c, "State", "&s", &s));
        g_assert_cmpstr(s, ==, "host");
        /* Exactly what changed, nothing that stayed. */
        g_assert_cmpuint(g_variant_n_children(c), ==, 2);
    }

    /* An interface appears on it: the net uevent refreshes the function it sits on. */
    test_write_file(env->host, "sys/devices/pci00f0:00/00f0:00:00.0/net/eth9/operstate", "down\n",
                    -1);
    host_symlink(env, "sys/class/net/eth9", "../../devices/pci00f0:00/00f0:00:00.0/net/eth9");
    send_uevent(env, "add", "/devices/pci00f0:00/00f0:00:00.0/net/eth9", "SUBSYSTEM=net",
                "INTERFACE=eth9", NULL);
    g_clear_pointer(&changed, g_variant_unref);
    changed = wait_signal(env, "PropertiesChanged", path, "Holders");
    {
        g_autoptr(GVariant) c = g_variant_get_child_value(changed, 1);
        holders = g_variant_lookup_value(c, "Holders", G_VARIANT_TYPE("a(ss)"));
        g_assert_cmpuint(g_variant_n_children(holders), ==, 1);
        g_variant_get_child(holders, 0, "(&s&s)", &s, NULL);
        g_assert_cmpstr(s, ==, "net");
    }

    /* Gone, slot and all: InterfacesRemoved. */
    host_remove(env, "sys/class/net/eth9");
    host_remove(env, "sys/bus/pci/drivers/ism/00f0:00:00.0");
    host_remove(env, "sys/bus/pci/devices/00f0:00:00.0");
    host_remove(env, "sys/devices/pci00f0:00");
    host_remove(env, "sys/bus/pci/slots/00ab0000");
    host_remove(env, "sys/kernel/iommu_groups/99");
    send_uevent(env, "remove", devpath, "SUBSYSTEM=pci", "PCI_SLOT_NAME=00f0:00:00.0", NULL);
    removed = wait_signal(env, "InterfacesRemoved", path, NULL);
    g_variant_get_child(removed, 0, "&o", &object);
    g_assert_cmpstr(object, ==, path);


    /* A standby function's slot goes away and comes back (slot uevents). */
    {
        g_autofree char *spec = find_standby(env, &standby_path);
        g_autofree char *slot = g_strdup_printf("sys/bus/pci/slots/%08x", (guint32)g_ascii_strtoull(spec, NULL, 16));
        g_autofree char *slot_dir = g_build_filename(env->host, slot, NULL);
        g_autofree char *slot_away = g_build_filename(env->tmp, "slot", NULL);
        g_autofree char *slot_devpath = g_strdup_printf("/%s", slot + strlen("sys"));
        g_autoptr(GVariant) gone = NULL;
        g_autoptr(GVariant) back = NULL;

        g_assert_cmpint(g_rename(slot_dir, slot_away), ==, 0);
        send_uevent(env, "remove", slot_devpath, NULL);
        gone = wait_signal(env, "InterfacesRemoved", standby_path, NULL);
        g_assert_cmpint(g_rename(slot_away, slot_dir), ==, 0);
        send_uevent(env, "add", slot_devpath, NULL);
        back = wait_signal(env, "InterfacesAdded", standby_path, NULL);
    }

    /* kvm unloaded: binding to vfio-pci still works, but without the zPCI KVM hook there is no
     * interpretation; loaded again: both verdicts hold. */
    g_assert_cmpint(g_rename(module, module_away), ==, 0);
    send_uevent(env, "remove", "/module/kvm", "SUBSYSTEM=module", NULL);
    readiness = wait_signal(env, "ReadinessChanged", ZPCID_DBUS_PATH, NULL);
    g_variant_get(readiness, "(bb)", &passthrough, &interpretation);
    g_assert_true(passthrough);
    g_assert_false(interpretation);
    props = get_all(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER);
    g_assert_true(g_variant_lookup(props, "InterpretationReady", "b", &interpretation));
    g_assert_false(interpretation);
    g_assert_cmpint(g_rename(module_away, module), ==, 0);
    send_uevent(env, "add", "/module/kvm", "SUBSYSTEM=module", NULL);
    g_clear_pointer(&readiness, g_variant_unref);
    readiness = wait_signal(env, "ReadinessChanged", ZPCID_DBUS_PATH, NULL);
    g_variant_get(readiness, "(bb)", &passthrough, &interpretation);
    g_assert_true(passthrough);
    g_assert_true(interpretation);

    /* Garbage on the socket is ignored; zpcid still answers. */
    {
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        strcpy(addr.sun_path, env->uevent_socket);
        g_assert_cmpint(sendto(fd, "libudev\0junk", 12, 0, (struct sockaddr *)&addr,
                               sizeof(addr)), ==, 12);
        close(fd);
        g_clear_pointer(&props, g_variant_unref);
        props = get_all(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER);
    }
    env_free(env);
}

typedef struct {
    const char *name;
    const char *path; /* NULL: the function's own object */
    const char *iface;
    const char *method;
    const char *action;
} Mutation;

/* Every call that needs authorization, with arguments that pass every other check. */
static GVariant *
mutation_params(const Mutation *m, gboolean interactive)
{
    const char *one[] = {ADDR_IDLE_NVME, NULL};
    const char *used[] = {ADDR_NET_UP, NULL};
    GVariantBuilder b;

    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    if (!interactive)
        g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_NO_USER_INTERACTION,
                              g_variant_new_boolean(TRUE));
    if (g_str_equal(m->method, "Bind") || g_str_equal(m->method, "Unbind"))
        g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_DRY_RUN, g_variant_new_boolean(TRUE));
    if (g_str_equal(m->method, "GetDomainXml"))
        g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_DOMAIN, g_variant_new_string("zpcid-guest"));
    if (g_str_equal(m->iface, ZPCID_DBUS_IFACE_FUNCTION))
        return g_variant_new("(@a{sv})", g_variant_builder_end(&b));
    if (g_str_equal(m->method, "AttachToDomain"))
        return g_variant_new("(s^as@a{sv})", "zpcid-guest", one, g_variant_builder_end(&b));
    if (g_str_equal(m->method, "DetachFromDomain"))
        return g_variant_new("(s^as@a{sv})", "zpcid-guest", used, g_variant_builder_end(&b));
    return g_variant_new("(^as@a{sv})", one, g_variant_builder_end(&b));
}

static const Mutation mutations[] = {
    {"Manager.Bind", ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Bind", ZPCID_POLKIT_ACTION_BIND},
    {"Manager.Unbind", ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Unbind",
     ZPCID_POLKIT_ACTION_UNBIND},
    {"Function.Bind", NULL, ZPCID_DBUS_IFACE_FUNCTION, "Bind", ZPCID_POLKIT_ACTION_BIND},
    {"Function.Unbind", NULL, ZPCID_DBUS_IFACE_FUNCTION, "Unbind", ZPCID_POLKIT_ACTION_UNBIND},
    {"AttachToDomain", ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "AttachToDomain",
     ZPCID_POLKIT_ACTION_MANAGE_DOMAINS},
    {"DetachFromDomain", ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "DetachFromDomain",
     ZPCID_POLKIT_ACTION_MANAGE_DOMAINS},
    {"GetDomainXml(domain)", ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "GetDomainXml",
     ZPCID_POLKIT_ACTION_MANAGE_DOMAINS},
};

/* Authorized: the call went past authorization. libvirt 9's test driver cannot hotplug, so
 * AttachToDomain and DetachFromDomain may end in libvirt's refusal, never in ours. */
static void
assert_passes(Env *env, const Mutation *m, const char *fpath)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = call(env, m->path != NULL ? m->path : fpath, m->iface, m->method,
                                     mutation_params(m, FALSE), &error);
    g_autofree char *name = NULL;

    if (reply != NULL)
        return;
    name = g_dbus_error_get_remote_error(error);
    g_test_message("%s: %s", m->name, error->message);
    g_assert_cmpstr(name, !=, ERR_NOT_AUTHORIZED);
    g_assert_true(g_str_has_suffix(m->name, "Domain"));
    g_assert_cmpstr(name, ==, ZPCID_DBUS_ERROR_UNSUPPORTED);
}

/* The details polkit gets name the function (fid, uid, address, pci-id) as the bus shows
 * it, and the domain for domain actions. */
static void
assert_details(Env *env, const Mutation *m, GVariant *checks)
{
    const char *spec = g_str_equal(m->method, "DetachFromDomain") ? ADDR_NET_UP : ADDR_IDLE_NVME;
    g_autofree char *path = resolve(env, spec);
    g_autoptr(GVariant) props = get_all(env, path, ZPCID_DBUS_IFACE_FUNCTION);
    g_autoptr(GVariant) details = NULL;
    g_autofree char *fid = NULL;
    g_autofree char *uid = NULL;
    g_autofree char *pci_id = NULL;
    const char *action;
    const char *value;
    guint32 fid_value, uid_value;
    gint64 vendor, device;

    g_variant_get_child(checks, 0, "(&s@a{ss}u)", &action, &details, NULL);
    g_assert_cmpstr(action, ==, m->action);
    g_assert_true(g_variant_lookup(props, "Fid", "u", &fid_value));
    g_assert_true(g_variant_lookup(props, "Uid", "u", &uid_value));
    g_assert_true(g_variant_lookup(props, "VendorId", "x", &vendor));
    g_assert_true(g_variant_lookup(props, "DeviceId", "x", &device));
    fid = g_strdup_printf("0x%08x", fid_value);
    uid = g_strdup_printf("0x%04x", uid_value);
    pci_id = g_strdup_printf("%04x:%04x", (guint)vendor, (guint)device);
    g_test_message("%s: polkit details fid %s uid %s pci-id %s", m->name, fid, uid, pci_id);
    g_assert_true(g_variant_lookup(details, ZPCID_POLKIT_DETAIL_FID, "&s", &value));
    g_assert_cmpstr(value, ==, fid);
    g_assert_true(g_variant_lookup(details, ZPCID_POLKIT_DETAIL_UID, "&s", &value));
    g_assert_cmpstr(value, ==, uid);
    g_assert_true(g_variant_lookup(details, ZPCID_POLKIT_DETAIL_ADDRESS, "&s", &value));
    g_assert_cmpstr(value, ==, spec);
    g_assert_true(g_variant_lookup(details, ZPCID_POLKIT_DETAIL_PCI_ID, "&s", &value));
    g_assert_cmpstr(value, ==, pci_id);
    if (g_str_equal(m->action, ZPCID_POLKIT_ACTION_MANAGE_DOMAINS)) {
        g_assert_true(g_variant_lookup(details, ZPCID_POLKIT_DETAIL_DOMAIN, "&s", &value));
        g_assert_cmpstr(value, ==, "zpcid-guest");
    } else {
        g_assert_false(g_variant_lookup(details, ZPCID_POLKIT_DETAIL_DOMAIN, "&s", &value));
    }
}

static void
test_polkit(void)
{
    Env *env;
    g_autofree char *fpath = NULL;
    const char *none[] = {NULL};
    const char *all[] = {ZPCID_POLKIT_ACTION_BIND, ZPCID_POLKIT_ACTION_UNBIND,
                         ZPCID_POLKIT_ACTION_MANAGE_DOMAINS, NULL};
    const char *bind_only[] = {ZPCID_POLKIT_ACTION_BIND, NULL};

    if (dbusmock_python() == NULL) {
        g_test_skip("python3-dbusmock is not installed.");
        return;
    }
    env = env_new(ENV_POLKIT | ENV_GUEST);
    fpath = resolve(env, ADDR_IDLE_NVME);

    /* polkit says no: every mutating call is refused, with or without interaction. Even
     * though the test runs as root: polkit, not the uid, decides. */
    polkit_allow(env, none);
    for (gsize i = 0; i < G_N_ELEMENTS(mutations); i++) {
        for (int interactive = 0; interactive < 2; interactive++) {
            const Mutation *m = &mutations[i];
            g_autofree char *message = NULL;

            g_test_message("%s refused (interactive %d)", m->name, interactive);
            message = call_fails(env, m->path != NULL ? m->path : fpath, m->iface, m->method,
                                 mutation_params(m, interactive), ERR_NOT_AUTHORIZED);
            g_assert_nonnull(strstr(message, "not authorized"));
        }
    }
    /* Reading stays open. */
    g_variant_unref(manager_call(env, "Check", g_variant_new("(a{sv})", NULL)));
    g_variant_unref(call_ok(env, fpath, ZPCID_DBUS_IFACE_FUNCTION, "GetHostdevXml",
                            g_variant_new("(a{sv})", NULL)));

    /* Each refusal above was one check of the right action, with interaction as asked. */
    {
        g_autoptr(GVariant) checks = polkit_take_checks(env);

        g_assert_cmpuint(g_variant_n_children(checks), ==, 2 * G_N_ELEMENTS(mutations));
        for (gsize i = 0; i < g_variant_n_children(checks); i++) {
            const char *action;
            guint32 flags;

            g_variant_get_child(checks, i, "(&s@a{ss}u)", &action, NULL, &flags);
            g_assert_cmpstr(action, ==, mutations[i / 2].action);
            /* POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION = 1 */
            g_assert_cmpuint(flags, ==, i % 2);
        }
    }

    /* polkit says yes: each passes, and polkit was told which functions and domain. */
    polkit_allow(env, all);
    for (gsize i = 0; i < G_N_ELEMENTS(mutations); i++) {
        g_autoptr(GVariant) checks = NULL;

        assert_passes(env, &mutations[i], fpath);
        checks = polkit_take_checks(env);
        g_assert_cmpuint(g_variant_n_children(checks), ==, 1);
        assert_details(env, &mutations[i], checks);
    }

    /* Overridden guards are a detail too, so that rules can refuse them. */
    {
        const char *one[] = {ADDR_IDLE_NVME, NULL};
        const char *guards[] = {"net", "block", NULL};
        g_autoptr(GVariant) checks = NULL;
        g_autoptr(GVariant) details = NULL;
        const char *value = NULL;
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_DRY_RUN, g_variant_new_boolean(TRUE));
        g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_ALLOW_GUARDS,
                              g_variant_new_strv(guards, -1));
        g_variant_unref(manager_call(env, "Bind", g_variant_new("(^as@a{sv})", one,
                                                                g_variant_builder_end(&b))));
        checks = polkit_take_checks(env);
        g_assert_cmpuint(g_variant_n_children(checks), ==, 1);
        g_variant_get_child(checks, 0, "(&s@a{ss}u)", NULL, &details, NULL);
        g_assert_true(g_variant_lookup(details, ZPCID_POLKIT_DETAIL_ALLOW_GUARDS, "&s", &value));
        g_assert_cmpstr(value, ==, "net,block");
    }

    /* Per action: bind allowed does not allow unbind. */
    polkit_allow(env, bind_only);
    assert_passes(env, &mutations[0], fpath);
    g_free(call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Unbind",
                      mutation_params(&mutations[1], FALSE), ERR_NOT_AUTHORIZED));

    /* zpcidctl shows the refusal as a sentence, and keeps the error name in JSON. */
    polkit_allow(env, none);
    {
        g_autoptr(CtlResult) human = run_ctl(env, "bind", "--dry-run", "--no-user-interaction",
                                             ADDR_IDLE_NVME);
        g_autoptr(CtlResult) json = run_ctl(env, "--json", "unbind", ADDR_IDLE_NVME);

        g_assert_cmpint(human->status, ==, 2);
        g_assert_true(g_str_has_prefix(human->err, "zpcidctl: You are not authorized to bind"));
        g_assert_null(strstr(human->err, "GDBus.Error"));
        g_assert_cmpint(json->status, ==, 2);
        g_assert_nonnull(strstr(json->out, "\"name\" : \"" ERR_NOT_AUTHORIZED "\""));
    }
    env_free(env);
}

/* Without polkit only root may change anything; anybody may read. */
static void
test_no_polkit(void)
{
    Env *env = env_new(ENV_GUEST);
    g_autofree char *fpath = resolve(env, ADDR_IDLE_NVME);

    /* The test runs as root (or skips the rest): root passes. */
    if (getuid() != 0) {
        g_free(call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Bind",
                          mutation_params(&mutations[0], FALSE), ERR_NOT_AUTHORIZED));
        env_free(env);
        g_test_skip("Running as another user than root needs root to start the test.");
        return;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(mutations); i++)
        assert_passes(env, &mutations[i], fpath);

    /* "nobody" through zpcidctl: reads work, every change is refused. */
    {
        g_autoptr(CtlResult) list = run_ctl_nobody(env, "list");
        g_autoptr(CtlResult) check = run_ctl_nobody(env, "--json", "check");
        const char *const cases[][8] = {
            {"--json", "bind", "--dry-run", ADDR_IDLE_NVME, NULL},
            {"--json", "unbind", "--dry-run", ADDR_IDLE_NVME, NULL},
            {"--json", "attach", "zpcid-guest", ADDR_IDLE_NVME, NULL},
            {"--json", "detach", "zpcid-guest", ADDR_NET_UP, NULL},
            {"--json", "xml", "--domain", "zpcid-guest", ADDR_IDLE_NVME, NULL},
        };

        g_assert_cmpint(list->status, ==, 0);
        g_assert_nonnull(strstr(list->out, ADDR_IDLE_NVME));
        g_assert_cmpint(check->status, ==, 0);
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
            g_autoptr(CtlResult) r = run_ctl_full(env, TRUE, cases[i]);
            g_test_message("nobody: %s → %s", cases[i][1], r->out);
            g_assert_cmpint(r->status, ==, 2);
            g_assert_nonnull(strstr(r->out, "\"name\" : \"" ERR_NOT_AUTHORIZED "\""));
        }
    }
    /* And the Function methods, through gdbus. */
    for (gsize i = 2; i < 4; i++) {
        g_autoptr(GSubprocessLauncher) launcher = launcher_new(
            G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, TRUE);
        g_autofree char *method = g_strdup_printf(ZPCID_DBUS_IFACE_FUNCTION ".%s",
                                                  mutations[i].method);
        const char *argv[] = {"gdbus", "call", "--address", env->bus_address, "--dest",
                              ZPCID_DBUS_NAME, "--object-path", fpath, "--method", method,
                              "{'dry-run': <true>}", NULL};
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;

        p = g_subprocess_launcher_spawnv(launcher, argv, &error);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &out, &err, &error));
        g_assert_false(g_subprocess_get_successful(p));
        g_assert_nonnull(strstr(err, ERR_NOT_AUTHORIZED));
    }
    env_free(env);
}

static void
test_zpcidctl(void)
{
    Env *env = env_new(ENV_DEFAULT);
    g_autoptr(CtlResult) check = run_ctl(env, "check");
    g_autoptr(CtlResult) check_json = run_ctl(env, "--json", "check");
    g_autoptr(CtlResult) check_tree = run_ctl(env, "--json", "--host-root", env->host, "check");
    g_autoptr(CtlResult) list = run_ctl(env, "list", "--json");
    g_autoptr(CtlResult) list_tree = run_ctl(env, "list", "--json", "--host-root", env->host);
    g_autoptr(CtlResult) show = run_ctl(env, "show", ADDR_ISM, "--json");
    g_autoptr(CtlResult) show_tree = run_ctl(env, "show", ADDR_ISM, "--json", "--host-root",
                                             env->host);
    g_autoptr(CtlResult) xml = run_ctl(env, "xml", ADDR_IDLE_NVME);
    g_autoptr(CtlResult) xml_json = run_ctl(env, "--json", "xml", ADDR_IDLE_NVME);
    g_autoptr(CtlResult) attach = run_ctl(env, "attach", "test", ADDR_IDLE_NVME);
    g_autoptr(CtlResult) bad = run_ctl(env, "--json", "show", "uid:0");
    g_autoptr(CtlResult) usage = run_ctl(env, "bind", "--host-root", env->host, ADDR_ISM);
    g_autoptr(CtlResult) misplaced = run_ctl(env, "list", "--dry-run");

    /* The daemon and the tree read directly give the same answers. */
    g_assert_cmpint(check->status, ==, 0);
    g_assert_nonnull(strstr(check->out, "Passthrough:"));
    g_assert_cmpstr(check_json->out, ==, check_tree->out);
    g_assert_cmpint(list->status, ==, 0);
    g_assert_cmpstr(list->out, ==, list_tree->out);
    g_assert_cmpstr(show->out, ==, show_tree->out);
    g_assert_true(g_str_has_prefix(xml->out, "<hostdev"));
    g_assert_nonnull(strstr(xml_json->out, "\"xml\" : \"<hostdev"));
    /* test:///default's guest is an i686 one: zpcid refuses it with a reason. */
    g_assert_cmpint(attach->status, ==, 2);
    g_assert_nonnull(strstr(attach->err, "s390x"));
    g_assert_cmpint(bad->status, ==, 2);
    g_assert_nonnull(strstr(bad->out, ERR_INVALID));
    g_assert_null(strstr(bad->out, "GDBus.Error"));
    g_assert_cmpint(usage->status, ==, 2);
    g_assert_nonnull(strstr(usage->err, "needs the zpcid daemon"));
    g_assert_cmpint(misplaced->status, ==, 2);

    if (simkernel_available()) {
        g_autoptr(CtlResult) bind = run_ctl(env, "bind", ADDR_IDLE_NVME);
        g_autoptr(CtlResult) after = run_ctl(env, "show", ADDR_IDLE_NVME);
        g_autoptr(CtlResult) unbind = run_ctl(env, "--json", "unbind", ADDR_IDLE_NVME);

        g_assert_cmpint(bind->status, ==, 0);
        g_assert_nonnull(strstr(bind->out, "is bound to “vfio-pci”"));
        g_assert_nonnull(strstr(after->out, "vfio-pci"));
        g_assert_cmpint(unbind->status, ==, 0);
        g_assert_nonnull(strstr(unbind->out, "\"driver\" : \"nvme\""));
    }
    if (simkernel_available()) {
        /* Several functions: each one as it is now, in the order of the request. */
        g_autoptr(CtlResult) bind = run_ctl(env, "--json", "bind", ADDR_IDLE_NVME, ADDR_ISM);
        g_autoptr(CtlResult) unbind = run_ctl(env, "--json", "unbind", ADDR_ISM, ADDR_IDLE_NVME);
        const char *nvme = strstr(bind->out, "\"address\" : \"" ADDR_IDLE_NVME "\"");
        const char *ism = strstr(bind->out, "\"address\" : \"" ADDR_ISM "\"");

        g_assert_cmpint(bind->status, ==, 0);
        g_assert_true(nvme != NULL && ism != NULL && nvme < ism);
        g_assert_null(strstr(bind->out, "\"driver\" : \"nvme\""));
        g_assert_null(strstr(bind->out, "\"driver\" : \"ism\""));
        g_assert_cmpint(unbind->status, ==, 0);
        nvme = strstr(unbind->out, "\"driver\" : \"nvme\"");
        ism = strstr(unbind->out, "\"driver\" : \"ism\"");
        g_assert_true(nvme != NULL && ism != NULL && ism < nvme);
    }
    if (simkernel_available()) {
        /* --owner: an unbind for another owner leaves the function where it is. */
        g_autoptr(CtlResult) bind = run_ctl(env, "bind", "--owner", "script:42", ADDR_IDLE_NVME);
        g_autoptr(CtlResult) shown = run_ctl(env, "--json", "show", ADDR_IDLE_NVME);
        g_autoptr(CtlResult) other = run_ctl(env, "unbind", "--owner", "script:7", ADDR_IDLE_NVME);
        g_autoptr(CtlResult) still = run_ctl(env, "--json", "show", ADDR_IDLE_NVME);
        g_autoptr(CtlResult) mine = run_ctl(env, "unbind", "--owner", "script:42", ADDR_IDLE_NVME);
        g_autoptr(CtlResult) back = run_ctl(env, "--json", "show", ADDR_IDLE_NVME);

        g_assert_cmpint(bind->status, ==, 0);
        g_assert_nonnull(strstr(shown->out, "\"owner\" : \"script:42\""));
        g_test_message("unbind for another owner: %d %s%s", other->status, other->out, other->err);
        g_assert_nonnull(strstr(still->out, "\"driver\" : \"vfio-pci\""));
        g_assert_cmpint(mine->status, ==, 0);
        g_assert_nonnull(strstr(back->out, "\"driver\" : \"nvme\""));
        g_assert_nonnull(strstr(back->out, "\"owner\" : \"\""));
    }

    /* monitor: changes as JSON lines, from the moment it says it listens. */
    {
        g_autoptr(GSubprocessLauncher) launcher = launcher_new(
            G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, FALSE);
        const char *argv[] = {g_getenv("ZPCIDCTL"), "--json", "monitor", NULL};
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GDataInputStream) out = NULL;
        g_autoptr(GDataInputStream) err = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *ready = NULL;
        gboolean seen = FALSE;

        g_subprocess_launcher_setenv(launcher, ZPCID_ENV_BUS_ADDRESS, env->bus_address, TRUE);
        p = g_subprocess_launcher_spawnv(launcher, argv, &error);
        g_assert_no_error(error);
        err = g_data_input_stream_new(g_subprocess_get_stderr_pipe(p));
        out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
        ready = g_data_input_stream_read_line(err, NULL, NULL, &error);
        g_assert_nonnull(ready);
        g_assert_nonnull(strstr(ready, "Monitoring"));

        host_remove(env, "sys/bus/pci/drivers/ism/" ADDR_ISM);
        host_remove(env, "sys/devices/pci0003:00/" ADDR_ISM "/driver");
        send_uevent(env, "unbind", "/devices/pci0003:00/" ADDR_ISM, "SUBSYSTEM=pci",
                    "PCI_SLOT_NAME=" ADDR_ISM, NULL);
        for (guint i = 0; i < 10 && !seen; i++) {
            g_autofree char *line = g_data_input_stream_read_line(out, NULL, NULL, &error);
            g_assert_nonnull(line);
            g_test_message("monitor: %s", line);
            seen = strstr(line, "\"event\":\"changed\"") != NULL &&
                   strstr(line, "\"state\":\"unbound\"") != NULL;
        }
        g_assert_true(seen);
        g_subprocess_send_signal(p, SIGTERM);
        g_assert_true(g_subprocess_wait(p, NULL, &error));
        g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 0);
    }

    /* Without the daemon: a clear message, and the bus's error name in JSON. */
    stop_daemon(env->daemon);
    g_clear_object(&env->daemon);
    {
        g_autoptr(CtlResult) gone = run_ctl(env, "list");
        g_autoptr(CtlResult) gone_json = run_ctl(env, "--json", "check");

        g_assert_cmpint(gone->status, ==, 2);
        g_assert_nonnull(strstr(gone->err, "daemon is not running"));
        g_assert_cmpint(gone_json->status, ==, 2);
        g_assert_nonnull(strstr(gone_json->out, "org.freedesktop.DBus.Error.ServiceUnknown"));
    }
    env_free(env);
}

/* What the sd_notify socket has said so far, and the line a test waits for. */
typedef struct {
    Env *env;
    GString *seen;
    const char *want;
} NotifyWait;

static gboolean
notify_has(gpointer data)
{
    NotifyWait *w = data;
    char buf[512];
    ssize_t n;

    while ((n = recv(w->env->notify_fd, buf, sizeof(buf) - 1, 0)) > 0) {
        buf[n] = '\0';
        g_string_append_printf(w->seen, "%s\n", buf);
    }
    return strstr(w->seen->str, w->want) != NULL;
}

/* The replaced daemon has ended; meanwhile the notifications of both daemons are read, as
 * systemd would: an undrained queue (10 datagrams) makes zpcid drop them, STOPPING=1 too. */
static gboolean
first_daemon_exited(gpointer data)
{
    NotifyWait *w = data;

    notify_has(data);
    return g_subprocess_get_identifier(w->env->daemon) == NULL;
}

/* sd_notify, the watchdog, and a clean end on SIGTERM, on losing the name and when the bus
 * goes away. */
static void
test_lifecycle(void)
{
    Env *env = env_new(ENV_NOTIFY);
    g_autoptr(GString) seen = g_string_new(NULL);
    NotifyWait w = {env, seen, "READY=1"};
    g_autofree char *state2 = g_build_filename(env->tmp, "state2", NULL);
    g_autofree char *socket2 = g_build_filename(env->tmp, "uevent2.sock", NULL);
    g_autoptr(GSubprocess) second = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_true(wait_until(notify_has, &w));
    w.want = "WATCHDOG=1";
    g_assert_true(wait_until(notify_has, &w));

    /* A second zpcid with --replace takes the name; the first ends cleanly. */
    second = spawn_daemon(env, state2, socket2, TRUE);
    g_assert_true(wait_until(first_daemon_exited, &w));
    g_assert_true(g_subprocess_wait(env->daemon, NULL, &error));
    g_assert_true(g_subprocess_get_if_exited(env->daemon));
    g_assert_cmpint(g_subprocess_get_exit_status(env->daemon), ==, 0);
    w.want = "STOPPING=1";
    g_assert_true(wait_until(notify_has, &w));
    g_clear_object(&env->daemon);
    env->daemon_gone = FALSE; /* that exit was the point */
    wait_for_name(env, ZPCID_DBUS_NAME, TRUE);

    /* The bus goes away: the second ends cleanly too. */
    g_subprocess_send_signal(env->bus, SIGTERM);
    g_assert_true(g_subprocess_wait(env->bus, NULL, NULL));
    g_clear_object(&env->bus);
    g_assert_true(g_subprocess_wait(second, NULL, &error));
    g_assert_true(g_subprocess_get_if_exited(second));
    g_assert_cmpint(g_subprocess_get_exit_status(second), ==, 0);
    env_free(env);
}

/* The name is taken before the first scan (so that a caller never finds the service
 * missing), and every call waits until the scan is over: a caller right after the name
 * appears sees every function, never part of the host. */
static void
test_calls_wait_for_scan(void)
{
    Env *env = env_prepare(ENV_DEFAULT);
    g_autofree char *large = g_build_filename(env->tmp, "host-large", NULL);
    const char *mkhost_args[] = {
        g_getenv("MKHOST"), large, "--functions", "512", "--pf-with-vfs", "64",
        "--seed",           "3",   NULL};
    g_autoptr(ZpcidHost) host = NULL;
    g_autoptr(ZpcidInventory) inventory = NULL;
    g_autoptr(GVariant) objects = NULL;
    g_autoptr(GVariant) count = NULL;
    g_autoptr(GVariant) inner = NULL;
    guint32 n;

    /* A host large enough that the scan takes a while after the name is taken. */
    run_quiet(mkhost_args);
    g_free(env->host);
    env->host = g_strdup(large);
    host = zpcid_host_new(env->host, NULL);
    inventory = zpcid_inventory_new(host);
    g_assert_true(zpcid_inventory_scan(inventory, NULL));
    n = zpcid_inventory_get_count(inventory);
    g_assert_cmpuint(n, ==, 512);

    env_start_daemon(env);
    objects = call_ok(env, ZPCID_DBUS_PATH, "org.freedesktop.DBus.ObjectManager",
                      "GetManagedObjects", NULL);
    inner = g_variant_get_child_value(objects, 0);
    g_assert_cmpuint(g_variant_n_children(inner), ==, n);
    count = call_ok(env, ZPCID_DBUS_PATH, "org.freedesktop.DBus.Properties", "Get",
                    g_variant_new("(ss)", ZPCID_DBUS_IFACE_MANAGER, "FunctionCount"));
    {
        g_autoptr(GVariant) v = NULL;
        g_variant_get(count, "(v)", &v);
        g_assert_cmpuint(g_variant_get_uint32(v), ==, n);
    }
    env_free(env);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dbus/manager-properties", test_manager_properties);
    g_test_add_func("/dbus/function-objects", test_function_objects);
    g_test_add_func("/dbus/calls-wait-for-scan", test_calls_wait_for_scan);
    g_test_add_func("/dbus/resolve", test_resolve);
    g_test_add_func("/dbus/invalid-arguments", test_invalid_arguments);
    g_test_add_func("/dbus/domain-xml", test_domain_xml);
    g_test_add_func("/dbus/libvirt-domains", test_libvirt_domains);
    g_test_add_func("/dbus/libvirt-helper", test_libvirt_helper);
    g_test_add_func("/dbus/bind-unbind", test_bind_unbind);
    g_test_add_func("/dbus/uevent-during-bind", test_uevent_during_bind);
    g_test_add_func("/dbus/uevent-burst", test_uevent_burst);
    g_test_add_func("/dbus/uevents", test_uevents);
    g_test_add_func("/dbus/authorization/polkit", test_polkit);
    g_test_add_func("/dbus/authorization/no-polkit", test_no_polkit);
    g_test_add_func("/dbus/zpcidctl", test_zpcidctl);
    g_test_add_func("/dbus/lifecycle", test_lifecycle);
    return g_test_run();
}
