/* The model of one zPCI function as the kernel shows it. */
#pragma once

#include <glib.h>

#include "host.h"

G_BEGIN_DECLS

/* Value of a numeric attribute that this kernel does not have (older kernel) or that could
 * not be read (the reason is in ->errors). */
#define ZPCID_UNKNOWN ((gint64)-1)

typedef enum {
    ZPCID_FUNCTION_STATE_HOST,    /* bound to a host driver */
    ZPCID_FUNCTION_STATE_VFIO,    /* bound to vfio-pci */
    ZPCID_FUNCTION_STATE_UNBOUND, /* configured, no driver */
    ZPCID_FUNCTION_STATE_STANDBY, /* reserved for this LPAR but not configured */
} ZpcidFunctionState;

#define ZPCID_VFIO_DRIVER "vfio-pci"

typedef struct {
    gint ref_count;

    char *address; /* "0005:00:00.0"; NULL while in standby */
    char *devpath; /* device directory relative to the host root, e.g. sys/devices/... */

    gint64 fid;
    gint64 function_handle;
    gint64 uid;
    gint64 index;
    gint64 pchid;
    gint64 pfgid;
    gint64 pft;
    gint64 vfn;
    gint64 port;
    gint64 fidparm;
    gint64 pfip[4];
    gint uid_is_unique; /* -1 unknown */
    gint mio_enabled;   /* -1 unknown */
    char *util_string;  /* decoded from EBCDIC; NULL unknown */

    gint64 vendor_id;
    gint64 device_id;
    gint64 subsystem_vendor_id;
    gint64 subsystem_id;
    gint64 class_code;

    char *driver;          /* NULL when unbound */
    char *driver_override; /* NULL when not set */
    gint64 iommu_group;

    char *physfn;        /* PF address of a VF */
    GPtrArray *virtfns;  /* VF addresses of a PF */
    gint64 sriov_numvfs;
    GPtrArray *netdevs;  /* interface names on this function */
    GPtrArray *blockdevs; /* block devices on this function */

    gint slot_power; /* 1 configured, 0 standby, -1 no slot */

    GPtrArray *errors; /* one sentence per attribute that could not be read */
} ZpcidFunction;

ZpcidFunction *zpcid_function_ref(ZpcidFunction *function);
void zpcid_function_unref(ZpcidFunction *function);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidFunction, zpcid_function_unref)

/* Reads the function at @address (a validated PCI address) under sys/bus/pci/devices.
 * Fails only when the device directory itself cannot be opened (NOT_FOUND when gone);
 * unreadable attributes are unknown and explained in ->errors. Holders (netdevs, blockdevs)
 * are filled by the inventory, which scans the classes once for all functions. */
ZpcidFunction *zpcid_function_load(ZpcidHost *host, const char *address, GError **error);
/* Reads the identity attributes only (fid, uid) through an already open device dir;
 * NOT_FOUND when the directory has no function_id (device gone). uid may be unknown. */
gboolean zpcid_function_read_identity(ZpcidDir *device, gint64 *fid, gint64 *uid,
                                      GError **error);
ZpcidFunction *zpcid_function_new_standby(guint32 fid);

/* Power of the zPCI slot named by @fid (sys/bus/pci/slots/%08x/power): 1 configured,
 * 0 standby, -1 with @error set (G_IO_ERROR_NOT_FOUND when there is no such slot). */
gint zpcid_slot_read_power(ZpcidHost *host, guint32 fid, GError **error);
/* The PCI function a class device (net, block) sits on: the last PCI address in the target
 * of its sysfs link, or NULL. */
char *zpcid_sysfs_link_owner(const char *target);

ZpcidFunctionState zpcid_function_get_state(const ZpcidFunction *function);
const char *zpcid_function_state_to_string(ZpcidFunctionState state);
/* "/org/zpcid1/functions/00000011"-style id: the FID as 8 lower-case hex digits. */
char *zpcid_function_dup_id(const ZpcidFunction *function);
/* TRUE if both describe the same kernel state (for change notification). */
gboolean zpcid_function_equal(const ZpcidFunction *a, const ZpcidFunction *b);

G_END_DECLS
