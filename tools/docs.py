"""Pictures and notes of the composition patterns: ``python tools/docs.py`` (``make docs``).

Writes ``docs/patterns.png`` (every pattern drawn on a square crop, each cell coloured by
its partition and labelled with the partition index, partition borders in black) and
``docs/patterns.md`` (our reading of the paper's Fig. 3, with the partition tables).
With ``--curves HISTORY.json ...`` (one ``history.json`` per training stage, in order; e.g.
``runs/default/history.json runs/finetune/history.json`` after ``make train``) it also draws
``docs/training_curves.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the asm of this checkout

from asm.patterns import DEFAULT_PATTERN, PATTERN_NAMES, get_pattern  # noqa: E402

__all__ = ["draw_patterns", "patterns_markdown", "main"]

DOCS = ROOT / "docs"


def _colours(name: str, partition: np.ndarray) -> np.ndarray:
    """``[gh, gw, 3]`` RGB in [0, 1]: related partitions get related colours."""
    L = int(partition.max()) + 1
    if name == "cross_rectangle":  # tab20c: 5 hues x 4 shades -> ring = hue, quadrant = shade
        table = [colormaps["tab20c"](p)[:3] for p in range(L)]
    elif name == "multi_rectangle":
        table = [colormaps["tab20c"](4 * p + 1)[:3] for p in range(L)]
    elif name == "multi_direction":  # a cyclic map: neighbouring directions look alike
        table = [colormaps["twilight_shifted"]((p + 0.5) / L)[:3] for p in range(L)]
    elif L <= 10:
        table = [colormaps["tab10"](p)[:3] for p in range(L)]
    else:
        table = [colormaps["Spectral"](0.05 + 0.9 * p / (L - 1))[:3] for p in range(L)]
    return np.asarray(table)[partition]


def _draw(ax, name: str) -> None:
    pattern = get_pattern(name)
    part = pattern.partition.numpy()
    gh, gw = part.shape
    rgb = _colours(name, part)
    ax.imshow(rgb, extent=(0, 1, 1, 0), interpolation="nearest")
    size = {1: 18, 3: 15, 5: 12, 6: 11, 12: 7}.get(max(gh, gw), 8)
    for i in range(gh):
        for j in range(gw):
            lum = float(rgb[i, j] @ np.array([0.299, 0.587, 0.114]))
            ax.text((j + 0.5) / gw, (i + 0.5) / gh, str(part[i, j]), ha="center", va="center",
                    fontsize=size, color="black" if lum > 0.5 else "white")
    # thin lines between cells, thick ones between partitions
    for j in range(1, gw):
        ax.axvline(j / gw, color="white", lw=0.6)
    for i in range(1, gh):
        ax.axhline(i / gh, color="white", lw=0.6)
    for i in range(gh):
        for j in range(gw):
            if j + 1 < gw and part[i, j] != part[i, j + 1]:
                ax.plot([(j + 1) / gw] * 2, [i / gh, (i + 1) / gh], color="black", lw=1.8)
            if i + 1 < gh and part[i, j] != part[i + 1, j]:
                ax.plot([j / gw, (j + 1) / gw], [(i + 1) / gh] * 2, color="black", lw=1.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_linewidth(1.8)
    default = " (default)" if name == DEFAULT_PATTERN else ""
    ax.set_title(f"{name}{default}\n{gh} x {gw} cells, L = {pattern.num_partitions}", fontsize=12)


def draw_patterns(path: Path) -> Path:
    """Draw every pattern of :data:`asm.patterns.PATTERN_NAMES` into one PNG."""
    cols = 4
    rows = -(-len(PATTERN_NAMES) // cols)
    fig = Figure(figsize=(3.4 * cols, 4.0 * rows), dpi=110)
    axes = fig.subplots(rows, cols).ravel()
    for ax, name in zip(axes, PATTERN_NAMES):
        _draw(ax, name)
    for ax in axes[len(PATTERN_NAMES):]:
        ax.axis("off")
    fig.suptitle("Composition patterns: cells coloured and labelled by partition index (0-based)", fontsize=14)
    fig.tight_layout(h_pad=2.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _matrix(name: str) -> str:
    part = get_pattern(name).partition.tolist()
    width = max(len(str(v)) for row in part for v in row)
    return "\n".join(" ".join(str(v).rjust(width) for v in row) for row in part)


def patterns_markdown(png_name: str = "patterns.png") -> str:
    """The text of ``docs/patterns.md``."""
    counts = {}
    for name in PATTERN_NAMES:
        p = get_pattern(name)
        counts[name] = (p.grid, p.num_partitions)
    lines = [
        "# Composition patterns",
        "",
        "<!-- written by `python tools/docs.py` (make docs); edit tools/docs.py, not this file -->",
        "",
        "ASM-Net (AAAI 2020, §3.1) scores a crop through a *composition pattern*: the crop is cut",
        "into partitions, every partition reads its own channel of the score map, and a region of",
        "the photo therefore scores differently depending on where it falls inside the crop.",
        "The paper shows the patterns only as a picture (Fig. 3) and a few sentences, so the",
        "exact tables below are our interpretation. Each pattern is stored as a grid of equal",
        "cells plus a `cell -> partition` table (`asm.patterns.get_pattern(name).partition`,",
        "an int64 `[gy, gx]` tensor); the score map needs one channel per partition.",
        "",
        f"![the patterns]({png_name})",
        "",
        "| pattern | grid | L | how cells map to partitions |",
        "|---|---|---|---|",
    ]
    notes = {
        "grid1x1": "one partition: the crop is pooled as a whole (not composition-aware)",
        "grid1x3": "three columns, each its own partition (sensitive to horizontal shifts only)",
        "grid3x1": "three rows, each its own partition (vertical shifts only)",
        "grid3x3": "rule-of-thirds grid, each cell its own partition (row-major numbering)",
        "grid5x5": "finer grid, each cell its own partition (row-major numbering)",
        "multi_rectangle": "nested rings: 0 = the central 2x2 block, 1 = the ring around it (12 cells), "
        "2 = the outer ring (20 cells)",
        "multi_direction": "8 directions seen from the crop centre: partition k holds the cells whose "
        "centre lies at an angle in [45k, 45(k+1)) degrees, counted anticlockwise from the right; "
        "18 cells each",
        "cross_rectangle": "the 3 rings of multi_rectangle, each cut in 4 by the central cross: "
        "partition = 4 x ring + quadrant (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right)",
    }
    for name in PATTERN_NAMES:
        (gy, gx), L = counts[name]
        default = " (default)" if name == DEFAULT_PATTERN else ""
        lines.append(f"| `{name}`{default} | {gy} x {gx} | {L} | {notes[name]} |")
    lines += [
        "",
        "## Choices the paper leaves open",
        "",
        "- **Numbering.** The paper numbers partitions 1..L; we use 0..L-1, which is also the",
        "  channel index in the score map. Grid cells are numbered row by row from the top left.",
        "- **Multi-rectangle has 3 partitions, not 5.** Fig. 3 and its caption describe three",
        "  nested regions (centre, middle, outer) drawn on a 6x6 grid; Table 1 lists 5. Five",
        "  concentric rings do not fit a 6x6 grid, so we follow the figure.",
        "- **Multi-direction on a 12x12 grid.** The paper divides the pattern into 12x12 cells so",
        "  that each of the 8 directions is \"approximately covered by 18 cells\". We assign a cell",
        "  by the angle of its centre around the crop centre, sectors starting at 0 degrees (pointing",
        "  right) in steps of 45 degrees. The 24 cells on the two diagonals sit exactly on a sector",
        "  border; along each diagonal they alternate between the two neighbouring sectors, which",
        "  gives every sector exactly 18 cells and keeps the pattern unchanged under quarter turns",
        "  (turn the table a quarter turn clockwise and every position holds its old index + 2,",
        "  mod 8).",
        "- **Cross-rectangle.** \"12 partitions, inspired by the camera auxiliary lines\": the",
        "  multi-rectangle rings crossed with the horizontal and vertical centre lines. Mirroring",
        "  the crop left-right swaps quadrants 0<->1 and 2<->3 within each ring; up-down swaps",
        "  0<->2 and 1<->3. It is the default pattern, as in the paper.",
        "- **Circular crops** (§4.5) use the same tables: every point of the disc inscribed in the",
        "  box keeps the partition of the square cell it lies in.",
        "",
        "## Partition tables",
        "",
        "Rows are top to bottom, columns left to right, as in the picture.",
        "",
    ]
    for name in ("multi_rectangle", "multi_direction", "cross_rectangle"):
        lines += [f"`{name}`:", "", "```", _matrix(name), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python tools/docs.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS, help="output folder (default: docs/)")
    parser.add_argument("--curves", type=Path, nargs="+", metavar="HISTORY",
                        help="history.json of each training stage, in order: also draw training_curves.png")
    args = parser.parse_args(argv)
    if args.curves:
        from asm.training.loop import plot_history

        history, stages = [], []
        for path in args.curves:
            stages.append(len(history) + 1)
            history += json.loads(path.read_text())
        plot_history(history, args.out / "training_curves.png", stages[1:])
        print(f"wrote {args.out / 'training_curves.png'}")
    png = draw_patterns(args.out / "patterns.png")
    md = args.out / "patterns.md"
    md.write_text(patterns_markdown(png.name))
    print(f"wrote {png} and {md}")


if __name__ == "__main__":
    main()
