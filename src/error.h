/* The single error domain of libzpcid; each code maps to one D-Bus error name. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ZPCID_ERROR (zpcid_error_quark())

typedef enum {
    ZPCID_ERROR_FAILED,
    ZPCID_ERROR_NOT_FOUND,
    ZPCID_ERROR_INVALID_ARGUMENT,
    ZPCID_ERROR_BUSY,
    ZPCID_ERROR_NOT_READY,
    ZPCID_ERROR_CONFLICT,
    ZPCID_ERROR_NOT_AUTHORIZED,
    ZPCID_ERROR_UNSUPPORTED,
    /* Content of a kernel file that does not follow its documented format. */
    ZPCID_ERROR_MALFORMED,
} ZpcidError;

GQuark zpcid_error_quark(void);

/* Maps an errno from a kernel file operation onto a ZpcidError code. */
ZpcidError zpcid_error_code_from_errno(int err_no);

/* The D-Bus error name for @code, e.g. "org.zpcid1.Error.Busy". */
const char *zpcid_error_dbus_name(ZpcidError code);

/* Caller text for a message: at most 64 bytes, valid UTF-8, control characters escaped, so
 * that a hostile 4 KiB or multi-line value never ends up whole in a reply or the log. */
char *zpcid_error_quote(const char *text);

G_END_DECLS
