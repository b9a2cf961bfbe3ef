/* zpcid's side of zpcid-libvirt-helper (xml/zpcid-libvirt-helper.xml): starts the helper and
 * makes the calls of src/virt.h through it, so that libvirt's client library is never loaded
 * into the daemon. The calls block: they are made from worker threads, serialized by the
 * caller (daemon/domains.c). Errors are ZPCID_ERROR, with libvirt's text as the helper gave
 * it. */
#pragma once

#include <glib.h>

#include "virt.h"

G_BEGIN_DECLS

typedef struct _ZpcidLibvirtClient ZpcidLibvirtClient;

/* Starts the helper (the program next to zpcid's own) for @uri and connects to it. */
ZpcidLibvirtClient *zpcid_libvirt_client_start(const char *uri, GError **error);
/* Closes the connection, so that the helper exits; a helper that failed to answer is
 * killed. */
void zpcid_libvirt_client_free(ZpcidLibvirtClient *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidLibvirtClient, zpcid_libvirt_client_free)

/* FALSE once the helper is gone or failed to answer: the client is then of no more use. */
gboolean zpcid_libvirt_client_is_usable(ZpcidLibvirtClient *client);
/* Calls answered so far (with a result or the helper's own error). */
guint zpcid_libvirt_client_get_answered(ZpcidLibvirtClient *client);
/* TRUE when the helper was lost (gone, not stuck) with no call answered since @answered: work
 * that began then did nothing, and may be done again with a new helper. */
gboolean zpcid_libvirt_client_lost_before(ZpcidLibvirtClient *client, guint answered);
/* The helper's process id (tests and logs). */
const char *zpcid_libvirt_client_get_pid(ZpcidLibvirtClient *client);

char *zpcid_libvirt_client_get_domain_xml(ZpcidLibvirtClient *client, const char *name,
                                          gboolean inactive, GError **error);
gboolean zpcid_libvirt_client_domain_is_running(ZpcidLibvirtClient *client, const char *name,
                                                gboolean *running, GError **error);
gboolean zpcid_libvirt_client_attach(ZpcidLibvirtClient *client, const char *name,
                                     const char *device_xml, ZpcidVirtAffect affect,
                                     GError **error);
gboolean zpcid_libvirt_client_detach(ZpcidLibvirtClient *client, const char *name,
                                     const char *device_xml, ZpcidVirtAffect affect,
                                     GError **error);
/* zpcid's metadata record as planned by domxml; NULL removes it. */
gboolean zpcid_libvirt_client_set_metadata(ZpcidLibvirtClient *client, const char *name,
                                           const char *metadata_xml, ZpcidVirtAffect affect,
                                           GError **error);
/* a(sbsbbb): (address, interface, domain, running, live, config) as ZpcidVirtPciUser. */
GVariant *zpcid_libvirt_client_list_pci_users(ZpcidLibvirtClient *client, GError **error);
/* a(sbbb): (domain, running, live, config) of the domains that reference @address. */
GVariant *zpcid_libvirt_client_domains_using(ZpcidLibvirtClient *client, const char *address,
                                             GError **error);

G_END_DECLS
