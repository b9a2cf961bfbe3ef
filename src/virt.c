#include "virt.h"

#include <glib/gi18n-lib.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "domxml.h"
#include "error.h"
#include "zpcid-names.h"

struct _ZpcidVirt {
    virConnectPtr conn;
    char *uri;
};

G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomain, virDomainFree)

/* libvirt prints every error to stderr unless a handler is set; ours are reported through
 * GError instead. */
static void
quiet_error_cb(void *data, virErrorPtr err)
{
}

static void
init_libvirt(void)
{
    static gsize done = 0;

    if (g_once_init_enter(&done)) {
        virSetErrorFunc(NULL, quiet_error_cb);
        g_once_init_leave(&done, 1);
    }
}

static ZpcidError
code_from_libvirt(int code)
{
    switch (code) {
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_DOMAIN_METADATA:
        return ZPCID_ERROR_NOT_FOUND;
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_XML_INVALID_SCHEMA:
    case VIR_ERR_INVALID_ARG:
        return ZPCID_ERROR_INVALID_ARGUMENT;
    case VIR_ERR_NO_SUPPORT:
    case VIR_ERR_CONFIG_UNSUPPORTED:
    case VIR_ERR_ARGUMENT_UNSUPPORTED:
        return ZPCID_ERROR_UNSUPPORTED;
    case VIR_ERR_OPERATION_INVALID:
        return ZPCID_ERROR_CONFLICT;
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AUTH_CANCELLED:
    case VIR_ERR_AUTH_UNAVAILABLE:
    case VIR_ERR_ACCESS_DENIED:
        return ZPCID_ERROR_NOT_AUTHORIZED;
    case VIR_ERR_OPERATION_TIMEOUT:
    case VIR_ERR_AGENT_UNRESPONSIVE:
        return ZPCID_ERROR_BUSY;
    default:
        return ZPCID_ERROR_FAILED;
    }
}

/* libvirt's last error of this thread: its code and text (the text is what users search the
 * web for, so it is passed on unchanged). */
static int
take_libvirt_error(char **message)
{
    virErrorPtr err = virGetLastError();
    int code = err != NULL ? err->code : VIR_ERR_INTERNAL_ERROR;

    *message = g_strdup(err != NULL && err->message != NULL ? err->message
                                                             : "unknown libvirt error");
    virResetLastError();
    return code;
}

/* Sets @error from libvirt's last error; @format has one %s for the domain or URI and one
 * %s (last) for libvirt's text. */
static void
set_error(GError **error, const char *format, const char *subject)
{
    g_autofree char *message = NULL;
    int code = take_libvirt_error(&message);

    g_set_error(error, ZPCID_ERROR, code_from_libvirt(code), format, subject, message);
}

ZpcidVirt *
zpcid_virt_connect(const char *uri, GError **error)
{
    ZpcidVirt *virt;
    virConnectPtr conn;
    const char *target = uri != NULL ? uri : ZPCID_DEFAULT_LIBVIRT_URI;

    init_libvirt();
    /* No auth callbacks: a connection that needs a password fails instead of prompting. */
    conn = virConnectOpenAuth(target, NULL, 0);
    if (conn == NULL) {
        set_error(error, _("Could not connect to libvirt at “%s”: %s"), target);
        return NULL;
    }
    virConnSetErrorFunc(conn, NULL, quiet_error_cb);
    virt = g_new0(ZpcidVirt, 1);
    virt->conn = conn;
    virt->uri = g_strdup(target);
    return virt;
}

void
zpcid_virt_close(ZpcidVirt *virt)
{
    if (virt == NULL)
        return;
    if (virt->conn != NULL)
        virConnectClose(virt->conn);
    g_free(virt->uri);
    g_free(virt);
}

const char *
zpcid_virt_get_uri(ZpcidVirt *virt)
{
    return virt->uri;
}

static virDomainPtr
lookup(ZpcidVirt *virt, const char *name, GError **error)
{
    virDomainPtr dom = virDomainLookupByName(virt->conn, name);

    if (dom == NULL) {
        g_autofree char *quoted = zpcid_error_quote(name);
        set_error(error, _("libvirt has no domain “%s”: %s"), quoted);
    }
    return dom;
}

char *
zpcid_virt_get_domain_xml(ZpcidVirt *virt, const char *name, gboolean inactive, GError **error)
{
    g_autoptr(virDomain) dom = lookup(virt, name, error);
    char *xml;
    char *copy;

    if (dom == NULL)
        return NULL;
    xml = virDomainGetXMLDesc(dom, inactive ? VIR_DOMAIN_XML_INACTIVE : 0);
    if (xml == NULL) {
        set_error(error, _("libvirt could not give the XML of the domain “%s”: %s"), name);
        return NULL;
    }
    /* libvirt's strings are malloc()ed; ours are g_free()d. */
    copy = g_strdup(xml);
    free(xml);
    return copy;
}

gboolean
zpcid_virt_domain_is_running(ZpcidVirt *virt, const char *name, gboolean *running,
                             GError **error)
{
    g_autoptr(virDomain) dom = lookup(virt, name, error);
    int active;

    if (dom == NULL)
        return FALSE;
    active = virDomainIsActive(dom);
    if (active < 0) {
        set_error(error, _("libvirt could not tell whether the domain “%s” runs: %s"), name);
        return FALSE;
    }
    *running = active == 1;
    return TRUE;
}

char *
zpcid_virt_define(ZpcidVirt *virt, const char *xml, GError **error)
{
    g_autoptr(virDomain) dom = virDomainDefineXMLFlags(virt->conn, xml,
                                                       VIR_DOMAIN_DEFINE_VALIDATE);
    const char *name;

    if (dom == NULL) {
        set_error(error, _("libvirt refused to define the domain at “%s”: %s"), virt->uri);
        return NULL;
    }
    name = virDomainGetName(dom);
    return g_strdup(name != NULL ? name : "");
}

gboolean
zpcid_virt_undefine(ZpcidVirt *virt, const char *name, GError **error)
{
    g_autoptr(virDomain) dom = lookup(virt, name, error);

    if (dom == NULL)
        return FALSE;
    if (virDomainUndefine(dom) < 0) {
        set_error(error, _("libvirt could not undefine the domain “%s”: %s"), name);
        return FALSE;
    }
    return TRUE;
}

static unsigned int
affect_flags(ZpcidVirtAffect affect)
{
    unsigned int flags = 0;

    if (affect & ZPCID_VIRT_AFFECT_LIVE)
        flags |= VIR_DOMAIN_AFFECT_LIVE;
    if (affect & ZPCID_VIRT_AFFECT_CONFIG)
        flags |= VIR_DOMAIN_AFFECT_CONFIG;
    return flags != 0 ? flags : VIR_DOMAIN_AFFECT_CURRENT;
}

gboolean
zpcid_virt_attach(ZpcidVirt *virt, const char *name, const char *device_xml,
                  ZpcidVirtAffect affect, GError **error)
{
    g_autoptr(virDomain) dom = lookup(virt, name, error);

    if (dom == NULL)
        return FALSE;
    if (virDomainAttachDeviceFlags(dom, device_xml, affect_flags(affect)) < 0) {
        set_error(error, _("libvirt could not attach the device to the domain “%s”: %s"), name);
        return FALSE;
    }
    return TRUE;
}

gboolean
zpcid_virt_detach(ZpcidVirt *virt, const char *name, const char *device_xml,
                  ZpcidVirtAffect affect, GError **error)
{
    g_autoptr(virDomain) dom = lookup(virt, name, error);

    if (dom == NULL)
        return FALSE;
    if (virDomainDetachDeviceFlags(dom, device_xml, affect_flags(affect)) < 0) {
        set_error(error, _("libvirt could not detach the device from the domain “%s”: %s"),
                  name);
        return FALSE;
    }
    return TRUE;
}

gboolean
zpcid_virt_set_metadata(ZpcidVirt *virt, const char *name, const char *metadata_xml,
                        ZpcidVirtAffect affect, GError **error)
{
    g_autoptr(virDomain) dom = NULL;
    g_autofree char *plain = NULL;

    if (metadata_xml != NULL &&
        (plain = zpcid_domxml_metadata_for_libvirt(metadata_xml, error)) == NULL)
        return FALSE;
    dom = lookup(virt, name, error);
    if (dom == NULL)
        return FALSE;
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, plain,
                             metadata_xml != NULL ? ZPCID_LIBVIRT_METADATA_PREFIX : NULL,
                             ZPCID_LIBVIRT_METADATA_NS, affect_flags(affect)) < 0) {
        set_error(error, _("libvirt could not store zpcid's metadata in the domain “%s”: %s"),
                  name);
        return FALSE;
    }
    return TRUE;
}

char *
zpcid_virt_get_metadata(ZpcidVirt *virt, const char *name, gboolean inactive, GError **error)
{
    g_autoptr(virDomain) dom = lookup(virt, name, error);
    char *xml;
    char *copy;

    if (dom == NULL)
        return NULL;
    xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, ZPCID_LIBVIRT_METADATA_NS,
                               inactive ? VIR_DOMAIN_AFFECT_CONFIG : VIR_DOMAIN_AFFECT_CURRENT);
    if (xml == NULL) {
        set_error(error, _("libvirt has no zpcid metadata for the domain “%s”: %s"), name);
        return NULL;
    }
    copy = g_strdup(xml);
    free(xml);
    return copy;
}

static void
pci_user_free(gpointer data)
{
    ZpcidVirtPciUser *user = data;
    g_free(user->domain.name);
    g_free(user);
}

static void
domain_ref_free(gpointer data)
{
    ZpcidVirtDomainRef *ref = data;
    g_free(ref->name);
    g_free(ref);
}

/* Adds the sources of one definition of a domain to @users, merging with earlier entries of
 * the same domain (live and persistent XML name mostly the same functions). */
static gboolean
add_users(GPtrArray *users, guint first, const char *xml, const char *name, gboolean running,
          gboolean config, GError **error)
{
    g_autoptr(ZpcidDomxmlInfo) info = zpcid_domxml_inspect(xml, error);

    if (info == NULL) {
        g_prefix_error(error, _("The XML of the domain “%s” cannot be read: "), name);
        return FALSE;
    }
    for (guint i = 0; i < info->sources->len; i++) {
        const ZpcidDomxmlSource *source = &g_array_index(info->sources, ZpcidDomxmlSource, i);
        ZpcidVirtPciUser *user = NULL;

        for (guint j = first; j < users->len; j++) {
            ZpcidVirtPciUser *u = g_ptr_array_index(users, j);
            if (u->address.domain == source->address.domain &&
                u->address.bus == source->address.bus && u->address.slot == source->address.slot &&
                u->address.function == source->address.function) {
                user = u;
                break;
            }
        }
        if (user == NULL) {
            user = g_new0(ZpcidVirtPciUser, 1);
            user->address = source->address;
            user->interface = source->interface;
            user->domain.name = g_strdup(name);
            user->domain.running = running;
            g_ptr_array_add(users, user);
        }
        if (config)
            user->domain.config = TRUE;
        else
            user->domain.live = TRUE;
    }
    return TRUE;
}

GPtrArray *
zpcid_virt_list_pci_users(ZpcidVirt *virt, GError **error)
{
    g_autoptr(GPtrArray) users = g_ptr_array_new_with_free_func(pci_user_free);
    virDomainPtr *doms = NULL;
    int n;
    gboolean ok = TRUE;

    /* Flags 0: running and defined-but-stopped, persistent and transient. */
    n = virConnectListAllDomains(virt->conn, &doms, 0);
    if (n < 0) {
        set_error(error, _("libvirt at “%s” could not list its domains: %s"), virt->uri);
        return NULL;
    }
    for (int i = 0; i < n && ok; i++) {
        virDomainPtr dom = doms[i];
        const char *name = virDomainGetName(dom);
        int active = virDomainIsActive(dom);
        int persistent = virDomainIsPersistent(dom);
        guint first = users->len;

        for (int pass = 0; pass < 2 && ok; pass++) {
            char *xml;

            /* The persistent definition of a running domain is what it gets at next boot. */
            if (pass == 1 && !(active == 1 && persistent == 1))
                break;
            xml = virDomainGetXMLDesc(dom, pass == 1 ? VIR_DOMAIN_XML_INACTIVE : 0);
            if (xml == NULL) {
                g_autofree char *message = NULL;
                /* A domain undefined since the listing uses nothing any more. */
                if (take_libvirt_error(&message) == VIR_ERR_NO_DOMAIN)
                    break;
                g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                            _("libvirt could not give the XML of the domain “%s”: %s"), name,
                            message);
                ok = FALSE;
                break;
            }
            ok = add_users(users, first, xml, name, active == 1, pass == 1, error);
            free(xml);
        }
    }
    for (int i = 0; i < n; i++)
        virDomainFree(doms[i]);
    free(doms);
    return ok ? g_steal_pointer(&users) : NULL;
}

GPtrArray *
zpcid_virt_domains_using(ZpcidVirt *virt, const ZpcidPciAddress *address, GError **error)
{
    g_autoptr(GPtrArray) users = zpcid_virt_list_pci_users(virt, error);
    GPtrArray *refs;

    if (users == NULL)
        return NULL;
    refs = g_ptr_array_new_with_free_func(domain_ref_free);
    for (guint i = 0; i < users->len; i++) {
        ZpcidVirtPciUser *user = g_ptr_array_index(users, i);
        ZpcidVirtDomainRef *ref;

        if (user->address.domain != address->domain || user->address.bus != address->bus ||
            user->address.slot != address->slot || user->address.function != address->function)
            continue;
        ref = g_new0(ZpcidVirtDomainRef, 1);
        *ref = user->domain;
        ref->name = g_strdup(user->domain.name);
        g_ptr_array_add(refs, ref);
    }
    return refs;
}

char *
zpcid_virt_domain_xml_to_native(ZpcidVirt *virt, const char *xml, GError **error)
{
    char *argv = virConnectDomainXMLToNative(virt->conn, "qemu-argv", xml, 0);
    char *copy;

    if (argv == NULL) {
        set_error(error, _("libvirt at “%s” could not turn the domain into a QEMU command "
                           "line: %s"),
                  virt->uri);
        return NULL;
    }
    copy = g_strdup(argv);
    free(argv);
    return copy;
}
