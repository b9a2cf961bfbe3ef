/* GetManagedObjects as an sd-bus client sees it: sends the call to a running zpcid, reads
 * the whole reply (every object path, interface name, property name and value) and times
 * each call from sending to the end of that walk. GLib's client turns the reply into
 * GVariants, which at thousands of functions costs more than the daemon's own work; sd-bus
 * reads the message in place, so this is the closer measure of what zpcid itself costs.
 * Every call must list exactly as many functions as the Manager's FunctionCount, so the
 * measurement cannot pass without receiving the data.
 *
 * Prints one JSON object: the sorted samples in seconds, the objects, interfaces and
 * properties of the last reply, and the CPU per call of the daemon (its pid from
 * the bus) and of this client.
 *
 *   bench-gmo BUS_ADDRESS ITERATIONS */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "zpcid-names.h"
#include "bench-clock.h"

#define TIMEOUT_USEC (60ULL * 1000 * 1000)

static void
check(int r, const char *what)
{
    if (r < 0) {
        fprintf(stderr, "bench-gmo: %s: %s\n", what, strerror(-r));
        exit(1);
    }
}

/* User and system CPU time of process @pid so far, all its threads. */
static double
cpu_seconds_of(uint32_t pid)
{
    char file[64], buf[4096];
    unsigned long long utime, stime;
    const char *p;
    FILE *f;
    size_t len;

    snprintf(file, sizeof(file), "/proc/%" PRIu32 "/stat", pid);
    if ((f = fopen(file, "re")) == NULL)
        check(-errno, file);
    len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    /* comm may contain spaces; after "pid (comm) " state is field 3, utime 14, stime 15. */
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        check(-EINVAL, file);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

typedef struct {
    unsigned objects;
    unsigned functions;
    unsigned interfaces;
    unsigned properties;
} Walk;

/* Reads every entry of a{oa{sa{sv}}}. The values are skipped, which still reads and
 * validates each of them: sd-bus checks strings, object paths and signatures as it goes. */
static void
walk_reply(sd_bus_message *m, Walk *w)
{
    int r;

    check(sd_bus_message_enter_container(m, 'a', "{oa{sa{sv}}}"), "reply");
    while ((r = sd_bus_message_enter_container(m, 'e', "oa{sa{sv}}")) > 0) {
        const char *path;

        check(sd_bus_message_read_basic(m, 'o', &path), "object path");
        check(sd_bus_message_enter_container(m, 'a', "{sa{sv}}"), "interfaces");
        while ((r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
            const char *iface;

            check(sd_bus_message_read_basic(m, 's', &iface), "interface");
            if (strcmp(iface, ZPCID_DBUS_IFACE_FUNCTION) == 0)
                w->functions++;
            check(sd_bus_message_enter_container(m, 'a', "{sv}"), "properties");
            while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name;

                check(sd_bus_message_read_basic(m, 's', &name), "property name");
                check(sd_bus_message_skip(m, "v"), name);
                check(sd_bus_message_exit_container(m), "property");
                w->properties++;
            }
            check(r, "property");
            check(sd_bus_message_exit_container(m), "properties");
            check(sd_bus_message_exit_container(m), "interface");
            w->interfaces++;
        }
        check(r, "interface");
        check(sd_bus_message_exit_container(m), "interfaces");
        check(sd_bus_message_exit_container(m), "object");
        w->objects++;
    }
    check(r, "object");
    check(sd_bus_message_exit_container(m), "reply");
    if (!sd_bus_message_at_end(m, 1))
        check(-EBADMSG, "data after the reply");
}

static int
compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The pid of the connection owning @name ("org.freedesktop.DBus" is the bus daemon). */
static uint32_t
pid_of(sd_bus *bus, const char *name)
{
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    uint32_t pid;

    if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "GetConnectionUnixProcessID", &error, &reply,
                           "s", name) < 0) {
        fprintf(stderr, "bench-gmo: the pid of %s: %s\n", name, error.message);
        exit(1);
    }
    check(sd_bus_message_read(reply, "u", &pid), "GetConnectionUnixProcessID");
    sd_bus_message_unref(reply);
    return pid;
}

int
main(int argc, char **argv)
{
    sd_bus *bus = NULL;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    uint32_t count, pid, bus_pid;
    double *samples, daemon_cpu, bus_cpu, client_cpu;
    Walk w = {0};
    int n;

    if (argc != 3 || (n = atoi(argv[2])) < 1) {
        fprintf(stderr, "usage: bench-gmo BUS_ADDRESS ITERATIONS\n");
        return 2;
    }
    samples = calloc((size_t)n, sizeof(double));
    check(samples != NULL ? 0 : -ENOMEM, "calloc");
    check(sd_bus_new(&bus), "sd_bus_new");
    check(sd_bus_set_address(bus, argv[1]), argv[1]);
    check(sd_bus_set_bus_client(bus, 1), "sd_bus_set_bus_client");
    check(sd_bus_start(bus), argv[1]);

    if (sd_bus_get_property_trivial(bus, ZPCID_DBUS_NAME, ZPCID_DBUS_PATH, ZPCID_DBUS_IFACE_MANAGER,
                                    "FunctionCount", &error, 'u', &count) < 0) {
        fprintf(stderr, "bench-gmo: FunctionCount: %s\n", error.message);
        return 1;
    }
    pid = pid_of(bus, ZPCID_DBUS_NAME);
    bus_pid = pid_of(bus, "org.freedesktop.DBus");

    daemon_cpu = cpu_seconds_of(pid);
    bus_cpu = cpu_seconds_of(bus_pid);
    client_cpu = bench_own_cpu_seconds();
    for (int i = 0; i < n; i++) {
        sd_bus_message *call = NULL;
        double t0;

        check(sd_bus_message_new_method_call(bus, &call, ZPCID_DBUS_NAME, ZPCID_DBUS_PATH,
                                             "org.freedesktop.DBus.ObjectManager",
                                             "GetManagedObjects"),
              "GetManagedObjects");
        t0 = bench_now();
        if (sd_bus_call(bus, call, TIMEOUT_USEC, &error, &reply) < 0) {
            fprintf(stderr, "bench-gmo: GetManagedObjects: %s\n", error.message);
            return 1;
        }
        w = (Walk){0};
        walk_reply(reply, &w);
        samples[i] = bench_now() - t0;
        call = sd_bus_message_unref(call);
        reply = sd_bus_message_unref(reply);
        if (w.functions != count || w.objects != count) {
            fprintf(stderr,
                    "bench-gmo: GetManagedObjects listed %u objects, %u functions; "
                    "FunctionCount is %" PRIu32 "\n",
                    w.objects, w.functions, count);
            return 1;
        }
    }
    daemon_cpu = (cpu_seconds_of(pid) - daemon_cpu) / n;
    bus_cpu = (cpu_seconds_of(bus_pid) - bus_cpu) / n;
    client_cpu = (bench_own_cpu_seconds() - client_cpu) / n;

    qsort(samples, (size_t)n, sizeof(double), compare_double);
    printf("{\"samples\": [");
    for (int i = 0; i < n; i++)
        printf("%s%.7f", i > 0 ? ", " : "", samples[i]);
    printf("], \"objects\": %u, \"interfaces\": %u, \"properties\": %u, "
           "\"function_count\": %" PRIu32 ", \"daemon_cpu\": %.6f, \"bus_cpu\": %.6f, "
           "\"client_cpu\": %.6f}\n",
           w.objects, w.interfaces, w.properties, count, daemon_cpu, bus_cpu, client_cpu);
    free(samples);
    sd_bus_flush_close_unref(bus);
    return 0;
}
