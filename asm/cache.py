"""Where asm keeps what it computes once per user (ONNX twins, the pooling kernel taken out of
a zip); no torch here."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["cache_dir", "write_atomic"]


def cache_dir() -> Path:
    """The user's asm cache folder (not created here): ``$ASM_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/asm``, else ``~/.cache/asm``."""
    if os.environ.get("ASM_CACHE_DIR"):
        return Path(os.environ["ASM_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "asm"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (folders made as needed) through a temporary file in the
    same folder and ``os.replace``: processes writing or reading it at once never see half a
    file. The file gets an ordinary new file's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file (mkstemp makes it private)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
