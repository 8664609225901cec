// Signal cleanup for trace-writing commands and crash reports for foreign code. Contract in interrupt.h.
#define _XOPEN_SOURCE 700  // sigaltstack and SA_ONSTACK are XSI
#include "interrupt.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../model/file_util.h"

#define PATH_BYTES 4096
// The crash handler's own stack: a stack overflow in a plugin leaves none to run on.
#define GUARD_STACK_BYTES (64 * 1024)

// Filled before the handlers are installed, read-only afterwards (the handlers read, never write).
static char command_name[64];
static char temp_paths[INTERRUPT_MAX_OUTPUTS][PATH_BYTES];
static volatile sig_atomic_t n_outputs;
// A temporary directory (interrupt_cleanup_directory): its files, then the directory itself.
static char temp_dir[PATH_BYTES];
static char temp_dir_files[INTERRUPT_MAX_DIRECTORY_FILES][PATH_BYTES];
static volatile sig_atomic_t n_temp_dir_files, have_temp_dir;
static int stderr_is_terminal;

// The guarded call in progress (interrupt_guard_enter): set before the foreign code runs.
static const char *volatile guarded_who;
static const char *volatile guarded_what;
static volatile sig_atomic_t in_guarded_call;
static int guard_installed;
static char guard_stack[GUARD_STACK_BYTES];

static const int CRASH_SIGNALS[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define N_CRASH_SIGNALS (sizeof CRASH_SIGNALS / sizeof CRASH_SIGNALS[0])
// What each crash signal did before the guard (the default, or a sanitizer's report), restored for a
// crash outside guarded code. Indexed like CRASH_SIGNALS.
static struct sigaction previous_actions[N_CRASH_SIGNALS];

static void write_text(const char *text) {
    size_t length = strlen(text);  // strlen is async-signal-safe (POSIX.1-2016)
    while (length > 0) {
        ssize_t written = write(STDERR_FILENO, text, length);
        if (written <= 0) return;
        text += written;
        length -= (size_t)written;
    }
}

// "fusecheck CMD: " (or "fusecheck: " before any command registered), on a clean line.
static void write_prefix(void) {
    // Erase a progress line that may be on the terminal, so the message starts on a clean line.
    if (stderr_is_terminal) write_text("\r\033[K");
    write_text("fusecheck");
    if (command_name[0]) {
        write_text(" ");
        write_text(command_name);
    }
    write_text(": ");
}

// ", removed A, B" for each registered temporary file that existed.
static void remove_temporaries(void) {
    int removed = 0;
    for (int i = 0; i < n_outputs; i++) {
        if (unlink(temp_paths[i]) != 0) continue;  // not yet created, or already renamed into place
        write_text(removed++ ? ", " : ", removed ");
        write_text(temp_paths[i]);
    }
    if (have_temp_dir) {
        for (int i = 0; i < n_temp_dir_files; i++) unlink(temp_dir_files[i]);  // those not yet written fail
        if (rmdir(temp_dir) == 0) {
            write_text(removed++ ? ", " : ", removed ");
            write_text(temp_dir);
        }
    }
}

static void on_signal(int signal_number) {
    write_prefix();
    write_text("interrupted");
    remove_temporaries();
    write_text("\n");
    _exit(128 + signal_number);
}

static const char *signal_name(int signal_number) {
    switch (signal_number) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    default: return "signal";
    }
}

static void on_crash(int signal_number, siginfo_t *info, void *context) {
    (void)context;
    if (!in_guarded_call) {
        // Not the plugin's: the signal gets what it had before the guard. A fault (si_code > 0, sent by
        // the kernel) recurs on the same instruction when this returns; a raised one is raised again.
        for (size_t i = 0; i < N_CRASH_SIGNALS; i++)
            if (CRASH_SIGNALS[i] == signal_number) sigaction(signal_number, &previous_actions[i], NULL);
        if (!info || info->si_code <= 0) raise(signal_number);
        return;
    }
    write_prefix();
    write_text(guarded_who);
    write_text(" crashed (");
    write_text(signal_name(signal_number));
    write_text(") during ");
    write_text(guarded_what);
    remove_temporaries();
    write_text("\n");
    _exit(2);
}

void interrupt_set_command(const char *command) { snprintf(command_name, sizeof command_name, "%s", command); }

static int install_interrupt_handlers(ErrorMessage *err) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    // A second signal during cleanup waits instead of interrupting the handler.
    sigaddset(&action.sa_mask, SIGINT);
    sigaddset(&action.sa_mask, SIGTERM);
    if (sigaction(SIGINT, &action, NULL) || sigaction(SIGTERM, &action, NULL))
        return fail(err, "installing the SIGINT/SIGTERM handler failed");
    return 0;
}

int interrupt_cleanup_on_signal(const char *command, const char *out_path, ErrorMessage *err) {
    if (n_outputs >= INTERRUPT_MAX_OUTPUTS)
        return fail(err, "%s: more than %d outputs to clean up on interrupt", out_path, INTERRUPT_MAX_OUTPUTS);
    // The writers' own temporary name (model/file_util.h), so the handler removes exactly what they made.
    if (temp_path_for(out_path, temp_paths[n_outputs], PATH_BYTES, err)) return -1;
    interrupt_set_command(command);
    stderr_is_terminal = isatty(STDERR_FILENO);
    n_outputs++;
    return install_interrupt_handlers(err);
}

int interrupt_cleanup_directory(const char *command, const char *dir, const char *const *files, int n_files,
                                ErrorMessage *err) {
    if (n_files < 0 || n_files > INTERRUPT_MAX_DIRECTORY_FILES)
        return fail(err, "%s: %d files to clean up on interrupt, at most %d", dir, n_files, INTERRUPT_MAX_DIRECTORY_FILES);
    if (have_temp_dir) return fail(err, "%s: a temporary directory (%s) is already registered", dir, temp_dir);
    if (snprintf(temp_dir, sizeof temp_dir, "%s", dir) >= (int)sizeof temp_dir)
        return fail(err, "%s: path too long to clean up on interrupt", dir);
    for (int i = 0; i < n_files; i++)
        if (snprintf(temp_dir_files[i], PATH_BYTES, "%s/%s", dir, files[i]) >= PATH_BYTES)
            return fail(err, "%s/%s: path too long to clean up on interrupt", dir, files[i]);
    interrupt_set_command(command);
    stderr_is_terminal = isatty(STDERR_FILENO);
    n_temp_dir_files = n_files;
    have_temp_dir = 1;
    return install_interrupt_handlers(err);
}

void interrupt_forget_directory(void) { have_temp_dir = 0; }

int interrupt_guard_install(ErrorMessage *err) {
    if (guard_installed) return 0;
    stderr_is_terminal = isatty(STDERR_FILENO);
    stack_t stack;
    memset(&stack, 0, sizeof stack);
    stack.ss_sp = guard_stack;
    stack.ss_size = sizeof guard_stack;
    if (sigaltstack(&stack, NULL)) return fail(err, "installing the crash handler's signal stack failed");
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_crash;
    action.sa_flags = SA_ONSTACK | SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    // An interrupt during the report waits: the report removes the same files.
    sigaddset(&action.sa_mask, SIGINT);
    sigaddset(&action.sa_mask, SIGTERM);
    for (size_t i = 0; i < N_CRASH_SIGNALS; i++)
        if (sigaction(CRASH_SIGNALS[i], &action, &previous_actions[i]))
            return fail(err, "installing the %s handler failed", signal_name(CRASH_SIGNALS[i]));
    guard_installed = 1;
    return 0;
}

void interrupt_guard_enter(const char *who, const char *what) {
    guarded_who = who;
    guarded_what = what;
    // The strings are in place before the handler can see the flag (same thread: a compiler barrier
    // is enough; a plugin's own threads crash after this store anyway).
    atomic_signal_fence(memory_order_seq_cst);
    in_guarded_call = 1;
    atomic_signal_fence(memory_order_seq_cst);
}

void interrupt_guard_leave(void) {
    atomic_signal_fence(memory_order_seq_cst);
    in_guarded_call = 0;
    atomic_signal_fence(memory_order_seq_cst);
}
