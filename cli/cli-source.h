/* Where zpcidctl gets its answers: the zpcid daemon over D-Bus (the default), or a host tree
 * read directly (--host-root; read-only commands only). */
#pragma once

#include <gio/gio.h>

#include "host.h"
#include "inventory.h"
#include "zpcid-dbus-generated.h"

G_BEGIN_DECLS

typedef struct {
    gboolean json;
    gboolean allow_interaction; /* polkit may ask for a password */
    char *host_root;            /* set: read this host tree directly */
    char *bus_address;          /* set: this bus instead of the system bus */
    /* --host-root */
    ZpcidHost *host;
    ZpcidInventory *inventory;
    /* daemon */
    GDBusConnection *bus;
    ZpcidDBusManager *manager;
} CliContext;

gboolean cli_source_open(CliContext *ctx, GError **error);
void cli_source_close(CliContext *ctx);
/* TRUE when answers come from the daemon. */
gboolean cli_source_is_daemon(CliContext *ctx);

/* (sa(sssss)) like org.zpcid1.Manager.Check. */
GVariant *cli_source_check(CliContext *ctx, GError **error);
/* aa{sv} of every function, sorted by FID. */
GVariant *cli_source_list(CliContext *ctx, GError **error);
/* a{sv} of the function @spec names. */
GVariant *cli_source_show(CliContext *ctx, const char *spec, GError **error);

/* The rest needs the daemon. @options is a floating or owned a{sv}; auth.no_user_interaction
 * is added from ctx->allow_interaction. */

/* Manager.Bind / Manager.Unbind; returns the aa{sv} of the functions afterwards. */
GVariant *cli_source_bind(CliContext *ctx, const char *const *specs, GVariant *options,
                          gboolean unbind, GError **error);
char *cli_source_domain_xml(CliContext *ctx, const char *const *specs, GVariant *options,
                            GError **error);
gboolean cli_source_attach(CliContext *ctx, const char *domain, const char *const *specs,
                           GVariant *options, gboolean detach, GError **error);

/* The Function properties in the order zpcidctl prints them (as the core builds them), so
 * that the daemon and --host-root give the same output. */
GVariant *cli_source_order_function(GVariant *properties);

G_END_DECLS
