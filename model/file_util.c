// mkdir -p, atomic writes and small-file reads; the contract is in file_util.h.
#include "file_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int make_directories(const char *dir, ErrorMessage *err) {
    char path[FILE_PATH_BYTES];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return fail(err, "%s: path too long", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return fail(err, "%s: cannot create directory: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return fail(err, "%s: cannot create directory: %s", path, strerror(errno));
    struct stat info;
    if (stat(path, &info) != 0 || !S_ISDIR(info.st_mode)) return fail(err, "%s: not a directory", dir);
    return 0;
}

int temp_path_for(const char *path, char *out, size_t size, ErrorMessage *err) {
    int length = snprintf(out, size, "%s.tmp-%ld", path, (long)getpid());
    if (length < 0 || (size_t)length >= size) return fail(err, "%s: path too long", path);
    return 0;
}

int atomic_file_open(AtomicFile *f, const char *path, ErrorMessage *err) {
    f->file = NULL;
    if (snprintf(f->path, sizeof f->path, "%s", path) >= (int)sizeof f->path) return fail(err, "%s: path too long", path);
    if (temp_path_for(path, f->temp, sizeof f->temp, err)) return -1;
    f->file = fopen(f->temp, "wb");
    if (!f->file) return fail(err, "%s: cannot create: %s", f->temp, strerror(errno));
    return 0;
}

int atomic_file_commit(AtomicFile *f, ErrorMessage *err) {
    int failed = ferror(f->file);
    int error = failed ? EIO : 0;
    if (fclose(f->file) != 0 && !failed) {
        failed = 1;
        error = errno;
    }
    f->file = NULL;
    if (failed) {
        remove(f->temp);
        return fail(err, "%s: write failed: %s", f->temp, strerror(error));
    }
    if (rename(f->temp, f->path) != 0) {
        error = errno;
        remove(f->temp);
        return fail(err, "%s: cannot rename into place: %s", f->path, strerror(error));
    }
    return 0;
}

void atomic_file_abandon(AtomicFile *f) {
    if (f->file) fclose(f->file);
    f->file = NULL;
    remove(f->temp);
}

int write_file_atomically(const char *path, const void *data, size_t length, ErrorMessage *err) {
    AtomicFile f;
    if (atomic_file_open(&f, path, err)) return -1;
    if (fwrite(data, 1, length, f.file) != length) {
        int error = errno;
        atomic_file_abandon(&f);
        return fail(err, "%s: write failed: %s", f.temp, strerror(error));
    }
    return atomic_file_commit(&f, err);
}

char *read_text_file(const char *path, size_t limit, ErrorMessage *err) {
    FILE *file = fopen(path, "rb");
    if (!file) {
        fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    // Sized by the file, not the limit: a 64 MB buffer for a 20 KB index is wasted on every open.
    struct stat info;
    size_t capacity = fstat(fileno(file), &info) == 0 && info.st_size >= 0 && (size_t)info.st_size < limit
                          ? (size_t)info.st_size + 1
                          : limit + 1;
    char *text = malloc(capacity + 1);
    if (!text) {
        fclose(file);
        fail(err, "%s: out of memory", path);
        return NULL;
    }
    size_t length = fread(text, 1, capacity, file);
    int read_error = ferror(file);
    fclose(file);
    if (read_error || length > limit) {
        free(text);
        if (read_error) fail(err, "%s: read error", path);
        else fail(err, "%s: larger than %zu bytes", path, limit);
        return NULL;
    }
    text[length] = '\0';
    return text;
}
