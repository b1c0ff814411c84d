"""ONNX Runtime sessions on the CPU, configured one way for every network asm runs there
(ASM-Net in :mod:`asm.runtime`, YuNet in :mod:`asm.search.faces`). Loads no torch."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["cpu_session", "cpu_threads", "set_cpu_threads"]

_threads = 0  # set_cpu_threads; 0: not set


def set_cpu_threads(threads: int) -> None:
    """Give every network asm runs on the CPU in this process ``threads`` intra-op threads:
    ONNX Runtime sessions made from now on, and torch's ops when torch is loaded (batch
    workers, servers). Without it, asm follows torch's count, or ONNX Runtime's default."""
    global _threads
    _threads = max(1, int(threads))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(_threads)


def cpu_threads() -> int:
    """The intra-op thread count for a new session: :func:`set_cpu_threads`'s, else torch's
    (``torch.get_num_threads()``) when torch is loaded, else 0 (ONNX Runtime's default: one
    thread per physical core). torch is not imported for this."""
    if _threads:
        return _threads
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
    # from the box search that runs right after each forward
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
