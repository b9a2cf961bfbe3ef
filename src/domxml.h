/* libvirt domain XML for zPCI passthrough: <hostdev> generation with <zpci> ids, merging into
 * an existing domain, zpcid's intent record in <metadata>, inspection and RNG validation.
 *
 * Everything here works on strings and plain structs: no sysfs, no libvirt connection. The
 * caller reads the host facts (fid, uid, UID checking, interpretation verdict) and passes them
 * in; see docs/domxml.md for the rules. */
#pragma once

#include <glib.h>

#include "spec.h"

G_BEGIN_DECLS

/* Largest domain document accepted; libvirt's own are a few KiB. */
#define ZPCID_DOMXML_MAX_SIZE (1024 * 1024)

/* Environment variable naming the directory that holds libvirt's domain.rng. */
#define ZPCID_ENV_LIBVIRT_SCHEMA_DIR "ZPCID_LIBVIRT_SCHEMA_DIR"
#define ZPCID_DEFAULT_LIBVIRT_SCHEMA_DIR "/usr/share/libvirt/schemas"

/* How the guest's zPCI uid and fid are chosen. */
typedef enum {
    /* Guest uid/fid = host uid/fid; needs UID checking on the host. */
    ZPCID_ZPCI_POLICY_MIRROR,
    /* Lowest free uid from 1 and fid from 0 in the domain, chosen by zpcid (as libvirt would). */
    ZPCID_ZPCI_POLICY_AUTO,
    /* The caller gives uid and fid per function. */
    ZPCID_ZPCI_POLICY_EXPLICIT,
} ZpcidZpciPolicy;

typedef enum {
    ZPCID_INTERPRETATION_REQUIRED,
    ZPCID_INTERPRETATION_PREFERRED,
    ZPCID_INTERPRETATION_OFF,
} ZpcidInterpretation;

/* One host function, as far as the XML is concerned. */
typedef struct {
    ZpcidPciAddress address; /* host PCI address = <source><address> */
    guint32 fid;             /* host function id */
    guint32 uid;             /* host uid, meaningful only if uid_known */
    gboolean uid_known;
    gboolean uid_checking;   /* the host has UID checking enabled */
    gboolean managed;        /* managed='yes' */
} ZpcidDomxmlFunction;

typedef struct {
    guint32 uid;
    guint32 fid;
} ZpcidZpciIds;

/* The host's interpretation verdict from the readiness engine. Strings are borrowed. */
typedef struct {
    gboolean ok;
    const char *check;   /* id of the failing check, e.g. "kvm-zpci-op" */
    const char *summary; /* one sentence */
    const char *remedy;  /* one sentence */
} ZpcidInterpretationVerdict;

typedef struct {
    const ZpcidDomxmlFunction *functions;
    gsize n_functions;
    ZpcidZpciPolicy policy;
    /* n_functions entries for ZPCID_ZPCI_POLICY_EXPLICIT, ignored otherwise. */
    const ZpcidZpciIds *explicit_ids;
    ZpcidInterpretation interpretation;
    ZpcidInterpretationVerdict verdict;
} ZpcidDomxmlRequest;

/* Parameters of a new minimal s390x domain. */
typedef struct {
    const char *name;      /* required */
    const char *type;      /* <domain type=…>; NULL = "kvm" */
    guint memory_mib;      /* 0 = 1024 */
    guint vcpus;           /* 0 = 1 */
    const char *machine;   /* NULL = "s390-ccw-virtio" */
    const char *emulator;  /* NULL = no <emulator> (libvirt picks one) */
} ZpcidDomxmlDomainParams;

typedef struct {
    /* Whole domain document (merge, new domain); NULL for fragments. */
    char *xml;
    /* One <hostdev> document per requested function, in request order, each suitable for
     * virsh attach-device / virDomainAttachDeviceFlags. */
    GPtrArray *hostdevs;
    /* The guest ids chosen, per function in request order. */
    GArray *ids; /* of ZpcidZpciIds */
    /* zpcid's whole <metadata> child (existing entries of the domain included), for
     * virDomainSetMetadata() with ZPCID_LIBVIRT_METADATA_NS when attaching. */
    char *metadata;
    /* Translated sentences the caller should show. */
    GPtrArray *warnings;
} ZpcidDomxmlResult;

void zpcid_domxml_result_free(ZpcidDomxmlResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidDomxmlResult, zpcid_domxml_result_free)

/* Hostdev fragments. With @domain_xml (may be NULL), ids are checked against and chosen
 * around the devices of that domain, and the metadata includes its existing record: pass the
 * definition the attach will change (live XML for LIVE, inactive XML for CONFIG; for both,
 * call once per definition and keep the ids only if they agree). */
ZpcidDomxmlResult *zpcid_domxml_build_hostdevs(const ZpcidDomxmlRequest *request,
                                               const char *domain_xml, GError **error);

/* Inserts the hostdevs and the metadata record into @domain_xml; every other byte of the
 * document is kept as it was. */
ZpcidDomxmlResult *zpcid_domxml_merge(const ZpcidDomxmlRequest *request, const char *domain_xml,
                                      GError **error);

/* A new minimal s390x domain carrying the hostdevs and the metadata record. */
ZpcidDomxmlResult *zpcid_domxml_new_domain(const ZpcidDomxmlRequest *request,
                                           const ZpcidDomxmlDomainParams *params, GError **error);

/* @metadata (zpcid's element, as in ZpcidDomxmlResult.metadata) without its namespace, as
 * virDomainSetMetadata() wants it: libvirt puts the element into the namespace it is given and
 * refuses one that declares it already. */
char *zpcid_domxml_metadata_for_libvirt(const char *metadata, GError **error);

/* A device of the domain whose PCI address carries a <zpci> element. */
typedef struct {
    char *device;   /* "disk “vda”", "hostdev “0005:00:00.0”", … for messages */
    gboolean uid_set;
    gboolean fid_set;
    guint64 uid;    /* as libvirt reads it (base 0: leading 0 = octal) */
    guint64 fid;
} ZpcidDomxmlZpci;

/* A host PCI function the domain uses: <hostdev type='pci'> or <interface type='hostdev'>. */
typedef struct {
    ZpcidPciAddress address;
    gboolean interface; /* from <interface type='hostdev'> */
    gboolean managed;   /* managed='yes': libvirt binds it (libvirt's default is 'no') */
} ZpcidDomxmlSource;

/* One function recorded in zpcid's metadata. */
typedef struct {
    ZpcidPciAddress address;
    ZpcidZpciPolicy policy;
    ZpcidInterpretation interpretation;
    ZpcidZpciIds ids;
    gboolean verdict_ok;
    char *check; /* failing check id at generation time, or NULL */
} ZpcidDomxmlIntent;

typedef struct {
    char *name;                  /* may be NULL */
    char *uuid;                  /* may be NULL */
    char *arch;                  /* <os><type arch>, may be NULL */
    gboolean secure_execution;   /* <launchSecurity type='s390-pv'/> */
    GArray *sources;             /* of ZpcidDomxmlSource */
    GArray *zpci;                /* of ZpcidDomxmlZpci */
    GArray *intents;             /* of ZpcidDomxmlIntent */
} ZpcidDomxmlInfo;

void zpcid_domxml_info_free(ZpcidDomxmlInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidDomxmlInfo, zpcid_domxml_info_free)

ZpcidDomxmlInfo *zpcid_domxml_inspect(const char *domain_xml, GError **error);
/* TRUE if @info lists @address among its host sources. */
gboolean zpcid_domxml_info_uses(const ZpcidDomxmlInfo *info, const ZpcidPciAddress *address);

typedef enum {
    ZPCID_DOMXML_SCHEMA_VALID,
    /* libvirt's schemas are not installed: nothing was checked (error set, NOT_FOUND). */
    ZPCID_DOMXML_SCHEMA_NOT_INSTALLED,
    /* The document does not match (error set, INVALID_ARGUMENT, libxml2's messages), or the
     * schema could not be loaded (FAILED). */
    ZPCID_DOMXML_SCHEMA_INVALID,
} ZpcidDomxmlSchemaResult;

/* Validates a <domain> or a single <hostdev> (wrapped in a skeleton domain, as libvirt has no
 * schema for bare devices) against libvirt's domain.rng. */
ZpcidDomxmlSchemaResult zpcid_domxml_validate(const char *xml, GError **error);
/* Directory searched for domain.rng: $ZPCID_LIBVIRT_SCHEMA_DIR or the Debian location. */
const char *zpcid_domxml_schema_dir(void);

/* Words used by the CLI, D-Bus and the metadata: "mirror", "auto", "explicit";
 * "required", "preferred", "off". */
const char *zpcid_zpci_policy_to_string(ZpcidZpciPolicy policy);
gboolean zpcid_zpci_policy_from_string(const char *text, ZpcidZpciPolicy *policy, GError **error);
const char *zpcid_interpretation_to_string(ZpcidInterpretation interpretation);
gboolean zpcid_interpretation_from_string(const char *text, ZpcidInterpretation *interpretation,
                                          GError **error);

G_END_DECLS
