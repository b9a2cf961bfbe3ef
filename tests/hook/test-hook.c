/* The libvirt hook, run exactly as libvirt runs it: “<hook> <domain> <operation> <sub-op>
 * <extra>” with the domain XML on stdin and libvirt's minimal environment, against the real
 * zpcid on a private bus (tests/dbus/dbus-fixture.h), or against a fake zpcid that never
 * answers. */
#include "dbus-fixture.h"

#include <stdio.h>
#include <string.h>

#define UUID  "c7a5fdbd-cdaf-9455-926a-d65c16db1809"
#define OWNER ZPCID_HOOK_OWNER_PREFIX UUID
/* What the hook may take beyond its budget before the test calls it a hang. */
#define MARGIN_MS 1500

typedef struct {
    const char *address;
    gboolean managed;
} Dev;

typedef struct {
    int status;
    char *out;
    char *err;
    gint64 elapsed_ms;
} HookRun;

static void
hook_run_free(HookRun *r)
{
    g_free(r->out);
    g_free(r->err);
    g_free(r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HookRun, hook_run_free)

/* A domain as libvirt hands it to the hook; @required: metadata with interpretation
 * “required” for the first device. */
static char *
domain_xml(const Dev *devs, guint n, gboolean required)
{
    GString *s =
        g_string_new("<domain type='kvm'>\n  <name>guest</name>\n  <uuid>" UUID "</uuid>\n");

    if (required && n > 0)
        g_string_append_printf(
            s,
            "  <metadata>\n"
            "    <zpcid:passthrough xmlns:zpcid='" ZPCID_LIBVIRT_METADATA_NS "' version='1'>\n"
            "      <zpcid:function address='%s' host-fid='0x00000001' uid='0x0001' "
            "fid='0x00000001' policy='auto' interpretation='required'/>\n"
            "    </zpcid:passthrough>\n"
            "  </metadata>\n",
            devs[0].address);
    g_string_append(s, "  <memory unit='KiB'>524288</memory>\n"
                       "  <os><type arch='s390x' machine='s390-ccw-virtio'>hvm</type></os>\n"
                       "  <devices>\n"
                       "    <disk type='file' device='disk'><source file='/var/lib/g.qcow2'/>"
                       "<target dev='vda' bus='virtio'/></disk>\n");
    for (guint i = 0; i < n; i++) {
        guint domain, bus, slot, function;
        g_assert_cmpint(sscanf(devs[i].address, "%x:%x:%x.%x", &domain, &bus, &slot, &function), ==,
                        4);
        g_string_append_printf(s,
                               "    <hostdev mode='subsystem' type='pci' managed='%s'>\n"
                               "      <source><address domain='0x%04x' bus='0x%02x' "
                               "slot='0x%02x' function='0x%x'/></source>\n"
                               "    </hostdev>\n",
                               devs[i].managed ? "yes" : "no", domain, bus, slot, function);
    }
    g_string_append(s, "  </devices>\n</domain>\n");
    return g_string_free(s, FALSE);
}

static char *
write_config(Env *env, const char *text)
{
    char *path = g_build_filename(env->tmp, "hook.conf", NULL);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

static void
on_communicated(GObject *source, GAsyncResult *result, gpointer user_data)
{
    HookRun *r = user_data;
    g_autoptr(GError) error = NULL;

    g_assert_true(g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), result, &r->out,
                                                       &r->err, &error));
    g_assert_no_error(error);
    r->status = g_subprocess_get_exit_status(G_SUBPROCESS(source));
}

/* Runs the hook with libvirt's environment (LC_ALL=C, PATH, HOME; hooks.rst, virhook.c) plus
 * the private bus and the configuration file. The main context runs meanwhile, so that a
 * fake service in this process sees the calls. */
static HookRun *
run_hook(const char *bus_address, const char *config, const char *stdin_text,
         const char *const *args)
{
    g_autoptr(GSubprocessLauncher) launcher =
        launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                         G_SUBPROCESS_FLAGS_STDERR_PIPE,
                     FALSE);
    const char *env[] = {"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", NULL};
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GError) error = NULL;
    HookRun *r = g_new0(HookRun, 1);
    gint64 start;

    r->status = -1;
    g_subprocess_launcher_set_environ(launcher, (char **)env);
    g_subprocess_launcher_setenv(launcher, "DBUS_SYSTEM_BUS_ADDRESS", bus_address, TRUE);
    if (config != NULL)
        g_subprocess_launcher_setenv(launcher, ZPCID_ENV_CONFIG_FILE, config, TRUE);
    g_ptr_array_add(argv, (char *)g_getenv("ZPCID_HOOK"));
    for (guint i = 0; args[i] != NULL; i++)
        g_ptr_array_add(argv, (char *)args[i]);
    g_ptr_array_add(argv, NULL);
    start = g_get_monotonic_time();
    proc = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    g_subprocess_communicate_utf8_async(proc, stdin_text, NULL, on_communicated, r);
    while (r->out == NULL)
        g_main_context_iteration(NULL, TRUE);
    r->elapsed_ms = (g_get_monotonic_time() - start) / 1000;
    g_assert_true(g_subprocess_get_if_exited(proc));
    g_test_message("hook %s %s %s: %d in %" G_GINT64_FORMAT " ms; stderr: %s", args[0], args[1],
                   args[2], r->status, r->elapsed_ms, r->err);
    return r;
}

#define HOOK(...) ((const char *const[]){__VA_ARGS__, NULL})

static char *
function_property(Env *env, const char *address, const char *key)
{
    return function_string(env, address, key);
}

static void
assert_function(Env *env, const char *address, const char *driver, const char *owner)
{
    g_autofree char *d = function_property(env, address, "Driver");
    g_autofree char *o = function_property(env, address, "Owner");

    g_assert_cmpstr(d, ==, driver);
    g_assert_cmpstr(o, ==, owner);
}

static gboolean
skip_without_simkernel(void)
{
    if (simkernel_available())
        return FALSE;
    g_test_skip("The simulated kernel (tests/simkernel) is not built.");
    return TRUE;
}

/* Start and release: prepare binds the unmanaged function for the domain, leaves the managed
 * one to libvirt and the admin's binding alone; release gives back exactly what it bound. */
static void
test_start_release(void)
{
    Env *env;
    g_autofree char *config = NULL;
    g_autofree char *xml = NULL;
    const Dev devs[] = {{ADDR_IDLE_NVME, FALSE}, {ADDR_ISM, TRUE}, {ADDR_UNBOUND, FALSE}};
    const char *admin[] = {ADDR_UNBOUND, NULL};
    g_autoptr(GVariant) reply = NULL;
    const char *const passing[][3] = {{"start", "begin", "-"},   {"started", "begin", "-"},
                                      {"stopped", "end", "-"},   {"reconnect", "begin", "-"},
                                      {"migrate", "begin", "-"}, {"restore", "begin", "-"}};

    if (skip_without_simkernel())
        return;
    env = env_new(ENV_DEFAULT);
    config = write_config(env, "[libvirt-hook]\nbind-unmanaged=true\n");
    xml = domain_xml(devs, G_N_ELEMENTS(devs), FALSE);
    /* The admin passed this one through by hand: not the hook's to give back. */
    reply = manager_call(env, "Bind", g_variant_new("(^asa{sv})", admin, NULL));
    assert_function(env, ADDR_UNBOUND, "vfio-pci", "");

    {
        g_autoptr(HookRun) r =
            run_hook(env->bus_address, config, xml, HOOK("guest", "prepare", "begin", "-"));
        g_assert_cmpint(r->status, ==, 0);
        g_assert_cmpstr(r->out, ==, "");
        g_assert_cmpstr(r->err, ==, "");
    }
    assert_function(env, ADDR_IDLE_NVME, "vfio-pci", OWNER);
    assert_function(env, ADDR_ISM, "ism", "");
    assert_function(env, ADDR_UNBOUND, "vfio-pci", "");

    /* Every other operation passes through: status 0, nothing on stdout, nothing changed. */
    for (guint i = 0; i < G_N_ELEMENTS(passing); i++) {
        g_autoptr(HookRun) r = run_hook(env->bus_address, config, xml,
                                        HOOK("guest", passing[i][0], passing[i][1], passing[i][2]));
        g_assert_cmpint(r->status, ==, 0);
        g_assert_cmpstr(r->out, ==, "");
        g_assert_cmpstr(r->err, ==, "");
    }
    assert_function(env, ADDR_IDLE_NVME, "vfio-pci", OWNER);

    {
        g_autoptr(HookRun) r =
            run_hook(env->bus_address, config, xml, HOOK("guest", "release", "end", "destroyed"));
        g_assert_cmpint(r->status, ==, 0);
        g_assert_cmpstr(r->out, ==, "");
        g_assert_cmpstr(r->err, ==, "");
    }
    assert_function(env, ADDR_IDLE_NVME, "nvme", "");
    assert_function(env, ADDR_ISM, "ism", "");
    assert_function(env, ADDR_UNBOUND, "vfio-pci", "");

    /* A second release (libvirt restarted, say) finds nothing of the hook's left. */
    {
        g_autoptr(HookRun) r =
            run_hook(env->bus_address, config, xml, HOOK("guest", "release", "end", "shutdown"));
        g_assert_cmpint(r->status, ==, 0);
    }
    assert_function(env, ADDR_UNBOUND, "vfio-pci", "");
    env_free(env);
}

/* Without bind-unmanaged, prepare checks and binds nothing. */
static void
test_bind_unmanaged_off(void)
{
    Env *env;
    g_autofree char *config = NULL;
    g_autofree char *xml = NULL;
    const Dev devs[] = {{ADDR_IDLE_NVME, FALSE}};

    if (skip_without_simkernel())
        return;
    env = env_new(ENV_DEFAULT);
    config = write_config(env, "[libvirt-hook]\nbind-unmanaged=false\n");
    xml = domain_xml(devs, G_N_ELEMENTS(devs), FALSE);
    {
        g_autoptr(HookRun) r =
            run_hook(env->bus_address, config, xml, HOOK("guest", "prepare", "begin", "-"));
        g_assert_cmpint(r->status, ==, 0);
        g_assert_cmpstr(r->err, ==, "");
    }
    assert_function(env, ADDR_IDLE_NVME, "nvme", "");
    env_free(env);
}

/* A host generated with an extra mkhost.py flag (same functions as the fixture's). */
static Env *
env_with_host(const char *flag)
{
    Env *env = env_prepare(ENV_DEFAULT);
    const char *rm[] = {"rm", "-rf", env->host, NULL};
    const char *mkhost[] = {g_getenv("MKHOST"), env->host, "--functions", "13", "--standby", "1",
                            "--seed",           "21",      flag,          NULL};

    run_quiet(rm);
    run_quiet(mkhost);
    env_start_daemon(env);
    return env;
}

/* Interpretation required (by the domain's metadata or by the configuration) on a host
 * without CONFIG_VFIO_PCI_ZDEV_KVM: refused, naming the check and the remedy, and nothing
 * bound. Preferred: the start goes on. */
static void
test_refuse_interpretation(void)
{
    Env *env;
    g_autofree char *bind_only = NULL;
    g_autofree char *require = NULL;
    g_autofree char *required_xml = NULL;
    g_autofree char *plain_xml = NULL;
    g_autofree char *foreign_xml = NULL;
    const Dev devs[] = {{ADDR_IDLE_NVME, FALSE}};
    const Dev foreign[] = {{"00ff:01:02.3", FALSE}};

    if (skip_without_simkernel())
        return;
    env = env_with_host("--no-zdev-kvm");
    bind_only = write_config(env, "[libvirt-hook]\nbind-unmanaged=true\n");
    required_xml = domain_xml(devs, G_N_ELEMENTS(devs), TRUE);
    plain_xml = domain_xml(devs, G_N_ELEMENTS(devs), FALSE);
    foreign_xml = domain_xml(foreign, G_N_ELEMENTS(foreign), FALSE);

    {
        g_autoptr(HookRun) r = run_hook(env->bus_address, bind_only, required_xml,
                                        HOOK("guest", "prepare", "begin", "-"));
        g_assert_cmpint(r->status, ==, 1);
        g_assert_nonnull(strstr(r->err, "zpcid refuses to start the domain “guest”"));
        g_assert_nonnull(strstr(r->err, "metadata requires zPCI interpretation"));
        g_assert_nonnull(strstr(r->err, "The check “config-vfio-pci-zdev-kvm” failed"));
        g_assert_nonnull(strstr(r->err, "What to do: "));
    }
    assert_function(env, ADDR_IDLE_NVME, "nvme", "");

    g_free(require);
    require = write_config(env, "[libvirt-hook]\nbind-unmanaged=true\n"
                                "require-interpretation=true\n");
    {
        g_autoptr(HookRun) r =
            run_hook(env->bus_address, require, plain_xml, HOOK("guest", "prepare", "begin", "-"));
        g_assert_cmpint(r->status, ==, 1);
        g_assert_nonnull(strstr(r->err, "“require-interpretation” is set in zpcid.conf"));
        g_assert_nonnull(strstr(r->err, "config-vfio-pci-zdev-kvm"));
    }
    assert_function(env, ADDR_IDLE_NVME, "nvme", "");

    /* A PCI hostdev that is no zPCI function of this host is not zpcid's to judge. */
    {
        g_autoptr(HookRun) r = run_hook(env->bus_address, require, foreign_xml,
                                        HOOK("guest", "prepare", "begin", "-"));
        g_assert_cmpint(r->status, ==, 0);
        g_assert_cmpstr(r->err, ==, "");
    }

    /* Interpretation preferred (the default): passthrough is enough. */
    g_free(require);
    require = write_config(env, "[libvirt-hook]\nbind-unmanaged=true\n");
    {
        g_autoptr(HookRun) r =
            run_hook(env->bus_address, require, plain_xml, HOOK("guest", "prepare", "begin", "-"));
        g_assert_cmpint(r->status, ==, 0);
    }
    assert_function(env, ADDR_IDLE_NVME, "vfio-pci", OWNER);
    env_free(env);
}

/* A kernel without vfio-pci cannot pass anything through: refused even with managed
 * functions only, naming the check. */
static void
test_refuse_passthrough(void)
{
    Env *env;
    g_autofree char *config = NULL;
    g_autofree char *xml = NULL;
    const Dev devs[] = {{ADDR_ISM, TRUE}};

    if (skip_without_simkernel())
        return;
    env = env_with_host("--no-vfio");
    config = write_config(env, "[libvirt-hook]\n");
    xml = domain_xml(devs, G_N_ELEMENTS(devs), FALSE);
    {
        g_autoptr(HookRun) r =
            run_hook(env->bus_address, config, xml, HOOK("guest", "prepare", "begin", "-"));
        g_assert_cmpint(r->status, ==, 1);
        g_assert_nonnull(strstr(r->err, "cannot pass zPCI functions through to KVM guests"));
        g_assert_nonnull(strstr(r->err, "The check “config-vfio-pci” failed"));
    }
    env_free(env);
}

/* Domains without PCI hostdevs, unknown operations and a bad command line never reach
 * zpcid: the bus address points nowhere, and the configuration would refuse any start zpcid
 * cannot check. */
static void
test_untouched(void)
{
    g_autofree char *tmp = g_dir_make_tmp("zpcid-hook-XXXXXX", NULL);
    g_autofree char *config = g_build_filename(tmp, "hook.conf", NULL);
    g_autofree char *nowhere = g_strdup_printf("unix:path=%s/no-bus", tmp);
    g_autofree char *no_pci = domain_xml(NULL, 0, FALSE);
    g_autofree char *pci = NULL;
    const Dev devs[] = {{ADDR_IDLE_NVME, FALSE}};
    const char *ops[][3] = {{"start", "begin", "-"},   {"started", "begin", "-"},
                            {"stopped", "end", "-"},   {"migrate", "begin", "-"},
                            {"restore", "begin", "-"}, {"reconnect", "begin", "-"},
                            {"attach", "begin", "-"},  {"prepare", "end", "-"},
                            {"release", "begin", "-"}, {"frobnicate", "now", "x"}};

    pci = domain_xml(devs, G_N_ELEMENTS(devs), FALSE);
    g_assert_true(g_file_set_contents(config,
                                      "[libvirt-hook]\nbind-unmanaged=true\n"
                                      "require-interpretation=true\n",
                                      -1, NULL));
    {
        g_autoptr(HookRun) r =
            run_hook(nowhere, config, no_pci, HOOK("guest", "prepare", "begin", "-"));
        g_assert_cmpint(r->status, ==, 0);
        g_assert_cmpstr(r->out, ==, "");
        g_assert_cmpstr(r->err, ==, "");
    }
    {
        g_autoptr(HookRun) r =
            run_hook(nowhere, config, no_pci, HOOK("guest", "release", "end", "shutdown"));
        g_assert_cmpint(r->status, ==, 0);
        g_assert_cmpstr(r->err, ==, "");
    }
    for (guint i = 0; i < G_N_ELEMENTS(ops); i++) {
        g_autoptr(HookRun) r =
            run_hook(nowhere, config, pci, HOOK("guest", ops[i][0], ops[i][1], ops[i][2]));
        g_assert_cmpint(r->status, ==, 0);
        g_assert_cmpstr(r->out, ==, "");
        g_assert_cmpstr(r->err, ==, "");
        g_assert_cmpint(r->elapsed_ms, <, MARGIN_MS);
    }
    /* The same domain on prepare: zpcid is needed and missing, so the start is refused. */
    {
        g_autoptr(HookRun) r =
            run_hook(nowhere, config, pci, HOOK("guest", "prepare", "begin", "-"));
        g_assert_cmpint(r->status, ==, 1);
        g_assert_nonnull(strstr(r->err, "zpcid could not be asked"));
        g_assert_nonnull(strstr(r->err, "systemctl start zpcid"));
    }
    /* An unreadable configuration might forbid the start: refused, but only for a domain
     * with PCI hostdevs. */
    {
        g_autofree char *missing = g_build_filename(tmp, "missing.conf", NULL);
        g_autoptr(HookRun) r =
            run_hook(nowhere, missing, pci, HOOK("guest", "prepare", "begin", "-"));
        g_autoptr(HookRun) q =
            run_hook(nowhere, missing, no_pci, HOOK("guest", "prepare", "begin", "-"));

        g_assert_cmpint(r->status, ==, 1);
        g_assert_nonnull(strstr(r->err, "configuration could not be read"));
        g_assert_cmpint(q->status, ==, 0);
        g_assert_cmpstr(q->err, ==, "");
    }
    {
        g_autoptr(HookRun) r = run_hook(nowhere, config, "", HOOK("guest", "prepare"));
        g_assert_cmpint(r->status, ==, 2);
        g_assert_nonnull(strstr(r->err, "Usage:"));
    }
    {
        const char *rm[] = {"rm", "-rf", tmp, NULL};
        run_quiet(rm);
    }
}

/* Malformed input: prepare refuses (it cannot tell what the domain needs), release reports
 * and changes nothing. */
static void
test_malformed_xml(void)
{
    Env *env;
    g_autofree char *config = NULL;
    const char *bad[] = {
        "<domain><devices><hostdev mode='subsystem' type='pci'>",
        "<!DOCTYPE domain [<!ENTITY x 'y'>]><domain><name>&x;</name></domain>",
        "<network><name>default</name></network>",
        "",
    };

    if (skip_without_simkernel())
        return;
    env = env_new(ENV_DEFAULT);
    config = write_config(env, "[libvirt-hook]\nbind-unmanaged=true\n");
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(HookRun) p =
            run_hook(env->bus_address, config, bad[i], HOOK("guest", "prepare", "begin", "-"));
        g_autoptr(HookRun) r =
            run_hook(env->bus_address, config, bad[i], HOOK("guest", "release", "end", "shutdown"));

        g_assert_cmpint(p->status, ==, 1);
        g_assert_nonnull(strstr(p->err, "the domain XML on standard input could not be read"));
        g_assert_cmpint(r->status, ==, 1);
        g_assert_nonnull(strstr(r->err, "could not be read"));
    }
    assert_function(env, ADDR_IDLE_NVME, "nvme", "");
    env_free(env);
}

/* ---- a zpcid that never answers ---- */

static void
on_never_answer(GDBusConnection *conn, const char *sender, const char *path, const char *iface,
                const char *method, GVariant *params, GDBusMethodInvocation *invocation,
                gpointer user_data)
{
    GPtrArray *held = user_data;

    /* Kept, never answered: the caller must give up by itself. */
    g_ptr_array_add(held, g_object_ref(invocation));
}

static void
test_timeout(void)
{
    Env *env = env_prepare(ENV_DEFAULT);
    g_autofree char *api =
        g_build_filename(g_getenv("ZPCID_SOURCE_ROOT"), "xml", "org.zpcid1.xml", NULL);
    g_autofree char *api_xml = NULL;
    g_autoptr(GDBusNodeInfo) node = NULL;
    g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func(g_object_unref);
    g_autoptr(GError) error = NULL;
    GDBusInterfaceVTable vtable = {on_never_answer, NULL, NULL, {0}};
    g_autofree char *config = NULL;
    g_autofree char *unmanaged = NULL;
    g_autofree char *managed = NULL;
    const Dev u[] = {{ADDR_IDLE_NVME, FALSE}};
    const Dev m[] = {{ADDR_ISM, TRUE}};
    guint id, owner;
    const guint budget_ms = 1000;

    g_assert_true(g_file_get_contents(api, &api_xml, NULL, &error));
    node = g_dbus_node_info_new_for_xml(api_xml, &error);
    g_assert_no_error(error);
    id = g_dbus_connection_register_object(
        env->conn, ZPCID_DBUS_PATH,
        g_dbus_node_info_lookup_interface(node, ZPCID_DBUS_IFACE_MANAGER), &vtable,
        g_ptr_array_ref(held), (GDestroyNotify)g_ptr_array_unref, &error);
    g_assert_no_error(error);
    owner = g_bus_own_name_on_connection(env->conn, ZPCID_DBUS_NAME, G_BUS_NAME_OWNER_FLAGS_NONE,
                                         NULL, NULL, NULL, NULL);
    wait_for_name(env, ZPCID_DBUS_NAME, TRUE);

    config = write_config(env, "[libvirt-hook]\nbind-unmanaged=true\ntimeout-seconds=1\n");
    unmanaged = domain_xml(u, G_N_ELEMENTS(u), FALSE);
    managed = domain_xml(m, G_N_ELEMENTS(m), FALSE);
    {
        g_autoptr(HookRun) r =
            run_hook(env->bus_address, config, unmanaged, HOOK("guest", "prepare", "begin", "-"));
        g_assert_cmpint(r->status, ==, 1);
        g_assert_nonnull(strstr(r->err, "zpcid did not answer within 1000 ms"));
        g_assert_cmpint(r->elapsed_ms, >=, budget_ms - 50);
        g_assert_cmpint(r->elapsed_ms, <, budget_ms + MARGIN_MS);
    }
    /* Nothing to bind, nothing required: the start goes on, with a note. */
    {
        g_autoptr(HookRun) r =
            run_hook(env->bus_address, config, managed, HOOK("guest", "prepare", "begin", "-"));
        g_assert_cmpint(r->status, ==, 0);
        g_assert_nonnull(strstr(r->err, "libvirt checks vfio-pci itself"));
        g_assert_cmpint(r->elapsed_ms, <, budget_ms + MARGIN_MS);
    }
    {
        g_autoptr(HookRun) r = run_hook(env->bus_address, config, unmanaged,
                                        HOOK("guest", "release", "end", "destroyed"));
        g_assert_cmpint(r->status, ==, 1);
        g_assert_nonnull(strstr(r->err, "did not answer"));
        g_assert_cmpint(r->elapsed_ms, <, budget_ms + MARGIN_MS);
    }
    g_assert_cmpuint(held->len, >=, 3);

    /* zpcid not running at all: the answer is immediate. */
    g_bus_unown_name(owner);
    wait_for_name(env, ZPCID_DBUS_NAME, FALSE);
    {
        g_autoptr(HookRun) r =
            run_hook(env->bus_address, config, unmanaged, HOOK("guest", "prepare", "begin", "-"));
        g_assert_cmpint(r->status, ==, 1);
        g_assert_nonnull(strstr(r->err, "zpcid is not running"));
        g_assert_cmpint(r->elapsed_ms, <, MARGIN_MS);
    }
    g_dbus_connection_unregister_object(env->conn, id);
    g_ptr_array_set_size(held, 0);
    env_free(env);
}

/* The D-Bus side the hook relies on: Bind records the owner (Function.Owner), Unbind with an
 * owner gives back only that owner's functions and lists only those, a bad owner is refused. */
static void
test_dbus_owner(void)
{
    Env *env;
    g_autofree char *nvme = NULL;
    g_autofree char *ism = NULL;
    g_autoptr(GVariant) reply = NULL;
    g_autofree char *message = NULL;
    g_autofree const char **paths = NULL;
    const char *both[] = {ADDR_IDLE_NVME, ADDR_ISM, NULL};
    GVariantBuilder opts;

    if (skip_without_simkernel())
        return;
    env = env_new(ENV_DEFAULT);
    nvme = resolve(env, ADDR_IDLE_NVME);
    ism = resolve(env, ADDR_ISM);

    g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&opts, "{sv}", ZPCID_OPTION_OWNER, g_variant_new_string("tenant:a"));
    reply = manager_call(env, "Bind", g_variant_new("(^asa{sv})", both, &opts));
    assert_function(env, ADDR_IDLE_NVME, "vfio-pci", "tenant:a");
    assert_function(env, ADDR_ISM, "vfio-pci", "tenant:a");
    g_clear_pointer(&reply, g_variant_unref);

    /* Another owner: nothing given back, nothing listed, no error. */
    g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&opts, "{sv}", ZPCID_OPTION_OWNER, g_variant_new_string("tenant:b"));
    reply = manager_call(env, "Unbind", g_variant_new("(^asa{sv})", both, &opts));
    g_variant_get(reply, "(^a&o)", &paths);
    g_assert_cmpuint(g_strv_length((char **)paths), ==, 0);
    g_clear_pointer(&paths, g_free);
    g_clear_pointer(&reply, g_variant_unref);
    assert_function(env, ADDR_IDLE_NVME, "vfio-pci", "tenant:a");

    /* Without an owner an admin still takes any function back: here the ISM one alone. */
    reply = call_ok(env, ism, ZPCID_DBUS_IFACE_FUNCTION, "Unbind", g_variant_new("(a{sv})", NULL));
    g_clear_pointer(&reply, g_variant_unref);
    assert_function(env, ADDR_ISM, "ism", "");

    g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&opts, "{sv}", ZPCID_OPTION_OWNER, g_variant_new_string("tenant:a"));
    reply = manager_call(env, "Unbind", g_variant_new("(^asa{sv})", both, &opts));
    g_variant_get(reply, "(^a&o)", &paths);
    g_assert_cmpuint(g_strv_length((char **)paths), ==, 1);
    g_assert_cmpstr(paths[0], ==, nvme);
    assert_function(env, ADDR_IDLE_NVME, "nvme", "");

    g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&opts, "{sv}", ZPCID_OPTION_OWNER, g_variant_new_string(""));
    message = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Bind",
                         g_variant_new("(^asa{sv})", both, &opts), ERR_INVALID);
    g_assert_nonnull(strstr(message, "owner"));
    g_clear_pointer(&message, g_free);
    g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&opts, "{sv}", ZPCID_OPTION_OWNER, g_variant_new_uint32(1));
    message = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Bind",
                         g_variant_new("(^asa{sv})", both, &opts), ERR_INVALID);
    assert_function(env, ADDR_IDLE_NVME, "nvme", "");
    env_free(env);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/hook/start-release", test_start_release);
    g_test_add_func("/hook/bind-unmanaged-off", test_bind_unmanaged_off);
    g_test_add_func("/hook/refuse/interpretation", test_refuse_interpretation);
    g_test_add_func("/hook/refuse/passthrough", test_refuse_passthrough);
    g_test_add_func("/hook/untouched", test_untouched);
    g_test_add_func("/hook/malformed-xml", test_malformed_xml);
    g_test_add_func("/hook/timeout", test_timeout);
    g_test_add_func("/hook/dbus-owner", test_dbus_owner);
    return g_test_run();
}
