"""capture_hf: a trace of transformers' Qwen3ForCausalLM (or any module tree with its names) through
forward hooks, teacher-forced on given tokens, written with TraceWriter.

The module tree it hooks (transformers' names):
    model.model.embed_tokens                       -> embed
    model.model.layers[i].input_layernorm          -> attn_norm
    model.model.layers[i].self_attn.{q_norm,k_norm} + RoPE -> q, k   (see below)
    model.model.layers[i].self_attn.v_proj         -> v
    model.model.layers[i].self_attn.o_proj         -> attn (its input), attn_out (its output)
    model.model.layers[i].post_attention_layernorm -> resid_attn (its input), mlp_norm (its output)
    model.model.layers[i].mlp.{gate_proj,up_proj}  -> gate, up
    model.model.layers[i].mlp.down_proj            -> act (its input)
    model.model.layers[i].mlp                      -> mlp_out
    model.model.layers[i]                          -> resid_mlp (its output)
    model.model.norm                               -> final_norm (last row)
    model.model.rotary_emb                         -> cos, sin (for the q/k fallback)
and the call model(input_ids=..., past_key_values=cache, use_cache=True) returning .logits and
.past_key_values, as transformers' causal LMs do. q and k after RoPE exist only inside the attention's
forward, so the module-level apply_rotary_pos_emb of the attention class's module is wrapped while
capturing; when it is not called through that name, q and k are rebuilt from the q_norm/k_norm outputs
and the model's own cos/sin (rotate-half RoPE), which are exactly what attention consumed.

torch (and transformers, for the tool_version) are imported only when capture_hf runs.
"""

import inspect
import json
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .names import LAYER_TENSORS
from .writer import TraceWriter, tensors_of_step

# The fusecheck config keys (config_to_json) a default model_config is built from.
CONFIG_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
               "head_dim", "vocab_size", "max_position_embeddings", "rms_norm_eps", "rope_theta", "tie_word_embeddings")


def _rows(tensor):
    """[1, T, W] (batch of one) -> [T, W] float32 on the CPU."""
    import torch
    if tensor.dim() != 3 or tensor.shape[0] != 1:
        raise RuntimeError(f"expected a [1, T, W] activation, got {tuple(tensor.shape)}")
    return tensor[0].detach().to(torch.float32).cpu()


def _heads_to_rows(tensor):
    """[1, heads, T, head_dim] (attention layout) -> [T, heads*head_dim], head-major: (t, h*head_dim + d)."""
    import torch
    if tensor.dim() != 4 or tensor.shape[0] != 1:
        raise RuntimeError(f"expected a [1, heads, T, head_dim] tensor, got {tuple(tensor.shape)}")
    _, n_heads, n_tokens, head_dim = tensor.shape
    return tensor[0].transpose(0, 1).reshape(n_tokens, n_heads * head_dim).detach().to(torch.float32).cpu()


def _first_input(args, kwargs, name):
    """The module's main input, whether the caller passed it positionally or by keyword."""
    if args:
        return args[0]
    if name in kwargs:
        return kwargs[name]
    raise RuntimeError(f"hook could not find input '{name}'")


def _layer_output(output):
    """Decoder layers return a tensor in transformers 5.x and a tuple (hidden, ...) in 4.x."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _rotate_half_rope(q, k, cos, sin, *args, **kwargs):
    """Rotate-half (NeoX) RoPE as transformers applies it: [1, H, T, D] with cos/sin [1, T, D]."""
    import torch

    def rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class Recorder:
    """Forward hooks that capture one step's tensors into self.tensors[(layer, name)] ([rows, cols] fp32
    torch tensors); layer -1 for embed and final_norm. Also kept, for self_check and the q/k fallback:
    each layer's input, the q_norm/k_norm outputs and RoPE's cos/sin. remove() undoes everything."""

    def __init__(self, model):
        self.model = model
        self.handles = []
        self.current_layer = None
        self.enabled = True  # off while self_check re-runs modules, so its calls are not recorded
        self.rope_module = None
        self.reset()
        self._patch_rope()
        self._install_hooks()

    def reset(self):
        self.tensors: Dict[Tuple[int, str], object] = {}
        self.layer_inputs = {}
        self.qk_normed = {}   # layer -> {"q": [1,T,H,D], "k": [1,T,KV,D]} before RoPE
        self.cos_sin = None

    def put(self, layer, name, value):
        if (layer, name) in self.tensors:
            raise RuntimeError(f"layer {layer} tensor {name} captured twice in one step")
        self.tensors[(layer, name)] = value

    def _patch_rope(self):
        layers = self.model.model.layers
        module = sys.modules.get(type(layers[0].self_attn).__module__) if len(layers) else None
        original = getattr(module, "apply_rotary_pos_emb", None)
        self.original_rope = original or _rotate_half_rope
        if original is None:
            return  # no module-level RoPE to wrap: fill_missing_qk rebuilds q and k
        recorder = self

        def recording_rope(q, k, cos, sin, *args, **kwargs):
            q_embed, k_embed = original(q, k, cos, sin, *args, **kwargs)
            if recorder.enabled and recorder.current_layer is not None:
                recorder.put(recorder.current_layer, "q", _heads_to_rows(q_embed))
                recorder.put(recorder.current_layer, "k", _heads_to_rows(k_embed))
            return q_embed, k_embed

        self.rope_module = module
        module.apply_rotary_pos_emb = recording_rope

    def remove(self):
        for handle in self.handles:
            handle.remove()
        self.handles = []
        if self.rope_module is not None:
            self.rope_module.apply_rotary_pos_emb = self.original_rope
            self.rope_module = None

    def _hook(self, module, fn, pre=False):
        def guarded(*args):
            if self.enabled:
                fn(*args)
            return None  # a pre-hook returning a value would replace the module's inputs
        register = module.register_forward_pre_hook if pre else module.register_forward_hook
        self.handles.append(register(guarded, with_kwargs=True))

    def _install_hooks(self):
        base = self.model.model
        self._hook(base.embed_tokens, lambda m, a, kw, out: self.put(-1, "embed", _rows(out)))
        # final_norm keeps the last row only: the one that predicts the next token.
        self._hook(base.norm, lambda m, a, kw, out: self.put(-1, "final_norm", _rows(out)[-1:]))
        if hasattr(base, "rotary_emb"):
            self._hook(base.rotary_emb, lambda m, a, kw, out: setattr(self, "cos_sin", out))
        for index, layer in enumerate(base.layers):
            self._install_layer_hooks(index, layer)

    def _install_layer_hooks(self, i, layer):
        attn, mlp = layer.self_attn, layer.mlp
        put = self.put

        def layer_pre(m, args, kwargs):
            self.layer_inputs[i] = _rows(_first_input(args, kwargs, "hidden_states"))

        def attn_pre(m, args, kwargs):
            self.current_layer = i

        def attn_post(m, args, kwargs, out):
            self.current_layer = None

        def normed(name):
            def hook(m, args, kwargs, out):
                self.qk_normed.setdefault(i, {})[name] = out.detach()
            return hook

        self._hook(layer, layer_pre, pre=True)
        self._hook(layer.input_layernorm, lambda m, a, kw, out: put(i, "attn_norm", _rows(out)))
        self._hook(attn, attn_pre, pre=True)
        self._hook(attn, attn_post)
        self._hook(attn.q_norm, normed("q"))
        self._hook(attn.k_norm, normed("k"))
        self._hook(attn.v_proj, lambda m, a, kw, out: put(i, "v", _rows(out)))
        # o_proj's input is softmax(qk^T/sqrt(d))v with heads concatenated head-major.
        self._hook(attn.o_proj, lambda m, a, kw: put(i, "attn", _rows(_first_input(a, kw, "input"))), pre=True)
        self._hook(attn.o_proj, lambda m, a, kw, out: put(i, "attn_out", _rows(out)))
        # post_attention_layernorm's input is exactly residual + attn_out as the model summed it (fp32);
        # self_check confirms it equals layer input + attn_out.
        self._hook(layer.post_attention_layernorm,
                   lambda m, a, kw: put(i, "resid_attn", _rows(_first_input(a, kw, "hidden_states"))), pre=True)
        self._hook(layer.post_attention_layernorm, lambda m, a, kw, out: put(i, "mlp_norm", _rows(out)))
        self._hook(mlp.gate_proj, lambda m, a, kw, out: put(i, "gate", _rows(out)))
        self._hook(mlp.up_proj, lambda m, a, kw, out: put(i, "up", _rows(out)))
        self._hook(mlp.down_proj, lambda m, a, kw: put(i, "act", _rows(_first_input(a, kw, "input"))), pre=True)
        self._hook(mlp, lambda m, a, kw, out: put(i, "mlp_out", _rows(out)))
        self._hook(layer, lambda m, a, kw, out: put(i, "resid_mlp", _rows(_layer_output(out))))

    def fill_missing_qk(self, n_layers):
        """When the attention did not call the module-level apply_rotary_pos_emb (a hub kernel, a renamed
        helper, a tree without one), rebuild q and k from the q_norm/k_norm outputs and the model's own
        cos/sin, so the values are still exactly what attention consumed. True when it had to."""
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
            self.put(i, "q", _heads_to_rows(q_embed))
            self.put(i, "k", _heads_to_rows(k_embed))
        return True

    def check_complete(self, n_layers, step):
        missing = [f"layer {i} {name}" for i in range(n_layers) for name in LAYER_TENSORS
                   if (i, name) not in self.tensors]
        missing += [name for name in ("embed", "final_norm") if (-1, name) not in self.tensors]
        if missing:
            raise RuntimeError(f"step {step}: hooks captured nothing for: {', '.join(missing)}")


def self_check(recorder, model, n_layers, logits_row, next_token, step):
    """Proves the hooks line up: each captured tensor is what the next module consumed."""
    import torch
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


def _forward_with_cache(model, input_ids, cache):
    """One step with the KV cache: transformers >= 5.2x calls the argument `cache` (and deprecates
    `past_key_values`, removed in 5.40); earlier versions only know `past_key_values`. Returns
    (output, the updated cache)."""
    cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    output = model(input_ids=input_ids, use_cache=True, **{cache_name: cache})
    updated = getattr(output, "cache", None)
    return output, updated if updated is not None else getattr(output, "past_key_values", None)


def model_config_json(config) -> str:
    """A model_config text (fusecheck's key names) from a transformers config object: the keys
    `fusecheck compare` parses, rope_theta from rope_parameters when transformers 5 moved it there."""
    values = {"architectures": ["Qwen3ForCausalLM"]}
    for key in CONFIG_KEYS:
        value = getattr(config, key, None)
        if key == "head_dim" and value is None:
            value = config.hidden_size // config.num_attention_heads
        if key == "rope_theta" and value is None:
            value = (getattr(config, "rope_parameters", None) or {}).get("rope_theta")
        if value is None:
            raise ValueError(f"model config has no '{key}': pass model_config= explicitly")
        values[key] = value
    return json.dumps(values, indent=2)


def capture_hf(model, tokens: Sequence[int], prompt_length: int, path: str, *, weights_fingerprint: str,
               model_config: Optional[str] = None, n_steps: Optional[int] = None, producer: str = "hf-capture",
               kv_dtype: str = "f32", weights_dtype: str = "bf16", tool_version: Optional[str] = None,
               omitted: str = "", extra_attributes=None, check_hooks: bool = False,
               on_step: Optional[Callable[[int, int, int, int], None]] = None) -> List[int]:
    """Runs `model` teacher-forced on `tokens` and writes the trace at `path` (atomically).

    Step 0 consumes tokens[0:prompt_length]; step s >= 1 the single token tokens[prompt_length+s-1],
    with the model's KV cache; n_steps defaults to len(tokens) - prompt_length + 1 (every token).
    weights_fingerprint is the checkpoint's fusecheck fingerprint (copy it from a golden of the same
    checkpoint: compare refuses traces of different weights); model_config defaults to the model's
    config in fusecheck's key names. check_hooks asserts, each step, that the captured tensors chain
    into each other (the hooks line up). on_step(step, n_tokens, first_position, next_token) is called
    after each step. Returns each step's next_token (the argmax of its logits)."""
    import torch
    tokens = np.asarray(tokens, dtype=np.int64)
    if n_steps is None:
        n_steps = len(tokens) - prompt_length + 1
    if prompt_length < 1 or n_steps < 1 or len(tokens) < prompt_length + n_steps - 1:
        raise ValueError(f"{len(tokens)} tokens cannot feed a {prompt_length}-token prompt and {n_steps} steps")
    if tool_version is None:
        try:
            import transformers
            tool_version = f"transformers {transformers.__version__}"[:31]
        except ImportError:
            tool_version = f"torch {torch.__version__}"[:31]
    n_layers = len(model.model.layers)
    device = next(model.parameters()).device
    writer = TraceWriter(path, producer=producer, kv_dtype=kv_dtype, weights_dtype=weights_dtype,
                         weights_fingerprint=weights_fingerprint, tool_version=tool_version,
                         model_config=model_config or model_config_json(model.config), prompt_length=prompt_length,
                         omitted=omitted, extra_attributes=extra_attributes)
    recorder = Recorder(model)
    next_tokens: List[int] = []
    try:
        writer.write_tokens(tokens[:prompt_length + n_steps - 1].astype(np.int32))
        cache = None
        with torch.no_grad():
            for step in range(n_steps):
                # Teacher forcing (FORMAT.md): step 0 consumes the prompt, step s >= 1 token prompt_length+s-1.
                first = 0 if step == 0 else prompt_length + step - 1
                count = prompt_length if step == 0 else 1
                input_ids = torch.tensor(tokens[first:first + count], dtype=torch.long, device=device)[None, :]
                recorder.reset()
                output, cache = _forward_with_cache(model, input_ids, cache)
                if cache is None or cache.get_seq_length() != first + count:
                    held = None if cache is None else cache.get_seq_length()
                    raise RuntimeError(f"step {step}: the KV cache holds {held} positions, expected {first + count}")
                if recorder.fill_missing_qk(n_layers) and step == 0:
                    print("fusecheck.capture_hf: note: q/k rebuilt from q_norm/k_norm and cos/sin "
                          "(apply_rotary_pos_emb was not called through the module)", file=sys.stderr)
                recorder.check_complete(n_layers, step)
                logits_row = output.logits[0, -1:].detach().to(torch.float32).cpu()  # last row only
                next_token = int(torch.argmax(logits_row[0]))
                if check_hooks:
                    self_check(recorder, model, n_layers, logits_row, next_token, step)
                captured = dict(recorder.tensors)
                captured[(-1, "logits")] = logits_row
                writer.begin_step(step, first, count)
                for layer, name in tensors_of_step(captured):
                    writer.write_tensor(layer, name, captured[(layer, name)].numpy())
                writer.write_next_token(next_token)
                next_tokens.append(next_token)
                if on_step:
                    on_step(step, count, first, next_token)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        recorder.remove()
    return next_tokens
