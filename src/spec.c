#include "spec.h"

#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <string.h>

#include "error.h"

/* Caller text is shown quoted in messages; keep hostile input short and printable. */
static char *
quote_input(const char *text)
{
    g_autofree char *cut = g_utf8_make_valid(text, MIN(strlen(text), 64));
    return g_strescape(cut, NULL);
}

static gboolean
parse_hex_field(const char *text, gsize len, guint64 max, guint64 *value)
{
    guint64 v = 0;

    if (len == 0)
        return FALSE;
    for (gsize i = 0; i < len; i++) {
        int d = g_ascii_xdigit_value(text[i]);
        if (d < 0)
            return FALSE;
        v = v * 16 + (guint64)d;
    }
    if (v > max)
        return FALSE;
    *value = v;
    return TRUE;
}

gboolean
zpcid_pci_address_parse(const char *text, ZpcidPciAddress *address, GError **error)
{
    const char *colon1, *colon2, *dot;
    guint64 domain, bus, slot, function;
    gsize dlen;

    colon1 = strchr(text, ':');
    colon2 = colon1 != NULL ? strchr(colon1 + 1, ':') : NULL;
    dot = colon2 != NULL ? strchr(colon2 + 1, '.') : NULL;
    if (dot == NULL)
        goto invalid;
    dlen = (gsize)(colon1 - text);
    if (dlen < 4 || dlen > 8 || colon2 - colon1 != 3 || dot - colon2 != 3 || strlen(dot) != 2)
        goto invalid;
    if (!parse_hex_field(text, dlen, G_MAXUINT32, &domain) ||
        !parse_hex_field(colon1 + 1, 2, 0xff, &bus) ||
        !parse_hex_field(colon2 + 1, 2, 0x1f, &slot) || !parse_hex_field(dot + 1, 1, 7, &function))
        goto invalid;
    address->domain = (guint32)domain;
    address->bus = (guint8)bus;
    address->slot = (guint8)slot;
    address->function = (guint8)function;
    return TRUE;

invalid: {
    g_autofree char *quoted = quote_input(text);
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                _("“%s” is not a PCI address of the form 0005:00:00.0."), quoted);
    return FALSE;
}
}

gboolean
zpcid_pci_address_is_valid(const char *name)
{
    ZpcidPciAddress address;
    g_autofree char *canonical = NULL;

    if (!zpcid_pci_address_parse(name, &address, NULL))
        return FALSE;
    /* Only the kernel's own spelling (lower case) names a sysfs directory. */
    canonical = zpcid_pci_address_format(&address);
    return g_str_equal(canonical, name);
}

char *
zpcid_pci_address_format(const ZpcidPciAddress *address)
{
    return g_strdup_printf("%04x:%02x:%02x.%x", address->domain, address->bus, address->slot,
                           address->function);
}

gboolean
zpcid_parse_id(const char *text, guint64 max, guint64 *value, GError **error)
{
    guint64 v = 0;
    const char *p = text;
    gboolean ok = TRUE;

    if (g_str_has_prefix(p, "0x") || g_str_has_prefix(p, "0X")) {
        gsize len = strlen(p + 2);
        ok = len >= 1 && len <= 16 && parse_hex_field(p + 2, len, G_MAXUINT64, &v);
    } else if (p[0] == '0' && p[1] == '\0') {
        v = 0;
    } else if (p[0] >= '1' && p[0] <= '9' && strlen(p) <= 20) {
        for (; *p != '\0' && ok; p++) {
            if (!g_ascii_isdigit(*p) || v > (G_MAXUINT64 - 9) / 10)
                ok = FALSE;
            else
                v = v * 10 + (guint64)(*p - '0');
        }
    } else {
        ok = FALSE;
    }
    if (!ok) {
        g_autofree char *quoted = quote_input(text);
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("“%s” is not a number: write hexadecimal with 0x (as in 0x1f) or decimal "
                      "without leading zeros."),
                    quoted);
        return FALSE;
    }
    if (v > max) {
        g_autofree char *quoted = quote_input(text);
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The number “%s” is larger than the largest allowed value 0x%" PRIx64
                      "."),
                    quoted, max);
        return FALSE;
    }
    *value = v;
    return TRUE;
}

gboolean
zpcid_spec_parse(const char *text, ZpcidSpec *spec, GError **error)
{
    guint64 v;

    memset(spec, 0, sizeof(*spec));
    if (g_str_has_prefix(text, "uid:")) {
        if (!zpcid_parse_id(text + 4, ZPCID_UID_MAX, &v, error))
            return FALSE;
        if (v < ZPCID_UID_MIN) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                        _("The UID “%s” is invalid: zPCI UIDs range from 0x1 to 0xffff."),
                        text + 4);
            return FALSE;
        }
        spec->kind = ZPCID_SPEC_UID;
        spec->id = (guint32)v;
        return TRUE;
    }
    if (g_str_has_prefix(text, "fid:")) {
        if (!zpcid_parse_id(text + 4, ZPCID_FID_MAX, &v, error))
            return FALSE;
        spec->kind = ZPCID_SPEC_FID;
        spec->id = (guint32)v;
        return TRUE;
    }
    if (strchr(text, ':') != NULL) {
        spec->kind = ZPCID_SPEC_ADDRESS;
        return zpcid_pci_address_parse(text, &spec->address, error);
    }
    if (!zpcid_parse_id(text, ZPCID_FID_MAX, &v, error))
        return FALSE;
    spec->kind = ZPCID_SPEC_FID;
    spec->id = (guint32)v;
    return TRUE;
}

char *
zpcid_spec_format(const ZpcidSpec *spec)
{
    switch (spec->kind) {
    case ZPCID_SPEC_FID:
        return g_strdup_printf("fid:0x%08x", spec->id);
    case ZPCID_SPEC_UID:
        return g_strdup_printf("uid:0x%04x", spec->id);
    case ZPCID_SPEC_ADDRESS:
        return zpcid_pci_address_format(&spec->address);
    }
    g_return_val_if_reached(NULL);
}
