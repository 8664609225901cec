"""Third-party oracle: the same golden trace, computed by Hugging Face transformers.

Loads a Qwen3 checkpoint with transformers' Qwen3ForCausalLM in fp32 (bf16 weights expanded exactly),
runs it teacher-forced on the tokens of an existing golden trace G (prefill of the prompt, then one
decode step per remaining token, with the KV cache), captures every tensor of golden/FORMAT.md with
forward hooks, and writes a trace in the same format (producer "hf-oracle").

    python3 golden/hf_oracle.py --model DIR --golden G.h5 --out O.h5 [--device cpu|cuda]
                                [--self-check] [--rope-f64]

Needs torch, transformers (5.x; 4.5x works too), numpy and h5py. No network: DIR is a local checkpoint.
The reading, the hooks and the writing are the fusecheck Python package's (python/fusecheck:
read_trace, capture_hf, TraceWriter); this script is its command line for the committed oracle traces.
"""

import argparse
import json
import os
import sys

# The package next to this script (python/fusecheck), whether or not it is pip-installed.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402

import transformers  # noqa: E402
from transformers import Qwen3ForCausalLM  # noqa: E402

from fusecheck import TraceError, capture_hf, read_trace  # noqa: E402

# Config keys the trace's model_config and the checkpoint must agree on.
CONFIG_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim", "vocab_size", "tie_word_embeddings")


def die(message):
    print(f"hf_oracle: {message}", file=sys.stderr)
    sys.exit(2)


def use_f64_rope(model):
    """Replace transformers' fp32 RoPE angles by angles computed in double and rounded once to fp32,
    as fusecheck's reference does (model/rope_table.h). Isolates the angle drift from everything else."""
    config = model.config
    rope = getattr(config, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(config, "rope_theta", None))
    rope_type = rope.get("rope_type", (getattr(config, "rope_scaling", None) or {}).get("rope_type", "default"))
    if theta is None or rope_type != "default":
        die(f"--rope-f64 supports default RoPE only (rope_type {rope_type}, theta {theta})")
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rotary = model.model.rotary_emb

    def forward(x, position_ids):
        exponent = torch.arange(0, head_dim, 2, dtype=torch.float64, device=x.device) / head_dim
        inv_freq = 1.0 / (float(theta) ** exponent)
        angles = position_ids.to(device=x.device, dtype=torch.float64)[..., None] * inv_freq  # [B, T, D/2]
        emb = torch.cat((angles, angles), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)

    rotary.forward = forward  # an instance attribute: nn.Module.__call__ (and its hooks) still run


def load_model(model_dir, device):
    try:  # transformers 5.x spells it dtype; 4.x torch_dtype
        model = Qwen3ForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager",
                                                 local_files_only=True)
    except TypeError:
        model = Qwen3ForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager",
                                                 local_files_only=True)
    model.eval()
    return model.to(device)


def read_golden(path):
    """The golden's tokens and identity, read (and refused) as the C reader does, versions 1 and 2."""
    try:
        with read_trace(path) as golden:
            meta = golden.meta
            return {
                "tokens": golden.tokens.astype("int64"),
                "prompt_length": meta.prompt_length,
                "n_steps": meta.n_steps,
                "weights_fingerprint": meta.weights_fingerprint,
                "model_config": meta.model_config,
            }
    except TraceError as error:
        die(str(error))


def check_config(golden_config_json, model, golden_path):
    """Refuse to trace a checkpoint whose shape differs from the one G was made from: the oracle copies
    G's fingerprint, so it must at least be the same model shape."""
    try:
        golden_config = json.loads(golden_config_json)
    except json.JSONDecodeError as error:
        die(f"{golden_path}: model_config is not JSON ({error})")
    config = model.config
    for key in CONFIG_KEYS:
        if key not in golden_config:
            continue
        ours = getattr(config, key, None)
        if key == "head_dim" and ours is None:
            ours = config.hidden_size // config.num_attention_heads
        if ours is not None and type(ours)(golden_config[key]) != ours:
            die(f"{golden_path}: model_config {key} = {golden_config[key]}, the checkpoint has {ours}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Hugging Face checkpoint directory (config.json + safetensors)")
    parser.add_argument("--golden", required=True, help="golden trace whose tokens to replay (teacher forcing)")
    parser.add_argument("--out", required=True, help="trace to write")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--self-check", action="store_true",
                        help="assert that the captured tensors chain into each other (hooks line up)")
    parser.add_argument("--rope-f64", action="store_true",
                        help="compute RoPE angles in double as fusecheck does, instead of transformers' fp32")
    args = parser.parse_args()

    if not os.path.isfile(os.path.join(args.model, "config.json")):
        die(f"{args.model}: no config.json (not a checkpoint directory)")
    if args.device == "cuda":
        if not torch.cuda.is_available():
            die("--device cuda: no CUDA device")
        # fp32 must mean fp32: TF32 matmuls would add ~1e-3 relative error.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")

    golden = read_golden(args.golden)
    tokens, prompt_length, n_steps = golden["tokens"], golden["prompt_length"], golden["n_steps"]
    if prompt_length < 1 or n_steps < 1 or len(tokens) < prompt_length + n_steps - 1:
        die(f"{args.golden}: {len(tokens)} tokens cannot feed a {prompt_length}-token prompt and {n_steps} steps")

    model = load_model(args.model, args.device)
    check_config(golden["model_config"], model, args.golden)
    if tokens.min() < 0 or tokens.max() >= model.config.vocab_size:
        die(f"{args.golden}: token ids outside [0, {model.config.vocab_size})")
    if args.rope_f64:
        use_f64_rope(model)
    n_layers = model.config.num_hidden_layers

    def progress(step, count, first, next_token):
        print(f"hf_oracle: step {step}: {count} token(s) at position {first}, next token {next_token}",
              file=sys.stderr)

    tool_version = f"transformers {transformers.__version__}"[:31]
    try:
        capture_hf(model, tokens, prompt_length, args.out, weights_fingerprint=golden["weights_fingerprint"],
                   model_config=golden["model_config"], n_steps=n_steps, producer="hf-oracle", kv_dtype="f32",
                   weights_dtype="bf16", tool_version=tool_version,
                   extra_attributes={"oracle_rope": "f64" if args.rope_f64 else "f32"},  # readers ignore it
                   check_hooks=args.self_check, on_step=progress)
    except TraceError as error:
        die(str(error))
    if args.self_check:
        print("hf_oracle: self-check passed: the hooks line up", file=sys.stderr)
    print(f"hf_oracle: wrote {args.out} ({n_steps} steps, {n_layers} layers)", file=sys.stderr)


if __name__ == "__main__":
    main()
