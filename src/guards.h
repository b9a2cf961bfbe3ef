/* In-use and fitness checks made before a function is moved (the binder's guards).
 *
 * Everything is read below the host root, so that trees can model every case: network
 * interfaces (sys/class/net/<if>/{operstate,flags}, proc/net/if_inet6, proc/net/route),
 * block devices (sys/class/block/<dev>/{dev,holders/}, proc/self/mountinfo, proc/swaps),
 * sriov_numvfs, the hotplug slot's power, the iommu_group link and the identity read
 * through the very device directory the binder later writes into. */
#pragma once

#include <glib.h>

#include "binder.h"
#include "host.h"

G_BEGIN_DECLS

typedef struct {
    ZpcidGuard guard;
    char *message; /* a translated sentence naming the function and the holder */
} ZpcidGuardHit;

void zpcid_guard_hit_free(ZpcidGuardHit *hit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidGuardHit, zpcid_guard_hit_free)

/* Checks the guards whose ZPCID_GUARD_BIT is in @which for the function @fid at @address
 * (device directory @device, expected UID @uid or ZPCID_UNKNOWN) and appends a
 * ZpcidGuardHit for each reason to refuse to @hits. ZPCID_GUARD_DOMAIN is not checked
 * here (the binder asks libvirt). @label names the function in messages. */
void zpcid_guards_check(ZpcidHost *host, ZpcidDir *device, const char *address, guint32 fid,
                        gint64 uid, guint which, const char *label, GPtrArray *hits);

/* The single checks, for tests and for re-checking the identity before each write. */
gboolean zpcid_guard_check_identity(ZpcidDir *device, guint32 fid, gint64 uid,
                                    const char *label, char **message);
gboolean zpcid_guard_check_standby(ZpcidHost *host, guint32 fid, const char *label,
                                   char **message);

G_END_DECLS
