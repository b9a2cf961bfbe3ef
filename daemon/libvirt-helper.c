/* zpcid-libvirt-helper: zpcid's libvirt client in a process of its own
 * (xml/zpcid-libvirt-helper.xml says why). Started by zpcid only, with its end of a socket
 * pair as fd 3; it lives as long as that connection. */
#include <glib/gi18n-lib.h>
#include <stdlib.h>

#include "error.h"
#include "i18n.h"
#include "spec.h"
#include "virt.h"
#include "zpcid-helper-generated.h"
#include "zpcid-names.h"

typedef struct {
    char *uri;
    ZpcidVirt *virt; /* opened on first use */
    GMainLoop *loop;
} Helper;

static ZpcidVirt *
helper_connect(Helper *helper, GError **error)
{
    if (helper->virt == NULL)
        helper->virt = zpcid_virt_connect(helper->uri, error);
    return helper->virt;
}

/* Replies with @error (taken). libvirt's generic failures include a dead connection: the
 * next call connects again. */
static gboolean
reply_error(Helper *helper, GDBusMethodInvocation *invocation, GError *error)
{
    if (g_error_matches(error, ZPCID_ERROR, ZPCID_ERROR_FAILED))
        g_clear_pointer(&helper->virt, zpcid_virt_close);
    g_dbus_method_invocation_take_error(invocation, error);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_get_domain_xml(ZpcidDBusLibvirtHelper *iface, GDBusMethodInvocation *invocation,
                      const char *name, gboolean inactive, Helper *helper)
{
    GError *error = NULL;
    ZpcidVirt *virt = helper_connect(helper, &error);
    g_autofree char *xml = NULL;

    if (virt == NULL || (xml = zpcid_virt_get_domain_xml(virt, name, inactive, &error)) == NULL)
        return reply_error(helper, invocation, error);
    zpcid_dbus_libvirt_helper_complete_get_domain_xml(iface, invocation, xml);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_is_running(ZpcidDBusLibvirtHelper *iface, GDBusMethodInvocation *invocation,
                  const char *name, Helper *helper)
{
    GError *error = NULL;
    ZpcidVirt *virt = helper_connect(helper, &error);
    gboolean running = FALSE;

    if (virt == NULL || !zpcid_virt_domain_is_running(virt, name, &running, &error))
        return reply_error(helper, invocation, error);
    zpcid_dbus_libvirt_helper_complete_is_running(iface, invocation, running);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_attach(ZpcidDBusLibvirtHelper *iface, GDBusMethodInvocation *invocation, const char *name,
              const char *device_xml, guint affect, Helper *helper)
{
    GError *error = NULL;
    ZpcidVirt *virt = helper_connect(helper, &error);

    if (virt == NULL || !zpcid_virt_attach(virt, name, device_xml, affect, &error))
        return reply_error(helper, invocation, error);
    zpcid_dbus_libvirt_helper_complete_attach(iface, invocation);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_detach(ZpcidDBusLibvirtHelper *iface, GDBusMethodInvocation *invocation, const char *name,
              const char *device_xml, guint affect, Helper *helper)
{
    GError *error = NULL;
    ZpcidVirt *virt = helper_connect(helper, &error);

    if (virt == NULL || !zpcid_virt_detach(virt, name, device_xml, affect, &error))
        return reply_error(helper, invocation, error);
    zpcid_dbus_libvirt_helper_complete_detach(iface, invocation);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_set_metadata(ZpcidDBusLibvirtHelper *iface, GDBusMethodInvocation *invocation,
                    const char *name, const char *metadata_xml, guint affect, Helper *helper)
{
    GError *error = NULL;
    ZpcidVirt *virt = helper_connect(helper, &error);
    const char *record = metadata_xml[0] != '\0' ? metadata_xml : NULL;

    if (virt == NULL || !zpcid_virt_set_metadata(virt, name, record, affect, &error))
        return reply_error(helper, invocation, error);
    zpcid_dbus_libvirt_helper_complete_set_metadata(iface, invocation);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_list_pci_users(ZpcidDBusLibvirtHelper *iface, GDBusMethodInvocation *invocation,
                      Helper *helper)
{
    GError *error = NULL;
    ZpcidVirt *virt = helper_connect(helper, &error);
    g_autoptr(GPtrArray) users = NULL;
    GVariantBuilder builder;

    if (virt == NULL || (users = zpcid_virt_list_pci_users(virt, &error)) == NULL)
        return reply_error(helper, invocation, error);
    g_variant_builder_init(&builder, G_VARIANT_TYPE("a(sbsbbb)"));
    for (guint i = 0; i < users->len; i++) {
        const ZpcidVirtPciUser *user = g_ptr_array_index(users, i);
        g_autofree char *address = zpcid_pci_address_format(&user->address);

        g_variant_builder_add(&builder, "(sbsbbb)", address, user->interface, user->domain.name,
                              user->domain.running, user->domain.live, user->domain.config);
    }
    zpcid_dbus_libvirt_helper_complete_list_pci_users(iface, invocation,
                                                      g_variant_builder_end(&builder));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_domains_using(ZpcidDBusLibvirtHelper *iface, GDBusMethodInvocation *invocation,
                     const char *address, Helper *helper)
{
    GError *error = NULL;
    ZpcidVirt *virt = NULL;
    g_autoptr(GPtrArray) refs = NULL;
    GVariantBuilder builder;
    ZpcidPciAddress pci;

    if (!zpcid_pci_address_parse(address, &pci, &error) ||
        (virt = helper_connect(helper, &error)) == NULL ||
        (refs = zpcid_virt_domains_using(virt, &pci, &error)) == NULL)
        return reply_error(helper, invocation, error);
    g_variant_builder_init(&builder, G_VARIANT_TYPE("a(sbbb)"));
    for (guint i = 0; i < refs->len; i++) {
        const ZpcidVirtDomainRef *ref = g_ptr_array_index(refs, i);
        g_variant_builder_add(&builder, "(sbbb)", ref->name, ref->running, ref->live, ref->config);
    }
    zpcid_dbus_libvirt_helper_complete_domains_using(iface, invocation,
                                                     g_variant_builder_end(&builder));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
on_closed(GDBusConnection *connection, gboolean remote_peer_vanished, GError *error, Helper *helper)
{
    g_main_loop_quit(helper->loop);
}

int
main(int argc, char **argv)
{
    g_autofree char *opt_uri = NULL;
    GOptionEntry entries[] = {
        {"uri", 0, 0, G_OPTION_ARG_STRING, &opt_uri, N_("Connect to libvirt at URI"), N_("URI")},
        {NULL},
    };
    g_autoptr(GOptionContext) context = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GSocket) socket = NULL;
    g_autoptr(GSocketConnection) stream = NULL;
    g_autoptr(GDBusConnection) connection = NULL;
    g_autoptr(ZpcidDBusLibvirtHelper) skeleton = NULL;
    Helper helper = {0};

    zpcid_i18n_init();
    context = g_option_context_new(NULL);
    g_option_context_set_summary(context, _("zpcid's libvirt client; started by zpcid only."));
    g_option_context_add_main_entries(context, entries, GETTEXT_PACKAGE);
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        g_printerr("zpcid-libvirt-helper: %s\n", error->message);
        return 2;
    }
    socket = g_socket_new_from_fd(ZPCID_LIBVIRT_HELPER_FD, &error);
    if (socket == NULL) {
        g_printerr("zpcid-libvirt-helper: %s\n",
                   _("This program is started by zpcid with a socket as file descriptor 3."));
        return 2;
    }
    stream = g_socket_connection_factory_create_connection(socket);
    connection = g_dbus_connection_new_sync(G_IO_STREAM(stream), NULL,
                                            G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING,
                                            NULL, NULL, &error);
    if (connection == NULL) {
        g_printerr("zpcid-libvirt-helper: %s\n", error->message);
        return EXIT_FAILURE;
    }
    /* Our exit is the daemon's decision: it closes the connection, or dies. */
    g_dbus_connection_set_exit_on_close(connection, FALSE);

    helper.uri = opt_uri;
    helper.loop = g_main_loop_new(NULL, FALSE);
    skeleton = zpcid_dbus_libvirt_helper_skeleton_new();
    g_signal_connect(skeleton, "handle-get-domain-xml", G_CALLBACK(handle_get_domain_xml), &helper);
    g_signal_connect(skeleton, "handle-is-running", G_CALLBACK(handle_is_running), &helper);
    g_signal_connect(skeleton, "handle-attach", G_CALLBACK(handle_attach), &helper);
    g_signal_connect(skeleton, "handle-detach", G_CALLBACK(handle_detach), &helper);
    g_signal_connect(skeleton, "handle-set-metadata", G_CALLBACK(handle_set_metadata), &helper);
    g_signal_connect(skeleton, "handle-list-pci-users", G_CALLBACK(handle_list_pci_users), &helper);
    g_signal_connect(skeleton, "handle-domains-using", G_CALLBACK(handle_domains_using), &helper);
    if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(skeleton), connection,
                                          ZPCID_LIBVIRT_HELPER_PATH, &error)) {
        g_printerr("zpcid-libvirt-helper: %s\n", error->message);
        return EXIT_FAILURE;
    }
    g_signal_connect(connection, "closed", G_CALLBACK(on_closed), &helper);
    g_dbus_connection_start_message_processing(connection);
    if (!g_dbus_connection_is_closed(connection))
        g_main_loop_run(helper.loop);

    g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(skeleton));
    g_clear_pointer(&helper.virt, zpcid_virt_close);
    g_main_loop_unref(helper.loop);
    return EXIT_SUCCESS;
}
