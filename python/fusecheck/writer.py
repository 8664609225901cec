"""TraceWriter: writes golden/FORMAT.md version 2 as the C writer (golden/trace_write.c) does.

Same attributes and types (scalar variable-length UTF-8 strings, int32 integers), group names, dtypes
(float32 and int32, little-endian, contiguous, uncompressed), shapes and step/position conventions.
Atomic like the C writer: everything goes to `PATH.tmp-PID` in the same directory, renamed over PATH
on close; a refused call, an exception inside a `with` block or abort() removes the temporary file.
It refuses what the C writer refuses, and what `fusecheck validate` would report (a tensor width
that does not match model_config, a step missing a tensor it must hold, a next_token that is not the
argmax of its logits), each with one line naming the file and the object.
"""

import os
import re
from typing import Any, Dict, Iterable, Mapping, Optional, Set, Tuple, Union

import h5py
import numpy as np

from .names import (FORMAT_VERSION, KV_DTYPES, LAYER_TENSORS, STEP_TENSORS, STRING_LIMITS, WEIGHTS_DTYPES,
                    ModelShape, TraceError, layer_path, parse_omitted, required_names)

ArrayLike = Any  # anything np.asarray takes; a torch tensor as t.detach().cpu().numpy()


class TraceWriter:
    """Writes one trace. Use as a context manager, or call close() (or abort()) yourself:

        with TraceWriter("t.h5", producer="my-engine", kv_dtype="f32", weights_dtype="bf16",
                         weights_fingerprint=golden.meta.weights_fingerprint, tool_version="my-engine 1.0",
                         model_config=golden.meta.model_config, prompt_length=P) as w:
            w.write_tokens(tokens)
            for step in range(S):
                w.begin_step(step, first_position, n_tokens)
                w.write_tensor(None, "embed", embed)              # [n_tokens, hidden]
                for layer in range(n_layers):
                    w.write_tensor(layer, "q", q)                 # [n_tokens, n_heads*head_dim], ...
                w.write_tensor(None, "final_norm", last_row)      # [1, hidden]
                w.write_tensor(None, "logits", logits_row)        # [1, vocab]
                w.write_next_token(int(np.argmax(logits_row)))

    After any refused call the writer is failed: close() refuses too and leaves nothing behind."""

    def __init__(self, path: str, *, producer: str, kv_dtype: str, weights_dtype: str, weights_fingerprint: str,
                 tool_version: str, model_config: str, prompt_length: int, omitted: Union[str, Iterable[str]] = "",
                 kv_forced: bool = False, extra_attributes: Optional[Mapping[str, Union[str, int]]] = None):
        if not path:
            raise TraceError("trace: empty output path")
        self.path = os.fspath(path)
        self.temp_path = f"{self.path}.tmp-{os.getpid()}"
        self.file: Optional[h5py.File] = None
        self.failed = False
        if not isinstance(model_config, str) or not model_config:
            raise TraceError(f"{self.path}: trace metadata has no model_config")
        strings = {"producer": producer, "kv_dtype": kv_dtype, "weights_dtype": weights_dtype,
                   "weights_fingerprint": weights_fingerprint, "tool_version": tool_version}
        for field, value in strings.items():
            if not isinstance(value, str) or not value:
                raise TraceError(f"{self.path}: trace metadata '{field}' is empty")
            if len(value) > STRING_LIMITS[field]:
                raise TraceError(f"{self.path}: trace metadata '{field}' is {len(value)} characters long, "
                                 f"at most {STRING_LIMITS[field]} allowed")
        if kv_dtype not in KV_DTYPES:
            raise TraceError(f"{self.path}: kv_dtype '{kv_dtype}', expected one of {', '.join(KV_DTYPES)}")
        if weights_dtype not in WEIGHTS_DTYPES:
            raise TraceError(f"{self.path}: weights_dtype '{weights_dtype}', expected one of {', '.join(WEIGHTS_DTYPES)}")
        if not re.fullmatch(r"[0-9a-f]{16}", weights_fingerprint):
            raise TraceError(f"{self.path}: weights_fingerprint '{weights_fingerprint}', expected 16 lowercase hex digits")
        if isinstance(prompt_length, bool) or not isinstance(prompt_length, (int, np.integer)) or prompt_length < 1:
            raise TraceError(f"{self.path}: prompt_length {prompt_length}, must be at least 1")
        try:
            self.shape = ModelShape(model_config)
        except ValueError as error:
            raise TraceError(f"{self.path}: {error}") from None
        joined = omitted if isinstance(omitted, str) else ",".join(omitted)
        try:
            self.omitted = parse_omitted(joined)
        except ValueError as error:
            raise TraceError(f"{self.path}: cannot declare '{joined}' omitted: {error}") from None
        extra = dict(extra_attributes or {})
        known = {"format_version", "n_steps", "prompt_length", "kv_forced", "omitted", "model_config", *strings}
        clash = sorted(known.intersection(extra))
        if clash:
            raise TraceError(f"{self.path}: extra attribute '{clash[0]}' is a FORMAT.md attribute")

        self.prompt_length = int(prompt_length)
        self.n_steps = 0          # steps begun; the current step is n_steps - 1
        self.step_n_tokens = 0
        self.n_tokens = 0         # length of /tokens, 0 until written
        self.written: Set[Tuple[int, str]] = set()   # (layer or -1, name) of the current step
        self.logits_row: Optional[np.ndarray] = None
        self.next_token: Optional[int] = None
        try:
            self.file = h5py.File(self.temp_path, "w")
        except OSError as error:
            raise TraceError(f"{self.temp_path}: cannot create HDF5 file (is the directory writable?): {error}") from None
        try:
            attrs = self.file.attrs
            attrs["format_version"] = np.int32(FORMAT_VERSION)
            for field, value in strings.items():
                attrs[field] = value          # h5py: scalar variable-length UTF-8, as the C writer
            attrs["model_config"] = model_config
            attrs["prompt_length"] = np.int32(self.prompt_length)
            attrs["kv_forced"] = np.int32(1 if kv_forced else 0)
            attrs["omitted"] = ",".join(self.omitted)
            for key, value in extra.items():  # producers may add attributes; readers ignore them
                attrs[key] = np.int32(value) if isinstance(value, (int, np.integer)) else str(value)
        except BaseException:
            self.abort()
            raise

    # -- refusals ---------------------------------------------------------------------------------

    def _fail(self, message: str) -> TraceError:
        """Marks the writer failed (close will refuse) and builds the one-line error."""
        self.failed = True
        return TraceError(f"{self.path}: {message}")

    def _check_open(self) -> None:
        if self.file is None:
            raise TraceError(f"{self.path}: the writer is closed")

    # -- writing ----------------------------------------------------------------------------------

    def write_tokens(self, tokens: ArrayLike) -> None:
        """/tokens: int32 [T], every token consumed (the prompt, then the teacher-forced continuation)."""
        self._check_open()
        if self.n_tokens > 0:
            raise self._fail("/tokens written twice")
        values = np.asarray(tokens)
        if values.ndim != 1 or values.size < 1:
            raise self._fail(f"/tokens is empty or not 1-D (shape {list(values.shape)})")
        if values.dtype.kind not in "iu":
            raise self._fail(f"/tokens has dtype {values.dtype}, expected integers")
        bad = np.flatnonzero((values < 0) | (values >= self.shape.vocab_size))
        if bad.size:
            raise self._fail(f"/tokens: {bad.size} token ids outside [0, vocab_size {self.shape.vocab_size}), "
                             f"the first tokens[{bad[0]}] = {values[bad[0]]}")
        self.file.create_dataset("tokens", data=values.astype("<i4"))
        self.n_tokens = int(values.size)

    def begin_step(self, step: int, first_position: int, n_tokens: int) -> None:
        """Opens /step_NNNN. Steps in order from 0; step 0 consumes the prompt at positions 0..P-1, step
        s >= 1 one token at position P + s - 1 (the teacher-forcing convention)."""
        self._check_open()
        if step != self.n_steps:
            raise self._fail(f"step {step} begun out of order (expected step {self.n_steps})")
        want_position = 0 if step == 0 else self.prompt_length + step - 1
        want_tokens = self.prompt_length if step == 0 else 1
        if first_position != want_position or n_tokens != want_tokens:
            raise self._fail(f"step {step}: first_position {first_position}, n_tokens {n_tokens}; "
                             f"expected {want_position}, {want_tokens}")
        if step > 0:
            self._check_step_complete(step - 1)
        group = self.file.create_group(layer_path(step, None)[1:])
        group.attrs["first_position"] = np.int32(first_position)
        group.attrs["n_tokens"] = np.int32(n_tokens)
        self.n_steps = step + 1
        self.step_n_tokens = n_tokens
        self.written = set()
        self.logits_row = None
        self.next_token = None

    def write_tensor(self, layer: Optional[int], name: str, data: ArrayLike) -> None:
        """Writes a float32 [rows, cols] tensor into the current step: layer >= 0 into layer_LL/ (a name
        of LAYER_TENSORS), layer None or < 0 into the step group (embed, final_norm, logits)."""
        self._check_open()
        if self.n_steps == 0:
            raise self._fail(f"tensor '{name}' written before begin_step")
        step = self.n_steps - 1
        at_step_level = layer is None or layer < 0
        layer_index = -1 if at_step_level else int(layer)
        if at_step_level and name not in STEP_TENSORS[:3]:
            hint = " (use write_next_token)" if name == "next_token" else \
                " (a layer tensor: give its layer)" if name in LAYER_TENSORS else ""
            raise self._fail(f"step {step}: bad tensor name '{name}' at step level{hint}")
        if not at_step_level and name not in LAYER_TENSORS:
            raise self._fail(f"step {step}: bad tensor name '{name}' in layer {layer_index} "
                             f"(layer tensors: {', '.join(LAYER_TENSORS)})")
        if not at_step_level and layer_index >= self.shape.num_hidden_layers:
            raise self._fail(f"step {step}: layer {layer_index}, but model_config has num_hidden_layers "
                             f"{self.shape.num_hidden_layers}")
        where = layer_path(step, layer_index, name)
        values = np.asarray(data)
        if values.dtype.kind != "f":
            raise self._fail(f"{where}: dtype {values.dtype}, expected floating point (stored as float32)")
        if values.ndim != 2 or values.size == 0:
            raise self._fail(f"{where}: shape {list(values.shape)}, expected a non-empty 2-D [rows, cols] array")
        rows, cols = values.shape
        last_row_only = name in ("final_norm", "logits")
        want_rows = 1 if last_row_only else self.step_n_tokens
        if rows != want_rows:
            raise self._fail(f"{where}: {rows} rows, expected {want_rows}")
        want_cols = self.shape.width(name)
        if cols != want_cols:
            raise self._fail(f"{where}: {cols} columns, expected {want_cols} ({ModelShape.meaning(name)})")
        if (layer_index, name) in self.written:
            raise self._fail(f"{where} written twice")
        stored = np.ascontiguousarray(values, dtype="<f4")
        self.file.create_dataset(where[1:], data=stored)
        self.written.add((layer_index, name))
        if name == "logits":
            self.logits_row = stored[0]
            self._check_argmax(step)

    def write_next_token(self, token: int) -> None:
        """/step_NNNN/next_token: int32 [1], the argmax of the step's logits."""
        self._check_open()
        if self.n_steps == 0:
            raise self._fail("next_token written before begin_step")
        step = self.n_steps - 1
        where = layer_path(step, None, "next_token")
        if (-1, "next_token") in self.written:
            raise self._fail(f"{where} written twice")
        if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
            raise self._fail(f"{where}: {token!r} is not an integer token id")
        self.file.create_dataset(where[1:], data=np.array([token], dtype="<i4"))
        self.written.add((-1, "next_token"))
        self.next_token = int(token)
        self._check_argmax(step)

    def _check_argmax(self, step: int) -> None:
        """Once both are written: next_token must be an argmax of the logits (by value: ties pass)."""
        if self.logits_row is None or self.next_token is None:
            return
        token, logits = self.next_token, self.logits_row
        where = layer_path(step, None, "next_token")
        if not 0 <= token < logits.size:
            raise self._fail(f"{where}: {token} is outside the logits [0, {logits.size})")
        best = int(np.argmax(logits))
        if not logits[token] >= logits[best]:
            raise self._fail(f"{where}: {token} is not the argmax of logits: logit {logits[token]:.6g}, "
                             f"argmax {best} with {logits[best]:.6g}")

    def _check_step_complete(self, step: int) -> None:
        """Every tensor FORMAT.md requires, unless declared omitted; a contract checkpoint always."""
        layer_names, step_names = required_names(self.omitted)
        missing = [name for name in step_names if (-1, name) not in self.written]
        missing += [f"layer_{layer:02d}/{name}" for layer in range(self.shape.num_hidden_layers)
                    for name in layer_names if (layer, name) not in self.written]
        if missing:
            shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
            raise self._fail(f"{layer_path(step, None)} is missing {shown} (not declared omitted; "
                             f"contract checkpoints never are)")

    # -- closing ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Writes n_steps, closes, fsyncs and renames the file into place. Refuses (and removes the
        temporary file) after a refused call, with no steps, without /tokens or with too few tokens,
        or when the last step lacks a required tensor."""
        if self.file is None:
            return
        needed = self.prompt_length + self.n_steps - 1
        try:
            if self.failed:
                raise TraceError(f"{self.path}: not written: an earlier trace write failed")
            if self.n_steps == 0:
                raise TraceError(f"{self.path}: not written: no steps")
            if self.n_tokens == 0:
                raise TraceError(f"{self.path}: not written: /tokens was never written")
            if self.n_tokens < needed:
                raise TraceError(f"{self.path}: not written: /tokens has {self.n_tokens} tokens, {self.n_steps} steps "
                                 f"after a {self.prompt_length}-token prompt need {needed}")
            try:
                self._check_step_complete(self.n_steps - 1)
            except TraceError as error:
                raise TraceError(f"{self.path}: not written: {str(error)[len(self.path) + 2:]}") from None
            self.file.attrs["n_steps"] = np.int32(self.n_steps)
            self.file.close()
            self.file = None
            descriptor = os.open(self.temp_path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(self.temp_path, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Closes and deletes the temporary file; a file already under `path` is untouched."""
        if self.file is not None:
            try:
                self.file.close()
            except Exception:  # the file is deleted next; nothing of it is kept
                pass
            self.file = None
        if os.path.exists(self.temp_path):
            os.unlink(self.temp_path)

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        # A writer dropped without close() must not leave its temporary file behind.
        if getattr(self, "file", None) is not None:
            self.abort()


def tensors_of_step(tensors: Dict[Tuple[int, str], np.ndarray]):
    """(layer, name) pairs of a captured step in the order the C writer writes them: embed, each layer's
    tensors in forward order, final_norm, logits."""
    def rank(key: Tuple[int, str]):
        layer, name = key
        if layer < 0:
            return (0 if name == "embed" else 2, 0, STEP_TENSORS.index(name) if name in STEP_TENSORS else 99)
        return (1, layer, LAYER_TENSORS.index(name) if name in LAYER_TENSORS else 99)
    return sorted(tensors, key=rank)
