/* All zPCI functions of a host, kept current one function at a time. */
#pragma once

#include <glib-object.h>

#include "function.h"
#include "host.h"

G_BEGIN_DECLS

#define ZPCID_TYPE_INVENTORY (zpcid_inventory_get_type())
G_DECLARE_FINAL_TYPE(ZpcidInventory, zpcid_inventory, ZPCID, INVENTORY, GObject)

/* Signals (all with the ZpcidFunction as argument, keyed by FID):
 *   "function-added"   (ZpcidFunction *function)
 *   "function-removed" (ZpcidFunction *function)
 *   "function-changed" (ZpcidFunction *old_function, ZpcidFunction *new_function)
 * Functions are immutable snapshots: a change replaces the snapshot. */

ZpcidInventory *zpcid_inventory_new(ZpcidHost *host);
ZpcidHost *zpcid_inventory_get_host(ZpcidInventory *self);

/* Reads every function and slot; emits signals for the differences to the previous state. */
gboolean zpcid_inventory_scan(ZpcidInventory *self, GError **error);
/* Re-reads one function (after a uevent); removes it if its device is gone. */
void zpcid_inventory_refresh_address(ZpcidInventory *self, const char *address);
/* Re-reads one slot (standby <-> configured). */
void zpcid_inventory_refresh_slot(ZpcidInventory *self, guint32 fid);

/* Snapshot of all functions, sorted by FID. */
GPtrArray *zpcid_inventory_list(ZpcidInventory *self);
/* Calls FUNC for every function in no particular order: for counting, where sorting the
 * whole list on every call would cost more than the count (4096 functions). */
void zpcid_inventory_foreach(ZpcidInventory *self, void (*func)(ZpcidFunction *function,
                                                                  gpointer user_data),
                             gpointer user_data);
guint zpcid_inventory_get_count(ZpcidInventory *self);
ZpcidFunction *zpcid_inventory_lookup_fid(ZpcidInventory *self, guint32 fid);
ZpcidFunction *zpcid_inventory_lookup_address(ZpcidInventory *self, const char *address);
/* Finds the function for a spec ("0x11", "uid:0x5", "0005:00:00.0"); a new reference. */
ZpcidFunction *zpcid_inventory_resolve(ZpcidInventory *self, const char *spec, GError **error);
/* Problems of the host tree that concern no single function (unreadable directories). */
GPtrArray *zpcid_inventory_get_errors(ZpcidInventory *self);

G_END_DECLS
