// Output path checks made before any work. Contract in output_path.h.
#include "output_path.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Creates and removes a probe file in `dir`: 0 when that works.
static int can_create_in(const char *flag, const char *dir, ErrorMessage *err) {
    char probe[4096];
    int length = snprintf(probe, sizeof probe, "%s/.fusecheck-probe-%ld", dir, (long)getpid());
    if (length < 0 || (size_t)length >= sizeof probe) return fail(err, "%s: path '%s' is too long", flag, dir);
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return fail(err, "%s: cannot create files in directory '%s': %s", flag, dir, strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

// The directory part of `path` ("." when it has none), malloc'd.
static char *directory_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    size_t length = (size_t)(slash - path);
    char *dir = malloc(length + 1);
    if (dir) {
        memcpy(dir, path, length);
        dir[length] = '\0';
    }
    return dir;
}

int output_file_check(const char *flag, const char *path, ErrorMessage *err) {
    struct stat info;
    size_t length = strlen(path);
    if (length == 0) return fail(err, "%s: empty path", flag);
    if (path[length - 1] == '/' || (stat(path, &info) == 0 && S_ISDIR(info.st_mode)))
        return fail(err, "%s: '%s' is a directory, not a file", flag, path);
    char *dir = directory_of(path);
    if (!dir) return fail(err, "%s: out of memory", flag);
    int status = -1;
    if (stat(dir, &info) != 0) {
        if (errno == ENOENT) fail(err, "%s: directory '%s' does not exist", flag, dir);
        else fail(err, "%s: directory '%s': %s", flag, dir, strerror(errno));
    } else if (!S_ISDIR(info.st_mode)) {
        fail(err, "%s: '%s' is not a directory", flag, dir);
    } else {
        status = can_create_in(flag, dir, err);
    }
    free(dir);
    return status;
}

int output_dir_check(const char *flag, const char *dir, ErrorMessage *err) {
    if (!*dir) return fail(err, "%s: empty path", flag);
    char *existing = strdup(dir);
    if (!existing) return fail(err, "%s: out of memory", flag);
    int status = -1;
    struct stat info;
    // Walk up to the nearest ancestor that exists: that is where the first mkdir will happen.
    while (stat(existing, &info) != 0) {
        if (errno != ENOENT) {
            fail(err, "%s: '%s': %s", flag, existing, strerror(errno));
            goto done;
        }
        char *parent = directory_of(existing);
        if (!parent) { fail(err, "%s: out of memory", flag); goto done; }
        int same = !strcmp(parent, existing);
        free(existing);
        existing = parent;
        if (same) break;
    }
    if (!S_ISDIR(info.st_mode)) fail(err, "%s: '%s' is not a directory", flag, existing);
    else status = can_create_in(flag, existing, err);
done:
    free(existing);
    return status;
}
