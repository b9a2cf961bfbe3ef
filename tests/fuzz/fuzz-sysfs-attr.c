/* Fuzz target: the sysfs attribute parsers and the EBCDIC decoder. */
#include <glib.h>
#include <stdint.h>

#include "attr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    guint64 u;
    gint64 d;
    gboolean b;
    char *word = NULL;
    char *s;

    zpcid_attr_parse_hex("/fuzz", text, size, 8, G_MAXUINT32, &u, NULL);
    zpcid_attr_parse_hex("/fuzz", text, size, 2, 0xff, &u, NULL);
    zpcid_attr_parse_dec("/fuzz", text, size, 0, G_MAXUINT32, &d, NULL);
    zpcid_attr_parse_bool("/fuzz", text, size, &b, NULL);
    if (zpcid_attr_parse_word("/fuzz", text, size, &word, NULL))
        g_free(word);
    s = zpcid_ebcdic_to_utf8(data, size);
    g_assert_true(g_utf8_validate(s, -1, NULL));
    g_free(s);
    {
        /* Error messages quote the content; they must stay valid UTF-8. */
        GError *error = NULL;
        if (!zpcid_attr_parse_hex("/fuzz", text, size, 8, G_MAXUINT32, &u, &error)) {
            g_assert_true(g_utf8_validate(error->message, -1, NULL));
            g_error_free(error);
        }
    }
    return 0;
}
