/* The hook's way to zpcid: D-Bus calls under one time budget per invocation.
 *
 * libvirt waits for the hook with the domain locked, so the hook must never wait long: every
 * call gets what is left of the budget as its D-Bus timeout, and a watchdog thread cancels
 * whatever is still running when the budget is spent (connecting included). If even that does
 * not bring the hook back, the watchdog ends the process two seconds later with the exit
 * status the caller chose. */
#pragma once

#include <gio/gio.h>

typedef struct _HookBus HookBus;

/* Starts the budget and the watchdog now. On a hard stop the watchdog prints @stop_message
 * (may be NULL) to stderr and calls _exit(@stop_status). */
HookBus *hook_bus_new(guint budget_ms, int stop_status, const char *stop_message);
void hook_bus_free(HookBus *bus);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HookBus, hook_bus_free)

/* Milliseconds left of the budget, 0 when spent. */
guint hook_bus_remaining_ms(HookBus *bus);

/* Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS or the standard one). Errors are
 * ZPCID_ERROR_NOT_READY with a sentence that says zpcid could not be reached and why. */
gboolean hook_bus_connect(HookBus *bus, GError **error);

/* Calls org.zpcid1.Manager.@method with @params (floating references are sunk). A D-Bus
 * error of zpcid becomes its ZPCID_ERROR code; no answer in time becomes
 * ZPCID_ERROR_NOT_READY “zpcid did not answer within …”. */
GVariant *hook_bus_call(HookBus *bus, const char *method, GVariant *params,
                        const GVariantType *reply_type, GError **error);
