"""Spectral-residual saliency, fixation maps and the on-disk cache."""

from __future__ import annotations

import numpy as np
import pytest

from asm.datasets import shared_dir
from asm.saliency import cached, fixation_density, image_cache_key, image_saliency, spectral_residual

SHARED = shared_dir()
needs_shared = pytest.mark.skipif(
    SHARED is None,
    reason="shared data folder not found: set ASM_SHARED or place it at <repo>/../shared",
)


def _blob_image(h=120, w=160, box=(30, 40, 50, 60)):
    """A red square on a textured (periodic) background with a little noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w]
    bg = 100 + 40 * np.sin(2 * np.pi * xx / 10.0) * np.sin(2 * np.pi * yy / 10.0)
    img = np.repeat(bg[..., None], 3, axis=2)
    y1, x1, y2, x2 = box
    img[y1:y2, x1:x2] = (250, 30, 30)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def test_spectral_residual_finds_the_odd_object():
    s = spectral_residual(_blob_image())
    assert s.shape == (120, 160) and s.dtype == np.float32
    assert s.min() >= 0.0 and s.max() <= 1.0 and s.max() == pytest.approx(1.0, abs=0.02)
    r, c = np.unravel_index(np.argmax(s), s.shape)
    assert 25 <= r <= 55 and 35 <= c <= 65  # the peak sits on the square
    inside = s[30:50, 40:60].mean()
    far = s[70:, 90:].mean()
    assert inside > 0.6 and far < 0.2  # the repeated texture is suppressed


def test_spectral_residual_flat_grayscale_and_size():
    assert not spectral_residual(np.full((50, 70, 3), 128, np.uint8)).any()
    g = _blob_image()[..., 0]
    s = spectral_residual(g, out_size=(30, 40))
    assert s.shape == (30, 40) and np.isfinite(s).all()
    tiny = spectral_residual(np.zeros((1, 3, 3), np.uint8))
    assert tiny.shape == (1, 3)
    wide = spectral_residual(_blob_image(h=4, w=400, box=(1, 10, 3, 20)))
    assert wide.shape == (4, 400) and np.isfinite(wide).all()
    with pytest.raises(ValueError, match="H x W x 3"):
        spectral_residual(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        spectral_residual(np.zeros((4, 4, 3), np.float32))


@needs_shared
def test_spectral_residual_real_photo_cached(tmp_path):
    path = SHARED / "data/gaicd/images/302166.jpg"
    s = image_saliency(path, cache_dir=tmp_path)
    assert s.shape == (170, 256) and s.dtype == np.float32  # 1024x682, long side 256
    assert 0.0 <= s.min() and s.max() <= 1.0 and s.max() > 0.9
    files = list(tmp_path.glob("*.npy"))
    assert len(files) == 1 and files[0].name == image_cache_key(path, "sr256") + ".npy"
    np.save(files[0], np.full((2, 2), 7, np.float32))  # prove the second call reads the cache
    assert image_saliency(path, cache_dir=tmp_path).tolist() == [[7, 7], [7, 7]]


def test_fixation_density_one_point_hand_values():
    # one fixation at the centre of pixel (row 10, col 20); sigma 3
    d = fixation_density(np.array([[20.5, 10.5]]), (21, 41), sigma=3.0)
    assert d.shape == (21, 41) and d.dtype == np.float32
    assert d.max() == pytest.approx(1.0) and np.unravel_index(np.argmax(d), d.shape) == (10, 20)
    # sampled Gaussian: value at offset (dy, dx) relative to the peak is exp(-(dx^2+dy^2) / (2 sigma^2))
    assert d[10, 23] == pytest.approx(np.exp(-9 / 18), rel=1e-5)
    assert d[12, 19] == pytest.approx(np.exp(-5 / 18), rel=1e-5)
    p = fixation_density(np.array([[20.5, 10.5]]), (21, 41), sigma=3.0, normalize="sum")
    assert p.sum() == pytest.approx(1.0, rel=1e-5)
    assert np.allclose(p / p.max(), d, atol=1e-6)


def test_fixation_density_counts_outside_and_empty():
    pts = np.array([[2.5, 2.5], [2.5, 2.5], [7.5, 2.5], [-1.0, 3.0], [3.0, 99.0]])
    raw = fixation_density(pts, (5, 10), sigma=0.0, normalize=None)
    assert raw[2, 2] == 2 and raw[2, 7] == 1 and raw.sum() == 3  # outside points ignored
    assert not fixation_density(np.zeros((0, 2)), (5, 10)).any()
    with pytest.raises(ValueError, match="normalize"):
        fixation_density(pts, (5, 10), normalize="area")


def test_cached(tmp_path):
    calls = []

    def fn():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    a = cached(fn, "img_001", tmp_path)
    b = cached(fn, "img_001", tmp_path)
    assert len(calls) == 1 and np.array_equal(a, b) and (tmp_path / "img_001.npy").is_file()
    c = cached(fn, "/some/dir/photo name.jpg", tmp_path / "sub")  # odd key -> hashed file name
    assert len(calls) == 2 and np.array_equal(a, c)
    (name,) = [p.name for p in (tmp_path / "sub").iterdir()]
    assert name.endswith(".npy") and "/" not in name and " " not in name
    cached(fn, "img_001", None)
    assert len(calls) == 3
    assert not list(tmp_path.glob(".*.tmp"))
