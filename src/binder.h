/* The binding engine: moves zPCI functions between their host driver and vfio-pci.
 *
 * A request for several functions is one transaction: every function is checked first
 * (identity, guards), then the functions are moved in parallel on a bounded worker pool,
 * each function's steps in order, and if any step of any function fails every function
 * already moved is moved back. Each change is announced in a journal in the state
 * directory before it is made, so that zpcid_binder_recover() can repair the host after a
 * crash at any point.
 *
 * Threading: create the binder, call its methods and receive its callbacks in one thread
 * with a running GMainContext (the daemon's main loop). Kernel writes happen in worker
 * threads; results are delivered in the thread-default main context of the caller. */
#pragma once

#include <gio/gio.h>

#include "host.h"
#include "inventory.h"

G_BEGIN_DECLS

/* Reasons to refuse a function because it is in use or not fit for the move. Refusals are
 * ZPCID_ERROR_BUSY errors whose message names the function, the guard and the holder. */
typedef enum {
    ZPCID_GUARD_NET,         /* "net": an interface on it is up or has addresses */
    ZPCID_GUARD_BLOCK,       /* "block": a disk/partition is mounted, swap or has holders */
    ZPCID_GUARD_SRIOV,       /* "sriov": a PF with VFs enabled (sriov_numvfs > 0) */
    ZPCID_GUARD_DOMAIN,      /* "domain": referenced by a running libvirt domain */
    ZPCID_GUARD_STANDBY,     /* "standby": reserved but not configured (slot power 0) */
    ZPCID_GUARD_IOMMU_GROUP, /* "iommu-group": no iommu_group link */
    ZPCID_GUARD_IDENTITY,    /* "identity": fid/uid read through the device dir differ */
    ZPCID_GUARD_LAST,
} ZpcidGuard;

/* Bit of @guard in ZpcidBindOptions.allow_guards. */
#define ZPCID_GUARD_BIT(guard) (1u << (guard))

/* "net", "block", ... as listed above; NULL for an invalid value. */
const char *zpcid_guard_to_string(ZpcidGuard guard);
/* Parses a guard name; INVALID_ARGUMENT for an unknown name. */
gboolean zpcid_guard_from_string(const char *name, ZpcidGuard *guard, GError **error);
/* Only net, block, sriov and domain may be overridden: the others are not about use by
 * somebody else but about whether the move can work at all (or is the right device). */
gboolean zpcid_guard_is_overridable(ZpcidGuard guard);

/* Per-step timeout used when ZpcidBindOptions.timeout_ms is 0. */
#define ZPCID_BIND_DEFAULT_TIMEOUT_MS 10000u

typedef struct {
    /* Check everything and report what would be done; write nothing, journal nothing. */
    gboolean dry_run;
    /* Bind: re-apply the binding when the daemon starts (see reapply_persistent).
     * Unbind always forgets a persistent binding of the function, whatever this says. */
    gboolean persistent;
    /* Per step (one kernel write and its verification); 0 = ZPCID_BIND_DEFAULT_TIMEOUT_MS.
     * A step that takes longer fails the transaction; a kernel write that is still stuck
     * is reported, not waited for, and the function stays busy until it returns. */
    guint timeout_ms;
    /* ZPCID_GUARD_BIT()s of guards not to apply; only overridable guards may be set. The
     * caller is responsible for authorizing this (polkit) before passing it. */
    guint allow_guards;
    /* Bind: recorded with the functions this request moves (not with those already on
     * vfio-pci), so that the same owner can give back exactly those later. Unbind: only
     * functions bound with this owner are given back; the others are left alone and are
     * not in the report. NULL: no owner (Unbind: every function). Borrowed: the binder
     * copies it. At most ZPCID_BIND_OWNER_MAX bytes, printable ASCII. */
    const char *owner;
} ZpcidBindOptions;

#define ZPCID_BIND_OWNER_MAX 256

/* Zero-initialized options: bind now, not persistent, default timeout, all guards. */
#define ZPCID_BIND_OPTIONS_INIT { FALSE, FALSE, 0, 0, NULL }

/* Fills @options from D-Bus style a{sv}: "dry-run" b, "persistent" b, "timeout" u (ms),
 * "allow-guards" as, "owner" s (borrowed from @asv). Unknown keys and wrong types are
 * INVALID_ARGUMENT (so that a typo is not silently ignored); keys starting with "auth." are
 * left to the caller. */
gboolean zpcid_bind_options_from_variant(GVariant *asv, ZpcidBindOptions *options,
                                         GError **error);

typedef enum {
    ZPCID_BIND_OUTCOME_CHANGED,      /* moved and verified */
    ZPCID_BIND_OUTCOME_UNCHANGED,    /* already in the requested state: nothing written */
    ZPCID_BIND_OUTCOME_WOULD_CHANGE, /* dry run: would have been moved */
} ZpcidBindOutcome;

typedef struct {
    guint32 fid;
    gint64 uid;           /* ZPCID_UNKNOWN when the kernel does not show it */
    char *address;        /* PCI address at the time of the move */
    char *driver_before;  /* NULL when no driver was bound */
    char *driver_after;   /* what is bound now (or would be, for a dry run); NULL none */
    ZpcidBindOutcome outcome;
    GPtrArray *steps;     /* char*: the steps done (or, dry run, to do), as sentences */
} ZpcidBindFunctionResult;

typedef struct {
    GPtrArray *functions; /* ZpcidBindFunctionResult*, in request order */
    GPtrArray *warnings;  /* char*: translated sentences (e.g. defined libvirt domains) */
} ZpcidBindReport;

void zpcid_bind_report_free(ZpcidBindReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidBindReport, zpcid_bind_report_free)

/* Returns the running and the defined (not running) libvirt domains that use the function
 * at @address as a hostdev, as NULL-terminated arrays (either may be NULL for none). Called
 * from a worker thread, never twice at the same time (the binder serializes calls), so it
 * needs to be safe only off the main thread. FALSE with @error when libvirt could not be
 * asked: the domain guard then refuses the function unless it is allowed. */
typedef gboolean (*ZpcidDomainLookupFunc)(const char *address, guint32 fid, gint64 uid,
                                          char ***running, char ***defined,
                                          gpointer user_data, GError **error);

typedef enum {
    ZPCID_BINDER_FLAGS_NONE = 0,
    /* Permit writes when the host root is "/" (real devices). Without it, a binder on the
     * live host refuses every change with NOT_AUTHORIZED; dry runs and queries work. */
    ZPCID_BINDER_FLAGS_LIVE_HOST = 1 << 0,
    /* Run "modprobe vfio-pci" when sys/bus/pci/drivers/vfio-pci is missing (live host only;
     * on a tree the missing driver is NOT_READY). Without it, the bind fails NOT_READY. */
    ZPCID_BINDER_FLAGS_LOAD_VFIO = 1 << 1,
} ZpcidBinderFlags;

#define ZPCID_TYPE_BINDER (zpcid_binder_get_type())
G_DECLARE_FINAL_TYPE(ZpcidBinder, zpcid_binder, ZPCID, BINDER, GObject)

/* Signals (main context):
 *   "function-changed" (guint fid): a function's binding, recorded host driver or
 *   persistence changed; the inventory has already been refreshed for it. */

/* @state_dir holds the journal and the persistent bindings (created 0700 if missing).
 * Loads the store; does not touch the kernel (call zpcid_binder_recover() for that). Fails
 * when the store is unreadable or of an unknown version (never overwritten blindly). */
ZpcidBinder *zpcid_binder_new(ZpcidHost *host, ZpcidInventory *inventory,
                              const char *state_dir, ZpcidBinderFlags flags, GError **error);

/* Size of the worker pool (default 16; functions are moved at most this many at a time). */
void zpcid_binder_set_max_workers(ZpcidBinder *self, guint max_workers);

/* Installs the libvirt lookup for the domain guard. Without one, the domain guard passes
 * and a warning says that libvirt domains were not checked. */
void zpcid_binder_set_domain_lookup(ZpcidBinder *self, ZpcidDomainLookupFunc func,
                                    gpointer user_data, GDestroyNotify destroy);

/* Moves the functions @fids[0..n-1] to vfio-pci as one transaction. Errors (ZPCID_ERROR):
 * INVALID_ARGUMENT (empty or repeated FIDs, bad options), NOT_FOUND (unknown FID),
 * BUSY (a guard, or another transaction holds one of the functions), NOT_READY
 * (vfio-pci missing), NOT_AUTHORIZED (live host without the flag), otherwise the code from
 * the kernel's errno. Messages name the function, the step, the file and the errno; after
 * an error every function is as it was (or, if rolling back failed too, the message says
 * exactly which function is left how). Cancelling abandons steps not yet started and rolls
 * back. The callback runs once every function's state is final and the inventory is
 * refreshed. */
void zpcid_binder_bind_async(ZpcidBinder *self, const guint32 *fids, guint n_fids,
                             const ZpcidBindOptions *options, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data);
ZpcidBindReport *zpcid_binder_bind_finish(ZpcidBinder *self, GAsyncResult *result,
                                          GError **error);

/* Gives the functions back to their host driver as one transaction: clears driver_override,
 * unbinds from vfio-pci, reprobes and verifies that the recorded host driver is back. A
 * function with no recorded host driver succeeds with whatever the kernel binds (reported
 * in driver_after, with a warning if nothing binds). A function not on vfio-pci and without
 * override is UNCHANGED. Errors as for bind; a running domain using it is BUSY (domain). */
void zpcid_binder_unbind_async(ZpcidBinder *self, const guint32 *fids, guint n_fids,
                               const ZpcidBindOptions *options, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);
ZpcidBindReport *zpcid_binder_unbind_finish(ZpcidBinder *self, GAsyncResult *result,
                                            GError **error);

/* Replays the journal against the real kernel state: every transaction that did not commit
 * is reverted (each function back to its recorded driver and driver_override), a committed
 * one is completed; then the journal is cleared. Call once at start, before serving
 * requests. Blocking. Functions that cannot be repaired are named in @error (FAILED) and
 * their journal entries kept for the next start. */
gboolean zpcid_binder_recover(ZpcidBinder *self, GError **error);

/* Binds every persistent binding whose function is present and not on vfio-pci, in the
 * background: a function that fails (or is not there yet) is tried again after 1, 2, 4, ...
 * up to 64 seconds, at most 8 times, then left alone with a warning. Completes (callback
 * may be NULL) when everything is applied or given up; the report lists what was bound
 * and warnings for what was not. Cancel @cancellable to stop retrying: the task then
 * completes (without a cancellation error) once running binds are done. */
void zpcid_binder_reapply_persistent_async(ZpcidBinder *self, GCancellable *cancellable,
                                           GAsyncReadyCallback callback, gpointer user_data);
ZpcidBindReport *zpcid_binder_reapply_persistent_finish(ZpcidBinder *self,
                                                        GAsyncResult *result, GError **error);

/* The driver the function had when zpcid moved it to vfio-pci (and will give it back to),
 * or NULL if zpcid did not move it or it had no driver then. Valid until the next change
 * of that function. */
const char *zpcid_binder_get_host_driver(ZpcidBinder *self, guint32 fid);
gboolean zpcid_binder_is_persistent(ZpcidBinder *self, guint32 fid);
/* The owner the binding was made for (Bind option "owner"), or NULL. Valid as above. */
const char *zpcid_binder_get_owner(ZpcidBinder *self, guint32 fid);
/* TRUE while a transaction (or a stuck step) holds the function. */
gboolean zpcid_binder_is_busy(ZpcidBinder *self, guint32 fid);
/* For a kernel event (uevent) of the function: TRUE when a transaction holds it, which then
 * reads it again when it ends, even after a dry run; the caller need not read it now (each
 * step's uevents would show states in between). FALSE: not busy, the caller reads it. */
gboolean zpcid_binder_defer_refresh(ZpcidBinder *self, guint32 fid);
/* TRUE when no transaction thread is running: every request has been answered (in the
 * main context) and its journal entries are settled or committed. */
gboolean zpcid_binder_is_idle(ZpcidBinder *self);

G_END_DECLS
