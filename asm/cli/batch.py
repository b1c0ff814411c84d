"""``asm batch``: a whole catalogue into one resumable results file (see :mod:`asm.batch`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asm.cli import fail

__all__ = ["add_parser"]

#: ``asm crop`` options that ``asm batch`` does not share (it writes results, not images).
_CROP_ONLY = ("help", "images", "out", "json", "heatmap")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``batch``; ``crop`` must be added first (its options are shared, never copied)."""
    from asm.batch import ENGINES, FORMATS

    p = sub.add_parser(
        "batch",
        help="crop a whole catalogue into one resumable results file",
        description="Find the best crops of many images, in parallel, into one results file: a JSON line per "
        "image, {file, width, height, crops} as 'asm crop --json' prints it, or {file, error, message}. "
        "A re-run skips the images already answered, so an interrupted job resumes where it stopped.",
        epilog="examples:\n  asm batch photos/ --out results.jsonl --aspect 1:1 --aspect 4:5\n"
        "  asm batch 'shop/**/*.jpg' paths.txt --out results.jsonl --workers 4\n"
        "  asm batch catalogue.csv --out results/ --format parquet --engine ray --ray-address auto\n"
        "exit status: 0 every image answered with crops, 1 some answered with an error, 2 the job could not run, "
        "130 interrupted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (recursive), globs (quoted: 'photos/**/*.jpg') or manifests "
                   "(.txt/.lst: a path a line; .csv/.tsv: a 'path' or 'file' column, else the first)")
    p.add_argument("--out", type=Path, required=True, metavar="PATH",
                   help="the results: a JSONL file, or a folder of Parquet parts with --format parquet")
    p.add_argument("--format", choices=FORMATS, default="jsonl", help="results format (default jsonl)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes (local, default: the cores) or Ray actors (default: the cluster's CPUs)")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: processes on this machine (default); ray: Ray Data (pip install 'asm-crop[ray]')")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster ('auto', HEAD:6379, ray://HEAD:10001); default: a local Ray runtime")
    for action in sub.choices["crop"]._actions:
        if action.dest not in _CROP_ONLY:
            p._add_action(action)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import signal

    from asm.batch import run_batch
    from asm.errors import AsmError
    from asm.options import OPTION_KEYS, CropOptions
    from asm.settings import CropperSettings

    if args.engine != "ray" and args.ray_address:
        fail("--ray-address", "joins a Ray cluster; add --engine ray")
        return 2
    # SIGTERM (kill, a scheduler's stop) ends the job like Ctrl-C: the lines written stay whole
    previous = signal.signal(signal.SIGTERM, lambda *_: signal.default_int_handler(signal.SIGINT, None))
    try:
        options = CropOptions.from_mapping({k: getattr(args, k) for k in OPTION_KEYS if hasattr(args, k)})
        summary = run_batch(args.inputs, args.out, options, CropperSettings.from_mapping(vars(args)), fmt=args.format,
                            engine=args.engine, workers=args.workers, ray_address=args.ray_address)
    except (AsmError, OSError) as e:
        fail("error", str(e) if isinstance(e, AsmError) else e.strerror or str(e))
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"asm batch: {summary.line()}; results in {args.out}", file=sys.stderr, flush=True)
    if summary.interrupted:
        return 130
    return 1 if summary.any_failed else 0
