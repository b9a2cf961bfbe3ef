#include "uevent.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "error.h"
#include "spec.h"

void
zpcid_uevent_free(ZpcidUevent *event)
{
    if (event == NULL)
        return;
    g_free(event->action);
    g_free(event->devpath);
    g_free(event->subsystem);
    g_clear_pointer(&event->env, g_hash_table_unref);
    g_free(event);
}

static gpointer
invalid(GError **error, const char *message)
{
    g_set_error_literal(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT, message);
    return NULL;
}

/* Keys are the kernel's upper-case identifiers; anything else did not come from it. */
static gboolean
key_is_valid(const char *key, gsize len)
{
    if (len == 0)
        return FALSE;
    for (gsize i = 0; i < len; i++) {
        char c = key[i];
        if (!(g_ascii_isupper(c) || g_ascii_isdigit(c) || c == '_'))
            return FALSE;
    }
    return TRUE;
}

static gboolean
text_is_valid(const char *text, gsize len)
{
    if (!g_utf8_validate(text, (gssize)len, NULL))
        return FALSE;
    for (gsize i = 0; i < len; i++) {
        if ((guchar)text[i] < 0x20 || text[i] == 0x7f)
            return FALSE;
    }
    return TRUE;
}

ZpcidUevent *
zpcid_uevent_parse(const guint8 *data, gsize len, GError **error)
{
    g_autoptr(ZpcidUevent) event = NULL;
    const char *buf = (const char *)data;
    const char *header_end;
    const char *at;
    gsize header_len;
    gsize pos;
    const char *value;

    if (len == 0)
        return invalid(error, _("The uevent message is empty."));
    if (len > ZPCID_UEVENT_MAX_SIZE)
        return invalid(error, _("The uevent message is longer than the kernel sends."));
    if (len >= 8 && memcmp(buf, "libudev", 8) == 0)
        return invalid(error, _("The message is a udev message, not a kernel uevent."));

    header_end = memchr(buf, '\0', len);
    header_len = header_end != NULL ? (gsize)(header_end - buf) : len;
    at = memchr(buf, '@', header_len);
    if (at == NULL || at == buf || (gsize)(at - buf) + 1 >= header_len || at[1] != '/')
        return invalid(error, _("The uevent message does not start with “ACTION@DEVPATH”."));
    if (!text_is_valid(buf, header_len))
        return invalid(error, _("The uevent header contains characters the kernel never sends."));

    event = g_new0(ZpcidUevent, 1);
    event->action = g_strndup(buf, (gsize)(at - buf));
    event->devpath = g_strndup(at + 1, header_len - (gsize)(at - buf) - 1);
    event->env = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    for (pos = header_len + 1; pos < len;) {
        const char *field = buf + pos;
        const char *end = memchr(field, '\0', len - pos);
        gsize field_len = end != NULL ? (gsize)(end - field) : len - pos;
        const char *eq;

        pos += field_len + 1;
        if (field_len == 0)
            continue; /* padding after the last field */
        eq = memchr(field, '=', field_len);
        if (eq == NULL)
            return invalid(error, _("A uevent field is not of the form “KEY=VALUE”."));
        if (!key_is_valid(field, (gsize)(eq - field)) ||
            !text_is_valid(eq + 1, field_len - (gsize)(eq - field) - 1))
            return invalid(error, _("A uevent field contains characters the kernel never sends."));
        {
            g_autofree char *key = g_strndup(field, (gsize)(eq - field));
            if (g_hash_table_contains(event->env, key))
                return invalid(error, _("A uevent field appears twice."));
            g_hash_table_insert(event->env, g_steal_pointer(&key),
                                g_strndup(eq + 1, field_len - (gsize)(eq - field) - 1));
        }
    }

    value = g_hash_table_lookup(event->env, "ACTION");
    if (value == NULL)
        g_hash_table_insert(event->env, g_strdup("ACTION"), g_strdup(event->action));
    else if (!g_str_equal(value, event->action))
        return invalid(error, _("The uevent's ACTION differs from its header."));
    value = g_hash_table_lookup(event->env, "DEVPATH");
    if (value == NULL)
        g_hash_table_insert(event->env, g_strdup("DEVPATH"), g_strdup(event->devpath));
    else if (!g_str_equal(value, event->devpath))
        return invalid(error, _("The uevent's DEVPATH differs from its header."));
    event->subsystem = g_strdup(g_hash_table_lookup(event->env, "SUBSYSTEM"));
    return g_steal_pointer(&event);
}

const char *
zpcid_uevent_get(const ZpcidUevent *event, const char *key)
{
    return g_hash_table_lookup(event->env, key);
}

/* The PCI function a device sits on is the last PCI address among its path components. */
static gboolean
last_pci_address(const char *devpath, char *out, gsize out_size)
{
    g_auto(GStrv) parts = g_strsplit(devpath, "/", -1);

    for (guint i = g_strv_length(parts); i > 0; i--) {
        if (zpcid_pci_address_is_valid(parts[i - 1])) {
            return g_strlcpy(out, parts[i - 1], out_size) < out_size;
        }
    }
    return FALSE;
}

/* zPCI slots are named by FID as 8 lower-case hex digits: /bus/pci/slots/0000182e. */
static gboolean
slot_fid(const char *devpath, guint32 *fid)
{
    const char *name = strrchr(devpath, '/');
    guint64 value;

    if (name == NULL || name - devpath < 6 || strncmp(name - 6, "/slots", 6) != 0)
        return FALSE;
    name++;
    if (strlen(name) != 8)
        return FALSE;
    for (const char *p = name; *p != '\0'; p++) {
        if (!g_ascii_isdigit(*p) && !(*p >= 'a' && *p <= 'f'))
            return FALSE;
    }
    value = g_ascii_strtoull(name, NULL, 16);
    *fid = (guint32)value;
    return TRUE;
}

static gboolean
is_readiness_module(const char *name)
{
    static const char *const modules[] = {"kvm", "vfio", "vfio_pci", "vfio_pci_core",
                                          "vfio_iommu_type1", NULL};
    return name != NULL && g_strv_contains(modules, name);
}

gboolean
zpcid_uevent_classify(const ZpcidUevent *event, ZpcidUeventTarget *target)
{
    const char *subsystem = event->subsystem != NULL ? event->subsystem : "";

    memset(target, 0, sizeof(*target));
    if (slot_fid(event->devpath, &target->fid)) {
        target->kind = ZPCID_UEVENT_TARGET_SLOT;
        return TRUE;
    }
    if (g_str_equal(subsystem, "pci")) {
        const char *slot_name = zpcid_uevent_get(event, "PCI_SLOT_NAME");
        const char *base = strrchr(event->devpath, '/') + 1;

        if (slot_name != NULL && zpcid_pci_address_is_valid(slot_name))
            g_strlcpy(target->address, slot_name, sizeof(target->address));
        else if (zpcid_pci_address_is_valid(base))
            g_strlcpy(target->address, base, sizeof(target->address));
        else
            return FALSE;
        target->kind = ZPCID_UEVENT_TARGET_FUNCTION;
        return TRUE;
    }
    if (g_str_equal(subsystem, "net") || g_str_equal(subsystem, "block")) {
        if (!last_pci_address(event->devpath, target->address, sizeof(target->address)))
            return FALSE;
        target->kind = ZPCID_UEVENT_TARGET_FUNCTION;
        return TRUE;
    }
    if (g_str_equal(subsystem, "module")) {
        if (!g_str_has_prefix(event->devpath, "/module/") ||
            !is_readiness_module(event->devpath + strlen("/module/")))
            return FALSE;
        target->kind = ZPCID_UEVENT_TARGET_READINESS;
        return TRUE;
    }
    if (g_str_equal(subsystem, "misc")) {
        const char *devname = zpcid_uevent_get(event, "DEVNAME");
        if (g_strcmp0(devname, "kvm") != 0 && g_strcmp0(devname, "vfio/vfio") != 0)
            return FALSE;
        target->kind = ZPCID_UEVENT_TARGET_READINESS;
        return TRUE;
    }
    if (g_str_equal(subsystem, "vfio")) {
        target->kind = ZPCID_UEVENT_TARGET_READINESS;
        return TRUE;
    }
    return FALSE;
}
