/* Host I/O: every kernel, proc, dev, boot and state path is resolved under a host root.
 *
 * Directories are opened once and files are read and written relative to their fds, so
 * that what is checked (a function's fid and uid) and what is written (its driver_override)
 * go through the same directory even if the PCI address is reused meanwhile. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _ZpcidHost ZpcidHost;

/* An open directory together with the path used in messages. */
typedef struct {
    int fd;
    char *path;
} ZpcidDir;

/* Largest sysfs attribute the kernel hands out (one page). */
#define ZPCID_ATTR_MAX_SIZE 4096

ZpcidHost *zpcid_host_new(const char *root, GError **error);
/* @root, or $ZPCID_HOST_ROOT, or "/". */
ZpcidHost *zpcid_host_new_default(const char *root, GError **error);
ZpcidHost *zpcid_host_ref(ZpcidHost *host);
void zpcid_host_unref(ZpcidHost *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidHost, zpcid_host_unref)

const char *zpcid_host_get_root(ZpcidHost *host);
/* TRUE when the host root is the real "/", i.e. writes would reach real devices. */
gboolean zpcid_host_is_live(ZpcidHost *host);
/* Display path of @relpath (relative to the root) for messages. */
char *zpcid_host_display_path(ZpcidHost *host, const char *relpath);

/* Opens @relpath (relative to the root, symlinks resolved inside the root). */
ZpcidDir *zpcid_host_open_dir(ZpcidHost *host, const char *relpath, GError **error);
gboolean zpcid_host_exists(ZpcidHost *host, const char *relpath);
/* Reads a whole text file below the root; NUL-terminated, at most @max bytes. */
char *zpcid_host_read(ZpcidHost *host, const char *relpath, gsize max, gsize *length,
                      GError **error);
/* Target of the symlink @relpath (relative to the root). */
char *zpcid_host_read_link(ZpcidHost *host, const char *relpath, GError **error);

ZpcidDir *zpcid_dir_open(ZpcidDir *dir, const char *name, GError **error);
void zpcid_dir_free(ZpcidDir *dir);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidDir, zpcid_dir_free)

/* TRUE if @name exists in @dir (not following a final symlink). */
gboolean zpcid_dir_has(ZpcidDir *dir, const char *name);
/* Reads regular file @name; G_IO_ERROR_NOT_FOUND when it does not exist. */
char *zpcid_dir_read(ZpcidDir *dir, const char *name, gsize max, gsize *length, GError **error);
/* Target of symlink @name; G_IO_ERROR_NOT_FOUND when it does not exist. */
char *zpcid_dir_read_link(ZpcidDir *dir, const char *name, GError **error);
/* Last path component of the target of symlink @name. */
char *zpcid_dir_read_link_name(ZpcidDir *dir, const char *name, GError **error);
/* Writes @data in one write(2), as sysfs needs; the kernel's errno is kept in the message
 * and in the code (ZpcidError from the errno). *out_errno gets the raw errno if non-NULL. */
gboolean zpcid_dir_write(ZpcidDir *dir, const char *name, const char *data, int *out_errno,
                         GError **error);
/* Sorted names in @dir, without "." and "..". */
GPtrArray *zpcid_dir_list(ZpcidDir *dir, GError **error);

/* What the host layer did to a path, for zpcid_host_set_trace(). */
typedef enum {
    ZPCID_HOST_ACCESS_OPEN_DIR,
    ZPCID_HOST_ACCESS_READ,
    ZPCID_HOST_ACCESS_READ_LINK,
    ZPCID_HOST_ACCESS_LIST,
    ZPCID_HOST_ACCESS_STAT,
} ZpcidHostAccess;
typedef void (*ZpcidHostTraceFunc)(ZpcidHostAccess access, const char *path, gpointer user_data);
/* Benchmarks only (bench/): @func sees every read access of this process, whether it succeeds
 * or not, so that a floor reader can replay exactly the same accesses. NULL turns it off. */
void zpcid_host_set_trace(ZpcidHostTraceFunc func, gpointer user_data);

/* TRUE if @error says a file or directory does not exist. */
gboolean zpcid_error_is_not_found(const GError *error);

G_END_DECLS
