/* A small wrapper over the libvirt C API: what zpcid does with domains, with libvirt's own
 * error text carried in GErrors (ZPCID_ERROR). Named virt.h because <libvirt/libvirt.h> is
 * libvirt's. Connections never prompt: no authentication callbacks are given. */
#pragma once

#include <glib.h>

#include "spec.h"

G_BEGIN_DECLS

typedef struct _ZpcidVirt ZpcidVirt;

typedef enum {
    ZPCID_VIRT_AFFECT_LIVE = 1 << 0,   /* the running domain */
    ZPCID_VIRT_AFFECT_CONFIG = 1 << 1, /* the persistent definition */
} ZpcidVirtAffect;

/* A domain that references a host PCI function. */
typedef struct {
    char *name;
    gboolean running;
    gboolean live;   /* in the running (or only) definition */
    gboolean config; /* in the persistent definition of a running domain */
} ZpcidVirtDomainRef;

/* One (function, domain) pair of zpcid_virt_list_pci_users(). */
typedef struct {
    ZpcidPciAddress address;
    gboolean interface; /* <interface type='hostdev'> rather than <hostdev> */
    ZpcidVirtDomainRef domain;
} ZpcidVirtPciUser;

ZpcidVirt *zpcid_virt_connect(const char *uri, GError **error);
void zpcid_virt_close(ZpcidVirt *virt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidVirt, zpcid_virt_close)

const char *zpcid_virt_get_uri(ZpcidVirt *virt);

/* The live definition (or the only one of a stopped domain), or with @inactive the persistent
 * one. NOT_FOUND if there is no such domain. */
char *zpcid_virt_get_domain_xml(ZpcidVirt *virt, const char *name, gboolean inactive,
                                GError **error);
gboolean zpcid_virt_domain_is_running(ZpcidVirt *virt, const char *name, gboolean *running,
                                      GError **error);

/* virDomainDefineXMLFlags(VIR_DOMAIN_DEFINE_VALIDATE); returns the domain's name. */
char *zpcid_virt_define(ZpcidVirt *virt, const char *xml, GError **error);
gboolean zpcid_virt_undefine(ZpcidVirt *virt, const char *name, GError **error);

gboolean zpcid_virt_attach(ZpcidVirt *virt, const char *name, const char *device_xml,
                           ZpcidVirtAffect affect, GError **error);
/* With LIVE, libvirt waits up to 5 s for the guest and may return before the device is gone
 * (libvirt-zpci.md §1.9): watch device-removed events to know. */
gboolean zpcid_virt_detach(ZpcidVirt *virt, const char *name, const char *device_xml,
                           ZpcidVirtAffect affect, GError **error);

/* zpcid's <metadata> element (ZPCID_LIBVIRT_METADATA_NS); NULL @metadata_xml removes it. */
gboolean zpcid_virt_set_metadata(ZpcidVirt *virt, const char *name, const char *metadata_xml,
                                 ZpcidVirtAffect affect, GError **error);
/* NOT_FOUND if the domain has no zpcid metadata. */
char *zpcid_virt_get_metadata(ZpcidVirt *virt, const char *name, gboolean inactive,
                              GError **error);

/* Every host PCI function referenced by any domain, running or defined (live and persistent
 * XML, <hostdev type='pci'> and <interface type='hostdev'>): of ZpcidVirtPciUser. */
GPtrArray *zpcid_virt_list_pci_users(ZpcidVirt *virt, GError **error);
/* The domains that reference @address: of ZpcidVirtDomainRef. */
GPtrArray *zpcid_virt_domains_using(ZpcidVirt *virt, const ZpcidPciAddress *address,
                                    GError **error);

/* virConnectDomainXMLToNative(…, "qemu-argv", …): the QEMU command line libvirt would run. */
char *zpcid_virt_domain_xml_to_native(ZpcidVirt *virt, const char *xml, GError **error);

G_END_DECLS
