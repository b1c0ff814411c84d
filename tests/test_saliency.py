"""Fixation maps and the on-disk cache."""

from __future__ import annotations

import numpy as np
import pytest

from asm.saliency import cached, fixation_density, image_cache_key

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


def test_image_cache_key_changes_with_the_file(tmp_path):
    path = tmp_path / "a photo.jpg"
    path.write_bytes(b"one")
    k1 = image_cache_key(path, "fastgaze400")
    assert k1.startswith("a_photo-") and k1.endswith("-fastgaze400")
    path.write_bytes(b"two, longer")  # size (and mtime) change -> new key
    assert image_cache_key(path, "fastgaze400") != k1
