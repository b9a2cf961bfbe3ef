/* Helpers shared by the GTest programs. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* tests/data in the source tree (from $ZPCID_TEST_DATA). */
const char *test_data_dir(void);
/* Path of a fixture host tree by name. */
char *test_host_path(const char *name);
/* Copies a fixture host into a fresh temporary directory (symlinks kept) and returns it. */
char *test_copy_host(const char *name);
void test_remove_tree(const char *path);
/* Compares @actual with the golden file @path, or rewrites it when ZPCID_TEST_REGENERATE=1. */
void test_assert_golden(const char *path, const char *actual);
/* Writes @contents to @root/@rel, creating parent directories. */
void test_write_file(const char *root, const char *rel, const char *contents, gssize len);
/* The process ids (GPid) of the live children of @pid, from /proc (zombies left out). */
GArray *test_children_of(GPid pid);

G_END_DECLS
