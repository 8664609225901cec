// Hostile trace files and interrupted writes: a killed `fusecheck golden` never replaces a good
// file, and a truncated or foreign HDF5 file is refused by every reader (trace_open, both positions
// of `fusecheck compare`, the gate's cached golden) with one line naming the file, never a crash.
#include <criterion/criterion.h>
#include <dirent.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../golden/trace.h"
#include "test_support.h"

static int count_lines(const char *text) {
    int lines = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    return lines;
}

static char *make_golden(const char *dir, const char *model, const char *name) {
    char *path = test_path_join(dir, name);
    char args[2048], *output;
    snprintf(args, sizeof args, "golden --model '%s' --prompt-tokens 3,1,4 --steps 2 --out '%s'", model, path);
    int status = test_run_cli(args, &output);
    cr_assert_eq(status, 0, "%s", output);
    free(output);
    return path;
}

// Valid HDF5 that is not a trace: one dataset, no trace attributes.
static void write_foreign_hdf5(const char *path) {
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(file >= 0);
    hsize_t dims[1] = {4};
    float values[4] = {1, 2, 3, 4};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dataset = H5Dcreate2(file, "/measurements", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(dataset >= 0);
    cr_assert(H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0);
    H5Dclose(dataset);
    H5Sclose(space);
    H5Fclose(file);
}

static void write_truncated_copy(const char *from, const char *to, double fraction) {
    size_t size = 0;
    char *bytes = test_read_file(from, &size);
    test_write_file(to, bytes, (size_t)(size * fraction));
    free(bytes);
}

typedef struct {
    char *dir, *model, *good, *bad[4];
    const char *bad_kind[4];
} Files;

static Files make_files(void) {
    Files f;
    f.dir = test_make_temp_dir("hostile");
    f.model = test_synth_checkpoint("tiny", 7);
    f.good = make_golden(f.dir, f.model, "good.h5");
    f.bad[0] = test_path_join(f.dir, "truncated-half.h5");
    write_truncated_copy(f.good, f.bad[0], 0.5);
    f.bad[1] = test_path_join(f.dir, "truncated-tail.h5");
    write_truncated_copy(f.good, f.bad[1], 0.98);
    f.bad[2] = test_path_join(f.dir, "foreign.h5");
    write_foreign_hdf5(f.bad[2]);
    f.bad[3] = test_path_join(f.dir, "empty.h5");
    test_write_file(f.bad[3], "", 0);
    f.bad_kind[0] = "truncated (half)";
    f.bad_kind[1] = "truncated (last 2%)";
    f.bad_kind[2] = "foreign HDF5";
    f.bad_kind[3] = "empty";
    return f;
}

static void free_files(Files *f) {
    for (int i = 0; i < 4; i++) free(f->bad[i]);
    free(f->good);
    free(f->model);
    free(f->dir);
}

Test(hostile_traces, trace_open_refuses_truncated_and_foreign_files) {
    Files f = make_files();
    for (int i = 0; i < 4; i++) {
        ErrorMessage err = {{0}};
        TraceReader *reader = trace_open(f.bad[i], &err);
        cr_expect_null(reader, "%s: %s file was accepted", f.bad[i], f.bad_kind[i]);
        trace_close(reader);
        cr_expect_not_null(strstr(err.text, f.bad[i]), "%s: message does not name the file: %s", f.bad_kind[i],
                           err.text);
        cr_expect_null(strchr(err.text, '\n'), "%s: more than one line: %s", f.bad_kind[i], err.text);
    }
    ErrorMessage err;
    TraceReader *reader = trace_open(f.good, &err);
    cr_assert_not_null(reader, "%s", err.text);
    trace_close(reader);
    free_files(&f);
}

Test(hostile_traces, compare_refuses_them_in_either_position) {
    Files f = make_files();
    for (int i = 0; i < 4; i++) {
        for (int position = 0; position < 2; position++) {
            char args[4096], *output;
            snprintf(args, sizeof args, "compare '%s' '%s'", position ? f.good : f.bad[i], position ? f.bad[i] : f.good);
            int status = test_run_cli(args, &output);
            cr_expect_eq(status, 2, "%s (%s): exit %d, expected 2:\n%s", args, f.bad_kind[i], status, output);
            cr_expect_not_null(strstr(output, f.bad[i]), "%s: output does not name the file:\n%s", args, output);
            cr_expect_eq(count_lines(output), 1, "%s: expected one line:\n%s", args, output);
            free(output);
        }
    }
    free_files(&f);
}

// Where the object header of `object_path` starts in the file `path` (the HDF5 address; a file with
// no user block has its base address at byte 0).
static long object_header_offset(const char *path, const char *object_path) {
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(file, 0, "%s", path);
    haddr_t address = HADDR_UNDEF;
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    cr_assert_geq(H5Oget_info_by_name3(file, object_path, &info, H5O_INFO_BASIC, H5P_DEFAULT), 0, "%s", object_path);
    cr_assert_geq(H5VLnative_token_to_addr(file, info.token, &address), 0);
#else
    H5O_info_t info;
    cr_assert_geq(H5Oget_info_by_name2(file, object_path, &info, H5O_INFO_BASIC, H5P_DEFAULT), 0, "%s", object_path);
    address = info.addr;
#endif
    hid_t properties = H5Fget_create_plist(file);
    hsize_t user_block = 0;
    H5Pget_userblock(properties, &user_block);
    H5Pclose(properties);
    H5Fclose(file);
    cr_assert_neq(address, HADDR_UNDEF);
    return (long)(address + user_block);
}

// Overwrites 32 bytes at the start of `object_path`'s object header: the file stays a valid HDF5 file
// whose tree still lists the object, but the object cannot be opened.
static void corrupt_object_header(const char *path, const char *object_path) {
    long offset = object_header_offset(path, object_path);
    size_t size = 0;
    char *bytes = test_read_file(path, &size);
    cr_assert_lt((size_t)offset + 32, size);
    memset(bytes + offset, 0xA5, 32);
    test_write_file(path, bytes, size);
    free(bytes);
}

// 32 bytes overwritten inside a layer group (its object header) or a tensor of a valid trace: before,
// the layer read as absent ("only in reference") and compare passed. Now the trace is bad input, refused
// with one line naming the file and the HDF5 object, in either position of compare (exit 2).
Test(hostile_traces, a_corrupt_layer_group_or_tensor_is_bad_input_naming_the_object) {
    char *dir = test_make_temp_dir("corrupt-object");
    char *model = test_synth_checkpoint("tiny", 7);
    char *good = make_golden(dir, model, "good.h5");
    const char *objects[] = {"/step_0001/layer_01", "/step_0002/layer_00/attn", "/step_0000/logits"};
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "corrupt-%d.h5", i);
        char *bad = test_path_join(dir, name);
        size_t size = 0;
        char *bytes = test_read_file(good, &size);
        test_write_file(bad, bytes, size);
        free(bytes);
        corrupt_object_header(bad, objects[i]);
        cr_assert_gt(H5Fis_hdf5(bad), 0, "still an HDF5 file");

        ErrorMessage err = {{0}};
        TraceReader *reader = trace_open(bad, &err);
        cr_expect_null(reader, "%s: opened with %s corrupt", bad, objects[i]);
        trace_close(reader);
        cr_expect_not_null(strstr(err.text, bad), "message does not name the file: %s", err.text);
        cr_expect_not_null(strstr(err.text, objects[i]), "message does not name %s: %s", objects[i], err.text);
        cr_expect_null(strchr(err.text, '\n'), "more than one line: %s", err.text);

        for (int position = 0; position < 2; position++) {
            char args[4096], *output;
            snprintf(args, sizeof args, "compare '%s' '%s'", position ? good : bad, position ? bad : good);
            int status = test_run_cli(args, &output);
            cr_expect_eq(status, 2, "%s: exit %d, expected 2:\n%s", args, status, output);
            cr_expect_not_null(strstr(output, bad), "%s: output does not name the file:\n%s", args, output);
            cr_expect_not_null(strstr(output, objects[i]), "%s: output does not name %s:\n%s", args, objects[i], output);
            cr_expect_not_null(strstr(output, "fusecheck compare: "), "%s:\n%s", args, output);
            cr_expect_eq(count_lines(output), 1, "%s: expected one line:\n%s", args, output);
            free(output);
        }
        free(bad);
    }
    free(good);
    free(model);
    free(dir);
}

// The golden named `*-kv-<kv>.h5` or `*-kv-<kv>-<producer>.h5` in the gate's cache.
static char *cached_golden(const char *cache, const char *kv) {
    char *goldens = test_path_join(cache, "goldens");
    DIR *dir = opendir(goldens);
    cr_assert_not_null(dir, "%s", goldens);
    char marker[32];
    snprintf(marker, sizeof marker, "-kv-%s", kv);
    char *found = NULL;
    struct dirent *item;
    while ((item = readdir(dir)) && !found) {
        const char *at = strstr(item->d_name, marker);
        size_t length = strlen(item->d_name);
        if (at && length > 3 && !strcmp(item->d_name + length - 3, ".h5") && (at[strlen(marker)] == '.' || at[strlen(marker)] == '-'))
            found = test_path_join(goldens, item->d_name);
    }
    closedir(dir);
    free(goldens);
    cr_assert_not_null(found, "no cached %s golden", kv);
    return found;
}

Test(hostile_traces, gate_remakes_a_corrupt_cached_golden) {
    if (test_run_cli("devices", NULL) == 0) cr_skip_test("a CUDA device is present: the gate would run the GPU part");
    char *dir = test_make_temp_dir("gate-cache");
    char *cache = test_path_join(dir, "cache");
    char args[4096], *output;
    snprintf(args, sizeof args, "gate --preset tiny --steps 3 --cache-dir '%s' --report-dir '%s/report'", cache, dir);
    int status = test_run_cli(args, &output);
    cr_assert_eq(status, 4, "first gate: exit %d:\n%s", status, output);
    free(output);
    char *bf16 = cached_golden(cache, "bf16"), *f32 = cached_golden(cache, "f32");
    ErrorMessage err;
    TraceReader *first = trace_open(bf16, &err);
    cr_assert_not_null(first, "%s", err.text);
    int first_steps = trace_n_steps(first);
    char fingerprint[17];
    memcpy(fingerprint, trace_meta(first)->weights_fingerprint, sizeof fingerprint);
    trace_close(first);
    write_truncated_copy(bf16, bf16, 0.6);  // the matched golden truncated in place
    write_foreign_hdf5(f32);               // the pure-fp32 one replaced by foreign HDF5

    status = test_run_cli(args, &output);
    cr_expect_eq(status, 4, "gate over a corrupt cache: exit %d:\n%s", status, output);
    cr_expect_not_null(strstr(output, "golden (kv bf16): made"), "truncated golden was not remade:\n%s", output);
    cr_expect_not_null(strstr(output, "golden (kv f32): made"), "foreign golden was not remade:\n%s", output);
    free(output);
    // Remade in place: both open again as traces of the same weights and length. (Not compared byte
    // for byte: HDF5 stamps object times into the file.)
    const char *remade[2] = {bf16, f32};
    for (int i = 0; i < 2; i++) {
        TraceReader *reader = trace_open(remade[i], &err);
        cr_assert_not_null(reader, "remade golden does not open: %s", err.text);
        cr_expect_eq(trace_n_steps(reader), first_steps);
        cr_expect_str_eq(trace_meta(reader)->weights_fingerprint, fingerprint);
        trace_close(reader);
    }
    free(bf16);
    free(f32);
    free(cache);
    free(dir);
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {}
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

// 1 when `dir` holds a file whose name starts with `prefix` (the writer's `<out>.tmp-<pid>`).
static int has_file_starting(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *item;
    while ((item = readdir(d)) && !found) found = !strncmp(item->d_name, prefix, strlen(prefix));
    closedir(d);
    return found;
}

Test(hostile_traces, killed_golden_run_leaves_the_good_file_in_place, .timeout = 120) {
    const char *bin = getenv("FUSECHECK_BIN");
    cr_assert_not_null(bin, "FUSECHECK_BIN is not set");
    char *dir = test_make_temp_dir("killed");
    char *model = test_synth_checkpoint("small", 3);
    char *out = make_golden(dir, model, "golden.h5");
    size_t before_size = 0;
    char *before = test_read_file(out, &before_size);

    // A long run over the same path, killed with SIGKILL once its temporary file exists.
    pid_t child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
        execl(bin, bin, "golden", "--model", model, "--prompt-len", "8", "--steps", "4000", "--out", out, (char *)NULL);
        _exit(127);
    }
    long long start = now_ms();
    while (!has_file_starting(dir, "golden.h5.tmp-") && now_ms() - start < 60000) sleep_ms(2);
    cr_assert(has_file_starting(dir, "golden.h5.tmp-"), "the golden run never started writing");
    sleep_ms(300);  // well into the write
    int status = 0;
    cr_assert_eq(waitpid(child, &status, WNOHANG), 0, "the golden run ended before it could be killed");
    kill(child, SIGKILL);
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    size_t after_size = 0;
    char *after = test_read_file(out, &after_size);
    cr_expect(after_size == before_size && !memcmp(after, before, before_size), "the killed run changed %s", out);
    ErrorMessage err;
    TraceReader *reader = trace_open(out, &err);
    cr_expect_not_null(reader, "the good golden no longer opens: %s", err.text);
    if (reader) cr_expect_eq(trace_n_steps(reader), 3);
    trace_close(reader);
    free(after);
    free(before);
    free(out);
    free(model);
    free(dir);
}

// A trace whose prompt_length and n_steps attributes are rewritten to INT_MAX: their sum must not
// overflow (UBSan halts on it in the sanitizer build); the file is refused naming /tokens.
Test(hostile_traces, huge_lengths_are_refused_without_overflow) {
    char *dir = test_make_temp_dir("huge-lengths");
    char *model = test_synth_checkpoint("tiny", 7);
    char *path = make_golden(dir, model, "huge.h5");
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert(file >= 0);
    const char *names[] = {"prompt_length", "n_steps"};
    for (int i = 0; i < 2; i++) {
        int32_t value = INT32_MAX;
        hid_t attribute = H5Aopen(file, names[i], H5P_DEFAULT);
        cr_assert(attribute >= 0);
        cr_assert(H5Awrite(attribute, H5T_NATIVE_INT32, &value) >= 0);
        H5Aclose(attribute);
    }
    H5Fclose(file);
    ErrorMessage err = {{0}};
    TraceReader *reader = trace_open(path, &err);
    cr_expect_null(reader);
    trace_close(reader);
    cr_expect_not_null(strstr(err.text, "/tokens has 5 tokens"), "%s", err.text);
    cr_expect_not_null(strstr(err.text, path), "%s", err.text);
    if (getenv("FUSECHECK_KEEP_HUGE_TRACE")) {  // how tests/fuzz/regressions/trace/int-max-lengths.h5 was made
        size_t size = 0;
        char *bytes = test_read_file(path, &size);
        test_write_file(getenv("FUSECHECK_KEEP_HUGE_TRACE"), bytes, size);
        free(bytes);
    }
    free(path);
    free(model);
    free(dir);
}
