#include "error.h"

#include <errno.h>
#include <gio/gio.h>

#include "zpcid-names.h"

static const GDBusErrorEntry zpcid_dbus_error_entries[] = {
    {ZPCID_ERROR_FAILED, ZPCID_DBUS_ERROR_FAILED},
    {ZPCID_ERROR_NOT_FOUND, ZPCID_DBUS_ERROR_NOT_FOUND},
    {ZPCID_ERROR_INVALID_ARGUMENT, ZPCID_DBUS_ERROR_INVALID_ARG},
    {ZPCID_ERROR_BUSY, ZPCID_DBUS_ERROR_BUSY},
    {ZPCID_ERROR_NOT_READY, ZPCID_DBUS_ERROR_NOT_READY},
    {ZPCID_ERROR_CONFLICT, ZPCID_DBUS_ERROR_CONFLICT},
    {ZPCID_ERROR_NOT_AUTHORIZED, ZPCID_DBUS_ERROR_NOT_AUTHORIZED},
    {ZPCID_ERROR_UNSUPPORTED, ZPCID_DBUS_ERROR_UNSUPPORTED},
};

GQuark
zpcid_error_quark(void)
{
    static gsize quark = 0;

    /* Registering makes GDBus send and receive our errors by name. */
    g_dbus_error_register_error_domain("zpcid-error-quark", &quark, zpcid_dbus_error_entries,
                                       G_N_ELEMENTS(zpcid_dbus_error_entries));
    return (GQuark)quark;
}

ZpcidError
zpcid_error_code_from_errno(int err_no)
{
    switch (err_no) {
    case ENOENT:
    case ENODEV:
    case ENXIO:
        return ZPCID_ERROR_NOT_FOUND;
    case EBUSY:
    case EAGAIN:
        return ZPCID_ERROR_BUSY;
    case EACCES:
    case EPERM:
        return ZPCID_ERROR_NOT_AUTHORIZED;
    case EINVAL:
        return ZPCID_ERROR_INVALID_ARGUMENT;
    case EOPNOTSUPP:
        return ZPCID_ERROR_UNSUPPORTED;
    default:
        return ZPCID_ERROR_FAILED;
    }
}

const char *
zpcid_error_dbus_name(ZpcidError code)
{
    /* A malformed kernel file is the daemon's failure, not the caller's; GDBus allows one
     * code per name, so this mapping lives here and in zpcid_error_to_dbus(). */
    if (code == ZPCID_ERROR_MALFORMED)
        return ZPCID_DBUS_ERROR_FAILED;
    for (gsize i = 0; i < G_N_ELEMENTS(zpcid_dbus_error_entries); i++) {
        if (zpcid_dbus_error_entries[i].error_code == (gint)code)
            return zpcid_dbus_error_entries[i].dbus_error_name;
    }
    return ZPCID_DBUS_ERROR_FAILED;
}

char *
zpcid_error_quote(const char *text)
{
    g_autofree char *cut = NULL;

    if (text == NULL)
        return g_strdup("");
    cut = g_utf8_make_valid(text, MIN(strlen(text), 64));
    return g_strescape(cut, NULL);
}
