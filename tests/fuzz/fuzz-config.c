/* Fuzz target: zpcid.conf as the daemon and the libvirt hook read it. */
#include <glib.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_auto(ZpcidConfig) config = {0};
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    GError *error = NULL;

    /* A GLib warning (e.g. a GError set twice inside GKeyFile) is a finding too. */
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL);
    zpcid_config_init(&config);
    /* Not NUL-terminated on purpose: the parser takes a length. */
    if (zpcid_config_parse(&config, (const char *)data, size, "/fuzz/zpcid.conf", warnings,
                           &error)) {
        /* What the parser accepts is what the daemon may run with. */
        g_assert_true(config.max_workers <= ZPCID_CONFIG_MAX_WORKERS_LIMIT);
        g_assert_cmpuint(config.hook_timeout_ms, >=, 1000);
        g_assert_cmpuint(config.hook_timeout_ms, <=, ZPCID_CONFIG_HOOK_TIMEOUT_MAX_S * 1000);
        g_assert_true(config.state_dir == NULL || g_path_is_absolute(config.state_dir));
        g_assert_true(config.libvirt_uri == NULL || *config.libvirt_uri != '\0');
    } else {
        g_assert_true(error->domain == ZPCID_ERROR);
        g_assert_cmpint(error->code, ==, ZPCID_ERROR_INVALID_ARGUMENT);
        /* Messages reach the journal and the terminal. */
        g_assert_true(g_utf8_validate(error->message, -1, NULL));
        g_error_free(error);
    }
    for (guint i = 0; i < warnings->len; i++)
        g_assert_true(g_utf8_validate(g_ptr_array_index(warnings, i), -1, NULL));
    return 0;
}
