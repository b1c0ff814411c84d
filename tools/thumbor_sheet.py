"""``docs/thumbor.png``: Thumbor's default smart crop (its face + feature detectors) beside
Thumbor with asm's detector, on the example photos; each row: the photo with both boxes
(from ``/meta/``), Thumbor's crop, asm's crop.

    python tools/thumbor_sheet.py [--out docs/thumbor.png]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLES = ROOT / "examples"
# (photo, requested size): portrait crops of landscape photos and the reverse, where placement matters
ROWS = [("desert-hike.jpg", (200, 300)), ("otters.jpg", (200, 300)), ("colorado-sign.jpg", (200, 300)),
        ("dogs-window.jpg", (300, 200))]
COLOURS = {"Thumbor (face + feature)": (230, 60, 60), "Thumbor + asm": (40, 200, 90)}
TILE = 240  # height of every tile


def _fetch(base: str, path: str) -> tuple[Image.Image, list[int]]:
    from asm.integrations.thumbor_process import get

    status, body = get(f"{base}/unsafe/{path}")
    assert status == 200, body[:200]
    status, meta = get(f"{base}/unsafe/meta/{path}")
    ops = [op for op in json.loads(meta)["thumbor"]["operations"] if op["type"] == "crop"]
    return Image.open(io.BytesIO(body)).convert("RGB"), [ops[0][k] for k in ("left", "top", "right", "bottom")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "thumbor.png")
    args = parser.parse_args()
    from asm.integrations.thumbor_process import CONF, ThumborProcess

    got: dict[str, dict[str, tuple[Image.Image, list[int]]]] = {name: {} for name in COLOURS}
    with tempfile.TemporaryDirectory() as tmp:
        own = Path(tmp) / "own.conf"
        own.write_text(f"exec(open({str(CONF)!r}).read())\n"
                       "DETECTORS = ['thumbor.detectors.face_detector', 'thumbor.detectors.feature_detector']\n")
        for (name, conf) in zip(COLOURS, (own, CONF)):
            with ThumborProcess(Path(tmp) / name.split()[-1], EXAMPLES, unsafe=True, conf=conf) as server:
                for photo, (w, h) in ROWS:
                    got[name][photo] = _fetch(server.base, f"{w}x{h}/smart/{photo}")
    rows = []
    for photo, _ in ROWS:
        original = Image.open(EXAMPLES / photo).convert("RGB")
        scale = TILE / original.height
        shown = original.resize((round(original.width * scale), TILE))
        draw = ImageDraw.Draw(shown)
        for name, colour in COLOURS.items():
            draw.rectangle([round(v * scale) for v in got[name][photo][1]], outline=colour, width=4)
        tiles = [shown] + [got[name][photo][0].resize((round(got[name][photo][0].width * TILE / got[name][photo][0].height), TILE))
                           for name in COLOURS]
        row = Image.new("RGB", (sum(t.width for t in tiles) + 10 * (len(tiles) - 1), TILE), "white")
        x = 0
        for t in tiles:
            row.paste(t, (x, 0))
            x += t.width + 10
        rows.append(row)
    head = 34
    sheet = Image.new("RGB", (max(r.width for r in rows), head + sum(r.height + 10 for r in rows)), "white")
    draw = ImageDraw.Draw(sheet)
    x = 10
    draw.text((x, 10), "photo:", fill=(0, 0, 0))
    for name, colour in COLOURS.items():
        x += 60
        draw.rectangle([x, 10, x + 14, 24], fill=colour)
        draw.text((x + 20, 10), f"{name} box", fill=(0, 0, 0))
        x += 190
    draw.text((x + 20, 10), "then Thumbor's crop, then asm's", fill=(0, 0, 0))
    y = head
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height + 10
    sheet.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(args.out, optimize=True)  # a photo sheet: keep the file small
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
