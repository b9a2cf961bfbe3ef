/* zpcid over D-Bus: starts the daemon on a private bus and measures, in one run,
 *   startup   spawn to the name org.zpcid1 being owned
 *   startup_first_answer
 *             spawn to the return of a Manager.Check sent as soon as the name is owned:
 *             when a client first gets data
 *   rss       VmRSS once idle after startup
 *   latency   of cached calls against org.freedesktop.DBus.Peer.Ping on the same daemon
 *   gmo       GetManagedObjects with this GDBus client, its GVariant decoding included
 *   gmo_sdbus GetManagedObjects with bench-gmo (sd-bus, from this program's directory),
 *             which reads the whole reply in place; null when bench-gmo was not built
 *   event     one uevent on the daemon's socket to its PropertiesChanged signal
 * and prints one JSON object. The event toggles driver_override in the fixture tree (never
 * the real /sys) and restores it.
 *
 *   bench-dbus BUS_ADDRESS ZPCID HOST_ROOT WORK_DIR ITERATIONS */
#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zpcid-names.h"
#include "bench-clock.h"
#include "test-common.h"

#define TIMEOUT_MS 60000

typedef struct {
    GDBusConnection *conn;
    gboolean owned;
    gboolean changed;
} Ctx;

static void
on_owner_changed(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                 const char *signal, GVariant *params, gpointer data)
{
    Ctx *ctx = data;
    const char *name, *old_owner, *new_owner;

    g_variant_get(params, "(&s&s&s)", &name, &old_owner, &new_owner);
    if (g_str_equal(name, ZPCID_DBUS_NAME) && *new_owner != '\0')
        ctx->owned = TRUE;
}

static void
on_properties_changed(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                      const char *signal, GVariant *params, gpointer data)
{
    ((Ctx *)data)->changed = TRUE;
}

static GVariant *
call(Ctx *ctx, const char *path, const char *iface, const char *method, GVariant *params,
     const char *reply_type)
{
    g_autoptr(GError) error = NULL;
    GVariant *reply =
        g_dbus_connection_call_sync(ctx->conn, ZPCID_DBUS_NAME, path, iface, method, params,
                                    reply_type != NULL ? G_VARIANT_TYPE(reply_type) : NULL,
                                    G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, &error);

    if (reply == NULL)
        g_error("%s.%s failed: %s", iface, method, error->message);
    return reply;
}

static int
compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Prints "name": [all samples in seconds], sorted. */
static void
print_samples(GString *out, const char *name, GArray *samples)
{
    qsort(samples->data, samples->len, sizeof(double), compare_double);
    g_string_append_printf(out, ",\n  \"%s\": [", name);
    for (guint i = 0; i < samples->len; i++)
        g_string_append_printf(out, "%s%.7f", i > 0 ? ", " : "", g_array_index(samples, double, i));
    g_string_append(out, "]");
}

/* The JSON object bench-gmo prints for @n calls on the bus at @address, or "null" when
 * bench-gmo was not built (no libsystemd). It runs against this program's daemon, which is
 * idle meanwhile, and measures the daemon's CPU itself. */
static char *
run_bench_gmo(const char *address, guint n)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *self = g_file_read_link("/proc/self/exe", &error);
    g_autofree char *dir = NULL, *exe = NULL, *count = g_strdup_printf("%u", n);
    g_autoptr(GSubprocess) proc = NULL;
    char *json = NULL;

    if (self == NULL)
        g_error("%s", error->message);
    dir = g_path_get_dirname(self);
    exe = g_build_filename(dir, "bench-gmo", NULL);
    if (!g_file_test(exe, G_FILE_TEST_IS_EXECUTABLE))
        return g_strdup("null");
    proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, exe, address, count, NULL);
    if (proc == NULL || !g_subprocess_communicate_utf8(proc, NULL, NULL, &json, NULL, &error) ||
        !g_subprocess_get_successful(proc))
        g_error("bench-gmo failed%s%s", error != NULL ? ": " : "",
                error != NULL ? error->message : "");
    g_strstrip(json);
    return json;
}

typedef struct {
    const char *name;
    const char *path;
    const char *iface;
    const char *method;
    GVariant *params;
    const char *reply_type;
} Call;

static GArray *
time_calls(Ctx *ctx, const Call *c, guint n)
{
    GArray *samples = g_array_new(FALSE, FALSE, sizeof(double));

    for (guint i = 0; i < n; i++) {
        gint64 t0 = g_get_monotonic_time();
        g_autoptr(GVariant) reply =
            call(ctx, c->path, c->iface, c->method,
                 c->params != NULL ? g_variant_ref(c->params) : NULL, c->reply_type);
        double dt = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
        g_array_append_val(samples, dt);
    }
    return samples;
}

/* A field of /proc/PID/status in KiB ("VmRSS", "RssAnon", "RssFile"). */
static guint64
read_status_kib(GPid pid, const char *field)
{
    g_autofree char *file = g_strdup_printf("/proc/%d/status", (int)pid);
    g_autofree char *status = NULL;
    g_autofree char *key = g_strconcat("\n", field, ":", NULL);
    const char *p;

    if (!g_file_get_contents(file, &status, NULL, NULL) || (p = strstr(status, key)) == NULL)
        return 0;
    return g_ascii_strtoull(p + strlen(key), NULL, 10);
}

/* VmRSS of the live children of @pid together (zpcid-libvirt-helper while it lives). */
static guint64
children_rss_kib(GPid pid)
{
    g_autoptr(GArray) children = test_children_of(pid);
    guint64 sum = 0;

    for (guint i = 0; i < children->len; i++)
        sum += read_status_kib(g_array_index(children, GPid, i), "VmRSS");
    return sum;
}

/* User and system CPU time of process @pid so far. */
static double
cpu_seconds_of(GPid pid)
{
    g_autofree char *file = g_strdup_printf("/proc/%d/stat", (int)pid);
    g_autofree char *stat = NULL;
    g_auto(GStrv) fields = NULL;
    const char *p;

    if (!g_file_get_contents(file, &stat, NULL, NULL) || (p = strrchr(stat, ')')) == NULL)
        return 0;
    /* After "pid (comm) ": state is field 3, utime 14, stime 15. */
    fields = g_strsplit(p + 2, " ", 0);
    if (g_strv_length(fields) < 13)
        return 0;
    return (double)(g_ascii_strtoull(fields[11], NULL, 10) +
                    g_ascii_strtoull(fields[12], NULL, 10)) /
           (double)sysconf(_SC_CLK_TCK);
}

static gboolean
on_timeout(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

/* The timeout is a source of its own: a blocking iteration with nothing else to dispatch
 * would otherwise wait for ever when the daemon never answers. */
static void
wait_for(gboolean *flag, double seconds)
{
    gboolean timed_out = FALSE;
    guint id = g_timeout_add((guint)(seconds * 1000), on_timeout, &timed_out);

    while (!*flag && !timed_out)
        g_main_context_iteration(NULL, TRUE);
    if (!*flag)
        g_error("timed out after %.0f s waiting for the daemon", seconds);
    if (!timed_out)
        g_source_remove(id);
}

static void
settle(guint ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000;
    while (g_get_monotonic_time() < end) {
        g_usleep(10000);
        while (g_main_context_iteration(NULL, FALSE))
            ;
    }
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocessLauncher) launcher = NULL;
    g_autoptr(GSubprocess) daemon = NULL;
    g_autoptr(GVariant) objects = NULL, objects_array = NULL;
    g_autoptr(GString) out = g_string_new("{");
    g_autofree char *state = NULL, *sock = NULL, *conf = NULL, *fn_path = NULL;
    g_autofree char *fn_spec = NULL, *fn_address = NULL, *fn_devpath = NULL;
    GVariantIter iter;
    const char *obj_path;
    GVariant *ifaces;
    Ctx ctx = {0};
    guint n;
    gint64 t0;
    GPid pid;
    guint64 rss;

    if (argc != 6) {
        g_printerr("usage: bench-dbus BUS_ADDRESS ZPCID HOST_ROOT WORK_DIR ITERATIONS\n");
        return 2;
    }
    n = (guint)atoi(argv[5]);
    state = g_build_filename(argv[4], "state", NULL);
    sock = g_build_filename(argv[4], "uevent.sock", NULL);
    conf = g_build_filename(argv[4], "zpcid.conf", NULL);
    g_mkdir_with_parents(state, 0700);
    if (!g_file_set_contents(conf, "[zpcid]\n", -1, &error))
        g_error("%s", error->message);

    ctx.conn =
        g_dbus_connection_new_for_address_sync(argv[1],
                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                               NULL, NULL, &error);
    if (ctx.conn == NULL)
        g_error("%s", error->message);
    g_dbus_connection_signal_subscribe(ctx.conn, "org.freedesktop.DBus", "org.freedesktop.DBus",
                                       "NameOwnerChanged", "/org/freedesktop/DBus", ZPCID_DBUS_NAME,
                                       G_DBUS_SIGNAL_FLAGS_NONE, on_owner_changed, &ctx, NULL);
    /* The subscription must be in place before the daemon can take the name. */
    g_variant_unref(g_dbus_connection_call_sync(
        ctx.conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId",
        NULL, NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL));

    launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
    g_subprocess_launcher_setenv(launcher, "DBUS_SESSION_BUS_ADDRESS", argv[1], TRUE);
    g_subprocess_launcher_unsetenv(launcher, "DBUS_SYSTEM_BUS_ADDRESS");
    g_subprocess_launcher_unsetenv(launcher, "LD_PRELOAD");
    t0 = g_get_monotonic_time();
    daemon = g_subprocess_launcher_spawn(
        launcher, &error, argv[2], "--session", "--host-root", argv[3], "--state-dir", state,
        "--libvirt-uri", "test:///default", "--uevent-socket", sock, "--config", conf, NULL);
    if (daemon == NULL)
        g_error("%s", error->message);
    wait_for(&ctx.owned, 120);
    g_string_append_printf(out, "\n  \"startup\": %.6f",
                           (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC);
    /* Owning the name is not being useful: a daemon may own it before its scan and hold
     * calls until then. Check needs the readiness report, so it answers only with data. */
    g_variant_unref(call(&ctx, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Check",
                         g_variant_new("(a{sv})", NULL), "(sa(sssss))"));
    g_string_append_printf(out, ",\n  \"startup_first_answer\": %.6f",
                           (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC);
    pid = (GPid)atoi(g_subprocess_get_identifier(daemon));

    /* Idle: the daemon has nothing queued once it has answered that call. */
    settle(500);
    rss = read_status_kib(pid, "VmRSS");
    g_string_append_printf(out, ",\n  \"rss_kib\": %" G_GUINT64_FORMAT, rss);
    g_string_append_printf(out, ",\n  \"rss_anon_kib\": %" G_GUINT64_FORMAT,
                           read_status_kib(pid, "RssAnon"));
    g_string_append_printf(out, ",\n  \"rss_file_kib\": %" G_GUINT64_FORMAT,
                           read_status_kib(pid, "RssFile"));
    /* libvirt's client lives in a helper process started for the first domain refresh and let
     * go 10 s after its last call: reported, not counted as the daemon's. */
    g_string_append_printf(out, ",\n  \"rss_helper_kib\": %" G_GUINT64_FORMAT,
                           children_rss_kib(pid));

    {
        gint64 t = g_get_monotonic_time();
        objects = call(&ctx, ZPCID_DBUS_PATH, "org.freedesktop.DBus.ObjectManager",
                       "GetManagedObjects", NULL, "(a{oa{sa{sv}}})");
        g_string_append_printf(out, ",\n  \"gmo_first\": %.6f",
                               (double)(g_get_monotonic_time() - t) / G_USEC_PER_SEC);
    }
    /* The first host-bound function whose driver_override is not vfio-pci already, so that
     * toggling it to vfio-pci and back changes a property every time. The order of the
     * objects is the daemon's, so the test must not depend on which function comes first. */
    objects_array = g_variant_get_child_value(objects, 0);
    g_variant_iter_init(&iter, objects_array);
    while (fn_path == NULL && g_variant_iter_next(&iter, "{&o@a{sa{sv}}}", &obj_path, &ifaces)) {
        g_autoptr(GVariant) props = g_variant_lookup_value(ifaces, ZPCID_DBUS_IFACE_FUNCTION, NULL);
        const char *state_s = NULL, *address = NULL, *override = NULL;
        guint32 fid;

        if (props != NULL && g_variant_lookup(props, "State", "&s", &state_s) &&
            g_str_equal(state_s, "host") && g_variant_lookup(props, "Address", "&s", &address) &&
            g_variant_lookup(props, "DriverOverride", "&s", &override) &&
            !g_str_equal(override, "vfio-pci") && g_variant_lookup(props, "Fid", "u", &fid)) {
            fn_path = g_strdup(obj_path);
            fn_spec = g_strdup_printf("0x%x", fid);
            fn_address = g_strdup(address);
        }
        g_variant_unref(ifaces);
    }
    if (fn_path == NULL)
        g_error("no host-bound function in the tree");
    {
        g_autofree char *link = g_build_filename(argv[3], "sys/bus/pci/devices", fn_address, NULL);
        g_autofree char *target = g_file_read_link(link, &error);
        const char *p = target;
        if (target == NULL)
            g_error("%s", error->message);
        while (g_str_has_prefix(p, "../"))
            p += 3;
        fn_devpath = g_strconcat("/", p, NULL); /* "/devices/pci..../ADDR" */
    }

    {
        GVariant *none = g_variant_ref_sink(g_variant_new("(a{sv})", NULL));
        GVariant *resolve =
            g_variant_ref_sink(g_variant_new("(s@a{sv})", fn_spec, g_variant_new("a{sv}", NULL)));
        GVariant *get =
            g_variant_ref_sink(g_variant_new("(ss)", ZPCID_DBUS_IFACE_FUNCTION, "Driver"));
        const Call calls[] = {
            {"ping", ZPCID_DBUS_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, NULL},
            {"check", ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "Check", none, NULL},
            {"get", fn_path, "org.freedesktop.DBus.Properties", "Get", get, NULL},
            {"resolve", ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, "ResolveFunction", resolve,
             NULL},
        };
        /* Interleaved rounds, so that noise from other processes hits every call alike. */
        GArray *samples[G_N_ELEMENTS(calls)];
        for (guint c = 0; c < G_N_ELEMENTS(calls); c++)
            samples[c] = g_array_new(FALSE, FALSE, sizeof(double));
        for (guint round = 0; round < 10; round++) {
            for (guint c = 0; c < G_N_ELEMENTS(calls); c++) {
                g_autoptr(GArray) s = time_calls(&ctx, &calls[c], MAX(n / 10, 1));
                g_array_append_vals(samples[c], s->data, s->len);
            }
        }
        for (guint c = 0; c < G_N_ELEMENTS(calls); c++) {
            print_samples(out, calls[c].name, samples[c]);
            g_array_unref(samples[c]);
        }
        g_variant_unref(none);
        g_variant_unref(resolve);
        g_variant_unref(get);
    }
    {
        const Call gmo = {
            "gmo", ZPCID_DBUS_PATH,  "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
            NULL,  "(a{oa{sa{sv}}})"};
        double daemon_cpu = cpu_seconds_of(pid), client_cpu = bench_own_cpu_seconds();
        g_autoptr(GArray) s = time_calls(&ctx, &gmo, 5);

        print_samples(out, "gmo", s);
        /* Where the time of a call goes: the daemon marshalling, this client parsing. */
        g_string_append_printf(out, ",\n  \"gmo_daemon_cpu\": %.6f",
                               (cpu_seconds_of(pid) - daemon_cpu) / s->len);
        g_string_append_printf(out, ",\n  \"gmo_client_cpu\": %.6f",
                               (bench_own_cpu_seconds() - client_cpu) / s->len);
    }
    {
        g_autofree char *sdbus = run_bench_gmo(argv[1], 5);
        g_string_append_printf(out, ",\n  \"gmo_sdbus\": %s", sdbus);
    }

    /* uevent -> PropertiesChanged. */
    {
        g_autofree char *override =
            g_build_filename(argv[3], "sys/bus/pci/devices", fn_address, "driver_override", NULL);
        g_autofree char *saved = NULL;
        g_autoptr(GArray) s = g_array_new(FALSE, FALSE, sizeof(double));
        g_autofree char *msg =
            g_strdup_printf("change@%s%cACTION=change%cDEVPATH=%s%cSUBSYSTEM=pci%cPCI_SLOT_NAME=%s",
                            fn_devpath, 0, 0, fn_devpath, 0, 0, fn_address);
        gsize msg_len = strlen("change@") + strlen(fn_devpath) + 1 + strlen("ACTION=change") + 1 +
                        strlen("DEVPATH=") + strlen(fn_devpath) + 1 + strlen("SUBSYSTEM=pci") + 1 +
                        strlen("PCI_SLOT_NAME=") + strlen(fn_address);
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        g_strlcpy(addr.sun_path, sock, sizeof(addr.sun_path));
        if (!g_file_get_contents(override, &saved, NULL, &error))
            g_error("%s", error->message);
        g_dbus_connection_signal_subscribe(
            ctx.conn, ZPCID_DBUS_NAME, "org.freedesktop.DBus.Properties", "PropertiesChanged",
            fn_path, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_properties_changed, &ctx, NULL);
        g_variant_unref(
            call(&ctx, ZPCID_DBUS_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, NULL));
        for (guint i = 0; i < MAX(n / 10, 10); i++) {
            gint64 t;
            double dt;
            if (!g_file_set_contents(override, i % 2 == 0 ? "vfio-pci\n" : saved, -1, &error))
                g_error("%s", error->message);
            ctx.changed = FALSE;
            t = g_get_monotonic_time();
            if (sendto(fd, msg, msg_len, 0, (struct sockaddr *)&addr, sizeof(addr)) < 0)
                g_error("sendto: %s", g_strerror(errno));
            wait_for(&ctx.changed, 30);
            dt = (double)(g_get_monotonic_time() - t) / G_USEC_PER_SEC;
            g_array_append_val(s, dt);
        }
        if (!g_file_set_contents(override, saved, -1, &error))
            g_error("%s", error->message);
        close(fd);
        print_samples(out, "event", s);
    }
    g_string_append_printf(out, ",\n  \"rss_kib_after\": %" G_GUINT64_FORMAT,
                           read_status_kib(pid, "VmRSS"));

    g_subprocess_send_signal(daemon, SIGTERM);
    if (!g_subprocess_wait_check(daemon, NULL, &error))
        g_error("zpcid did not exit cleanly: %s", error->message);
    g_string_append(out, "\n}\n");
    g_print("%s", out->str);
    return 0;
}
