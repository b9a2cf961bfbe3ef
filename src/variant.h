/* GVariant forms of the model, shared by the D-Bus objects and the CLI (which turns them
 * into text and JSON), so that both front ends show the same fields. */
#pragma once

#include <glib.h>

#include "function.h"
#include "readiness.h"
#include "variant-writer.h"

G_BEGIN_DECLS

/* Verdict strings of Manager.Check: "interpretation" (both paths ready), "passthrough"
 * (passthrough only) or "none". */
const char *zpcid_report_verdict(const ZpcidReport *report);
/* (s verdict, a(sssss) results) as returned by org.zpcid1.Manager.Check. */
GVariant *zpcid_report_to_variant(const ZpcidReport *report);

/* Extra state the core does not read from sysfs (binder and libvirt knowledge). */
typedef struct {
    const char *host_driver;    /* driver to restore, "" if none recorded */
    const char *const *domains; /* libvirt domains referencing the function */
    gboolean persistent;
    const char *owner;          /* Bind option "owner" of zpcid's binding, NULL if none */
} ZpcidFunctionExtra;

/* a{sv} of org.zpcid1.Function properties. Numeric attributes of type x are -1 when
 * unknown (older kernel or unreadable file). */
GVariant *zpcid_function_to_variant(const ZpcidFunction *function, const ZpcidFunctionExtra *extra);
/* The same a{sv}, written into @writer (e.g. inside a GetManagedObjects reply). */
void zpcid_function_write_properties(ZpcidVariantWriter *writer, const ZpcidFunction *function,
                                     const ZpcidFunctionExtra *extra);

G_END_DECLS
