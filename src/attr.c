#include "attr.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "error.h"

/* Strips exactly one trailing newline; the kernel's show functions end with one. */
static gsize
content_length(const char *data, gsize len)
{
    if (len > 0 && data[len - 1] == '\n')
        return len - 1;
    return len;
}

/* Shows at most 40 bytes of what the file holds, every byte visible (NULs included). */
static char *
printable_excerpt(const char *data, gsize len)
{
    GString *s = g_string_new(NULL);

    for (gsize i = 0; i < MIN(len, 40); i++) {
        guchar c = (guchar)data[i];
        if (c == '\n')
            g_string_append(s, "\\n");
        else if (c >= 0x20 && c < 0x7f && c != '\\')
            g_string_append_c(s, (char)c);
        else
            g_string_append_printf(s, "\\x%02x", c);
    }
    if (len > 40)
        g_string_append(s, "…");
    return g_string_free(s, FALSE);
}

typedef enum {
    EXPECT_HEX,
    EXPECT_DEC,
    EXPECT_RANGE,
    EXPECT_BOOL,
    EXPECT_NAME,
} Expectation;

static gboolean
malformed(const char *path, const char *data, gsize len, Expectation expect, GError **error)
{
    g_autofree char *excerpt = printable_excerpt(data, len);
    const char *fmt = NULL;

    /* Whole sentences per case, so translators never assemble fragments. */
    switch (expect) {
    case EXPECT_HEX:
        fmt = _("The file “%s” holds “%s” instead of a 0x-prefixed hexadecimal number.");
        break;
    case EXPECT_DEC:
        fmt = _("The file “%s” holds “%s” instead of a decimal number.");
        break;
    case EXPECT_RANGE:
        fmt = _("The file “%s” holds “%s”, which is out of range for this attribute.");
        break;
    case EXPECT_BOOL:
        fmt = _("The file “%s” holds “%s” instead of 0 or 1.");
        break;
    case EXPECT_NAME:
        fmt = _("The file “%s” holds “%s” instead of a name.");
        break;
    }
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED, fmt, path, excerpt);
    return FALSE;
}

gboolean
zpcid_attr_parse_hex(const char *path, const char *data, gsize len, guint max_digits,
                     guint64 max, guint64 *value, GError **error)
{
    gsize n = content_length(data, len);
    guint64 v = 0;

    if (n < 3 || data[0] != '0' || data[1] != 'x')
        return malformed(path, data, len, EXPECT_HEX, error);
    for (gsize i = 2; i < n; i++) {
        int d = g_ascii_xdigit_value(data[i]);
        if (d < 0)
            return malformed(path, data, len, EXPECT_HEX, error);
        if (i - 2 < 16)
            v = v * 16 + (guint64)d;
    }
    if (n - 2 > max_digits || v > max)
        return malformed(path, data, len, EXPECT_RANGE, error);
    *value = v;
    return TRUE;
}

gboolean
zpcid_attr_parse_dec(const char *path, const char *data, gsize len, gint64 min, gint64 max,
                     gint64 *value, GError **error)
{
    gsize n = content_length(data, len);
    gsize i = 0;
    gboolean negative = FALSE;
    gint64 v = 0;

    if (n > 0 && data[0] == '-') {
        negative = TRUE;
        i = 1;
    }
    if (i == n || n - i > 18)
        return malformed(path, data, len, EXPECT_DEC, error);
    for (; i < n; i++) {
        if (!g_ascii_isdigit(data[i]))
            return malformed(path, data, len, EXPECT_DEC, error);
        v = v * 10 + (data[i] - '0');
    }
    if (negative)
        v = -v;
    if (v < min || v > max)
        return malformed(path, data, len, EXPECT_RANGE, error);
    *value = v;
    return TRUE;
}

gboolean
zpcid_attr_parse_bool(const char *path, const char *data, gsize len, gboolean *value,
                      GError **error)
{
    gsize n = content_length(data, len);

    if (n != 1 || (data[0] != '0' && data[0] != '1'))
        return malformed(path, data, len, EXPECT_BOOL, error);
    *value = data[0] == '1';
    return TRUE;
}

gboolean
zpcid_attr_parse_word(const char *path, const char *data, gsize len, char **value,
                      GError **error)
{
    gsize n = content_length(data, len);

    if (n == 0 || n > 255)
        return malformed(path, data, len, EXPECT_NAME, error);
    for (gsize i = 0; i < n; i++) {
        if (!g_ascii_isgraph(data[i]))
            return malformed(path, data, len, EXPECT_NAME, error);
    }
    *value = (n == 6 && memcmp(data, "(null)", 6) == 0) ? NULL : g_strndup(data, n);
    return TRUE;
}

/* EBCDIC code page 037 to ASCII for the printable characters; anything else becomes '?'. */
static const char ebcdic037[256] = {
    [0x40] = ' ', [0x4a] = '?', [0x4b] = '.', [0x4c] = '<', [0x4d] = '(', [0x4e] = '+',
    [0x4f] = '|', [0x50] = '&', [0x5a] = '!', [0x5b] = '$', [0x5c] = '*', [0x5d] = ')',
    [0x5e] = ';', [0x60] = '-', [0x61] = '/', [0x6b] = ',', [0x6c] = '%', [0x6d] = '_',
    [0x6e] = '>', [0x6f] = '?', [0x79] = '`', [0x7a] = ':', [0x7b] = '#', [0x7c] = '@',
    [0x7d] = '\'', [0x7e] = '=', [0x7f] = '"', [0x81] = 'a', [0x82] = 'b', [0x83] = 'c',
    [0x84] = 'd', [0x85] = 'e', [0x86] = 'f', [0x87] = 'g', [0x88] = 'h', [0x89] = 'i',
    [0x91] = 'j', [0x92] = 'k', [0x93] = 'l', [0x94] = 'm', [0x95] = 'n', [0x96] = 'o',
    [0x97] = 'p', [0x98] = 'q', [0x99] = 'r', [0xa1] = '~', [0xa2] = 's', [0xa3] = 't',
    [0xa4] = 'u', [0xa5] = 'v', [0xa6] = 'w', [0xa7] = 'x', [0xa8] = 'y', [0xa9] = 'z',
    [0xb0] = '^', [0xba] = '[', [0xbb] = ']', [0xc0] = '{', [0xc1] = 'A', [0xc2] = 'B',
    [0xc3] = 'C', [0xc4] = 'D', [0xc5] = 'E', [0xc6] = 'F', [0xc7] = 'G', [0xc8] = 'H',
    [0xc9] = 'I', [0xd0] = '}', [0xd1] = 'J', [0xd2] = 'K', [0xd3] = 'L', [0xd4] = 'M',
    [0xd5] = 'N', [0xd6] = 'O', [0xd7] = 'P', [0xd8] = 'Q', [0xd9] = 'R', [0xe0] = '\\',
    [0xe2] = 'S', [0xe3] = 'T', [0xe4] = 'U', [0xe5] = 'V', [0xe6] = 'W', [0xe7] = 'X',
    [0xe8] = 'Y', [0xe9] = 'Z', [0xf0] = '0', [0xf1] = '1', [0xf2] = '2', [0xf3] = '3',
    [0xf4] = '4', [0xf5] = '5', [0xf6] = '6', [0xf7] = '7', [0xf8] = '8', [0xf9] = '9',
};

char *
zpcid_ebcdic_to_utf8(const guint8 *data, gsize len)
{
    GString *out = g_string_sized_new(len);

    for (gsize i = 0; i < len; i++) {
        char c = ebcdic037[data[i]];
        g_string_append_c(out, c != '\0' ? c : (data[i] == 0 ? ' ' : '?'));
    }
    /* The firmware pads with EBCDIC blanks (0x40) or NULs. */
    while (out->len > 0 && out->str[out->len - 1] == ' ')
        g_string_truncate(out, out->len - 1);
    return g_string_free(out, FALSE);
}
