"""Where asm keeps what it computes once per user (ONNX twins, the pooling kernel taken out of
a zip); no torch here."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """The user's asm cache folder (not created here): ``$ASM_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/asm``, else ``~/.cache/asm``."""
    if os.environ.get("ASM_CACHE_DIR"):
        return Path(os.environ["ASM_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "asm"
