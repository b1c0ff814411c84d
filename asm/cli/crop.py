"""``asm crop``: the best crops of a few images, printed and (with ``--out``) written as files."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

from asm.cli import fail
from asm.errors import echo

__all__ = ["add_parser", "output_stems"]


def add_parser(sub: argparse._SubParsersAction) -> None:
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
                   help="zoom for fixed aspects: smallest crop side as a share of the largest crop of the aspect, 0.1-1 "
                   "(default 1: the largest box; free crops choose their own size)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write each crop, an overview with the crops drawn and (with --heatmap) heatmaps here; "
                   "inputs with the same name get -2, -3, ... in input order")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per image: {file, width, height, crops, faces, focal_point, files} (focal_point: asm's "
                   "one point for image proxies, in pixels and 0-1); a failure is {file, error, message}")
    p.add_argument("--heatmap", action="store_true", help="also write the θ_avg / θ_std heatmap overlays (needs --out)")
    p.add_argument("--model", type=Path, metavar="PATH", help="a model file (default: the model shipped with asm)")
    p.add_argument("--runtime", choices=["auto", "int8", "onnx", "torch"], default="auto",
                   help="run the network on ONNX Runtime, int8 (fastest on CPUs) or float, or on torch; auto (default) "
                   "takes the int8 twin next to the model (the shipped model has one), else float ONNX Runtime when "
                   "it is installed")
    p.add_argument("--max-pixels", type=int, metavar="N",  # default: CropperSettings's (asm.io.DEFAULT_MAX_PIXELS)
                   help="refuse images with more pixels than this, checked before decoding (default 50,000,000)")
    p.set_defaults(func=_run)


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


def _kept_text(crop, result, n_keep: int) -> str:
    """`` faces 2/3 keep 1/1``: faces and keep-regions held whole, for the one-line output."""
    text = ""
    if crop.faces_kept is not None and result.faces:
        text += f" faces {len(crop.faces_kept)}/{len(result.faces)}"
    if crop.keep_kept is not None:
        text += f" keep {len(crop.keep_kept)}/{n_keep}"
    return text


def _open_out(out: Path) -> bool:
    """Make the ``--out`` folder; False (after saying why) when it cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(errno.EACCES, "it is not writable (a read-only file system, or no permission)")
    except OSError as e:
        reason = "it is a file" if out.is_file() else (e.strerror or str(e)).lower()
        fail("--out", f"cannot write to the folder {echo(str(out))}: {reason}")
        return False
    return True


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from asm.errors import AsmError, describe
    from asm.options import CropOptions
    from asm.settings import CropperSettings

    if args.heatmap and args.out is None:
        fail("--heatmap", "heatmaps are written as files; add --out DIR")
        return 2
    try:
        options = CropOptions.parse(args.aspect, args.circular, args.top_k, args.nms_iou,
                                    args.faces, args.keep, args.focus, args.min_scale)
        cropper = CropperSettings.from_mapping(vars(args)).build()
    except (AsmError, ImportError, FileNotFoundError) as e:  # --runtime onnx/int8: no onnxruntime, no int8 twin
        fail("error", str(e))
        return 2
    if args.out is not None and not _open_out(args.out):
        return 2

    failed = 0
    stems = output_stems(args.images)
    bar = tqdm(args.images, desc="cropping", unit="img", file=sys.stderr, disable=len(args.images) < 2 or not sys.stderr.isatty())
    for name, stem in zip(bar, stems):
        try:
            analysis = cropper.analyse(Path(name))
            result = analysis.crops(options, focal_point=args.json)
            files = []
            if args.out is not None:
                files = _write_outputs(args.out, stem, analysis, result, args.heatmap, options.keep, options.focus)
        except Exception as e:  # never a traceback for one bad file; the rest still run
            failed += 1
            error = describe(e)  # an OSError here is writing (reading is asm.io's, which raises InvalidImage)
            bar.clear()
            fail(name, error["message"])
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
                fail(name, f"warning: {warning}")
    return 1 if failed else 0
