// Ctrl-C and SIGTERM during a command that writes traces: the trace writer's temporary file
// (`<out>.tmp-<pid>`, golden/trace.h) would be left behind, tens of MB, with nothing said. After
// interrupt_cleanup_on_signal, SIGINT or SIGTERM removes each registered output's temporary file,
// prints one line on stderr ("fusecheck golden: interrupted, removed out.h5.tmp-1234") and exits
// 130 (SIGINT) or 143 (SIGTERM), as a shell reports a process killed by that signal.
//
// The handler only calls unlink, write and _exit (async-signal-safe): every path and message is
// prepared here, in advance.
#ifndef FUSECHECK_INTERRUPT_H
#define FUSECHECK_INTERRUPT_H

#include "../model/error.h"

#define INTERRUPT_MAX_OUTPUTS 8

// Installs the handlers for `command` ("golden") and registers `out_path`, whose temporary file
// the handler removes. Call once per output (up to INTERRUPT_MAX_OUTPUTS; gate writes several).
// Returns -1 with a message when the path is too long or sigaction fails.
int interrupt_cleanup_on_signal(const char *command, const char *out_path, ErrorMessage *err);

#endif
