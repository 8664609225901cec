// Subcommands of the fusecheck CLI. Each takes the arguments after its name (argv[0] is the
// subcommand name) and returns the process exit status: 0 success, 1 a check failed (compare,
// gate), 2 bad input or usage (one line on stderr naming the file or flag), others as documented.
#ifndef FUSECHECK_COMMANDS_H
#define FUSECHECK_COMMANDS_H

int cmd_synth(int argc, char **argv);
int cmd_golden(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_gate(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
