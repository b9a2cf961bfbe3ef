/* zpcid.conf: one GKeyFile read by the daemon ([zpcid]) and the libvirt hook ([libvirt-hook]).
 * Parsing works on bytes so that the fuzzer and the tests need no file. */
#pragma once

#include <glib.h>

typedef struct {
    /* [zpcid] */
    char *libvirt_uri;        /* NULL: built-in default */
    char *state_dir;          /* NULL: $STATE_DIRECTORY or built-in default */
    gboolean load_vfio;       /* modprobe vfio-pci when it is missing */
    guint max_workers;        /* 0: built-in default */
    gboolean reapply_persistent;

    /* [libvirt-hook] */
    gboolean hook_bind_unmanaged;         /* bind managed='no' zPCI hostdevs on prepare */
    gboolean hook_require_interpretation; /* refuse the start when interpretation is not ready */
    guint hook_timeout_ms;                /* budget for all D-Bus calls of one invocation */
} ZpcidConfig;

#define ZPCID_CONFIG_MAX_WORKERS_LIMIT 1024
#define ZPCID_CONFIG_HOOK_TIMEOUT_DEFAULT_MS 20000
#define ZPCID_CONFIG_HOOK_TIMEOUT_MAX_S 300

void zpcid_config_init(ZpcidConfig *config);
void zpcid_config_clear(ZpcidConfig *config);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ZpcidConfig, zpcid_config_clear)

/* Parses DATA (LENGTH bytes, need not be NUL-terminated) named PATH in messages. Unknown keys
 * and groups are returned in WARNINGS (translated sentences) when it is not NULL. */
gboolean zpcid_config_parse(ZpcidConfig *config, const char *data, gsize length, const char *path,
                            GPtrArray *warnings, GError **error);

/* Reads PATH. A missing file is no error unless EXPLICIT (given on the command line). */
gboolean zpcid_config_load(ZpcidConfig *config, const char *path, gboolean explicit,
                           GPtrArray *warnings, GError **error);
