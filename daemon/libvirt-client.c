#include "libvirt-client.h"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "error.h"
#include "zpcid-helper-generated.h"
#include "zpcid-names.h"

/* libvirt waits up to 5 s for a guest to release a device and keeps a remote connection
 * alive for 30 s; a call that takes longer than this is stuck. */
#define CALL_TIMEOUT_MS (60 * 1000)

struct _ZpcidLibvirtClient {
    GSubprocess *process;
    GDBusConnection *connection;
    ZpcidDBusLibvirtHelper *proxy;
    guint answered;  /* calls the helper answered, with a result or an error of its own */
    gboolean broken; /* a call got no answer: the helper is of no more use */
    gboolean stuck;  /* that call timed out: the helper is killed, not asked to leave */
};

/* The helper is installed next to zpcid (libexecdir), and sits next to it in a build tree. */
static char *
helper_path(GError **error)
{
    g_autoptr(GError) local_error = NULL;
    g_autofree char *self = g_file_read_link("/proc/self/exe", &local_error);
    g_autofree char *dir = NULL;

    if (self == NULL) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                    _("zpcid could not find its own program to start “%s” next to it: %s"),
                    ZPCID_LIBVIRT_HELPER_PROGRAM, local_error->message);
        return NULL;
    }
    dir = g_path_get_dirname(self);
    return g_build_filename(dir, ZPCID_LIBVIRT_HELPER_PROGRAM, NULL);
}

ZpcidLibvirtClient *
zpcid_libvirt_client_start(const char *uri, GError **error)
{
    g_autoptr(ZpcidLibvirtClient) client = g_new0(ZpcidLibvirtClient, 1);
    g_autofree char *path = helper_path(error);
    g_autofree char *guid = NULL;
    g_autoptr(GSocket) socket = NULL;
    g_autoptr(GSocketConnection) stream = NULL;
    int fds[2];

    if (path == NULL)
        return NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
        int saved = errno;
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                    _("zpcid could not make a socket for “%s”: %s"), ZPCID_LIBVIRT_HELPER_PROGRAM,
                    g_strerror(saved));
        return NULL;
    }
    {
        /* Freed right after the spawn: its copy of the helper's end would hide the helper's
         * death from us. */
        g_autoptr(GSubprocessLauncher) launcher =
            g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
        g_autoptr(GError) spawn_error = NULL;

        g_subprocess_launcher_take_fd(launcher, fds[1], ZPCID_LIBVIRT_HELPER_FD);
        client->process =
            g_subprocess_launcher_spawn(launcher, &spawn_error, path, "--uri",
                                        uri != NULL ? uri : ZPCID_DEFAULT_LIBVIRT_URI, NULL);
        if (client->process == NULL) {
            close(fds[0]);
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED, _("zpcid could not start “%s”: %s"),
                        path, spawn_error->message);
            return NULL;
        }
    }
    socket = g_socket_new_from_fd(fds[0], error);
    if (socket == NULL) {
        close(fds[0]);
        return NULL;
    }
    stream = g_socket_connection_factory_create_connection(socket);
    guid = g_dbus_generate_guid();
    client->connection =
        g_dbus_connection_new_sync(G_IO_STREAM(stream), guid,
                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_SERVER |
                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_REQUIRE_SAME_USER,
                                   NULL, NULL, error);
    if (client->connection == NULL) {
        g_prefix_error(error, _("zpcid could not talk to “%s”: "), path);
        return NULL;
    }
    g_dbus_connection_set_exit_on_close(client->connection, FALSE);
    client->proxy = zpcid_dbus_libvirt_helper_proxy_new_sync(
        client->connection,
        G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES | G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS, NULL,
        ZPCID_LIBVIRT_HELPER_PATH, NULL, error);
    if (client->proxy == NULL)
        return NULL;
    g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(client->proxy), CALL_TIMEOUT_MS);
    return g_steal_pointer(&client);
}

void
zpcid_libvirt_client_free(ZpcidLibvirtClient *client)
{
    if (client == NULL)
        return;
    g_clear_object(&client->proxy);
    if (client->connection != NULL) {
        /* The helper leaves when its connection ends; GSubprocess reaps it. */
        g_dbus_connection_close(client->connection, NULL, NULL, NULL);
        g_object_unref(client->connection);
    }
    if (client->process != NULL) {
        if (client->broken)
            g_subprocess_force_exit(client->process);
        g_object_unref(client->process);
    }
    g_free(client);
}

gboolean
zpcid_libvirt_client_is_usable(ZpcidLibvirtClient *client)
{
    return !client->broken && !g_dbus_connection_is_closed(client->connection);
}

gboolean
zpcid_libvirt_client_lost_before(ZpcidLibvirtClient *client, guint answered)
{
    return client->broken && !client->stuck && client->answered == answered;
}

guint
zpcid_libvirt_client_get_answered(ZpcidLibvirtClient *client)
{
    return client->answered;
}

const char *
zpcid_libvirt_client_get_pid(ZpcidLibvirtClient *client)
{
    return g_subprocess_get_identifier(client->process);
}

/* After a failed call: the helper's own errors are zpcid's and pass through; anything else
 * (no answer, connection gone) means the helper is of no more use. Callers pass an @error:
 * without one the two cannot be told apart. */
static gboolean
call_failed(ZpcidLibvirtClient *client, GError **error)
{
    GError *remote = *error;

    if (remote->domain == ZPCID_ERROR) {
        client->answered++;
        g_dbus_error_strip_remote_error(remote);
        return FALSE;
    }
    client->broken = TRUE;
    if (g_error_matches(remote, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        client->stuck = TRUE;
    *error = g_error_new(ZPCID_ERROR, ZPCID_ERROR_FAILED,
                         _("zpcid's libvirt client “%s” gave no answer: %s"),
                         ZPCID_LIBVIRT_HELPER_PROGRAM, remote->message);
    g_error_free(remote);
    return FALSE;
}

char *
zpcid_libvirt_client_get_domain_xml(ZpcidLibvirtClient *client, const char *name, gboolean inactive,
                                    GError **error)
{
    char *xml = NULL;

    if (!zpcid_dbus_libvirt_helper_call_get_domain_xml_sync(client->proxy, name, inactive, &xml,
                                                            NULL, error)) {
        call_failed(client, error);
        return NULL;
    }
    client->answered++;
    return xml;
}

gboolean
zpcid_libvirt_client_domain_is_running(ZpcidLibvirtClient *client, const char *name,
                                       gboolean *running, GError **error)
{
    if (!zpcid_dbus_libvirt_helper_call_is_running_sync(client->proxy, name, running, NULL, error))
        return call_failed(client, error);
    client->answered++;
    return TRUE;
}

gboolean
zpcid_libvirt_client_attach(ZpcidLibvirtClient *client, const char *name, const char *device_xml,
                            ZpcidVirtAffect affect, GError **error)
{
    if (!zpcid_dbus_libvirt_helper_call_attach_sync(client->proxy, name, device_xml, affect, NULL,
                                                    error))
        return call_failed(client, error);
    client->answered++;
    return TRUE;
}

gboolean
zpcid_libvirt_client_detach(ZpcidLibvirtClient *client, const char *name, const char *device_xml,
                            ZpcidVirtAffect affect, GError **error)
{
    if (!zpcid_dbus_libvirt_helper_call_detach_sync(client->proxy, name, device_xml, affect, NULL,
                                                    error))
        return call_failed(client, error);
    client->answered++;
    return TRUE;
}

gboolean
zpcid_libvirt_client_set_metadata(ZpcidLibvirtClient *client, const char *name,
                                  const char *metadata_xml, ZpcidVirtAffect affect, GError **error)
{
    if (!zpcid_dbus_libvirt_helper_call_set_metadata_sync(
            client->proxy, name, metadata_xml != NULL ? metadata_xml : "", affect, NULL, error))
        return call_failed(client, error);
    client->answered++;
    return TRUE;
}

GVariant *
zpcid_libvirt_client_list_pci_users(ZpcidLibvirtClient *client, GError **error)
{
    GVariant *users = NULL;

    if (!zpcid_dbus_libvirt_helper_call_list_pci_users_sync(client->proxy, &users, NULL, error)) {
        call_failed(client, error);
        return NULL;
    }
    client->answered++;
    return users;
}

GVariant *
zpcid_libvirt_client_domains_using(ZpcidLibvirtClient *client, const char *address, GError **error)
{
    GVariant *domains = NULL;

    if (!zpcid_dbus_libvirt_helper_call_domains_using_sync(client->proxy, address, &domains, NULL,
                                                           error)) {
        call_failed(client, error);
        return NULL;
    }
    client->answered++;
    return domains;
}
