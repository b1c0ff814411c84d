"""ONNX Runtime sessions on the CPU, configured one way for every network asm runs there
(ASM-Net in :mod:`asm.runtime`, YuNet in :mod:`asm.search.faces`). Loads no torch."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["cpu_session", "torch_threads"]


def torch_threads() -> int:
    """The intra-op thread count torch uses (``torch.get_num_threads()``) when torch is
    loaded, else 0 (ONNX Runtime's default: one thread per physical core). torch is not
    imported for this."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else 0


def cpu_session(model: str | bytes, threads: int) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session on the CPU for ``model`` (a path or the model's bytes), with
    ``threads`` intra-op threads (0: ONNX Runtime's default). Its ``run`` is thread-safe."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    # idle pool threads sleep instead of spinning: spinning threads would take the cores
    # from the torch ops (the box search) that run right after each forward
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
