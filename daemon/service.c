#include "service-private.h"

#include <glib/gi18n-lib.h>
#include <malloc.h>
#include <sys/utsname.h>

#include "error.h"
#include "variant.h"
#include "zpcid-names.h"

/* Longer than any bind: each kernel step times out after 10 s by default, and systemd's
 * TimeoutStopSec (90 s) is the outer limit. */
#define DRAIN_TIMEOUT_S 60

G_DEFINE_TYPE(ZpcidService, zpcid_service, G_TYPE_OBJECT)

static void
zpcid_service_dispose(GObject *object)
{
    ZpcidService *self = ZPCID_SERVICE(object);

    zpcid_service_stop(self);
    g_clear_handle_id(&self->readiness_idle, g_source_remove);
    g_clear_pointer(&self->tree, zpcid_function_tree_free);
    g_clear_object(&self->manager);
    g_clear_object(&self->binder);
    g_clear_object(&self->domains);
    g_clear_object(&self->auth);
    g_clear_object(&self->inventory);
    G_OBJECT_CLASS(zpcid_service_parent_class)->dispose(object);
}

static void
zpcid_service_finalize(GObject *object)
{
    ZpcidService *self = ZPCID_SERVICE(object);

    g_clear_pointer(&self->report, zpcid_report_free);
    g_clear_pointer(&self->boot, zpcid_boot_facts_free);
    g_clear_pointer(&self->host, zpcid_host_unref);
    g_clear_object(&self->cancellable);
    g_clear_object(&self->reapply_cancellable);
    g_ptr_array_unref(self->pending_reads);
    g_free(self->host_root);
    g_free(self->state_dir);
    g_free(self->libvirt_uri);
    g_free(self->uevent_socket);
    G_OBJECT_CLASS(zpcid_service_parent_class)->finalize(object);
}

static void
zpcid_service_class_init(ZpcidServiceClass *klass)
{
    G_OBJECT_CLASS(klass)->dispose = zpcid_service_dispose;
    G_OBJECT_CLASS(klass)->finalize = zpcid_service_finalize;
}

static void
zpcid_service_init(ZpcidService *self)
{
    self->tree = zpcid_function_tree_new(zpcid_service_function_method, self);
    self->cancellable = g_cancellable_new();
    self->pending_reads = g_ptr_array_new_with_free_func(g_free);
}

/* ---- readiness ---- */

void
zpcid_service_update_readiness(ZpcidService *self)
{
    ZpcidReport *report;
    gboolean flipped;

    if (self->boot == NULL)
        self->boot = zpcid_boot_facts_read(self->host);
    report = zpcid_readiness_evaluate_with(self->host, self->inventory, self->boot);
    flipped = self->report != NULL && (self->report->passthrough != report->passthrough ||
                                       self->report->interpretation != report->interpretation);

    g_clear_pointer(&self->report, zpcid_report_free);
    self->report = report;
    zpcid_dbus_manager_set_passthrough_ready(self->manager, report->passthrough);
    zpcid_dbus_manager_set_interpretation_ready(self->manager, report->interpretation);
    if (flipped) {
        g_message("The host's readiness changed: passthrough %s, interpretation %s.",
                  report->passthrough ? "ready" : "not ready",
                  report->interpretation ? "ready" : "not ready");
        zpcid_dbus_manager_emit_readiness_changed(self->manager, report->passthrough,
                                                  report->interpretation);
    }
}

const ZpcidReport *
zpcid_service_get_readiness(ZpcidService *self)
{
    if (self->uevents != NULL)
        zpcid_uevent_source_catch_up(self->uevents);
    if (self->report == NULL || self->readiness_idle != 0) {
        g_clear_handle_id(&self->readiness_idle, g_source_remove);
        zpcid_service_update_readiness(self);
    }
    return self->report;
}

static gboolean
on_readiness_idle(gpointer user_data)
{
    ZpcidService *self = user_data;

    self->readiness_idle = 0;
    zpcid_service_update_readiness(self);
    return G_SOURCE_REMOVE;
}

/* Many uevents may come at once (a PF enabling VFs): evaluate once after the burst. */
static void
schedule_readiness(ZpcidService *self)
{
    if (self->readiness_idle == 0)
        self->readiness_idle =
            g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, on_readiness_idle, self, NULL);
}

/* ---- functions on the bus ---- */

void
zpcid_service_update_function(ZpcidService *self, guint32 fid)
{
    ZpcidFunction *function = zpcid_inventory_lookup_fid(self->inventory, fid);
    ZpcidFunctionExtra extra = {0};

    if (function == NULL)
        return;
    extra.host_driver = zpcid_binder_get_host_driver(self->binder, fid);
    extra.persistent = zpcid_binder_is_persistent(self->binder, fid);
    extra.owner = zpcid_binder_get_owner(self->binder, fid);
    extra.domains = zpcid_domains_get_users(self->domains, function->address);
    zpcid_function_tree_publish(self->tree, function, &extra);
}

static void
update_count(ZpcidService *self)
{
    zpcid_dbus_manager_set_function_count(self->manager, zpcid_function_tree_get_count(self->tree));
}

static void
on_function_added(ZpcidInventory *inventory, ZpcidFunction *function, ZpcidService *self)
{
    zpcid_service_update_function(self, (guint32)function->fid);
    g_debug("The function 0x%08x appeared.", (guint32)function->fid);
    update_count(self);
    schedule_readiness(self);
}

static void
on_function_removed(ZpcidInventory *inventory, ZpcidFunction *function, ZpcidService *self)
{
    zpcid_function_tree_withdraw(self->tree, (guint32)function->fid);
    g_debug("The function 0x%08x went away.", (guint32)function->fid);
    update_count(self);
    schedule_readiness(self);
}

static void
on_function_changed(ZpcidInventory *inventory, ZpcidFunction *old_function,
                    ZpcidFunction *new_function, ZpcidService *self)
{
    zpcid_service_update_function(self, (guint32)new_function->fid);
    /* Cheap, and a driver or IOMMU group change can decide a check. */
    schedule_readiness(self);
}

static void
on_binder_function_changed(ZpcidBinder *binder, guint fid, ZpcidService *self)
{
    zpcid_service_update_function(self, fid);
}

static void
on_domain_users_changed(ZpcidDomains *domains, GStrv addresses, ZpcidService *self)
{
    for (guint i = 0; addresses[i] != NULL; i++) {
        ZpcidFunction *function = zpcid_inventory_lookup_address(self->inventory, addresses[i]);
        if (function != NULL)
            zpcid_service_update_function(self, (guint32)function->fid);
    }
}

/* ---- uevents ---- */

/* Reads each function whose uevents came in the burst once: a driver change alone sends
 * "unbind", the remove of its netdev or disk and "bind" for the same function. */
static void
read_pending(ZpcidService *self)
{
    g_autoptr(GPtrArray) addresses = g_steal_pointer(&self->pending_reads);

    self->pending_reads = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < addresses->len; i++) {
        const char *address = g_ptr_array_index(addresses, i);
        ZpcidFunction *function = zpcid_inventory_lookup_address(self->inventory, address);

        /* A function the binder is moving is read when the move is done: each of its steps
         * sends uevents (unbind, the netdev's remove, bind), and reading ~25 attributes for
         * each would only show states in between, slowing the move down. */
        if (function != NULL && zpcid_binder_defer_refresh(self->binder, (guint32)function->fid))
            continue;
        /* Only this function is read again, whatever the action: add, remove, bind, unbind
         * and change all end in "read what the kernel shows now". */
        zpcid_inventory_refresh_address(self->inventory, address);
    }
}

static void
on_uevent(const ZpcidUevent *event, gpointer user_data)
{
    ZpcidService *self = user_data;
    ZpcidUeventTarget target;

    if (!zpcid_uevent_classify(event, &target))
        return;
    switch (target.kind) {
    case ZPCID_UEVENT_TARGET_FUNCTION:
        /* Read at the end of the burst (on_uevent_burst_done()), in the same dispatch, so a
         * D-Bus call handled after it sees the change as before. */
        if (!g_ptr_array_find_with_equal_func(self->pending_reads, target.address, g_str_equal,
                                              NULL))
            g_ptr_array_add(self->pending_reads, g_strdup(target.address));
        break;
    case ZPCID_UEVENT_TARGET_SLOT:
        /* A slot's events and its function's keep their order. */
        read_pending(self);
        zpcid_inventory_refresh_slot(self->inventory, target.fid);
        break;
    case ZPCID_UEVENT_TARGET_READINESS:
        schedule_readiness(self);
        break;
    case ZPCID_UEVENT_TARGET_NONE:
        break;
    }
}

static void
on_uevent_burst_done(gpointer user_data)
{
    read_pending(user_data);
}

static void
on_uevents_lost(gpointer user_data)
{
    ZpcidService *self = user_data;
    g_autoptr(GError) error = NULL;

    /* The scan reads them too. */
    g_ptr_array_set_size(self->pending_reads, 0);
    if (!zpcid_inventory_scan(self->inventory, &error))
        g_warning("The functions could not be read again: %s", error->message);
    schedule_readiness(self);
}

/* ---- life cycle ---- */

static char *
read_architecture(ZpcidHost *host)
{
    g_autofree char *arch = zpcid_host_read(host, "proc/sys/kernel/arch", 64, NULL, NULL);

    if (arch != NULL)
        return g_strdup(g_strstrip(arch));
    if (zpcid_host_is_live(host)) {
        struct utsname u;
        if (uname(&u) == 0)
            return g_strdup(u.machine);
    }
    return g_strdup("");
}

ZpcidService *
zpcid_service_new(const ZpcidServiceOptions *options, GError **error)
{
    g_autoptr(ZpcidService) self = g_object_new(ZPCID_TYPE_SERVICE, NULL);
    g_autoptr(GError) local_error = NULL;
    g_autofree char *arch = NULL;
    ZpcidBinderFlags flags = ZPCID_BINDER_FLAGS_NONE;

    self->options = *options;
    self->host_root = g_strdup(options->host_root);
    self->state_dir = g_strdup(options->state_dir);
    self->libvirt_uri = g_strdup(options->libvirt_uri);
    self->uevent_socket = g_strdup(options->uevent_socket);
    self->options.host_root = self->host_root;
    self->options.state_dir = self->state_dir;
    self->options.libvirt_uri = self->libvirt_uri;
    self->options.uevent_socket = self->uevent_socket;

    self->host = zpcid_host_new_default(self->host_root, error);
    if (self->host == NULL)
        return NULL;

    /* Listen before the first scan, so that no change between the two is missed. */
    if (self->uevent_socket != NULL) {
        self->uevents = zpcid_uevent_source_new_socket(self->uevent_socket, error);
        if (self->uevents == NULL)
            return NULL;
    } else if (zpcid_host_is_live(self->host)) {
        self->uevents = zpcid_uevent_source_new_netlink(&local_error);
        if (self->uevents == NULL) {
            g_warning("Functions will not follow kernel changes: %s", local_error->message);
            g_clear_error(&local_error);
        }
    } else {
        g_info("The host tree “%s” sends no uevents (see --uevent-socket); properties follow "
               "only zpcid's own changes.",
               zpcid_host_get_root(self->host));
    }

    self->inventory = zpcid_inventory_new(self->host);
    g_signal_connect_object(self->inventory, "function-added", G_CALLBACK(on_function_added), self,
                            0);
    g_signal_connect_object(self->inventory, "function-removed", G_CALLBACK(on_function_removed),
                            self, 0);
    g_signal_connect_object(self->inventory, "function-changed", G_CALLBACK(on_function_changed),
                            self, 0);

    self->manager = zpcid_dbus_manager_skeleton_new();
    arch = read_architecture(self->host);
    zpcid_dbus_manager_set_version(self->manager, ZPCID_VERSION);
    zpcid_dbus_manager_set_architecture(self->manager, arch);
    zpcid_service_methods_init_manager(self);

    self->domains = zpcid_domains_new(self->libvirt_uri);
    g_signal_connect_object(self->domains, "users-changed", G_CALLBACK(on_domain_users_changed),
                            self, 0);

    if (options->live_host)
        flags |= ZPCID_BINDER_FLAGS_LIVE_HOST;
    if (options->load_vfio)
        flags |= ZPCID_BINDER_FLAGS_LOAD_VFIO;
    self->binder = zpcid_binder_new(self->host, self->inventory, self->state_dir, flags, error);
    if (self->binder == NULL)
        return NULL;
    if (options->max_workers > 0)
        zpcid_binder_set_max_workers(self->binder, options->max_workers);
    zpcid_binder_set_domain_lookup(self->binder, zpcid_domains_lookup, g_object_ref(self->domains),
                                   g_object_unref);
    g_signal_connect_object(self->binder, "function-changed",
                            G_CALLBACK(on_binder_function_changed), self, 0);
    self->auth = zpcid_auth_new(options->use_polkit);
    return g_steal_pointer(&self);
}

gboolean
zpcid_service_export(ZpcidService *self, GDBusConnection *connection, GError **error)
{
    if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(self->manager), connection,
                                          ZPCID_DBUS_PATH, error))
        return FALSE;
    if (!zpcid_function_tree_register(self->tree, connection, error)) {
        g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(self->manager));
        return FALSE;
    }
    self->connection = g_object_ref(connection);
    return TRUE;
}

gboolean
zpcid_service_load(ZpcidService *self, GError **error)
{
    g_autoptr(GError) local_error = NULL;
    gboolean scanned;

    /* Every call waits in the main context until this returns, so no caller can have seen
     * the host before the scan: announcing each function would only cost startup time. */
    zpcid_function_tree_set_quiet(self->tree, TRUE);
    scanned = zpcid_inventory_scan(self->inventory, error);
    zpcid_function_tree_set_quiet(self->tree, FALSE);
    if (!scanned)
        return FALSE;
    /* A crash in the middle of a bind must not leave a function half moved: repair first,
     * serve afterwards. What cannot be repaired is reported and kept for the next start. */
    if (!zpcid_binder_recover(self->binder, &local_error))
        g_warning("%s", local_error->message);

    zpcid_service_update_readiness(self);
    update_count(self);
    if (self->uevents != NULL)
        zpcid_uevent_source_start(self->uevents, on_uevent, on_uevents_lost, on_uevent_burst_done,
                                  self);
    zpcid_domains_refresh(self->domains);
    /* The first scan leaves freed scratch memory (read buffers, variant trees) scattered
     * through the heap; give it back before idling for days. */
    malloc_trim(0);
    return TRUE;
}

static void
on_reapplied(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(ZpcidService) self = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report =
        zpcid_binder_reapply_persistent_finish(ZPCID_BINDER(source), result, &error);

    /* Done: nothing left to cancel at shutdown. */
    g_clear_object(&self->reapply_cancellable);

    if (report == NULL) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            g_warning("The persistent bindings could not be applied: %s", error->message);
        return;
    }
    for (guint i = 0; i < report->functions->len; i++) {
        const ZpcidBindFunctionResult *r = g_ptr_array_index(report->functions, i);
        if (r->outcome == ZPCID_BIND_OUTCOME_CHANGED)
            g_message("The persistent binding of the function 0x%08x to vfio-pci was applied.",
                      r->fid);
    }
    for (guint i = 0; i < report->warnings->len; i++)
        g_warning("%s", (const char *)g_ptr_array_index(report->warnings, i));
}

void
zpcid_service_start(ZpcidService *self)
{
    if (self->options.reapply_persistent && self->options.allow_changes) {
        self->reapply_cancellable = g_cancellable_new();
        zpcid_binder_reapply_persistent_async(self->binder, self->reapply_cancellable, on_reapplied,
                                              g_object_ref(self));
    }
}

static gboolean
on_drain_deadline(gpointer user_data)
{
    *(gboolean *)user_data = TRUE;
    return G_SOURCE_REMOVE;
}

static gboolean
is_idle(ZpcidService *self)
{
    return (self->binder == NULL || zpcid_binder_is_idle(self->binder)) &&
           (self->domains == NULL || zpcid_domains_is_idle(self->domains)) &&
           self->reapply_cancellable == NULL;
}

/* Worker threads must not outlive main(): exit() would tear down libraries (libvirt's TLS,
 * libcrypto) under a thread still using them. So the transactions and libvirt jobs under
 * way finish first, cancelled where they can be; their results arrive through the main
 * context, which runs here after the main loop has ended. A bind in the middle of its kernel
 * steps ends committed or rolled back, never half done. */
static gboolean
drain(ZpcidService *self)
{
    gboolean late = FALSE;

    if (!is_idle(self)) {
        guint deadline = g_timeout_add_seconds(DRAIN_TIMEOUT_S, on_drain_deadline, &late);

        g_message("Waiting for the requests under way to finish.");
        while (!is_idle(self) && !late)
            g_main_context_iteration(NULL, TRUE);
        if (!late)
            g_source_remove(deadline);
    }
    /* Completions that GTask deferred to an idle: the replies of the last requests. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    return !late;
}

void
zpcid_service_stop(ZpcidService *self)
{
    if (self->stopped)
        return;
    self->stopped = TRUE;
    if (self->cancellable != NULL)
        g_cancellable_cancel(self->cancellable);
    if (self->reapply_cancellable != NULL)
        g_cancellable_cancel(self->reapply_cancellable);
    g_clear_pointer(&self->uevents, zpcid_uevent_source_free);
    /* Off the bus first, so that no new request starts while the old ones finish. */
    if (self->connection != NULL) {
        zpcid_function_tree_unregister(self->tree);
        g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(self->manager));
        g_clear_object(&self->connection);
    }
    if (!drain(self))
        g_warning("Requests were still running after %d seconds; stopping anyway.",
                  DRAIN_TIMEOUT_S);
    self->drained = is_idle(self);
}

gboolean
zpcid_service_is_drained(ZpcidService *self)
{
    return self->drained;
}
