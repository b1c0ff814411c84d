"""The asm CLI: JSON lines, written crops, bad files reported without tracebacks."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from asm.cli import main
from asm.model import ASMNet, save_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    model = ASMNet("mobilenet_v3_small")
    for h in model.heads:
        torch.nn.init.normal_(h.weight, std=0.3)
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_model(model, path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(1)
    good = d / "good.jpg"
    Image.fromarray((rng.random((240, 360, 3)) * 255).astype(np.uint8)).save(good)
    second = d / "second.png"
    Image.fromarray((rng.random((300, 200, 3)) * 255).astype(np.uint8)).save(second)
    bad = d / "bad.jpg"
    bad.write_bytes(b"this is not a jpeg")
    return good, second, bad


def test_json_lines_with_several_aspects(model_path, images, capsys):
    good, second, _ = images
    code = main(["crop", str(good), str(second), "--aspect", "16:9", "--aspect", "1:1", "--top-k", "2", "--json", "--model", str(model_path)])
    assert code == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["file"] for x in lines] == [str(good), str(second)]
    assert (lines[0]["width"], lines[0]["height"]) == (360, 240)
    assert [c["aspect"] for c in lines[0]["crops"]] == ["16:9", "16:9", "1:1", "1:1"]
    assert all(c["shape"] == "rect" for c in lines[0]["crops"])


def test_out_dir_writes_crops_overview_heatmaps(model_path, images, tmp_path):
    good, _, _ = images
    code = main(["crop", str(good), "--aspect", "4:3", "--out", str(tmp_path), "--heatmap", "--model", str(model_path)])
    assert code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["good_4x3_1.jpg", "good_crops.jpg", "good_theta_avg.jpg", "good_theta_std.jpg"]
    w, h = Image.open(tmp_path / "good_4x3_1.jpg").size
    assert abs(w / h - 4 / 3) < 0.02


def test_circular_writes_transparent_png(model_path, images, tmp_path, capsys):
    good, _, _ = images
    assert main(["crop", str(good), "--circular", "--json", "--out", str(tmp_path), "--model", str(model_path)]) == 0
    crop = json.loads(capsys.readouterr().out)["crops"][0]
    assert crop["shape"] == "circle"
    im = Image.open(tmp_path / "good_circle_1.png")
    assert im.mode == "RGBA" and im.size[0] == im.size[1]
    alpha = np.asarray(im)[..., 3]
    assert alpha[0, 0] == 0 and alpha[im.size[1] // 2, im.size[0] // 2] == 255


def test_bad_file_reported_others_processed(model_path, images, capsys):
    good, _, bad = images
    missing = bad.parent / "missing.jpg"
    code = main(["crop", str(bad), str(good), str(missing), "--json", "--model", str(model_path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert len(out.strip().splitlines()) == 1 and json.loads(out)["file"] == str(good)
    lines = err.strip().splitlines()
    assert any(str(bad) in line for line in lines) and any(str(missing) in line for line in lines)
    assert "Traceback" not in err


def test_bad_option_and_missing_model(images, tmp_path, capsys):
    good, _, _ = images
    assert main(["crop", str(good), "--aspect", "0:1", "--model", str(tmp_path / "none.pt")]) == 2
    assert "aspect" in capsys.readouterr().err
    assert main(["crop", str(good), "--model", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err
    assert "no asm model" in err and "Traceback" not in err


def test_console_script_help_and_no_traceback(model_path, images):
    exe = [sys.executable, "-m", "asm.cli"]
    top = subprocess.run([*exe, "--help"], capture_output=True, text=True)
    assert top.returncode == 0 and "crop" in top.stdout
    sub = subprocess.run([*exe, "crop", "--help"], capture_output=True, text=True)
    for flag in ("--aspect", "--circular", "--top-k", "--out", "--json", "--heatmap", "--model"):
        assert flag in sub.stdout
    _, _, bad = images
    run = subprocess.run([*exe, "crop", str(bad), "--model", str(model_path)], capture_output=True, text=True)
    assert run.returncode == 1 and "Traceback" not in run.stderr and str(bad) in run.stderr
