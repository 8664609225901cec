// Signal cleanup for trace-writing commands. Contract in interrupt.h.
#include "interrupt.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../model/file_util.h"

#define PATH_BYTES 4096

// Filled before the handler is installed, read-only afterwards (the handler reads, never writes).
static char command_name[64];
static char temp_paths[INTERRUPT_MAX_OUTPUTS][PATH_BYTES];
static volatile sig_atomic_t n_outputs;
static int stderr_is_terminal;

static void write_text(const char *text) {
    size_t length = strlen(text);  // strlen is async-signal-safe (POSIX.1-2016)
    while (length > 0) {
        ssize_t written = write(STDERR_FILENO, text, length);
        if (written <= 0) return;
        text += written;
        length -= (size_t)written;
    }
}

static void on_signal(int signal_number) {
    // Erase a progress line that may be on the terminal, so the message starts on a clean line.
    if (stderr_is_terminal) write_text("\r\033[K");
    write_text("fusecheck ");
    write_text(command_name);
    write_text(": interrupted");
    int removed = 0;
    for (int i = 0; i < n_outputs; i++) {
        if (unlink(temp_paths[i]) != 0) continue;  // not yet created, or already renamed into place
        write_text(removed++ ? ", " : ", removed ");
        write_text(temp_paths[i]);
    }
    write_text("\n");
    _exit(128 + signal_number);
}

int interrupt_cleanup_on_signal(const char *command, const char *out_path, ErrorMessage *err) {
    if (n_outputs >= INTERRUPT_MAX_OUTPUTS)
        return fail(err, "%s: more than %d outputs to clean up on interrupt", out_path, INTERRUPT_MAX_OUTPUTS);
    // The writers' own temporary name (model/file_util.h), so the handler removes exactly what they made.
    if (temp_path_for(out_path, temp_paths[n_outputs], PATH_BYTES, err)) return -1;
    snprintf(command_name, sizeof command_name, "%s", command);
    stderr_is_terminal = isatty(STDERR_FILENO);
    n_outputs++;
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
