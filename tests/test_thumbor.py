"""asm's Thumbor detector (asm.integrations.thumbor): Thumbor's auto_crop arithmetic inverted,
the detector on a stand-in request, and a real Thumbor process on loopback (``integration``)."""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("thumbor", reason="thumbor is not installed (pip install -e '.[thumbor]')")

from thumbor.point import FocalPoint as ThumborPoint  # noqa: E402
from thumbor.transformer import Transformer  # noqa: E402

from asm.integrations import thumbor as asm_thumbor  # noqa: E402
from asm.integrations.thumbor_process import ThumborProcess, get  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.jpg"))
SIZES = {"3:2": (300, 200), "2:3": (200, 300), "1:1": (100, 100)}
KEY = "asm-test-key"


class _Engine:
    """Enough of a Thumbor engine for Transformer.auto_crop: a size, and the crop it makes."""

    def __init__(self, width: int, height: int) -> None:
        self.size = (width, height)
        self.cropped: tuple[int, int, int, int] | None = None

    def crop(self, left, top, right, bottom) -> None:
        self.cropped = (left, top, right, bottom)


def _thumbor_box(point: tuple[int, int], size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The box Thumbor's own auto_crop cuts around ``point``."""
    engine = _Engine(*size)
    t = Transformer(SimpleNamespace(request=SimpleNamespace(engine=engine)))
    t.target_width, t.target_height = map(float, target)
    t.focal_points = [ThumborPoint(*point)]
    t.auto_crop()
    return engine.cropped


@pytest.mark.parametrize("size", [(800, 450), (533, 800), (801, 535), (640, 640)])
@pytest.mark.parametrize("target", [(300, 200), (200, 300), (100, 100), (1600, 900), (91, 70)])
def test_focal_for_box_makes_thumbor_cut_the_box(size, target):
    if not asm_thumbor.crops_at_all(size, target):
        assert _thumbor_box((0, 0), size, target) is None
        return
    cw, ch = asm_thumbor.crop_size(size, target)
    rng = np.random.default_rng(sum(size) + sum(target))
    for _ in range(20):  # boxes of Thumbor's size anywhere in the image, edges included
        x1 = int(rng.integers(0, size[0] - cw + 1))
        y1 = int(rng.integers(0, size[1] - ch + 1))
        box = [x1, y1, x1 + cw, y1 + ch]
        got = _thumbor_box(asm_thumbor.focal_for_box(box, size, target), size, target)
        # a box of odd size can only start where round-half-even takes it: within a pixel
        assert np.abs(np.subtract(got, box)).max() <= 1, (box, got)


def _request(width=300, height=200, **kw) -> SimpleNamespace:
    base = dict(width=width, height=height, fit_in=False, stretch=False, should_crop=False, smart=True,
                crop={"left": 0, "top": 0, "right": 0, "bottom": 0}, focal_points=[], image_url="x.jpg")
    return SimpleNamespace(**{**base, **kw})


def test_target_size_only_when_auto_crop_crops():
    assert asm_thumbor.target_size(_request(), (800, 450)) == (300.0, 200.0)
    assert asm_thumbor.target_size(_request(fit_in=True), (800, 450)) is None
    assert asm_thumbor.target_size(_request(height=0), (800, 450)) is None
    assert asm_thumbor.target_size(_request(160, 90), (800, 450)) is None  # the image's own ratio
    assert asm_thumbor.target_size(_request("orig", 450), (800, 450)) is None
    crop = {"left": -5, "top": 10, "right": 900, "bottom": 300}
    assert asm_thumbor.manual_region(_request(should_crop=True, crop=crop), 800, 450) == (0, 10, 800, 300)


def test_points_are_stored_unless_the_storage_is_none():
    from thumbor.storages import file_storage, mixed_storage, no_storage

    def context(storage, detector_storage=None):
        return SimpleNamespace(modules=SimpleNamespace(storage=storage),
                               config=SimpleNamespace(MIXED_STORAGE_DETECTOR_STORAGE=detector_storage))

    assert not asm_thumbor.caches_points(context(None))
    assert not asm_thumbor.caches_points(context(no_storage.Storage.__new__(no_storage.Storage)))
    assert asm_thumbor.caches_points(context(file_storage.Storage.__new__(file_storage.Storage)))
    mixed = mixed_storage.Storage.__new__(mixed_storage.Storage)
    assert not asm_thumbor.caches_points(context(mixed, "thumbor.storages.no_storage"))
    assert asm_thumbor.caches_points(context(mixed, "thumbor.storages.file_storage"))
    assert not asm_thumbor.within_ratios((1000, 10)) and asm_thumbor.within_ratios((300, 200))


class _Next:
    """A next detector in the chain that records that it ran."""

    ran = 0

    def __init__(self, context, index, detectors) -> None:
        self.context = context

    async def detect(self) -> None:
        type(self).ran += 1


def _context(engine, request, **config) -> SimpleNamespace:
    return SimpleNamespace(request=request, config=SimpleNamespace(**config),
                           modules=SimpleNamespace(engine=engine, storage=None))


class _BrokenEngine:
    size = (800, 450)

    def image_data_as_rgb(self, update_image=True):
        raise OSError("broken data stream")


def test_an_image_asm_cannot_read_goes_to_the_next_detector():
    _Next.ran = 0
    context = _context(_BrokenEngine(), _request())
    asyncio.run(asm_thumbor.Detector(context, 0, [asm_thumbor.Detector, _Next]).detect())
    assert _Next.ran == 1 and context.request.focal_points == []


class _ArrayEngine:
    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.size = (rgb.shape[1], rgb.shape[0])

    def image_data_as_rgb(self, update_image=True):
        return "RGB", self.rgb.tobytes()


def test_the_detector_gives_one_point_and_stops_the_chain(monkeypatch, cropper):
    monkeypatch.setattr(asm_thumbor, "cropper", lambda model=None, runtime="auto": cropper)
    rgb = np.random.default_rng(1).integers(0, 255, (240, 400, 3), dtype=np.uint8)
    for mode, origin in (("box", "asm crop"), ("content", "asm focal point")):
        _Next.ran = 0
        context = _context(_ArrayEngine(rgb), _request(), ASM_FOCAL_POINTS=mode, ASM_FACES=False)
        asyncio.run(asm_thumbor.Detector(context, 0, [asm_thumbor.Detector, _Next]).detect())
        (point,) = context.request.focal_points
        assert point.origin == origin and 0 <= point.x <= 400 and 0 <= point.y <= 240 and _Next.ran == 0
    best = cropper.analyse(rgb).crops(aspect="300:200", faces=False, min_scale=1.0).crops[0].box
    context = _context(_ArrayEngine(rgb), _request(), ASM_FOCAL_POINTS="box", ASM_FACES=False)
    asyncio.run(asm_thumbor.Detector(context, 0, [asm_thumbor.Detector]).detect())
    p = context.request.focal_points[0]
    assert np.abs(np.subtract(_thumbor_box((p.x, p.y), (400, 240), (300, 200)), best)).max() <= 1


def test_the_crop_runs_off_the_event_loop(monkeypatch):
    """While asm is still cropping, other coroutines on Thumbor's loop go on running."""
    import threading

    release = threading.Event()

    def slow_points(context):
        assert release.wait(60)
        return [ThumborPoint(1, 2, origin="asm crop")]

    monkeypatch.setattr(asm_thumbor, "points", slow_points)
    context = _context(_BrokenEngine(), _request())

    async def main() -> int:
        task = asyncio.ensure_future(asm_thumbor.Detector(context, 0, [asm_thumbor.Detector]).detect())
        ticks = 0
        for _ in range(50):  # the loop keeps turning while the crop waits in its thread
            await asyncio.sleep(0)
            ticks += 1
        assert not task.done()
        release.set()
        await task
        return ticks

    assert asyncio.run(main()) == 50 and [(p.x, p.y) for p in context.request.focal_points] == [(1, 2)]


# ------------------------------------------------------------ a real Thumbor on loopback
def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))


HOSTILE = {
    "not-an-image.jpg": b"<html>this is not a photo</html>" * 10,
    "empty.jpg": b"",
    "bomb.png": _png_claiming(60000, 60000),
}
#: images Thumbor serves but asm cannot crop (too small): passed down the chain, still a 200
TINY = {"tiny.png": (1, 1)}


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("thumbor-images")
    for path in EXAMPLES:
        shutil.copy(path, root / path.name)
    for name, data in HOSTILE.items():
        (root / name).write_bytes(data)
    for name, size in TINY.items():
        Image.new("RGB", size, "red").save(root / name)
    return root


@pytest.fixture(scope="module")
def unsafe_thumbor(tmp_path_factory, image_root):
    server = ThumborProcess(tmp_path_factory.mktemp("thumbor-unsafe"), image_root, unsafe=True, key=KEY)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def signed_thumbor(tmp_path_factory, image_root):
    server = ThumborProcess(tmp_path_factory.mktemp("thumbor-signed"), image_root, unsafe=False, key=KEY)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def storing_thumbor(tmp_path_factory, image_root):
    server = ThumborProcess(tmp_path_factory.mktemp("thumbor-storage"), image_root, unsafe=True, key=KEY,
                            storage="thumbor.storages.file_storage")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shipped_cropper():
    from asm import Cropper

    return Cropper.from_pretrained()


def _meta_box(server: ThumborProcess, path: str, width: int, height: int) -> list[int]:
    status, body = get(f"{server.base}/unsafe/meta/{path}")
    assert status == 200, body[:300]
    meta = json.loads(body)["thumbor"]
    crop = [op for op in meta["operations"] if op["type"] == "crop"]
    if not crop:  # the image already has the ratio: Thumbor resizes it whole
        return [0, 0, width, height]
    return [crop[0][k] for k in ("left", "top", "right", "bottom")]


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_thumbor_smart_crop_is_asms_crop(unsafe_thumbor, shipped_cropper):
    for path in EXAMPLES:
        analysis = shipped_cropper.analyse(path)
        for aspect, (w, h) in SIZES.items():
            box = analysis.crops(aspect=aspect, min_scale=1.0).crops[0].box
            got = _meta_box(unsafe_thumbor, f"{w}x{h}/smart/{path.name}", analysis.width, analysis.height)
            assert np.abs(np.subtract(got, box)).max() <= 2, (path.name, aspect, box, got)
    # a flipped request cuts the same box (then flips it)
    box = shipped_cropper.analyse(EXAMPLES[0]).crops(aspect="3:2", min_scale=1.0).crops[0].box
    got = _meta_box(unsafe_thumbor, f"-300x200/smart/{EXAMPLES[0].name}", 0, 0)
    assert np.abs(np.subtract(got, box)).max() <= 2
    # inside a manual crop, asm's crop of that region (Thumbor's second crop, in its frame)
    region = shipped_cropper.analyse(EXAMPLES[0]).image[20:400, 10:700]
    box = shipped_cropper.analyse(np.ascontiguousarray(region)).crops(aspect="2:3", min_scale=1.0).crops[0].box
    status, body = get(f"{unsafe_thumbor.base}/unsafe/meta/10x20:700x400/200x300/smart/{EXAMPLES[0].name}")
    crops = [op for op in json.loads(body)["thumbor"]["operations"] if op["type"] == "crop"]
    assert status == 200 and [crops[0][k] for k in ("left", "top", "right", "bottom")] == [10, 20, 700, 400]
    assert np.abs(np.subtract([crops[1][k] for k in ("left", "top", "right", "bottom")], box)).max() <= 2


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_with_a_storage_every_size_gets_the_content_focal_point(storing_thumbor, shipped_cropper):
    from asm.search.focal import content_focal_point

    path = EXAMPLES[0]
    fp = content_focal_point(shipped_cropper.analyse(path)).to_json()
    for w, h in SIZES.values():  # the first request stores the point, the others read it
        status, body = get(f"{storing_thumbor.base}/unsafe/meta/{w}x{h}/smart/{path.name}")
        assert status == 200
        (point,) = json.loads(body)["thumbor"]["focal_points"]
        assert (point["x"], point["y"], point["origin"]) == (fp["x"], fp["y"], "asm focal point")


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_signed_urls_are_served_and_unsigned_refused(signed_thumbor):
    from libthumbor import CryptoURL

    signed = CryptoURL(key=KEY).generate(width=300, height=200, smart=True, image_url=EXAMPLES[0].name)
    status, body = get(signed_thumbor.base + signed)
    assert status == 200 and body[:2] == b"\xff\xd8"
    assert 400 <= get(f"{signed_thumbor.base}/unsafe/300x200/smart/{EXAMPLES[0].name}")[0] < 500
    forged = CryptoURL(key="another key").generate(width=300, height=200, smart=True, image_url=EXAMPLES[0].name)
    assert 400 <= get(signed_thumbor.base + forged)[0] < 500


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_damaged_and_hostile_images_are_4xx_and_the_server_keeps_answering(unsafe_thumbor):
    for name in [*HOSTILE, "missing.jpg", "../pyproject.toml"]:
        status, _ = get(f"{unsafe_thumbor.base}/unsafe/300x200/smart/{name}")
        assert 400 <= status < 500, (name, status)
        assert get(f"{unsafe_thumbor.base}/unsafe/300x200/smart/{EXAMPLES[0].name}")[0] == 200
    for name in TINY:
        assert get(f"{unsafe_thumbor.base}/unsafe/300x200/smart/{name}")[0] == 200
    assert unsafe_thumbor.proc.poll() is None


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_concurrent_requests_are_all_answered(unsafe_thumbor):
    urls = [f"{unsafe_thumbor.base}/unsafe/{w}x{h}/smart/{p.name}" for p in EXAMPLES for w, h in list(SIZES.values())[:2]]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda u: get(u, timeout=120)[0], urls))
    assert statuses == [200] * len(urls)
