/* zpcid over D-Bus, end to end: a private dbus-daemon running zpcid's own bus policy, the
 * real zpcid on a generated host tree (binds happen under the simulated kernel), a fake
 * polkit (python3-dbusmock's polkitd template) and the real zpcidctl. Every test starts its
 * own bus and daemon, so that none sees another's changes. */
#include <errno.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "error.h"
#include "inventory.h"
#include "readiness.h"
#include "test-common.h"
#include "variant.h"
#include "zpcid-dbus-generated.h"
#include "zpcid-names.h"

#define TIMEOUT_MS 15000
#define NOBODY 65534

/* Addresses of the fixed head of mkhost.py's functions (UID checking on: domain = uid). */
#define ADDR_NET_UP "0001:00:00.0"   /* mlx5_core, eno1 up: net guard */
#define ADDR_ISM "0003:00:00.0"      /* ism, nothing on it */
#define ADDR_UNBOUND "0004:00:00.0"  /* roce without driver */
#define ADDR_IDLE_NVME "000a:00:00.0" /* nvme, disk not mounted: free to bind */

#define ERR_INVALID ZPCID_DBUS_ERROR_INVALID_ARG
#define ERR_NOT_AUTHORIZED ZPCID_DBUS_ERROR_NOT_AUTHORIZED

typedef enum {
    ENV_DEFAULT = 0,
    ENV_POLKIT = 1 << 0,  /* fake polkit on the bus before zpcid starts */
    ENV_GUEST = 1 << 1,   /* libvirt test driver with a running guest using ADDR_NET_UP */
    ENV_NOTIFY = 1 << 2,  /* a NOTIFY_SOCKET with the watchdog on */
} EnvFlags;

typedef struct {
    char *member;
    char *path;
    GVariant *params;
} Signal;

typedef struct {
    EnvFlags flags;
    char *tmp;
    char *host;
    char *state;
    char *uevent_socket;
    char *libvirt_uri;
    char *bus_address;
    char *notify_path;
    char *config;
    int notify_fd;
    gboolean daemon_gone;
    GSubprocess *bus;
    GSubprocess *mock;
    GSubprocess *daemon;
    GDBusConnection *conn;
    GPtrArray *signals;
    guint subscription;
} Env;

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

static gboolean
simkernel_available(void)
{
    const char *path = g_getenv("ZPCID_SIMKERNEL");
    return path != NULL && g_file_test(path, G_FILE_TEST_EXISTS);
}

static const char *
dbusmock_python(void)
{
    const char *python = g_getenv("ZPCID_DBUSMOCK_PYTHON");
    return python != NULL && *python != '\0' ? python : NULL;
}

static GSubprocessLauncher *
launcher_new(GSubprocessFlags flags, gboolean as_nobody)
{
    GSubprocessLauncher *launcher = g_subprocess_launcher_new(flags);

    /* Nothing of the test's own environment that could reach a real bus or preload. */
    g_subprocess_launcher_unsetenv(launcher, "LD_PRELOAD");
    g_subprocess_launcher_unsetenv(launcher, "ZPCID_SIMKERNEL_ROOT");
    g_subprocess_launcher_unsetenv(launcher, "DBUS_SESSION_BUS_ADDRESS");
    g_subprocess_launcher_unsetenv(launcher, "DBUS_SYSTEM_BUS_ADDRESS");
    g_subprocess_launcher_unsetenv(launcher, "NOTIFY_SOCKET");
    g_subprocess_launcher_set_child_setup(launcher, as_nobody ? child_setup_nobody
                                                              : child_setup_die_with_parent,
                                          NULL, NULL);
    return launcher;
}

static void
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
static gboolean
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

static gboolean
name_has_owner(Env *env, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        env->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "NameHasOwner", g_variant_new("(s)", name), G_VARIANT_TYPE("(b)"),
        G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
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

static void
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
    g_autofree char *policy = g_build_filename(g_getenv("ZPCID_SOURCE_ROOT"), "xml",
                                               "org.zpcid1.conf", NULL);
    g_autofree char *own = NULL;
    g_autofree char *config = NULL;
    g_autoptr(GError) error = NULL;

    /* Like the system bus: method calls are denied unless a policy allows them, so zpcid's
     * own policy file decides what its callers may do. */
    if (getuid() != 0)
        own = g_strdup_printf("<policy user=\"%u\"><allow own=\"" ZPCID_DBUS_NAME
                              "\"/></policy>",
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
    const char *argv[] = {g_getenv("DBUS_DAEMON"), config, "--nofork", "--print-address=1",
                          NULL};
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
    env->conn = g_dbus_connection_new_for_address_sync(
        env->bus_address,
        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
            G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
        NULL, NULL, &error);
    g_assert_no_error(error);
    g_dbus_connection_set_exit_on_close(env->conn, FALSE);
}

static void
start_mock(Env *env)
{
    g_autoptr(GSubprocessLauncher) launcher = launcher_new(G_SUBPROCESS_FLAGS_NONE, FALSE);
    const char *argv[] = {dbusmock_python(), "-m", "dbusmock", "--template", "polkitd", NULL};
    g_autoptr(GError) error = NULL;

    g_subprocess_launcher_setenv(launcher, "DBUS_SYSTEM_BUS_ADDRESS", env->bus_address, TRUE);
    /* The mock logs every call on stdout, which is the test's TAP stream: keep it on stderr. */
    g_subprocess_launcher_take_stdout_fd(launcher, dup(STDERR_FILENO));
    env->mock = g_subprocess_launcher_spawnv(launcher, argv, &error);
    g_assert_no_error(error);
    wait_for_name(env, "org.freedesktop.PolicyKit1", TRUE);
}

static void
polkit_allow(Env *env, const char *const *actions)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        env->conn, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
        "org.freedesktop.DBus.Mock", "SetAllowed",
        g_variant_new("(@as)", g_variant_new_strv(actions, -1)), NULL, G_DBUS_CALL_FLAGS_NONE,
        -1, NULL, &error);

    g_assert_no_error(error);
    g_assert_nonnull(reply);
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

static GSubprocess *
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

static void
on_daemon_exit(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Env *env = user_data;

    /* Only the first daemon is watched; a test that replaces it clears the field first. */
    if (g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL) && env->daemon == (gpointer)source)
        env->daemon_gone = TRUE;
}

static Env *
env_new(EnvFlags flags)
{
    Env *env = g_new0(Env, 1);
    g_autoptr(GError) error = NULL;
    const char *mkhost_args[] = {NULL, NULL, "--functions", "13", "--standby", "1", "--seed",
                                 "21", NULL};

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
    env->subscription = g_dbus_connection_signal_subscribe(
        env->conn, ZPCID_DBUS_NAME, NULL, NULL, NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_signal,
        env, NULL);
    if (flags & ENV_POLKIT)
        start_mock(env);
    env->daemon = spawn_daemon(env, env->state, env->uevent_socket, FALSE);
    g_subprocess_wait_async(env->daemon, NULL, on_daemon_exit, env);
    wait_for_name(env, ZPCID_DBUS_NAME, TRUE);
    return env;
}

/* SIGTERM must end zpcid cleanly, with status 0. */
static void
stop_daemon(GSubprocess *daemon)
{
    g_autoptr(GError) error = NULL;

    g_subprocess_send_signal(daemon, SIGTERM);
    g_assert_true(g_subprocess_wait(daemon, NULL, &error));
    g_assert_true(g_subprocess_get_if_exited(daemon));
    g_assert_cmpint(g_subprocess_get_exit_status(daemon), ==, 0);
}

static void
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
    g_free(env);
}

/* ---- calls ---- */

static GVariant *
call(Env *env, const char *path, const char *iface, const char *method, GVariant *params,
     GError **error)
{
    return g_dbus_connection_call_sync(env->conn, ZPCID_DBUS_NAME, path, iface, method, params,
                                       NULL, G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, error);
}

static GVariant *
call_ok(Env *env, const char *path, const char *iface, const char *method, GVariant *params)
{
    g_autoptr(GError) error = NULL;
    GVariant *reply = call(env, path, iface, method, params, &error);

    g_assert_no_error(error);
    return reply;
}

/* Asserts that the call fails with the D-Bus error @name; returns the message. */
static char *
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

static GVariant *
manager_call(Env *env, const char *method, GVariant *params)
{
    return call_ok(env, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, method, params);
}

static GVariant *
get_all(Env *env, const char *path, const char *iface)
{
    g_autoptr(GVariant) reply = call_ok(env, path, "org.freedesktop.DBus.Properties", "GetAll",
                                        g_variant_new("(s)", iface));
    GVariant *props;

    g_variant_get(reply, "(@a{sv})", &props);
    return props;
}

static char *
resolve(Env *env, const char *spec)
{
    g_autoptr(GVariant) reply = manager_call(env, "ResolveFunction",
                                             g_variant_new("(sa{sv})", spec, NULL));
    char *path;

    g_variant_get(reply, "(o)", &path);
    return path;
}

static char *
function_string(Env *env, const char *spec, const char *key)
{
    g_autofree char *path = resolve(env, spec);
    g_autoptr(GVariant) props = get_all(env, path, ZPCID_DBUS_IFACE_FUNCTION);
    char *value = NULL;

    g_assert_true(g_variant_lookup(props, key, "s", &value));
    return value;
}

static GVariant *
options_no_interaction(void)
{
    GVariantBuilder b;

    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_NO_USER_INTERACTION,
                          g_variant_new_boolean(TRUE));
    return g_variant_builder_end(&b);
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
static GVariant *
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

static void
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
static void
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

static void
host_symlink(Env *env, const char *rel, const char *target)
{
    g_autofree char *path = g_build_filename(env->host, rel, NULL);
    g_autofree char *dir = g_path_get_dirname(path);

    g_mkdir_with_parents(dir, 0755);
    g_unlink(path);
    g_assert_cmpint(symlink(target, path), ==, 0);
}

static void
host_remove(Env *env, const char *rel)
{
    g_autofree char *path = g_build_filename(env->host, rel, NULL);
    const char *argv[] = {"rm", "-rf", path, NULL};

    run_quiet(argv);
}

/* ---- zpcidctl ---- */

typedef struct {
    int status;
    char *out;
    char *err;
} CtlResult;

static void
ctl_result_free(CtlResult *r)
{
    g_free(r->out);
    g_free(r->err);
    g_free(r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CtlResult, ctl_result_free)

static CtlResult *
run_ctl_full(Env *env, gboolean as_nobody, const char *const *args)
{
    g_autoptr(GSubprocessLauncher) launcher = launcher_new(
        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, as_nobody);
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

#define run_ctl(env, ...) run_ctl_full(env, FALSE, (const char *const[]){__VA_ARGS__, NULL})
#define run_ctl_nobody(env, ...) run_ctl_full(env, TRUE, (const char *const[]){__VA_ARGS__, NULL})

/* The spec ("0x...") of the standby function; its object path in @path. */
static char *
find_standby(Env *env, char **path)
{
    g_autoptr(GVariant) reply = call_ok(env, ZPCID_DBUS_PATH, "org.freedesktop.DBus.ObjectManager",
                                        "GetManagedObjects", NULL);
    g_autoptr(GVariantIter) iter = NULL;
    const char *object;
    GVariant *interfaces;

    g_variant_get(reply, "(a{oa{sa{sv}}})", &iter);
    while (g_variant_iter_loop(iter, "{&o@a{sa{sv}}}", &object, &interfaces)) {
        g_autoptr(GVariant) props = g_variant_lookup_value(interfaces, ZPCID_DBUS_IFACE_FUNCTION,
                                                           G_VARIANT_TYPE_VARDICT);
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

    /* polkit says yes: each passes. */
    polkit_allow(env, all);
    for (gsize i = 0; i < G_N_ELEMENTS(mutations); i++)
        assert_passes(env, &mutations[i], fpath);

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

static gboolean
notify_has(gpointer data)
{
    struct {
        Env *env;
        GString *seen;
        const char *want;
    } *w = data;
    char buf[512];
    ssize_t n;

    while ((n = recv(w->env->notify_fd, buf, sizeof(buf) - 1, 0)) > 0) {
        buf[n] = '\0';
        g_string_append_printf(w->seen, "%s\n", buf);
    }
    return strstr(w->seen->str, w->want) != NULL;
}

/* sd_notify, the watchdog, and a clean end on SIGTERM, on losing the name and when the bus
 * goes away. */
static void
test_lifecycle(void)
{
    Env *env = env_new(ENV_NOTIFY);
    g_autoptr(GString) seen = g_string_new(NULL);
    struct {
        Env *env;
        GString *seen;
        const char *want;
    } w = {env, seen, "READY=1"};
    g_autofree char *state2 = g_build_filename(env->tmp, "state2", NULL);
    g_autofree char *socket2 = g_build_filename(env->tmp, "uevent2.sock", NULL);
    g_autoptr(GSubprocess) second = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_true(wait_until(notify_has, &w));
    w.want = "WATCHDOG=1";
    g_assert_true(wait_until(notify_has, &w));

    /* A second zpcid with --replace takes the name; the first ends cleanly. */
    second = spawn_daemon(env, state2, socket2, TRUE);
    g_assert_true(g_subprocess_wait(env->daemon, NULL, &error));
    g_assert_true(g_subprocess_get_if_exited(env->daemon));
    g_assert_cmpint(g_subprocess_get_exit_status(env->daemon), ==, 0);
    w.want = "STOPPING=1";
    g_assert_true(wait_until(notify_has, &w));
    g_clear_object(&env->daemon);
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

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dbus/manager-properties", test_manager_properties);
    g_test_add_func("/dbus/function-objects", test_function_objects);
    g_test_add_func("/dbus/resolve", test_resolve);
    g_test_add_func("/dbus/invalid-arguments", test_invalid_arguments);
    g_test_add_func("/dbus/domain-xml", test_domain_xml);
    g_test_add_func("/dbus/libvirt-domains", test_libvirt_domains);
    g_test_add_func("/dbus/bind-unbind", test_bind_unbind);
    g_test_add_func("/dbus/uevents", test_uevents);
    g_test_add_func("/dbus/authorization/polkit", test_polkit);
    g_test_add_func("/dbus/authorization/no-polkit", test_no_polkit);
    g_test_add_func("/dbus/zpcidctl", test_zpcidctl);
    g_test_add_func("/dbus/lifecycle", test_lifecycle);
    return g_test_run();
}
