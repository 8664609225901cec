"""TraceReader / read_trace: reads a trace and refuses what the C reader (golden/trace_read.c) refuses.

Opening validates the root attributes, /tokens, the step groups and their positions, and that every
object in a step or layer group opens, so a later read fails only on the tensor it asks for. Every
refusal is a TraceError with one line naming the file (and the HDF5 object). Unlike trace_open, it does
not read the file in a sandboxed child first: a corrupt file that crashes the HDF5 library crashes
Python too (`fusecheck validate` is the safe way to check a file from an unknown source).
"""

import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import h5py
import numpy as np

from .names import (FORMAT_VERSION, OLDEST_FORMAT_VERSION, STRING_LIMITS, TraceError, layer_path, parse_omitted)

INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1


@dataclass
class TraceMeta:
    """The root attributes (TraceMeta of golden/trace.h)."""
    format_version: int
    producer: str
    kv_dtype: str
    weights_dtype: str
    weights_fingerprint: str
    tool_version: str
    model_config: str
    prompt_length: int
    n_steps: int
    kv_forced: int = 0
    omitted: List[str] = field(default_factory=list)


def _canonical_index(name: str, prefix: str, width: int) -> int:
    """"layer_07" -> 7 with prefix "layer_", width 2; -1 for anything not spelled exactly so."""
    digits = name[len(prefix):]
    if not name.startswith(prefix) or not digits.isdigit() or not width <= len(digits) <= 6 or not digits.isascii():
        return -1
    index = int(digits)
    return index if f"{prefix}{index:0{width}d}" == name else -1


class TraceReader:
    """An open trace. `meta`, `tokens` (int32 [T]) and `n_steps` are read at open; tensors on demand."""

    def __init__(self, path: str):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise TraceError(f"{self.path}: no such trace file")
        if not os.path.isfile(self.path):
            raise TraceError(f"{self.path}: not a regular file")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError:
            raise TraceError(f"{self.path}: not an HDF5 file or truncated") from None
        try:
            self.meta = self._read_meta()
            self.tokens = self._read_tokens()
            needed = self.meta.prompt_length + self.meta.n_steps - 1
            if self.tokens.size < needed:
                raise TraceError(f"{self.path}: /tokens has {self.tokens.size} tokens, {self.meta.n_steps} steps "
                                 f"after a {self.meta.prompt_length}-token prompt need {needed}")
            self.step_positions: List[Tuple[int, int]] = self._read_steps()
        except BaseException:
            self.file.close()
            raise

    # -- attributes -------------------------------------------------------------------------------

    def _attribute(self, owner, where: str, name: str, want: str):
        """The raw value of a single-element attribute of class `want` ("string" or "integer")."""
        if name not in owner.attrs:
            raise TraceError(f"{self.path}: {where} has no attribute '{name}' (not a fusecheck trace?)")
        try:
            attribute_id = owner.attrs.get_id(name)
            value = owner.attrs[name]
        except (OSError, KeyError, TypeError):
            raise TraceError(f"{self.path}: cannot open attribute '{name}' of {where}") from None
        kind = attribute_id.dtype.kind
        is_string = kind in "SU" or h5py.check_string_dtype(attribute_id.dtype) is not None
        ok = is_string if want == "string" else kind in "iu"
        n_points = int(np.prod(attribute_id.shape)) if attribute_id.shape is not None else 0
        if not ok or n_points != 1:
            raise TraceError(f"{self.path}: attribute '{name}' of {where} is not a single {want}")
        return np.asarray(value).reshape(-1)[0] if np.ndim(value) else value

    def _int_attribute(self, owner, where: str, name: str) -> int:
        value = int(self._attribute(owner, where, name, "integer"))
        if not INT32_MIN <= value <= INT32_MAX:
            raise TraceError(f"{self.path}: attribute '{name}' of {where} is out of range: {value}")
        return value

    def _string_attribute(self, name: str) -> str:
        value = self._attribute(self.file, "/", name, "string")
        return value.decode("utf-8", "replace").rstrip("\0") if isinstance(value, (bytes, np.bytes_)) else str(value)

    def _meta_field(self, name: str) -> str:
        value = self._string_attribute(name)
        if not value:
            raise TraceError(f"{self.path}: attribute '{name}' is empty")
        if len(value) > STRING_LIMITS[name]:
            raise TraceError(f"{self.path}: attribute '{name}' is {len(value)} characters long, at most "
                             f"{STRING_LIMITS[name]} allowed")
        return value

    def _read_meta(self) -> TraceMeta:
        version = self._int_attribute(self.file, "/", "format_version")
        if not OLDEST_FORMAT_VERSION <= version <= FORMAT_VERSION:
            raise TraceError(f"{self.path}: trace format_version {version}, this fusecheck reads versions "
                             f"{OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}")
        fields = {name: self._meta_field(name) for name in
                  ("producer", "kv_dtype", "weights_dtype", "weights_fingerprint", "tool_version")}
        model_config = self._string_attribute("model_config")
        prompt_length = self._int_attribute(self.file, "/", "prompt_length")
        n_steps = self._int_attribute(self.file, "/", "n_steps")
        kv_forced = self._int_attribute(self.file, "/", "kv_forced") if "kv_forced" in self.file.attrs else 0
        omitted: List[str] = []
        if version >= 2:  # version 1 declares nothing omitted
            text = self._string_attribute("omitted")
            try:
                omitted = parse_omitted(text)
            except ValueError as error:
                raise TraceError(f"{self.path}: attribute 'omitted': {error}") from None
        if not model_config:
            raise TraceError(f"{self.path}: attribute 'model_config' is empty")
        if prompt_length < 1:
            raise TraceError(f"{self.path}: prompt_length {prompt_length}, must be at least 1")
        if n_steps < 1:
            raise TraceError(f"{self.path}: n_steps {n_steps}, must be at least 1")
        return TraceMeta(format_version=version, model_config=model_config, prompt_length=prompt_length,
                         n_steps=n_steps, kv_forced=kv_forced, omitted=omitted, **fields)

    # -- datasets ---------------------------------------------------------------------------------

    def _dataset(self, dataset_path: str) -> h5py.Dataset:
        try:
            object_ = self.file.get(dataset_path)
        except (OSError, KeyError, RuntimeError):
            raise TraceError(f"{self.path}: {dataset_path} cannot be opened (corrupt or unreadable HDF5 object)") from None
        if object_ is None:
            raise TraceError(f"{self.path}: no dataset {dataset_path}")
        if not isinstance(object_, h5py.Dataset):
            raise TraceError(f"{self.path}: {dataset_path} is not a dataset")
        return object_

    def _shape(self, dataset: h5py.Dataset, dataset_path: str, kind: str, type_name: str) -> Tuple[int, ...]:
        """Checks the element type (class and 4 bytes; int32 signed) and returns the shape (rank 1 or 2)."""
        dtype = dataset.dtype
        if dtype.kind != kind or dtype.itemsize != 4:
            raise TraceError(f"{self.path}: {dataset_path} is not {type_name}")
        shape = dataset.shape
        if shape is None or not 1 <= len(shape) <= 2:
            raise TraceError(f"{self.path}: {dataset_path} has rank {0 if shape is None else len(shape)}, "
                             f"expected 1 or 2")
        return shape

    def _read_values(self, dataset: h5py.Dataset, dataset_path: str, dtype: str) -> np.ndarray:
        needed = int(np.prod(dataset.shape)) * 4
        if dataset.id.get_storage_size() < needed:
            raise TraceError(f"{self.path}: {dataset_path} declares {needed} bytes but stores "
                             f"{dataset.id.get_storage_size()} (truncated or corrupt)")
        try:
            return np.asarray(dataset[()], dtype=dtype)
        except (OSError, RuntimeError):
            raise TraceError(f"{self.path}: cannot read {dataset_path} (truncated file?)") from None

    def _read_tokens(self) -> np.ndarray:
        dataset = self._dataset("/tokens")
        shape = self._shape(dataset, "/tokens", "i", "int32")
        if len(shape) != 1:
            raise TraceError(f"{self.path}: /tokens has rank {len(shape)}, expected 1")
        if shape[0] < 1:
            raise TraceError(f"{self.path}: /tokens has {shape[0]} tokens")
        return self._read_values(dataset, "/tokens", "<i4").astype(np.int32)

    def _check_tree(self, group_path: str, depth: int) -> None:
        """Every object in a step group (and in its layer_LL groups) must open, datasets with a readable
        type and shape: a corrupt object never reads as an absent one."""
        group = self.file[group_path]
        for name in list(group.keys()):
            object_path = f"{group_path}/{name}"
            try:
                object_ = group[name]
                if isinstance(object_, h5py.Dataset):
                    _ = object_.dtype, object_.shape
            except (OSError, KeyError, RuntimeError, TypeError, ValueError):
                raise TraceError(f"{self.path}: {object_path} cannot be opened (corrupt or unreadable HDF5 object)") from None
            if isinstance(object_, h5py.Group) and depth == 0 and _canonical_index(name, "layer_", 2) >= 0:
                self._check_tree(object_path, depth + 1)

    def _read_steps(self) -> List[Tuple[int, int]]:
        positions = []
        n_steps, prompt_length = self.meta.n_steps, self.meta.prompt_length
        for step in range(n_steps):
            group_path = layer_path(step, None)
            try:
                group = self.file.get(group_path)
            except (OSError, KeyError, RuntimeError):
                group = None
            if not isinstance(group, h5py.Group):
                raise TraceError(f"{self.path}: group {group_path} is missing (n_steps is {n_steps})")
            first_position = self._int_attribute(group, group_path, "first_position")
            n_tokens = self._int_attribute(group, group_path, "n_tokens")
            want_position = 0 if step == 0 else prompt_length + step - 1
            want_tokens = prompt_length if step == 0 else 1
            if first_position != want_position or n_tokens != want_tokens:
                raise TraceError(f"{self.path}: {group_path}: first_position {first_position}, n_tokens {n_tokens}; "
                                 f"expected {want_position}, {want_tokens}")
            positions.append((first_position, n_tokens))
            self._check_tree(group_path, 0)
        for name in self.file.keys():
            if not name.startswith("step_"):
                continue
            step = _canonical_index(name, "step_", 4)
            if step < 0 or step >= n_steps:
                raise TraceError(f"{self.path}: unexpected group /{name} (n_steps is {n_steps}: "
                                 f"step_0000..step_{n_steps - 1:04d})")
        return positions

    # -- the API ----------------------------------------------------------------------------------

    @property
    def n_steps(self) -> int:
        return self.meta.n_steps

    def _check_step(self, step: int) -> None:
        if not 0 <= step < self.meta.n_steps:
            raise TraceError(f"{self.path}: step {step} out of range (the trace has {self.meta.n_steps} steps)")

    def step_info(self, step: int) -> Tuple[int, int]:
        """(first_position, n_tokens) of a step."""
        self._check_step(step)
        return self.step_positions[step]

    def n_layers(self, step: int) -> int:
        """Highest layer_LL index in the step plus one (0 if none)."""
        self._check_step(step)
        indices = [_canonical_index(name, "layer_", 2) for name in self.file[layer_path(step, None)].keys()]
        return max(indices, default=-1) + 1

    def has_tensor(self, step: int, layer: Optional[int], name: str) -> bool:
        if not 0 <= step < self.meta.n_steps:
            return False
        return isinstance(self.file.get(layer_path(step, layer, name)), h5py.Dataset)

    def list_tensors(self, step: int, layer: Optional[int] = None) -> List[str]:
        """Sorted names of the datasets of a step (layer None: embed, final_norm, logits, next_token)
        or of a layer group (empty when the group is absent)."""
        self._check_step(step)
        group = self.file.get(layer_path(step, layer))
        if group is None and layer is not None and layer >= 0:
            return []
        if not isinstance(group, h5py.Group):
            raise TraceError(f"{self.path}: {layer_path(step, layer)} is not a group")
        return sorted(name for name in group.keys() if isinstance(group[name], h5py.Dataset))

    def read_tensor(self, step: int, layer: Optional[int], name: str) -> np.ndarray:
        """A float32 2-D tensor (a rank-1 [c] dataset reads as [1, c])."""
        self._check_step(step)
        dataset_path = layer_path(step, layer, name)
        dataset = self._dataset(dataset_path)
        shape = self._shape(dataset, dataset_path, "f", "float32")
        values = self._read_values(dataset, dataset_path, "<f4")
        if min(shape) < 1:
            raise TraceError(f"{self.path}: {dataset_path} has unusable shape {list(shape)}")
        return values.reshape(1, -1) if len(shape) == 1 else values

    def read_next_token(self, step: int) -> int:
        self._check_step(step)
        dataset_path = layer_path(step, None, "next_token")
        dataset = self._dataset(dataset_path)
        shape = self._shape(dataset, dataset_path, "i", "int32")
        if shape != (1,):
            raise TraceError(f"{self.path}: {dataset_path} is not a single int32")
        return int(self._read_values(dataset, dataset_path, "<i4")[0])

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "TraceReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_trace(path: str) -> TraceReader:
    """Opens and validates a trace (see TraceReader); use as `with read_trace(p) as trace:`."""
    return TraceReader(path)
