#include "host.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gi18n-lib.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <dirent.h>

#include "error.h"
#include "zpcid-names.h"

struct _ZpcidHost {
    gint ref_count;
    char *root;
    int root_fd;
    gboolean live;
};

static ZpcidHostTraceFunc trace_func;
static gpointer trace_data;

void
zpcid_host_set_trace(ZpcidHostTraceFunc func, gpointer user_data)
{
    trace_func = func;
    trace_data = user_data;
}

static inline void
trace(ZpcidHostAccess access, const char *path)
{
    /* Called between a syscall and the errno check of its caller. */
    if (G_UNLIKELY(trace_func != NULL)) {
        int saved = errno;
        trace_func(access, path, trace_data);
        errno = saved;
    }
}

static GError *
error_from_errno(int err_no, const char *fmt_path_msg, const char *path)
{
    /* Keep G_IO_ERROR for "not found" so callers can tell a missing attribute (older kernel)
     * from a broken one. */
    if (err_no == ENOENT)
        return g_error_new(G_IO_ERROR, G_IO_ERROR_NOT_FOUND, fmt_path_msg, path,
                           g_strerror(err_no));
    return g_error_new(ZPCID_ERROR, zpcid_error_code_from_errno(err_no), fmt_path_msg, path,
                       g_strerror(err_no));
}

gboolean
zpcid_error_is_not_found(const GError *error)
{
    return error != NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
}

ZpcidHost *
zpcid_host_new(const char *root, GError **error)
{
    g_autofree char *canonical = NULL;
    ZpcidHost *host;
    int fd;

    if (root == NULL || *root == '\0')
        root = "/";
    canonical = g_canonicalize_filename(root, NULL);
    fd = open(canonical, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        g_set_error(error, ZPCID_ERROR, zpcid_error_code_from_errno(saved),
                    _("Could not open the host root “%s”: %s."), canonical, g_strerror(saved));
        return NULL;
    }
    host = g_new0(ZpcidHost, 1);
    host->ref_count = 1;
    host->root = g_steal_pointer(&canonical);
    host->root_fd = fd;
    host->live = g_str_equal(host->root, "/");
    return host;
}

ZpcidHost *
zpcid_host_new_default(const char *root, GError **error)
{
    if (root == NULL)
        root = g_getenv(ZPCID_ENV_HOST_ROOT);
    return zpcid_host_new(root, error);
}

ZpcidHost *
zpcid_host_ref(ZpcidHost *host)
{
    g_atomic_int_inc(&host->ref_count);
    return host;
}

void
zpcid_host_unref(ZpcidHost *host)
{
    if (host == NULL || !g_atomic_int_dec_and_test(&host->ref_count))
        return;
    close(host->root_fd);
    g_free(host->root);
    g_free(host);
}

const char *
zpcid_host_get_root(ZpcidHost *host)
{
    return host->root;
}

gboolean
zpcid_host_is_live(ZpcidHost *host)
{
    return host->live;
}

char *
zpcid_host_display_path(ZpcidHost *host, const char *relpath)
{
    while (*relpath == '/')
        relpath++;
    return g_build_filename(host->root, relpath, NULL);
}

/* Lookups retried after openat2()'s EAGAIN before the error is returned. */
#define OPENAT2_ATTEMPTS 1000

/* Opens @relpath below the root with symlinks (including absolute ones) resolved inside it,
 * so that a fixture tree behaves like a chroot and cannot lead us to the real /sys. */
static int
open_in_root(ZpcidHost *host, const char *relpath, int flags)
{
    struct open_how how = {
        .flags = (guint64)flags | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    static gboolean openat2_missing = FALSE;
    int fd;

    while (*relpath == '/')
        relpath++;
    if (*relpath == '\0')
        relpath = ".";
    if (!g_atomic_int_get(&openat2_missing)) {
        /* RESOLVE_IN_ROOT gives up with EAGAIN on a ".." (sysfs links are full of them)
         * whenever any rename or mount happened on the system during the lookup: a busy
         * host makes that common, and the file is there all the same. */
        for (guint attempt = 0; attempt < OPENAT2_ATTEMPTS; attempt++) {
            fd = (int)syscall(SYS_openat2, host->root_fd, relpath, &how, sizeof(how));
            if (fd >= 0 || (errno != EAGAIN && errno != EINTR))
                break;
        }
        if (fd >= 0 || errno != ENOSYS)
            return fd;
        /* Old kernels and qemu-user lack openat2(); fall back to plain relative lookups,
         * which stay inside the root for the relative links sysfs uses. */
        g_atomic_int_set(&openat2_missing, TRUE);
    }
    return openat(host->root_fd, relpath, flags | O_CLOEXEC);
}

static ZpcidDir *
dir_new(int fd, char *path)
{
    ZpcidDir *dir = g_new0(ZpcidDir, 1);
    dir->fd = fd;
    dir->path = path;
    return dir;
}

ZpcidDir *
zpcid_host_open_dir(ZpcidHost *host, const char *relpath, GError **error)
{
    g_autofree char *path = zpcid_host_display_path(host, relpath);
    int fd = open_in_root(host, relpath, O_RDONLY | O_DIRECTORY);

    trace(ZPCID_HOST_ACCESS_OPEN_DIR, path);
    if (fd < 0) {
        g_propagate_error(error,
                          error_from_errno(errno, _("Could not open the directory “%s”: %s."), path));
        return NULL;
    }
    return dir_new(fd, g_steal_pointer(&path));
}

gboolean
zpcid_host_exists(ZpcidHost *host, const char *relpath)
{
    int fd = open_in_root(host, relpath, O_PATH);

    if (G_UNLIKELY(trace_func != NULL)) {
        g_autofree char *path = zpcid_host_display_path(host, relpath);
        trace(ZPCID_HOST_ACCESS_STAT, path);
    }
    if (fd < 0)
        return FALSE;
    close(fd);
    return TRUE;
}

/* Reads all of regular file @fd, failing when it holds more than @max bytes. */
static char *
read_fd_bounded(int fd, const char *path, gsize max, gsize *length, GError **error)
{
    g_autofree char *buf = g_malloc(max + 1);
    gsize total = 0;

    for (;;) {
        gsize want = max + 1 - total;
        ssize_t n = read(fd, buf + total, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            g_propagate_error(error, error_from_errno(errno, _("Could not read “%s”: %s."), path));
            return NULL;
        }
        if (n == 0)
            break;
        total += (gsize)n;
        if (total > max) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED,
                        _("The file “%s” is larger than %zu bytes."), path, max);
            return NULL;
        }
        /* A regular file (sysfs attributes included) comes short only at its end; not asking
         * again saves one of the four system calls of every attribute a scan reads. */
        if ((gsize)n < want)
            break;
    }
    buf[total] = '\0';
    if (length != NULL)
        *length = total;
    return g_steal_pointer(&buf);
}

static char *
read_opened(int fd, const char *path, gsize max, gsize *length, GError **error)
{
    struct stat st;
    char *contents;

    if (fstat(fd, &st) < 0) {
        g_propagate_error(error, error_from_errno(errno, _("Could not read “%s”: %s."), path));
        close(fd);
        return NULL;
    }
    /* A FIFO or device planted in a tree must not block or confuse the reader. */
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED,
                    _("The file “%s” is not a regular file."), path);
        close(fd);
        return NULL;
    }
    contents = read_fd_bounded(fd, path, max, length, error);
    close(fd);
    return contents;
}

char *
zpcid_host_read(ZpcidHost *host, const char *relpath, gsize max, gsize *length, GError **error)
{
    g_autofree char *path = zpcid_host_display_path(host, relpath);
    int fd = open_in_root(host, relpath, O_RDONLY | O_NONBLOCK);

    trace(ZPCID_HOST_ACCESS_READ, path);
    if (fd < 0) {
        g_propagate_error(error, error_from_errno(errno, _("Could not read “%s”: %s."), path));
        return NULL;
    }
    return read_opened(fd, path, max, length, error);
}

char *
zpcid_host_read_link(ZpcidHost *host, const char *relpath, GError **error)
{
    g_autofree char *parent_rel = g_path_get_dirname(relpath);
    g_autofree char *base = g_path_get_basename(relpath);
    g_autoptr(ZpcidDir) parent = zpcid_host_open_dir(host, parent_rel, error);

    if (parent == NULL)
        return NULL;
    return zpcid_dir_read_link(parent, base, error);
}

ZpcidDir *
zpcid_dir_open(ZpcidDir *dir, const char *name, GError **error)
{
    g_autofree char *path = g_build_filename(dir->path, name, NULL);
    /* Attributes and sub-groups of a sysfs device are never symlinks; refusing to follow one
     * keeps a hostile tree from redirecting us. */
    int fd = openat(dir->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    trace(ZPCID_HOST_ACCESS_OPEN_DIR, path);
    if (fd < 0) {
        g_propagate_error(error,
                          error_from_errno(errno, _("Could not open the directory “%s”: %s."), path));
        return NULL;
    }
    return dir_new(fd, g_steal_pointer(&path));
}

void
zpcid_dir_free(ZpcidDir *dir)
{
    if (dir == NULL)
        return;
    if (dir->fd >= 0)
        close(dir->fd);
    g_free(dir->path);
    g_free(dir);
}

gboolean
zpcid_dir_has(ZpcidDir *dir, const char *name)
{
    struct stat st;

    if (G_UNLIKELY(trace_func != NULL)) {
        g_autofree char *path = g_build_filename(dir->path, name, NULL);
        trace(ZPCID_HOST_ACCESS_STAT, path);
    }
    return fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

char *
zpcid_dir_read(ZpcidDir *dir, const char *name, gsize max, gsize *length, GError **error)
{
    g_autofree char *path = g_build_filename(dir->path, name, NULL);
    int fd = openat(dir->fd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);

    trace(ZPCID_HOST_ACCESS_READ, path);
    if (fd < 0) {
        g_propagate_error(error, error_from_errno(errno, _("Could not read “%s”: %s."), path));
        return NULL;
    }
    return read_opened(fd, path, max, length, error);
}

char *
zpcid_dir_read_link(ZpcidDir *dir, const char *name, GError **error)
{
    g_autofree char *path = g_build_filename(dir->path, name, NULL);
    char buf[4096];
    ssize_t n = readlinkat(dir->fd, name, buf, sizeof(buf));

    trace(ZPCID_HOST_ACCESS_READ_LINK, path);
    if (n < 0) {
        g_propagate_error(error,
                          error_from_errno(errno, _("Could not read the link “%s”: %s."), path));
        return NULL;
    }
    if ((gsize)n >= sizeof(buf)) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_MALFORMED,
                    _("The link “%s” is longer than %d bytes."), path, (int)sizeof(buf) - 1);
        return NULL;
    }
    return g_strndup(buf, (gsize)n);
}

char *
zpcid_dir_read_link_name(ZpcidDir *dir, const char *name, GError **error)
{
    g_autofree char *target = zpcid_dir_read_link(dir, name, error);

    if (target == NULL)
        return NULL;
    return g_path_get_basename(target);
}

gboolean
zpcid_dir_write(ZpcidDir *dir, const char *name, const char *data, int *out_errno,
                GError **error)
{
    g_autofree char *path = g_build_filename(dir->path, name, NULL);
    gsize len = strlen(data);
    ssize_t n;
    int fd;

    if (out_errno != NULL)
        *out_errno = 0;
    fd = openat(dir->fd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        if (out_errno != NULL)
            *out_errno = saved;
        g_propagate_error(error, error_from_errno(saved, _("Could not write “%s”: %s."), path));
        return FALSE;
    }
    /* sysfs acts on the first write; a short or repeated write would be a second action. */
    do
        n = write(fd, data, len);
    while (n < 0 && errno == EINTR);
    if (n < 0 || (gsize)n != len) {
        int saved = n < 0 ? errno : EIO;
        close(fd);
        if (out_errno != NULL)
            *out_errno = saved;
        g_propagate_error(error, error_from_errno(saved, _("Could not write “%s”: %s."), path));
        return FALSE;
    }
    if (close(fd) < 0 && errno != EINTR) {
        int saved = errno;
        if (out_errno != NULL)
            *out_errno = saved;
        g_propagate_error(error, error_from_errno(saved, _("Could not write “%s”: %s."), path));
        return FALSE;
    }
    return TRUE;
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *
zpcid_dir_list(ZpcidDir *dir, GError **error)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    int fd = openat(dir->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d;
    struct dirent *ent;

    trace(ZPCID_HOST_ACCESS_LIST, dir->path);
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        g_propagate_error(error,
                          error_from_errno(saved, _("Could not list the directory “%s”: %s."),
                                           dir->path));
        return NULL;
    }
    while ((errno = 0, ent = readdir(d)) != NULL) {
        if (g_str_equal(ent->d_name, ".") || g_str_equal(ent->d_name, ".."))
            continue;
        g_ptr_array_add(names, g_strdup(ent->d_name));
    }
    closedir(d);
    g_ptr_array_sort(names, compare_names);
    return g_steal_pointer(&names);
}
