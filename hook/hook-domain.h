/* The domain as libvirt hands it to the hook: the XML on standard input, reduced to what the
 * hook decides on. */
#pragma once

#include <glib.h>

typedef struct {
    char *address;    /* "0001:00:00.0" */
    gboolean managed; /* managed='yes': libvirt binds it itself */
} HookHostdev;

typedef struct {
    char *uuid;          /* may be NULL */
    GPtrArray *hostdevs; /* HookHostdev*: every PCI hostdev source, zPCI or not */
    /* zpcid's metadata requires interpretation for one of the hostdevs. */
    gboolean interpretation_required;
} HookDomain;

void hook_domain_free(HookDomain *domain);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HookDomain, hook_domain_free)

/* Reads standard input to its end and parses it as a libvirt domain (zpcid's hardened parser:
 * no DTD, no entities, no network). Errors name what is wrong with the input. */
HookDomain *hook_domain_read_stdin(GError **error);

/* Reads standard input to its end and forgets it (unless it is a terminal). */
void hook_domain_drain_stdin(void);

/* How many of @hostdevs have managed='no'. */
guint hook_domain_count_unmanaged(GPtrArray *hostdevs);
