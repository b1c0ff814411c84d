"""Peak memory of refusing a small file that claims 7000x7000 pixels, per format.

Each forgery of :mod:`asm.testing.forge` is loaded with :func:`asm.io.load_image` in a fresh
subprocess; the table gives the process's peak RSS (``resource.getrusage``) before and after
the call, the outcome and the file's size. ``--baseline DIR`` runs the same files against
another asm tree (e.g. ``git archive 865b64b asm | tar -x -C DIR``) in a second column.

    python benchmarks/bench_damaged.py [--baseline DIR] [--out benchmarks/results/damaged.md]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from asm.testing.forge import FORGERIES  # noqa: E402

SIDE = 7000
PROBE = """
import resource, sys
from asm.io import load_image
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_image(data)
    out = "loaded"
except Exception as e:
    out = type(e).__name__ + ": " + " ".join(str(e).split())[:90]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{before / 1024:.0f}\\t{after / 1024:.0f}\\t{out}")
"""


def probe(tree: Path, path: Path) -> tuple[float, float, str]:
    """``(peak RSS MB before, peak RSS MB after, outcome)`` of one load in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", PROBE, str(path)], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        return float("nan"), float("nan"), f"process failed: {done.stderr.strip().splitlines()[-1][:90]}"
    before, after, out = done.stdout.strip().split("\t", 2)
    return float(before), float(after), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", type=Path, help="another asm tree to compare with")
    ap.add_argument("--out", type=Path, help="write the table (markdown) here too")
    args = ap.parse_args(argv)
    rows = ["| forgery | file | " + ("baseline: peak RSS (MB), outcome | " if args.baseline else "")
            + "this tree: peak RSS (MB), outcome |", "|---|---|" + ("---|" if args.baseline else "") + "---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in FORGERIES.items():
            path = Path(tmp) / name
            path.write_bytes(build(SIDE, SIDE))
            cells = []
            for tree in ([args.baseline] if args.baseline else []) + [REPO]:
                before, after, out = probe(tree, path)
                cells.append(f"{before:.0f} -> **{after:.0f}**, {out}")
            rows.append(f"| {name} | {path.stat().st_size:,} B | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
