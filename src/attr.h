/* Parsers for the exact formats of zPCI and PCI sysfs attributes (kernel-zpci.md §1).
 * Each takes the raw bytes read and the file's path for the message. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* "0x%x\n": 0x-prefixed hex of at most @max_digits digits, value <= @max. */
gboolean zpcid_attr_parse_hex(const char *path, const char *data, gsize len, guint max_digits,
                              guint64 max, guint64 *value, GError **error);
/* "%d\n" or "%u\n", value within [@min, @max]. */
gboolean zpcid_attr_parse_dec(const char *path, const char *data, gsize len, gint64 min,
                              gint64 max, gint64 *value, GError **error);
/* "0\n" or "1\n". */
gboolean zpcid_attr_parse_bool(const char *path, const char *data, gsize len, gboolean *value,
                               GError **error);
/* A single word such as a driver name; "(null)" (nothing set) gives NULL and TRUE. */
gboolean zpcid_attr_parse_word(const char *path, const char *data, gsize len, char **value,
                               GError **error);

/* The 64-byte EBCDIC utility string as UTF-8, trailing blanks and NULs removed. */
char *zpcid_ebcdic_to_utf8(const guint8 *data, gsize len);

G_END_DECLS
