// The committed golden traces are what the reference computes today: regenerate each the way
// golden/regenerate.sh does and compare with the committed file. Different BLAS kernels on another
// CPU may reorder sums, so the comparison is at 1e-6 (rounding), not bitwise; a change to the math
// or the generator moves errors by orders more.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_support.h"

static void regenerate_and_compare(const char *preset, const char *kv_dtype) {
    char *model = test_synth_checkpoint(preset, 0);
    char *dir = test_make_temp_dir("regenerated");
    char *trace = test_path_join(dir, "golden.h5");
    char args[4096], *output;
    snprintf(args, sizeof args, "golden --model '%s' --prompt-len 12 --seed 1 --steps 8 --kv-dtype %s --out '%s'", model,
             kv_dtype, trace);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    free(output);
    snprintf(args, sizeof args, "compare '%s' golden/%s-kv-%s.h5 --max-rel-l2 1e-6 --max-norm-max 1e-6", trace, preset,
             kv_dtype);
    int status = test_run_cli(args, &output);
    cr_expect_eq(status, 0, "regenerated %s kv %s drifted from golden/%s-kv-%s.h5:\n%s", preset, kv_dtype, preset,
                 kv_dtype, output);
    free(output);
    free(model);
    free(dir);
    free(trace);
}

Test(committed_goldens, tiny_kv_f32) { regenerate_and_compare("tiny", "f32"); }
Test(committed_goldens, tiny_kv_bf16) { regenerate_and_compare("tiny", "bf16"); }
Test(committed_goldens, tiny_eps_kv_f32) { regenerate_and_compare("tiny-eps", "f32"); }
Test(committed_goldens, tiny_eps_kv_bf16) { regenerate_and_compare("tiny-eps", "bf16"); }
Test(committed_goldens, small_kv_f32) { regenerate_and_compare("small", "f32"); }
Test(committed_goldens, small_kv_bf16) { regenerate_and_compare("small", "bf16"); }
