#include "hook-bus.h"

#include <glib/gi18n-lib.h>
#include <stdio.h>
#include <unistd.h>

#include "error.h"
#include "zpcid-names.h"

/* After the budget, the time cancelled calls get to return before the process is ended. */
#define HOOK_BUS_GRACE_US (2 * G_USEC_PER_SEC)

struct _HookBus {
    guint budget_ms;
    gint64 deadline; /* monotonic, µs */
    int stop_status;
    char *stop_message;
    GCancellable *cancellable;
    GDBusConnection *connection;

    GMutex lock;
    GCond cond;
    gboolean done; /* under lock: the hook is finished, the watchdog may go */
    GThread *watchdog;
};

static gpointer
watchdog_thread(gpointer data)
{
    HookBus *bus = data;

    g_mutex_lock(&bus->lock);
    while (!bus->done && g_cond_wait_until(&bus->cond, &bus->lock, bus->deadline))
        ;
    if (bus->done) {
        g_mutex_unlock(&bus->lock);
        return NULL;
    }
    /* Budget spent: whatever call is running returns CANCELLED. */
    g_cancellable_cancel(bus->cancellable);
    while (!bus->done &&
           g_cond_wait_until(&bus->cond, &bus->lock, bus->deadline + HOOK_BUS_GRACE_US))
        ;
    if (!bus->done) {
        /* Something ignored the cancellation; libvirt must not wait any longer. */
        if (bus->stop_message != NULL)
            fprintf(stderr, "%s\n", bus->stop_message);
        fflush(stderr);
        _exit(bus->stop_status);
    }
    g_mutex_unlock(&bus->lock);
    return NULL;
}

HookBus *
hook_bus_new(guint budget_ms, int stop_status, const char *stop_message)
{
    HookBus *bus = g_new0(HookBus, 1);

    bus->budget_ms = budget_ms;
    bus->deadline = g_get_monotonic_time() + (gint64)budget_ms * G_TIME_SPAN_MILLISECOND;
    bus->stop_status = stop_status;
    bus->stop_message = g_strdup(stop_message);
    bus->cancellable = g_cancellable_new();
    g_mutex_init(&bus->lock);
    g_cond_init(&bus->cond);
    bus->watchdog = g_thread_new("zpcid-hook-watchdog", watchdog_thread, bus);
    return bus;
}

void
hook_bus_free(HookBus *bus)
{
    if (bus == NULL)
        return;
    g_mutex_lock(&bus->lock);
    bus->done = TRUE;
    g_cond_signal(&bus->cond);
    g_mutex_unlock(&bus->lock);
    g_thread_join(bus->watchdog);
    if (bus->connection != NULL)
        g_dbus_connection_close_sync(bus->connection, NULL, NULL);
    g_clear_object(&bus->connection);
    g_clear_object(&bus->cancellable);
    g_mutex_clear(&bus->lock);
    g_cond_clear(&bus->cond);
    g_free(bus->stop_message);
    g_free(bus);
}

guint
hook_bus_remaining_ms(HookBus *bus)
{
    gint64 left = bus->deadline - g_get_monotonic_time();

    return left > 0 ? (guint)((left + 999) / 1000) : 0;
}

static void
set_timed_out(HookBus *bus, GError **error)
{
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_READY,
                _("zpcid did not answer within %u ms (“timeout-seconds” in the [libvirt-hook] "
                  "group of zpcid.conf)."),
                bus->budget_ms);
}

gboolean
hook_bus_connect(HookBus *bus, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *address = NULL;

    /* Registers org.zpcid1.Error.* so that zpcid's replies become ZPCID_ERROR codes. */
    (void)zpcid_error_quark();
    address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, bus->cancellable, &local);
    if (address != NULL)
        bus->connection = g_dbus_connection_new_for_address_sync(
            address,
            G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
            NULL, bus->cancellable, &local);
    if (bus->connection != NULL) {
        g_dbus_connection_set_exit_on_close(bus->connection, FALSE);
        return TRUE;
    }
    if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        set_timed_out(bus, error);
        return FALSE;
    }
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_READY,
                _("The system bus could not be reached: %s"), local->message);
    return FALSE;
}

GVariant *
hook_bus_call(HookBus *bus, const char *method, GVariant *params, const GVariantType *reply_type,
              GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(GVariant) sunk = params != NULL ? g_variant_ref_sink(params) : NULL;
    guint left = hook_bus_remaining_ms(bus);
    GVariant *reply;

    if (left == 0) {
        set_timed_out(bus, error);
        return NULL;
    }
    reply = g_dbus_connection_call_sync(
        bus->connection, ZPCID_DBUS_NAME, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER, method, sunk,
        reply_type, G_DBUS_CALL_FLAGS_NONE, (int)MIN(left, G_MAXINT), bus->cancellable, &local);
    if (reply != NULL)
        return reply;
    if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
        g_error_matches(local, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
        g_error_matches(local, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY) ||
        g_error_matches(local, G_DBUS_ERROR, G_DBUS_ERROR_TIMEOUT)) {
        set_timed_out(bus, error);
        return NULL;
    }
    if (g_error_matches(local, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
        g_error_matches(local, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_READY,
                    _("zpcid is not running on the system bus (“%s”)."), ZPCID_DBUS_NAME);
        return NULL;
    }
    if (local->domain != ZPCID_ERROR) {
        /* Access denied by the bus, unknown method of an older zpcid, …: keep the text. */
        g_dbus_error_strip_remote_error(local);
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_FAILED, _("The call “%s” to zpcid failed: %s"),
                    method, local->message);
        return NULL;
    }
    g_dbus_error_strip_remote_error(local);
    g_propagate_error(error, g_steal_pointer(&local));
    return NULL;
}
