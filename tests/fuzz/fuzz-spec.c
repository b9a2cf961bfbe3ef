/* Fuzz target: function specs, PCI addresses and zPCI ids as callers type them. */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = g_strndup((const char *)data, size);
    ZpcidSpec spec;
    ZpcidPciAddress address;
    guint64 id;
    GError *error = NULL;

    if (zpcid_spec_parse(text, &spec, &error)) {
        g_autofree char *canonical = zpcid_spec_format(&spec);
        ZpcidSpec again;
        /* The canonical form parses to the same spec. */
        g_assert_true(zpcid_spec_parse(canonical, &again, NULL));
        g_assert_cmpint(again.kind, ==, spec.kind);
        g_assert_cmpuint(again.id, ==, spec.id);
        if (spec.kind == ZPCID_SPEC_UID)
            g_assert_true(spec.id >= 1 && spec.id <= 0xffff);
    } else {
        g_assert_true(g_utf8_validate(error->message, -1, NULL));
        g_error_free(error);
    }
    if (zpcid_pci_address_parse(text, &address, NULL)) {
        g_autofree char *formatted = zpcid_pci_address_format(&address);
        /* Nothing that validates may contain a path separator. */
        if (zpcid_pci_address_is_valid(text))
            g_assert_null(strchr(text, '/'));
        g_assert_true(zpcid_pci_address_is_valid(formatted));
    }
    zpcid_parse_id(text, 0xffff, &id, NULL);
    return 0;
}
