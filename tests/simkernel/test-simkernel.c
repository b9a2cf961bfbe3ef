/* Unit tests of the simulated kernel (libzpcid-simkernel.so, preloaded by meson) and of the
 * host trees tests/tools/mkhost.py generates.
 *
 * Every test works in a fresh temporary directory. Writes go through plain open/write/close,
 * the way zpcid writes sysfs, so that the shim sees exactly what the daemon would do. */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ENV_ROOT "ZPCID_SIMKERNEL_ROOT"

/* Fixed head of every mkhost tree (see HEAD in mkhost.py), with UID checking on. */
#define A_ROCE         "0001:00:00.0" /* mlx5_core, netdev eno1 */
#define A_NVME         "0002:00:00.0" /* nvme, nvme0n1p1 mounted */
#define A_ROCE_UNBOUND "0004:00:00.0" /* native mlx5_core, unbound */
#define A_NVME_VFIO    "0005:00:00.0" /* vfio-pci, driver_override vfio-pci */
#define A_NVME_UNBOUND "0009:00:00.0" /* native nvme, unbound */
#define A_NVME_IDLE    "000a:00:00.0" /* nvme */
#define A_UNC          "000c:00:00.0" /* no native driver */
#define A_PF           "000e:00:00.0" /* with --functions 16 --pf-with-vfs 1 */
#define A_VF1          "000e:00:00.1"
#define A_VF2          "000e:00:00.2"

#define UNBIND(drv)     "sys/bus/pci/drivers/" drv "/unbind"
#define BIND(drv)       "sys/bus/pci/drivers/" drv "/bind"
#define PROBE           "sys/bus/pci/drivers_probe"
#define DEV(addr, attr) "sys/bus/pci/devices/" addr "/" attr

static const char *const default_args[] = {
    "--functions", "16", "--pf-with-vfs", "1", "--seed", "1", NULL,
};

typedef struct {
    char *dir;
    char *root;
} Host;

/* ---- helpers --------------------------------------------------------------------------- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path) < 0 ? -1 : 0;
}

static void
rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkhost must not run under the shim for its own tree. */
static char **
clean_environ(void)
{
    char **env = g_get_environ();
    env = g_environ_unsetenv(env, "LD_PRELOAD");
    return g_environ_unsetenv(env, ENV_ROOT);
}

/* $ZPCID_MKHOST, or $MKHOST as the other test suites name it. */
static const char *
mkhost_script(void)
{
    const char *script = g_getenv("ZPCID_MKHOST");
    return script != NULL ? script : g_getenv("MKHOST");
}

/* Runs mkhost.py; returns its exit status (0 on success). */
static int
mkhost(const char *outdir, const char *const *args, char **err_out)
{
    const char *python = g_getenv("ZPCID_PYTHON3");
    const char *script = mkhost_script();
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_auto(GStrv) env = clean_environ();
    g_autoptr(GError) error = NULL;
    g_autofree char *err = NULL;
    int status = -1;

    g_assert_nonnull(script);
    g_ptr_array_add(argv, (char *)(python != NULL ? python : "python3"));
    g_ptr_array_add(argv, (char *)script);
    g_ptr_array_add(argv, (char *)outdir);
    for (guint i = 0; args != NULL && args[i] != NULL; i++)
        g_ptr_array_add(argv, (char *)args[i]);
    g_ptr_array_add(argv, NULL);
    g_spawn_sync(NULL, (char **)argv->pdata, env, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, &err,
                 &status, &error);
    g_assert_no_error(error);
    if (err_out != NULL)
        *err_out = g_steal_pointer(&err);
    else if (err != NULL && *err != '\0')
        g_test_message("mkhost: %s", err);
    if (!WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static void
host_setup(Host *h, gconstpointer data)
{
    const char *const *args = data != NULL ? data : default_args;
    g_autoptr(GError) error = NULL;

    h->dir = g_dir_make_tmp("simkernel-XXXXXX", &error);
    g_assert_no_error(error);
    h->root = g_build_filename(h->dir, "host", NULL);
    g_assert_cmpint(mkhost(h->root, args, NULL), ==, 0);
    setenv(ENV_ROOT, h->root, 1);
}

static void
host_teardown(Host *h, gconstpointer data)
{
    unsetenv(ENV_ROOT);
    rm_rf(h->dir);
    g_free(h->dir);
    g_free(h->root);
}

static char *
host_path(Host *h, const char *rel)
{
    return g_build_filename(h->root, rel, NULL);
}

/* One open, one write, one close, like zpcid_dir_write(); 0 or the write's errno. */
static int
sys_write_len(Host *h, const char *rel, const char *data, gsize len)
{
    g_autofree char *path = host_path(h, rel);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n;
    int err = 0;

    g_assert_cmpint(fd, >=, 0);
    n = write(fd, data, len);
    if (n < 0)
        err = errno;
    else
        g_assert_cmpint(n, ==, (gssize)MIN(len, 4096));
    g_assert_cmpint(close(fd), ==, 0);
    return err;
}

static int
sys_write(Host *h, const char *rel, const char *data)
{
    return sys_write_len(h, rel, data, strlen(data));
}

static char *
read_attr(Host *h, const char *rel)
{
    g_autofree char *path = host_path(h, rel);
    char *contents = NULL;

    if (!g_file_get_contents(path, &contents, NULL, NULL))
        return NULL;
    return contents;
}

static gboolean
exists(Host *h, const char *rel)
{
    g_autofree char *path = host_path(h, rel);
    struct stat st;
    return lstat(path, &st) == 0;
}

static char *
link_name(Host *h, const char *rel)
{
    g_autofree char *path = host_path(h, rel);
    g_autofree char *target = g_file_read_link(path, NULL);
    return target != NULL ? g_path_get_basename(target) : NULL;
}

static char *
driver_of(Host *h, const char *addr)
{
    g_autofree char *rel = g_strconcat("sys/bus/pci/devices/", addr, "/driver", NULL);
    return link_name(h, rel);
}

static int
group_of(Host *h, const char *addr)
{
    g_autofree char *rel = g_strconcat("sys/bus/pci/devices/", addr, "/iommu_group", NULL);
    g_autofree char *name = link_name(h, rel);
    g_assert_nonnull(name);
    return atoi(name);
}

static gboolean
vfio_node_exists(Host *h, int group)
{
    g_autofree char *rel = g_strdup_printf("dev/vfio/%d", group);
    return exists(h, rel);
}

static void
set_file(Host *h, const char *rel, const char *contents)
{
    g_autofree char *path = host_path(h, rel);
    g_autoptr(GError) error = NULL;

    g_file_set_contents(path, contents, -1, &error);
    g_assert_no_error(error);
}

static void
assert_attr(Host *h, const char *rel, const char *expected)
{
    g_autofree char *value = read_attr(h, rel);
    g_assert_cmpstr(value, ==, expected);
}

static void
assert_driver(Host *h, const char *addr, const char *expected)
{
    g_autofree char *drv = driver_of(h, addr);
    g_assert_cmpstr(drv, ==, expected);
    if (expected != NULL) {
        g_autofree char *rel = g_strconcat("sys/bus/pci/drivers/", expected, "/", addr, NULL);
        g_assert_true(exists(h, rel));
    }
}

/* ---- driver_override ------------------------------------------------------------------- */

static void
test_override(Host *h, gconstpointer data)
{
    const char *rel = DEV(A_ROCE_UNBOUND, "driver_override");
    g_autofree char *big = NULL;

    assert_attr(h, rel, "(null)\n");
    g_assert_cmpint(sys_write(h, rel, "vfio-pci\n"), ==, 0);
    assert_attr(h, rel, "vfio-pci\n");
    g_assert_cmpint(sys_write(h, rel, "mlx5_core"), ==, 0);
    assert_attr(h, rel, "mlx5_core\n");
    /* Stops at the first newline, as strnchr() in driver_set_override() does. */
    g_assert_cmpint(sys_write(h, rel, "a\nb"), ==, 0);
    assert_attr(h, rel, "a\n");
    g_assert_cmpint(sys_write(h, rel, "\n"), ==, 0);
    assert_attr(h, rel, "(null)\n");

    /* Trailing NULs (Python's habit) do not count; a lone NUL clears. */
    g_assert_cmpint(sys_write_len(h, rel, "vfio-pci\0junk", 13), ==, 0);
    assert_attr(h, rel, "vfio-pci\n");
    g_assert_cmpint(sys_write_len(h, rel, "\0", 1), ==, 0);
    assert_attr(h, rel, "(null)\n");

    /* sysfs never calls the store for an empty write. */
    g_assert_cmpint(sys_write(h, rel, "vfio-pci"), ==, 0);
    g_assert_cmpint(sys_write_len(h, rel, "", 0), ==, 0);
    assert_attr(h, rel, "vfio-pci\n");

    big = g_strnfill(5000, 'x');
    g_assert_cmpint(sys_write_len(h, rel, big, 4095), ==, EINVAL);
    g_assert_cmpint(sys_write_len(h, rel, big, 5000), ==, EINVAL);
    assert_attr(h, rel, "vfio-pci\n");
    g_assert_cmpint(sys_write_len(h, rel, big, 4094), ==, 0);
    {
        g_autofree char *value = read_attr(h, rel);
        g_assert_cmpuint(strlen(value), ==, 4095);
        g_assert_true(value[4094] == '\n');
    }

    /* Writing the override never binds or unbinds. */
    assert_driver(h, A_ROCE_UNBOUND, NULL);
    g_assert_cmpint(sys_write(h, DEV(A_ROCE, "driver_override"), "vfio-pci\n"), ==, 0);
    assert_driver(h, A_ROCE, "mlx5_core");
}

/* ---- unbind ---------------------------------------------------------------------------- */

static void
test_unbind(Host *h, gconstpointer data)
{
    int group = group_of(h, A_NVME_VFIO);

    g_assert_cmpint(sys_write(h, UNBIND("nvme"), A_ROCE), ==, ENODEV);
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), "ffff:00:00.0"), ==, ENODEV);
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), "../../../x"), ==, ENODEV);
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE_UNBOUND), ==, ENODEV);
    assert_driver(h, A_ROCE, "mlx5_core");

    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE "\n"), ==, 0);
    assert_driver(h, A_ROCE, NULL);
    g_assert_false(exists(h, "sys/bus/pci/drivers/mlx5_core/" A_ROCE));
    g_assert_true(exists(h, DEV(A_ROCE, "function_id")));
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, ENODEV);

    g_assert_true(vfio_node_exists(h, group));
    g_assert_cmpint(sys_write(h, UNBIND("vfio-pci"), A_NVME_VFIO), ==, 0);
    assert_driver(h, A_NVME_VFIO, NULL);
    g_assert_false(vfio_node_exists(h, group));
    /* Unbinding leaves the override alone. */
    assert_attr(h, DEV(A_NVME_VFIO, "driver_override"), "vfio-pci\n");
}

/* ---- bind ------------------------------------------------------------------------------ */

static void
test_bind(Host *h, gconstpointer data)
{
    int group = group_of(h, A_ROCE_UNBOUND);

    g_assert_cmpint(sys_write(h, BIND("mlx5_core"), "ffff:00:00.0"), ==, ENODEV);
    /* vfio-pci has no ID table entry for the device and no override names it. */
    g_assert_cmpint(sys_write(h, BIND("vfio-pci"), A_ROCE_UNBOUND), ==, ENODEV);
    assert_driver(h, A_ROCE_UNBOUND, NULL);
    /* An override for another driver stops even the native one. */
    g_assert_cmpint(sys_write(h, DEV(A_ROCE_UNBOUND, "driver_override"), "vfio-pci"), ==, 0);
    g_assert_cmpint(sys_write(h, BIND("mlx5_core"), A_ROCE_UNBOUND), ==, ENODEV);
    assert_driver(h, A_ROCE_UNBOUND, NULL);

    g_assert_cmpint(sys_write(h, BIND("vfio-pci"), A_ROCE_UNBOUND "\n"), ==, 0);
    assert_driver(h, A_ROCE_UNBOUND, "vfio-pci");
    g_assert_true(vfio_node_exists(h, group));
    g_assert_cmpint(sys_write(h, BIND("vfio-pci"), A_ROCE_UNBOUND), ==, EBUSY);

    /* Links are relative and land where the kernel puts them. */
    {
        g_autofree char *p = host_path(h, DEV(A_ROCE_UNBOUND, "driver"));
        g_autofree char *t = g_file_read_link(p, NULL);
        g_autofree char *q = host_path(h, "sys/bus/pci/drivers/vfio-pci/" A_ROCE_UNBOUND);
        g_autofree char *u = g_file_read_link(q, NULL);
        g_assert_cmpstr(t, ==, "../../../bus/pci/drivers/vfio-pci");
        g_assert_cmpstr(u, ==, "../../../../devices/pci0004:00/" A_ROCE_UNBOUND);
    }

    /* Without an override the native driver matches. */
    g_assert_cmpint(sys_write(h, BIND("nvme"), A_NVME_UNBOUND), ==, 0);
    assert_driver(h, A_NVME_UNBOUND, "nvme");
    /* Already bound wins over an ID mismatch only for a matching driver. */
    g_assert_cmpint(sys_write(h, BIND("nvme"), A_NVME), ==, EBUSY);
    g_assert_cmpint(sys_write(h, BIND("mlx5_core"), A_NVME), ==, ENODEV);
    /* A function no driver claims. */
    g_assert_cmpint(sys_write(h, BIND("nvme"), A_UNC), ==, ENODEV);
}

static void
test_bind_vfio_without_group(Host *h, gconstpointer data)
{
    g_autofree char *link = host_path(h, DEV(A_ROCE_UNBOUND, "iommu_group"));

    g_assert_cmpint(unlink(link), ==, 0);
    g_assert_cmpint(sys_write(h, DEV(A_ROCE_UNBOUND, "driver_override"), "vfio-pci"), ==, 0);
    g_assert_cmpint(sys_write(h, BIND("vfio-pci"), A_ROCE_UNBOUND), ==, EINVAL);
    /* The same probe failure is swallowed by drivers_probe. */
    g_assert_cmpint(sys_write(h, PROBE, A_ROCE_UNBOUND), ==, 0);
    assert_driver(h, A_ROCE_UNBOUND, NULL);
}

/* ---- drivers_probe --------------------------------------------------------------------- */

static void
test_probe(Host *h, gconstpointer data)
{
    int group = group_of(h, A_NVME_UNBOUND);

    g_assert_cmpint(sys_write(h, PROBE, "ffff:00:00.0"), ==, ENODEV);
    g_assert_cmpint(sys_write(h, PROBE, ""), ==, 0);

    /* Bound: nothing happens, even with an override for another driver. */
    g_assert_cmpint(sys_write(h, DEV(A_ROCE, "driver_override"), "vfio-pci"), ==, 0);
    g_assert_cmpint(sys_write(h, PROBE, A_ROCE), ==, 0);
    assert_driver(h, A_ROCE, "mlx5_core");

    g_assert_cmpint(sys_write(h, PROBE, A_ROCE_UNBOUND "\n"), ==, 0);
    assert_driver(h, A_ROCE_UNBOUND, "mlx5_core");

    g_assert_cmpint(sys_write(h, DEV(A_NVME_UNBOUND, "driver_override"), "vfio-pci\n"), ==, 0);
    g_assert_cmpint(sys_write(h, PROBE, A_NVME_UNBOUND), ==, 0);
    assert_driver(h, A_NVME_UNBOUND, "vfio-pci");
    g_assert_true(vfio_node_exists(h, group));

    /* No match is still a successful write. */
    g_assert_cmpint(sys_write(h, PROBE, A_UNC), ==, 0);
    assert_driver(h, A_UNC, NULL);
    g_assert_cmpint(sys_write(h, DEV(A_UNC, "driver_override"), "no-such-driver"), ==, 0);
    g_assert_cmpint(sys_write(h, PROBE, A_UNC), ==, 0);
    assert_driver(h, A_UNC, NULL);
}

/* The sequence zpcid runs, there and back. */
static void
test_transaction(Host *h, gconstpointer data)
{
    int group = group_of(h, A_ROCE);

    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, 0);
    g_assert_cmpint(sys_write(h, DEV(A_ROCE, "driver_override"), "vfio-pci"), ==, 0);
    g_assert_cmpint(sys_write(h, PROBE, A_ROCE), ==, 0);
    assert_driver(h, A_ROCE, "vfio-pci");
    g_assert_true(vfio_node_exists(h, group));

    g_assert_cmpint(sys_write(h, UNBIND("vfio-pci"), A_ROCE), ==, 0);
    g_assert_false(vfio_node_exists(h, group));
    g_assert_cmpint(sys_write(h, DEV(A_ROCE, "driver_override"), "\n"), ==, 0);
    g_assert_cmpint(sys_write(h, PROBE, A_ROCE), ==, 0);
    assert_driver(h, A_ROCE, "mlx5_core");
}

/* ---- faults ---------------------------------------------------------------------------- */

static void
test_fault_ebusy(Host *h, gconstpointer data)
{
    g_autofree char *faults = NULL;

    set_file(h, "fixture/faults", "# persistent\n" A_ROCE " unbind errno EBUSY\n");
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, EBUSY);
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, EBUSY);
    assert_driver(h, A_ROCE, "mlx5_core");
    /* Other functions and operations are not affected. */
    g_assert_cmpint(sys_write(h, UNBIND("nvme"), A_NVME), ==, 0);
    g_assert_cmpint(sys_write(h, DEV(A_ROCE, "driver_override"), "vfio-pci"), ==, 0);

    set_file(h, "fixture/faults", A_ROCE " unbind errno EBUSY once\n");
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, EBUSY);
    faults = read_attr(h, "fixture/faults");
    g_assert_cmpstr(faults, ==, "# fired: " A_ROCE " unbind errno EBUSY once\n");
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, 0);
    assert_driver(h, A_ROCE, NULL);
}

static void
test_fault_times(Host *h, gconstpointer data)
{
    g_autofree char *faults = NULL;

    set_file(h, "fixture/faults", A_ROCE " unbind errno 16 times=2\n");
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, EBUSY);
    faults = read_attr(h, "fixture/faults");
    g_assert_cmpstr(faults, ==, A_ROCE " unbind errno 16 times=1\n");
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, EBUSY);
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, 0);
}

/* A fault takes effect only where the kernel would attempt the operation. */
static void
test_fault_after_checks(Host *h, gconstpointer data)
{
    g_autofree char *faults = NULL;

    set_file(h, "fixture/faults", A_ROCE_UNBOUND " unbind errno EBUSY once\n");
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE_UNBOUND), ==, ENODEV);
    faults = read_attr(h, "fixture/faults");
    g_assert_cmpstr(faults, ==, A_ROCE_UNBOUND " unbind errno EBUSY once\n");
}

static void
test_fault_errno_bind_override(Host *h, gconstpointer data)
{
    set_file(h, "fixture/faults",
             A_ROCE_UNBOUND " bind errno EAGAIN\n" A_ROCE " override errno ENOMEM\n");
    g_assert_cmpint(sys_write(h, BIND("mlx5_core"), A_ROCE_UNBOUND), ==, EAGAIN);
    assert_driver(h, A_ROCE_UNBOUND, NULL);
    g_assert_cmpint(sys_write(h, DEV(A_ROCE, "driver_override"), "vfio-pci"), ==, ENOMEM);
    assert_attr(h, DEV(A_ROCE, "driver_override"), "(null)\n");
}

static void
test_fault_probe_nothing(Host *h, gconstpointer data)
{
    set_file(h, "fixture/faults", A_ROCE_UNBOUND " probe nothing\n");
    g_assert_cmpint(sys_write(h, PROBE, A_ROCE_UNBOUND), ==, 0);
    g_assert_cmpint(sys_write(h, PROBE, A_ROCE_UNBOUND), ==, 0);
    assert_driver(h, A_ROCE_UNBOUND, NULL);
    g_assert_cmpint(sys_write(h, PROBE, A_NVME_UNBOUND), ==, 0);
    assert_driver(h, A_NVME_UNBOUND, "nvme");

    /* A wildcard line applies to every function. */
    set_file(h, "fixture/faults", "* probe nothing\n");
    g_assert_cmpint(sys_write(h, UNBIND("nvme"), A_NVME_UNBOUND), ==, 0);
    g_assert_cmpint(sys_write(h, PROBE, A_NVME_UNBOUND), ==, 0);
    assert_driver(h, A_NVME_UNBOUND, NULL);
}

static void
test_fault_wrong(Host *h, gconstpointer data)
{
    set_file(h, "fixture/faults",
             A_ROCE_UNBOUND " probe wrong mlx5_core once\n" A_NVME_UNBOUND
                            " bind wrong vfio-pci\n");
    g_assert_cmpint(sys_write(h, DEV(A_ROCE_UNBOUND, "driver_override"), "vfio-pci"), ==, 0);
    g_assert_cmpint(sys_write(h, PROBE, A_ROCE_UNBOUND), ==, 0);
    assert_driver(h, A_ROCE_UNBOUND, "mlx5_core");
    g_assert_false(vfio_node_exists(h, group_of(h, A_ROCE_UNBOUND)));
    /* Once fired, the next probe after an unbind does what the override says. */
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE_UNBOUND), ==, 0);
    g_assert_cmpint(sys_write(h, PROBE, A_ROCE_UNBOUND), ==, 0);
    assert_driver(h, A_ROCE_UNBOUND, "vfio-pci");

    g_assert_cmpint(sys_write(h, BIND("nvme"), A_NVME_UNBOUND), ==, 0);
    assert_driver(h, A_NVME_UNBOUND, "vfio-pci");
    g_assert_true(vfio_node_exists(h, group_of(h, A_NVME_UNBOUND)));
}

typedef struct {
    Host *h;
    const char *rel;
    const char *data;
    int result;
    gint64 done_at;
} Writer;

static gpointer
writer_thread(gpointer p)
{
    Writer *w = p;
    w->result = sys_write(w->h, w->rel, w->data);
    w->done_at = g_get_monotonic_time();
    return NULL;
}

/* A slow unbind keeps its own function busy but blocks no other function. */
static void
test_fault_delay(Host *h, gconstpointer data)
{
    Writer slow = {h, UNBIND("mlx5_core"), A_ROCE, -1, 0};
    Writer same = {h, DEV(A_ROCE, "driver_override"), "vfio-pci", -1, 0};
    GThread *t_slow, *t_same;
    gint64 start, other_done;

    set_file(h, "fixture/faults", A_ROCE " unbind delay 1500\n");
    start = g_get_monotonic_time();
    t_slow = g_thread_new("slow", writer_thread, &slow);
    g_usleep(200 * 1000);
    t_same = g_thread_new("same", writer_thread, &same);
    g_assert_cmpint(sys_write(h, UNBIND("nvme"), A_NVME), ==, 0);
    g_assert_cmpint(sys_write(h, PROBE, A_ROCE_UNBOUND), ==, 0);
    other_done = g_get_monotonic_time();
    g_thread_join(t_slow);
    g_thread_join(t_same);

    g_assert_cmpint(slow.result, ==, 0);
    g_assert_cmpint(same.result, ==, 0);
    g_assert_cmpint(slow.done_at - start, >=, 1500 * 1000);
    g_assert_cmpint(other_done, <, slow.done_at);
    /* The override of the same function waited for the unbind, which ends after the delay. */
    g_assert_cmpint(same.done_at - start, >=, 1500 * 1000);
    assert_driver(h, A_ROCE, NULL);
    assert_driver(h, A_NVME, NULL);
    assert_driver(h, A_ROCE_UNBOUND, "mlx5_core");
}

static void
test_fault_vanish(Host *h, gconstpointer data)
{
    g_autofree char *fid = read_attr(h, DEV(A_ROCE, "function_id"));
    g_autofree char *slot =
        g_strdup_printf("sys/bus/pci/slots/%08x/power", (guint)g_ascii_strtoull(fid, NULL, 16));
    g_autofree char *group = g_strdup_printf("sys/kernel/iommu_groups/%d", group_of(h, A_ROCE));

    g_assert_true(exists(h, "sys/class/net/eno1"));
    set_file(h, "fixture/faults", A_ROCE " unbind vanish\n");
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, ENODEV);
    g_assert_false(exists(h, "sys/bus/pci/devices/" A_ROCE));
    g_assert_false(exists(h, "sys/devices/pci0001:00/" A_ROCE));
    g_assert_false(exists(h, "sys/bus/pci/drivers/mlx5_core/" A_ROCE));
    g_assert_false(exists(h, "sys/class/net/eno1"));
    g_assert_false(exists(h, group));
    assert_attr(h, slot, "0\n");
    g_assert_cmpint(sys_write(h, PROBE, A_ROCE), ==, ENODEV);
}

static void
test_fault_vanish_after(Host *h, gconstpointer data)
{
    set_file(h, "fixture/faults", A_NVME_UNBOUND " override vanish-after once\n");
    g_assert_cmpint(sys_write(h, DEV(A_NVME_UNBOUND, "driver_override"), "vfio-pci"), ==, 0);
    g_assert_false(exists(h, "sys/bus/pci/devices/" A_NVME_UNBOUND));
    g_assert_cmpint(sys_write(h, PROBE, A_NVME_UNBOUND), ==, ENODEV);
    g_assert_cmpint(sys_write(h, BIND("vfio-pci"), A_NVME_UNBOUND), ==, ENODEV);
}

/* A file opened before the function went away answers ENODEV, like a removed kernfs node. */
static void
test_fault_vanish_stale_fd(Host *h, gconstpointer data)
{
    g_autofree char *path = host_path(h, DEV(A_NVME_IDLE, "driver_override"));
    int fd = open(path, O_WRONLY | O_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    set_file(h, "fixture/faults", A_NVME_IDLE " unbind vanish\n");
    g_assert_cmpint(sys_write(h, UNBIND("nvme"), A_NVME_IDLE), ==, ENODEV);
    g_assert_false(exists(h, "sys/class/block/nvme1n1"));
    g_assert_false(exists(h, "sys/class/block/nvme1n1p1"));
    g_assert_cmpint(write(fd, "vfio-pci", 8), ==, -1);
    g_assert_cmpint(errno, ==, ENODEV);
    g_assert_cmpint(close(fd), ==, 0);
}

static void
test_fault_vanish_pf(Host *h, gconstpointer data)
{
    g_assert_true(exists(h, DEV(A_PF, "virtfn1")));
    set_file(h, "fixture/faults", A_VF2 " probe vanish\n");
    g_assert_cmpint(sys_write(h, PROBE, A_VF2), ==, ENODEV);
    g_assert_false(exists(h, DEV(A_PF, "virtfn1")));
    g_assert_true(exists(h, DEV(A_PF, "virtfn0")));

    set_file(h, "fixture/faults", A_PF " unbind vanish\n");
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_PF), ==, ENODEV);
    g_assert_false(exists(h, "sys/bus/pci/devices/" A_PF));
    g_assert_false(exists(h, "sys/bus/pci/devices/" A_VF1));
    g_assert_false(exists(h, "sys/bus/pci/drivers/mlx5_core/" A_VF1));
}

static void
test_uevents(Host *h, gconstpointer data)
{
    g_autofree char *log = NULL;

    set_file(h, "fixture/uevents", "");
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, 0);
    g_assert_cmpint(sys_write(h, DEV(A_ROCE, "driver_override"), "vfio-pci"), ==, 0);
    g_assert_cmpint(sys_write(h, PROBE, A_ROCE), ==, 0);
    log = read_attr(h, "fixture/uevents");
    g_assert_cmpstr(
        log, ==,
        "ACTION=unbind DEVPATH=/devices/pci0001:00/" A_ROCE " SUBSYSTEM=pci DRIVER=mlx5_core\n"
        "ACTION=bind DEVPATH=/devices/pci0001:00/" A_ROCE " SUBSYSTEM=pci DRIVER=vfio-pci\n");
}

/* Kernel-format datagrams for zpcid --uevent-socket. */
static void
test_uevent_socket(Host *h, gconstpointer data)
{
    g_autofree char *path = g_build_filename(h->dir, "uevent.sock", NULL);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    g_autoptr(GPtrArray) got = g_ptr_array_new_with_free_func(g_free);
    int group = group_of(h, A_ROCE);
    g_autofree char *vfio_add = NULL;
    int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char buf[2048];
    ssize_t n;

    g_assert_cmpint(sock, >=, 0);
    g_assert_cmpuint(strlen(path), <, sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    g_assert_cmpint(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    setenv("ZPCID_SIMKERNEL_UEVENT_SOCKET", path, 1);
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, 0);
    g_assert_cmpint(sys_write(h, DEV(A_ROCE, "driver_override"), "vfio-pci"), ==, 0);
    g_assert_cmpint(sys_write(h, PROBE, A_ROCE), ==, 0);
    unsetenv("ZPCID_SIMKERNEL_UEVENT_SOCKET");

    while ((n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        /* NULs between fields become '|' to compare whole messages. */
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == '\0')
                buf[i] = '|';
        g_ptr_array_add(got, g_strndup(buf, (gsize)n));
    }
    close(sock);
    g_assert_cmpuint(got->len, ==, 3);
    g_assert_cmpstr(got->pdata[0], ==,
                    "unbind@/devices/pci0001:00/" A_ROCE "|ACTION=unbind|DEVPATH=/devices/"
                    "pci0001:00/" A_ROCE "|SUBSYSTEM=pci|PCI_SLOT_NAME=" A_ROCE "|SEQNUM=1|");
    vfio_add = g_strdup_printf("add@/devices/virtual/vfio/%d|ACTION=add|DEVPATH=/devices/"
                               "virtual/vfio/%d|SUBSYSTEM=vfio|DEVNAME=vfio/%d|SEQNUM=2|",
                               group, group, group);
    g_assert_cmpstr(got->pdata[1], ==, vfio_add);
    g_assert_cmpstr(got->pdata[2], ==,
                    "bind@/devices/pci0001:00/" A_ROCE "|ACTION=bind|DEVPATH=/devices/"
                    "pci0001:00/" A_ROCE "|SUBSYSTEM=pci|DRIVER=vfio-pci|PCI_SLOT_NAME=" A_ROCE
                    "|SEQNUM=3|");
}

/* ---- what the shim must leave alone ---------------------------------------------------- */

static void
test_passthrough(Host *h, gconstpointer data)
{
    g_autofree char *outside_dir = g_build_filename(h->dir, "other/sys/bus/pci", NULL);
    g_autofree char *outside = g_build_filename(outside_dir, "drivers_probe", NULL);
    g_autofree char *contents = NULL;
    g_autoptr(GError) error = NULL;
    const char *argv2[] = {"--functions", "2", NULL};
    g_autofree char *root2 = g_build_filename(h->dir, "host2", NULL);
    int fd;

    /* Outside the root. */
    g_assert_cmpint(g_mkdir_with_parents(outside_dir, 0755), ==, 0);
    fd = open(outside, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, A_ROCE_UNBOUND, 12), ==, 12);
    g_assert_cmpint(close(fd), ==, 0);
    g_file_get_contents(outside, &contents, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(contents, ==, A_ROCE_UNBOUND);
    assert_driver(h, A_ROCE_UNBOUND, NULL);

    /* Inside the root but not a binding file. */
    g_assert_cmpint(sys_write(h, "sys/bus/pci/drivers_autoprobe", "0\n"), ==, 0);
    assert_attr(h, "sys/bus/pci/drivers_autoprobe", "0\n");

    /* Another tree is active: this one is plain files again. */
    g_assert_cmpint(mkhost(root2, argv2, NULL), ==, 0);
    setenv(ENV_ROOT, root2, 1);
    g_assert_cmpint(sys_write(h, UNBIND("mlx5_core"), A_ROCE), ==, 0);
    assert_driver(h, A_ROCE, "mlx5_core");
    assert_attr(h, UNBIND("mlx5_core"), A_ROCE);

    /* And with the variable unset nothing is simulated at all. */
    unsetenv(ENV_ROOT);
    g_assert_cmpint(sys_write(h, DEV(A_NVME_UNBOUND, "driver_override"), "vfio-pci\n"), ==, 0);
    assert_attr(h, DEV(A_NVME_UNBOUND, "driver_override"), "vfio-pci\n");
    g_assert_cmpint(sys_write(h, PROBE, A_NVME_UNBOUND), ==, 0);
    assert_driver(h, A_NVME_UNBOUND, NULL);
    assert_attr(h, PROBE, A_NVME_UNBOUND);
}

/* ---- concurrency ----------------------------------------------------------------------- */

typedef struct {
    Host *h;
    GPtrArray *addrs;
    gint next;
    gint ok;
    gint busy;
    gint failed;
} Race;

static gpointer
race_bind_thread(gpointer p)
{
    Race *r = p;
    int err = sys_write(r->h, BIND("mlx5_core"), A_ROCE_UNBOUND);

    if (err == 0)
        g_atomic_int_inc(&r->ok);
    else if (err == EBUSY)
        g_atomic_int_inc(&r->busy);
    else
        g_atomic_int_inc(&r->failed);
    return NULL;
}

static gpointer
race_transaction_thread(gpointer p)
{
    Race *r = p;
    gint i;

    while ((i = g_atomic_int_add(&r->next, 1)) < (gint)r->addrs->len) {
        const char *addr = r->addrs->pdata[i];
        g_autofree char *drv = driver_of(r->h, addr);
        g_autofree char *ov = g_strconcat("sys/bus/pci/devices/", addr, "/driver_override", NULL);
        g_autofree char *after = NULL;
        int err = 0;

        if (drv != NULL) {
            g_autofree char *unbind = g_strconcat("sys/bus/pci/drivers/", drv, "/unbind", NULL);
            err |= sys_write(r->h, unbind, addr);
        }
        err |= sys_write(r->h, ov, "vfio-pci\n");
        err |= sys_write(r->h, PROBE, addr);
        after = driver_of(r->h, addr);
        if (err == 0 && g_strcmp0(after, "vfio-pci") == 0)
            g_atomic_int_inc(&r->ok);
        else
            g_atomic_int_inc(&r->failed);
    }
    return NULL;
}

static void
test_race_bind(Host *h, gconstpointer data)
{
    Race r = {.h = h};
    GThread *threads[8];

    for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
        threads[i] = g_thread_new("bind", race_bind_thread, &r);
    for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
        g_thread_join(threads[i]);
    g_assert_cmpint(r.ok, ==, 1);
    g_assert_cmpint(r.busy, ==, 7);
    g_assert_cmpint(r.failed, ==, 0);
    assert_driver(h, A_ROCE_UNBOUND, "mlx5_core");
}

static void
test_race_transactions(Host *h, gconstpointer data)
{
    g_autofree char *devdir = host_path(h, "sys/bus/pci/devices");
    g_autoptr(GDir) dir = g_dir_open(devdir, 0, NULL);
    g_autoptr(GPtrArray) addrs = g_ptr_array_new_with_free_func(g_free);
    Race r = {.h = h, .addrs = addrs};
    GThread *threads[6];
    const char *name;

    g_assert_nonnull(dir);
    while ((name = g_dir_read_name(dir)) != NULL)
        g_ptr_array_add(addrs, g_strdup(name));
    g_assert_cmpuint(addrs->len, ==, 64);
    for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
        threads[i] = g_thread_new("txn", race_transaction_thread, &r);
    for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
        g_thread_join(threads[i]);
    g_assert_cmpint(r.failed, ==, 0);
    g_assert_cmpint(r.ok, ==, 64);
    for (guint i = 0; i < addrs->len; i++) {
        g_assert_true(vfio_node_exists(h, group_of(h, addrs->pdata[i])));
    }
}

/* ---- mkhost.py ------------------------------------------------------------------------- */

static void
test_mkhost_refuses(void)
{
    const char *const bad[] = {"/", "/sys/zpcid-mkhost-test", "/proc/zpcid-mkhost-test",
                               "/dev/zpcid-mkhost-test", "/etc/zpcid-mkhost-test"};
    const char *const args[] = {"--functions", "1", NULL};
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("simkernel-XXXXXX", &error);
    g_autofree char *full = g_build_filename(dir, "host", NULL);
    g_autofree char *marker = g_build_filename(full, "x", NULL);

    g_assert_no_error(error);
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *err = NULL;
        g_assert_cmpint(mkhost(bad[i], args, &err), !=, 0);
        g_assert_nonnull(strstr(err, "refusing"));
        if (i > 0)
            g_assert_false(g_file_test(bad[i], G_FILE_TEST_EXISTS));
    }
    /* A symlink into /etc is no way around it. */
    {
        g_autofree char *link = g_build_filename(dir, "etc-link", NULL);
        g_autofree char *via = g_build_filename(link, "zpcid-mkhost-test", NULL);
        g_autofree char *err = NULL;
        g_assert_cmpint(symlink("/etc", link), ==, 0);
        g_assert_cmpint(mkhost(via, args, &err), !=, 0);
        g_assert_nonnull(strstr(err, "refusing"));
        unlink(link);
    }
    /* Nor is a non-empty directory overwritten. */
    g_assert_cmpint(g_mkdir_with_parents(full, 0755), ==, 0);
    g_assert_true(g_file_set_contents(marker, "", 0, NULL));
    g_assert_cmpint(mkhost(full, args, NULL), !=, 0);
    rm_rf(dir);
}

static int
diff_trees(const char *a, const char *b)
{
    const char *argv[] = {"diff", "-r", "--no-dereference", "-q", a, b, NULL};
    g_auto(GStrv) env = clean_environ();
    g_autoptr(GError) error = NULL;
    int status = -1;

    g_spawn_sync(NULL, (char **)argv, env, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                 NULL, NULL, NULL, &status, &error);
    g_assert_no_error(error);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_mkhost_deterministic(void)
{
    const char *const args[] = {"--functions", "48",     "--standby", "3", "--pf-with-vfs",
                                "2",           "--seed", "42",        NULL};
    const char *const other[] = {"--functions", "48",     "--standby", "3", "--pf-with-vfs",
                                 "2",           "--seed", "43",        NULL};
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("simkernel-XXXXXX", &error);
    g_autofree char *a = g_build_filename(dir, "a", NULL);
    g_autofree char *b = g_build_filename(dir, "b", NULL);
    g_autofree char *c = g_build_filename(dir, "c", NULL);

    g_assert_no_error(error);
    g_assert_cmpint(mkhost(a, args, NULL), ==, 0);
    g_assert_cmpint(mkhost(b, args, NULL), ==, 0);
    g_assert_cmpint(mkhost(c, other, NULL), ==, 0);
    g_assert_cmpint(diff_trees(a, b), ==, 0);
    g_assert_cmpint(diff_trees(a, c), ==, 1);
    rm_rf(dir);
}

static gboolean
matches(const char *pattern, const char *value)
{
    return value != NULL && g_regex_match_simple(pattern, value, G_REGEX_DOLLAR_ENDONLY, 0);
}

static char *check_root;
static guint check_links;

static int
check_link(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    g_autofree char *target = NULL;
    char *real;

    if (flag != FTW_SL)
        return 0;
    target = g_file_read_link(path, NULL);
    g_assert_nonnull(target);
    if (target[0] == '/')
        g_error("absolute link %s -> %s", path, target);
    real = realpath(path, NULL);
    if (real == NULL || !g_str_has_prefix(real, check_root))
        g_error("link %s -> %s leaves the tree or dangles", path, target);
    free(real);
    check_links++;
    return 0;
}

static void
test_mkhost_formats(Host *h, gconstpointer data)
{
    g_autofree char *devdir = host_path(h, "sys/bus/pci/devices");
    g_autoptr(GDir) dir = g_dir_open(devdir, 0, NULL);
    g_autofree char *slots_path = host_path(h, "sys/bus/pci/slots");
    g_autoptr(GDir) slots = g_dir_open(slots_path, 0, NULL);
    const char *addr;
    guint n = 0, standby = 0, vfs = 0;

    g_assert_nonnull(dir);
    while ((addr = g_dir_read_name(dir)) != NULL) {
        g_autofree char *base = g_strconcat("sys/bus/pci/devices/", addr, "/", NULL);
        g_autofree char *p_fid = g_strconcat(base, "function_id", NULL);
        g_autofree char *fid = read_attr(h, p_fid);
        g_autofree char *p_fh = g_strconcat(base, "function_handle", NULL);
        g_autofree char *fh = read_attr(h, p_fh);
        g_autofree char *p_uid = g_strconcat(base, "uid", NULL);
        g_autofree char *uid = read_attr(h, p_uid);
        g_autofree char *p_index = g_strconcat(base, "index", NULL);
        g_autofree char *index = read_attr(h, p_index);
        g_autofree char *p_physfn = g_strconcat(base, "physfn", NULL);
        g_autofree char *p_override = g_strconcat(base, "driver_override", NULL);
        g_autofree char *override = read_attr(h, p_override);
        g_autofree char *p_util = g_strconcat(base, "util_string", NULL);
        g_autofree char *util_path = host_path(h, p_util);
        g_autofree char *util = NULL;
        g_autofree char *p_fidparm = g_strconcat(base, "fidparm", NULL);
        g_autofree char *drv = driver_of(h, addr);
        g_autofree char *pf = link_name(h, p_physfn);
        g_autofree char *slot = NULL;
        g_autofree char *slot_addr = NULL;
        g_autofree char *group_dev = NULL;
        gsize util_len = 0;
        guint64 uidv = g_ascii_strtoull(uid, NULL, 16);
        guint64 domain = g_ascii_strtoull(addr, NULL, 16);
        static const struct {
            const char *name;
            const char *pattern;
        } fmt[] = {
            {"pchid", "^0x[0-9a-f]{4}\n$"},
            {"pfgid", "^0x[0-9a-f]{2}\n$"},
            {"pft", "^0x[0-9a-f]{2}\n$"},
            {"vfn", "^0x[0-9a-f]{4}\n$"},
            {"port", "^[0-9]+\n$"},
            {"mio_enabled", "^1\n$"},
            {"vendor", "^0x[0-9a-f]{4}\n$"},
            {"device", "^0x[0-9a-f]{4}\n$"},
            {"subsystem_vendor", "^0x[0-9a-f]{4}\n$"},
            {"subsystem_device", "^0x[0-9a-f]{4}\n$"},
            {"class", "^0x[0-9a-f]{6}\n$"},
            {"pfip/segment0", "^0x[0-9a-f]{2}\n$"},
            {"pfip/segment3", "^0x[0-9a-f]{2}\n$"},
            {"uid_is_unique", "^1\n$"},
        };

        n++;
        g_assert_true(matches("^[0-9a-f]{4}:00:[0-9a-f]{2}\\.[0-7]$", addr));
        g_assert_true(matches("^0x[0-9a-f]{8}\n$", fid));
        g_assert_true(matches("^0x8[0-9a-f]{7}\n$", fh));
        g_assert_true(matches("^0x[1-9a-f][0-9a-f]*\n$", uid));
        g_assert_cmpuint(g_ascii_strtoull(index, NULL, 10), ==, uidv);
        g_assert_true(matches("^[0-9]+\n$", index));
        for (gsize i = 0; i < G_N_ELEMENTS(fmt); i++) {
            g_autofree char *rel = g_strconcat(base, fmt[i].name, NULL);
            g_autofree char *value = read_attr(h, rel);
            if (!matches(fmt[i].pattern, value))
                g_error("%s: %s is \"%s\"", addr, fmt[i].name, value);
        }
        g_assert_true(g_file_get_contents(util_path, &util, &util_len, NULL));
        g_assert_cmpuint(util_len, ==, 64);
        g_assert_false(exists(h, p_fidparm)); /* 6.12 has none */
        if (pf == NULL) {
            g_assert_cmpuint(domain, ==, uidv);
        } else {
            vfs++;
            g_assert_cmpuint(domain, ==, g_ascii_strtoull(pf, NULL, 16));
        }
        if (g_strcmp0(drv, "vfio-pci") == 0) {
            g_assert_cmpstr(override, ==, "vfio-pci\n");
            g_assert_true(vfio_node_exists(h, group_of(h, addr)));
        } else {
            g_assert_cmpstr(override, ==, "(null)\n");
        }
        if (drv != NULL)
            assert_driver(h, addr, drv);
        group_dev =
            g_strdup_printf("sys/kernel/iommu_groups/%d/devices/%s", group_of(h, addr), addr);
        g_assert_true(exists(h, group_dev));
        slot =
            g_strdup_printf("sys/bus/pci/slots/%08x/power", (guint)g_ascii_strtoull(fid, NULL, 16));
        assert_attr(h, slot, "1\n");
        slot_addr = g_strdup_printf("sys/bus/pci/slots/%08x/address",
                                    (guint)g_ascii_strtoull(fid, NULL, 16));
        {
            g_autofree char *expect = g_strdup_printf("%.10s\n", addr);
            assert_attr(h, slot_addr, expect);
        }
    }
    g_assert_cmpuint(n, ==, 40);
    g_assert_cmpuint(vfs, ==, 6);
    while ((addr = g_dir_read_name(slots)) != NULL) {
        g_autofree char *rel = g_strdup_printf("sys/bus/pci/slots/%s/power", addr);
        g_autofree char *power = read_attr(h, rel);
        if (g_str_equal(power, "0\n"))
            standby++;
    }
    g_assert_cmpuint(standby, ==, 3);

    /* Drivers, netdevs, disks and the fixture side. */
    g_assert_true(exists(h, "sys/bus/pci/drivers/vfio-pci/bind"));
    g_assert_true(exists(h, "sys/bus/pci/drivers/mlx5_core/new_id"));
    g_assert_true(exists(h, "sys/bus/pci/drivers/nvme/remove_id"));
    g_assert_true(exists(h, "sys/bus/pci/drivers_probe"));
    assert_attr(h, "sys/class/net/eth0/operstate", "up\n");
    g_assert_true(exists(h, DEV("0006:00:00.0", "virtio0/net/eth0")));
    g_assert_true(exists(h, DEV("0007:00:00.0", "virtio1/block/vda/vda1")));
    g_assert_true(exists(h, "sys/class/block/vda"));
    g_assert_true(exists(h, "sys/class/block/nvme0n1p1"));
    g_assert_true(exists(h, "sys/class/block/nvme2n1/holders/dm-0"));
    assert_attr(h, DEV(A_PF, "sriov_numvfs"), "3\n");
    g_assert_true(exists(h, DEV(A_PF, "virtfn2")));
    g_assert_true(exists(h, "sys/module/kvm"));
    g_assert_true(exists(h, "sys/module/vfio_iommu_type1"));
    g_assert_true(exists(h, "dev/kvm"));
    g_assert_true(exists(h, "dev/vfio/vfio"));
    assert_attr(h, "fixture/kvm-check-extension", "221 1\n");
    assert_attr(h, "sys/firmware/uv/prot_virt_host", "0\n");
    assert_attr(h, "sys/firmware/uv/prot_virt_guest", "0\n");
    assert_attr(h, "proc/sys/kernel/osrelease", "6.12.38+deb12-s390x\n");
    assert_attr(h, "proc/sys/kernel/arch", "s390x\n");
    {
        g_autofree char *cpuinfo = read_attr(h, "proc/cpuinfo");
        g_autofree char *sysinfo = read_attr(h, "proc/sysinfo");
        g_autofree char *mountinfo = read_attr(h, "proc/self/mountinfo");
        g_autofree char *swaps = read_attr(h, "proc/swaps");
        g_autofree char *config = read_attr(h, "boot/config-6.12.38+deb12-s390x");
        g_autofree char *dep = read_attr(h, "lib/modules/6.12.38+deb12-s390x/modules.dep");
        g_autofree char *builtin = read_attr(h, "lib/modules/6.12.38+deb12-s390x/modules.builtin");

        g_assert_true(matches("(?m)^features\t: .* sie $", cpuinfo));
        g_assert_true(matches("(?m)^facilities      :( \\d+)* 69 70 71 72( \\d+)*$", cpuinfo));
        g_assert_nonnull(strstr(cpuinfo, "processor 0: version = 00,  identification = "
                                         "123456,  machine = 3931\n"));
        g_assert_null(strstr(sysinfo, "VM00"));
        g_assert_nonnull(strstr(mountinfo, " /srv/data rw,relatime shared:40 - xfs "
                                           "/dev/nvme0n1p1 "));
        g_assert_nonnull(strstr(swaps, "/dev/nvme0n1p2 "));
        g_assert_nonnull(strstr(config, "\nCONFIG_VFIO=m\n"));
        g_assert_nonnull(strstr(config, "\nCONFIG_VFIO_PCI=m\n"));
        g_assert_nonnull(strstr(config, "\nCONFIG_VFIO_PCI_ZDEV_KVM=y\n"));
        g_assert_nonnull(strstr(config, "\nCONFIG_S390_IOMMU=y\n"));
        g_assert_nonnull(strstr(config, "\nCONFIG_KVM=m\n"));
        g_assert_true(matches("(?m)^kernel/drivers/vfio/pci/vfio-pci\\.ko:", dep));
        g_assert_nonnull(builtin);
    }
    {
        g_autofree char *readme = read_attr(h, "README");
        g_assert_nonnull(readme);
        g_assert_cmpuint(strlen(readme), >, 10);
        g_assert_true(strchr(readme, '\n') == readme + strlen(readme) - 1);
    }

    check_root = g_strconcat(h->root, "/", NULL);
    check_links = 0;
    g_assert_cmpint(nftw(h->root, check_link, 16, FTW_PHYS), ==, 0);
    g_assert_cmpuint(check_links, >, 200);
    g_clear_pointer(&check_root, g_free);
}

typedef struct {
    const char *const *args;
    void (*check)(Host *h);
} Variant;

static void
check_kvm(Host *h)
{
    g_autofree char *sysinfo = read_attr(h, "proc/sysinfo");
    g_autofree char *cpuinfo = read_attr(h, "proc/cpuinfo");

    g_assert_nonnull(strstr(sysinfo, "\nVM00 Control Program: KVM/Linux       \n"));
    g_assert_false(matches("(?m)^features.* sie ", cpuinfo));
    g_assert_false(exists(h, "dev/kvm"));
    g_assert_false(exists(h, "sys/module/kvm"));
    assert_attr(h, "fixture/kvm-check-extension", "221 0\n");
    assert_attr(h, DEV("0001:00:00.0", "mio_enabled"), "0\n");
}

static void
check_zvm(Host *h)
{
    g_autofree char *sysinfo = read_attr(h, "proc/sysinfo");
    g_assert_nonnull(strstr(sysinfo, "\nVM00 Control Program: z/VM    7.3.0   \n"));
    assert_attr(h, "fixture/kvm-check-extension", "221 0\n");
}

static void
check_no_vfio(Host *h)
{
    g_autofree char *config = read_attr(h, "boot/config-6.12.38+deb12-s390x");
    g_autofree char *dep = read_attr(h, "lib/modules/6.12.38+deb12-s390x/modules.dep");

    g_assert_nonnull(strstr(config, "\n# CONFIG_VFIO is not set\n"));
    g_assert_null(strstr(dep, "vfio"));
    g_assert_false(exists(h, "sys/bus/pci/drivers/vfio-pci"));
    g_assert_false(exists(h, "sys/module/vfio"));
    g_assert_false(exists(h, "dev/vfio"));
    assert_driver(h, A_NVME_VFIO, NULL);
    assert_attr(h, DEV(A_NVME_VFIO, "driver_override"), "(null)\n");
}

static void
check_vfio_not_loaded(Host *h)
{
    g_autofree char *config = read_attr(h, "boot/config-6.12.38+deb12-s390x");

    g_assert_nonnull(strstr(config, "\nCONFIG_VFIO_PCI=m\n"));
    g_assert_false(exists(h, "sys/bus/pci/drivers/vfio-pci"));
    g_assert_false(exists(h, "sys/module/vfio_pci"));
    assert_driver(h, A_NVME_VFIO, NULL);
}

static void
check_no_zdev_kvm(Host *h)
{
    g_autofree char *config = read_attr(h, "boot/config-6.12.38+deb12-s390x");

    g_assert_nonnull(strstr(config, "\n# CONFIG_VFIO_PCI_ZDEV_KVM is not set\n"));
    assert_attr(h, "fixture/kvm-check-extension", "221 0\n");
    g_assert_true(exists(h, "dev/kvm"));
}

static void
check_old_machine(Host *h)
{
    g_autofree char *cpuinfo = read_attr(h, "proc/cpuinfo");

    g_assert_nonnull(strstr(cpuinfo, "machine = 2964\n"));
    assert_attr(h, "fixture/kvm-check-extension", "221 0\n");
}

static void
check_uid_off(Host *h)
{
    assert_attr(h, "sys/bus/pci/devices/0000:00:00.0/uid_is_unique", "0\n");
    assert_attr(h, "sys/bus/pci/devices/0000:00:00.0/uid", "0x1\n");
    g_assert_true(exists(h, "sys/bus/pci/devices/0003:00:00.0"));
    g_assert_false(exists(h, "sys/bus/pci/devices/0000:00:00.0/index"));
    g_assert_true(exists(h, "sys/class/net/enP0p0s0"));
}

static void
check_se_618(Host *h)
{
    g_autofree char *cmdline = read_attr(h, "proc/cmdline");

    assert_attr(h, "sys/firmware/uv/prot_virt_host", "1\n");
    g_assert_nonnull(strstr(cmdline, "prot_virt=1"));
    assert_attr(h, "sys/firmware/clp/uid_checking", "1\n");
    assert_attr(h, DEV("0001:00:00.0", "fidparm"), "0x00\n");
    g_assert_true(exists(h, "boot/config-6.18.1-s390x"));
}

static void
test_mkhost_variant(gconstpointer data)
{
    const Variant *v = data;
    Host h = {0};

    host_setup(&h, v->args);
    unsetenv(ENV_ROOT);
    v->check(&h);
    host_teardown(&h, NULL);
}

static void
test_mkhost_large(void)
{
    const char *const args[] = {"--functions", "4096",   "--standby", "16", "--pf-with-vfs",
                                "8",           "--seed", "9",         NULL};
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *root = NULL;
    g_autofree char *devs = NULL;
    g_autoptr(GDir) d = NULL;
    guint n = 0;
    gint64 start;

    if (!g_test_slow()) {
        g_test_skip("4096 functions: run with -m slow");
        return;
    }
    dir = g_dir_make_tmp("simkernel-XXXXXX", &error);
    g_assert_no_error(error);
    root = g_build_filename(dir, "host", NULL);
    start = g_get_monotonic_time();
    g_assert_cmpint(mkhost(root, args, NULL), ==, 0);
    g_test_message("mkhost.py: 4096 functions in %.1f s", (g_get_monotonic_time() - start) / 1e6);
    devs = g_build_filename(root, "sys/bus/pci/devices", NULL);
    d = g_dir_open(devs, 0, &error);
    g_assert_no_error(error);
    while (g_dir_read_name(d) != NULL)
        n++;
    g_assert_cmpuint(n, ==, 4096);
    rm_rf(dir);
}

int
main(int argc, char **argv)
{
    static const char *const pf_args[] = {"--functions", "16", "--pf-with-vfs", "1", NULL};
    static const char *const race_args[] = {"--functions", "64", "--seed", "3", NULL};
    static const char *const fmt_args[] = {
        "--functions", "40", "--pf-with-vfs", "2", "--vfs-per-pf", "3", "--standby", "3", "--seed",
        "5",           NULL};
    static const char *const kvm_args[] = {"--functions", "4", "--hypervisor", "kvm", NULL};
    static const char *const zvm_args[] = {"--functions", "4", "--hypervisor", "zvm", NULL};
    static const char *const novfio_args[] = {"--functions", "6", "--no-vfio", NULL};
    static const char *const unloaded_args[] = {"--functions", "6", "--vfio-not-loaded", NULL};
    static const char *const nozdev_args[] = {"--functions", "4", "--no-zdev-kvm", NULL};
    static const char *const old_args[] = {"--functions", "4", "--machine", "2964", NULL};
    static const char *const uidoff_args[] = {"--functions", "4", "--uid-checking", "off", NULL};
    static const char *const se_args[] = {"--functions",  "4", "--se-host", "--kernel",
                                          "6.18.1-s390x", NULL};
    static const Variant variants[] = {
        {kvm_args, check_kvm},
        {zvm_args, check_zvm},
        {novfio_args, check_no_vfio},
        {unloaded_args, check_vfio_not_loaded},
        {nozdev_args, check_no_zdev_kvm},
        {old_args, check_old_machine},
        {uidoff_args, check_uid_off},
        {se_args, check_se_618},
    };
    static const char *const variant_names[] = {
        "kvm",         "zvm",         "no-vfio",          "vfio-not-loaded",
        "no-zdev-kvm", "old-machine", "uid-checking-off", "se-host-6.18",
    };

    g_test_init(&argc, &argv, NULL);

    if (mkhost_script() == NULL) {
        g_printerr("ZPCID_MKHOST is not set; run through meson test\n");
        return 77;
    }

#define HOST_TEST(path, fn, args)                                                                  \
    g_test_add("/simkernel/" path, Host, args, host_setup, fn, host_teardown)
    HOST_TEST("override", test_override, NULL);
    HOST_TEST("unbind", test_unbind, NULL);
    HOST_TEST("bind", test_bind, NULL);
    HOST_TEST("bind-vfio-without-group", test_bind_vfio_without_group, NULL);
    HOST_TEST("probe", test_probe, NULL);
    HOST_TEST("transaction", test_transaction, NULL);
    HOST_TEST("fault/errno-ebusy", test_fault_ebusy, NULL);
    HOST_TEST("fault/times", test_fault_times, NULL);
    HOST_TEST("fault/after-checks", test_fault_after_checks, NULL);
    HOST_TEST("fault/errno-bind-override", test_fault_errno_bind_override, NULL);
    HOST_TEST("fault/probe-nothing", test_fault_probe_nothing, NULL);
    HOST_TEST("fault/wrong-driver", test_fault_wrong, NULL);
    HOST_TEST("fault/delay", test_fault_delay, NULL);
    HOST_TEST("fault/vanish", test_fault_vanish, NULL);
    HOST_TEST("fault/vanish-after", test_fault_vanish_after, NULL);
    HOST_TEST("fault/vanish-stale-fd", test_fault_vanish_stale_fd, NULL);
    HOST_TEST("fault/vanish-pf", test_fault_vanish_pf, pf_args);
    HOST_TEST("uevents", test_uevents, NULL);
    HOST_TEST("uevent-socket", test_uevent_socket, NULL);
    HOST_TEST("passthrough", test_passthrough, NULL);
    HOST_TEST("race/bind", test_race_bind, NULL);
    HOST_TEST("race/transactions", test_race_transactions, race_args);
    g_test_add("/mkhost/formats", Host, fmt_args, host_setup, test_mkhost_formats, host_teardown);
#undef HOST_TEST
    g_test_add_func("/mkhost/refuses", test_mkhost_refuses);
    g_test_add_func("/mkhost/deterministic", test_mkhost_deterministic);
    for (gsize i = 0; i < G_N_ELEMENTS(variants); i++) {
        g_autofree char *path = g_strconcat("/mkhost/variant/", variant_names[i], NULL);
        g_test_add_data_func(path, &variants[i], test_mkhost_variant);
    }
    g_test_add_func("/mkhost/large", test_mkhost_large);
    return g_test_run();
}
