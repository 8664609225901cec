"""The names and rules of golden/FORMAT.md that the writer and the reader share (golden/trace_names.c)."""

import json
from typing import Dict, List, Optional, Sequence

FORMAT_VERSION = 2          # what TraceWriter writes
OLDEST_FORMAT_VERSION = 1   # readers accept 1..FORMAT_VERSION; version 1 has no `omitted`

# Per-layer tensors in forward order (TRACE_LAYER_TENSORS) and the step-level ones (TRACE_STEP_TENSORS).
LAYER_TENSORS = ("attn_norm", "q", "k", "v", "attn", "attn_out", "resid_attn",
                 "mlp_norm", "gate", "up", "act", "mlp_out", "resid_mlp")
STEP_TENSORS = ("embed", "final_norm", "logits", "next_token")
# The contract's checkpoints: never declared omitted, never allowed missing.
CHECKPOINTS = ("resid_mlp", "k", "v", "logits", "next_token", "embed")
CHECKPOINT_LIST = ", ".join(CHECKPOINTS)

# Root attribute limits of the C TraceMeta (a field of N bytes holds N - 1 characters).
STRING_LIMITS = {"producer": 31, "kv_dtype": 7, "weights_dtype": 7, "weights_fingerprint": 16, "tool_version": 31}
KV_DTYPES = ("f32", "bf16")
WEIGHTS_DTYPES = ("bf16", "f32", "f16")


class TraceError(Exception):
    """A refused trace or a refused write: one line naming the file (and object) and what is wrong."""


def check_omittable(name: str) -> Optional[str]:
    """None when a producer may declare `name` omitted, else the rule it breaks (trace_check_omittable)."""
    if name in CHECKPOINTS:
        return f"'{name}' is a contract checkpoint ({CHECKPOINT_LIST}): it may never be omitted or allowed missing"
    if name not in LAYER_TENSORS and name not in STEP_TENSORS:
        allowed = ", ".join(n for n in LAYER_TENSORS + STEP_TENSORS if n not in CHECKPOINTS)
        return f"'{name}' is not a trace tensor name that may be omitted ({allowed})"
    return None


def parse_omitted(text: str) -> List[str]:
    """The names of an `omitted` attribute ("gate,up,act"; spaces around names ignored; "" for none),
    checked as trace_meta_set_omitted does. Raises ValueError naming the rule."""
    if text.strip() == "":
        return []
    names: List[str] = []
    for item in text.split(","):
        name = item.strip(" ")
        if not name:
            raise ValueError(f"an empty name in the list '{text}'")
        why = check_omittable(name)
        if why:
            raise ValueError(why)
        if name in names:
            raise ValueError(f"'{name}' is declared twice")
        names.append(name)
    return names


def layer_path(step: int, layer: Optional[int], name: Optional[str] = None) -> str:
    """"/step_0003", "/step_0003/layer_07", "/step_0003/layer_07/q", "/step_0003/logits" (trace_build_path)."""
    path = f"/step_{step:04d}"
    if layer is not None and layer >= 0:
        path += f"/layer_{layer:02d}"
    return f"{path}/{name}" if name else path


class ModelShape:
    """The widths FORMAT.md gives each tensor, from a model_config JSON text (config_parse's keys)."""

    def __init__(self, config_json: str):
        try:
            config = json.loads(config_json)
        except json.JSONDecodeError as error:
            raise ValueError(f"model_config is not JSON ({error})") from None
        if not isinstance(config, dict):
            raise ValueError("model_config is not a JSON object")

        def positive(key: str, default: Optional[int] = None) -> int:
            value = config.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"model_config field '{key}' is {value!r}, expected a positive integer")
            return value

        self.hidden_size = positive("hidden_size")
        self.intermediate_size = positive("intermediate_size")
        self.num_hidden_layers = positive("num_hidden_layers")
        self.num_attention_heads = positive("num_attention_heads")
        self.num_key_value_heads = positive("num_key_value_heads")
        self.head_dim = positive("head_dim", self.hidden_size // self.num_attention_heads)
        self.vocab_size = positive("vocab_size")

    def width(self, name: str) -> int:
        """Columns of a layer tensor or of embed/final_norm/logits."""
        q = self.num_attention_heads * self.head_dim
        kv = self.num_key_value_heads * self.head_dim
        widths: Dict[str, int] = {"q": q, "attn": q, "k": kv, "v": kv, "gate": self.intermediate_size,
                                  "up": self.intermediate_size, "act": self.intermediate_size,
                                  "logits": self.vocab_size}
        return widths.get(name, self.hidden_size)

    @staticmethod
    def meaning(name: str) -> str:
        return {"q": "num_attention_heads*head_dim", "attn": "num_attention_heads*head_dim",
                "k": "num_key_value_heads*head_dim", "v": "num_key_value_heads*head_dim",
                "gate": "intermediate_size", "up": "intermediate_size", "act": "intermediate_size",
                "logits": "vocab_size"}.get(name, "hidden_size")


def required_names(omitted: Sequence[str]):
    """(layer tensor names, step tensor names) every step must hold, given the declared omissions."""
    return ([n for n in LAYER_TENSORS if n not in omitted], [n for n in STEP_TENSORS if n not in omitted])
