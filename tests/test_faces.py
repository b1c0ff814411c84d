"""Faces, keep-regions, focus and zoom: geometry (asm.search.constraints), option parsing
(CropOptions), the search honouring them (with a stubbed detector, so the faces are known),
the real YuNet detector, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import asm.search.search as search_mod
from asm.data.shared import shared_dir
from asm.cli import main
from asm.errors import ECHO_LIMIT, InvalidOption
from asm.io import load_image
from asm.options import DEFAULT_MIN_SCALE, CropOptions
from asm.search.constraints import (
    face_matters,
    Wishes,
    clear_of,
    contains,
    cuts,
    fit_around,
    fits,
    focus_prior,
    pad_boxes,
    smallest_side_share,
    union_box,
)
from asm.search import faces as faces_mod
from asm.search.faces import decode, detect_faces, nms, prominence
from benchmarks.check_faces import compare, detect_all, opencv_detector, photos

ROOT = Path(__file__).resolve().parents[1]
DOG = ROOT / "examples" / "dogs-window.jpg"  # YuNet takes the dog's face for a face (0.87)
OSIE_1401 = (shared_dir() or ROOT / "no-shared") / "data" / "osie" / "images" / "1401.jpg"
#: What cv2.FaceDetectorYN (OpenCV 5.0) found in the shipped examples, before asm ran YuNet
#: on ONNX Runtime itself: x1, y1, x2, y2, confidence (the other examples have no face).
EXAMPLE_FACES = {"dogs-window.jpg": [[191.483, 208.241, 258.098, 288.676, 0.866]],
                 "dandelion.jpg": [[357.700, 73.615, 411.798, 149.632, 0.714]]}


def T(rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


# --------------------------------------------------------------------------- geometry
def test_contains_and_cuts():
    boxes = T([[0, 0, 100, 100], [50, 0, 150, 100], [200, 0, 300, 100]])
    region = T([[20, 20, 70, 70]])
    assert contains(boxes, region)[:, 0].tolist() == [True, False, False]
    assert cuts(boxes, region)[:, 0].tolist() == [False, True, False]  # the third misses it: no cut
    assert not cuts(T([[0, 0, 70.8, 100]]), region)[0, 0]  # within the one-pixel tolerance


def test_fit_around_moves_least_and_grows_keeping_the_aspect():
    region = np.array([300.0, 100, 380, 160])
    boxes = T([[0, 0, 200, 200], [250, 50, 450, 250], [0, 0, 40, 20]])
    out = fit_around(boxes, region, 640, 427)
    assert contains(out, region[None]).all()
    assert np.array_equal(out[1], boxes[1])  # already holds it: unchanged
    assert out[0].tolist() == [180, 0, 380, 200]  # moved right just enough
    w, h = out[2, 2] - out[2, 0], out[2, 3] - out[2, 1]
    assert abs(w / h - 2) < 1e-9 and w >= 80 and h >= 60 - 1e-9  # grew about its centre, still 2:1
    assert (out[:, :2] >= 0).all() and (out[:, 2] <= 640).all() and (out[:, 3] <= 427).all()


def test_fits_and_union():
    wide = np.array([0.0, 0, 500, 50])
    assert fits(wide, np.array([16 / 9, 9 / 16]), 640, 427).tolist() == [True, False]
    assert union_box(T([[10, 20, 30, 40], [0, 25, 15, 60]])).tolist() == [0, 20, 30, 60]


def test_clear_of_puts_each_shift_outside_the_region():
    boxes = T([[100, 100, 300, 300]])
    region = np.array([250.0, 150, 350, 250])
    out = clear_of(boxes, region, 640, 480)
    assert out.shape == (4, 4)  # left, right, above, below
    assert cuts(out, region[None])[:, 0].tolist() == [False, False, True, False]  # no room above: clamped
    assert out[2].tolist() == [100, 0, 300, 200]
    assert ((out[:, 2] - out[:, 0]) == 200).all()  # same size


def test_pad_focus_and_zoom_share():
    assert pad_boxes(T([[10, 10, 110, 60]]), 0.1, 115, 100).tolist() == [[0, 5, 115, 65]]
    boxes = T([[0, 0, 100, 100], [200, 200, 300, 300]])
    prior = focus_prior(boxes, (50.0, 50.0))
    assert prior[0] == 0 and prior[1] < -10
    assert smallest_side_share(T([[0, 0, 300, 300]]), np.array([1.0]), 640, 600).tolist() == [0.5]


def test_wishes_cost_and_kept():
    w = Wishes(640, 480, T([[100, 100, 160, 180]]), np.array([1.0]), T([[400, 300, 500, 400]]))
    good, cutting, missing = [50, 50, 550, 450], [130, 50, 630, 450], [200, 0, 500, 250]
    hard = w.hard(T([good, cutting, missing]))
    assert hard[0] == 0 and hard[1] < 0 and hard[2] < hard[1]  # a keep-region left out costs most
    assert w.kept(good) == ([0], [0]) and w.kept(missing) == ([], [])


def test_a_face_the_models_own_crop_reaches_is_held_not_left_out():
    """The model's best crop of an aspect runs through face 0 and leaves face 1 alone: crops of
    that aspect then pay for leaving face 0 out (less than for a cut), never for face 1."""
    faces = T([[100, 100, 160, 180], [560, 100, 620, 180]])
    w = Wishes(640, 480, faces, np.array([1.0, 1.0]), T([]).reshape(0, 4))
    boxes = T([[130, 0, 450, 480], [0, 0, 320, 480], [200, 0, 520, 480]])  # cuts face 0 / holds it / leaves it out
    scores = np.array([3.0, 1.0, 2.0])
    agreed = w.agreeing(boxes, np.zeros(3, dtype=np.int64), scores, n_aspects=2)
    assert agreed.hold[0].tolist() == [0] and agreed.hold[1].tolist() == []  # aspect 1 had no candidates
    hard = agreed.hard(boxes, np.zeros(3, dtype=np.int64))
    assert hard[1] == 0 > hard[2] > hard[0]  # held > left out > cut
    assert (agreed.hard(boxes, np.ones(3, dtype=np.int64)) == w.hard(boxes)).all()  # another aspect: cuts only
    assert w.agreeing(boxes, np.zeros(3, dtype=np.int64), scores, 2) is not w  # the wishes themselves stay as they were
    assert w.hold == ()


def test_prominence_is_area_times_confidence():
    faces = np.array([[0, 0, 10, 10, 0.9], [0, 0, 20, 20, 0.9], [0, 0, 20, 20, 0.45]])
    assert prominence(faces).tolist() == pytest.approx([0.25, 1.0, 0.5])


# --------------------------------------------------------------------------- options
@pytest.mark.parametrize("keep, boxes", [
    ("10,20,110,120", [(10, 20, 110, 120)]),
    ("10,20,110,120; 0,0,5,5", [(10, 20, 110, 120), (0, 0, 5, 5)]),
    ("[[1, 2, 3, 4]]", [(1, 2, 3, 4)]),
    ([1, 2, 3, 4], [(1, 2, 3, 4)]),
    ([[1, 2, 3, 4], ["5", "6", "7", "8"]], [(1, 2, 3, 4), (5, 6, 7, 8)]),
    (["1,2,3,4", "5 6 7 8"], [(1, 2, 3, 4), (5, 6, 7, 8)]),
    (None, []),
    ("", []),
])
def test_keep_forms(keep, boxes):
    assert list(CropOptions.parse(keep=keep).keep) == boxes


@pytest.mark.parametrize("keep, words", [
    ("1,2,3", "4 numbers"),
    ("1,2,3,x", "4 numbers"),
    ("1,2,nan,4", "finite"),
    ("5,2,3,4", "x1 < x2"),
    ("-1,2,3,4", "0 <= x1"),
    ("[[1,2,3", "not valid JSON"),
    ([[1, 2, 3, 4]] * 17, "at most 16"),
    ({"x": 1}, "boxes"),
    ([True, 1, 2, 3], "4 numbers"),
])
def test_bad_keep_is_refused(keep, words):
    with pytest.raises(InvalidOption, match=words):
        CropOptions.parse(keep=keep)


def test_focus_faces_min_scale_parsing():
    o = CropOptions.parse(focus="12.5, 30", faces="off", min_scale="0.8")
    assert (o.focus, o.faces, o.min_scale) == ((12.5, 30.0), False, 0.8)
    assert CropOptions.parse(focus=[3, 4]).focus == (3.0, 4.0)
    assert CropOptions().min_scale == DEFAULT_MIN_SCALE and CropOptions().faces
    for bad, words in (({"focus": "1"}, "2 numbers"), ({"focus": "-1,3"}, "not negative"), ({"faces": "maybe"}, "true or false"),
                       ({"min_scale": "0"}, "between 0.1 and 1"), ({"min_scale": "nan"}, "between"), ({"min_scale": "big"}, "number")):
        with pytest.raises(InvalidOption, match=words):
            CropOptions.parse(**bad)


def test_options_from_a_form_and_huge_input_is_echoed_short():
    options = CropOptions.from_mapping({"keep": "1,2,30,40", "focus": "5,6", "faces": "false", "min_scale": 0.7})
    assert options.keep == ((1, 2, 30, 40),) and options.focus == (5, 6) and not options.faces
    with pytest.raises(InvalidOption) as e:
        CropOptions.parse(keep="1," * 100_000)
    assert len(str(e.value)) < ECHO_LIMIT + 60


# --------------------------------------------------------------------------- search
@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    img = (rng.random((427, 640, 3)) * 60).astype(np.uint8)
    img[150:300, 380:520] = (230, 90, 40)
    return img


def _stub_faces(monkeypatch, faces):
    monkeypatch.setattr(search_mod, "detect_faces", lambda rgb, size=None: np.asarray(faces, dtype=np.float64).reshape(-1, 5))


FACE_SPOTS = [[20, 40, 90, 130, 0.9], [560, 30, 630, 120, 0.9], [280, 330, 360, 420, 0.9], [300, 150, 380, 250, 0.9]]


@pytest.mark.parametrize("face", FACE_SPOTS)
@pytest.mark.parametrize("aspect", ["1:1", "4:5", "9:16", "16:9", "free"])
def test_a_face_that_matters_is_never_cut(cropper, photo, monkeypatch, face, aspect):
    _stub_faces(monkeypatch, [face])
    result = cropper.crop(photo, aspect=aspect, top_k=3, min_scale=0.6)
    boxes = T([c.box for c in result.crops])
    assert face_matters(boxes, T([face[:4]])).all()  # a 70 x 90 face is over 1 % of any of these crops
    assert not cuts(boxes, T([face[:4]])).any()  # every crop holds it whole or leaves it out
    assert len(result.crops) == 3
    assert result.to_json()["faces"] == [{"box": face[:4], "score": 0.9}]


def test_a_face_is_held_where_the_map_agrees_not_for_its_size(cropper, photo, monkeypatch):
    """The photo's interest is the orange block at x 380-520: a face on it is held whole; a face
    in the far corner is not cut, but does not drag the crop there."""
    on_block = [400, 160, 470, 250, 0.9]
    _stub_faces(monkeypatch, [on_block])
    assert cropper.crop(photo, aspect="9:16").crops[0].faces_kept == [0]
    corner = FACE_SPOTS[0]
    _stub_faces(monkeypatch, [corner])
    plain = cropper.crop(photo, aspect="9:16", faces=False).crops[0].box
    crop = cropper.crop(photo, aspect="9:16").crops[0]
    assert crop.faces_kept == [] and not cuts(T([crop.box]), T([corner[:4]])).any()
    assert crop.box == plain  # the model's crop already leaves the corner face out whole


def test_in_a_crowd_the_crop_follows_the_content(cropper, photo, monkeypatch):
    """Twenty small faces spread over the photo: none matters to a 9:16 crop (each is 0.6 % of
    it, under 1 % x sqrt(20 / 4)), so the crop is the model's, not a face-free strip."""
    crowd = [[x, y, x + 24, y + 26, 0.9] for x in range(10, 640, 64) for y in (40, 300)]
    _stub_faces(monkeypatch, crowd)
    box = cropper.crop(photo, aspect="9:16").crops[0].box
    assert not face_matters(T([box]), T([f[:4] for f in crowd])).any()
    assert box == cropper.crop(photo, aspect="9:16", faces=False).crops[0].box


def test_faces_off_ignores_them(cropper, photo, monkeypatch):
    _stub_faces(monkeypatch, [[300, 150, 380, 250, 0.9]])  # where the model's crop would cut it
    result = cropper.crop(photo, aspect="9:16", faces=False)
    answer = result.to_json()
    assert "faces" not in answer and "faces_kept" not in answer["crops"][0]
    assert cuts(T([result.crops[0].box]), T([[300, 150, 380, 250]]))[0, 0]  # the model alone cuts it
    assert not cuts(T([cropper.crop(photo, aspect="9:16").crops[0].box]), T([[300, 150, 380, 250]]))[0, 0]


def test_when_not_all_faces_fit_none_is_cut(cropper, photo, monkeypatch):
    big, small = [20, 60, 140, 200, 0.95], [540, 80, 600, 150, 0.9]  # too far apart for one 9:16 crop
    _stub_faces(monkeypatch, [big, small])
    crop = cropper.crop(photo, aspect="9:16").crops[0]
    assert len(crop.faces_kept) <= 1
    assert not cuts(T([crop.box]), T([big[:4], small[:4]])).any()


def test_keep_regions_stay_inside_or_the_answer_says_why(cropper, photo, monkeypatch):
    _stub_faces(monkeypatch, [])
    corner = [560, 350, 630, 420]
    result = cropper.crop(photo, aspect=["1:1", "9:16", "free"], keep=[corner], top_k=2, min_scale=0.6)
    assert all(c.keep_kept == [0] for c in result.crops)
    assert not [w for w in result.warnings if "keep-regions" in w]  # (fewer distinct crops than top_k may be said)
    assert contains(T([c.box for c in result.crops]), T([corner])).all()
    apart = [[5, 5, 60, 60], [580, 5, 635, 60]]  # no 9:16 crop spans both
    result = cropper.crop(photo, aspect=["9:16", "16:9"], keep=apart)
    tall, wide = result.crops
    assert wide.keep_kept == [0, 1] and len(tall.keep_kept) == 1  # 9:16 holds one of the two, and says which
    assert contains(T([tall.box]), T([apart[tall.keep_kept[0]]])).all()
    assert len(result.warnings) == 1 and "9:16" in result.warnings[0]
    assert result.to_json()["warnings"] == result.warnings


def test_keep_outside_the_image_is_refused(cropper, photo):
    with pytest.raises(InvalidOption, match="outside the 640x427 image"):
        cropper.crop(photo, keep=[[0, 0, 641, 10]])
    with pytest.raises(InvalidOption, match="focus .* outside"):
        cropper.crop(photo, focus=[10, 500])


def test_focus_pulls_the_crop(cropper, photo, monkeypatch):
    _stub_faces(monkeypatch, [])
    point = (40.0, 400.0)
    plain = cropper.crop(photo, aspect="1:1").crops[0].box
    pulled = cropper.crop(photo, aspect="1:1", focus=point).crops[0].box
    assert contains(T([pulled]), T([[*point, *point]]))[0, 0]

    def dist(b):
        return np.hypot((b[0] + b[2]) / 2 - point[0], (b[1] + b[3]) / 2 - point[1])

    assert dist(pulled) < dist(plain)


@pytest.mark.parametrize("min_scale", [0.3, 0.5, 0.8, 1.0])
def test_min_scale_bounds_the_zoom(cropper, photo, monkeypatch, min_scale):
    _stub_faces(monkeypatch, [])
    result = cropper.crop(photo, aspect=["1:1", "16:9", "9:16"], top_k=3, min_scale=min_scale)
    for c in result.crops:
        w, h = c.box[2] - c.box[0], c.box[3] - c.box[1]
        ratio = {"1:1": 1.0, "16:9": 16 / 9, "9:16": 9 / 16}[c.aspect]
        share = float(smallest_side_share(T([c.box]), np.array([ratio]), 640, 427)[0])
        assert share >= min_scale - 0.02, (c, share)
    if min_scale == 1.0:
        assert all(max(c.box[2] - c.box[0], c.box[3] - c.box[1]) >= 426 for c in result.crops)


# --------------------------------------------------------------------------- the detector
def test_detector_maps_boxes_back_to_the_original():
    rgb = load_image(DOG)
    small = detect_faces(rgb)  # long side 640 (the image is 800 high)
    full = detect_faces(rgb, max_side=4000)  # no resizing
    assert small.shape == (1, 5) and full.shape == (1, 5)
    assert np.abs(small[0, :4] - full[0, :4]).max() < 0.06 * (full[0, 2] - full[0, 0])  # same face, same place
    H, W = rgb.shape[:2]
    assert (small[:, [0, 2]] <= W).all() and (small[:, [1, 3]] <= H).all() and small[0, 4] >= 0.7
    assert detect_faces(np.zeros((64, 80, 3), np.uint8)).shape == (0, 5)
    # a smaller copy (what Cropper.prepare keeps of a JPEG) reports the face in the original's pixels
    copy = cv2.resize(rgb, (round(W * 0.8), round(H * 0.8)), interpolation=cv2.INTER_AREA)
    scaled = detect_faces(copy, size=(W, H))
    assert scaled.shape == (1, 5) and np.abs(scaled[0, :4] - full[0, :4]).max() < 0.08 * (full[0, 2] - full[0, 0])


def test_detector_finds_the_pinned_faces_in_the_examples():
    examples = sorted((ROOT / "examples").glob("*.jpg"))
    assert len(examples) >= 6
    for path in examples:
        found = detect_faces(load_image(path))
        pinned = np.asarray(EXAMPLE_FACES.get(path.name, []), dtype=np.float64).reshape(-1, 5)
        assert found.shape == pinned.shape, (path.name, found)
        assert np.abs(found[:, :4] - pinned[:, :4]).max(initial=0) < 1.0, (path.name, found)
        assert np.abs(found[:, 4] - pinned[:, 4]).max(initial=0) < 0.01, (path.name, found)


def _same_faces_as_opencv(paths):
    with opencv_detector():
        reference = detect_all(paths)
    assert sum(map(len, reference.values())) > 0  # the check has faces to compare
    return compare(reference, detect_all(paths), tolerance=1.0, conf_tolerance=0.01)


def test_detector_finds_what_opencv_finds_in_the_examples():
    """The examples' sizes (800 x 533 and 533 x 800 -> 640 x 427, 427 x 640) are not
    multiples of 32: the input is padded as OpenCV pads it."""
    assert _same_faces_as_opencv(sorted((ROOT / "examples").glob("*.jpg"))) == []


@pytest.mark.slow
@pytest.mark.skipif(not OSIE_1401.is_file(), reason="needs the shared OSIE and validation photos (../shared)")
def test_detector_finds_what_opencv_finds_on_validation():
    paths = photos()
    assert len(paths) > 100
    assert _same_faces_as_opencv(paths) == []


def test_decode_scores_and_boxes():
    """One cell at stride 16 (row 1, column 2 of a 64 x 32 input) scores
    sqrt(clip(1.2) * 0.64) = 0.8; its box is centred at (2 + 0.5, 1 + 0.25) * 16 with size
    (e^ln2, e^0) * 16. Cells under the threshold, and negative scores, are dropped."""
    width, height = 64, 32
    out = {}
    for s in faces_mod.STRIDES:
        n = (width // s) * (height // s)
        out[f"cls_{s}"] = np.full((1, n, 1), -0.5, np.float32)
        out[f"obj_{s}"] = np.full((1, n, 1), 0.9, np.float32)
        out[f"bbox_{s}"] = np.zeros((1, n, 4), np.float32)
    out["cls_16"][0, 1 * 4 + 2, 0], out["obj_16"][0, 1 * 4 + 2, 0] = 1.2, 0.64
    out["bbox_16"][0, 1 * 4 + 2] = [0.5, 0.25, np.log(2), 0]
    out["cls_8"][0, 5, 0], out["obj_8"][0, 5, 0] = 0.9, 0.5  # sqrt(0.45) = 0.67 < 0.7
    rows = decode(out, width, height, 0.7)
    assert rows.dtype == np.float32 and rows.shape == (1, 5)
    np.testing.assert_allclose(rows[0], [24, 12, 32, 16, 0.8], rtol=1e-6)
    assert decode(out, width, height, 0.6).shape == (2, 5)  # the 0.67 cell, stride 8 first
    assert decode(out, width, height, 0.6)[0, 4] == pytest.approx(0.45 ** 0.5)


def test_nms_keeps_the_most_confident_of_overlapping_faces():
    rows = np.array([[100, 100, 20, 20, 0.75], [12, 12, 38, 38, 0.8], [10, 10, 40, 40, 0.9]], np.float32)
    np.testing.assert_array_equal(nms(rows), rows[[2, 0]])  # IoU(1, 2) = 0.9: 1 goes; most confident first
    apart = rows.copy()
    apart[1, :2] = 300  # no overlap: all kept
    np.testing.assert_array_equal(nms(apart), apart[[2, 1, 0]])
    assert nms(rows[:1]).shape == (1, 5) and nms(rows[:0]).shape == (0, 5)


def test_detector_sessions_follow_torch_threads_and_run_concurrently():
    from concurrent.futures import ThreadPoolExecutor

    rgb = load_image(DOG)
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        expected = detect_faces(rgb)
        assert faces_mod._session().get_session_options().intra_op_num_threads == 1
        with ThreadPoolExecutor(4) as pool:
            found = list(pool.map(lambda _: detect_faces(rgb), range(8)))
    finally:
        torch.set_num_threads(n)
    assert all(np.array_equal(f, expected) for f in found)


def test_set_cpu_threads_rules_every_session_and_torch(monkeypatch):
    """A batch worker sets its thread count once, torch loaded or not; it wins over torch's."""
    from asm import cpu_session

    n = torch.get_num_threads()
    monkeypatch.setattr(cpu_session, "_threads", 0)
    try:
        assert cpu_session.cpu_threads() == n  # unset: torch's count (torch is loaded here)
        cpu_session.set_cpu_threads(1)
        assert cpu_session.cpu_threads() == 1 and torch.get_num_threads() == 1
        detect_faces(load_image(DOG))
        assert faces_mod._session().get_session_options().intra_op_num_threads == 1
        torch.set_num_threads(2)  # torch changed behind asm's back: the set count still rules
        assert cpu_session.cpu_threads() == 1
    finally:
        torch.set_num_threads(n)


def _onnx_edit(data: bytes, input_shape: list | None, outputs=None):
    """The model with the input's shape set (None: cleared), no other declared shape and,
    if given, only ``outputs`` and the nodes they need, by the onnx package."""
    import onnx

    model = onnx.load_from_string(data)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 640, 640]
    if input_shape is None:
        model.graph.input[0].type.tensor_type.ClearField("shape")
    else:
        for d, value in zip(dims, input_shape):
            if isinstance(value, str):
                d.dim_param = value
    for value in model.graph.output:
        value.type.tensor_type.ClearField("shape")
    del model.graph.value_info[:]
    if outputs is None:
        return model
    kept = [o for o in model.graph.output if o.name in outputs]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    needed, nodes = set(outputs), []
    for node in reversed(model.graph.node):
        if needed & set(node.output):
            nodes.append(node)
            needed.update(node.input)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    return model


def test_the_model_loads_for_any_size_without_its_landmark_head():
    """The wire-format edit equals the same edit by the onnx package, and keeps everything else."""
    data = (ROOT / "asm" / "weights" / faces_mod.YUNET_FILE).read_bytes()
    expected = _onnx_edit(data, [1, 3, "height", "width"], faces_mod.OUTPUTS)
    assert faces_mod.runtime_model(data) == expected.SerializeToString()
    assert len(expected.graph.initializer) > 50 and 80 < len(expected.graph.node) < 100
    assert [o.name for o in expected.graph.output] == list(faces_mod.OUTPUTS)  # no kps_*


def test_the_detector_runs_at_any_multiple_of_32_with_its_max_pools_blocked(tmp_path):
    """Declaring the input's rank and channels (not dropping its shape) lets ONNX Runtime
    run the max-pools in its blocked NCHWc layout with the convolutions (where the CPU has
    that layout), with the same outputs as the whole model with no declared shapes."""
    import onnx
    import onnxruntime as ort

    data = faces_mod.yunet_model()
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    options.log_severity_level = 3  # it warns that the saved graph holds this CPU's layouts
    session = ort.InferenceSession(faces_mod.runtime_model(data), options, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, "height", "width"]
    nodes = onnx.load(options.optimized_model_filepath).graph.node
    if not any(n.domain == "com.microsoft.nchwc" for n in nodes):
        pytest.skip("this CPU has no NCHWc layout in ONNX Runtime")
    assert sorted({n.domain for n in nodes if n.op_type == "MaxPool"}) == ["com.microsoft.nchwc"]
    # the model with no declared shape at all and all its outputs (as asm loaded it before)
    reference = ort.InferenceSession(_onnx_edit(data, None).SerializeToString(), providers=["CPUExecutionProvider"])
    rgb = load_image(DOG)
    for side in (640, 320, 200):
        x = faces_mod.network_input(faces_mod.detector_copy(rgb, side)[..., ::-1])
        assert x.shape[2] % 32 == 0 and x.shape[3] % 32 == 0 and x.shape[2] != x.shape[3]
        names = list(faces_mod.OUTPUTS)
        for a, b in zip(session.run(names, {"input": x}), reference.run(names, {"input": x})):
            np.testing.assert_array_equal(a, b)


def test_the_int8_candidates_build_and_run_at_any_multiple_of_32(tmp_path):
    """benchmarks/yunet_int8.py (measured in faces.md, not shipped): int8 convolutions, the
    objectness head left float, inputs of any multiple of 32; its faces are YuNet's format."""
    import onnx

    from asm.cpu_session import cpu_session
    from benchmarks.yunet_int8 import RECIPES, quantize_yunet, yunet_inputs

    examples = [DOG, ROOT / "examples" / "dandelion.jpg"]  # calibration here: two example photos
    path = quantize_yunet(tmp_path / "int8.onnx", yunet_inputs(examples), RECIPES["minmax"])
    nodes = onnx.load(str(path)).graph.node
    assert sum(n.op_type == "QLinearConv" for n in nodes) > 40
    assert all(n.op_type == "Conv" for n in nodes if any("multi_level_obj" in i for i in n.input))
    session = cpu_session(path.read_bytes(), 1)
    rgb = load_image(DOG)
    for side in (640, 320):
        bgr = faces_mod.detector_copy(rgb, side)[..., ::-1]
        rows = faces_mod.yunet(bgr, session=session)
        assert rows.dtype == np.float32 and rows.shape[1] == 5 and (rows[:, 4] >= faces_mod.MIN_CONFIDENCE).all()
    assert len(faces_mod.yunet(faces_mod.detector_copy(rgb)[..., ::-1], session=session)) == 1  # the dog's face


def test_detector_refuses_a_damaged_model(monkeypatch):
    monkeypatch.setattr(faces_mod, "YUNET_SHA256", "0" * 64)
    monkeypatch.setattr(faces_mod, "_sessions", {})
    with pytest.raises(RuntimeError, match="damaged"):
        detect_faces(load_image(DOG))


@pytest.mark.skipif(not OSIE_1401.is_file(), reason="needs the shared OSIE photos")
def test_detector_finds_people():
    faces = detect_faces(load_image(OSIE_1401))
    assert len(faces) == 2 and (prominence(faces)[:-1] >= prominence(faces)[1:]).all()


def test_detector_loads_from_a_zipped_package(tmp_path):
    """TorchServe runs asm from asm.zip: the model must load from there too."""
    import subprocess
    import sys
    import zipfile

    z = tmp_path / "asm.zip"
    with zipfile.ZipFile(z, "w") as f:
        for p in [*(ROOT / "asm").rglob("*.py"), *(ROOT / "asm" / "weights").glob("*.onnx")]:
            f.write(p, p.relative_to(ROOT).as_posix())
    code = ("import asm.search.faces, numpy as np; assert asm.search.faces.__file__.startswith(%r); "
            "print(asm.search.faces.detect_faces(np.zeros((60, 80, 3), np.uint8)).shape)" % str(z))
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(z), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "(0, 5)"


# --------------------------------------------------------------------------- CLI
def test_cli_faces_keep_focus_min_scale(model_path, capsys, tmp_path):
    code = main(["crop", str(DOG), "--aspect", "1:1", "--aspect", "9:16", "--keep", "20,300,120,400", "--keep", "300,500,400,600",
                 "--focus", "250,250", "--min-scale", "0.7", "--json", "--model", str(model_path), "--out", str(tmp_path)])
    assert code == 0
    answer = json.loads(capsys.readouterr().out)
    assert len(answer["faces"]) == 1
    for c in answer["crops"]:
        assert c["faces_kept"] == [0] and c["keep_kept"] == [0, 1]
    assert (tmp_path / "dogs-window_crops.jpg").is_file()
    code = main(["crop", str(DOG), "--faces", "off", "--model", str(model_path)])
    assert code == 0 and " faces " not in capsys.readouterr().out


@pytest.mark.parametrize("args, words", [
    (["--keep", "1,2,3"], "keep box 0 must be 4 numbers"),
    (["--focus", "abc"], "focus must be 2 numbers"),
    (["--faces", "sometimes"], "faces must be true or false"),
    (["--min-scale", "3"], "min_scale must be between 0.1 and 1"),
])
def test_cli_refuses_bad_values_in_one_line(model_path, capsys, args, words):
    assert main(["crop", str(DOG), "--model", str(model_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_cli_keep_outside_the_image_fails_that_image_only(model_path, capsys):
    code = main(["crop", str(DOG), "--keep", "0,0,9000,10", "--json", "--model", str(model_path)])
    assert code == 1
    line = json.loads(capsys.readouterr().out)
    assert line["error"] == "invalid_option" and "outside the 533x800 image" in line["message"]
