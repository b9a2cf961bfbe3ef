/* What the method handlers (methods.c) share with the service core (service.c). */
#pragma once

#include "auth.h"
#include "binder.h"
#include "domains.h"
#include "function-tree.h"
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
    GPtrArray *pending_reads; /* char*: addresses of functions whose uevents came in this burst */
    GCancellable *cancellable;
    /* Only while the persistent bindings are being applied. */
    GCancellable *reapply_cancellable;

    GDBusConnection *connection;
    ZpcidDBusManager *manager;
    ZpcidFunctionTree *tree; /* the functions as the bus shows them */

    ZpcidReport *report;
    ZpcidBootFacts *boot; /* read once: it cannot change until the next boot */
    guint readiness_idle;
    gboolean stopped; /* zpcid_service_stop() ran */
    gboolean drained; /* ... and no worker thread was left running */
};

/* Connects the handle-* signals of the Manager skeleton. */
void zpcid_service_methods_init_manager(ZpcidService *self);
/* The methods of org.zpcid1.Function (a ZpcidFunctionTreeMethodFunc on the service). */
void zpcid_service_function_method(guint32 fid, const char *method, GVariant *parameters,
                                   GDBusMethodInvocation *invocation, gpointer user_data);

/* Re-reads the readiness now; updates the properties and emits ReadinessChanged. */
void zpcid_service_update_readiness(ZpcidService *self);
/* The report as the host is now. Kernel events keep it current (modules, device nodes,
 * functions); what cannot change without a reboot is read once. */
const ZpcidReport *zpcid_service_get_readiness(ZpcidService *self);
/* Recomputes the properties of a function from the inventory, binder and libvirt caches. */
void zpcid_service_update_function(ZpcidService *self, guint32 fid);

G_END_DECLS
