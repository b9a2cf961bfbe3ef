#include "hook-domain.h"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <string.h>
#include <unistd.h>

#include "domxml.h"
#include "error.h"
#include "spec.h"

/* libvirt's domain XML is a few KiB; anything near this is not from libvirt. */
#define HOOK_MAX_XML (16 * 1024 * 1024)

static void
hostdev_free(HookHostdev *h)
{
    g_free(h->address);
    g_free(h);
}

void
hook_domain_free(HookDomain *domain)
{
    if (domain == NULL)
        return;
    g_free(domain->uuid);
    g_ptr_array_unref(domain->hostdevs);
    g_free(domain);
}

void
hook_domain_drain_stdin(void)
{
    char buf[65536];

    /* libvirt writes the XML whether or not the hook wants it; reading it to the end keeps
     * libvirt's writer from ever seeing a closed pipe. */
    if (isatty(STDIN_FILENO))
        return;
    while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
        ;
}

static char *
read_stdin(GError **error)
{
    g_autoptr(GByteArray) data = g_byte_array_new();
    char buf[65536];
    ssize_t n;

    while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                        _("Standard input could not be read: %s."), g_strerror(errno));
            return NULL;
        }
        if (data->len + (gsize)n > HOOK_MAX_XML) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                        _("Standard input is longer than %d bytes, so it is no domain XML from "
                          "libvirt."),
                        HOOK_MAX_XML);
            return NULL;
        }
        g_byte_array_append(data, (const guint8 *)buf, (guint)n);
    }
    g_byte_array_append(data, (const guint8 *)"", 1);
    if (strlen((const char *)data->data) + 1 != data->len ||
        !g_utf8_validate((const char *)data->data, -1, NULL)) {
        g_set_error_literal(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                            _("Standard input is not UTF-8 text, so it is no domain XML."));
        return NULL;
    }
    return (char *)g_byte_array_free(g_steal_pointer(&data), FALSE);
}

static gboolean
address_equal(const ZpcidPciAddress *a, const ZpcidPciAddress *b)
{
    return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot &&
           a->function == b->function;
}

/* Reads the domain XML: its PCI hostdevs (all of them, zPCI or not: only zpcid knows) and
 * whether its zpcid metadata requires interpretation for one of them. */
HookDomain *
hook_domain_read_stdin(GError **error)
{
    g_autofree char *xml = read_stdin(error);
    g_autoptr(ZpcidDomxmlInfo) info = NULL;
    g_autoptr(HookDomain) domain = NULL;

    if (xml == NULL)
        return NULL;
    info = zpcid_domxml_inspect(xml, error);
    if (info == NULL)
        return NULL;
    domain = g_new0(HookDomain, 1);
    domain->uuid = g_strdup(info->uuid);
    domain->hostdevs = g_ptr_array_new_with_free_func((GDestroyNotify)hostdev_free);
    for (guint i = 0; i < info->sources->len; i++) {
        const ZpcidDomxmlSource *s = &g_array_index(info->sources, ZpcidDomxmlSource, i);
        HookHostdev *h = g_new0(HookHostdev, 1);

        h->address = zpcid_pci_address_format(&s->address);
        h->managed = s->managed;
        g_ptr_array_add(domain->hostdevs, h);
        /* An intent counts only for a function the domain still uses. */
        for (guint k = 0; k < info->intents->len; k++) {
            const ZpcidDomxmlIntent *in = &g_array_index(info->intents, ZpcidDomxmlIntent, k);
            if (address_equal(&in->address, &s->address) &&
                in->interpretation == ZPCID_INTERPRETATION_REQUIRED)
                domain->interpretation_required = TRUE;
        }
    }
    return g_steal_pointer(&domain);
}

guint
hook_domain_count_unmanaged(GPtrArray *hostdevs)
{
    guint n = 0;

    for (guint i = 0; i < hostdevs->len; i++)
        n += !((const HookHostdev *)g_ptr_array_index(hostdevs, i))->managed;
    return n;
}
