"""The ``asm`` command: ``asm crop``, ``asm batch``, ``asm export``, ``asm train``, ``asm eval``.

A thin shell over :class:`asm.cropper.Cropper`: it parses arguments, prints and writes
files; it never resizes, searches or draws by itself. Nothing heavy is imported before a
command runs, so ``asm --help`` and ``asm crop --help`` answer at once.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
import sys
from pathlib import Path

from asm.errors import ECHO_LIMIT, InvalidOption, echo

__all__ = ["main", "build_parser", "output_stems"]


def _add_crop_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "crop",
        help="find the best crops of images",
        description="Find the best crops of one or more images. Prints one line per image "
        "(one JSON object per line with --json) and, with --out, writes the crops.",
        epilog="examples:\n  asm crop photo.jpg --aspect 16:9\n  asm crop *.jpg --aspect 16:9 --aspect 1:1 --top-k 3 --out crops/\n"
        "  asm crop face.jpg --circular --out avatars/ --json\n"
        "  asm crop team.jpg --aspect 1:1 --keep 120,40,380,300 --focus 250,160 --min-scale 0.8",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, GIF, TIFF, BMP, ...)")
    p.add_argument("--aspect", action="append", metavar="W:H",
                   help="aspect ratio width:height, e.g. 16:9 or 1.91:1; repeat for several; 'free' (default) lets asm choose")
    p.add_argument("--circular", action="store_true", help="round crops (the disc inside a square); written as transparent PNG")
    p.add_argument("--top-k", type=int, default=1, metavar="N", help="the N best, mutually distinct crops per aspect (default 1)")
    p.add_argument("--nms-iou", type=float, default=0.5, metavar="T",
                   help="two of the top-k crops overlap at most this much (IoU, default 0.5)")
    p.add_argument("--faces", default="on", metavar="on|off",
                   help="detect faces, keep them whole and let them weigh in the score (default on)")
    p.add_argument("--keep", action="append", metavar="X1,Y1,X2,Y2",
                   help="a region (image pixels) every crop must hold; repeat for several")
    p.add_argument("--focus", metavar="X,Y", help="a point (image pixels) the crops hold and are pulled towards")
    p.add_argument("--min-scale", default=None, metavar="S",
                   help="smallest crop side as a share of the largest crop of the aspect, 0.1-1 (default 0.5)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write each crop, an overview with the crops drawn and (with --heatmap) heatmaps here; "
                   "inputs with the same name get -2, -3, ... in input order")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per image: {file, width, height, crops, files}; a failure is {file, error, message}")
    p.add_argument("--heatmap", action="store_true", help="also write the θ_avg / θ_std heatmap overlays (needs --out)")
    p.add_argument("--model", type=Path, metavar="PATH", help="a model file (default: the model shipped with asm)")
    p.add_argument("--runtime", choices=["auto", "onnx", "torch"], default="auto",
                   help="run the network on ONNX Runtime (fast on CPUs) or torch; auto (default) takes ONNX Runtime "
                   "when it is installed")
    p.add_argument("--max-pixels", type=int, default=50_000_000, metavar="N",
                   help="refuse images with more pixels than this, checked before decoding (default 50,000,000)")
    p.set_defaults(func=_crop)


#: ``asm crop`` options that ``asm batch`` does not share (it writes results, not images).
_CROP_ONLY = ("help", "images", "out", "json", "heatmap")


def _add_batch_parser(sub: argparse._SubParsersAction) -> None:
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
    from asm.batch import ENGINES, FORMATS

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
    for action in sub.choices["crop"]._actions:  # the crop options themselves, shared, never copied
        if action.dest not in _CROP_ONLY:
            p._add_action(action)
    p.set_defaults(func=_batch)


def _add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as ONNX next to it (the fast CPU path)",
        description="Write the model as ONNX (dynamic height and width) next to the checkpoint: MODEL.pt -> "
        "MODEL.onnx. Croppers use it whenever it matches the checkpoint byte for byte; without it, they "
        "export to the user's cache on first use.",
    )
    p.add_argument("--model", type=Path, metavar="PATH", help="a model file (default: the model shipped with asm)")
    p.add_argument("--out", type=Path, metavar="FILE", help="where to write (default: next to the model, .onnx)")
    p.set_defaults(func=_export)


#: Commands whose modules import torch and more: their parsers are built only when they run.
#: The help line must match the one their own add_parser gives (a test checks it).
LAZY_COMMANDS = {
    "train": ("asm.training.command", "train a model on where people look (OSIE fixations + FastGaze teacher)"),
    "eval": ("asm.evaluation.run", "evaluate a model next to the centre crop and heuristic peers"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``asm`` parser; of the :data:`LAZY_COMMANDS` only ``command``'s is built in full."""
    parser = argparse.ArgumentParser(
        prog="asm",
        description="Composition-aware automatic image cropping (ASM-Net).",
        epilog="Run 'asm COMMAND --help' for the options of a command.",
    )
    from asm import __version__

    parser.add_argument("--version", action="version", version=f"asm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_crop_parser(sub)
    _add_batch_parser(sub)
    _add_export_parser(sub)
    for name, (module, help_line) in LAZY_COMMANDS.items():  # they add their own subcommands
        if name == command:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_line, add_help=False)
    return parser


def _fail(name: str, message: str) -> None:
    """``asm: NAME: message`` on stderr; a name longer than ~100 characters is cut (see asm.errors.echo)."""
    print(f"asm: {name if len(name) <= ECHO_LIMIT else echo(name)}: {message}", file=sys.stderr, flush=True)


def output_stems(images: list[str]) -> list[str]:
    """One file-name stem per input: its own stem, with ``-2``, ``-3``, ... for repeats
    (``a/pic.jpg b/pic.jpg b/pic.png`` -> ``pic pic-2 pic-3``), so no output is overwritten."""
    seen: dict[str, int] = {}
    stems = []
    for name in images:
        stem = Path(name).stem or "image"
        n = seen[stem.lower()] = seen.get(stem.lower(), 0) + 1
        stems.append(stem if n == 1 else f"{stem}-{n}")
    return stems


def _write(path: Path, data: bytes) -> Path:
    """Write ``data`` whole or not at all (a full disk leaves no 0-byte file); errors name the path."""
    tmp = path.with_name(f".{path.name}.part")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OSError(e.errno, f"cannot write {echo(str(path))}: {e.strerror or e}") from None
    return path


def _write_outputs(out: Path, stem: str, analysis, result, heatmap: bool, keep=(), focus=None) -> list[str]:
    """The crops (numbered within each aspect), the overview (faces, keep-regions and focus
    marked) and, with ``heatmap``, the θ overlays; returns their paths."""
    from asm import viz
    from asm.io import encode_jpeg, encode_png

    written = []
    count: dict[str, int] = {}
    for crop in result.crops:
        n = count[crop.aspect] = count.get(crop.aspect, 0) + 1
        pixels = viz.cut_crop(analysis.image, crop)
        if crop.shape == "circle":
            written.append(_write(out / f"{stem}_circle_{n}.png", encode_png(pixels)))
        else:
            tag = crop.aspect.replace(":", "x").replace("/", "x")
            written.append(_write(out / f"{stem}_{tag}_{n}.jpg", encode_jpeg(pixels)))
    marked = viz.draw_regions(analysis.image, result.faces or (), keep, focus)
    written.append(_write(out / f"{stem}_crops.jpg", encode_jpeg(viz.draw_crops(marked, result.crops))))
    if heatmap:  # PNG, as TorchServe returns them
        for name, picture in analysis.overlays().items():
            written.append(_write(out / f"{stem}_{name}.png", encode_png(picture)))
    return [str(p) for p in written]


def _crop(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from asm.cropper import Cropper, CropOptions
    from asm.errors import AsmError, describe
    from asm.io import allow_pixels

    if args.heatmap and args.out is None:
        _fail("--heatmap", "heatmaps are written as files; add --out DIR")
        return 2
    try:
        options = CropOptions.parse(args.aspect, args.circular, args.top_k, args.nms_iou,
                                    args.faces, args.keep, args.focus, args.min_scale)
        if args.max_pixels < 1:
            raise InvalidOption(f"--max-pixels must be a positive number of pixels, got {args.max_pixels}")
        allow_pixels(args.max_pixels)
        cropper = Cropper.from_pretrained(args.model, runtime=args.runtime, max_pixels=args.max_pixels)
    except (AsmError, ImportError) as e:  # ImportError: --runtime onnx without onnxruntime
        _fail("error", str(e))
        return 2
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
            if not os.access(args.out, os.W_OK):
                raise PermissionError(errno.EACCES, "it is not writable (a read-only file system, or no permission)")
        except OSError as e:
            reason = "it is a file" if args.out.is_file() else (e.strerror or str(e)).lower()
            _fail("--out", f"cannot write to the folder {echo(str(args.out))}: {reason}")
            return 2

    failed = 0
    stems = output_stems(args.images)
    bar = tqdm(args.images, desc="cropping", unit="img", file=sys.stderr, disable=len(args.images) < 2 or not sys.stderr.isatty())
    for name, stem in zip(bar, stems):
        try:
            analysis = cropper.analyse(Path(name))
            result = analysis.crops(options)
            files = []
            if args.out is not None:
                files = _write_outputs(args.out, stem, analysis, result, args.heatmap, options.keep, options.focus)
        except Exception as e:  # never a traceback for one bad file; the rest still run
            failed += 1
            error = describe(e)  # an OSError here is writing (reading is asm.io's, which raises InvalidImage)
            bar.clear()
            _fail(name, error["message"])
            if args.json:
                print(json.dumps({"file": str(name), **error}), flush=True)
            continue
        bar.clear()
        if args.json:
            print(json.dumps({"file": str(name), **result.to_json(), "files": files}), flush=True)
        else:
            parts = [f"{c.aspect} {c.shape} {c.box} score {c.score:.3f}" + _kept_text(c, result, len(options.keep)) for c in result.crops]
            print(f"{name} ({result.width}x{result.height}): " + "; ".join(parts), flush=True)
            for warning in result.warnings:
                _fail(name, f"warning: {warning}")
    return 1 if failed else 0


def _kept_text(crop, result, n_keep: int) -> str:
    """`` faces 2/3 keep 1/1``: faces and keep-regions held whole, for the one-line output."""
    text = ""
    if crop.faces_kept is not None and result.faces:
        text += f" faces {len(crop.faces_kept)}/{len(result.faces)}"
    if crop.keep_kept is not None:
        text += f" keep {len(crop.keep_kept)}/{n_keep}"
    return text


def _batch(args: argparse.Namespace) -> int:
    import signal

    from asm.batch import run_batch
    from asm.cropper import OPTION_KEYS, CropOptions
    from asm.errors import AsmError

    if args.engine != "ray" and args.ray_address:
        _fail("--ray-address", "joins a Ray cluster; add --engine ray")
        return 2
    # SIGTERM (kill, a scheduler's stop) ends the job like Ctrl-C: the lines written stay whole
    previous = signal.signal(signal.SIGTERM, lambda *_: signal.default_int_handler(signal.SIGINT, None))
    try:
        crop_options = {k: getattr(args, k) for k in OPTION_KEYS if hasattr(args, k)}
        options = CropOptions.from_mapping(crop_options)
        if args.max_pixels < 1:
            raise InvalidOption(f"--max-pixels must be a positive number of pixels, got {args.max_pixels}")
        summary = run_batch(args.inputs, args.out, options, fmt=args.format, engine=args.engine, workers=args.workers,
                            model=args.model, max_pixels=args.max_pixels, ray_address=args.ray_address)
    except (AsmError, OSError) as e:
        _fail("error", str(e) if isinstance(e, AsmError) else e.strerror or str(e))
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"asm batch: {summary.line()}; results in {args.out}", file=sys.stderr, flush=True)
    if summary.interrupted:
        return 130
    return 1 if summary.any_failed else 0


def _export(args: argparse.Namespace) -> int:
    from asm.models import DEFAULT_MODEL_PATH, asm_net
    from asm.runtime import export_onnx, file_digest

    model_path = args.model or DEFAULT_MODEL_PATH
    out = args.out or model_path.with_suffix(".onnx")
    try:
        export_onnx(asm_net(weights=model_path), out, digest=file_digest(model_path))
    except (OSError, ValueError, ImportError) as e:
        _fail("export", str(e))
        return 2
    print(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    # idle OpenMP threads sleep instead of spinning (set before torch loads): on a busy
    # machine spinning threads make each small op of the box search wait for a core
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args, extra = parser.parse_known_args(argv)
    if extra:  # an unknown option: the command's own usage, not the top level's
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[args.command].error(f"unrecognized arguments: {echo(' '.join(extra))}")
    try:
        return args.func(args)
    except BrokenPipeError:  # `asm crop ... | head`: the reader left; stop quietly, as head's writers do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by the pipe


if __name__ == "__main__":
    sys.exit(main())
