"""Where the shared data are.

:func:`shared_dir` finds the shared data folder: ``$ASM_SHARED`` if set, else
``<repo>/../shared`` if it exists. The annotation files are read from
``<shared>/data/<dataset>/``; the images are the user's (they are not redistributable)
and are looked up under the ``root`` passed to each reader.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_dir", "data_dir"]


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """The shared data folder: ``$ASM_SHARED`` if set, else ``<repo>/../shared``; ``None`` if absent.

    When ``ASM_SHARED`` is set it wins, even if it does not exist (then ``None``).
    """
    env = os.environ.get("ASM_SHARED")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    p = _repo_root().parent / "shared"
    return p if p.is_dir() else None


def data_dir(name: str) -> Path:
    """``<shared>/data/<name>``; :class:`FileNotFoundError` with a clear message if missing."""
    base = shared_dir()
    if base is None:
        raise FileNotFoundError(
            "the shared data folder was not found: set ASM_SHARED or place it at <repo>/../shared"
        )
    p = base / "data" / name
    if not p.is_dir():
        raise FileNotFoundError(f"{p} does not exist (shared data folder {base} has no data/{name})")
    return p


def _split_arg(split: str, allowed: tuple[str, ...]) -> str:
    if split not in allowed:
        raise ValueError(f"split must be one of {', '.join(allowed)}; got {split!r}")
    return split
