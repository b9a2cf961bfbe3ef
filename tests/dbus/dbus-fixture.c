/* The shared fixture of the D-Bus tests (see dbus-fixture.h). */
#include "dbus-fixture.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- processes ---- */

/* Children die with the test, also when an assertion aborts it. */
static void
child_setup_die_with_parent(gpointer user_data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void
child_setup_nobody(gpointer user_data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
        _exit(127);
}

gboolean
simkernel_available(void)
{
    const char *path = g_getenv("ZPCID_SIMKERNEL");
    return path != NULL && g_file_test(path, G_FILE_TEST_EXISTS);
}

const char *
dbusmock_python(void)
{
    const char *python = g_getenv("ZPCID_DBUSMOCK_PYTHON");
    return python != NULL && *python != '\0' ? python : NULL;
}

GSubprocessLauncher *
launcher_new(GSubprocessFlags flags, gboolean as_nobody)
{
    GSubprocessLauncher *launcher = g_subprocess_launcher_new(flags);

    /* Nothing of the test's own environment that could reach a real bus or preload. */
    g_subprocess_launcher_unsetenv(launcher, "LD_PRELOAD");
    g_subprocess_launcher_unsetenv(launcher, "ZPCID_SIMKERNEL_ROOT");
    g_subprocess_launcher_unsetenv(launcher, "DBUS_SESSION_BUS_ADDRESS");
    g_subprocess_launcher_unsetenv(launcher, "DBUS_SYSTEM_BUS_ADDRESS");
    g_subprocess_launcher_unsetenv(launcher, "NOTIFY_SOCKET");
    g_subprocess_launcher_set_child_setup(
        launcher, as_nobody ? child_setup_nobody : child_setup_die_with_parent, NULL, NULL);
    return launcher;
}

void
run_quiet(const char *const *argv)
{
    g_autoptr(GSubprocessLauncher) launcher = launcher_new(G_SUBPROCESS_FLAGS_NONE, FALSE);
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocess) p = g_subprocess_launcher_spawnv(launcher, argv, &error);

    g_assert_no_error(error);
    g_assert_true(g_subprocess_wait_check(p, NULL, &error));
    g_assert_no_error(error);
}

static gboolean
on_timeout_flag(gpointer user_data)
{
    *(gboolean *)user_data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Iterates the main context until @done(@data) or the timeout. */
static gboolean
on_tick(gpointer user_data)
{
    return G_SOURCE_CONTINUE;
}

/* Iterates the main context until @done(@data) or the timeout; @done is also asked on a
 * short tick, for conditions that no event of ours announces. */
gboolean
wait_until(gboolean (*done)(gpointer), gpointer data)
{
    gboolean timed_out = FALSE;
    guint timer = g_timeout_add(TIMEOUT_MS, on_timeout_flag, &timed_out);
    guint tick = g_timeout_add(20, on_tick, NULL);
    gboolean ok;

    while (!(ok = done(data)) && !timed_out)
        g_main_context_iteration(NULL, TRUE);
    g_source_remove(tick);
    if (!timed_out)
        g_source_remove(timer);
    return ok;
}

gboolean
name_has_owner(Env *env, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        env->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "NameHasOwner", g_variant_new("(s)", name), G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE,
        -1, NULL, &error);
    gboolean owned = FALSE;

    if (reply == NULL)
        g_test_message("NameHasOwner: %s", error->message);
    if (reply != NULL)
        g_variant_get(reply, "(b)", &owned);
    return owned;
}

typedef struct {
    Env *env;
    const char *name;
    gboolean owned;
} NameWait;

static gboolean
name_reached(gpointer data)
{
    NameWait *w = data;
    if (w->owned && w->env->daemon_gone)
        g_error("zpcid exited before it owned its name.");
    return name_has_owner(w->env, w->name) == w->owned;
}

void
wait_for_name(Env *env, const char *name, gboolean owned)
{
    NameWait w = {env, name, owned};
    g_assert_true(wait_until(name_reached, &w));
}

/* ---- the environment ---- */

static void
write_bus_config(Env *env)
{
    g_autofree char *path = g_build_filename(env->tmp, "bus.conf", NULL);
    g_autofree char *policy =
        g_build_filename(g_getenv("ZPCID_SOURCE_ROOT"), "xml", "org.zpcid1.conf", NULL);
    g_autofree char *own = NULL;
    g_autofree char *config = NULL;
    g_autoptr(GError) error = NULL;

    /* Like the system bus: method calls are denied unless a policy allows them, so zpcid's
     * own policy file decides what its callers may do. */
    if (getuid() != 0)
        own = g_strdup_printf("<policy user=\"%u\"><allow own=\"" ZPCID_DBUS_NAME "\"/></policy>",
                              getuid());
    config = g_strdup_printf(
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<busconfig>\n"
        "  <type>system</type>\n"
        "  <listen>unix:path=%s/bus</listen>\n"
        "  <auth>EXTERNAL</auth>\n"
        "  <policy context=\"default\">\n"
        "    <allow user=\"*\"/>\n"
        "    <deny own=\"*\"/>\n"
        "    <deny send_type=\"method_call\"/>\n"
        "    <allow send_type=\"signal\"/>\n"
        "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
        "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
        "    <allow receive_type=\"method_call\"/>\n"
        "    <allow receive_type=\"method_return\"/>\n"
        "    <allow receive_type=\"error\"/>\n"
        "    <allow receive_type=\"signal\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\"/>\n"
        "    <allow own=\"org.freedesktop.PolicyKit1\"/>\n"
        "    <allow send_destination=\"org.freedesktop.PolicyKit1\"/>\n"
        "  </policy>\n"
        "  %s\n"
        "  <include>%s</include>\n"
        "</busconfig>\n",
        env->tmp, own != NULL ? own : "", policy);
    g_assert_true(g_file_set_contents(path, config, -1, &error));
    g_assert_no_error(error);
}

static void
start_bus(Env *env)
{
    g_autoptr(GSubprocessLauncher) launcher = launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, FALSE);
    g_autofree char *config = g_strdup_printf("--config-file=%s/bus.conf", env->tmp);
    const char *argv[] = {g_getenv("DBUS_DAEMON"), config, "--nofork", "--print-address=1", NULL};
    g_autoptr(GDataInputStream) out = NULL;
    g_autoptr(GError) error = NULL;
    gsize len;

    write_bus_config(env);
    env->bus = g_subprocess_launcher_spawnv(launcher, argv, &error);
    g_assert_no_error(error);
    out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(env->bus));
    env->bus_address = g_data_input_stream_read_line(out, &len, NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(env->bus_address);
    env->conn =
        g_dbus_connection_new_for_address_sync(env->bus_address,
                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                               NULL, NULL, &error);
    g_assert_no_error(error);
    g_dbus_connection_set_exit_on_close(env->conn, FALSE);
}

void
start_mock(Env *env)
{
    g_autoptr(GSubprocessLauncher) launcher = launcher_new(G_SUBPROCESS_FLAGS_NONE, FALSE);
    /* polkitd's own template, plus a record of every check (polkitd-recording.py). */
    g_autofree char *template = g_build_filename(g_getenv("ZPCID_SOURCE_ROOT"), "tests", "dbus",
                                                 "polkitd-recording.py", NULL);
    const char *argv[] = {dbusmock_python(), "-m", "dbusmock", "--template", template, NULL};
    g_autoptr(GError) error = NULL;

    g_subprocess_launcher_setenv(launcher, "DBUS_SYSTEM_BUS_ADDRESS", env->bus_address, TRUE);
    /* The mock logs every call on stdout, which is the test's TAP stream: keep it on stderr. */
    g_subprocess_launcher_take_stdout_fd(launcher, dup(STDERR_FILENO));
    env->mock = g_subprocess_launcher_spawnv(launcher, argv, &error);
    g_assert_no_error(error);
    wait_for_name(env, "org.freedesktop.PolicyKit1", TRUE);
}

void
polkit_allow(Env *env, const char *const *actions)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        env->conn, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
        "org.freedesktop.DBus.Mock", "SetAllowed",
        g_variant_new("(@as)", g_variant_new_strv(actions, -1)), NULL, G_DBUS_CALL_FLAGS_NONE, -1,
        NULL, &error);

    g_assert_no_error(error);
    g_assert_nonnull(reply);
}

GVariant *
polkit_take_checks(Env *env)
{
    g_autoptr(GError) error = NULL;
    GVariant *reply = g_dbus_connection_call_sync(
        env->conn, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
        "org.freedesktop.DBus.Mock", "TakeChecks", NULL, G_VARIANT_TYPE("(a(sa{ss}u))"),
        G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
    GVariant *checks;

    g_assert_no_error(error);
    checks = g_variant_get_child_value(reply, 0);
    g_variant_unref(reply);
    return checks;
}

static void
on_signal(GDBusConnection *conn, const char *sender, const char *path, const char *iface,
          const char *member, GVariant *params, gpointer user_data)
{
    Env *env = user_data;
    Signal *s = g_new0(Signal, 1);

    s->member = g_strdup(member);
    s->path = g_strdup(path);
    s->params = g_variant_ref(params);
    g_ptr_array_add(env->signals, s);
}

static void
signal_free(Signal *s)
{
    g_free(s->member);
    g_free(s->path);
    g_variant_unref(s->params);
    g_free(s);
}

static void
write_libvirt_node(Env *env)
{
    g_autofree char *path = g_build_filename(env->tmp, "libvirt.xml", NULL);
    g_autoptr(GError) error = NULL;
    /* The test driver starts every domain of its file; this one uses ADDR_NET_UP. */
    const char *node =
        "<node>\n"
        "  <domain type='test'>\n"
        "    <name>zpcid-guest</name>\n"
        "    <memory unit='MiB'>512</memory>\n"
        "    <vcpu>1</vcpu>\n"
        "    <os><type arch='s390x' machine='s390-ccw-virtio'>hvm</type></os>\n"
        "    <devices>\n"
        "      <hostdev mode='subsystem' type='pci' managed='yes'>\n"
        "        <source><address domain='0x0001' bus='0x00' slot='0x00' function='0x0'/>"
        "</source>\n"
        "      </hostdev>\n"
        "    </devices>\n"
        "  </domain>\n"
        "</node>\n";

    g_assert_true(g_file_set_contents(path, node, -1, &error));
    g_assert_no_error(error);
    env->libvirt_uri = g_strdup_printf("test://%s", path);
}

static void
start_notify_socket(Env *env)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    env->notify_path = g_build_filename(env->tmp, "notify", NULL);
    g_assert_cmpuint(strlen(env->notify_path), <, sizeof(addr.sun_path));
    strcpy(addr.sun_path, env->notify_path);
    env->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    g_assert_cmpint(env->notify_fd, >=, 0);
    g_assert_cmpint(bind(env->notify_fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
}

GSubprocess *
spawn_daemon(Env *env, const char *state, const char *uevent_socket, gboolean replace)
{
    g_autoptr(GSubprocessLauncher) launcher = launcher_new(G_SUBPROCESS_FLAGS_NONE, FALSE);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    GSubprocess *daemon;

    g_subprocess_launcher_setenv(launcher, "DBUS_SESSION_BUS_ADDRESS", env->bus_address, TRUE);
    /* polkit's "system bus" is the private bus too, so the fake polkitd can answer. */
    g_subprocess_launcher_setenv(launcher, "DBUS_SYSTEM_BUS_ADDRESS", env->bus_address, TRUE);
    if (simkernel_available()) {
        g_subprocess_launcher_setenv(launcher, "LD_PRELOAD", g_getenv("ZPCID_SIMKERNEL"), TRUE);
        g_subprocess_launcher_setenv(launcher, "ZPCID_SIMKERNEL_ROOT", env->host, TRUE);
    }
    if (env->notify_path != NULL) {
        g_subprocess_launcher_setenv(launcher, "NOTIFY_SOCKET", env->notify_path, TRUE);
        g_subprocess_launcher_setenv(launcher, "WATCHDOG_USEC", "200000", TRUE);
    }
    if (g_getenv("ZPCID_TEST_VERBOSE") != NULL)
        g_subprocess_launcher_setenv(launcher, "G_MESSAGES_DEBUG", "all", TRUE);
    for (guint i = 0; env->daemon_prefix != NULL && env->daemon_prefix[i] != NULL; i++)
        g_ptr_array_add(argv, env->daemon_prefix[i]);
    /* ZPCID_TEST_DAEMON_WRAPPER (a shell-quoted command, e.g. valgrind and its options) runs
     * the daemon under a tool; the words live as long as the test program. */
    if (g_getenv("ZPCID_TEST_DAEMON_WRAPPER") != NULL) {
        static char **wrapper;

        if (wrapper == NULL &&
            !g_shell_parse_argv(g_getenv("ZPCID_TEST_DAEMON_WRAPPER"), NULL, &wrapper, &error))
            g_error("ZPCID_TEST_DAEMON_WRAPPER: %s", error->message);
        for (guint i = 0; wrapper[i] != NULL; i++)
            g_ptr_array_add(argv, wrapper[i]);
    }
    g_ptr_array_add(argv, (char *)g_getenv("ZPCID_DAEMON"));
    g_ptr_array_add(argv, "--session");
    g_ptr_array_add(argv, "--host-root");
    g_ptr_array_add(argv, env->host);
    g_ptr_array_add(argv, "--state-dir");
    g_ptr_array_add(argv, (char *)state);
    g_ptr_array_add(argv, "--libvirt-uri");
    g_ptr_array_add(argv, env->libvirt_uri);
    g_ptr_array_add(argv, "--uevent-socket");
    g_ptr_array_add(argv, (char *)uevent_socket);
    g_ptr_array_add(argv, "--config");
    g_ptr_array_add(argv, env->config);
    if (replace)
        g_ptr_array_add(argv, "--replace");
    g_ptr_array_add(argv, NULL);
    daemon = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    return daemon;
}

/* Envs not yet freed: the exit of a daemon that env_free() stopped is reported only on a later
 * main loop iteration, when its Env may be gone (found by AddressSanitizer). */
static GHashTable *live_envs;

static void
on_daemon_exit(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Env *env = user_data;

    /* Only the first daemon is watched; a test that replaces it clears the field first. */
    if (g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL) &&
        g_hash_table_contains(live_envs, env) && env->daemon == (gpointer)source)
        env->daemon_gone = TRUE;
}

Env *
env_prepare(EnvFlags flags)
{
    Env *env = g_new0(Env, 1);
    g_autoptr(GError) error = NULL;
    const char *mkhost_args[] = {NULL, NULL,     "--functions", "13", "--standby",
                                 "1",  "--seed", "21",          NULL};

    if (live_envs == NULL)
        live_envs = g_hash_table_new(NULL, NULL);
    g_hash_table_add(live_envs, env);
    env->flags = flags;
    env->notify_fd = -1;
    env->tmp = g_dir_make_tmp("zpcid-dbus-XXXXXX", &error);
    g_assert_no_error(error);
    /* Other users (the "nobody" client) must reach the bus socket inside. */
    g_assert_cmpint(g_chmod(env->tmp, 0755), ==, 0);
    env->host = g_build_filename(env->tmp, "host", NULL);
    env->state = g_build_filename(env->tmp, "state", NULL);
    env->uevent_socket = g_build_filename(env->tmp, "uevent.sock", NULL);
    env->config = g_build_filename(env->tmp, "zpcid.conf", NULL);
    g_assert_true(g_file_set_contents(env->config, "[zpcid]\nmax-workers=4\n", -1, NULL));
    mkhost_args[0] = g_getenv("MKHOST");
    mkhost_args[1] = env->host;
    run_quiet(mkhost_args);

    if (flags & ENV_GUEST)
        write_libvirt_node(env);
    else
        env->libvirt_uri = g_strdup("test:///default");
    if (flags & ENV_NOTIFY)
        start_notify_socket(env);

    start_bus(env);
    env->signals = g_ptr_array_new_with_free_func((GDestroyNotify)signal_free);
    env->subscription =
        g_dbus_connection_signal_subscribe(env->conn, ZPCID_DBUS_NAME, NULL, NULL, NULL, NULL,
                                           G_DBUS_SIGNAL_FLAGS_NONE, on_signal, env, NULL);
    if (flags & ENV_POLKIT)
        start_mock(env);
    return env;
}

void
env_start_daemon(Env *env)
{
    g_assert_null(env->daemon);
    env->daemon_gone = FALSE;
    env->daemon = spawn_daemon(env, env->state, env->uevent_socket, FALSE);
    g_subprocess_wait_async(env->daemon, NULL, on_daemon_exit, env);
    wait_for_name(env, ZPCID_DBUS_NAME, TRUE);
}

Env *
env_new(EnvFlags flags)
{
    Env *env = env_prepare(flags);

    env_start_daemon(env);
    return env;
}

/* SIGTERM must end zpcid cleanly, with status 0. */
void
stop_daemon(GSubprocess *daemon)
{
    g_autoptr(GError) error = NULL;

    g_subprocess_send_signal(daemon, SIGTERM);
    g_assert_true(g_subprocess_wait(daemon, NULL, &error));
    g_assert_true(g_subprocess_get_if_exited(daemon));
    g_assert_cmpint(g_subprocess_get_exit_status(daemon), ==, 0);
}

void
env_free(Env *env)
{
    const char *argv[] = {"rm", "-rf", env->tmp, NULL};

    if (env->daemon != NULL)
        stop_daemon(env->daemon);
    g_clear_object(&env->daemon);
    if (env->mock != NULL) {
        g_subprocess_force_exit(env->mock);
        g_subprocess_wait(env->mock, NULL, NULL);
    }
    g_clear_object(&env->mock);
    g_dbus_connection_signal_unsubscribe(env->conn, env->subscription);
    g_dbus_connection_close_sync(env->conn, NULL, NULL);
    g_clear_object(&env->conn);
    if (env->bus != NULL) {
        g_subprocess_send_signal(env->bus, SIGTERM);
        g_subprocess_wait(env->bus, NULL, NULL);
    }
    g_clear_object(&env->bus);
    if (env->notify_fd >= 0)
        close(env->notify_fd);
    g_ptr_array_unref(env->signals);
    g_assert_true(strstr(env->tmp, "zpcid-dbus-") != NULL);
    run_quiet(argv);
    g_free(env->tmp);
    g_free(env->host);
    g_free(env->state);
    g_free(env->uevent_socket);
    g_free(env->libvirt_uri);
    g_free(env->bus_address);
    g_free(env->notify_path);
    g_free(env->config);
    g_strfreev(env->daemon_prefix);
    g_hash_table_remove(live_envs, env);
    g_free(env);
}

/* ---- calls ---- */

GVariant *
call(Env *env, const char *path, const char *iface, const char *method, GVariant *params,
     GError **error)
{
    return g_dbus_connection_call_sync(env->conn, ZPCID_DBUS_NAME, path, iface, method, params,
                                       NULL, G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, error);
}

GVariant *
call_ok(Env *env, const char *path, const char *iface, const char *method, GVariant *params)
{
    g_autoptr(GError) error = NULL;
    GVariant *reply = call(env, path, iface, method, params, &error);

    g_assert_no_error(error);
    return reply;
}

/* Asserts that the call fails with the D-Bus error @name; returns the message. */
char *
call_fails(Env *env, const char *path, const char *iface, const char *method, GVariant *params,
           const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = call(env, path, iface, method, params, &error);
    g_autofree char *remote = NULL;

    g_assert_null(reply);
    g_assert_nonnull(error);
    remote = g_dbus_error_get_remote_error(error);
    if (g_strcmp0(remote, name) != 0)
        g_printerr("%s.%s: expected %s, got %s\n", iface, method, name, error->message);
    g_assert_cmpstr(remote, ==, name);
    g_dbus_error_strip_remote_error(error);
    /* Sentences, not codes (libvirt's own text may end them without a period). */
    g_assert_true(!g_unichar_islower(g_utf8_get_char(error->message)) ||
                  g_str_has_prefix(error->message, "libvirt "));
    g_assert_cmpuint(strlen(error->message), >, 20);
    return g_strdup(error->message);
}

GVariant *
manager_call(Env *env, const char *method, GVariant *params)
{
    return call_ok(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, method, params);
}

GVariant *
get_all(Env *env, const char *path, const char *iface)
{
    g_autoptr(GVariant) reply = call_ok(env, path, "org.freedesktop.DBus.Properties", "GetAll",
                                        g_variant_new("(s)", iface));
    GVariant *props;

    g_variant_get(reply, "(@a{sv})", &props);
    return props;
}

char *
resolve(Env *env, const char *spec)
{
    g_autoptr(GVariant) reply =
        manager_call(env, "ResolveFunction", g_variant_new("(sa{sv})", spec, NULL));
    char *path;

    g_variant_get(reply, "(o)", &path);
    return path;
}

char *
function_string(Env *env, const char *spec, const char *key)
{
    g_autofree char *path = resolve(env, spec);
    g_autoptr(GVariant) props = get_all(env, path, ZPCID_DBUS_IFACE_FUNCTION);
    char *value = NULL;

    g_assert_true(g_variant_lookup(props, key, "s", &value));
    return value;
}

GVariant *
options_no_interaction(void)
{
    GVariantBuilder b;

    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_NO_USER_INTERACTION,
                          g_variant_new_boolean(TRUE));
    return g_variant_builder_end(&b);
}

gboolean
daemon_alive(Env *env)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        call(env, ZPCID_DBUS_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, &error);

    if (reply == NULL)
        g_test_message("Ping: %s", error->message);
    return reply != NULL;
}

/* ---- signals ---- */

typedef struct {
    Env *env;
    const char *member;
    const char *path;     /* NULL: any */
    const char *property; /* PropertiesChanged: must carry this one */
    Signal *found;
} SignalWait;

static gboolean
signal_matches(SignalWait *w, Signal *s)
{
    if (!g_str_equal(s->member, w->member))
        return FALSE;
    if (g_str_equal(w->member, "InterfacesAdded") || g_str_equal(w->member, "InterfacesRemoved")) {
        const char *object;
        g_variant_get_child(s->params, 0, "&o", &object);
        return w->path == NULL || g_str_equal(object, w->path);
    }
    if (w->path != NULL && !g_str_equal(s->path, w->path))
        return FALSE;
    if (w->property != NULL) {
        g_autoptr(GVariant) changed = g_variant_get_child_value(s->params, 1);
        g_autoptr(GVariant) v = g_variant_lookup_value(changed, w->property, NULL);
        return v != NULL;
    }
    return TRUE;
}

static gboolean
signal_found(gpointer data)
{
    SignalWait *w = data;

    for (guint i = 0; i < w->env->signals->len; i++) {
        Signal *s = g_ptr_array_index(w->env->signals, i);
        if (signal_matches(w, s)) {
            w->found = g_ptr_array_steal_index(w->env->signals, i);
            return TRUE;
        }
    }
    return FALSE;
}

/* Waits for (and consumes) the first matching signal; its parameters. */
GVariant *
wait_signal(Env *env, const char *member, const char *path, const char *property)
{
    SignalWait w = {env, member, path, property, NULL};
    GVariant *params;

    if (!wait_until(signal_found, &w))
        g_error("No %s signal for %s (%s) arrived.", member, path != NULL ? path : "any path",
                property != NULL ? property : "-");
    params = g_variant_ref(w.found->params);
    signal_free(w.found);
    return params;
}

void
flush_signals(Env *env)
{
    /* A round trip to zpcid: whatever it sent before the reply is here after it. */
    g_variant_unref(get_all(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER));
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_ptr_array_set_size(env->signals, 0);
}

/* ---- uevents ---- */

/* Sends "ACTION@DEVPATH\0ACTION=..\0DEVPATH=..\0KEY=VALUE\0..." like the kernel. */
void
send_uevent(Env *env, const char *action, const char *devpath, ...)
{
    g_autoptr(GString) msg = g_string_new(NULL);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const char *field;
    va_list ap;
    int fd;

    g_string_append_printf(msg, "%s@%s", action, devpath);
    g_string_append_c(msg, '\0');
    g_string_append_printf(msg, "ACTION=%s", action);
    g_string_append_c(msg, '\0');
    g_string_append_printf(msg, "DEVPATH=%s", devpath);
    g_string_append_c(msg, '\0');
    va_start(ap, devpath);
    while ((field = va_arg(ap, const char *)) != NULL) {
        g_string_append(msg, field);
        g_string_append_c(msg, '\0');
    }
    va_end(ap);
    strcpy(addr.sun_path, env->uevent_socket);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(sendto(fd, msg->str, msg->len, 0, (struct sockaddr *)&addr, sizeof(addr)), ==,
                    (gssize)msg->len);
    close(fd);
}

void
host_symlink(Env *env, const char *rel, const char *target)
{
    g_autofree char *path = g_build_filename(env->host, rel, NULL);
    g_autofree char *dir = g_path_get_dirname(path);

    g_mkdir_with_parents(dir, 0755);
    g_unlink(path);
    g_assert_cmpint(symlink(target, path), ==, 0);
}

void
host_remove(Env *env, const char *rel)
{
    g_autofree char *path = g_build_filename(env->host, rel, NULL);
    const char *argv[] = {"rm", "-rf", path, NULL};

    run_quiet(argv);
}

static void
snapshot_dir(GHashTable *snap, const char *root, const char *rel)
{
    g_autofree char *dir_path = g_build_filename(root, rel, NULL);
    g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
    const char *name;

    g_assert_nonnull(dir);
    while ((name = g_dir_read_name(dir)) != NULL) {
        g_autofree char *child = *rel != '\0' ? g_build_filename(rel, name, NULL) : g_strdup(name);
        g_autofree char *path = g_build_filename(root, child, NULL);
        struct stat st;

        g_assert_cmpint(lstat(path, &st), ==, 0);
        if (S_ISLNK(st.st_mode)) {
            g_autofree char *target = g_file_read_link(path, NULL);
            g_hash_table_insert(snap, g_steal_pointer(&child), g_strconcat("l:", target, NULL));
        } else if (S_ISDIR(st.st_mode)) {
            snapshot_dir(snap, root, child);
            g_hash_table_insert(snap, g_steal_pointer(&child), g_strdup("d"));
        } else if (S_ISREG(st.st_mode)) {
            g_autofree char *contents = NULL;
            gsize len = 0;
            g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
            g_hash_table_insert(snap, g_steal_pointer(&child), g_strdup_printf("f:%s", contents));
        } else {
            g_hash_table_insert(snap, g_steal_pointer(&child), g_strdup("other"));
        }
    }
}

GHashTable *
tree_snapshot(const char *root)
{
    GHashTable *snap = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    snapshot_dir(snap, root, "");
    return snap;
}

void
tree_assert_equal(GHashTable *before, GHashTable *after)
{
    GHashTableIter iter;
    gpointer key, value;

    g_hash_table_iter_init(&iter, before);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        const char *now = g_hash_table_lookup(after, key);
        if (g_strcmp0(now, value) != 0)
            g_error("The host entry “%s” changed: “%s” became “%s”.", (char *)key, (char *)value,
                    now != NULL ? now : "(gone)");
    }
    g_hash_table_iter_init(&iter, after);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        if (!g_hash_table_contains(before, key))
            g_error("The host entry “%s” appeared: “%s”.", (char *)key, (char *)value);
    }
}

/* ---- zpcidctl ---- */

void
ctl_result_free(CtlResult *r)
{
    g_free(r->out);
    g_free(r->err);
    g_free(r);
}

CtlResult *
run_ctl_full(Env *env, gboolean as_nobody, const char *const *args)
{
    g_autoptr(GSubprocessLauncher) launcher =
        launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, as_nobody);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GError) error = NULL;
    CtlResult *r = g_new0(CtlResult, 1);

    g_autofree char *ctl = g_strdup(g_getenv("ZPCIDCTL"));

    /* The build tree may sit below a directory only root can enter (a 0700 temp dir): the
     * "nobody" client runs a copy inside the test's own world-readable directory. */
    if (as_nobody) {
        g_autofree char *copy = g_build_filename(env->tmp, "zpcidctl", NULL);
        if (!g_file_test(copy, G_FILE_TEST_EXISTS)) {
            g_autoptr(GFile) src = g_file_new_for_path(ctl);
            g_autoptr(GFile) dst = g_file_new_for_path(copy);
            g_assert_true(g_file_copy(src, dst, G_FILE_COPY_NONE, NULL, NULL, NULL, &error));
            g_assert_no_error(error);
            g_assert_cmpint(g_chmod(copy, 0755), ==, 0);
        }
        g_free(ctl);
        ctl = g_steal_pointer(&copy);
    }
    g_subprocess_launcher_setenv(launcher, ZPCID_ENV_BUS_ADDRESS, env->bus_address, TRUE);
    g_ptr_array_add(argv, ctl);
    for (guint i = 0; args[i] != NULL; i++)
        g_ptr_array_add(argv, (char *)args[i]);
    g_ptr_array_add(argv, NULL);
    p = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &r->out, &r->err, &error));
    g_assert_no_error(error);
    g_assert_true(g_subprocess_get_if_exited(p));
    r->status = g_subprocess_get_exit_status(p);
    return r;
}

/* The spec ("0x...") of the standby function; its object path in @path. */
char *
find_standby(Env *env, char **path)
{
    g_autoptr(GVariant) reply = call_ok(env, ZPCID_DBUS_PATH, "org.freedesktop.DBus.ObjectManager",
                                        "GetManagedObjects", NULL);
    g_autoptr(GVariantIter) iter = NULL;
    const char *object;
    GVariant *interfaces;

    g_variant_get(reply, "(a{oa{sa{sv}}})", &iter);
    while (g_variant_iter_loop(iter, "{&o@a{sa{sv}}}", &object, &interfaces)) {
        g_autoptr(GVariant) props =
            g_variant_lookup_value(interfaces, ZPCID_DBUS_IFACE_FUNCTION, G_VARIANT_TYPE_VARDICT);
        const char *state = NULL;
        guint32 fid;

        if (props != NULL && g_variant_lookup(props, "State", "&s", &state) &&
            g_str_equal(state, "standby") && g_variant_lookup(props, "Fid", "u", &fid)) {
            if (path != NULL)
                *path = g_strdup(object);
            g_variant_unref(interfaces);
            return g_strdup_printf("0x%08x", fid);
        }
    }
    g_assert_not_reached();
    return NULL;
}
