/* The readiness engine: can this host pass a zPCI function through, and does the kernel's
 * zPCI interpretation path work? Each check says what it read, from which file, and what a
 * person can do about it. */
#pragma once

#include <glib.h>

#include "host.h"
#include "inventory.h"

G_BEGIN_DECLS

typedef enum {
    ZPCID_CHECK_PASS,
    ZPCID_CHECK_WARN,
    ZPCID_CHECK_FAIL,
    ZPCID_CHECK_SKIP,
} ZpcidCheckStatus;

/* Which verdicts a failing check blocks. */
typedef enum {
    ZPCID_AFFECTS_NONE = 0,
    ZPCID_AFFECTS_PASSTHROUGH = 1 << 0,
    ZPCID_AFFECTS_INTERPRETATION = 1 << 1,
    ZPCID_AFFECTS_BOTH = ZPCID_AFFECTS_PASSTHROUGH | ZPCID_AFFECTS_INTERPRETATION,
} ZpcidAffects;

typedef struct {
    const char *id; /* stable, e.g. "kvm-cap-zpci-op" */
    ZpcidCheckStatus status;
    ZpcidAffects affects;
    char *summary; /* one sentence: the outcome */
    char *detail;  /* what was read, from which file */
    char *remedy;  /* what to do; empty when nothing is to be done */
} ZpcidCheck;

typedef struct {
    GPtrArray *checks; /* ZpcidCheck, in a fixed order */
    gboolean passthrough;
    gboolean interpretation;
} ZpcidReport;

/* KVM_CAP_S390_ZPCI_OP from include/uapi/linux/kvm.h. */
#define ZPCID_KVM_CAP_S390_ZPCI_OP 221

/* What cannot change until the next boot: architecture, kernel release, CPU facilities,
 * machine and hypervisor (sysinfo), kernel configuration and the module lists. The daemon
 * reads it once; everything else (modules loaded, device nodes, functions, IOMMU groups)
 * is read on every evaluation. */
typedef struct _ZpcidBootFacts ZpcidBootFacts;

ZpcidBootFacts *zpcid_boot_facts_read(ZpcidHost *host);
void zpcid_boot_facts_free(ZpcidBootFacts *facts);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidBootFacts, zpcid_boot_facts_free)

ZpcidReport *zpcid_readiness_evaluate(ZpcidHost *host, ZpcidInventory *inventory);
ZpcidReport *zpcid_readiness_evaluate_with(ZpcidHost *host, ZpcidInventory *inventory,
                                           const ZpcidBootFacts *boot);
void zpcid_report_free(ZpcidReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidReport, zpcid_report_free)

const ZpcidCheck *zpcid_report_find(const ZpcidReport *report, const char *id);
/* First failing check that blocks @verdict, or NULL. */
const ZpcidCheck *zpcid_report_first_failure(const ZpcidReport *report, ZpcidAffects verdict);

const char *zpcid_check_status_to_string(ZpcidCheckStatus status);
gboolean zpcid_check_status_from_string(const char *text, ZpcidCheckStatus *status);
/* Translated "Checking ..." title of a check id, for aligned human output. */
const char *zpcid_check_title(const char *id);

G_END_DECLS
