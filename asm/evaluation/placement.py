"""Where top-1 crops sit along the axis they have most room on: a table and histograms of the
placement offsets that :func:`~asm.evaluation.retention.osie_retention` records."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from asm.evaluation.report import Table, _f

__all__ = ["placement_table", "placement_histogram"]


def placement_table(results: dict[str, dict | None], title: str) -> Table:
    """How far from the centre crops sit: mean |offset| as a share of the free range (0 centred,
    0.5 at an end) and the share at an end (within 5 % of the range)."""
    table = Table(title, ["method", "mean |offset| (0.5 = at an end)", "share at an end"])
    for m, r in results.items():
        if r is None or not r.get("offsets") or m == "best possible box":
            continue
        o = np.abs(np.asarray(r["offsets"], np.float64))
        o = o[np.isfinite(o)]
        if len(o):
            table.add(m, _f(float(o.mean()) / 2), _f(float((o >= 0.9).mean())))
    table.notes.append("Offset: where the crop sits along the axis it has most room on, -1 / +1 at the two ends, 0 centred.")
    return table


def placement_histogram(results: dict[str, dict | None], out: str | os.PathLike,
                        methods: Sequence[str] = ("asm", "FastGaze x centre", "smartcrop.py", "libvips attention")) -> Path:
    """Histograms of placement offsets (-1 / +1: at an end of the free range, 0: centred)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in methods if results.get(m) and results[m].get("offsets")]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 2.8), sharey=True, squeeze=False)
    for ax, m in zip(axes[0], shown):
        o = np.asarray(results[m]["offsets"], np.float64)
        ax.hist(o[np.isfinite(o)], bins=np.linspace(-1, 1, 21), color="#4477aa")
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("offset (-1, +1: at an end)")
    axes[0][0].set_ylabel("crops")
    fig.suptitle("Where top-1 crops sit along their free axis (OSIE val, all aspects)", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
