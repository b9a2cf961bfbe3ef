#include "notify.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

gboolean
zpcid_notify(const char *state)
{
    const char *path = g_getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    socklen_t addr_len;
    gsize path_len;
    int fd;
    ssize_t sent;

    if (path == NULL || (path[0] != '/' && path[0] != '@'))
        return FALSE;
    path_len = strlen(path);
    if (path_len >= sizeof(addr.sun_path))
        return FALSE;
    memcpy(addr.sun_path, path, path_len);
    /* A leading "@" names a socket in the abstract namespace. */
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    addr_len = (socklen_t)(G_STRUCT_OFFSET(struct sockaddr_un, sun_path) + path_len);

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return FALSE;
    /* Never wait for the service manager: a queue it does not drain must not stop the main
     * loop, which would stop serving the bus. A dropped WATCHDOG=1 is resent soon. */
    do {
        sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&addr, addr_len);
    } while (sent < 0 && errno == EINTR);
    close(fd);
    return sent >= 0;
}

guint64
zpcid_notify_watchdog_usec(void)
{
    const char *usec = g_getenv("WATCHDOG_USEC");
    const char *pid = g_getenv("WATCHDOG_PID");
    guint64 value;

    if (usec == NULL || !g_ascii_string_to_unsigned(usec, 10, 1, G_MAXUINT64, &value, NULL))
        return 0;
    if (pid != NULL) {
        guint64 owner;
        if (!g_ascii_string_to_unsigned(pid, 10, 1, G_MAXINT, &owner, NULL) ||
            owner != (guint64)getpid())
            return 0;
    }
    return value;
}
