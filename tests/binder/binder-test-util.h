/* Host trees, snapshots and fault injection for the binder tests, the crash helper and the
 * benchmark. Trees come from tests/tools/mkhost.py; the simulated kernel (tests/simkernel,
 * preloaded) gives them the kernel's bind/unbind/drivers_probe behaviour. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The environment without the simulated kernel, for tools that write trees (mkhost, cp). */
char **bt_clean_environ(void);

/* Generates a tree with mkhost.py ($MKHOST) at @dir; @args are extra mkhost options. */
void bt_make_host(const char *dir, const char *const *args);
/* cp -a @src @dst (the tree's symlinks are relative, so the copy is a separate host). */
void bt_copy_tree(const char *src, const char *dst);
/* Makes the binding state of @root (driver links, driver_override, drivers' device links)
 * that of @tmpl, a copy of the same tree; much faster than a new copy. */
void bt_reset_tree(const char *root, const char *tmpl);
/* rm -rf of a directory made by g_dir_make_tmp("zpcid-bind-XXXXXX"). */
void bt_remove_tmp(const char *tmp);
/* Aborts the test when @root is the real root or a system directory: binder tests write. */
void bt_assert_not_live(const char *root);

/* Every file a binding touches, one line each: per device its driver link and
 * driver_override, then every driver's device links. Paths are relative to @root. */
char *bt_snapshot(const char *root);

/* Fault injection through the simulated kernel's fixture/faults file. @op is "unbind",
 * "bind", "probe" (drivers_probe) or "override" (driver_override); @address a PCI address.
 * Faults stay until cleared. */
void bt_fault_clear(const char *root);
void bt_fault_errno(const char *root, const char *op, const char *address, int err_no);
void bt_fault_delay(const char *root, const char *op, const char *address, guint ms);
/* drivers_probe succeeds and binds nothing / binds @driver. */
void bt_fault_probe_nothing(const char *root, const char *address);
void bt_fault_probe_wrong(const char *root, const char *address, const char *driver);
/* The device disappears when @op is written for it: before the write acts (which then
 * fails with ENODEV) or, with @after, once it has acted. */
void bt_fault_vanish(const char *root, const char *op, const char *address, gboolean after);

G_END_DECLS
