// The libFuzzer harness, built once per target (CMake defines FUZZ_TARGET_CONFIG, ..._SAFETENSORS,
// ..._INDEX or ..._TRACE): each input is written into a scratch directory and parsed from there by
// the entry point fuzz_targets.h describes.
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_targets.h"

#if defined(FUZZ_TARGET_CONFIG)
#define TARGET_NAME "config"
#elif defined(FUZZ_TARGET_SAFETENSORS)
#define TARGET_NAME "safetensors"
#elif defined(FUZZ_TARGET_INDEX)
#define TARGET_NAME "index"
#elif defined(FUZZ_TARGET_TRACE)
#define TARGET_NAME "trace"
#else
#error "define one FUZZ_TARGET_* (tests/fuzz/CMakeLists.txt does)"
#endif

static char scratch_dir[256];

// The files a run leaves in its scratch directory, then the directory itself.
static void remove_scratch(void) {
    const char *names[] = {"model.safetensors", "model.safetensors.index.json", "shard-1.safetensors",
                           "shard-2.safetensors", "trace.h5"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", scratch_dir, names[i]);
        unlink(path);
    }
    rmdir(scratch_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    // tmpfs when there is one: each input is written to a file and parsed from there.
    snprintf(scratch_dir, sizeof scratch_dir, "%s/fusecheck-fuzz-" TARGET_NAME "-%d",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
    if (mkdir(scratch_dir, 0700) != 0) {
        perror(scratch_dir);
        abort();
    }
    atexit(remove_scratch);
#if defined(FUZZ_TARGET_INDEX)
    // The index fuzzer varies the index; the shards it points at stay valid.
    ErrorMessage err;
    if (fuzz_write_shards(scratch_dir, &err)) {
        fprintf(stderr, "%s\n", err.text);
        abort();
    }
#endif
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ErrorMessage err;
#if defined(FUZZ_TARGET_CONFIG)
    fuzz_config(data, size, scratch_dir, &err);
#elif defined(FUZZ_TARGET_SAFETENSORS)
    fuzz_safetensors(data, size, scratch_dir, &err);
#elif defined(FUZZ_TARGET_INDEX)
    fuzz_index(data, size, scratch_dir, &err);
#else
    fuzz_trace(data, size, scratch_dir, 0, &err);
#endif
    return 0;
}
