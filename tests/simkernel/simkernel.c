/* Simulated kernel for binding: an LD_PRELOAD shim that gives a host tree the driver-core
 * behaviour of sysfs writes (docs/host-trees.md, "The simulated kernel").
 *
 * It only acts when $ZPCID_SIMKERNEL_ROOT names a directory, and only on writes to regular
 * files below it whose resolved path is a driver_override, a driver's bind or unbind, or
 * drivers_probe. Everything else, including every write while the variable is unset, goes
 * straight to the real write(). */

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ENV_ROOT          "ZPCID_SIMKERNEL_ROOT"
#define ENV_UEVENT_SOCKET "ZPCID_SIMKERNEL_UEVENT_SOCKET"
/* kernfs hands a store at most one page. */
#define SIM_PAGE_SIZE 4096

typedef ssize_t (*WriteFunc)(int fd, const void *buf, size_t count);

static WriteFunc real_write;

typedef enum {
    OP_OVERRIDE,
    OP_UNBIND,
    OP_BIND,
    OP_PROBE,
} Op;

static const char *const op_names[] = {"override", "unbind", "bind", "probe"};

typedef enum {
    FX_ERRNO,
    FX_DELAY,
    FX_NOTHING,
    FX_WRONG,
    FX_VANISH,
    FX_VANISH_AFTER,
} Effect;

typedef struct {
    guint line; /* index in the file, for consuming one-shot faults */
    Effect effect;
    int value; /* errno or milliseconds */
    char *arg; /* driver for FX_WRONG */
    int times; /* remaining firings; -1 = persistent */
} Fault;

typedef struct {
    Op op;
    char *root;   /* canonical host root */
    char *devrel; /* OP_OVERRIDE: device directory, relative to the root */
    char *driver; /* OP_BIND, OP_UNBIND */
    gboolean deleted;
} Request;

/* op_lock makes each operation atomic with respect to the others in this process; flock()
 * on the root does the same across processes. busy holds the addresses with an operation
 * under way, so that a slow one keeps its own device (like the kernel's device_lock) while
 * the global lock is released for the others. */
static GMutex op_lock;
static GCond op_cond;
static GHashTable *busy;

static GMutex root_lock;
static char *root_env;
static char *root_real;

static void
resolve_real_write(void)
{
    if (g_atomic_pointer_get(&real_write) == NULL)
        g_atomic_pointer_set(&real_write, (WriteFunc)dlsym(RTLD_NEXT, "write"));
}

__attribute__((constructor)) static void
simkernel_init(void)
{
    resolve_real_write();
}

/* Messages go to fd 2 through the real write(), never through stdio, so that a stderr
 * redirected into the tree cannot re-enter the shim. */
G_GNUC_PRINTF(1, 2) static void sim_warn(const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    g_autofree char *line = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    line = g_strdup_printf("simkernel: %s\n", msg);
    (void)!real_write(2, line, strlen(line));
}

static void
request_clear(Request *req)
{
    g_free(req->root);
    g_free(req->devrel);
    g_free(req->driver);
}

static void
fault_clear(gpointer p)
{
    g_free(((Fault *)p)->arg);
}

/* ---- paths ---------------------------------------------------------------------------- */

static char *
canonical_root(const char *env)
{
    char *result = NULL;

    g_mutex_lock(&root_lock);
    /* A failed lookup is not cached: the tree may be created after the variable is set. */
    if (root_env == NULL || root_real == NULL || strcmp(root_env, env) != 0) {
        char *real = realpath(env, NULL);
        g_free(root_env);
        g_free(root_real);
        root_env = g_strdup(env);
        root_real = real != NULL ? g_strdup(real) : NULL;
        free(real);
    }
    result = g_strdup(root_real);
    g_mutex_unlock(&root_lock);
    return result;
}

/* Joins @base and the relative @target lexically and resolves "." and ".."; NULL if the
 * result would leave the root or @target is absolute (sysfs links are always relative). */
static char *
normalize(const char *base, const char *target)
{
    g_autoptr(GPtrArray) parts = g_ptr_array_new();
    g_autofree char *joined = NULL;
    g_auto(GStrv) comps = NULL;

    if (target[0] == '/')
        return NULL;
    joined =
        base != NULL && *base != '\0' ? g_strconcat(base, "/", target, NULL) : g_strdup(target);
    comps = g_strsplit(joined, "/", -1);
    for (guint i = 0; comps[i] != NULL; i++) {
        if (comps[i][0] == '\0' || g_str_equal(comps[i], "."))
            continue;
        if (g_str_equal(comps[i], "..")) {
            if (parts->len == 0)
                return NULL;
            g_ptr_array_remove_index(parts, parts->len - 1);
            continue;
        }
        g_ptr_array_add(parts, comps[i]);
    }
    g_ptr_array_add(parts, NULL);
    return g_strjoinv("/", (char **)parts->pdata);
}

/* Target of a link placed in directory @from_dir pointing at @to, both root-relative, in
 * the minimal relative form sysfs uses. */
static char *
relative_target(const char *from_dir, const char *to)
{
    g_auto(GStrv) a = g_strsplit(from_dir, "/", -1);
    g_auto(GStrv) b = g_strsplit(to, "/", -1);
    GString *s = g_string_new(NULL);
    guint i = 0;

    while (a[i] != NULL && b[i] != NULL && g_str_equal(a[i], b[i]))
        i++;
    for (guint j = i; a[j] != NULL; j++)
        g_string_append(s, "../");
    for (guint j = i; b[j] != NULL; j++) {
        g_string_append(s, b[j]);
        if (b[j + 1] != NULL)
            g_string_append_c(s, '/');
    }
    return g_string_free(s, FALSE);
}

static gboolean
valid_name(const char *name)
{
    return *name != '\0' && strchr(name, '/') == NULL && !g_str_equal(name, ".") &&
           !g_str_equal(name, "..");
}

static char *
read_link_at(int rootfd, const char *rel)
{
    char buf[PATH_MAX];
    ssize_t n = readlinkat(rootfd, rel, buf, sizeof(buf) - 1);

    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return g_strdup(buf);
}

/* Root-relative path a link points at. */
static char *
resolve_link_at(int rootfd, const char *rel)
{
    g_autofree char *target = read_link_at(rootfd, rel);
    g_autofree char *dir = NULL;

    if (target == NULL)
        return NULL;
    dir = g_path_get_dirname(rel);
    return normalize(g_str_equal(dir, ".") ? NULL : dir, target);
}

static char *
read_small_at(int rootfd, const char *rel)
{
    char buf[SIM_PAGE_SIZE + 1];
    int fd = openat(rootfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return NULL;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return g_strdup(buf);
}

static int
write_small_at(int rootfd, const char *rel, const char *data, int flags)
{
    int fd = openat(rootfd, rel, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | flags, 0644);
    size_t len = strlen(data);
    ssize_t n;

    if (fd < 0)
        return errno;
    n = real_write(fd, data, len);
    if (close(fd) < 0 || n != (ssize_t)len)
        return EIO;
    return 0;
}

static gboolean
exists_at(int rootfd, const char *rel)
{
    struct stat st;
    return fstatat(rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void
remove_tree_at(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d;
    struct dirent *ent;

    if (fd < 0) {
        unlinkat(dirfd, name, 0);
        return;
    }
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    while ((ent = readdir(d)) != NULL) {
        if (g_str_equal(ent->d_name, ".") || g_str_equal(ent->d_name, ".."))
            continue;
        if (ent->d_type == DT_DIR)
            remove_tree_at(fd, ent->d_name);
        else if (unlinkat(fd, ent->d_name, 0) < 0 && errno == EISDIR)
            remove_tree_at(fd, ent->d_name);
    }
    closedir(d);
    unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* ---- the device model ------------------------------------------------------------------ */

/* Device directory of @addr (root-relative), or NULL when the kernel does not know it. */
static char *
dev_lookup(int rootfd, const char *addr)
{
    g_autofree char *link = NULL;
    g_autofree char *devrel = NULL;
    struct stat st;

    if (!valid_name(addr))
        return NULL;
    link = g_strconcat("sys/bus/pci/devices/", addr, NULL);
    devrel = resolve_link_at(rootfd, link);
    if (devrel == NULL || !g_str_has_prefix(devrel, "sys/devices/"))
        return NULL;
    if (fstatat(rootfd, devrel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return g_steal_pointer(&devrel);
}

static char *
dev_driver(int rootfd, const char *devrel)
{
    g_autofree char *link = g_strconcat(devrel, "/driver", NULL);
    g_autofree char *target = read_link_at(rootfd, link);

    return target != NULL ? g_path_get_basename(target) : NULL;
}

static char *
dev_override(int rootfd, const char *devrel)
{
    g_autofree char *rel = g_strconcat(devrel, "/driver_override", NULL);
    g_autofree char *value = read_small_at(rootfd, rel);

    if (value == NULL)
        return NULL;
    g_strchomp(value);
    if (*value == '\0' || g_str_equal(value, "(null)"))
        return NULL;
    return g_steal_pointer(&value);
}

static int
dev_group(int rootfd, const char *devrel)
{
    g_autofree char *link = g_strconcat(devrel, "/iommu_group", NULL);
    g_autofree char *target = read_link_at(rootfd, link);
    g_autofree char *name = NULL;
    guint64 n;

    if (target == NULL)
        return -1;
    name = g_path_get_basename(target);
    if (!g_ascii_string_to_unsigned(name, 10, 0, G_MAXINT, &n, NULL))
        return -1;
    return (int)n;
}

/* Whole file, for fixture files that may exceed a page on big trees. */
static char *
read_all_at(int rootfd, const char *rel)
{
    int fd = openat(rootfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    GString *all;
    char buf[8192];
    ssize_t n;

    if (fd < 0)
        return NULL;
    all = g_string_new(NULL);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        g_string_append_len(all, buf, n);
    close(fd);
    return g_string_free(all, FALSE);
}

/* Whitespace-separated fields of @line, without empty ones. */
static GPtrArray *
split_fields(const char *line)
{
    g_auto(GStrv) tok = g_strsplit_set(line, " \t\r", -1);
    GPtrArray *fields = g_ptr_array_new_with_free_func(g_free);

    for (guint j = 0; tok[j] != NULL; j++)
        if (tok[j][0] != '\0')
            g_ptr_array_add(fields, g_strdup(tok[j]));
    return fields;
}

/* Driver recorded in fixture/native-drivers: what the kernel would match by ID table. */
static char *
native_driver(int rootfd, const char *addr)
{
    g_autofree char *contents = read_all_at(rootfd, "fixture/native-drivers");
    g_auto(GStrv) lines = NULL;

    if (contents == NULL)
        return NULL;
    lines = g_strsplit(contents, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        g_autoptr(GPtrArray) f = split_fields(lines[i]);

        if (f->len >= 2 && ((char *)f->pdata[0])[0] != '#' && g_str_equal(f->pdata[0], addr))
            return g_strdup(f->pdata[1]);
    }
    return NULL;
}

static gboolean
driver_exists(int rootfd, const char *driver)
{
    g_autofree char *rel = NULL;
    struct stat st;

    if (!valid_name(driver))
        return FALSE;
    rel = g_strconcat("sys/bus/pci/drivers/", driver, NULL);
    return fstatat(rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* Sends one uevent in the kernel's netlink format ("ACTION@DEVPATH\0KEY=VALUE\0...") to
 * $ZPCID_SIMKERNEL_UEVENT_SOCKET, the socket zpcid --uevent-socket listens on. Never blocks:
 * a missing or full listener loses the event, as an overflowing netlink socket would. */
static void
send_uevent(const char *action, const char *devpath, const char *subsystem,
            const char *const *extra)
{
    static gint seqnum;
    const char *path = getenv(ENV_UEVENT_SOCKET);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    g_autoptr(GString) msg = NULL;
    int sock;

    if (path == NULL || *path == '\0' || strlen(path) >= sizeof(sa.sun_path))
        return;
    msg = g_string_new(NULL);
    g_string_append_printf(msg, "%s@%s", action, devpath);
    g_string_append_c(msg, '\0');
    g_string_append_printf(msg, "ACTION=%s", action);
    g_string_append_c(msg, '\0');
    g_string_append_printf(msg, "DEVPATH=%s", devpath);
    g_string_append_c(msg, '\0');
    g_string_append_printf(msg, "SUBSYSTEM=%s", subsystem);
    g_string_append_c(msg, '\0');
    for (guint i = 0; extra != NULL && extra[i] != NULL; i++) {
        g_string_append(msg, extra[i]);
        g_string_append_c(msg, '\0');
    }
    g_string_append_printf(msg, "SEQNUM=%d", g_atomic_int_add(&seqnum, 1) + 1);
    g_string_append_c(msg, '\0');
    strcpy(sa.sun_path, path);
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return;
    (void)sendto(sock, msg->str, msg->len, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof(sa));
    close(sock);
}

/* Reports a change of a PCI device: a line in fixture/uevents when a test created that file,
 * and the kernel's uevent on $ZPCID_SIMKERNEL_UEVENT_SOCKET. */
static void
uevent(int rootfd, const char *action, const char *devrel, const char *driver)
{
    /* DEVPATH is relative to /sys, as in the kernel's uevents. */
    const char *devpath = devrel + strlen("sys");
    g_autofree char *addr = g_path_get_basename(devrel);
    g_autofree char *slot = g_strconcat("PCI_SLOT_NAME=", addr, NULL);
    /* The kernel's unbind event goes out after the driver is gone, so it names none. */
    g_autofree char *drv =
        driver != NULL && g_str_equal(action, "bind") ? g_strconcat("DRIVER=", driver, NULL) : NULL;
    const char *extra[] = {drv != NULL ? drv : slot, drv != NULL ? slot : NULL, NULL};
    int fd;

    fd = openat(rootfd, "fixture/uevents", O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        g_autofree char *line =
            g_strdup_printf("ACTION=%s DEVPATH=%s SUBSYSTEM=pci%s%s\n", action, devpath,
                            driver != NULL ? " DRIVER=" : "", driver != NULL ? driver : "");
        (void)!real_write(fd, line, strlen(line));
        close(fd);
    }
    send_uevent(action, devpath, "pci", extra);
}

/* The vfio group character device appearing or going away. */
static void
uevent_vfio(const char *action, int group)
{
    g_autofree char *devpath = g_strdup_printf("/devices/virtual/vfio/%d", group);
    g_autofree char *devname = g_strdup_printf("DEVNAME=vfio/%d", group);
    const char *extra[] = {devname, NULL};

    send_uevent(action, devpath, "vfio", extra);
}

static char *
vfio_node(int group)
{
    return g_strdup_printf("dev/vfio/%d", group);
}

/* Probe of @driver on the device; returns 0 or the errno the probe would fail with. */
static int
attach(int rootfd, const char *devrel, const char *addr, const char *driver)
{
    g_autofree char *drvdir = g_strconcat("sys/bus/pci/drivers/", driver, NULL);
    g_autofree char *dev_link = g_strconcat(devrel, "/driver", NULL);
    g_autofree char *drv_link = g_strconcat(drvdir, "/", addr, NULL);
    g_autofree char *to_drv = relative_target(devrel, drvdir);
    g_autofree char *to_dev = relative_target(drvdir, devrel);
    int group = dev_group(rootfd, devrel);

    /* vfio_group_find_or_alloc() refuses a device without an IOMMU group. */
    if (g_str_equal(driver, "vfio-pci") && group < 0)
        return EINVAL;
    if (symlinkat(to_drv, rootfd, dev_link) < 0)
        return errno;
    if (symlinkat(to_dev, rootfd, drv_link) < 0 && errno != EEXIST) {
        int saved = errno;
        unlinkat(rootfd, dev_link, 0);
        return saved;
    }
    if (g_str_equal(driver, "vfio-pci")) {
        g_autofree char *node = vfio_node(group);
        int fd;

        mkdirat(rootfd, "dev", 0755);
        mkdirat(rootfd, "dev/vfio", 0755);
        fd = openat(rootfd, node, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        uevent_vfio("add", group);
    }
    uevent(rootfd, "bind", devrel, driver);
    return 0;
}

static void
detach(int rootfd, const char *devrel, const char *addr, const char *driver)
{
    g_autofree char *dev_link = g_strconcat(devrel, "/driver", NULL);
    g_autofree char *drv_link = g_strconcat("sys/bus/pci/drivers/", driver, "/", addr, NULL);

    unlinkat(rootfd, drv_link, 0);
    unlinkat(rootfd, dev_link, 0);
    if (g_str_equal(driver, "vfio-pci")) {
        int group = dev_group(rootfd, devrel);
        if (group >= 0) {
            g_autofree char *node = vfio_node(group);
            unlinkat(rootfd, node, 0);
            uevent_vfio("remove", group);
        }
    }
    uevent(rootfd, "unbind", devrel, driver);
}

/* Removes links in @dir that point into @devrel. */
static void
remove_links_into(int rootfd, const char *dir, const char *devrel)
{
    g_autofree char *prefix = g_strconcat(devrel, "/", NULL);
    int fd = openat(rootfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    g_autoptr(GPtrArray) doomed = g_ptr_array_new_with_free_func(g_free);
    DIR *d;
    struct dirent *ent;

    if (fd < 0)
        return;
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    while ((ent = readdir(d)) != NULL) {
        g_autofree char *rel = NULL;
        g_autofree char *target = NULL;

        if (ent->d_name[0] == '.')
            continue;
        rel = g_strconcat(dir, "/", ent->d_name, NULL);
        target = resolve_link_at(rootfd, rel);
        if (target != NULL && (g_str_has_prefix(target, prefix) || g_str_equal(target, devrel)))
            g_ptr_array_add(doomed, g_steal_pointer(&rel));
    }
    closedir(d);
    for (guint i = 0; i < doomed->len; i++)
        unlinkat(rootfd, doomed->pdata[i], 0);
}

/* Hot-unplug: the function goes to standby and every trace of its pci_dev disappears. */
static void
vanish(int rootfd, const char *addr)
{
    g_autofree char *devrel = dev_lookup(rootfd, addr);
    g_autofree char *driver = NULL;
    g_autofree char *physfn_link = NULL;
    g_autofree char *pf = NULL;
    g_autofree char *fid_rel = NULL;
    g_autofree char *fid = NULL;
    g_autofree char *bus_link = NULL;
    int group;

    if (devrel == NULL)
        return;
    /* A PF takes its VFs with it. */
    {
        g_autoptr(GPtrArray) vfs = g_ptr_array_new_with_free_func(g_free);
        int fd = openat(rootfd, devrel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *ent;

        if (d == NULL && fd >= 0)
            close(fd);
        while (d != NULL && (ent = readdir(d)) != NULL) {
            if (g_str_has_prefix(ent->d_name, "virtfn")) {
                g_autofree char *rel = g_strconcat(devrel, "/", ent->d_name, NULL);
                char *target = resolve_link_at(rootfd, rel);
                if (target != NULL)
                    g_ptr_array_add(vfs, g_path_get_basename(target));
                g_free(target);
            }
        }
        if (d != NULL)
            closedir(d);
        for (guint i = 0; i < vfs->len; i++)
            vanish(rootfd, vfs->pdata[i]);
    }

    driver = dev_driver(rootfd, devrel);
    if (driver != NULL)
        detach(rootfd, devrel, addr, driver);
    group = dev_group(rootfd, devrel);
    if (group >= 0) {
        g_autofree char *gdir = g_strdup_printf("sys/kernel/iommu_groups/%d", group);
        remove_tree_at(rootfd, gdir);
    }
    remove_links_into(rootfd, "sys/class/net", devrel);
    remove_links_into(rootfd, "sys/class/block", devrel);
    remove_links_into(rootfd, "sys/class/nvme", devrel);
    remove_links_into(rootfd, "sys/bus/virtio/devices", devrel);
    physfn_link = g_strconcat(devrel, "/physfn", NULL);
    pf = resolve_link_at(rootfd, physfn_link);
    if (pf != NULL)
        remove_links_into(rootfd, pf, devrel);
    fid_rel = g_strconcat(devrel, "/function_id", NULL);
    fid = read_small_at(rootfd, fid_rel);
    if (fid != NULL) {
        guint64 v = g_ascii_strtoull(fid, NULL, 16);
        g_autofree char *power = g_strdup_printf("sys/bus/pci/slots/%08x/power", (guint)v);
        if (exists_at(rootfd, power))
            write_small_at(rootfd, power, "0\n", O_TRUNC);
    }
    bus_link = g_strconcat("sys/bus/pci/devices/", addr, NULL);
    unlinkat(rootfd, bus_link, 0);
    remove_tree_at(rootfd, devrel);
    uevent(rootfd, "remove", devrel, NULL);
}

/* ---- faults ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int value;
} errno_names[] = {
    {"EPERM", EPERM},         {"ENOENT", ENOENT}, {"EIO", EIO},       {"ENXIO", ENXIO},
    {"EAGAIN", EAGAIN},       {"ENOMEM", ENOMEM}, {"EACCES", EACCES}, {"EBUSY", EBUSY},
    {"EEXIST", EEXIST},       {"ENODEV", ENODEV}, {"EINVAL", EINVAL}, {"ENOSPC", ENOSPC},
    {"ETIMEDOUT", ETIMEDOUT}, {"EINTR", EINTR},   {"ENOSYS", ENOSYS},
};

static int
parse_errno(const char *s)
{
    guint64 v;

    for (gsize i = 0; i < G_N_ELEMENTS(errno_names); i++)
        if (g_ascii_strcasecmp(s, errno_names[i].name) == 0)
            return errno_names[i].value;
    if (g_ascii_string_to_unsigned(s, 10, 1, 4095, &v, NULL))
        return (int)v;
    return 0;
}

/* One line of fixture/faults: "<addr|*> <op> <effect> [<arg>] [once|times=N]". Returns
 * FALSE for comments, blank lines and lines for other functions or operations. */
static gboolean
parse_fault(const char *line, guint index, const char *addr, Op op, Fault *out)
{
    g_autoptr(GPtrArray) f = split_fields(line);
    const char *effect;
    guint next = 3;

    memset(out, 0, sizeof(*out));
    out->line = index;
    out->times = -1;
    if (f->len == 0 || ((char *)f->pdata[0])[0] == '#')
        return FALSE;
    if (f->len < 3) {
        sim_warn("fixture/faults line %u: too few fields", index + 1);
        return FALSE;
    }
    if (!g_str_equal(f->pdata[0], "*") && !g_str_equal(f->pdata[0], addr))
        return FALSE;
    if (!g_str_equal(f->pdata[1], op_names[op]))
        return FALSE;
    effect = f->pdata[2];
    if (g_str_equal(effect, "errno") || g_str_equal(effect, "delay") ||
        g_str_equal(effect, "wrong")) {
        if (f->len < 4) {
            sim_warn("fixture/faults line %u: %s needs an argument", index + 1, effect);
            return FALSE;
        }
        next = 4;
    }
    if (g_str_equal(effect, "errno")) {
        out->effect = FX_ERRNO;
        out->value = parse_errno(f->pdata[3]);
        if (out->value == 0) {
            sim_warn("fixture/faults line %u: unknown errno %s", index + 1, (char *)f->pdata[3]);
            return FALSE;
        }
    } else if (g_str_equal(effect, "delay")) {
        guint64 ms;
        if (!g_ascii_string_to_unsigned(f->pdata[3], 10, 0, 600000, &ms, NULL)) {
            sim_warn("fixture/faults line %u: bad delay", index + 1);
            return FALSE;
        }
        out->effect = FX_DELAY;
        out->value = (int)ms;
    } else if (g_str_equal(effect, "wrong")) {
        out->effect = FX_WRONG;
        out->arg = g_strdup(f->pdata[3]);
    } else if (g_str_equal(effect, "nothing")) {
        out->effect = FX_NOTHING;
    } else if (g_str_equal(effect, "vanish")) {
        out->effect = FX_VANISH;
    } else if (g_str_equal(effect, "vanish-after")) {
        out->effect = FX_VANISH_AFTER;
    } else {
        sim_warn("fixture/faults line %u: unknown effect %s", index + 1, effect);
        return FALSE;
    }
    for (guint i = next; i < f->len; i++) {
        const char *opt = f->pdata[i];
        guint64 n;

        if (g_str_equal(opt, "once"))
            out->times = 1;
        else if (g_str_has_prefix(opt, "times=") &&
                 g_ascii_string_to_unsigned(opt + 6, 10, 1, G_MAXINT, &n, NULL))
            out->times = (int)n;
        else
            sim_warn("fixture/faults line %u: ignoring %s", index + 1, opt);
    }
    return TRUE;
}

static GArray *
load_faults(int rootfd, const char *addr, Op op)
{
    g_autofree char *contents = read_all_at(rootfd, "fixture/faults");
    g_auto(GStrv) lines = NULL;
    GArray *faults = g_array_new(FALSE, FALSE, sizeof(Fault));

    g_array_set_clear_func(faults, fault_clear);
    if (contents == NULL)
        return faults;
    lines = g_strsplit(contents, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        Fault fault;
        if (parse_fault(lines[i], i, addr, op, &fault))
            g_array_append_val(faults, fault);
    }
    return faults;
}

static Fault *
find_fault(GArray *faults, Effect effect)
{
    for (guint i = 0; i < faults->len; i++) {
        Fault *f = &g_array_index(faults, Fault, i);
        if (f->effect == effect && f->times != 0)
            return f;
    }
    return NULL;
}

/* Records that @fault fired: a limited fault counts down in the file itself, so that the
 * count holds across processes and a test can see what fired; at zero the line becomes a
 * "# fired:" comment. */
static void
consume(int rootfd, Fault *fault)
{
    g_autofree char *contents = NULL;
    g_auto(GStrv) lines = NULL;
    g_autoptr(GString) out = NULL;
    g_autofree char *tmp = NULL;
    int fd;

    if (fault->times < 0)
        return;
    fault->times--;
    contents = read_all_at(rootfd, "fixture/faults");
    if (contents == NULL)
        return;
    lines = g_strsplit(contents, "\n", -1);
    if (fault->line >= g_strv_length(lines))
        return;
    if (fault->times == 0) {
        char *fired = g_strconcat("# fired: ", lines[fault->line], NULL);
        g_free(lines[fault->line]);
        lines[fault->line] = fired;
    } else {
        g_autoptr(GPtrArray) f = split_fields(lines[fault->line]);
        g_autoptr(GString) line = g_string_new(NULL);

        for (guint i = 0; i < f->len; i++) {
            const char *field = f->pdata[i];
            if (i > 0)
                g_string_append_c(line, ' ');
            if (g_str_has_prefix(field, "times="))
                g_string_append_printf(line, "times=%d", fault->times);
            else
                g_string_append(line, field);
        }
        g_free(lines[fault->line]);
        lines[fault->line] = g_string_free(g_steal_pointer(&line), FALSE);
    }
    out = g_string_new(NULL);
    for (guint i = 0; lines[i] != NULL; i++) {
        g_string_append(out, lines[i]);
        if (lines[i + 1] != NULL)
            g_string_append_c(out, '\n');
    }
    /* Replace, not rewrite in place, so a reader never sees half a file. */
    tmp = g_strdup_printf("fixture/.faults.%d", (int)getpid());
    fd = openat(rootfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (real_write(fd, out->str, out->len) != (ssize_t)out->len || close(fd) < 0) {
        unlinkat(rootfd, tmp, 0);
        return;
    }
    renameat(rootfd, tmp, rootfd, "fixture/faults");
}

/* ---- operations ------------------------------------------------------------------------ */

/* driver_set_override(): the length check uses the write's count, the stored value stops at
 * the first NUL or newline, and an empty result clears the override. */
static int
store_override(int rootfd, const char *devrel, const char *data, size_t len)
{
    g_autofree char *rel = g_strconcat(devrel, "/driver_override", NULL);
    g_autofree char *value = NULL;
    g_autofree char *shown = NULL;
    char *nl;

    if (len >= SIM_PAGE_SIZE - 1)
        return EINVAL;
    value = g_strndup(data, len);
    nl = strchr(value, '\n');
    if (nl != NULL)
        *nl = '\0';
    shown = g_strconcat(*value != '\0' ? value : "(null)", "\n", NULL);
    return write_small_at(rootfd, rel, shown, O_TRUNC);
}

typedef struct {
    int rootfd;
    const Request *req;
    const char *addr;
    const char *data;
    size_t len;
    GArray *faults;
} Ctx;

/* Fires @effect if a fault asks for it. */
static Fault *
take(Ctx *c, Effect effect)
{
    Fault *f = find_fault(c->faults, effect);

    if (f != NULL)
        consume(c->rootfd, f);
    return f;
}

static int
perform(Ctx *c)
{
    g_autofree char *devrel = NULL;
    g_autofree char *bound = NULL;
    g_autofree char *override = NULL;
    g_autofree char *native = NULL;
    Fault *f;

    if (take(c, FX_VANISH) != NULL)
        vanish(c->rootfd, c->addr);
    devrel = dev_lookup(c->rootfd, c->addr);
    if (devrel == NULL)
        return ENODEV;
    bound = dev_driver(c->rootfd, devrel);
    override = dev_override(c->rootfd, devrel);

    switch (c->req->op) {
    case OP_OVERRIDE:
        /* The file written must still belong to the device of that name. */
        if (!g_str_equal(devrel, c->req->devrel))
            return ENODEV;
        if (c->len >= SIM_PAGE_SIZE - 1)
            return EINVAL;
        if ((f = take(c, FX_ERRNO)) != NULL)
            return f->value;
        if (take(c, FX_NOTHING) != NULL)
            return 0;
        return store_override(c->rootfd, devrel, c->data, c->len);

    case OP_UNBIND:
        if (bound == NULL || !g_str_equal(bound, c->req->driver))
            return ENODEV;
        if ((f = take(c, FX_ERRNO)) != NULL)
            return f->value;
        if (take(c, FX_NOTHING) != NULL)
            return 0;
        detach(c->rootfd, devrel, c->addr, bound);
        return 0;

    case OP_BIND: {
        const char *target = c->req->driver;
        /* pci_match_device(): an override matches only its own driver, and without one
         * only the native driver's ID table matches. */
        if (override != NULL) {
            if (!g_str_equal(override, c->req->driver))
                return ENODEV;
        } else {
            native = native_driver(c->rootfd, c->addr);
            if (native == NULL || !g_str_equal(native, c->req->driver))
                return ENODEV;
        }
        if (bound != NULL)
            return EBUSY;
        if ((f = take(c, FX_ERRNO)) != NULL)
            return f->value;
        if (take(c, FX_NOTHING) != NULL)
            return 0;
        if ((f = take(c, FX_WRONG)) != NULL)
            target = f->arg;
        if (!driver_exists(c->rootfd, target))
            return ENODEV;
        return attach(c->rootfd, devrel, c->addr, target);
    }

    case OP_PROBE: {
        const char *target;
        if (bound != NULL)
            return 0;
        if ((f = take(c, FX_ERRNO)) != NULL)
            return f->value;
        if (take(c, FX_NOTHING) != NULL)
            return 0;
        if ((f = take(c, FX_WRONG)) != NULL) {
            target = f->arg;
        } else if (override != NULL) {
            target = override;
        } else {
            native = native_driver(c->rootfd, c->addr);
            target = native;
        }
        /* device_attach() swallows "no match" and probe errors alike. */
        if (target != NULL && driver_exists(c->rootfd, target))
            (void)attach(c->rootfd, devrel, c->addr, target);
        return 0;
    }
    }
    return EINVAL;
}

static int
open_root(const char *root)
{
    return open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Sum of the delays asked for this operation; they fire before the operation runs. */
static guint
take_delays(const char *root, const char *addr, Op op)
{
    int rootfd = open_root(root);
    g_autoptr(GArray) faults = NULL;
    guint total = 0;

    if (rootfd < 0)
        return 0;
    flock(rootfd, LOCK_EX);
    faults = load_faults(rootfd, addr, op);
    for (guint i = 0; i < faults->len; i++) {
        Fault *f = &g_array_index(faults, Fault, i);
        if (f->effect == FX_DELAY) {
            total += (guint)f->value;
            consume(rootfd, f);
        }
    }
    close(rootfd);
    return total;
}

static ssize_t
handle(Request *req, const void *buf, size_t count)
{
    size_t len = MIN(count, (size_t)SIM_PAGE_SIZE);
    g_autofree char *data = g_strndup(buf, len);
    g_autofree char *addr = NULL;
    g_autofree char *key = NULL;
    Ctx c = {.req = req, .data = data, .len = len};
    guint delay;
    int err;

    if (req->deleted) {
        errno = ENODEV;
        return -1;
    }
    /* sysfs_kf_write() never calls the store for an empty write. */
    if (len == 0)
        return 0;
    if (req->op == OP_OVERRIDE) {
        addr = g_path_get_basename(req->devrel);
    } else {
        /* sysfs_streq(): one trailing newline does not count. */
        addr = g_strdup(data);
        if (g_str_has_suffix(addr, "\n"))
            addr[strlen(addr) - 1] = '\0';
    }
    if (!valid_name(addr)) {
        errno = ENODEV;
        return -1;
    }
    key = g_strconcat(req->root, "\n", addr, NULL);

    g_mutex_lock(&op_lock);
    if (busy == NULL)
        busy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    while (g_hash_table_contains(busy, key))
        g_cond_wait(&op_cond, &op_lock);
    g_hash_table_add(busy, g_strdup(key));
    delay = take_delays(req->root, addr, req->op);
    g_mutex_unlock(&op_lock);

    /* Sleeping here keeps the device busy but lets every other device proceed. */
    if (delay > 0)
        g_usleep((gulong)delay * 1000);

    g_mutex_lock(&op_lock);
    c.rootfd = open_root(req->root);
    if (c.rootfd < 0) {
        err = ENODEV;
    } else {
        flock(c.rootfd, LOCK_EX);
        c.addr = addr;
        c.faults = load_faults(c.rootfd, addr, req->op);
        err = perform(&c);
        if (take(&c, FX_VANISH_AFTER) != NULL)
            vanish(c.rootfd, addr);
        g_array_unref(c.faults);
        close(c.rootfd);
    }
    g_hash_table_remove(busy, key);
    g_cond_broadcast(&op_cond);
    g_mutex_unlock(&op_lock);

    if (err != 0) {
        errno = err;
        return -1;
    }
    return (ssize_t)len;
}

/* Decides whether a write to @fd is one the simulated kernel handles. */
static gboolean
classify(int fd, Request *req)
{
    const char *env = getenv(ENV_ROOT);
    g_autofree char *root = NULL;
    g_autofree char *proc = NULL;
    char path[PATH_MAX];
    const char *rel;
    struct stat st;
    ssize_t n;
    gsize rootlen;

    if (env == NULL || *env == '\0')
        return FALSE;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return FALSE;
    root = canonical_root(env);
    if (root == NULL)
        return FALSE;
    proc = g_strdup_printf("/proc/self/fd/%d", fd);
    n = readlink(proc, path, sizeof(path) - 1);
    if (n < 0)
        return FALSE;
    path[n] = '\0';
    rootlen = strlen(root);
    if (g_str_equal(root, "/") || strncmp(path, root, rootlen) != 0 || path[rootlen] != '/')
        return FALSE;
    memset(req, 0, sizeof(*req));
    if (g_str_has_suffix(path, " (deleted)")) {
        path[n - strlen(" (deleted)")] = '\0';
        req->deleted = TRUE;
    }
    rel = path + rootlen + 1;

    if (g_str_equal(rel, "sys/bus/pci/drivers_probe")) {
        req->op = OP_PROBE;
    } else if (g_str_has_prefix(rel, "sys/bus/pci/drivers/")) {
        g_auto(GStrv) parts = g_strsplit(rel + strlen("sys/bus/pci/drivers/"), "/", -1);
        if (g_strv_length(parts) != 2)
            return FALSE;
        if (g_str_equal(parts[1], "bind"))
            req->op = OP_BIND;
        else if (g_str_equal(parts[1], "unbind"))
            req->op = OP_UNBIND;
        else
            return FALSE;
        req->driver = g_strdup(parts[0]);
    } else if (g_str_has_prefix(rel, "sys/devices/") && g_str_has_suffix(rel, "/driver_override")) {
        req->op = OP_OVERRIDE;
        req->devrel = g_path_get_dirname(rel);
    } else {
        return FALSE;
    }
    req->root = g_steal_pointer(&root);
    return TRUE;
}

/* The one exported symbol: the build hides everything else. */
__attribute__((visibility("default"))) ssize_t
write(int fd, const void *buf, size_t count)
{
    Request req;
    ssize_t ret;
    int saved = errno;

    resolve_real_write();
    if (!classify(fd, &req)) {
        errno = saved;
        return real_write(fd, buf, count);
    }
    ret = handle(&req, buf, count);
    saved = errno;
    request_clear(&req);
    errno = saved;
    return ret;
}
