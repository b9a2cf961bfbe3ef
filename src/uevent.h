/* Kernel uevent messages as the kernel sends them on NETLINK_KOBJECT_UEVENT:
 * "ACTION@DEVPATH\0KEY=VALUE\0KEY=VALUE\0...". A pure parser of untrusted bytes, so that it
 * can be unit-tested and fuzzed, plus the decision which zPCI function an event concerns. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The kernel's limit (UEVENT_BUFFER_SIZE); longer messages are refused. */
#define ZPCID_UEVENT_MAX_SIZE 2048

typedef struct {
    char *action;    /* "add", "remove", "change", "bind", "unbind", "move", "online", ... */
    char *devpath;   /* "/devices/pci0001:00/0001:00:00.0", always starting with "/" */
    char *subsystem; /* SUBSYSTEM=, NULL if absent */
    GHashTable *env; /* every KEY=VALUE of the message, ACTION and DEVPATH included */
} ZpcidUevent;

/* Parses one datagram of @len bytes. Refuses (INVALID_ARGUMENT) anything the kernel would
 * not send: udev's "libudev" messages, a header without "@", a header that disagrees with
 * ACTION= or DEVPATH=, fields without "=", empty or oversized messages. */
ZpcidUevent *zpcid_uevent_parse(const guint8 *data, gsize len, GError **error);
void zpcid_uevent_free(ZpcidUevent *event);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidUevent, zpcid_uevent_free)

/* Value of @key, or NULL. */
const char *zpcid_uevent_get(const ZpcidUevent *event, const char *key);

typedef enum {
    ZPCID_UEVENT_TARGET_NONE,      /* nothing zpcid tracks */
    ZPCID_UEVENT_TARGET_FUNCTION,  /* re-read the function at ->address */
    ZPCID_UEVENT_TARGET_SLOT,      /* re-read the slot of ->fid (standby/configured) */
    ZPCID_UEVENT_TARGET_READINESS, /* a module or device node the readiness checks read */
} ZpcidUeventTargetKind;

typedef struct {
    ZpcidUeventTargetKind kind;
    char address[24]; /* PCI address for TARGET_FUNCTION */
    guint32 fid;      /* for TARGET_SLOT */
} ZpcidUeventTarget;

/* What @event means for zpcid: a PCI function (SUBSYSTEM=pci, by PCI_SLOT_NAME), the
 * function a net or block device sits on (the last PCI address in its DEVPATH), a zPCI
 * slot (DEVPATH .../slots/<fid as 8 hex digits>), or the readiness (modules kvm and vfio*,
 * misc devices kvm and vfio, the vfio subsystem). Returns FALSE for anything else. */
gboolean zpcid_uevent_classify(const ZpcidUevent *event, ZpcidUeventTarget *target);

G_END_DECLS
