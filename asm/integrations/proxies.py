"""URL recipes that hand asm's content focal point to the image proxies people run.

Analyse a catalogue once (``asm batch`` writes ``"focal_point": {"x", "y", "x_norm",
"y_norm"}`` per image), then let any proxy cut every size around that point: each crops the
largest box of the requested aspect centred on it, pushed inside the image (what
:func:`asm.search.focal.box_at` computes, and what ``benchmarks/results/focal.md`` measures).

>>> urls({"x": 412, "y": 233, "x_norm": 0.515, "y_norm": 0.5178}, 300, 200, "osprey.jpg")["imgix"]
'/osprey.jpg?w=300&h=200&fit=crop&crop=focalpoint&fp-x=0.515&fp-y=0.5178'

Paths only: put each proxy's host (and, for imgproxy and imagor, its signature in place of
``insecure`` / ``unsafe``) in front. The README's table shows the same recipes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["urls", "PROXIES"]

PROXIES = ("imgproxy", "imagor", "imgix", "cloudinary", "cloudflare")


def _num(v: float) -> str:
    """A 0-1 coordinate as proxies read it: at most 4 decimals, no trailing zeros."""
    text = f"{float(v):.4f}".rstrip("0").rstrip(".")
    return text or "0"


def urls(focal_point: Mapping[str, Any], width: int, height: int, image: str = "photo.jpg") -> dict[str, str]:
    """The path of a ``width x height`` crop of ``image`` around ``focal_point`` (asm's JSON:
    ``x``, ``y`` in pixels of the original, ``x_norm``, ``y_norm`` in 0..1) for each proxy in
    :data:`PROXIES`."""
    x, y = int(focal_point["x"]), int(focal_point["y"])
    xn, yn = _num(focal_point["x_norm"]), _num(focal_point["y_norm"])
    w, h = int(width), int(height)
    return {
        # gravity fp: a point in 0..1; rs:fill: crop to fill the size
        "imgproxy": f"/insecure/rs:fill:{w}:{h}/g:fp:{xn}:{yn}/plain/{image}",
        # focal(): a region in pixels (here the point's pixel); the crop centres on it
        "imagor": f"/unsafe/{w}x{h}/filters:focal({x}x{y}:{x + 1}x{y + 1})/{image}",
        # crop=focalpoint with fp-x / fp-y in 0..1 (fp-z stays 1: no zoom)
        "imgix": f"/{image}?w={w}&h={h}&fit=crop&crop=focalpoint&fp-x={xn}&fp-y={yn}",
        # g_xy_center with x_ / y_ in pixels of the original
        "cloudinary": f"/image/upload/c_fill,w_{w},h_{h},g_xy_center,x_{x},y_{y}/{image}",
        # gravity=XxY in 0..1
        "cloudflare": f"/cdn-cgi/image/width={w},height={h},fit=crop,gravity={xn}x{yn}/{image}",
    }
