"""What every ``asm eval`` section shares: markdown tables, timings, paths as tables show them,
number formatting, progress bars, and which peers can run here."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asm.evaluation import peers as peer_mod

__all__ = ["Table", "Timer", "shown", "DASH"]

DASH = "–"


@dataclass
class Table:
    """A titled table that prints as markdown."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        out = [f"### {self.title}", ""]
        if self.rows:
            out.append("| " + " | ".join(self.columns) + " |")
            out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|")
            out += ["| " + " | ".join(r) + " |" for r in self.rows]
            out.append("")
        out += [f"{n}  " if i < len(self.notes) - 1 else n for i, n in enumerate(self.notes)]
        return "\n".join(out).rstrip() + "\n"


class Timer:
    """Seconds per call of each method (``with timer("asm"): ...``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def __call__(self, name: str) -> _Timing:
        return _Timing(self, name)

    def table(self) -> Table:
        t = Table("Timings", ["method", "calls", "ms / call (mean)", "ms / call (median)", "total s"])
        for name, s in self.seconds.items():
            a = np.asarray(s) * 1000
            t.add(name, len(a), f"{a.mean():.1f}", f"{np.median(a):.1f}", f"{a.sum() / 1000:.1f}")
        t.notes.append(
            "One call: asm = resize + forward pass + search of every requested aspect of one image "
            "(or one scoring call); a peer = one aspect of one image. Images are decoded once, outside the timings."
        )
        return t


class _Timing:
    def __init__(self, timer: Timer, name: str) -> None:
        self.timer, self.name = timer, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timer.seconds.setdefault(self.name, []).append(time.perf_counter() - self.t0)


def shown(path: str | os.PathLike) -> str:
    """A path as the tables show it: relative to the working folder or to the shared data
    folder (``<shared>/...``) where it lies under one, else just its name; tables are
    committed, and a path of one machine means nothing on another."""
    from asm.data.shared import shared_dir

    p = Path(path).resolve()
    for base, prefix in ((Path.cwd().resolve(), ""), (shared_dir(), "<shared>/")):
        if base is not None and p.is_relative_to(base.resolve()):
            return prefix + str(p.relative_to(base.resolve()))
    return p.name


def _f(x: float | None, digits: int = 3) -> str:
    if x is None:
        return DASH
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return f"{x:.{digits}f}"


def _bar(items: Sequence, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", disable=not progress or len(items) < 2, file=sys.stderr, leave=False)


def _peer_status() -> dict[str, tuple[bool, str]]:
    return {name: peer_mod.available(p) for name, p in peer_mod.PEERS.items()}


def _na_notes(status: dict[str, tuple[bool, str]]) -> list[str]:
    return [f"n/a {name}: {why}" for name, (ok, why) in status.items() if not ok]


def _load(path: str | os.PathLike) -> np.ndarray:
    from asm.io import load_image

    return load_image(Path(path))
