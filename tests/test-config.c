/* zpcid.conf: defaults, every key, bad values refused with the key named, unknown keys warned. */
#include <glib.h>
#include <string.h>

#include "config.h"
#include "error.h"

static gboolean
parse(const char *text, ZpcidConfig *config, GPtrArray *warnings, GError **error)
{
    zpcid_config_init(config);
    return zpcid_config_parse(config, text, strlen(text), "test.conf", warnings, error);
}

static void
test_defaults(void)
{
    g_auto(ZpcidConfig) config = {0};
    g_autoptr(GError) error = NULL;

    g_assert_true(parse("", &config, NULL, &error));
    g_assert_no_error(error);
    g_assert_null(config.libvirt_uri);
    g_assert_null(config.state_dir);
    g_assert_false(config.load_vfio);
    g_assert_cmpuint(config.max_workers, ==, 0);
    g_assert_true(config.reapply_persistent);
    g_assert_false(config.hook_bind_unmanaged);
    g_assert_false(config.hook_require_interpretation);
    g_assert_cmpuint(config.hook_timeout_ms, ==, ZPCID_CONFIG_HOOK_TIMEOUT_DEFAULT_MS);
}

static void
test_all_keys(void)
{
    g_auto(ZpcidConfig) config = {0};
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);

    g_assert_true(parse("[zpcid]\nlibvirt-uri=test:///default\nstate-dir=/run/zpcid-test\n"
                        "load-vfio-pci=true\nmax-workers=4\nreapply-persistent=false\n"
                        "[libvirt-hook]\nbind-unmanaged=true\nrequire-interpretation=true\n"
                        "timeout-seconds=7\n",
                        &config, warnings, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(config.libvirt_uri, ==, "test:///default");
    g_assert_cmpstr(config.state_dir, ==, "/run/zpcid-test");
    g_assert_true(config.load_vfio);
    g_assert_cmpuint(config.max_workers, ==, 4);
    g_assert_false(config.reapply_persistent);
    g_assert_true(config.hook_bind_unmanaged);
    g_assert_true(config.hook_require_interpretation);
    g_assert_cmpuint(config.hook_timeout_ms, ==, 7000);
    g_assert_cmpuint(warnings->len, ==, 0);
}

static void
test_bad_values(void)
{
    static const struct {
        const char *text;
        const char *key;
    } cases[] = {
        {"[zpcid]\nmax-workers=0\n", "max-workers"},
        {"[zpcid]\nmax-workers=-1\n", "max-workers"},
        {"[zpcid]\nmax-workers=1025\n", "max-workers"},
        {"[zpcid]\nmax-workers= 4\n", NULL}, /* GKeyFile strips the blank: accepted */
        {"[zpcid]\nmax-workers=4x\n", "max-workers"},
        {"[zpcid]\nmax-workers=0x10\n", "max-workers"},
        {"[zpcid]\nload-vfio-pci=yes\n", "load-vfio-pci"},
        {"[zpcid]\nstate-dir=relative/dir\n", "state-dir"},
        {"[zpcid]\nstate-dir=\n", "state-dir"},
        {"[zpcid]\nlibvirt-uri=\n", "libvirt-uri"},
        {"[libvirt-hook]\ntimeout-seconds=0\n", "timeout-seconds"},
        {"[libvirt-hook]\ntimeout-seconds=301\n", "timeout-seconds"},
        {"[libvirt-hook]\nbind-unmanaged=1\n", NULL}, /* GKeyFile takes 1 and 0 */
        {"[libvirt-hook]\nbind-unmanaged=maybe\n", "bind-unmanaged"},
        /* Escapes: GLib would hand back "qemu:///system" and "qemu:///sy\qstem". */
        {"[zpcid]\nlibvirt-uri=qemu:///system\\\n", "libvirt-uri"},
        {"[zpcid]\nlibvirt-uri=qemu:///sy\\qstem\n", "libvirt-uri"},
        {"[zpcid]\nstate-dir=/var/lib/zpcid\\\\\n", NULL}, /* an escaped backslash */
        {"[zpcid]\nstate-dir=/var/lib/\xff\n", "state-dir"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_auto(ZpcidConfig) config = {0};
        g_autoptr(GError) error = NULL;
        gboolean ok = parse(cases[i].text, &config, NULL, &error);
        g_autofree char *shown = g_strescape(cases[i].text, NULL);

        g_test_message("case %zu: %s", i, shown);
        if (cases[i].key == NULL) {
            g_assert_no_error(error);
            g_assert_true(ok);
            continue;
        }
        g_assert_false(ok);
        g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
        g_assert_nonnull(strstr(error->message, cases[i].key));
        g_assert_nonnull(strstr(error->message, "test.conf"));
    }
}

static void
test_unknown_and_malformed(void)
{
    g_auto(ZpcidConfig) config = {0};
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *huge = g_strnfill(300 * 1024, '#');

    g_assert_true(parse("[zpcid]\nmax-worker=3\n[other]\nx=1\n", &config, warnings, &error));
    g_assert_cmpuint(warnings->len, ==, 2);
    g_assert_nonnull(strstr(warnings->pdata[0], "other"));
    g_assert_nonnull(strstr(warnings->pdata[1], "max-worker"));
    zpcid_config_clear(&config);

    g_assert_false(parse("no group line\n", &config, NULL, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    zpcid_config_clear(&config);

    /* Names that are not UTF-8 are quoted as valid UTF-8 (found by fuzz-config). */
    g_ptr_array_set_size(warnings, 0);
    g_assert_true(parse("[gr\xffoup]\nk=1\n[zpcid]\nk\xfe=1\n", &config, warnings, &error));
    g_assert_cmpuint(warnings->len, ==, 2);
    for (guint i = 0; i < warnings->len; i++)
        g_assert_true(g_utf8_validate(warnings->pdata[i], -1, NULL));
    g_assert_nonnull(strstr(warnings->pdata[0], "gr\uFFFDoup"));
    zpcid_config_clear(&config);
    g_assert_false(parse("[a[\xff]\n", &config, NULL, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
    g_assert_true(g_utf8_validate(error->message, -1, NULL));
    g_clear_error(&error);
    zpcid_config_clear(&config);

    g_assert_false(parse(huge, &config, NULL, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
}

static void
test_load_missing(void)
{
    g_auto(ZpcidConfig) config = {0};
    g_autoptr(GError) error = NULL;

    zpcid_config_init(&config);
    g_assert_true(zpcid_config_load(&config, "/nonexistent/zpcid.conf", FALSE, NULL, &error));
    g_assert_false(zpcid_config_load(&config, "/nonexistent/zpcid.conf", TRUE, NULL, &error));
    g_assert_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/config/defaults", test_defaults);
    g_test_add_func("/config/all-keys", test_all_keys);
    g_test_add_func("/config/bad-values", test_bad_values);
    g_test_add_func("/config/unknown-and-malformed", test_unknown_and_malformed);
    g_test_add_func("/config/load-missing", test_load_missing);
    return g_test_run();
}
