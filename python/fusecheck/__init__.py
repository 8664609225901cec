"""Golden traces of fusecheck (golden/FORMAT.md, version 2) from Python.

TraceWriter writes a trace exactly as the C writer (golden/trace_write.c) does and refuses what it
refuses; TraceReader / read_trace read one and refuse what the C reader refuses; capture_hf records a
transformers Qwen3ForCausalLM (or any module tree with its names) through forward hooks. Needs numpy
and h5py; capture_hf imports torch lazily.
"""

from .names import (CHECKPOINTS, FORMAT_VERSION, LAYER_TENSORS, OLDEST_FORMAT_VERSION, STEP_TENSORS,
                    TraceError, check_omittable, parse_omitted)
from .reader import TraceMeta, TraceReader, read_trace
from .writer import TraceWriter
from .capture import capture_hf

__all__ = ["CHECKPOINTS", "FORMAT_VERSION", "LAYER_TENSORS", "OLDEST_FORMAT_VERSION", "STEP_TENSORS", "TraceError",
           "TraceMeta", "TraceReader", "TraceWriter", "capture_hf", "check_omittable", "parse_omitted", "read_trace"]
