/* Load: 8 clients, each on its own bus connection, make 1,000 mixed read calls while two
 * more race binds and unbinds on the same functions. The only error allowed is the
 * documented Busy of a function another request holds; zpcid's RSS after the load stays
 * close to its RSS after a warm-up of the same calls; the journal is settled at the end.
 *
 * The test asserts correctness only. It prints throughput and latency percentiles as TAP
 * comments, the figures of docs/robustness.md ("Load"). ZPCID_LOAD_CALLS changes the number
 * of calls per client, ZPCID_LOAD_RACES the binds and unbinds per racer (0: reads alone). */
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "dbus-fixture.h"
#include "journal.h"
#include "zpcid-names.h"

#define CLIENTS 8
#define RACERS  2
#define RACES   40

/* ZPCID_LOAD_RACES=0 measures the reads alone. */
static guint races = RACES;

typedef struct {
    Env *env;
    const char *fpath;
    guint calls;
    guint seed;
    GArray *latencies_us; /* gint64 */
    gint64 kind_us[7];    /* total per kind of read call */
    guint errors;
    guint busy;
    guint ok;
} Client;

static GDBusConnection *
connect_private(Env *env)
{
    g_autoptr(GError) error = NULL;
    GDBusConnection *conn =
        g_dbus_connection_new_for_address_sync(env->bus_address,
                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                               NULL, NULL, &error);

    g_assert_no_error(error);
    return conn;
}

/* One of the read calls, chosen by @i. */
static GVariant *
read_call(GDBusConnection *conn, const char *fpath, guint i, GError **error)
{
    const char *one[] = {ADDR_IDLE_NVME, NULL};
    const char *path = ZPCID_DBUS_PATH;
    const char *iface = ZPCID_DBUS_IFACE_MANAGER;
    const char *method;
    GVariant *params;

    switch (i % 7) {
    case 0:
        iface = "org.freedesktop.DBus.Properties";
        method = "GetAll";
        params = g_variant_new("(s)", ZPCID_DBUS_IFACE_MANAGER);
        break;
    case 1:
        path = fpath;
        iface = "org.freedesktop.DBus.Properties";
        method = "GetAll";
        params = g_variant_new("(s)", ZPCID_DBUS_IFACE_FUNCTION);
        break;
    case 2:
        method = "Check";
        params = g_variant_new("(a{sv})", NULL);
        break;
    case 3:
        method = "ResolveFunction";
        params = g_variant_new("(sa{sv})", i % 2 ? "uid:0xa" : ADDR_ISM, NULL);
        break;
    case 4:
        iface = "org.freedesktop.DBus.ObjectManager";
        method = "GetManagedObjects";
        params = NULL;
        break;
    case 5:
        path = fpath;
        iface = ZPCID_DBUS_IFACE_FUNCTION;
        method = "GetHostdevXml";
        params = g_variant_new("(a{sv})", NULL);
        break;
    default:
        method = "GetDomainXml";
        params = g_variant_new("(^asa{sv})", one, NULL);
        break;
    }
    return g_dbus_connection_call_sync(conn, ZPCID_DBUS_NAME, path, iface, method, params, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, error);
}

static gpointer
reader_thread(gpointer data)
{
    Client *c = data;
    g_autoptr(GDBusConnection) conn = connect_private(c->env);

    for (guint i = 0; i < c->calls; i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        gint64 start = g_get_monotonic_time();
        gint64 took;

        reply = read_call(conn, c->fpath, i + c->seed, &error);
        took = g_get_monotonic_time() - start;
        g_array_append_val(c->latencies_us, took);
        c->kind_us[(i + c->seed) % 7] += took;
        if (reply == NULL) {
            g_printerr("# read %u: %s\n", i, error->message);
            c->errors++;
        } else {
            c->ok++;
        }
    }
    g_dbus_connection_close_sync(conn, NULL, NULL);
    return NULL;
}

/* Binds and unbinds overlapping sets of two functions: only Busy may come back. */
static gpointer
racer_thread(gpointer data)
{
    Client *c = data;
    g_autoptr(GDBusConnection) conn = connect_private(c->env);
    const char *both[] = {ADDR_IDLE_NVME, ADDR_ISM, NULL};
    const char *nvme[] = {ADDR_IDLE_NVME, NULL};
    const char *ism[] = {ADDR_ISM, NULL};
    const char *const *sets[] = {both, nvme, ism};

    for (guint i = 0; i < c->calls; i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        const char *method = (i + c->seed) % 2 ? "Unbind" : "Bind";
        const char *const *specs = sets[(i + c->seed) % G_N_ELEMENTS(sets)];

        reply = g_dbus_connection_call_sync(conn, ZPCID_DBUS_NAME, ZPCID_DBUS_PATH,
                                            ZPCID_DBUS_IFACE_MANAGER, method,
                                            g_variant_new("(^asa{sv})", specs, NULL), NULL,
                                            G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, &error);
        if (reply != NULL) {
            c->ok++;
        } else {
            g_autofree char *name = g_dbus_error_get_remote_error(error);
            if (g_strcmp0(name, ZPCID_DBUS_ERROR_BUSY) == 0 &&
                strstr(error->message, "busy with another request") != NULL) {
                c->busy++;
            } else {
                g_printerr("# %s: %s\n", method, error->message);
                c->errors++;
            }
        }
    }
    g_dbus_connection_close_sync(conn, NULL, NULL);
    return NULL;
}

static guint64
daemon_rss_kib(Env *env)
{
    g_autofree char *path =
        g_strdup_printf("/proc/%s/status", g_subprocess_get_identifier(env->daemon));
    g_autofree char *status = NULL;
    const char *line;

    g_assert_true(g_file_get_contents(path, &status, NULL, NULL));
    line = strstr(status, "VmRSS:");
    g_assert_nonnull(line);
    return g_ascii_strtoull(line + strlen("VmRSS:"), NULL, 10);
}

static int
compare_i64(gconstpointer a, gconstpointer b)
{
    gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
    return (x > y) - (x < y);
}

/* Runs the clients (and racers, if @race); returns the wall time in µs. */
static const char *const kind_names[] = {"Manager GetAll",  "Function GetAll",   "Check",
                                         "ResolveFunction", "GetManagedObjects", "GetHostdevXml",
                                         "GetDomainXml"};

static gint64
run_round(Env *env, const char *fpath, guint calls, gboolean race, GArray *all_latencies, guint *ok,
          guint *busy)
{
    gint64 kind_us[7] = {0};

    Client clients[CLIENTS + RACERS];
    GThread *threads[CLIENTS + RACERS];
    guint n = race ? CLIENTS + RACERS : CLIENTS;
    gint64 start = g_get_monotonic_time();
    gint64 wall;

    for (guint i = 0; i < n; i++) {
        clients[i] = (Client){env, fpath, i < CLIENTS ? calls : races, i, NULL, {0}, 0, 0, 0};
        clients[i].latencies_us = g_array_new(FALSE, FALSE, sizeof(gint64));
        threads[i] =
            g_thread_new("client", i < CLIENTS ? reader_thread : racer_thread, &clients[i]);
    }
    for (guint i = 0; i < n; i++)
        g_thread_join(threads[i]);
    wall = g_get_monotonic_time() - start;
    for (guint i = 0; i < n; i++) {
        g_assert_cmpuint(clients[i].errors, ==, 0);
        if (i < CLIENTS) {
            g_assert_cmpuint(clients[i].ok, ==, calls);
            for (guint k = 0; k < 7; k++)
                kind_us[k] += clients[i].kind_us[k];
            if (all_latencies != NULL)
                g_array_append_vals(all_latencies, clients[i].latencies_us->data,
                                    clients[i].latencies_us->len);
            *ok += clients[i].ok;
        } else {
            *ok += clients[i].ok;
            *busy += clients[i].busy;
        }
        g_array_unref(clients[i].latencies_us);
    }
    if (all_latencies != NULL) {
        for (guint k = 0; k < 7; k++)
            g_print("# load: %-18s mean %.2f ms\n", kind_names[k],
                    kind_us[k] / 1000.0 / (CLIENTS * calls / 7.0));
    }
    return wall;
}

static void
test_load(void)
{
    Env *env;
    g_autofree char *fpath = NULL;
    g_autoptr(GArray) latencies = g_array_new(FALSE, FALSE, sizeof(gint64));
    const char *calls_env = g_getenv("ZPCID_LOAD_CALLS");
    const char *races_env = g_getenv("ZPCID_LOAD_RACES");
    guint calls = calls_env != NULL ? (guint)atoi(calls_env) : 1000;
    guint ok = 0, busy = 0, warm_ok = 0, warm_busy = 0;
    guint64 rss_warm, rss_after;
    gint64 wall;
    double p50, p99, max;
    g_autofree char *journal_path = NULL;
    g_autofree char *journal = NULL;

    if (!simkernel_available()) {
        g_test_skip("The simulated kernel (tests/simkernel) is not built.");
        return;
    }
    if (races_env != NULL)
        races = (guint)atoi(races_env);
    env = env_new(ENV_DEFAULT);
    fpath = resolve(env, ADDR_IDLE_NVME);

    /* Warm-up: caches, GDBus's and libxml2's first allocations. */
    run_round(env, fpath, calls / 4 + 1, TRUE, NULL, &warm_ok, &warm_busy);
    rss_warm = daemon_rss_kib(env);

    wall = run_round(env, fpath, calls, TRUE, latencies, &ok, &busy);
    rss_after = daemon_rss_kib(env);
    g_array_sort(latencies, compare_i64);
    p50 = g_array_index(latencies, gint64, latencies->len / 2) / 1000.0;
    p99 = g_array_index(latencies, gint64, latencies->len * 99 / 100) / 1000.0;
    max = g_array_index(latencies, gint64, latencies->len - 1) / 1000.0;

    g_print("# load: %u clients x %u reads + %u racers x %u binds/unbinds in %.2f s\n", CLIENTS,
            calls, RACERS, races, wall / 1e6);
    g_print("# load: %.0f reads/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
            latencies->len / (wall / 1e6), p50, p99, max);
    g_print("# load: binds/unbinds done %u, refused Busy %u, other errors 0\n",
            ok - CLIENTS * calls, busy);
    g_print("# load: zpcid RSS %" G_GUINT64_FORMAT " KiB after warm-up, %" G_GUINT64_FORMAT
            " KiB after the load\n",
            rss_warm, rss_after);

    g_assert_cmpuint(latencies->len, ==, CLIENTS * calls);
    /* Stable: what grows with the number of calls is a leak; allow allocator slack. Under
     * AddressSanitizer freed memory sits in quarantine and LeakSanitizer checks leaks. */
    if (g_strcmp0(g_getenv("ZPCID_TEST_SANITIZED"), "1") != 0)
        g_assert_cmpuint(rss_after, <=, rss_warm + rss_warm / 4 + 2048);
    else
        g_test_message("RSS not compared: this is a sanitizer build.");

    /* The races left every function bound or not, never in between, and nothing pending. */
    g_assert_true(daemon_alive(env));
    journal_path = g_build_filename(env->state, ZPCID_JOURNAL_FILE, NULL);
    g_assert_true(g_file_get_contents(journal_path, &journal, NULL, NULL));
    g_assert_true(g_regex_match_simple("\"transactions\"\\s*:\\s*\\[\\s*\\]", journal, 0, 0));
    {
        const char *drivers[][2] = {{ADDR_IDLE_NVME, "nvme"}, {ADDR_ISM, "ism"}};
        for (gsize i = 0; i < G_N_ELEMENTS(drivers); i++) {
            g_autofree char *driver = function_string(env, drivers[i][0], "Driver");
            g_test_message("%s ends on %s", drivers[i][0], driver);
            g_assert_true(g_str_equal(driver, "vfio-pci") || g_str_equal(driver, drivers[i][1]));
        }
    }
    env_free(env);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dbus/load", test_load);
    return g_test_run();
}
