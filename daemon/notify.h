/* The systemd notification protocol (sd_notify(3)) without libsystemd: one datagram to
 * $NOTIFY_SOCKET. Does nothing when zpcid was not started by systemd. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Sends @state ("READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=..."); FALSE if there is no
 * notification socket or the send failed. */
gboolean zpcid_notify(const char *state);

/* The watchdog interval systemd expects pings in, or 0 when the watchdog is off or meant for
 * another process. */
guint64 zpcid_notify_watchdog_usec(void);

G_END_DECLS
