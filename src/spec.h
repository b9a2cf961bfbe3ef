/* Parsers for what callers type: PCI addresses, function specs and zPCI ids. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    guint32 domain;
    guint8 bus;
    guint8 slot;
    guint8 function;
} ZpcidPciAddress;

typedef enum {
    ZPCID_SPEC_FID,
    ZPCID_SPEC_UID,
    ZPCID_SPEC_ADDRESS,
} ZpcidSpecKind;

typedef struct {
    ZpcidSpecKind kind;
    guint32 id; /* fid or uid */
    ZpcidPciAddress address;
} ZpcidSpec;

#define ZPCID_UID_MIN 0x1
#define ZPCID_UID_MAX 0xffff
#define ZPCID_FID_MAX 0xffffffffu

/* "DDDD:BB:SS.F" as sysfs names functions (4 to 8 hex digits of domain). */
gboolean zpcid_pci_address_parse(const char *text, ZpcidPciAddress *address, GError **error);
/* TRUE if @name is a well-formed PCI address; nothing else may reach a path. */
gboolean zpcid_pci_address_is_valid(const char *name);
char *zpcid_pci_address_format(const ZpcidPciAddress *address);

/* A number as users write zPCI ids: "0x1f" (hex) or "31" (decimal). A leading zero without
 * "0x" is refused, because libvirt would read it as octal. */
gboolean zpcid_parse_id(const char *text, guint64 max, guint64 *value, GError **error);

/* "0x11" or "fid:0x11" (a FID), "uid:0x5" (a UID, 1..0xffff), or "0005:00:00.0". */
gboolean zpcid_spec_parse(const char *text, ZpcidSpec *spec, GError **error);
/* Canonical text of @spec ("fid:0x00000011", "uid:0x0005", "0005:00:00.0"). */
char *zpcid_spec_format(const ZpcidSpec *spec);

G_END_DECLS
