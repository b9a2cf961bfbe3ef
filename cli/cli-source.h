/* Where zpcidctl gets its answers: a host tree read directly (--host-root), or the daemon. */
#pragma once

#include <glib.h>

#include "host.h"
#include "inventory.h"

G_BEGIN_DECLS

typedef struct {
    gboolean json;
    char *host_root; /* set: read this host tree directly instead of asking the daemon */
    ZpcidHost *host;
    ZpcidInventory *inventory;
} CliContext;

gboolean cli_source_open(CliContext *ctx, GError **error);
void cli_source_close(CliContext *ctx);

/* (sa(sssss)) like org.zpcid1.Manager.Check. */
GVariant *cli_source_check(CliContext *ctx, GError **error);
/* aa{sv} of every function, sorted by FID. */
GVariant *cli_source_list(CliContext *ctx, GError **error);
/* a{sv} of the function @spec names. */
GVariant *cli_source_show(CliContext *ctx, const char *spec, GError **error);

G_END_DECLS
