/* What the method handlers (methods.c) share with the service core (service.c). */
#pragma once

#include "auth.h"
#include "binder.h"
#include "domains.h"
#include "function-object.h"
#include "inventory.h"
#include "readiness.h"
#include "service.h"
#include "uevent-source.h"
#include "zpcid-dbus-generated.h"

G_BEGIN_DECLS

struct _ZpcidService {
    GObject parent;

    ZpcidServiceOptions options; /* strings owned below */
    char *host_root;
    char *state_dir;
    char *libvirt_uri;
    char *uevent_socket;

    ZpcidHost *host;
    ZpcidInventory *inventory;
    ZpcidBinder *binder;
    ZpcidDomains *domains;
    ZpcidAuth *auth;
    ZpcidUeventSource *uevents;
    GCancellable *cancellable;
    /* Only while the persistent bindings are being applied. */
    GCancellable *reapply_cancellable;

    GDBusConnection *connection;
    GDBusObjectManagerServer *object_manager;
    ZpcidDBusManager *manager;
    GHashTable *objects; /* GUINT_TO_POINTER(fid) -> ZpcidFunctionObject */

    ZpcidReport *report;
    ZpcidBootFacts *boot; /* read once: it cannot change until the next boot */
    guint readiness_idle;
    gboolean stopped; /* zpcid_service_stop() ran */
    gboolean drained; /* ... and no worker thread was left running */
};

/* Connects the handle-* signals of the Manager skeleton. */
void zpcid_service_methods_init_manager(ZpcidService *self);
/* Connects the handle-* signals of a function's skeleton. */
void zpcid_service_methods_init_function(ZpcidService *self, ZpcidFunctionObject *object);

/* Re-reads the readiness now; updates the properties and emits ReadinessChanged. */
void zpcid_service_update_readiness(ZpcidService *self);
/* The report as the host is now. Kernel events keep it current (modules, device nodes,
 * functions); what cannot change without a reboot is read once. */
const ZpcidReport *zpcid_service_get_readiness(ZpcidService *self);
/* Sends the queued PropertiesChanged of @fids now, so that a method's caller sees the new
 * state when the reply arrives. */
void zpcid_service_flush_functions(ZpcidService *self, const guint32 *fids, guint n_fids);
/* Recomputes the properties of a function from the inventory, binder and libvirt caches. */
void zpcid_service_update_function(ZpcidService *self, guint32 fid);

G_END_DECLS
