// The reference against the third party: transformers' Qwen3ForCausalLM in fp32 (golden/hf_oracle.py),
// teacher-forced on the committed goldens' tokens. Every tensor both traces hold must agree to
// rel_l2 <= 1e-5: two independent fp32 implementations of the same math differ by rounding only.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_support.h"

static void compare_with_oracle(const char *preset) {
    char args[1024], *output;
    snprintf(args, sizeof args, "compare golden/%s-kv-f32.h5 golden/%s-hf-oracle.h5 --max-rel-l2 1e-5 --max-norm-max 1e-5",
             preset, preset);
    int status = test_run_cli(args, &output);
    cr_expect_eq(status, 0, "reference vs transformers on %s:\n%s", preset, output);
    free(output);
}

Test(reference_vs_oracle, tiny) { compare_with_oracle("tiny"); }
Test(reference_vs_oracle, small) { compare_with_oracle("small"); }
