// The crash guard (cli/interrupt.h) in a child process: a crash inside a guarded call is one line and
// exit 2; the same signal outside one keeps the action it had before the guard (a crash of fusecheck
// itself still crashes, or reaches a sanitizer's report), raised or a real fault.
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/interrupt.h"
#include "test_support.h"

typedef enum {
    RAISE_SEGV_GUARDED,
    FPE_GUARDED,
    RAISE_ABRT_OUTSIDE,
    FAULT_OUTSIDE,
    FAULT_AFTER_LEAVE,
    SEGV_GUARDED_WITH_DIRECTORY,
    INTERRUPT_WITH_DIRECTORY,
} Scenario;

// The temporary directory the directory scenarios register: made by the parent, with a model's two
// files in it (bench's synthesized model).
static char scenario_dir[256];

static void run_scenario(Scenario scenario) {
    ErrorMessage err;
    if (interrupt_guard_install(&err)) _exit(99);
    switch (scenario) {
    case RAISE_SEGV_GUARDED:
        interrupt_guard_enter("engine plugin ./libtest.so", "forward");
        raise(SIGSEGV);
        break;
    case FPE_GUARDED:
        interrupt_guard_enter("engine plugin ./libtest.so", "create");
        raise(SIGFPE);
        break;
    case RAISE_ABRT_OUTSIDE:
        raise(SIGABRT);
        break;
    case SEGV_GUARDED_WITH_DIRECTORY:
    case INTERRUPT_WITH_DIRECTORY: {
        static const char *const files[] = {"model.safetensors", "config.json"};
        if (interrupt_cleanup_directory("bench", scenario_dir, files, 2, &err)) _exit(97);
        if (scenario == INTERRUPT_WITH_DIRECTORY) raise(SIGINT);
        interrupt_guard_enter("engine plugin ./libtest.so", "forward");
        raise(SIGSEGV);
        break;
    }
    case FAULT_AFTER_LEAVE:
        interrupt_guard_enter("engine plugin ./libtest.so", "forward");
        interrupt_guard_leave();
        /* fall through */
    case FAULT_OUTSIDE:
        // A real fault (a non-NULL bad address: UBSan reports NULL stores before they fault).
        {
            volatile uintptr_t address = 8;  // volatile: the compiler sees no constant to warn about
            *(volatile int *)address = 1;
        }
        break;
    }
    _exit(98);  // the signal did nothing
}

// Runs the scenario in a child; its wait status and stderr.
static int in_child(Scenario scenario, char *stderr_text, size_t size) {
    int pipe_fds[2];
    cr_assert_eq(pipe(pipe_fds), 0);
    fflush(NULL);
    pid_t child = fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
        dup2(pipe_fds[1], STDERR_FILENO);
        close(pipe_fds[0]);
        run_scenario(scenario);
    }
    close(pipe_fds[1]);
    size_t used = 0;
    ssize_t n;
    while (used + 1 < size && (n = read(pipe_fds[0], stderr_text + used, size - 1 - used)) > 0) used += (size_t)n;
    stderr_text[used] = '\0';
    close(pipe_fds[0]);
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    return status;
}

Test(crash_guard, a_crash_in_a_guarded_call_is_one_line_and_exit_2) {
    char text[4096];
    int status = in_child(RAISE_SEGV_GUARDED, text, sizeof text);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2, "status 0x%x: %s", status, text);
    cr_expect_str_eq(text, "fusecheck: engine plugin ./libtest.so crashed (SIGSEGV) during forward\n");
    status = in_child(FPE_GUARDED, text, sizeof text);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2, "status 0x%x: %s", status, text);
    cr_expect_str_eq(text, "fusecheck: engine plugin ./libtest.so crashed (SIGFPE) during create\n");
}

Test(crash_guard, outside_a_guarded_call_the_signal_keeps_its_action) {
    char text[4096];
    int status = in_child(RAISE_ABRT_OUTSIDE, text, sizeof text);
    cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status 0x%x: %s", status, text);
    cr_expect_null(strstr(text, "crashed"), "%s", text);
    // A real fault: killed by SIGSEGV, or (in the sanitizer build) ASan's own report, never the guard's.
    Scenario faults[] = {FAULT_OUTSIDE, FAULT_AFTER_LEAVE};
    for (int i = 0; i < 2; i++) {
        status = in_child(faults[i], text, sizeof text);
        int killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
        int sanitizer = WIFEXITED(status) && strstr(text, "AddressSanitizer") != NULL;
        cr_expect(killed || sanitizer, "scenario %d: status 0x%x: %s", (int)faults[i], status, text);
        cr_expect_null(strstr(text, "crashed ("), "%s", text);
    }
}

// A directory holding model.safetensors and config.json, for the directory scenarios.
static void make_model_directory(void) {
    char *dir = test_make_temp_dir("crash-guard");
    snprintf(scenario_dir, sizeof scenario_dir, "%s", dir);
    free(dir);
    char *a = test_path_join(scenario_dir, "model.safetensors"), *b = test_path_join(scenario_dir, "config.json");
    test_write_file(a, "weights", 7);
    test_write_file(b, "{}", 2);
    free(a);
    free(b);
}

Test(crash_guard, a_registered_temporary_directory_is_removed_on_a_crash_or_an_interrupt) {
    char text[4096], expected[512];
    struct stat info;
    make_model_directory();
    int status = in_child(SEGV_GUARDED_WITH_DIRECTORY, text, sizeof text);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2, "status 0x%x: %s", status, text);
    snprintf(expected, sizeof expected,
             "fusecheck bench: engine plugin ./libtest.so crashed (SIGSEGV) during forward, removed %s\n", scenario_dir);
    cr_expect_str_eq(text, expected);
    cr_expect_neq(stat(scenario_dir, &info), 0, "%s is still there", scenario_dir);
    make_model_directory();
    status = in_child(INTERRUPT_WITH_DIRECTORY, text, sizeof text);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGINT, "status 0x%x: %s", status, text);
    snprintf(expected, sizeof expected, "fusecheck bench: interrupted, removed %s\n", scenario_dir);
    cr_expect_str_eq(text, expected);
    cr_expect_neq(stat(scenario_dir, &info), 0, "%s is still there", scenario_dir);
}
