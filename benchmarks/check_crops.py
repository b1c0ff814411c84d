"""Do two versions of asm pick the same crops? A check for speed work on the search.

``record OUT.json`` writes the default model's crops of the OSIE validation photos
(ids 1401-1500) at each aspect of :data:`ASPECTS` (faces on, top 3), the top crop of each of
:data:`TOP1_ASPECTS` asked together (the default ``top_k=1``, which refines fewer anchors),
and the detected faces; ``compare BEFORE.json AFTER.json`` reports every crop whose box moved
by more than ``--tolerance`` pixels (any edge) and every change in the faces found, and exits
1 if any (a recording without the top-1 crops is compared on the rest).

    python benchmarks/check_crops.py record /tmp/before.json      # on the old code
    python benchmarks/check_crops.py record /tmp/after.json       # on the new code
    python benchmarks/check_crops.py compare /tmp/before.json /tmp/after.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OSIE_IMAGES = ROOT.parent / "shared" / "data" / "osie" / "images"
VAL_IDS = range(1401, 1501)
ASPECTS = ("1:1", "16:9", "free")
TOP_K = 3
TOP1_ASPECTS = ("1:1", "4:5", "16:9", "9:16", "free")
TOP1 = "top 1 of " + ",".join(TOP1_ASPECTS)  # its key in a recording


def record(out: Path, images: Path) -> None:
    from asm.cropper import Cropper

    cropper = Cropper.from_pretrained()
    result: dict[str, dict] = {}
    for i in VAL_IDS:
        path = images / f"{i}.jpg"
        analysis = cropper.analyse(str(path))  # one forward pass: the same crops as cropper.crop
        entry: dict[str, object] = {}
        for aspect in ASPECTS:
            r = analysis.crops(aspect=aspect, top_k=TOP_K)
            entry[aspect] = [c.box for c in r.crops]
            entry["faces"] = [[round(v, 1) for v in f[:4]] for f in (r.faces or [])]
        entry[TOP1] = [c.box for c in analysis.crops(aspect=list(TOP1_ASPECTS)).crops]
        result[path.name] = entry
    out.write_text(json.dumps({"runtime": cropper.runtime, "crops": result}, indent=0))
    print(f"{len(result)} photos x ({len(ASPECTS)} aspects, top {TOP_K}; top 1 of {len(TOP1_ASPECTS)}) -> {out}")


def compare(before: Path, after: Path, tolerance: float) -> int:
    a, b = json.loads(before.read_text())["crops"], json.loads(after.read_text())["crops"]
    moved, faces_changed, crops, worst = [], [], 0, 0.0
    for name in sorted(a):
        for aspect in [k for k in (*ASPECTS, TOP1) if k in a[name] and k in b[name]]:
            for rank, (x, y) in enumerate(zip(a[name][aspect], b[name][aspect])):
                crops += 1
                d = max(abs(p - q) for p, q in zip(x, y))
                worst = max(worst, d)
                if d > tolerance:
                    moved.append(f"{name} {aspect} #{rank + 1}: {x} -> {y}")
            if len(a[name][aspect]) != len(b[name][aspect]):
                moved.append(f"{name} {aspect}: {len(a[name][aspect])} -> {len(b[name][aspect])} crops")
        if a[name]["faces"] != b[name]["faces"]:
            faces_changed.append(f"{name}: {a[name]['faces']} -> {b[name]['faces']}")
    print(f"{len(a)} photos, {crops} crops compared: largest edge move {worst:g} px; "
          f"{len(moved)} moved by more than {tolerance:g} px; faces changed on {len(faces_changed)} photos")
    for line in moved + faces_changed:
        print("  " + line)
    return 1 if moved else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out", type=Path)
    rec.add_argument("--images", type=Path, default=OSIE_IMAGES)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    cmp_.add_argument("--tolerance", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.cmd == "record":
        record(args.out, args.images)
        return 0
    return compare(args.before, args.after, args.tolerance)


if __name__ == "__main__":
    sys.exit(main())
