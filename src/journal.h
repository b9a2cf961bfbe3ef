/* The binder's store: the journal of unfinished transactions and the bindings zpcid made.
 *
 * Both live in one file, <state_dir>/binder.json, so that a transaction's end and the
 * binding it creates are written in one atomic step. Records are keyed by FID and UID:
 * a PCI address can change between boots (and without UID checking, between hotplugs).
 *
 * Format (version 1):
 *   { "format": "zpcid-binder", "version": 1,
 *     "bindings": [ { "fid": 17, "uid": 5, "address": "0005:00:00.0",
 *                     "host-driver": "mlx5_core" | null, "persistent": true,
 *                     "allow-guards": ["net"], "owner": "libvirt:…" | null } ],
 *     "transactions": [ { "id": "…", "operation": "bind" | "unbind",
 *                         "persistent": false, "allow-guards": [], "owner": null,
 *                         "fids": [17, 18],
 *                         "functions": [ { "fid": 17, "uid": 5, "address": "0005:00:00.0",
 *                                          "driver-before": "mlx5_core" | null,
 *                                          "override-before": null | "…",
 *                                          "driver-after": "vfio-pci" | null,
 *                                          "driver-after-any": false,
 *                                          "override-after": "vfio-pci" | null,
 *                                          "step": "restore-bind", "file": "…/bind",
 *                                          "rolling-back": true } ] } ] }
 * "uid" is -1 when the kernel does not show one. "owner" (the Bind option of the same name,
 * e.g. the libvirt hook's "libvirt:<domain uuid>") may be absent: files written before it
 * existed read as bindings without an owner. A file of another format or a newer
 * version is refused, never overwritten.
 *
 * "step" is null until a step is announced. The binder announces only the steps that move a
 * function back (rollback, recovery). Recovery needs no step: it compares the kernel with
 * "driver-before"/"override-before" and the "after" fields, which the transaction's first
 * record has on disk before the first kernel write.
 *
 * Every change is written to binder.json.tmp, fsync'ed, renamed over binder.json and the
 * directory fsync'ed. Writers in several threads are batched (group commit): each call
 * returns once a write containing its change has reached the disk. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ZPCID_JOURNAL_FILE    "binder.json"
#define ZPCID_JOURNAL_VERSION 1

typedef struct _ZpcidJournal ZpcidJournal;

typedef struct {
    guint32 fid;
    gint64 uid;
    char *address;         /* at the time of the transaction; for messages only */
    char *driver_before;   /* NULL: no driver */
    char *override_before; /* NULL: no driver_override */
    char *driver_after;    /* NULL: no driver (unless driver_after_any) */
    gboolean driver_after_any; /* unbind without a recorded host driver: any non-vfio */
    char *override_after;
    char *step;            /* last step announced; NULL before the first */
    char *file;            /* file that step writes */
    gboolean rolling_back;
} ZpcidJournalMember;

typedef struct {
    char *id;
    char *operation;    /* "bind" or "unbind" */
    gboolean persistent; /* what the commit records, so that recovery can complete it */
    GStrv allow_guards;
    char *owner;        /* recorded with the bindings the commit creates; NULL: none */
    GArray *fids;       /* guint32: every FID of the request, including no-ops */
    GPtrArray *members; /* ZpcidJournalMember*: the functions that change */
} ZpcidJournalTxn;

typedef struct {
    guint32 fid;
    gint64 uid;
    char *address;
    char *host_driver; /* NULL: none known */
    gboolean persistent;
    GStrv allow_guards; /* guard names allowed when the binding was made (may be NULL) */
    char *owner;        /* who asked for the binding (Bind option "owner"); NULL: nobody said */
} ZpcidJournalBinding;

ZpcidJournalMember *zpcid_journal_member_new(void);
ZpcidJournalMember *zpcid_journal_member_copy(const ZpcidJournalMember *member);
void zpcid_journal_member_free(ZpcidJournalMember *member);
ZpcidJournalTxn *zpcid_journal_txn_new(const char *operation);
ZpcidJournalTxn *zpcid_journal_txn_copy(const ZpcidJournalTxn *txn);
void zpcid_journal_txn_free(ZpcidJournalTxn *txn);
ZpcidJournalBinding *zpcid_journal_binding_copy(const ZpcidJournalBinding *binding);
void zpcid_journal_binding_free(ZpcidJournalBinding *binding);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidJournalMember, zpcid_journal_member_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidJournalTxn, zpcid_journal_txn_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidJournalBinding, zpcid_journal_binding_free)

/* Loads <state_dir>/binder.json (an absent file is an empty store); creates @state_dir
 * (0700) if needed. */
ZpcidJournal *zpcid_journal_open(const char *state_dir, GError **error);
void zpcid_journal_free(ZpcidJournal *journal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidJournal, zpcid_journal_free)

const char *zpcid_journal_get_path(ZpcidJournal *journal);

/* Called twice per write of the file: before the temporary file is written
 * (@before_rename FALSE) and before it replaces the store (TRUE); for crash tests. */
typedef void (*ZpcidJournalHook)(guint n_writes, gboolean before_rename, gpointer user_data);
void zpcid_journal_set_hook(ZpcidJournal *journal, ZpcidJournalHook hook, gpointer user_data);

/* Records @txn (its id is set if NULL). Takes a copy. */
gboolean zpcid_journal_begin(ZpcidJournal *journal, ZpcidJournalTxn *txn, GError **error);
/* Announces the step about to be made on @fid of transaction @txn_id. */
gboolean zpcid_journal_note_step(ZpcidJournal *journal, const char *txn_id, guint32 fid,
                                 const char *step, const char *file, gboolean rolling_back,
                                 GError **error);
/* The function is back where it was (or gone): forgets it; a transaction without members
 * is removed. */
gboolean zpcid_journal_settle(ZpcidJournal *journal, const char *txn_id, guint32 fid,
                              GError **error);
/* Ends transaction @txn_id successfully: removes it, stores @set (ZpcidJournalBinding*,
 * replacing records of the same FID) and removes the bindings of @remove_fids, in one
 * write. @txn_id may be NULL to change bindings only. */
gboolean zpcid_journal_commit(ZpcidJournal *journal, const char *txn_id, GPtrArray *set,
                              const guint32 *remove_fids, guint n_remove, GError **error);

/* Copies (ZpcidJournalTxn*, ZpcidJournalBinding*). */
GPtrArray *zpcid_journal_dup_transactions(ZpcidJournal *journal);
GPtrArray *zpcid_journal_dup_bindings(ZpcidJournal *journal);
ZpcidJournalBinding *zpcid_journal_lookup_binding(ZpcidJournal *journal, guint32 fid);

G_END_DECLS
