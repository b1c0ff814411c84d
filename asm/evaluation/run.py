"""``asm eval``: asm next to the centre crop and heuristic peers, on the same images in one run.

Sections (each skipped with a clear line when its data are missing):

1. **GAICD protocol** on whatever GAICD images are under ``--gaicd ROOT`` (default: the
   shared ``gaicd/images``, one annotated image): per-image SRCC and Acc_K/N of the scores
   of every annotated crop (``Cropper.score(image, boxes)``), next to the content-free
   "bigger crop is better" baseline (score = area) and smartcrop.py's own window score.
   Peers that cannot score an arbitrary crop get "–".
2. **FCDB / FLMS protocol** (best-crop IoU and boundary displacement) on the available
   images: asm's free top-1 crop and asm, the centre crop and the peers at the aspect of the
   annotated crop(s), plus the whole image.
3. **Border-free checks** that gate a model:
   (a) *photo vs re-framed cut* -- a random cut (60-85 % of each side, random place) of each
   photo, re-framed as its own image; both scored as whole images; the share of pairs where
   the real photo scores higher (target >= 0.80);
   (b) *border bias* of the score map per channel: (mean of the outer ring of map pixels -
   interior mean) / map std, averaged over the photos (near 0 is good);
   (c) with ``--fixations``: *content retention* on the validation splits of OSIE, EyeCrowd
   and NUS Scene (:mod:`asm.data.fixations`): share of human eye fixations kept by the top-1
   crop at six aspects for asm (faces on and off), the centre crop and the peers, plus the
   best possible box; how often asm's crops cut a face that matters; and the free crops'
   shapes next to people's (:mod:`asm.evaluation.free`).
4. ``--sheet PATH``: a comparison sheet (rows: validation photos; columns: asm, centre crop,
   smartcrop.py, libvips attention; each cell the photo with its 1:1, 9:16 and 16:9 crops).
5. Timings per method and image.

Peers are described in :mod:`asm.evaluation.peers`; the ones whose library does not import show "n/a".

Each section is a module of :mod:`asm.evaluation`; this one parses the command line and runs them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from asm.evaluation.border import border_bias, photo_vs_cut, validation_photos
from asm.evaluation.cropping import best_crop_section, gaicd_section
from asm.evaluation.free import free_section
from asm.evaluation.placement import placement_histogram, placement_table
from asm.evaluation.report import Table, Timer, _peer_status, shown
from asm.evaluation.retention import fixation_retention, photo_retention
from asm.evaluation.sheets import comparison_sheet, sheet_images
from asm.evaluation.teacher import teacher_section

__all__ = ["run", "add_parser"]


def _model_line(weights) -> str:
    """The model's file, network and training epoch (``weights``: its :class:`~asm.models.Weights`)."""
    epoch = weights.meta.val.get("epoch")
    extra = f", checkpoint of epoch {epoch}" if epoch is not None else ""
    return f"model `{shown(weights.file)}` ({weights.config.get('backbone')}, pattern {weights.config.get('pattern')}{extra})"


def _load_teacher(path):
    """The FastGaze teacher, or why it cannot be loaded."""
    from asm.models.fastgaze import FastGaze
    from asm.data.gaze import teacher_path

    try:
        return FastGaze.from_file(teacher_path(path))
    except (FileNotFoundError, RuntimeError) as e:
        return str(e)


def run(args: argparse.Namespace) -> int:
    from asm.cropper import Cropper
    from asm.data.cropping import FCDB, FLMS, GAICD
    from asm.data.fixations import fixation_set
    from asm.data.shared import data_dir

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cropper = Cropper.from_pretrained(args.model, runtime=args.runtime, device=args.device)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"asm: eval: {e}", file=sys.stderr)
        return 2
    status = _peer_status()
    timer = Timer()
    progress = not args.no_progress
    t_start = time.time()
    sections: list[str] = []

    def emit(table: Table) -> None:
        text = table.markdown()
        sections.append(text)
        print(text, flush=True)

    def shared_root(name: str, *sub: str) -> Path | None:
        try:
            return data_dir(name).joinpath(*sub)
        except FileNotFoundError:
            return None

    head = [
        "# asm eval",
        "",
        f"{_model_line(cropper.weights)}, runtime {cropper.runtime}; device {args.device}, {torch.get_num_threads()} torch thread(s); "
        f"limit {args.limit if args.limit else 'none'}; {time.strftime('%Y-%m-%d %H:%M')}.",
        "Peers: " + ", ".join(f"{n} ({'ok' if ok else 'n/a: ' + why})" for n, (ok, why) in status.items()) + ".",
        "",
    ]
    print("\n".join(head), flush=True)

    # 1. GAICD
    root = args.gaicd or shared_root("gaicd", "images")
    if root is None:
        emit(Table("GAICD protocol", [], notes=["no GAICD root given and no shared data folder: skipped."]))
    else:
        try:
            ds = GAICD(root, split="all")
        except (FileNotFoundError, ValueError) as e:
            emit(Table("GAICD protocol", [], notes=[f"GAICD annotations unavailable ({e}): skipped."]))
        else:
            emit(gaicd_section(cropper, ds, args.limit, progress, timer, status)[0])

    # 2. FCDB / FLMS
    for name, cls, arg, sub in (("FCDB", FCDB, args.fcdb, "fcdb"), ("FLMS", FLMS, args.flms, "flms")):
        root = arg or shared_root(sub)
        if root is None:
            emit(Table(f"{name} protocol", [], notes=[f"no {name} root given and no shared data folder: skipped."]))
            continue
        try:
            ds = cls(root, split="test") if cls is FCDB else cls(root)
        except (FileNotFoundError, ValueError) as e:
            emit(Table(f"{name} protocol", [], notes=[f"{name} annotations unavailable ({e}): skipped."]))
            continue
        if not ds.available():
            line = f"no {name} images under {shown(ds.root)}: skipped ({len(ds.names)} annotated images, none present)."
            emit(Table(f"{name} protocol", [], notes=[line]))
            continue
        emit(best_crop_section(cropper, ds, name, args.limit, progress, timer, status)[0])

    # 3. border-free checks
    try:
        photos = validation_photos(args.photos)
    except (FileNotFoundError, ValueError) as e:
        photos = []
        emit(Table("Border-free checks (a), (b)", [], notes=[f"no validation photos ({e}): skipped."]))
    if photos:
        photos_used = photos[: args.limit] if args.limit else photos
        t_a, _, maps = photo_vs_cut(cropper, photos_used, args.cuts, args.seed, progress, timer, status)
        emit(t_a)
        emit(border_bias(maps)[0])
    sets = [n.strip() for n in args.fixations.split(",") if n.strip()] if args.fixations else []
    fixation_sets = {}
    for name in sets or (["osie"] if args.sheet else []):
        try:
            fixation_sets[name] = fixation_set(name, "val")
        except (FileNotFoundError, ValueError) as e:
            if name in sets:
                emit(Table(f"Check (c): eye fixations kept on {name}", [], notes=[f"no {name} validation photos ({e}): skipped."]))
    retentions = {}
    for name in sets:
        if name in fixation_sets:
            table, retentions[name] = fixation_retention(cropper, fixation_sets[name], args.limit, progress, timer, status)
            emit(table)
    if retentions:
        offsets = {m: sum((r[m]["offsets"] for r in retentions.values() if r.get(m)), []) for m in next(iter(retentions.values()))
                   if m != "faces"}
        merged = {m: {"offsets": o} for m, o in offsets.items() if o}
        emit(placement_table(merged, f"Placement: how far from the centre top-1 crops sit ({', '.join(retentions)} val, all aspects)"))
        if args.placements:
            print(f"placement histogram: {placement_histogram(merged, args.placements)}\n", flush=True)
        emit(free_section(cropper, list(fixation_sets.values()), args.limit, progress)[0])
    osie = fixation_sets.get("osie")
    if osie is not None and "osie" in sets:
        teacher = _load_teacher(args.teacher)
        if isinstance(teacher, str):
            emit(Table("Saliency maps against OSIE fixations", [], notes=[f"no teacher ({teacher}): skipped."]))
        else:
            emit(teacher_section(cropper, osie, teacher, args.limit, progress)[0])
    if sets and photos and args.photos is None:
        teacher = _load_teacher(args.teacher)
        if not isinstance(teacher, str):
            from asm.data.gaze import photo_gaze
            from asm.data.photos import photo_folder, split_by_source

            val_photos = split_by_source(photo_folder())[1]
            samples = photo_gaze(val_photos[: args.limit] if args.limit else val_photos, teacher, progress=progress)
            emit(photo_retention(cropper, samples, progress)[0])

    # 4. sheet
    if args.sheet:
        picks = sheet_images(photos, list(fixation_sets.values()), args.sheet_rows)
        if picks:
            path = comparison_sheet(cropper, picks, args.sheet, status=status,
                                    title=f"Top-1 crops at 1:1, 9:16, 16:9 -- model {shown(cropper.weights.file)}")
            print(f"comparison sheet: {path}\n", flush=True)
            sections.append(f"Comparison sheet: `{shown(path)}`.\n")
        else:
            print("comparison sheet: no validation images to draw, skipped\n", flush=True)

    # 5. timings
    t = timer.table()
    t.notes.append(f"Whole run: {time.time() - t_start:.1f} s (decoding and metric bookkeeping included).")
    emit(t)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(head) + "\n" + "\n".join(sections), encoding="utf-8")
        print(f"written: {out}", flush=True)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model next to the centre crop and heuristic peers",
        description="Evaluate asm next to the centre crop and the heuristic peers (smartcrop.py, libvips\n"
        "attention and entropy) on the same images: GAICD protocol, FCDB/FLMS protocol, border-free\n"
        "checks (photo vs re-framed cut, score-map border bias, fixations kept with --fixations),\n"
        "an optional comparison sheet, timings. Prints markdown tables; --out writes them to a file.\n"
        "Sections whose images are missing say so and are skipped.",
        epilog="example:\n  asm eval --model runs/v1/best.pt --fixations --sheet docs/comparison.png --out benchmarks/results/eval.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", type=Path, metavar="PATH", help="a model file (default: the model shipped with asm)")
    p.add_argument("--gaicd", type=Path, metavar="ROOT", help="GAICD images (default: the shared gaicd/images)")
    p.add_argument("--fcdb", type=Path, metavar="ROOT", help="FCDB images (default: the shared fcdb folder)")
    p.add_argument("--flms", type=Path, metavar="ROOT", help="FLMS images (default: the shared flms folder)")
    p.add_argument("--photos", type=Path, metavar="DIR",
                   help="photos for the border-free checks: a photo folder with MANIFEST.txt (its validation sources "
                   "are used) or any folder of images (default: the shared photos)")
    p.add_argument("--fixations", nargs="?", const="osie,eyecrowd,nus", metavar="SETS",
                   help="also measure eye fixations kept, and free crops, on the validation splits of these fixation sets "
                   "(default when given alone: osie,eyecrowd,nus)")
    p.add_argument("--teacher", type=Path, metavar="PATH", help="FastGaze weights (default: the shared weights folder)")
    p.add_argument("--placements", type=Path, metavar="PATH", help="with --fixations: draw the placement-offset histogram PNG here")
    p.add_argument("--sheet", type=Path, metavar="PATH", help="draw a comparison sheet PNG here")
    p.add_argument("--sheet-rows", type=int, default=8, metavar="N", help="photos on the sheet (default 8: two of each fixation set, then held-out photos)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N images per section")
    p.add_argument("--cuts", type=int, default=3, metavar="K", help="random cuts per photo in check (a) (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random cuts (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--runtime", choices=["auto", "int8", "onnx", "torch"], default="auto",
                   help="where the network runs, as `asm crop --runtime` (default auto: the int8 twin when there is one)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads (default: torch's choice); 1 is far faster when other processes keep the cores busy")
    p.add_argument("--out", type=Path, metavar="FILE.md", help="also write the tables as markdown here")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
