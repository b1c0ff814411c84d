"""Free crops frame as people do: the framing prior, the shape bias and what the free search makes of them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from asm.data.shared import shared_dir
from asm.evaluation.metrics import ks_distance
from asm.search import framing
from asm.search.framing import BIAS_AREAS, RELATIVE_ASPECTS, ShapeBias, features, framing_prior, shape_bias

SHARED = shared_dir()


def test_features_by_hand():
    # a 400 x 300 crop of an 800 x 600 photo, centred: same aspect, a quarter of the area, no offset
    f = features(np.array([[200, 150, 600, 450]]), 800, 600)[0]
    assert f == pytest.approx([0.0, 0.25, 0.0, 0.0])
    # a square crop at the left edge: aspect 1 / (4/3), half the height... offset -0.3125 of the width
    f = features(np.array([[0, 0, 600, 600]]), 800, 600)[0]
    assert f == pytest.approx([np.log(0.75), 0.75, -0.125, 0.0])


def test_the_prior_peaks_where_people_frame():
    model = framing.framing_model()
    mean = np.asarray(model["mean"])
    assert 0.8 < np.exp(mean[0]) < 1.3 and 0.45 < mean[1] < 0.85  # GAICD's best-rated crops
    W, H = 900, 600
    typical = np.array([[W * 0.1, H * 0.1, W * 0.9, H * 0.9]])  # 0.64 of the area, the photo's aspect, centred
    strip = np.array([[300, 0, 600, 600]])  # a 1:2 strip of a 3:2 photo
    assert framing_prior(typical, W, H)[0] > framing_prior(strip, W, H)[0] + 5
    assert framing_prior(typical, W, H)[0] <= 0


def test_shape_bias_interpolates_its_table():
    table = np.arange(len(RELATIVE_ASPECTS) * len(BIAS_AREAS), dtype=np.float64).reshape(len(RELATIVE_ASPECTS), -1)
    bias = ShapeBias(table, 0.5)
    W, H = 800, 600
    i, j = RELATIVE_ASPECTS.index(1.0), 4  # the photo's aspect at area BIAS_AREAS[4]
    s = np.sqrt(BIAS_AREAS[j])
    box = np.array([[0, 0, W * s, H * s]])
    assert shape_bias(box, W, H, bias)[0] == pytest.approx(table[i, j])
    # half way between two tabulated areas: the mean of the two
    s = np.sqrt((BIAS_AREAS[j] + BIAS_AREAS[j + 1]) / 2)
    assert shape_bias(np.array([[0, 0, W * s, H * s]]), W, H, bias)[0] == pytest.approx((table[i, j] + table[i, j + 1]) / 2)
    # outside the table: its edge
    assert shape_bias(np.array([[0, 0, 80, 600]]), W, H, bias)[0] == pytest.approx(table[0, 0])


def test_the_shipped_model_has_its_bias_and_another_has_none():
    from asm.cropper import Cropper
    from asm.runtime import file_digest

    cropper = Cropper.from_pretrained()
    assert cropper.shape_bias is not None, "refit: python tools/fit_framing.py bias --model asm/weights/asm_default.pt"
    entry = next(c for c in framing.framing_model()["calibration"] if c["model_sha256"] == file_digest(cropper.weights.file))
    assert cropper.shape_bias.weight == entry["weight"]
    assert framing.calibration_for("0" * 64) is None


def test_free_crops_look_like_peoples_on_the_examples():
    """The osprey example once gave a 1:2 strip of a landscape photo: now every example's free
    crop is near its photo's aspect and keeps most of it; top-3 free crops differ in shape or place."""
    from pathlib import Path

    from asm.cropper import Cropper

    cropper = Cropper.from_pretrained()
    for path in sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.jpg")):
        result = cropper.crop(path, top_k=3)
        W, H = result.width, result.height
        first = result.crops[0].box
        w, h = first[2] - first[0], first[3] - first[1]
        assert 0.7 <= (w / h) / (W / H) <= 1.45, (path.name, first)
        assert 0.4 <= w * h / (W * H) <= 0.9, (path.name, first)
        assert len({tuple(c.box) for c in result.crops}) == len(result.crops)


def test_ks_distance_by_hand():
    assert ks_distance([1, 2, 3], [1, 2, 3]) == 0
    assert ks_distance([0, 0], [1, 1]) == 1
    assert ks_distance([1, 2, 3, 4], [3, 4, 5, 6]) == pytest.approx(0.5)


@pytest.mark.skipif(SHARED is None or not (SHARED / "data" / "gaicd" / "hcic_image_crop.json").is_file(),
                    reason="needs the shared GAICD annotations")
def test_the_shipped_prior_is_what_the_fit_gives(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("fit_framing", Path(__file__).resolve().parents[1] / "tools" / "fit_framing.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    fitted = tool.fit_prior(SHARED / "data" / "gaicd")
    shipped = framing.framing_model()
    assert fitted["mean"] == pytest.approx(shipped["mean"], abs=1e-6)
    assert np.asarray(fitted["cov"]) == pytest.approx(np.asarray(shipped["cov"]), abs=1e-7)
    json.dumps(fitted)
