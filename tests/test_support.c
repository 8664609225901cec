#include "test_support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../model/synth.h"

char *test_make_temp_dir(const char *label) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    size_t length = strlen(base) + strlen(label) + 32;
    char *path = malloc(length);
    cr_assert_not_null(path);
    snprintf(path, length, "%s/fusecheck-%s-XXXXXX", base, label);
    cr_assert_not_null(mkdtemp(path), "mkdtemp %s: %s", path, strerror(errno));
    return path;
}

char *test_path_join(const char *dir, const char *name) {
    size_t length = strlen(dir) + strlen(name) + 2;
    char *path = malloc(length);
    cr_assert_not_null(path);
    snprintf(path, length, "%s/%s", dir, name);
    return path;
}

void test_write_file(const char *path, const void *data, size_t size) {
    FILE *file = fopen(path, "wb");
    cr_assert_not_null(file, "open %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, size, file), size, "write %s", path);
    cr_assert_eq(fclose(file), 0, "close %s", path);
}

char *test_read_file(const char *path, size_t *size) {
    FILE *file = fopen(path, "rb");
    cr_assert_not_null(file, "open %s: %s", path, strerror(errno));
    cr_assert_eq(fseek(file, 0, SEEK_END), 0);
    long length = ftell(file);
    cr_assert_geq(length, 0);
    rewind(file);
    char *data = malloc((size_t)length + 1);
    cr_assert_not_null(data);
    cr_assert_eq(fread(data, 1, (size_t)length, file), (size_t)length, "read %s", path);
    fclose(file);
    data[length] = '\0';
    if (size) *size = (size_t)length;
    return data;
}

char *test_synth_checkpoint(const char *preset, uint64_t seed) {
    ModelConfig config;
    ErrorMessage err;
    cr_assert_eq(synth_preset(preset, &config, &err), 0, "%s", err.text);
    char *dir = test_make_temp_dir(preset);
    cr_assert_eq(synth_write(&config, seed, dir, &err), 0, "%s", err.text);
    return dir;
}

int test_run_cli(const char *args, char **output) {
    const char *binary = getenv("FUSECHECK_BIN");
    cr_assert_not_null(binary, "FUSECHECK_BIN is not set (run the tests through ctest)");
    char *capture = NULL;
    char command[8192];
    if (output) {
        char *dir = test_make_temp_dir("cli");
        capture = test_path_join(dir, "output.txt");
        free(dir);
        snprintf(command, sizeof command, "'%s' %s > '%s' 2>&1", binary, args, capture);
    } else {
        snprintf(command, sizeof command, "'%s' %s > /dev/null 2>&1", binary, args);
    }
    int status = system(command);
    cr_assert_neq(status, -1, "system(%s) failed", command);
    if (output) {
        *output = test_read_file(capture, NULL);
        unlink(capture);
        free(capture);
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

void test_fill_random(float *x, size_t n, uint64_t seed, float scale) {
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        double unit = (double)(state >> 11) / 9007199254740992.0;  // [0, 1)
        x[i] = (float)((2.0 * unit - 1.0) * scale);
    }
}
