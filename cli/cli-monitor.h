/* zpcidctl monitor: object and property changes of zpcid as they happen. */
#pragma once

#include "cli-source.h"

G_BEGIN_DECLS

/* Runs until SIGINT or SIGTERM; returns the exit status. */
int cli_monitor_run(CliContext *ctx, GError **error);

G_END_DECLS
