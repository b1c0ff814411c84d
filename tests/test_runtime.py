"""The ONNX Runtime path (asm.runtime): export, the cache in the home folder, stale twins,
and the same crops as the torch path on real photos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from asm.data.shared import shared_dir
from asm.cli import main
from asm.cropper import Cropper
from asm.errors import InvalidOption
from asm.models import DEFAULT_MODEL_PATH, ASMNet, InferencePreset, save_model
from asm.runtime import (ONNX_FORMAT, OnnxNet, calibration_photos, export_onnx, file_digest, int8_path,
                         load_onnx_net, onnx_cache_path)
from conftest import TEST_PRESET

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.jpg"))
SHARED_PHOTOS = (shared_dir() or ROOT / "no-shared") / "data" / "photos"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh home folder, as a new user has: the cache goes to ~/.cache/asm."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("ASM_CACHE_DIR", raising=False)
    return tmp_path


def _random_model(seed: int, **config) -> ASMNet:
    torch.manual_seed(seed)
    model = ASMNet(**config)
    for h in model.heads:
        torch.nn.init.normal_(h.weight, std=0.3)
    return model.eval()


@pytest.mark.parametrize(
    "config",
    [
        {"backbone": "mobilenet_v2"},
        {"backbone": "mobilenet_v3_small", "pattern": "grid3x3", "map_stride": 16, "padding_mode": "zeros"},
    ],
    ids=["mobilenet_v2", "mobilenet_v3_small-stride16"],
)
def test_export_matches_torch_at_any_input_size(tmp_path, config):
    model = _random_model(0, **config)
    path = export_onnx(model, tmp_path / "m.onnx", digest="abc", preset=InferencePreset(160, 320))
    net = OnnxNet(path, threads=1)
    assert net.config == model.config and net.digest == "abc" and net.format == ONNX_FORMAT
    assert net.preset == InferencePreset(160, 320) and net.prior_weight == float(model.prior_weight.detach())
    assert net.num_partitions == model.num_partitions
    for shape in ((1, 3, 256, 384), (2, 3, 320, 224), (1, 3, 96, 512)):
        x = torch.randn(*shape)
        with torch.inference_mode():
            want = model(x)
        got = net(x.numpy())
        assert isinstance(got, np.ndarray) and got.shape == want.shape
        torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-3, atol=1e-3 * float(want.abs().max()))


def test_first_use_exports_into_the_home_cache_once(home, tmp_path, monkeypatch):
    ckpt = tmp_path / "models" / "m.pt"
    save_model(_random_model(1, backbone="mobilenet_v3_small"), ckpt, TEST_PRESET)
    net = load_onnx_net(ckpt)
    expected = home / ".cache" / "asm" / "onnx" / f"{file_digest(ckpt)}.onnx"
    assert net.path == expected and expected.is_file()
    assert not list(expected.parent.glob("*.tmp")), "the atomic write left its temporary file"
    assert oct(expected.stat().st_mode & 0o777) != oct(0o600), "the cached file is readable like any other"

    def no_export(*a, **k):
        raise AssertionError("exported again although the cache holds the twin")

    monkeypatch.setattr("asm.runtime.export_onnx", no_export)
    assert load_onnx_net(ckpt).path == expected


def test_a_stale_twin_is_never_used(home, tmp_path):
    """Retraining writes a new checkpoint under the same name: the old MODEL.onnx is ignored."""
    ckpt = tmp_path / "m.pt"
    old = _random_model(2, backbone="mobilenet_v3_small")
    save_model(old, ckpt, TEST_PRESET)
    assert main(["export", "--model", str(ckpt)]) == 0
    twin = ckpt.with_suffix(".onnx")
    assert load_onnx_net(ckpt, export=False).path == twin

    new = _random_model(3, backbone="mobilenet_v3_small")
    save_model(new, ckpt, TEST_PRESET)
    with pytest.raises(FileNotFoundError, match="asm export"):
        load_onnx_net(ckpt, export=False)
    net = load_onnx_net(ckpt)
    assert net.path == onnx_cache_path(file_digest(ckpt))
    x = torch.randn(1, 3, 256, 256)
    with torch.inference_mode():
        torch.testing.assert_close(torch.from_numpy(net(x.numpy())), new(x), rtol=1e-3, atol=1e-3)


def test_a_broken_cache_file_is_rebuilt(home, tmp_path):
    ckpt = tmp_path / "m.pt"
    save_model(_random_model(4, backbone="mobilenet_v3_small"), ckpt, TEST_PRESET)
    cached = onnx_cache_path(file_digest(ckpt))
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\x08\x07 cut short by a full disk")
    net = load_onnx_net(ckpt)
    assert net.path == cached and net.digest == file_digest(ckpt)


def test_runtime_option():
    assert Cropper.from_pretrained(runtime="torch").runtime == "torch"
    assert Cropper.from_pretrained(runtime="onnx").runtime == "onnx"
    assert Cropper.from_pretrained().runtime == "int8"  # auto, on the CPU: the shipped model has an int8 twin
    with pytest.raises(InvalidOption, match="runtime must be"):
        Cropper.from_pretrained(runtime="tensorrt")
    net = load_onnx_net(DEFAULT_MODEL_PATH)
    with pytest.raises(InvalidOption, match="CPU"):
        Cropper(net, net.preset, device="meta")


def _photos() -> list[Path]:
    """The demo's examples plus a few real photos from the shared data, if present."""
    extra = []
    if SHARED_PHOTOS.is_dir():
        for folder in sorted(p for p in SHARED_PHOTOS.iterdir() if p.is_dir())[:4]:
            extra += sorted(folder.glob("*.jpg"))[:2]
    return EXAMPLES + extra


def test_onnx_and_torch_crop_alike_on_real_photos():
    """Scores within 1e-3 relative, boxes within 1 px, for every aspect asked."""
    photos = _photos()
    assert len(photos) >= 6
    fast, slow = Cropper.from_pretrained(runtime="onnx"), Cropper.from_pretrained(runtime="torch")
    aspects = ["free", "16:9", "1:1", "4:5"]
    for photo in photos:
        prepared = fast.prepare(photo)
        m_fast, m_slow = fast.score_maps([prepared])[0], slow.score_maps([prepared])[0]
        np.testing.assert_allclose(m_fast, m_slow, rtol=1e-3, atol=1e-3 * float(np.abs(m_slow).max()))
        a = fast.crop(photo, aspect=aspects, top_k=2).crops
        b = slow.crop(photo, aspect=aspects, top_k=2).crops
        assert [c.aspect for c in a] == [c.aspect for c in b]
        for ca, cb in zip(a, b):
            assert np.abs(np.subtract(ca.box, cb.box)).max() <= 1, (photo.name, ca, cb)
            assert abs(ca.score - cb.score) <= 1e-3 * abs(cb.score), (photo.name, ca.score, cb.score)


def test_export_command_writes_next_to_the_model(tmp_path):
    ckpt = tmp_path / "dir with space" / "model.pt"
    save_model(_random_model(5, backbone="mobilenet_v3_small"), ckpt, TEST_PRESET)
    assert main(["export", "--model", str(ckpt)]) == 0
    twin = ckpt.with_suffix(".onnx")
    assert OnnxNet(twin).digest == file_digest(ckpt)
    out = tmp_path / "elsewhere.onnx"
    assert main(["export", "--model", str(ckpt), "--out", str(out)]) == 0 and out.is_file()
    assert main(["export", "--model", str(tmp_path / "missing.pt")]) == 2
    assert not os.path.exists(tmp_path / "missing.onnx")


def test_auto_falls_back_to_torch_when_no_export_can_be_made(home, tmp_path, monkeypatch):
    ckpt = tmp_path / "m.pt"
    save_model(_random_model(6, backbone="mobilenet_v3_small"), ckpt, TEST_PRESET)

    def no_exporter(*a, **k):
        raise ImportError("No module named 'onnx'")

    monkeypatch.setattr("asm.runtime.export_onnx", no_exporter)
    with pytest.warns(UserWarning, match="torch"):
        assert Cropper.from_pretrained(ckpt).runtime == "torch"
    with pytest.raises(ImportError):
        Cropper.from_pretrained(ckpt, runtime="onnx")


def test_int8_twin_next_to_a_model(home, tmp_path):
    """``asm export --int8`` calibrates on photos; auto prefers the twin, close to the float map;
    a changed checkpoint makes it stale (auto warns and runs the float twin, int8 refuses)."""
    ckpt = tmp_path / "same name" / "model.pt"
    model = _random_model(7, backbone="mobilenet_v3_small")
    save_model(model, ckpt, TEST_PRESET)
    assert main(["export", "--int8", "--model", str(ckpt), "--calibration", str(ROOT / "examples")]) == 0
    twin = int8_path(ckpt)
    assert twin.name == "model.int8.onnx" and twin.is_file()
    net = OnnxNet(twin)
    assert net.precision == "int8" and net.digest == file_digest(ckpt) and net.config == model.config
    fast = Cropper.from_pretrained(ckpt)
    assert fast.runtime == "int8"
    exact = Cropper.from_pretrained(ckpt, runtime="onnx")
    assert exact.runtime == "onnx" and exact.model.precision == "float32"
    for photo in EXAMPLES[:3]:
        prepared = fast.prepare(photo)
        a, b = fast.score_maps([prepared])[0], exact.score_maps([prepared])[0]
        assert a.shape == b.shape
        # int8 rounds the backbone's activations: close to the float map, not equal to it
        assert float(np.abs(a - b).mean()) < 0.1 * float(b.std())
        assert np.corrcoef(a.flatten(), b.flatten())[0, 1] > 0.98
        assert not np.array_equal(a, b)
    save_model(_random_model(8, backbone="mobilenet_v3_small"), ckpt, TEST_PRESET)  # retrained in place
    with pytest.warns(UserWarning, match="int8"):
        assert Cropper.from_pretrained(ckpt).runtime == "onnx"
    with pytest.raises(FileNotFoundError, match="asm export --int8"):
        Cropper.from_pretrained(ckpt, runtime="int8")


def test_int8_export_needs_photos(tmp_path):
    ckpt = tmp_path / "model.pt"
    save_model(_random_model(9, backbone="mobilenet_v3_small"), ckpt, TEST_PRESET)
    (tmp_path / "empty").mkdir()
    assert main(["export", "--int8", "--model", str(ckpt), "--calibration", str(tmp_path / "empty")]) == 2
    assert not int8_path(ckpt).exists()
    picked = calibration_photos(ROOT / "examples", count=3)
    assert len(picked) == 3 and len(set(picked)) == 3 and all(p.suffix == ".jpg" for p in picked)
