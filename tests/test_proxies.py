"""URL recipes for image proxies (asm.integrations.proxies), as the README shows them."""

import re
from pathlib import Path

import pytest

from asm.integrations.proxies import PROXIES, urls
from asm.search.focal import box_at

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "desert-hike.jpg"

# the README's table, for desert-hike.jpg's focal point
README_POINT = {"x": 311, "y": 309, "x_norm": 0.3887, "y_norm": 0.5787}
README_URLS = {
    "imgproxy": "/insecure/rs:fill:300:300/g:fp:0.3887:0.5787/plain/desert-hike.jpg",
    "imagor": "/unsafe/300x300/filters:focal(311x309:312x310)/desert-hike.jpg",
    "imgix": "/desert-hike.jpg?w=300&h=300&fit=crop&crop=focalpoint&fp-x=0.3887&fp-y=0.5787",
    "cloudinary": "/image/upload/c_fill,w_300,h_300,g_xy_center,x_311,y_309/desert-hike.jpg",
    "cloudflare": "/cdn-cgi/image/width=300,height=300,fit=crop,gravity=0.3887x0.5787/desert-hike.jpg",
}


def test_the_readme_recipes():
    assert urls(README_POINT, 300, 300, "desert-hike.jpg") == README_URLS
    assert list(README_URLS) == list(PROXIES)
    assert "g:fp:0:1/" in urls({"x": 0, "y": 10, "x_norm": 0.0, "y_norm": 1.0}, 10, 10)["imgproxy"]


def _point(proxy: str, url: str, width: int, height: int) -> tuple[float, float]:
    """The focal point a proxy reads from its URL, in pixels of the original."""
    patterns = {"imgproxy": r"g:fp:([\d.]+):([\d.]+)/", "imagor": r"focal\((\d+)x(\d+):(\d+)x(\d+)\)",
                "imgix": r"fp-x=([\d.]+)&fp-y=([\d.]+)", "cloudinary": r"x_(\d+),y_(\d+)/",
                "cloudflare": r"gravity=([\d.]+)x([\d.]+)/"}
    v = [float(g) for g in re.search(patterns[proxy], url).groups()]
    if proxy == "imagor":  # a one-pixel region: its top-left pixel is the point
        assert (v[2] - v[0], v[3] - v[1]) == (1, 1)
        return v[0], v[1]
    if proxy == "cloudinary":
        return v[0], v[1]
    return v[0] * width, v[1] * height


@pytest.mark.slow
def test_every_recipe_carries_asms_focal_point_for_one_photo():
    from asm import Cropper
    from asm.search.focal import content_focal_point

    analysis = Cropper.from_pretrained().analyse(PHOTO)
    W, H = analysis.width, analysis.height
    fp = content_focal_point(analysis).to_json()
    for size, ratio in (((300, 200), 1.5), ((200, 300), 2 / 3), ((300, 300), 1.0)):
        got = urls(fp, *size, PHOTO.name)
        expected_box = box_at(fp["x"], fp["y"], ratio, W, H)
        for proxy in PROXIES:
            x, y = _point(proxy, got[proxy], W, H)
            assert abs(x - fp["x"]) <= 0.5 and abs(y - fp["y"]) <= 0.5, (proxy, got[proxy], fp)
            # the crop the proxy cuts around that point is the one asm's point stands for
            assert max(abs(a - b) for a, b in zip(box_at(x, y, ratio, W, H), expected_box)) <= 0.5
