/* The floor of a cold inventory: replays the accesses bench-scan traced (the same files,
 * links and directories, in the same order) with nothing but the system calls, relative to
 * the host root and to the directory last opened, as a minimal C reader would.
 *
 *   bench-floor HOST_ROOT TRACE_FILE REPEAT   prints a JSON array of seconds */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "bench-clock.h"

typedef struct {
    char kind;
    char *dir;  /* relative to the root, "." for the root itself */
    char *name; /* last component */
    char *rel;  /* whole path relative to the root */
} Access;

static double
replay(int root, const Access *a, size_t n)
{
    static char buf[4097];
    const char *cached = NULL;
    int dirfd = -1;
    double t0 = bench_now();

    for (size_t i = 0; i < n; i++) {
        int fd;

        switch (a[i].kind) {
        case 'O':
        case 'D':
            fd = openat(root, a[i].rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0)
                break;
            if (a[i].kind == 'D') {
                DIR *d = fdopendir(fd);
                while (readdir(d) != NULL)
                    ;
                closedir(d);
                break;
            }
            if (dirfd >= 0)
                close(dirfd);
            dirfd = fd;
            cached = a[i].rel;
            break;
        case 'R':
        case 'L':
        case 'S':
            if (cached == NULL || strcmp(cached, a[i].dir) != 0) {
                if (dirfd >= 0)
                    close(dirfd);
                dirfd = openat(root, a[i].dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                cached = a[i].dir;
            }
            if (a[i].kind == 'R') {
                fd = openat(dirfd, a[i].name, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                    while (read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf))
                        ;
                    close(fd);
                }
            } else if (a[i].kind == 'L') {
                (void)readlinkat(dirfd, a[i].name, buf, sizeof(buf));
            } else {
                struct stat st;
                (void)fstatat(dirfd, a[i].name, &st, AT_SYMLINK_NOFOLLOW);
            }
            break;
        }
    }
    if (dirfd >= 0)
        close(dirfd);
    return bench_now() - t0;
}

int
main(int argc, char **argv)
{
    FILE *f;
    char *line = NULL;
    size_t cap = 0, n = 0, alloc = 1024;
    Access *a = malloc(alloc * sizeof(*a));
    size_t rootlen;
    int root, repeat;

    if (argc != 4) {
        fprintf(stderr, "usage: bench-floor HOST_ROOT TRACE_FILE REPEAT\n");
        return 2;
    }
    rootlen = strlen(argv[1]);
    root = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
    f = fopen(argv[2], "r");
    if (root < 0 || f == NULL) {
        perror("bench-floor");
        return 1;
    }
    repeat = atoi(argv[3]);
    while (getline(&line, &cap, f) > 0) {
        char *path = line + 2, *slash;
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(path, argv[1], rootlen) != 0)
            continue;
        path += rootlen;
        while (*path == '/')
            path++;
        if (n == alloc)
            a = realloc(a, (alloc *= 2) * sizeof(*a));
        a[n].kind = line[0];
        a[n].rel = strdup(*path != '\0' ? path : ".");
        slash = strrchr(a[n].rel, '/');
        a[n].dir = slash != NULL ? strndup(a[n].rel, (size_t)(slash - a[n].rel)) : strdup(".");
        a[n].name = strdup(slash != NULL ? slash + 1 : a[n].rel);
        n++;
    }
    fclose(f);
    printf("[");
    for (int i = 0; i < repeat; i++)
        printf("%s%.6f", i > 0 ? ", " : "", replay(root, a, n));
    printf("]\n");
    return 0;
}
