/* Fault points of the daemon over D-Bus, each with its defined outcome (docs/robustness.md,
 * "Fault points"): stopped in the middle of a bind, the bus gone in the middle of a bind,
 * the state directory read-only or full, libvirt unreachable. Killing the binder at every
 * step of bind, unbind and rollback is tests/binder/test-binder.c's; polkit unreachable is
 * /dbus/authorization/no-polkit in test-dbus.c. */
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "dbus-fixture.h"
#include "journal.h"
#include "test-common.h"
#include "zpcid-names.h"

#define ROUNDS 5

static char *
driver_of(Env *env, const char *address)
{
    g_autofree char *link =
        g_build_filename(env->host, "sys/bus/pci/devices", address, "driver", NULL);
    g_autofree char *target = g_file_read_link(link, NULL);

    return target != NULL ? g_path_get_basename(target) : g_strdup("");
}

/* The journal holds no unfinished transaction, and the binding record agrees with the
 * kernel: a clean stop leaves nothing for recovery to do. */
static void
assert_settled(Env *env, const char *address)
{
    g_autofree char *path = g_build_filename(env->state, ZPCID_JOURNAL_FILE, NULL);
    g_autofree char *journal = NULL;
    g_autofree char *driver = driver_of(env, address);
    g_autofree char *record = g_strdup_printf("\"%s\"", address);

    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        /* Stopped before the transaction began (e.g. in the guards): the journal is written
         * before the kernel is touched, so the function must be where it was. */
        g_test_message("%s is on “%s”; no journal", address, driver);
        g_assert_cmpstr(driver, ==, "nvme");
        return;
    }
    g_assert_true(g_file_get_contents(path, &journal, NULL, NULL));
    g_test_message("%s is on “%s”; journal: %s", address, driver, journal);
    g_assert_true(g_regex_match_simple("\"transactions\"\\s*:\\s*\\[\\s*\\]", journal, 0, 0));
    if (g_str_equal(driver, "vfio-pci"))
        g_assert_nonnull(strstr(journal, record));
    else
        g_assert_cmpstr(driver, ==, "nvme");
}

static void
write_faults(Env *env, const char *contents)
{
    test_write_file(env->host, "fixture/faults", contents, -1);
}

typedef struct {
    gboolean done;
    GError *error;
} Pending;

static void
on_reply(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Pending *p = user_data;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &p->error);
    p->done = TRUE;
}

static void
bind_async(Env *env, const char *method, Pending *p)
{
    const char *one[] = {ADDR_IDLE_NVME, NULL};

    g_dbus_connection_call(env->conn, ZPCID_DBUS_NAME, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER,
                           method, g_variant_new("(^asa{sv})", one, NULL), NULL,
                           G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, on_reply, p);
}

static gboolean
daemon_exited(gpointer data)
{
    return ((Env *)data)->daemon_gone;
}

/* The daemon ended by itself with status 0 (not a signal: no crash). */
static void
assert_clean_exit(Env *env)
{
    g_assert_true(wait_until(daemon_exited, env));
    if (g_subprocess_get_if_signaled(env->daemon))
        g_error("zpcid was killed by signal %d.", g_subprocess_get_term_sig(env->daemon));
    g_assert_true(g_subprocess_get_if_exited(env->daemon));
    g_assert_cmpint(g_subprocess_get_exit_status(env->daemon), ==, 0);
    g_clear_object(&env->daemon);
}

/* Interrupts zpcid while a bind is under way; TRUE when the caller can still get a reply. */
typedef gboolean (*Interrupt)(Env *env);

static gboolean
stop_daemon_now(Env *env)
{
    g_subprocess_send_signal(env->daemon, SIGTERM);
    return TRUE;
}

static gboolean
kill_bus(Env *env)
{
    g_subprocess_send_signal(env->bus, SIGKILL);
    g_assert_true(g_subprocess_wait(env->bus, NULL, NULL));
    g_clear_object(&env->bus);
    return FALSE;
}

/* A bind whose kernel steps are each delayed, interrupted at a later moment in every round:
 * zpcid finishes or rolls back the transaction, exits 0, and leaves the function bound or as
 * before with the journal settled. */
static void
interrupt_mid_bind(Interrupt interrupt)
{
    if (!simkernel_available()) {
        g_test_skip("The simulated kernel (tests/simkernel) is not built.");
        return;
    }
    for (guint round = 0; round < ROUNDS; round++) {
        Env *env = env_new(ENV_DEFAULT);
        Pending p = {0};
        gboolean reply_expected;

        write_faults(env, "* override delay 150\n* unbind delay 150\n* bind delay 150\n");
        bind_async(env, "Bind", &p);
        /* Inside the transaction: the request is accepted and the first step is under way. */
        g_usleep(100 * 1000 + round * 60 * 1000);
        reply_expected = interrupt(env);
        assert_clean_exit(env);
        while (!p.done)
            g_main_context_iteration(NULL, TRUE);
        /* A reply, whatever the outcome: bound, rolled back because zpcid stops, or (when the
         * stop came first) not begun. */
        g_test_message("round %u: %s", round, p.error != NULL ? p.error->message : "bound");
        if (reply_expected && p.error != NULL) {
            g_autofree char *name = g_dbus_error_get_remote_error(p.error);
            g_assert_cmpstr(name, ==, ZPCID_DBUS_ERROR_FAILED);
            g_assert_true(strstr(p.error->message, "zpcid is stopping, so the request") != NULL &&
                          (strstr(p.error->message, "rolled back") != NULL ||
                           strstr(p.error->message, "nothing was changed") != NULL));
        }
        g_clear_error(&p.error);
        assert_settled(env, ADDR_IDLE_NVME);
        env_free(env);
    }
}

/* SIGTERM while a bind is in its kernel steps. */
static void
test_stop_mid_bind(void)
{
    interrupt_mid_bind(stop_daemon_now);
}

/* The bus goes away while a bind runs: zpcid notices and the caller gets no reply. */
static void
test_bus_lost_mid_bind(void)
{
    interrupt_mid_bind(kill_bus);
}

/* Killed in the middle of a bind, zpcid repairs the function at the next start before it
 * answers anyone. The name is taken before that repair (slowed down here), so a caller can
 * ask while it runs: the answer must already be the repaired state, never the half-moved
 * one the crash left. */
static void
test_killed_mid_bind_answers_after_repair(void)
{
    Env *env;
    Pending p = {0};
    g_autofree char *path = NULL;
    g_autofree char *tree_driver = NULL;
    g_autoptr(GVariant) reply = NULL;
    g_autoptr(GVariant) value = NULL;

    if (!simkernel_available()) {
        g_test_skip("The simulated kernel (tests/simkernel) is not built.");
        return;
    }
    env = env_new(ENV_DEFAULT);
    path = resolve(env, ADDR_IDLE_NVME);
    write_faults(env,
                 "* override delay 200\n* unbind delay 200\n* bind delay 200\n* probe delay 300\n");
    bind_async(env, "Bind", &p);
    /* After the unbind, within the bind's delay: between drivers. */
    for (guint i = 0; i < 2000; i++) {
        g_autofree char *now = driver_of(env, ADDR_IDLE_NVME);
        if (*now == '\0')
            break;
        g_usleep(2 * 1000);
    }
    g_subprocess_send_signal(env->daemon, SIGKILL);
    g_assert_true(g_subprocess_wait(env->daemon, NULL, NULL));
    g_clear_object(&env->daemon);
    while (!p.done)
        g_main_context_iteration(NULL, TRUE);
    g_clear_error(&p.error);
    tree_driver = driver_of(env, ADDR_IDLE_NVME);
    g_assert_cmpstr(tree_driver, ==, "");
    g_clear_pointer(&tree_driver, g_free);

    /* Every repair step takes a second now. */
    write_faults(
        env, "* override delay 1000\n* unbind delay 1000\n* bind delay 1000\n* probe delay 1000\n");
    env_start_daemon(env);
    reply = call_ok(env, path, "org.freedesktop.DBus.Properties", "Get",
                    g_variant_new("(ss)", ZPCID_DBUS_IFACE_FUNCTION, "Driver"));
    g_variant_get(reply, "(v)", &value);
    tree_driver = driver_of(env, ADDR_IDLE_NVME);
    g_assert_cmpstr(tree_driver, !=, "");
    g_assert_cmpstr(g_variant_get_string(value, NULL), ==, tree_driver);
    write_faults(env, "");
    assert_settled(env, ADDR_IDLE_NVME);
    env_free(env);
}

/* The state directory on a 64 KiB tmpfs of the daemon's own mount namespace, which the test
 * makes read-only or fills through nsenter. */
static Env *
env_private_state(void)
{
    Env *env = env_prepare(ENV_DEFAULT);
    const char *prefix[] = {"unshare",
                            "--mount",
                            "--propagation",
                            "private",
                            "sh",
                            "-c",
                            "mount -t tmpfs -o size=64k,mode=0700 zpcid-state \"$0\" && "
                            "exec \"$@\"",
                            env->state,
                            NULL};

    g_assert_cmpint(g_mkdir_with_parents(env->state, 0700), ==, 0);
    env->daemon_prefix = g_strdupv((char **)prefix);
    env_start_daemon(env);
    return env;
}

static void
in_daemon_ns(Env *env, const char *script)
{
    g_autofree char *pid = g_strdup(g_subprocess_get_identifier(env->daemon));
    const char *argv[] = {"nsenter", "-t", pid, "-m", "sh", "-c", script, env->state, NULL};

    run_quiet(argv);
}

/* The bind is refused with Failed before any kernel write, the host is unchanged; once the
 * directory is writable again, binding works. */
static void
check_store_fault(const char *break_script, const char *repair_script, const char *word)
{
    Env *env;
    const char *one[] = {ADDR_IDLE_NVME, NULL};
    g_autoptr(GHashTable) before = NULL;
    g_autoptr(GHashTable) after = NULL;
    g_autofree char *message = NULL;
    g_autofree char *driver = NULL;

    g_autofree char *unshare = g_find_program_in_path("unshare");
    g_autofree char *nsenter = g_find_program_in_path("nsenter");

    if (getuid() != 0 || !simkernel_available() || unshare == NULL || nsenter == NULL) {
        g_test_skip("Needs root, unshare, nsenter and the simulated kernel.");
        return;
    }
    env = env_private_state();
    in_daemon_ns(env, break_script);
    before = tree_snapshot(env->host);
    message = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Bind",
                         g_variant_new("(^asa{sv})", one, NULL), ZPCID_DBUS_ERROR_FAILED);
    g_test_message("Bind: %s", message);
    g_assert_nonnull(strstr(message, word));
    after = tree_snapshot(env->host);
    tree_assert_equal(before, after);
    g_assert_true(daemon_alive(env));

    in_daemon_ns(env, repair_script);
    g_variant_unref(manager_call(env, "Bind", g_variant_new("(^asa{sv})", one, NULL)));
    driver = driver_of(env, ADDR_IDLE_NVME);
    g_assert_cmpstr(driver, ==, "vfio-pci");
    env_free(env);
}

/* A read-only state directory at start: zpcid cannot take its lock or keep a journal, so it
 * refuses to serve (exit status 1, before owning the name) rather than bind without a
 * journal. (A file system that turns read-only later fails journal writes like a full one:
 * test_state_full.) */
static void
test_state_read_only(void)
{
    Env *env;
    g_autofree char *unshare = g_find_program_in_path("unshare");
    const char *prefix[] = {"unshare",
                            "--mount",
                            "--propagation",
                            "private",
                            "sh",
                            "-c",
                            "mount -t tmpfs -o ro,size=64k zpcid-state \"$0\" && exec \"$@\"",
                            NULL,
                            NULL};
    GSubprocess *daemon;

    if (getuid() != 0 || unshare == NULL) {
        g_test_skip("Needs root and unshare.");
        return;
    }
    env = env_prepare(ENV_DEFAULT);
    g_assert_cmpint(g_mkdir_with_parents(env->state, 0700), ==, 0);
    prefix[7] = env->state;
    env->daemon_prefix = g_strdupv((char **)prefix);
    daemon = spawn_daemon(env, env->state, env->uevent_socket, FALSE);
    g_assert_true(g_subprocess_wait(daemon, NULL, NULL));
    g_assert_true(g_subprocess_get_if_exited(daemon));
    g_assert_cmpint(g_subprocess_get_exit_status(daemon), ==, 1);
    g_assert_false(name_has_owner(env, ZPCID_DBUS_NAME));
    g_object_unref(daemon);
    env_free(env);
}

static void
test_state_full(void)
{
    check_store_fault("dd if=/dev/zero of=\"$0/filler\" bs=4k 2>/dev/null; true",
                      "rm -f \"$0/filler\"", "space");
}

/* libvirt unreachable: domain methods end in a typed error, everything else works. */
static void
test_libvirt_unreachable(void)
{
    Env *env = env_prepare(ENV_DEFAULT);
    const char *one[] = {ADDR_IDLE_NVME, NULL};
    g_autofree char *m1 = NULL;
    g_autofree char *m2 = NULL;
    g_autofree char *m3 = NULL;
    GVariantBuilder b;

    g_free(env->libvirt_uri);
    env->libvirt_uri = g_strdup_printf("qemu+unix:///system?socket=%s/no-libvirtd", env->tmp);
    env_start_daemon(env);

    m1 = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "AttachToDomain",
                    g_variant_new("(s^asa{sv})", "guest", one, NULL), ZPCID_DBUS_ERROR_FAILED);
    m2 = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "DetachFromDomain",
                    g_variant_new("(s^asa{sv})", "guest", one, NULL), ZPCID_DBUS_ERROR_FAILED);
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_DOMAIN, g_variant_new_string("guest"));
    m3 = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "GetDomainXml",
                    g_variant_new("(^as@a{sv})", one, g_variant_builder_end(&b)),
                    ZPCID_DBUS_ERROR_FAILED);
    g_test_message("libvirt unreachable: %s | %s | %s", m1, m2, m3);
    g_assert_nonnull(strstr(m1, "libvirt"));

    /* The rest does not need libvirt. */
    g_variant_unref(manager_call(env, "Check", g_variant_new("(a{sv})", NULL)));
    g_variant_unref(manager_call(env, "GetDomainXml", g_variant_new("(^asa{sv})", one, NULL)));
    if (simkernel_available()) {
        const char *guards[] = {"domain", NULL};
        g_autofree char *busy = NULL;
        g_autoptr(GVariant) opts = NULL;

        /* Binding asks libvirt whether a guest uses the function; not knowing is not "no":
         * Busy, unless the caller overrides the domain guard. */
        busy = call_fails(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Bind",
                          g_variant_new("(^asa{sv})", one, NULL), ZPCID_DBUS_ERROR_BUSY);
        g_assert_nonnull(strstr(busy, "libvirt"));
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_ALLOW_GUARDS,
                              g_variant_new_strv(guards, -1));
        opts = g_variant_ref_sink(g_variant_builder_end(&b));
        g_variant_unref(manager_call(env, "Bind", g_variant_new("(^as@a{sv})", one, opts)));
        g_variant_unref(manager_call(env, "Unbind", g_variant_new("(^as@a{sv})", one, opts)));
    }
    g_assert_true(daemon_alive(env));
    env_free(env);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dbus/faults/stop-mid-bind", test_stop_mid_bind);
    g_test_add_func("/dbus/faults/bus-lost-mid-bind", test_bus_lost_mid_bind);
    g_test_add_func("/dbus/faults/killed-mid-bind-answers-after-repair",
                    test_killed_mid_bind_answers_after_repair);
    g_test_add_func("/dbus/faults/state-read-only", test_state_read_only);
    g_test_add_func("/dbus/faults/state-full", test_state_full);
    g_test_add_func("/dbus/faults/libvirt-unreachable", test_libvirt_unreachable);
    return g_test_run();
}
