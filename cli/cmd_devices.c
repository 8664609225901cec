// fusecheck devices: says whether the GPU engines can run here, and if not, why.
#include <stdio.h>
#include <string.h>

#include "../fused/gpu_engine.h"
#include "commands.h"

int cmd_devices(int argc, char **argv) {
    if (argc > 1) {
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
            printf("usage: fusecheck devices\n  exit 0 when a CUDA device is usable, 4 when none is (the reason on stderr)\n");
            return 0;
        }
        fprintf(stderr, "fusecheck devices: unknown flag '%s'\n", argv[1]);
        return 2;
    }
    ErrorMessage err = {{0}};
    if (gpu_device_available(&err)) {
        fprintf(stderr, "fusecheck devices: %s\n", err.text);
        return 4;
    }
    printf("CUDA device available\n");
    return 0;
}
