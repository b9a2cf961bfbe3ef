/* Runs a fuzz target over the files of its seed corpus, so that the targets are plain tests
 * in every build; with -Dfuzzing=true libFuzzer provides main() instead. */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static guint
run_path(const char *path)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *contents = NULL;
    gsize len;
    guint runs = 0;

    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_autoptr(GDir) dir = g_dir_open(path, 0, &error);
        const char *name;

        if (dir == NULL) {
            g_printerr("%s\n", error->message);
            return 0;
        }
        while ((name = g_dir_read_name(dir)) != NULL) {
            g_autofree char *child = g_build_filename(path, name, NULL);
            runs += run_path(child);
        }
        return runs;
    }
    if (!g_file_get_contents(path, &contents, &len, &error)) {
        g_printerr("%s\n", error->message);
        return 0;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)contents, len);
    return 1;
}

int
main(int argc, char **argv)
{
    guint runs = 0;

    for (int i = 1; i < argc; i++)
        runs += run_path(argv[i]);
    /* A corpus that replays nothing would be a test that cannot fail. */
    if (runs == 0) {
        printf("1..1\nnot ok 1 - no corpus input was replayed\n");
        return 1;
    }
    printf("1..1\nok 1 - replayed %u inputs\n", runs);
    return 0;
}
