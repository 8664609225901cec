#!/usr/bin/env python3
"""Third-party oracle: the same golden trace, computed by Hugging Face transformers.

Loads a Qwen3 checkpoint with transformers' Qwen3ForCausalLM in fp32 (bf16 weights expanded exactly),
runs it teacher-forced on the tokens of an existing golden trace G (prefill of the prompt, then one
decode step per remaining token, with the KV cache), captures every tensor of golden/FORMAT.md with
forward hooks, and writes a trace in the same format (producer "hf-oracle").

    python3 golden/hf_oracle.py --model DIR --golden G.h5 --out O.h5 [--device cpu|cuda]
                                [--self-check] [--rope-f64]

Needs torch, transformers (5.x; 4.5x works too) and h5py. No network: DIR is a local checkpoint.
"""

import argparse
import json
import os
import sys

import h5py
import numpy as np
import torch

import transformers
from transformers import Qwen3ForCausalLM
from transformers.models.qwen3 import modeling_qwen3

FORMAT_VERSION = 2           # what this oracle writes (golden/FORMAT.md)
READABLE_VERSIONS = (1, 2)   # goldens it replays: version 1 has no `omitted` attribute
LAYER_TENSORS = ("attn_norm", "q", "k", "v", "attn", "attn_out", "resid_attn",
                 "mlp_norm", "gate", "up", "act", "mlp_out", "resid_mlp")
# Config keys the trace's model_config and the checkpoint must agree on.
CONFIG_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim", "vocab_size", "tie_word_embeddings")


def die(message):
    print(f"hf_oracle: {message}", file=sys.stderr)
    sys.exit(2)


def as_str(value):
    """h5py returns variable-length strings as str and fixed-length ones as bytes."""
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def rows(tensor):
    """[1, T, W] (batch of one) -> [T, W] float32 on the CPU."""
    if tensor.dim() != 3 or tensor.shape[0] != 1:
        raise RuntimeError(f"expected a [1, T, W] activation, got {tuple(tensor.shape)}")
    return tensor[0].detach().to(torch.float32).cpu()


def heads_to_rows(tensor):
    """[1, heads, T, head_dim] (attention layout) -> [T, heads*head_dim], head-major: (t, h*head_dim + d)."""
    if tensor.dim() != 4 or tensor.shape[0] != 1:
        raise RuntimeError(f"expected a [1, heads, T, head_dim] tensor, got {tuple(tensor.shape)}")
    _, n_heads, n_tokens, head_dim = tensor.shape
    return tensor[0].transpose(0, 1).reshape(n_tokens, n_heads * head_dim).detach().to(torch.float32).cpu()


def first_input(args, kwargs, name):
    """The module's main input, whether the caller passed it positionally or by keyword."""
    if args:
        return args[0]
    if name in kwargs:
        return kwargs[name]
    raise RuntimeError(f"hook could not find input '{name}'")


def layer_output(output):
    """Decoder layers return a tensor in transformers 5.x and a tuple (hidden, ...) in 4.x."""
    return output[0] if isinstance(output, (tuple, list)) else output


class Recorder:
    """Forward hooks that capture one step's tensors into self.tensors[(layer, name)] ([rows, cols] fp32).

    layer is -1 for the step-level tensors (embed, final_norm). Also kept, for --self-check and the
    q/k fallback: each layer's input, q_norm/k_norm outputs and RoPE cos/sin."""

    def __init__(self, model):
        self.model = model
        self.handles = []
        self.current_layer = None
        self.enabled = True  # off while --self-check re-runs modules, so its calls are not recorded
        self.reset()
        self._patch_rope()
        self._install_hooks()

    def reset(self):
        self.tensors = {}
        self.layer_inputs = {}
        self.qk_normed = {}   # layer -> {"q": [1,T,H,D], "k": [1,T,KV,D]} before RoPE
        self.cos_sin = None

    def put(self, layer, name, value):
        if (layer, name) in self.tensors:
            raise RuntimeError(f"layer {layer} tensor {name} captured twice in one step")
        self.tensors[(layer, name)] = value

    # q and k after RoPE exist only inside Qwen3Attention.forward, so we wrap the module-level
    # apply_rotary_pos_emb it calls; the attention pre-hook tells the wrapper which layer is running.
    def _patch_rope(self):
        original = modeling_qwen3.apply_rotary_pos_emb
        self.original_rope = original
        recorder = self

        def recording_rope(q, k, cos, sin, *args, **kwargs):
            q_embed, k_embed = original(q, k, cos, sin, *args, **kwargs)
            if recorder.enabled and recorder.current_layer is not None:
                recorder.put(recorder.current_layer, "q", heads_to_rows(q_embed))
                recorder.put(recorder.current_layer, "k", heads_to_rows(k_embed))
            return q_embed, k_embed

        modeling_qwen3.apply_rotary_pos_emb = recording_rope

    def _hook(self, module, fn, pre=False):
        def guarded(*args):
            if self.enabled:
                fn(*args)
            return None  # a pre-hook returning a value would replace the module's inputs
        if pre:
            self.handles.append(module.register_forward_pre_hook(guarded, with_kwargs=True))
        else:
            self.handles.append(module.register_forward_hook(guarded, with_kwargs=True))

    def _install_hooks(self):
        base = self.model.model
        self._hook(base.embed_tokens, lambda m, a, kw, out: self.put(-1, "embed", rows(out)))
        # final_norm keeps the last row only: the one that predicts the next token.
        self._hook(base.norm, lambda m, a, kw, out: self.put(-1, "final_norm", rows(out)[-1:]))
        self._hook(base.rotary_emb, lambda m, a, kw, out: setattr(self, "cos_sin", out))
        for index, layer in enumerate(base.layers):
            self._install_layer_hooks(index, layer)

    def _install_layer_hooks(self, i, layer):
        attn, mlp = layer.self_attn, layer.mlp
        put = self.put

        def layer_pre(m, args, kwargs):
            self.layer_inputs[i] = rows(first_input(args, kwargs, "hidden_states"))

        def attn_pre(m, args, kwargs):
            self.current_layer = i

        def attn_post(m, args, kwargs, out):
            self.current_layer = None

        def normed(name):
            def hook(m, args, kwargs, out):
                self.qk_normed.setdefault(i, {})[name] = out.detach()
            return hook

        self._hook(layer, layer_pre, pre=True)
        self._hook(layer.input_layernorm, lambda m, a, kw, out: put(i, "attn_norm", rows(out)))
        self._hook(attn, attn_pre, pre=True)
        self._hook(attn, attn_post)
        self._hook(attn.q_norm, normed("q"))
        self._hook(attn.k_norm, normed("k"))
        self._hook(attn.v_proj, lambda m, a, kw, out: put(i, "v", rows(out)))
        # o_proj's input is softmax(qk^T/sqrt(d))v with heads concatenated head-major.
        self._hook(attn.o_proj, lambda m, a, kw: put(i, "attn", rows(first_input(a, kw, "input"))), pre=True)
        self._hook(attn.o_proj, lambda m, a, kw, out: put(i, "attn_out", rows(out)))
        # post_attention_layernorm's input is exactly residual + attn_out as the model summed it (fp32);
        # --self-check confirms it equals layer input + attn_out.
        self._hook(layer.post_attention_layernorm,
                   lambda m, a, kw: put(i, "resid_attn", rows(first_input(a, kw, "hidden_states"))), pre=True)
        self._hook(layer.post_attention_layernorm, lambda m, a, kw, out: put(i, "mlp_norm", rows(out)))
        self._hook(mlp.gate_proj, lambda m, a, kw, out: put(i, "gate", rows(out)))
        self._hook(mlp.up_proj, lambda m, a, kw, out: put(i, "up", rows(out)))
        self._hook(mlp.down_proj, lambda m, a, kw: put(i, "act", rows(first_input(a, kw, "input"))), pre=True)
        self._hook(mlp, lambda m, a, kw, out: put(i, "mlp_out", rows(out)))
        self._hook(layer, lambda m, a, kw, out: put(i, "resid_mlp", rows(layer_output(out))))

    def fill_missing_qk(self, n_layers):
        """If a transformers version bypasses the module-level apply_rotary_pos_emb (a hub kernel, a
        renamed helper), rebuild q and k from the q_norm/k_norm outputs and the model's own cos/sin
        with the same function, so the values are still exactly what attention consumed."""
        missing = [i for i in range(n_layers) if (i, "q") not in self.tensors]
        if not missing:
            return False
        if self.cos_sin is None:
            raise RuntimeError("RoPE was never applied through a hookable path: cannot capture q, k")
        cos, sin = self.cos_sin
        for i in missing:
            q = self.qk_normed[i]["q"].transpose(1, 2)   # [1, T, H, D] -> [1, H, T, D], as attention does
            k = self.qk_normed[i]["k"].transpose(1, 2)
            q_embed, k_embed = self.original_rope(q, k, cos, sin)
            self.put(i, "q", heads_to_rows(q_embed))
            self.put(i, "k", heads_to_rows(k_embed))
        return True

    def check_complete(self, n_layers, step):
        missing = [f"layer {i} {name}" for i in range(n_layers) for name in LAYER_TENSORS
                   if (i, name) not in self.tensors]
        missing += [name for name in ("embed", "final_norm") if (-1, name) not in self.tensors]
        if missing:
            raise RuntimeError(f"step {step}: hooks captured nothing for: {', '.join(missing)}")


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
    try:
        with h5py.File(path, "r") as golden:
            attrs = golden.attrs
            for key in ("format_version", "prompt_length", "n_steps", "weights_fingerprint", "model_config"):
                if key not in attrs:
                    die(f"{path}: no attribute '{key}' (not a fusecheck trace?)")
            if int(attrs["format_version"]) not in READABLE_VERSIONS:
                die(f"{path}: format_version {int(attrs['format_version'])}, this oracle reads versions "
                    f"{', '.join(map(str, READABLE_VERSIONS))}")
            if "tokens" not in golden:
                die(f"{path}: no dataset /tokens")
            return {
                "tokens": np.asarray(golden["tokens"][:], dtype=np.int64),
                "prompt_length": int(attrs["prompt_length"]),
                "n_steps": int(attrs["n_steps"]),
                "weights_fingerprint": as_str(attrs["weights_fingerprint"]),
                "model_config": as_str(attrs["model_config"]),
            }
    except OSError as error:
        die(f"{path}: not an HDF5 file or truncated ({error})")


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


def self_check(recorder, model, n_layers, logits_row, next_token, step):
    """Proves the hooks line up: each captured tensor is what the next module consumed."""
    t = recorder.tensors

    def same(a, b, what):
        if a.shape != b.shape or not torch.equal(a, b):
            diff = (a - b).abs().max().item() if a.shape == b.shape else float("nan")
            raise AssertionError(f"self-check, step {step}: {what} (shapes {tuple(a.shape)} {tuple(b.shape)}, "
                                 f"max diff {diff:.3e})")

    def close(a, b, what, tolerance=1e-6):
        if a.shape != b.shape or not torch.allclose(a, b, rtol=tolerance, atol=tolerance):
            raise AssertionError(f"self-check, step {step}: {what} differs")

    same(recorder.layer_inputs[0], t[(-1, "embed")], "layer 0 input != embed")
    for i in range(n_layers):
        if i > 0:
            same(recorder.layer_inputs[i], t[(i - 1, "resid_mlp")], f"layer {i} input != layer {i-1} resid_mlp")
        same(t[(i, "resid_attn")], recorder.layer_inputs[i] + t[(i, "attn_out")],
             f"layer {i} resid_attn != input + attn_out")
        same(t[(i, "resid_mlp")], t[(i, "resid_attn")] + t[(i, "mlp_out")], f"layer {i} resid_mlp != resid_attn + mlp_out")
        close(t[(i, "act")], torch.nn.functional.silu(t[(i, "gate")]) * t[(i, "up")],
              f"layer {i} act vs silu(gate)*up")
    # The last layer's output, through model.norm, is the final_norm we recorded.
    device = next(model.parameters()).device
    recorder.enabled = False
    try:
        with torch.no_grad():
            last_output = t[(n_layers - 1, "resid_mlp")].to(device)[None]  # [1, T, hidden], as the model ran it
            renormed = model.model.norm(last_output)[0, -1:].to(torch.float32).cpu()
            relogits = model.lm_head(t[(-1, "final_norm")].to(device)).to(torch.float32).cpu()
    finally:
        recorder.enabled = True
    same(renormed, t[(-1, "final_norm")], "norm(last resid_mlp) != final_norm")
    # One row through lm_head may sum in another order than T rows did: close, not equal.
    close(relogits, logits_row, "lm_head(final_norm) vs logits", tolerance=1e-5)
    if int(torch.argmax(logits_row[0])) != next_token:
        raise AssertionError(f"self-check, step {step}: next_token is not the argmax of logits")


def write_trace(path, golden, steps, tool_version, rope_mode):
    """Writes the trace next to `path` and renames it into place, so a failed run never leaves a
    half-written file under the final name (as the C writer does)."""
    temp = f"{path}.tmp-{os.getpid()}"
    try:
        with h5py.File(temp, "w") as out:
            out.attrs["format_version"] = np.int32(FORMAT_VERSION)
            out.attrs["producer"] = "hf-oracle"
            out.attrs["kv_dtype"] = "f32"
            out.attrs["weights_dtype"] = "bf16"
            out.attrs["weights_fingerprint"] = golden["weights_fingerprint"]
            out.attrs["tool_version"] = tool_version
            out.attrs["model_config"] = golden["model_config"]
            out.attrs["prompt_length"] = np.int32(golden["prompt_length"])
            out.attrs["n_steps"] = np.int32(len(steps))
            out.attrs["omitted"] = ""  # version 2: the oracle captures every tensor, it declares nothing omitted
            out.attrs["oracle_rope"] = rope_mode  # extra attribute: readers ignore what they do not know
            out.create_dataset("tokens", data=golden["tokens"].astype(np.int32))
            for index, step in enumerate(steps):
                group = out.create_group(f"step_{index:04d}")
                group.attrs["first_position"] = np.int32(step["first_position"])
                group.attrs["n_tokens"] = np.int32(step["n_tokens"])
                for (layer, name), value in sorted(step["tensors"].items()):
                    where = name if layer < 0 else f"layer_{layer:02d}/{name}"
                    group.create_dataset(where, data=np.ascontiguousarray(value.numpy(), dtype=np.float32))
                group.create_dataset("next_token", data=np.array([step["next_token"]], dtype=np.int32))
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


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
    recorder = Recorder(model)

    steps = []
    cache = None
    used_fallback = False
    with torch.no_grad():
        for step in range(n_steps):
            # Teacher forcing (FORMAT.md): step 0 consumes the prompt, step s >= 1 token prompt_length+s-1.
            first = 0 if step == 0 else prompt_length + step - 1
            count = prompt_length if step == 0 else 1
            input_ids = torch.tensor(tokens[first:first + count], dtype=torch.long, device=args.device)[None, :]
            recorder.reset()
            output = model(input_ids=input_ids, past_key_values=cache, use_cache=True)
            cache = output.past_key_values
            if cache is None or cache.get_seq_length() != first + count:
                raise RuntimeError(f"step {step}: the KV cache holds {None if cache is None else cache.get_seq_length()}"
                                   f" positions, expected {first + count}")
            used_fallback |= recorder.fill_missing_qk(n_layers)
            recorder.check_complete(n_layers, step)
            logits_row = output.logits[0, -1:].detach().to(torch.float32).cpu()  # last row only
            next_token = int(torch.argmax(logits_row[0]))
            if args.self_check:
                self_check(recorder, model, n_layers, logits_row, next_token, step)
            tensors = dict(recorder.tensors)
            tensors[(-1, "logits")] = logits_row
            steps.append({"first_position": first, "n_tokens": count, "tensors": tensors, "next_token": next_token})
            print(f"hf_oracle: step {step}: {count} token(s) at position {first}, next token {next_token}",
                  file=sys.stderr)

    if used_fallback:
        print("hf_oracle: note: q/k rebuilt from q_norm/k_norm and cos/sin (apply_rotary_pos_emb was not called "
              "through the module)", file=sys.stderr)
    tool_version = f"transformers {transformers.__version__}"[:31]
    write_trace(args.out, golden, steps, tool_version, "f64" if args.rope_f64 else "f32")
    if args.self_check:
        print("hf_oracle: self-check passed: the hooks line up", file=sys.stderr)
    print(f"hf_oracle: wrote {args.out} ({n_steps} steps, {n_layers} layers)", file=sys.stderr)


if __name__ == "__main__":
    main()
