/* Where kernel uevents come from: the kernel's NETLINK_KOBJECT_UEVENT socket on a real host,
 * or a unix datagram socket zpcid creates for host trees (tests and demonstrations send the
 * kernel's own message format to it; see docs/host-trees.md). */
#pragma once

#include <glib.h>

#include "uevent.h"

G_BEGIN_DECLS

typedef struct _ZpcidUeventSource ZpcidUeventSource;

/* A parsed event. */
typedef void (*ZpcidUeventFunc)(const ZpcidUevent *event, gpointer user_data);
/* Events were lost (the socket's buffer overflowed): the receiver has to look at everything
 * again. */
typedef void (*ZpcidUeventLostFunc)(gpointer user_data);
/* The events that were waiting have been delivered: a receiver that collects work per event
 * (several events of one device come in a burst) does it now. */
typedef void (*ZpcidUeventBurstFunc)(gpointer user_data);

ZpcidUeventSource *zpcid_uevent_source_new_netlink(GError **error);
/* Creates the datagram socket @path (mode 0600: only our user may send). An existing socket
 * at @path is replaced; any other file there is an error. */
ZpcidUeventSource *zpcid_uevent_source_new_socket(const char *path, GError **error);

/* Starts delivering events in the thread-default main context; @burst_done (may be NULL)
 * after each wake-up's events and after a catch-up. */
void zpcid_uevent_source_start(ZpcidUeventSource *self, ZpcidUeventFunc func,
                               ZpcidUeventLostFunc lost, ZpcidUeventBurstFunc burst_done,
                               gpointer user_data);
/* Delivers, now, the events already waiting on the socket: a caller about to answer from
 * state that events keep current (readiness) first takes in what happened before its
 * request, e.g. a "modprobe vfio-pci" that returned just before the call. */
void zpcid_uevent_source_catch_up(ZpcidUeventSource *self);
/* Stops, closes the socket and removes a socket file zpcid created. */
void zpcid_uevent_source_free(ZpcidUeventSource *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidUeventSource, zpcid_uevent_source_free)

G_END_DECLS
