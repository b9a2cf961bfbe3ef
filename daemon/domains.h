/* zpcid's way to libvirt, shared by the D-Bus methods (worker threads), the binder's domain
 * guard (its worker threads) and the Domains property (main thread). The calls go to
 * zpcid-libvirt-helper (daemon/libvirt-client.h), which is started on first use, again after
 * it failed, and let go after some seconds without calls. They block, so they never run on
 * the main loop; one lock serializes them. */
#pragma once

#include <gio/gio.h>

#include "libvirt-client.h"

G_BEGIN_DECLS

#define ZPCID_TYPE_DOMAINS (zpcid_domains_get_type())
G_DECLARE_FINAL_TYPE(ZpcidDomains, zpcid_domains, ZPCID, DOMAINS, GObject)

/* Signal "users-changed" (GStrv addresses): after a refresh, the PCI addresses whose list of
 * domains changed. */

ZpcidDomains *zpcid_domains_new(const char *uri);
const char *zpcid_domains_get_uri(ZpcidDomains *self);

/* Work done through the helper, in a worker thread under the lock. Its first call must only
 * read: a job whose first call found the helper gone is run again with a new helper. */
typedef gpointer (*ZpcidVirtJob)(ZpcidLibvirtClient *client, gpointer data, GError **error);

void zpcid_domains_run_async(ZpcidDomains *self, ZpcidVirtJob job, gpointer data,
                             GDestroyNotify data_free, GDestroyNotify result_free,
                             GAsyncReadyCallback callback, gpointer user_data);
/* The job's result (owned by the caller), or NULL with @error. */
gpointer zpcid_domains_run_finish(ZpcidDomains *self, GAsyncResult *result, GError **error);

/* A ZpcidDomainLookupFunc for the binder (user_data = the ZpcidDomains); blocks, so it must
 * not be called on the main thread. */
gboolean zpcid_domains_lookup(const char *address, guint32 fid, gint64 uid, char ***running,
                              char ***defined, gpointer user_data, GError **error);

/* The cached names of the domains that reference @address (NULL-terminated, never NULL). */
const char *const *zpcid_domains_get_users(ZpcidDomains *self, const char *address);
/* Reads every domain again in the background; "users-changed" tells what changed. */
void zpcid_domains_refresh(ZpcidDomains *self);
/* TRUE when no libvirt job runs in a worker thread (main context). */
gboolean zpcid_domains_is_idle(ZpcidDomains *self);
/* The same, completing once a refresh that started after this call has been applied (also
 * when libvirt could not be read: the cache is then kept and no error is returned). */
void zpcid_domains_refresh_async(ZpcidDomains *self, GAsyncReadyCallback callback,
                                 gpointer user_data);
void zpcid_domains_refresh_finish(ZpcidDomains *self, GAsyncResult *result);

G_END_DECLS
