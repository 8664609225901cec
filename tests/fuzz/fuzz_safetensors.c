// libFuzzer harness: safetensors (see fuzz_targets.h for what the input is and what is checked).
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_targets.h"

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
    snprintf(scratch_dir, sizeof scratch_dir, "%s/fusecheck-fuzz-safetensors-%d", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
             (int)getpid());
    if (mkdir(scratch_dir, 0700) != 0) {
        perror(scratch_dir);
        abort();
    }
    atexit(remove_scratch);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ErrorMessage err;
    fuzz_safetensors(data, size, scratch_dir, &err);
    return 0;
}
