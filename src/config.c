/* zpcid.conf parsing. Bad values are errors, not silently defaulted: a service that runs with
 * another setting than the admin wrote is worse than one that refuses to start. */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "error.h"

#define GROUP_DAEMON "zpcid"
#define GROUP_HOOK "libvirt-hook"
#define CONFIG_MAX_BYTES (256 * 1024)

static const char *const daemon_keys[] = {"libvirt-uri", "state-dir", "load-vfio-pci",
                                          "max-workers", "reapply-persistent", NULL};
static const char *const hook_keys[] = {"bind-unmanaged", "require-interpretation",
                                        "timeout-seconds", NULL};

void
zpcid_config_init(ZpcidConfig *config)
{
    *config = (ZpcidConfig){0};
    config->reapply_persistent = TRUE;
    config->hook_timeout_ms = ZPCID_CONFIG_HOOK_TIMEOUT_DEFAULT_MS;
}

void
zpcid_config_clear(ZpcidConfig *config)
{
    g_clear_pointer(&config->libvirt_uri, g_free);
    g_clear_pointer(&config->state_dir, g_free);
}

/* Group and key names are whatever bytes the file holds; messages must stay UTF-8. */
static char *
printable(const char *text)
{
    return g_utf8_make_valid(text, -1);
}

static void
warn_unknown(GKeyFile *file, const char *group, const char *const *known, const char *path,
             GPtrArray *warnings)
{
    g_auto(GStrv) keys = g_key_file_get_keys(file, group, NULL, NULL);

    for (guint i = 0; warnings != NULL && keys != NULL && keys[i] != NULL; i++) {
        g_autofree char *key = NULL;

        if (g_strv_contains(known, keys[i]))
            continue;
        key = printable(keys[i]);
        g_ptr_array_add(warnings, g_strdup_printf(_("The configuration file “%s” has an unknown "
                                                    "key “%s” in group “%s”; it was ignored."),
                                                  path, key, group));
    }
}

static gboolean
bad_value(GError **error, const char *path, const char *key, const char *expected)
{
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                _("The configuration file “%s” has a bad value for “%s”: %s"), path, key,
                expected);
    return FALSE;
}

static gboolean
read_bool(GKeyFile *file, const char *group, const char *key, gboolean *out, const char *path,
          GError **error)
{
    g_autoptr(GError) local_error = NULL;
    gboolean value;

    if (!g_key_file_has_key(file, group, key, NULL))
        return TRUE;
    value = g_key_file_get_boolean(file, group, key, &local_error);
    if (local_error != NULL)
        return bad_value(error, path, key, _("“true” or “false” is expected."));
    *out = value;
    return TRUE;
}

/* The raw value is checked rather than g_key_file_get_integer()'s, which takes a sign and
 * blanks: "max-workers=-1" must be refused, not wrapped. */
static gboolean
read_uint(GKeyFile *file, const char *group, const char *key, guint min, guint max, guint *out,
          const char *path, GError **error)
{
    g_autofree char *raw = NULL;
    g_autofree char *expected = NULL;
    guint64 value;

    if (!g_key_file_has_key(file, group, key, NULL))
        return TRUE;
    raw = g_key_file_get_value(file, group, key, NULL);
    expected = g_strdup_printf(_("a number from %u to %u is expected."), min, max);
    if (raw == NULL || !g_ascii_string_to_unsigned(raw, 10, min, max, &value, NULL))
        return bad_value(error, path, key, expected);
    *out = (guint)value;
    return TRUE;
}

/* TRUE if @raw ends in an escape character that escapes nothing. */
static gboolean
ends_in_lone_backslash(const char *raw)
{
    gsize n = strlen(raw);
    gsize backslashes = 0;

    while (backslashes < n && raw[n - 1 - backslashes] == '\\')
        backslashes++;
    return backslashes % 2 == 1;
}

static gboolean
read_string(GKeyFile *file, const char *group, const char *key, char **out, const char *path,
            GError **error)
{
    g_autofree char *raw = NULL;
    g_autofree char *value = NULL;
    g_autoptr(GError) local_error = NULL;

    if (!g_key_file_has_key(file, group, key, NULL))
        return TRUE;
    /* GLib returns what it could unescape along with an error for a bad escape, so the error
     * decides. A lone trailing backslash is refused before GLib sees it: GLib 2.74 then sets
     * its own GError twice and warns (found by fuzz-config). */
    raw = g_key_file_get_value(file, group, key, NULL);
    if (raw == NULL || ends_in_lone_backslash(raw))
        return bad_value(error, path, key, _("a value with valid escape sequences is expected."));
    value = g_key_file_get_string(file, group, key, &local_error);
    if (g_error_matches(local_error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE))
        return bad_value(error, path, key, _("a value with valid escape sequences is expected."));
    /* NULL also when the value is not UTF-8. */
    if (local_error != NULL || value == NULL || *value == '\0')
        return bad_value(error, path, key, _("a non-empty UTF-8 value is expected."));
    g_free(*out);
    *out = g_steal_pointer(&value);
    return TRUE;
}

gboolean
zpcid_config_parse(ZpcidConfig *config, const char *data, gsize length, const char *path,
                   GPtrArray *warnings, GError **error)
{
    g_autoptr(GKeyFile) file = g_key_file_new();
    g_autoptr(GError) local_error = NULL;
    g_auto(GStrv) groups = NULL;
    guint timeout_s = config->hook_timeout_ms / 1000;

    if (length > CONFIG_MAX_BYTES) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The configuration file “%s” is larger than %u bytes."), path,
                    (guint)CONFIG_MAX_BYTES);
        return FALSE;
    }
    if (!g_key_file_load_from_data(file, data, length, G_KEY_FILE_NONE, &local_error)) {
        /* GKeyFile quotes a bad group name byte for byte. */
        g_autofree char *reason = printable(local_error->message);

        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The configuration file “%s” could not be read: %s"), path, reason);
        return FALSE;
    }
    groups = g_key_file_get_groups(file, NULL);
    for (guint i = 0; warnings != NULL && groups[i] != NULL; i++) {
        g_autofree char *group = NULL;

        if (g_str_equal(groups[i], GROUP_DAEMON) || g_str_equal(groups[i], GROUP_HOOK))
            continue;
        group = printable(groups[i]);
        g_ptr_array_add(warnings, g_strdup_printf(_("The configuration file “%s” has an unknown "
                                                    "group “%s”; it was ignored."),
                                                  path, group));
    }
    warn_unknown(file, GROUP_DAEMON, daemon_keys, path, warnings);
    warn_unknown(file, GROUP_HOOK, hook_keys, path, warnings);

    if (!read_string(file, GROUP_DAEMON, "libvirt-uri", &config->libvirt_uri, path, error) ||
        !read_string(file, GROUP_DAEMON, "state-dir", &config->state_dir, path, error) ||
        !read_bool(file, GROUP_DAEMON, "load-vfio-pci", &config->load_vfio, path, error) ||
        !read_bool(file, GROUP_DAEMON, "reapply-persistent", &config->reapply_persistent, path,
                   error) ||
        !read_uint(file, GROUP_DAEMON, "max-workers", 1, ZPCID_CONFIG_MAX_WORKERS_LIMIT,
                   &config->max_workers, path, error) ||
        !read_bool(file, GROUP_HOOK, "bind-unmanaged", &config->hook_bind_unmanaged, path,
                   error) ||
        !read_bool(file, GROUP_HOOK, "require-interpretation",
                   &config->hook_require_interpretation, path, error) ||
        !read_uint(file, GROUP_HOOK, "timeout-seconds", 1, ZPCID_CONFIG_HOOK_TIMEOUT_MAX_S,
                   &timeout_s, path, error))
        return FALSE;
    config->hook_timeout_ms = timeout_s * 1000;
    if (config->state_dir != NULL && !g_path_is_absolute(config->state_dir))
        return bad_value(error, path, "state-dir", _("an absolute directory path is expected."));
    return TRUE;
}

gboolean
zpcid_config_load(ZpcidConfig *config, const char *path, gboolean explicit, GPtrArray *warnings,
                  GError **error)
{
    g_autofree char *data = NULL;
    gsize length = 0;
    g_autoptr(GError) local_error = NULL;

    if (!g_file_get_contents(path, &data, &length, &local_error)) {
        if (!explicit && g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return TRUE;
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                    _("The configuration file “%s” could not be read: %s"), path,
                    local_error->message);
        return FALSE;
    }
    return zpcid_config_parse(config, data, length, path, warnings, error);
}
