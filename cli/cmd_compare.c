// PLACEHOLDER: replaced by the real subcommand.
#include <stdio.h>
#include "commands.h"
int cmd_compare(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "fusecheck compare: not implemented yet\n"); return 2; }
