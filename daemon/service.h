/* The zpcid service: the host's functions as D-Bus objects, kept current from kernel uevents,
 * the Manager object, and the binder and libvirt behind the methods. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
    const char *host_root;     /* NULL: $ZPCID_HOST_ROOT or "/" */
    const char *state_dir;     /* required */
    const char *libvirt_uri;   /* required */
    const char *uevent_socket; /* NULL: the kernel's netlink socket on "/", none on a tree */
    /* Changes to the host may be made (FALSE on the session bus with the real host). */
    gboolean allow_changes;
    /* The real "/" may be written (system bus, started by systemd or root by hand). */
    gboolean live_host;
    gboolean use_polkit;
    gboolean load_vfio;
    guint max_workers; /* 0: the binder's default */
    gboolean reapply_persistent;
} ZpcidServiceOptions;

#define ZPCID_TYPE_SERVICE (zpcid_service_get_type())
G_DECLARE_FINAL_TYPE(ZpcidService, zpcid_service, ZPCID, SERVICE, GObject)

/* Opens the host and the binder's state and listens for uevents; nothing is read or on the
 * bus yet. */
ZpcidService *zpcid_service_new(const ZpcidServiceOptions *options, GError **error);
/* Puts the Manager and the functions on @connection. Calls wait in the main context until
 * zpcid_service_load() has returned, so the name can be taken before the scan. */
gboolean zpcid_service_export(ZpcidService *self, GDBusConnection *connection, GError **error);
/* Reads the host, repairs what the binder's journal says was left half done, and starts
 * following uevents and libvirt. */
gboolean zpcid_service_load(ZpcidService *self, GError **error);
/* Called once the bus name is ours: starts background work (persistent bindings). */
void zpcid_service_start(ZpcidService *self);
/* Takes everything off the bus and cancels background work. */
void zpcid_service_stop(ZpcidService *self);
/* After zpcid_service_stop(): whether every worker thread had finished. */
gboolean zpcid_service_is_drained(ZpcidService *self);

G_END_DECLS
