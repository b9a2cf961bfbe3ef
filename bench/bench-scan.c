/* zpcid's cold inventory, timed in process; or the list of every access it makes, which
 * bench-floor replays as the floor of the same work.
 *
 *   bench-scan time HOST_ROOT REPEAT   prints a JSON array of seconds, one per scan
 *   bench-scan trace HOST_ROOT         prints "KIND PATH" per access (O open dir, R read,
 *                                      L read link, D list, S stat) */
#include <glib.h>
#include <stdlib.h>

#include "inventory.h"

static void
on_access(ZpcidHostAccess access, const char *path, gpointer user_data)
{
    static const char kinds[] = {
        [ZPCID_HOST_ACCESS_OPEN_DIR] = 'O',  [ZPCID_HOST_ACCESS_READ] = 'R',
        [ZPCID_HOST_ACCESS_READ_LINK] = 'L', [ZPCID_HOST_ACCESS_LIST] = 'D',
        [ZPCID_HOST_ACCESS_STAT] = 'S',
    };
    g_print("%c %s\n", kinds[access], path);
}

static double
scan_once(const char *root)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidHost) host = NULL;
    g_autoptr(ZpcidInventory) inv = NULL;
    gint64 t0 = g_get_monotonic_time();

    host = zpcid_host_new(root, &error);
    if (host == NULL)
        g_error("%s", error->message);
    inv = zpcid_inventory_new(host);
    if (!zpcid_inventory_scan(inv, &error))
        g_error("%s", error->message);
    return (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
}

int
main(int argc, char **argv)
{
    if (argc == 3 && g_str_equal(argv[1], "trace")) {
        zpcid_host_set_trace(on_access, NULL);
        scan_once(argv[2]);
        return 0;
    }
    if (argc == 4 && g_str_equal(argv[1], "time")) {
        int repeat = atoi(argv[3]);
        g_print("[");
        for (int i = 0; i < repeat; i++)
            g_print("%s%.6f", i > 0 ? ", " : "", scan_once(argv[2]));
        g_print("]\n");
        return 0;
    }
    g_printerr("usage: bench-scan time HOST_ROOT REPEAT | bench-scan trace HOST_ROOT\n");
    return 2;
}
