/* The D-Bus test fixture shared by the programs of tests/dbus: a private dbus-daemon running
 * zpcid's own bus policy (as system and session bus), the real zpcid on a generated host tree
 * under the simulated kernel, a fake polkitd (python3-dbusmock) that records what it was
 * asked, and helpers to call the daemon, wait for signals, run zpcidctl and compare host
 * trees.
 *
 * Simple use: env_new(flags) ... env_free(env). A test that must change the daemon's command
 * line (a wrapper, another libvirt URI, another state directory) calls env_prepare(), edits
 * the Env fields, then env_start_daemon(). */
#pragma once

#include <gio/gio.h>
#include <glib.h>

#include "zpcid-names.h"

G_BEGIN_DECLS

#define TIMEOUT_MS 15000
#define NOBODY     65534

/* Addresses of the fixed head of mkhost.py's functions (UID checking on: domain = uid). */
#define ADDR_NET_UP    "0001:00:00.0" /* mlx5_core, eno1 up: net guard */
#define ADDR_ISM       "0003:00:00.0" /* ism, nothing on it */
#define ADDR_UNBOUND   "0004:00:00.0" /* roce without driver */
#define ADDR_IDLE_NVME "000a:00:00.0" /* nvme, disk not mounted: free to bind */

#define ERR_INVALID        ZPCID_DBUS_ERROR_INVALID_ARG
#define ERR_NOT_AUTHORIZED ZPCID_DBUS_ERROR_NOT_AUTHORIZED

typedef enum {
    ENV_DEFAULT = 0,
    ENV_POLKIT = 1 << 0, /* fake polkit on the bus before zpcid starts */
    ENV_GUEST = 1 << 1,  /* libvirt test driver with a running guest using ADDR_NET_UP */
    ENV_NOTIFY = 1 << 2, /* a NOTIFY_SOCKET with the watchdog on */
} EnvFlags;

typedef struct {
    char *member;
    char *path;
    GVariant *params;
} Signal;

typedef struct {
    EnvFlags flags;
    char *tmp;  /* everything of the test lives below (removed by env_free) */
    char *host; /* the host tree */
    char *state;
    char *uevent_socket;
    char *libvirt_uri;
    char *bus_address;
    char *notify_path;
    char *config;
    /* Optional argv put before the daemon's own (e.g. "unshare", "-m", ...); NULL-terminated,
     * owned by the Env. Set between env_prepare() and env_start_daemon(). */
    GStrv daemon_prefix;
    int notify_fd;
    gboolean daemon_gone;
    GSubprocess *bus;
    GSubprocess *mock;
    GSubprocess *daemon;
    GDBusConnection *conn;
    GPtrArray *signals;
    guint subscription;
} Env;

/* ---- availability ---- */
gboolean simkernel_available(void);
const char *dbusmock_python(void); /* NULL when python3-dbusmock is missing */

/* ---- processes ---- */
/* A launcher whose children die with the test and see nothing of its buses or preloads;
 * @as_nobody drops to uid/gid 65534. */
GSubprocessLauncher *launcher_new(GSubprocessFlags flags, gboolean as_nobody);
void run_quiet(const char *const *argv);
/* Iterates the default main context until @done(@data) or TIMEOUT_MS. */
gboolean wait_until(gboolean (*done)(gpointer), gpointer data);
gboolean name_has_owner(Env *env, const char *name);
void wait_for_name(Env *env, const char *name, gboolean owned);

/* ---- the environment ---- */
Env *env_new(EnvFlags flags);
/* Everything of env_new() except starting zpcid. */
Env *env_prepare(EnvFlags flags);
/* Starts zpcid with the Env's settings and waits until it owns its name. */
void env_start_daemon(Env *env);
GSubprocess *spawn_daemon(Env *env, const char *state, const char *uevent_socket, gboolean replace);
/* SIGTERM must end zpcid cleanly, with status 0. */
void stop_daemon(GSubprocess *daemon);
void env_free(Env *env);

/* ---- polkit ---- */
void start_mock(Env *env);
void polkit_allow(Env *env, const char *const *actions);
/* The CheckAuthorization calls the fake polkitd received since the last call, oldest first,
 * as a(sa{ss}u) (action, details, flags); consumes them. */
GVariant *polkit_take_checks(Env *env);

/* ---- calls ---- */
GVariant *call(Env *env, const char *path, const char *iface, const char *method, GVariant *params,
               GError **error);
GVariant *call_ok(Env *env, const char *path, const char *iface, const char *method,
                  GVariant *params);
/* Asserts that the call fails with the D-Bus error @name; returns the message. */
char *call_fails(Env *env, const char *path, const char *iface, const char *method,
                 GVariant *params, const char *name);
GVariant *manager_call(Env *env, const char *method, GVariant *params);
GVariant *get_all(Env *env, const char *path, const char *iface);
char *resolve(Env *env, const char *spec);
char *function_string(Env *env, const char *spec, const char *key);
GVariant *options_no_interaction(void);
/* org.freedesktop.DBus.Peer.Ping to zpcid: whether it answers. */
gboolean daemon_alive(Env *env);

/* ---- signals ---- */
/* Waits for (and consumes) the first matching signal; its parameters. */
GVariant *wait_signal(Env *env, const char *member, const char *path, const char *property);
void flush_signals(Env *env);

/* ---- the host tree ---- */
/* Sends "ACTION@DEVPATH\0ACTION=..\0DEVPATH=..\0KEY=VALUE\0..." like the kernel. */
void send_uevent(Env *env, const char *action, const char *devpath, ...) G_GNUC_NULL_TERMINATED;
void host_symlink(Env *env, const char *rel, const char *target);
void host_remove(Env *env, const char *rel);
/* Every entry below @root as relative path -> "f:<content>", "l:<target>" or "d". */
GHashTable *tree_snapshot(const char *root);
/* Asserts that two snapshots are equal, naming the first entry that differs. */
void tree_assert_equal(GHashTable *before, GHashTable *after);

/* ---- zpcidctl ---- */
typedef struct {
    int status;
    char *out;
    char *err;
} CtlResult;

void ctl_result_free(CtlResult *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CtlResult, ctl_result_free)

CtlResult *run_ctl_full(Env *env, gboolean as_nobody, const char *const *args);
#define run_ctl(env, ...)        run_ctl_full(env, FALSE, (const char *const[]){__VA_ARGS__, NULL})
#define run_ctl_nobody(env, ...) run_ctl_full(env, TRUE, (const char *const[]){__VA_ARGS__, NULL})

/* The spec ("0x...") of the standby function; its object path in @path. */
char *find_standby(Env *env, char **path);

G_END_DECLS
