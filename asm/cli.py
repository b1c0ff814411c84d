"""The ``asm`` command: ``asm crop``, ``asm export``, ``asm train``, ``asm eval``.

A thin shell over :class:`asm.cropper.Cropper`: it parses arguments, prints and writes
files; it never resizes, searches or draws by itself. Nothing heavy is imported before a
command runs, so ``asm --help`` and ``asm crop --help`` answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _add_crop_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "crop",
        help="find the best crops of images",
        description="Find the best crops of one or more images. Prints one line per image "
        "(one JSON object per line with --json) and, with --out, writes the crops.",
        epilog="examples:\n  asm crop photo.jpg --aspect 16:9\n  asm crop *.jpg --aspect 16:9 --aspect 1:1 --top-k 3 --out crops/\n"
        "  asm crop face.jpg --circular --out avatars/ --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, GIF, TIFF, BMP, ...)")
    p.add_argument("--aspect", action="append", metavar="W:H",
                   help="aspect ratio width:height, e.g. 16:9 or 1.91:1; repeat for several; 'free' (default) lets asm choose")
    p.add_argument("--circular", action="store_true", help="round crops (the disc inside a square); written as transparent PNG")
    p.add_argument("--top-k", type=int, default=1, metavar="N", help="the N best, mutually distinct crops per aspect (default 1)")
    p.add_argument("--nms-iou", type=float, default=0.5, metavar="T",
                   help="two of the top-k crops overlap at most this much (IoU, default 0.5)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write each crop, an overview with the crops drawn and (with --heatmap) heatmaps here")
    p.add_argument("--json", action="store_true", help="print one JSON object per image: {file, width, height, crops}")
    p.add_argument("--heatmap", action="store_true", help="also write the θ_avg / θ_std heatmap overlays (needs --out)")
    p.add_argument("--model", type=Path, metavar="PATH", help="a model file (default: the model shipped with asm)")
    p.add_argument("--runtime", choices=["auto", "onnx", "torch"], default="auto",
                   help="run the network on ONNX Runtime (fast on CPUs) or torch; auto (default) takes ONNX Runtime "
                   "when it is installed")
    p.set_defaults(func=_crop)


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
    "train": ("asm.train", "train a model from human eye fixations (OSIE)"),
    "eval": ("asm.evaluate", "evaluate a model next to the centre crop and heuristic peers"),
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
    _add_export_parser(sub)
    for name, (module, help_line) in LAZY_COMMANDS.items():  # they add their own subcommands
        if name == command:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_line, add_help=False)
    return parser


def _fail(name: str, message: str) -> None:
    print(f"asm: {name}: {message}", file=sys.stderr)


def _crop(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from asm.cropper import Cropper, CropOptions
    from asm.errors import AsmError
    from asm.io import encode_jpeg, encode_png

    if args.heatmap and args.out is None:
        _fail("--heatmap", "heatmaps are written as files; add --out DIR")
        return 2
    try:
        options = CropOptions.parse(args.aspect, args.circular, args.top_k, args.nms_iou)
        cropper = Cropper.from_pretrained(args.model, runtime=args.runtime)
    except (AsmError, FileNotFoundError, ValueError) as e:
        _fail("error", str(e))
        return 2
    from asm import viz

    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in tqdm(args.images, desc="cropping", unit="img", disable=len(args.images) < 2, file=sys.stderr):
        try:
            prepared = cropper.prepare(Path(name))
            score_map = cropper.score_maps([prepared])[0]
            result = cropper.search(prepared, score_map, options)
            if args.out is not None:
                stem = Path(name).stem
                for i, crop in enumerate(result.crops):
                    tag = crop.aspect.replace(":", "x").replace("/", "x")
                    pixels = viz.cut_crop(prepared.image, crop)
                    if crop.shape == "circle":
                        (args.out / f"{stem}_circle_{i + 1}.png").write_bytes(encode_png(pixels))
                    else:
                        (args.out / f"{stem}_{tag}_{i + 1}.jpg").write_bytes(encode_jpeg(pixels))
                (args.out / f"{stem}_crops.jpg").write_bytes(encode_jpeg(viz.draw_crops(prepared.image, result.crops)))
                if args.heatmap:
                    heat = cropper.heatmaps(None, prepared, score_map)
                    (args.out / f"{stem}_theta_avg.jpg").write_bytes(encode_jpeg(viz.overlay_heatmap(prepared.image, heat.avg)))
                    (args.out / f"{stem}_theta_std.jpg").write_bytes(encode_jpeg(viz.overlay_heatmap(prepared.image, heat.std)))
        except (AsmError, OSError) as e:
            failed += 1
            _fail(name, str(e) if isinstance(e, AsmError) else f"cannot read or write: {e.strerror or e}")
            continue
        except Exception as e:  # never a traceback for one bad file; the rest still run
            failed += 1
            _fail(name, f"internal error ({type(e).__name__}: {e})")
            continue
        if args.json:
            print(json.dumps({"file": str(name), **result.to_json()}), flush=True)
        else:
            parts = [f"{c.aspect} {c.shape} {c.box} score {c.score:.3f}" for c in result.crops]
            print(f"{name} ({result.width}x{result.height}): " + "; ".join(parts), flush=True)
    return 1 if failed else 0


def _export(args: argparse.Namespace) -> int:
    from asm.cropper import DEFAULT_MODEL_PATH
    from asm.model import load_model
    from asm.runtime import export_onnx, file_digest

    model_path = args.model or DEFAULT_MODEL_PATH
    out = args.out or model_path.with_suffix(".onnx")
    try:
        export_onnx(load_model(model_path), out, digest=file_digest(model_path))
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
    args = build_parser(command).parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
