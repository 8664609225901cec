// Reading an untrusted file in a limited child process (contract in file_sandbox.h).
#define _DEFAULT_SOURCE
#include "file_sandbox.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

// Bytes of address space mapped now (inherited mappings included), from /proc/self/statm; 0 if unknown
// (then no memory limit).
static unsigned long long address_space_bytes(void) {
    FILE *file = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    if (file && fscanf(file, "%llu", &pages) != 1) pages = 0;
    if (file) fclose(file);
    long page_size = sysconf(_SC_PAGESIZE);
    return page_size > 0 ? pages * (unsigned long long)page_size : 0;
}

static void run_child(int fd, off_t file_size, rlim_t cpu_seconds, unsigned long long mapped,
                      int (*work)(void *context, int fd), void *context) {
    // What a crashing library prints is not the caller's one-line message.
    if (!freopen("/dev/null", "w", stderr)) _exit(1);
    struct rlimit cpu = {cpu_seconds, cpu_seconds + 5};  // SIGXCPU at the soft limit, SIGKILL at the hard
    if (setrlimit(RLIMIT_CPU, &cpu) != 0) _exit(1);
    if (mapped) {
        rlim_t bytes = (rlim_t)(mapped + (1ull << 30) + 2 * (unsigned long long)file_size);
        struct rlimit memory = {bytes, bytes};
        if (setrlimit(RLIMIT_AS, &memory) != 0) _exit(1);
    }
    _exit(work(context, fd) == 0 ? 0 : 1);  // no atexit handlers or stdio flushes of the parent's buffers
}

// Everything readable from fd until end of file, NUL-terminated; NULL when memory runs out.
static char *read_all(int fd, size_t *size) {
    char *text = NULL;
    size_t used = 0, capacity = 0;
    for (;;) {
        if (used + 4096 + 1 > capacity) {
            char *grown = realloc(text, capacity = capacity * 2 + 8192);
            if (!grown) {
                free(text);
                return NULL;
            }
            text = grown;
        }
        ssize_t got = read(fd, text + used, capacity - used - 1);
        if (got > 0) used += (size_t)got;
        else if (got < 0 && errno == EINTR) continue;
        else break;
    }
    text[used] = '\0';
    *size = used;
    return text;
}

int sandbox_run(const char *path, off_t file_size, const char *purpose, int (*work)(void *context, int fd),
                void *context, SandboxResult *result, ErrorMessage *err) {
    memset(result, 0, sizeof *result);
    rlim_t cpu_seconds = 10 + (rlim_t)(file_size / (16 << 20));
    unsigned long long mapped = address_space_bytes();
    int fds[2];
    if (pipe(fds) != 0) return fail(err, "%s: cannot %s: pipe: %s", path, purpose, strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    if (child < 0) {
        close(fds[0]);
        close(fds[1]);
        return fail(err, "%s: cannot fork to %s: %s", path, purpose, strerror(errno));
    }
    if (child == 0) {
        close(fds[0]);
        run_child(fds[1], file_size, cpu_seconds, mapped, work, context);
    }
    close(fds[1]);
    char *output = read_all(fds[0], &result->output_size);
    close(fds[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) {
            free(output);
            return fail(err, "%s: cannot wait for the process that read the file to %s: %s", path, purpose,
                        strerror(errno));
        }
    }
    if (!output) return fail(err, "%s: out of memory reading the answer of the process that read the file", path);
    result->output = output;
    result->cpu_seconds = (unsigned long)cpu_seconds;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) result->end = SANDBOX_EXITED_CLEANLY;
    else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU) result->end = SANDBOX_HUNG;
    else result->end = SANDBOX_CRASHED;
    return 0;
}
