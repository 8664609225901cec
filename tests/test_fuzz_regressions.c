// Replays every committed fuzz input (tests/fuzz/corpus/<target>/ and tests/fuzz/regressions/<target>/)
// through the entry points the libFuzzer harnesses use. Each input must be accepted, or refused with
// -1 and one line naming the file it came in; a crash, a sanitizer report or an abort fails the test.
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
// tests/CMakeLists.txt builds one source per test; the harnesses' entry points come in directly.
#include "fuzz/fuzz_targets.c"

typedef int (*FuzzEntry)(const uint8_t *data, size_t size, const char *scratch_dir, ErrorMessage *err);

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Runs `entry` on every file of `folder` (relative to the repo root); returns how many it ran.
static int replay_folder(const char *folder, const char *target, FuzzEntry entry) {
    DIR *dir = opendir(folder);
    if (!dir) return 0;  // a target may have no regressions yet
    char *names[512];
    int n = 0;
    struct dirent *item;
    while ((item = readdir(dir)) && n < 512)
        if (item->d_name[0] != '.') names[n++] = strdup(item->d_name);
    closedir(dir);
    qsort(names, (size_t)n, sizeof *names, compare_strings);
    for (int i = 0; i < n; i++) {
        char *input_path = test_path_join(folder, names[i]);
        size_t size = 0;
        char *bytes = test_read_file(input_path, &size);
        // A fresh scratch directory per input: no state leaks from one input into the next.
        char *scratch = test_make_temp_dir(target);
        ErrorMessage err = {{0}};
        if (!strcmp(target, "index")) cr_assert_eq(fuzz_write_shards(scratch, &err), 0, "%s", err.text);
        int status = entry((const uint8_t *)bytes, size, scratch, &err);
        cr_assert(status == 0 || status == -1, "%s: entry returned %d", input_path, status);
        if (status == -1) {
            cr_assert(err.text[0] != '\0', "%s: refused without a message", input_path);
            cr_assert_null(strchr(err.text, '\n'), "%s: message is more than one line: %s", input_path, err.text);
            cr_assert_not_null(strstr(err.text, scratch), "%s: message does not name the file: %s", input_path,
                               err.text);
        }
        cr_log_info("%s: %s", input_path, status == 0 ? "accepted" : err.text);
        free(scratch);
        free(bytes);
        free(input_path);
        free(names[i]);
    }
    return n;
}

static void replay_target(const char *target, FuzzEntry entry) {
    char corpus[256], regressions[256];
    snprintf(corpus, sizeof corpus, "tests/fuzz/corpus/%s", target);
    snprintf(regressions, sizeof regressions, "tests/fuzz/regressions/%s", target);
    int n_seeds = replay_folder(corpus, target, entry);
    cr_assert_gt(n_seeds, 0, "no seed inputs in %s (run from the repository root)", corpus);
    replay_folder(regressions, target, entry);
}

static int trace_guarded(const uint8_t *data, size_t size, const char *scratch_dir, ErrorMessage *err) {
    return fuzz_trace(data, size, scratch_dir, 1, err);
}

Test(fuzz_regressions, safetensors) { replay_target("safetensors", fuzz_safetensors); }
Test(fuzz_regressions, index) { replay_target("index", fuzz_index); }
Test(fuzz_regressions, config) { replay_target("config", fuzz_config); }
Test(fuzz_regressions, trace) { replay_target("trace", trace_guarded); }

// The seeds are valid files: each must be accepted (the missing-shard index is the one planned refusal).
Test(fuzz_regressions, seeds_are_accepted) {
    const char *seeds[][2] = {
        {"config", "tests/fuzz/corpus/config/tiny.json"},
        {"safetensors", "tests/fuzz/corpus/safetensors/tiny-norms.safetensors"},
        {"safetensors", "tests/fuzz/corpus/safetensors/dtypes.safetensors"},
        {"index", "tests/fuzz/corpus/index/two-shards.json"},
        {"trace", "tests/fuzz/corpus/trace/one-step.h5"},               // format version 1
        {"trace", "tests/fuzz/corpus/trace/one-step-v2-declared.h5"},   // version 2, declares gate,up,act
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        size_t size = 0;
        char *bytes = test_read_file(seeds[i][1], &size);
        char *scratch = test_make_temp_dir(seeds[i][0]);
        ErrorMessage err = {{0}};
        int status;
        if (!strcmp(seeds[i][0], "config")) status = fuzz_config((const uint8_t *)bytes, size, scratch, &err);
        else if (!strcmp(seeds[i][0], "safetensors")) status = fuzz_safetensors((const uint8_t *)bytes, size, scratch, &err);
        else if (!strcmp(seeds[i][0], "index")) {
            cr_assert_eq(fuzz_write_shards(scratch, &err), 0, "%s", err.text);
            status = fuzz_index((const uint8_t *)bytes, size, scratch, &err);
        } else status = fuzz_trace((const uint8_t *)bytes, size, scratch, 1, &err);
        cr_assert_eq(status, 0, "%s: %s", seeds[i][1], err.text);
        free(scratch);
        free(bytes);
    }
}

// The first input the trace harness found: a variable-length string attribute whose global-heap
// length is corrupt makes HDF5 1.10's H5HG_read copy far past its buffer. trace_open must refuse it.
Test(fuzz_regressions, hdf5_heap_overflow_is_refused_not_a_crash) {
    size_t size = 0;
    char *bytes = test_read_file("tests/fuzz/regressions/trace/vlen-heap-overflow.h5", &size);
    char *scratch = test_make_temp_dir("trace");
    ErrorMessage err = {{0}};
    cr_assert_eq(fuzz_trace((const uint8_t *)bytes, size, scratch, 1, &err), -1);
    cr_assert_not_null(strstr(err.text, "corrupt HDF5 file"), "%s", err.text);
    free(scratch);
    free(bytes);
}
