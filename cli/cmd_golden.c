// PLACEHOLDER: replaced by the real subcommand.
#include <stdio.h>
#include "commands.h"
int cmd_golden(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "fusecheck golden: not implemented yet\n"); return 2; }
