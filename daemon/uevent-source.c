#include "uevent-source.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Kernel uevents are multicast to group 1; udev re-sends its own on group 2. */
#define UEVENT_GROUP_KERNEL 1
/* Enough for a burst of hotplug events (a PF enabling many VFs) without overflowing. */
#define UEVENT_RECV_BUFFER (4 * 1024 * 1024)
/* Messages handled per wakeup, so that a flood does not starve D-Bus. */
#define UEVENT_BATCH 64

struct _ZpcidUeventSource {
    int fd;
    gboolean netlink;
    char *path; /* socket file to remove, or NULL */
    guint watch;
    ZpcidUeventFunc func;
    ZpcidUeventLostFunc lost;
    ZpcidUeventBurstFunc burst_done;
    gpointer user_data;
};

static ZpcidUeventSource *
source_new(int fd, gboolean netlink, const char *path)
{
    ZpcidUeventSource *self = g_new0(ZpcidUeventSource, 1);

    self->fd = fd;
    self->netlink = netlink;
    self->path = g_strdup(path);
    return self;
}

ZpcidUeventSource *
zpcid_uevent_source_new_netlink(GError **error)
{
    struct sockaddr_nl addr = {.nl_family = AF_NETLINK, .nl_groups = UEVENT_GROUP_KERNEL};
    int size = UEVENT_RECV_BUFFER;
    int fd;

    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
    if (fd < 0) {
        int saved = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
                    _("The kernel's uevent socket could not be opened: %s."), g_strerror(saved));
        return NULL;
    }
    /* SO_RCVBUFFORCE passes the system limit with CAP_NET_ADMIN; without it the smaller
     * SO_RCVBUF has to do and an overflow is handled by a full rescan. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int saved = errno;
        close(fd);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
                    _("The kernel's uevent socket could not be bound: %s."), g_strerror(saved));
        return NULL;
    }
    return source_new(fd, TRUE, NULL);
}

ZpcidUeventSource *
zpcid_uevent_source_new_socket(const char *path, GError **error)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct stat st;
    gboolean bound;
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("The uevent socket path “%s” is too long for a unix socket."), path);
        return NULL;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                        _("“%s” exists and is not a socket, so it was not replaced by the uevent "
                          "socket."),
                        path);
            return NULL;
        }
        /* A socket left behind by an earlier run. */
        g_unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int saved = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
                    _("The uevent socket “%s” could not be created: %s."), path, g_strerror(saved));
        return NULL;
    }
    memcpy(addr.sun_path, path, strlen(path));
    /* Sending to it is as good as being the kernel: only our own user may (connecting needs
     * write permission; umask() is not touched because other threads may create files). */
    bound = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    if (!bound || chmod(path, 0600) < 0) {
        int saved = errno;
        if (bound)
            g_unlink(path);
        close(fd);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
                    _("The uevent socket “%s” could not be created: %s."), path, g_strerror(saved));
        return NULL;
    }
    return source_new(fd, FALSE, path);
}

/* Reads one datagram; FALSE when there is nothing more to read now. */
static gboolean
receive_one(ZpcidUeventSource *self)
{
    guint8 buf[ZPCID_UEVENT_MAX_SIZE + 1];
    struct sockaddr_nl nl = {0};
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidUevent) event = NULL;
    ssize_t len;

    if (self->netlink) {
        msg.msg_name = &nl;
        msg.msg_namelen = sizeof(nl);
    }
    len = recvmsg(self->fd, &msg, MSG_DONTWAIT);
    if (len < 0) {
        if (errno == EINTR)
            return TRUE;
        if (errno == ENOBUFS) {
            g_warning("Kernel uevents were lost because zpcid fell behind; all functions are "
                      "read again.");
            if (self->lost != NULL)
                self->lost(self->user_data);
            return TRUE;
        }
        if (errno != EAGAIN)
            g_warning("Reading a uevent failed: %s", g_strerror(errno));
        return FALSE;
    }
    /* Only the kernel (port id 0) speaks on the netlink socket; anything else is forged. */
    if (self->netlink && (msg.msg_namelen != sizeof(nl) || nl.nl_pid != 0))
        return TRUE;
    if ((msg.msg_flags & MSG_TRUNC) != 0 || (gsize)len > ZPCID_UEVENT_MAX_SIZE) {
        g_warning("A uevent longer than the kernel sends was ignored.");
        return TRUE;
    }
    event = zpcid_uevent_parse(buf, (gsize)len, &error);
    if (event == NULL) {
        g_debug("A message on the uevent socket was ignored: %s", error->message);
        return TRUE;
    }
    g_debug("uevent %s %s (%s)", event->action, event->devpath,
            event->subsystem != NULL ? event->subsystem : "-");
    self->func(event, self->user_data);
    return TRUE;
}

static gboolean
on_readable(gint fd, GIOCondition condition, gpointer user_data)
{
    ZpcidUeventSource *self = user_data;

    for (guint i = 0; i < UEVENT_BATCH; i++) {
        if (!receive_one(self))
            break;
    }
    if (self->burst_done != NULL)
        self->burst_done(self->user_data);
    return G_SOURCE_CONTINUE;
}

void
zpcid_uevent_source_catch_up(ZpcidUeventSource *self)
{
    /* Bounded like a wake-up: a storm of events must not hold a method call for long. */
    for (guint i = 0; self->func != NULL && i < 4 * UEVENT_BATCH; i++) {
        if (!receive_one(self))
            break;
    }
    if (self->burst_done != NULL)
        self->burst_done(self->user_data);
}

void
zpcid_uevent_source_start(ZpcidUeventSource *self, ZpcidUeventFunc func, ZpcidUeventLostFunc lost,
                          ZpcidUeventBurstFunc burst_done, gpointer user_data)
{
    g_return_if_fail(self->watch == 0);
    self->func = func;
    self->lost = lost;
    self->burst_done = burst_done;
    self->user_data = user_data;
    self->watch = g_unix_fd_add(self->fd, G_IO_IN, on_readable, self);
}

void
zpcid_uevent_source_free(ZpcidUeventSource *self)
{
    if (self == NULL)
        return;
    g_clear_handle_id(&self->watch, g_source_remove);
    close(self->fd);
    if (self->path != NULL)
        g_unlink(self->path);
    g_free(self->path);
    g_free(self);
}
