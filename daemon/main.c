/* zpcid: the zPCI passthrough service. Owns org.zpcid1 on the system bus (or, for tests and
 * demonstrations, the session bus) and exits cleanly on SIGTERM, when the name is lost or
 * when the bus goes away. */
#include <glib-unix.h>
#include <glib/gi18n-lib.h>
#include <locale.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "host.h"
#include "i18n.h"
#include "notify.h"
#include "service.h"
#include "zpcid-names.h"

typedef struct {
    GMainLoop *loop;
    ZpcidService *service;
    int exit_status;
    gboolean name_acquired;
    guint watchdog;
    GDBusConnection *connection;
} Daemon;

/* ---- bus ---- */

static gboolean
on_watchdog(gpointer user_data)
{
    zpcid_notify("WATCHDOG=1");
    return G_SOURCE_CONTINUE;
}

static void
on_connection_closed(GDBusConnection *connection, gboolean remote_peer_vanished, GError *error,
                     gpointer user_data)
{
    Daemon *daemon = user_data;

    g_message("The bus connection was closed; exiting.");
    g_main_loop_quit(daemon->loop);
}

static void
on_name_acquired(GDBusConnection *connection, const char *name, gpointer user_data)
{
    Daemon *daemon = user_data;
    guint64 usec;

    daemon->name_acquired = TRUE;
    g_message("zpcid %s is ready as %s.", ZPCID_VERSION, name);
    zpcid_notify("READY=1\nSTATUS=Serving org.zpcid1");
    usec = zpcid_notify_watchdog_usec();
    if (usec > 0)
        daemon->watchdog = g_timeout_add((guint)MAX(usec / 2000, 1), on_watchdog, daemon);
    zpcid_service_start(daemon->service);
}

static void
on_name_lost(GDBusConnection *connection, const char *name, gpointer user_data)
{
    Daemon *daemon = user_data;

    if (daemon->name_acquired)
        g_message("The name %s was taken over by another zpcid; exiting.", name);
    else
        g_warning("The name %s is owned by another process; is zpcid running already?", name);
    if (!daemon->name_acquired)
        daemon->exit_status = EXIT_FAILURE;
    g_main_loop_quit(daemon->loop);
}

static gboolean
on_signal(gpointer user_data)
{
    Daemon *daemon = user_data;

    g_message("Terminating on request.");
    g_main_loop_quit(daemon->loop);
    return G_SOURCE_CONTINUE;
}

static const char *
default_state_dir(gboolean session)
{
    const char *dir = g_getenv("STATE_DIRECTORY");

    /* systemd may pass several, separated by ":"; ours is the first. */
    if (dir != NULL && *dir != '\0') {
        static char first[4096];
        g_strlcpy(first, dir, sizeof(first));
        *strchrnul(first, ':') = '\0';
        return first;
    }
    return session ? NULL : ZPCID_DEFAULT_STATE_DIR;
}

int
main(int argc, char **argv)
{
    gboolean opt_system = FALSE;
    gboolean opt_session = FALSE;
    gboolean opt_replace = FALSE;
    gboolean opt_verbose = FALSE;
    gboolean opt_version = FALSE;
    g_autofree char *opt_host_root = NULL;
    g_autofree char *opt_state_dir = NULL;
    g_autofree char *opt_libvirt_uri = NULL;
    g_autofree char *opt_config = NULL;
    g_autofree char *opt_uevent_socket = NULL;
    g_autofree char *session_state_dir = NULL;
    GOptionEntry entries[] = {
        {"system", 0, 0, G_OPTION_ARG_NONE, &opt_system,
         N_("Serve on the system bus (the default)"), NULL},
        {"session", 0, 0, G_OPTION_ARG_NONE, &opt_session,
         N_("Serve on the session bus (tests and demonstrations; never changes the real host)"),
         NULL},
        {"host-root", 0, 0, G_OPTION_ARG_FILENAME, &opt_host_root,
         N_("Read and write the host below DIR instead of /"), N_("DIR")},
        {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_state_dir,
         N_("Keep the binding journal and persistent bindings in DIR"), N_("DIR")},
        {"libvirt-uri", 0, 0, G_OPTION_ARG_STRING, &opt_libvirt_uri,
         N_("Connect to libvirt at URI (default qemu:///system)"), N_("URI")},
        {"config", 0, 0, G_OPTION_ARG_FILENAME, &opt_config,
         N_("Read the configuration from FILE (default /etc/zpcid/zpcid.conf)"), N_("FILE")},
        {"uevent-socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_uevent_socket,
         N_("Read uevents from the datagram socket PATH instead of the kernel"), N_("PATH")},
        {"replace", 'r', 0, G_OPTION_ARG_NONE, &opt_replace, N_("Replace a running zpcid"), NULL},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, N_("Log debug messages"), NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &opt_version, N_("Print the version"), NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) context = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidService) service = NULL;
    g_autoptr(GMainLoop) loop = NULL;
    g_auto(ZpcidConfig) config = {0};
    g_autoptr(GPtrArray) config_warnings = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *system_address = NULL;
    g_autofree char *session_address = NULL;
    ZpcidServiceOptions options = {0};
    Daemon daemon = {0};
    GBusNameOwnerFlags flags = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT;
    guint owner;
    guint sigterm, sigint;
    GDBusConnection *polkit_bus = NULL;

    /* glibc raises its mmap threshold to the size of each large block freed, after which the
     * next ones (GetManagedObjects writes ~4 MiB at 4096 functions, GDBus copies it) come
     * from the heap and stay resident once freed. A fixed threshold keeps them mapped and
     * returns them at once (idle RSS after a GetManagedObjects: 25.8 → 13.7 MiB). */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    zpcid_i18n_init();

    context = g_option_context_new(NULL);
    g_option_context_set_summary(context, _("The zPCI passthrough service."));
    g_option_context_add_main_entries(context, entries, GETTEXT_PACKAGE);
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        g_printerr("zpcid: %s\n", error->message);
        return 2;
    }
    if (opt_version) {
        printf("zpcid %s\n", ZPCID_VERSION);
        return EXIT_SUCCESS;
    }
    if (opt_system && opt_session) {
        g_printerr("zpcid: %s\n", _("The options --system and --session exclude each other."));
        return 2;
    }
    if (argc > 1) {
        g_printerr("zpcid: %s\n", _("zpcid takes no arguments besides options."));
        return 2;
    }
    if (opt_verbose)
        g_setenv("G_MESSAGES_DEBUG", "all", TRUE);

    zpcid_config_init(&config);
    if (!zpcid_config_load(&config, opt_config != NULL ? opt_config : ZPCID_DEFAULT_CONFIG_FILE,
                           opt_config != NULL, config_warnings, &error)) {
        g_printerr("zpcid: %s\n", error->message);
        return EXIT_FAILURE;
    }
    for (guint i = 0; i < config_warnings->len; i++)
        g_warning("%s", (const char *)config_warnings->pdata[i]);

    options.host_root = opt_host_root;
    options.libvirt_uri = opt_libvirt_uri != NULL      ? opt_libvirt_uri
                          : config.libvirt_uri != NULL ? config.libvirt_uri
                                                       : ZPCID_DEFAULT_LIBVIRT_URI;
    options.state_dir = opt_state_dir != NULL      ? opt_state_dir
                        : config.state_dir != NULL ? config.state_dir
                                                   : default_state_dir(opt_session);
    if (options.state_dir == NULL) {
        /* The session bus is for tests and demonstrations: never root's real state. */
        session_state_dir = g_build_filename(g_get_user_state_dir(), "zpcid", NULL);
        options.state_dir = session_state_dir;
    }
    options.uevent_socket = opt_uevent_socket;
    options.load_vfio = config.load_vfio;
    options.max_workers = config.max_workers;
    options.reapply_persistent = config.reapply_persistent;
    /* polkit judges system bus names: our callers are known to it only on the system bus, or
     * on a private bus that is also its system bus (tests). */
    system_address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, NULL, NULL);
    session_address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SESSION, NULL, NULL);
    options.use_polkit = !opt_session || (system_address != NULL && session_address != NULL &&
                                          g_str_equal(system_address, session_address));

    service = NULL;
    {
        /* Decided after the host root is known: the session bus never touches "/". */
        g_autoptr(ZpcidHost) probe = zpcid_host_new_default(opt_host_root, &error);
        if (probe == NULL) {
            g_printerr("zpcid: %s\n", error->message);
            return EXIT_FAILURE;
        }
        options.live_host = zpcid_host_is_live(probe) && !opt_session;
        options.allow_changes = !opt_session || !zpcid_host_is_live(probe);
    }
    service = zpcid_service_new(&options, &error);
    if (service == NULL) {
        g_printerr("zpcid: %s\n", error->message);
        return EXIT_FAILURE;
    }

    loop = g_main_loop_new(NULL, FALSE);
    daemon.loop = loop;
    daemon.service = service;
    daemon.exit_status = EXIT_SUCCESS;
    sigterm = g_unix_signal_add(SIGTERM, on_signal, &daemon);
    sigint = g_unix_signal_add(SIGINT, on_signal, &daemon);
    /* polkit talks over the shared system bus connection, which GDBus makes raise(SIGTERM)
     * when the bus goes away. Losing the bus is handled (on_connection_closed, on_name_lost):
     * that connection must not end the process behind the shutdown's back. */
    if (options.use_polkit) {
        polkit_bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, NULL);
        if (polkit_bus != NULL)
            g_dbus_connection_set_exit_on_close(polkit_bus, FALSE);
    }

    daemon.connection =
        g_bus_get_sync(opt_session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, NULL, &error);
    if (daemon.connection == NULL) {
        g_warning("The bus could not be reached, so %s cannot be served: %s", ZPCID_DBUS_NAME,
                  error->message);
        return EXIT_FAILURE;
    }
    /* GDBus would _exit() the process; a clean shutdown is ours to do. */
    g_dbus_connection_set_exit_on_close(daemon.connection, FALSE);
    g_signal_connect(daemon.connection, "closed", G_CALLBACK(on_connection_closed), &daemon);
    if (!zpcid_service_export(service, daemon.connection, &error)) {
        g_warning("The service could not be put on the bus: %s", error->message);
        return EXIT_FAILURE;
    }
    if (opt_replace)
        flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;
    /* The name before the scan: a caller (systemd activation, the libvirt hook) can send its
     * request at once, and it waits in the main context for the scan to end instead of
     * failing to find the service. */
    owner = g_bus_own_name_on_connection(daemon.connection, ZPCID_DBUS_NAME, flags,
                                         on_name_acquired, on_name_lost, &daemon, NULL);
    if (zpcid_service_load(service, &error)) {
        g_main_loop_run(loop);
    } else {
        g_printerr("zpcid: %s\n", error->message);
        daemon.exit_status = EXIT_FAILURE;
    }

    zpcid_notify("STOPPING=1");
    /* The requests under way finish (the watchdog keeps running meanwhile), then the name
     * goes, so that a successor never meets a half-finished transaction. */
    zpcid_service_stop(service);
    g_clear_handle_id(&daemon.watchdog, g_source_remove);
    /* The replies of the requests that just finished go out before the name does. */
    if (daemon.connection != NULL && !g_dbus_connection_is_closed(daemon.connection))
        g_dbus_connection_flush_sync(daemon.connection, NULL, NULL);
    g_clear_object(&daemon.connection);
    g_bus_unown_name(owner);
    /* Only now: removing the last source of a signal restores its default action, and a
     * SIGTERM during the drain must not kill a transaction half way. */
    g_source_remove(sigterm);
    g_source_remove(sigint);
    g_clear_object(&polkit_bus);
    if (!zpcid_service_is_drained(service)) {
        /* A worker is stuck in a kernel write: leave as a crash would, without running the
         * libraries' exit handlers under it; the journal repairs the function at the next
         * start. */
        g_warning("A kernel write did not return; exiting without cleanup.");
        fflush(NULL);
        _exit(EXIT_FAILURE);
    }
    return daemon.exit_status;
}
