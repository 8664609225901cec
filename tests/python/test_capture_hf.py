"""capture_hf against the C reference (issue 17): transformers' Qwen3ForCausalLM loaded in fp32 from a
synthetic checkpoint (`fusecheck synth`), captured teacher-forced on a reference golden's tokens with
the hooks checked each step, is a valid trace (`fusecheck validate`) and passes `fusecheck compare`
against that golden at the default 1e-3 (measured: about 1e-6), with model_config copied from the
golden or built from the model's own config. Skips, saying why, without torch and transformers.
"""

import os
import subprocess
import unittest

from fusecheck import capture_hf, read_trace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("FUSECHECK_BIN") or os.path.join(ROOT, "build", "fusecheck")


def run_cli(*args):
    done = subprocess.run([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return done.returncode, done.stdout


def load_torch():
    try:
        import torch  # noqa: F401
        from transformers import Qwen3ForCausalLM
    except ImportError as error:
        raise unittest.SkipTest(f"torch and transformers are not installed ({error}); capture_hf is not run") from None
    return Qwen3ForCausalLM


def test_capture_hf_of_transformers_passes_compare_against_the_reference(tmp_path):
    Qwen3ForCausalLM = load_torch()
    import torch
    directory = str(tmp_path)
    model_dir, golden = os.path.join(directory, "model"), os.path.join(directory, "golden.h5")
    for args in (("synth", "--preset", "tiny", "--seed", "5", "--out", model_dir),
                 ("golden", "--model", model_dir, "--prompt-tokens", "7,3,250,9,1", "--steps", "4", "--quiet",
                  "--out", golden)):
        status, output = run_cli(*args)
        assert status == 0, output
    torch.set_float32_matmul_precision("highest")
    model = Qwen3ForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager",
                                             local_files_only=True).eval()
    from transformers.models.qwen3 import modeling_qwen3
    rope = modeling_qwen3.apply_rotary_pos_emb
    with read_trace(golden) as g:
        tokens, meta = g.tokens, g.meta
        golden_next = [g.read_next_token(step) for step in range(g.n_steps)]
    for label, config in (("golden-config", meta.model_config), ("own-config", None)):
        out = os.path.join(directory, f"{label}.h5")
        steps = []
        next_tokens = capture_hf(model, tokens, meta.prompt_length, out, weights_fingerprint=meta.weights_fingerprint,
                                 model_config=config, producer="python-test", check_hooks=True,
                                 on_step=lambda *step: steps.append(step))
        assert [s[:3] for s in steps] == [(0, 5, 0), (1, 1, 5), (2, 1, 6), (3, 1, 7), (4, 1, 8)], steps
        assert next_tokens == golden_next, (next_tokens, golden_next)
        status, output = run_cli("validate", out)
        assert status == 0, output
        status, output = run_cli("compare", out, golden)
        assert status == 0, output
        assert "0 missing, 0 failures" in output, output
    # The hooks and the RoPE wrapper are gone afterwards: the model runs as before.
    assert modeling_qwen3.apply_rotary_pos_emb is rope
    assert not any(module._forward_hooks or module._forward_pre_hooks for module in model.modules())
