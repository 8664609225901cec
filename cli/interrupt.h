// Signals during a command that writes traces, and crashes inside code fusecheck does not own.
//
// Ctrl-C and SIGTERM: the trace writer's temporary file (`<out>.tmp-<pid>`, golden/trace.h) would be
// left behind, tens of MB, with nothing said. After interrupt_cleanup_on_signal, SIGINT or SIGTERM
// removes each registered output's temporary file, prints one line on stderr ("fusecheck golden:
// interrupted, removed out.h5.tmp-1234") and exits 130 (SIGINT) or 143 (SIGTERM), as a shell reports
// a process killed by that signal.
//
// Crashes in foreign code (an engine plugin, cli/plugin_engine.c): after interrupt_guard_install, a
// SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT raised while a guarded call is in progress (between
// interrupt_guard_enter and interrupt_guard_leave) removes the same temporary files, prints one line
// ("fusecheck run: engine plugin ./libx.so crashed (SIGSEGV) during forward, removed out.h5.tmp-1234"),
// and a registered temporary directory (interrupt_cleanup_directory), and exits 2: the plugin is bad input, and no trace it was writing survives. The same signal outside
// a guarded call gets the action it had before the guard (the default, or a sanitizer's report), so a
// bug in fusecheck itself still crashes as it would have.
//
// The handlers only call unlink, write, sigaction, raise and _exit (async-signal-safe): every path and
// message is prepared in advance.
#ifndef FUSECHECK_INTERRUPT_H
#define FUSECHECK_INTERRUPT_H

#include "../model/error.h"

#define INTERRUPT_MAX_OUTPUTS 8

// Installs the handlers for `command` ("golden") and registers `out_path`, whose temporary file
// the handler removes. Call once per output (up to INTERRUPT_MAX_OUTPUTS; gate writes several).
// Returns -1 with a message when the path is too long or sigaction fails.
int interrupt_cleanup_on_signal(const char *command, const char *out_path, ErrorMessage *err);

// A temporary directory `dir` holding the named `files` (a synthesized model): SIGINT, SIGTERM or a
// crash in guarded code removes the files and the directory, and the line names the directory
// ("fusecheck bench: interrupted, removed /tmp/fusecheck-bench-AbC123"). Installs the SIGINT/SIGTERM
// handlers as interrupt_cleanup_on_signal does. One directory at a time (a second is refused), at
// most INTERRUPT_MAX_DIRECTORY_FILES files; -1 with a message when a path is too long or sigaction
// fails. interrupt_forget_directory: the command removed the directory itself (the handlers then
// leave it alone).
#define INTERRUPT_MAX_DIRECTORY_FILES 4
int interrupt_cleanup_directory(const char *command, const char *dir, const char *const *files, int n_files,
                                ErrorMessage *err);
void interrupt_forget_directory(void);

// The command named in the handlers' lines ("generate"), for commands that register no output.
// `command` is copied (at most 63 characters).
void interrupt_set_command(const char *command);

// Installs the crash handlers (once; later calls do nothing) on an alternate signal stack, so that a
// stack overflow in guarded code is reported too. -1 with a message when sigaction or sigaltstack
// fails.
int interrupt_guard_install(ErrorMessage *err);

// A guarded call begins: until interrupt_guard_leave, a crash is reported as "WHO crashed (SIGNAL)
// during WHAT". Both strings must stay valid and unchanged until the leave (the handler reads them).
// Calls do not nest: an enter replaces the previous one.
void interrupt_guard_enter(const char *who, const char *what);
void interrupt_guard_leave(void);

#endif
