"""Cropper: exact aspects, in-bounds boxes, circles, top-k diversity, heatmaps, options."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou

from asm.cropper import Cropper
from asm.errors import InvalidImage, InvalidOption
from asm.options import DEFAULT_MIN_SCALE, CropOptions
from asm.search.candidates import (coarse_candidates, first_rows, parse_aspect, parse_aspects, refine_candidates, snap_box,
                                   unique_boxes)
from asm.search.search import search


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    img = (rng.random((427, 640, 3)) * 60).astype(np.uint8)
    img[150:300, 380:520] = (230, 90, 40)  # a bright subject right of centre
    return img


ASPECTS = ["9:16", "3:4", "1:1", "4:3", "16:9", "1.91:1", (3, 2), "21:9"]


@pytest.mark.parametrize("shape", [(427, 640), (640, 427), (300, 300), (200, 1500), (1500, 120)])
def test_every_aspect_exact_and_inside(cropper, shape):
    img = np.full((*shape, 3), 128, np.uint8)
    result = cropper.crop(img, aspect=ASPECTS, top_k=2, min_scale=0.6)  # zoom allowed: two distinct crops of each
    assert (result.width, result.height) == (shape[1], shape[0])
    assert len(result.crops) == 2 * len(ASPECTS)
    for crop in result.crops:
        x1, y1, x2, y2 = crop.box
        assert all(isinstance(v, int) for v in crop.box)
        assert 0 <= x1 < x2 <= shape[1] and 0 <= y1 < y2 <= shape[0]
        ratio = parse_aspect(crop.aspect).ratio
        w, h = x2 - x1, y2 - y1
        # exact up to rounding: one side is the other's exact length, rounded (asm.search.candidates.snap_box)
        assert h == round(w / ratio) or w == round(h * ratio), (crop.aspect, crop.box)
        assert crop.shape == "rect"


def test_aspect_labels_in_request_order(cropper, photo):
    result = cropper.crop(photo, aspect=["16:9", "1:1"], top_k=3, min_scale=0.6)
    assert [c.aspect for c in result.crops] == ["16:9"] * 3 + ["1:1"] * 3
    for first in (0, 3):  # each aspect's top-k, best first
        scores = [c.score for c in result.crops[first:first + 3]]
        assert scores[0] > scores[1] > scores[2], scores


def test_free_aspect_within_sane_bounds(cropper, photo):
    crop = cropper.crop(photo).crops[0]
    w, h = crop.box[2] - crop.box[0], crop.box[3] - crop.box[1]
    assert crop.aspect == "free"
    # a shape people pick (asm.search.framing): near the photo's aspect, most of its area
    assert 0.5 <= (w / h) / (640 / 427) <= 2.0
    assert 0.3 <= w * h / (640 * 427) <= 1.0


def test_circular_crops_are_square_and_inside(cropper, photo):
    result = cropper.crop(photo, circular=True, top_k=3, min_scale=0.6)
    assert len(result.crops) == 3
    for c in result.crops:
        x1, y1, x2, y2 = c.box
        assert c.shape == "circle" and c.aspect == "1:1"
        assert x2 - x1 == y2 - y1
        assert 0 <= x1 and 0 <= y1 and x2 <= 640 and y2 <= 427


def test_top_k_is_diverse(cropper, photo):
    from torchvision.ops import box_iou

    crops = cropper.crop(photo, aspect="1:1", top_k=5, nms_iou=0.4).crops
    boxes = torch.tensor([c.box for c in crops], dtype=torch.float32)
    iou = box_iou(boxes, boxes)
    assert (iou[~torch.eye(len(crops), dtype=torch.bool)] <= 0.4 + 0.02).all()


def test_largest_box_by_default_and_fewer_crops_said_in_words(cropper, photo):
    """A fixed aspect places the largest box unless min_scale asks for zoom; when the largest
    box leaves room for fewer than top_k distinct crops, the answer says so."""
    result = cropper.crop(photo, aspect=["16:9", "1:1"], top_k=3)
    by_aspect = {a: [c.box for c in result.crops if c.aspect == a] for a in ("16:9", "1:1")}
    assert [b[2] - b[0] for b in by_aspect["16:9"]] == [640] * len(by_aspect["16:9"])  # 640 x 360: the largest box
    assert all(b[3] - b[1] == 427 for b in by_aspect["1:1"])
    # 67 px of room hold no second 16:9 crop; 213 px hold two 1:1 crops with IoU <= 0.5, not three
    assert len(by_aspect["16:9"]) == 1 and len(by_aspect["1:1"]) == 2
    assert result.warnings == [f"only {n} distinct {a} crop(s) of this image at min_scale 1 (the largest box has little "
                               "room to move); a lower min_scale gives more" for a, n in (("16:9", 1), ("1:1", 2))]
    zoomed = cropper.crop(photo, aspect="16:9", top_k=3, min_scale=0.6)
    assert len(zoomed.crops) == 3 and not zoomed.warnings and min(c.box[2] - c.box[0] for c in zoomed.crops) < 640


def test_search_finds_the_best_box_the_map_prefers(cropper, photo, monkeypatch):
    """With a map that rewards one region, the search must pick a crop around it."""
    monkeypatch.setattr("asm.search.placement.KEEP_OFFSET", 1.0)  # the search's own place, not drawn to the centre
    prepared = cropper.prepare(photo)
    h, w = cropper.score_maps([prepared])[0].shape[-2:]
    L = cropper.model.num_partitions
    m = np.zeros((1, L, h, w), np.float32)
    m[..., h // 4 : 3 * h // 4, w // 2 :] = 1.0  # right half, middle band is good
    crop = search(cropper.scorer(m), prepared, CropOptions.parse("1:1")).crops[0]
    cx = (crop.box[0] + crop.box[2]) / 2
    assert cx > 640 * 0.6
    # and stage 2 never loses to stage 1: the final score is at least the best anchor
    boxes, _ = coarse_candidates([1.0], 640, 427, min_scale=DEFAULT_MIN_SCALE)  # the anchors of the default search
    best_anchor = float(cropper.scorer(m).score(boxes, 640, 427, False).max())
    assert crop.score >= best_anchor - 1e-3


def test_fixed_aspect_crops_sit_part_of_the_way_back_to_the_centre(cropper, photo, monkeypatch):
    """The returned crop is the search's place with its offset from the image centre scaled by
    KEEP_OFFSET (asm.search.placement), unless that move would cut a face or drop a keep-region."""
    from asm.search import placement

    prepared = cropper.prepare(photo)
    h, w = cropper.score_maps([prepared])[0].shape[-2:]
    m = np.zeros((1, cropper.model.num_partitions, h, w), np.float32)
    m[..., w * 3 // 4:] = 1.0  # the right quarter is good
    scorer = cropper.scorer(m)
    settled = search(scorer, prepared, CropOptions.parse("1:1", faces=False)).crops[0].box
    # a keep-region at the right edge holds the crop where the search put it
    kept = search(scorer, prepared, CropOptions.parse("1:1", faces=False, keep=[[600, 100, 640, 200]])).crops[0]
    assert kept.box[2] == 640 and kept.keep_kept == [0]
    share = placement.KEEP_OFFSET
    assert 0 < share < 1
    monkeypatch.setattr(placement, "KEEP_OFFSET", 1.0)
    own = search(scorer, prepared, CropOptions.parse("1:1", faces=False)).crops[0].box
    assert own[2] == 640  # the search alone goes to the right edge
    assert settled == placement.toward_centre(np.array([own]), 640, 427, share)[0].astype(int).tolist()
    assert settled[0] < own[0]  # moved left, towards the middle


def test_toward_centre_scales_the_offset_and_stays_inside():
    from asm.search.placement import toward_centre

    boxes = np.array([[200, 0, 300, 100], [0, 0, 100, 100], [50, 0, 150, 100]], dtype=np.float64)
    out = toward_centre(boxes, 300, 100, 0.5)
    assert out.tolist() == [[150, 0, 250, 100], [50, 0, 150, 100], [75, 0, 175, 100]]
    assert toward_centre(boxes, 300, 100, 1.0).tolist() == boxes.tolist()
    assert (toward_centre(boxes, 300, 100, 0.0)[:, 0] == 100).all()


def test_result_json_round_trip(cropper, photo):
    out = cropper.crop(photo, aspect="4:3").to_json()
    assert set(out) == {"width", "height", "crops", "faces"}  # faces: detected (none here)
    assert set(out["crops"][0]) == {"box", "score", "aspect", "shape", "faces_kept"}
    out = cropper.crop(photo, aspect="4:3", faces=False, keep=[[10, 10, 50, 50]]).to_json()
    assert set(out) == {"width", "height", "crops"}
    assert set(out["crops"][0]) == {"box", "score", "aspect", "shape", "keep_kept"}
    json.dumps(out)


def test_heatmaps_at_map_size_and_at_image_size_when_asked(cropper, photo):
    analysis = cropper.analyse(photo)
    small = analysis.heatmaps()
    assert small.avg.shape == small.std.shape == tuple(analysis.score_map.shape[-2:])
    # eqs. 5-6 by hand: each pixel's mean and population std over the L partitions
    maps = analysis.score_map[0].astype(np.float64)  # [L, h, w]
    centred = maps - maps.mean(0)
    assert small.avg == pytest.approx(maps.mean(0), abs=1e-5)
    assert small.std == pytest.approx(np.sqrt((centred ** 2).mean(0)), abs=1e-5)
    # ... and the tensor twins the training uses
    from asm.models import theta_avg, theta_std

    tensor = torch.from_numpy(analysis.score_map)
    np.testing.assert_allclose(small.avg, theta_avg(tensor)[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(small.std, theta_std(tensor)[0].numpy(), atol=1e-5)
    heat = cropper.heatmaps(photo, at_image_size=True)
    assert heat.avg.shape == heat.std.shape == photo.shape[:2]
    assert heat.avg.dtype == heat.std.dtype == np.float32
    # the upsampled map is the small one, interpolated: same range, same mean to a few %
    assert heat.avg.min() >= small.avg.min() - 1e-4 and heat.avg.max() <= small.avg.max() + 1e-4
    assert abs(heat.avg.mean() - small.avg.mean()) <= 0.05 * abs(small.avg).mean() + 1e-6


def test_score_user_boxes(cropper, photo):
    boxes = [[0, 0, 640, 427], [100, 50, 400, 350]]
    s = cropper.score(photo, boxes)
    assert s.shape == (2,) and np.isfinite(s).all()
    result = cropper.crop(photo, aspect="16:9")
    assert np.isclose(cropper.score(photo, [result.crops[0].box])[0], result.crops[0].score, atol=1e-5)
    with pytest.raises(InvalidOption, match="box 0"):
        cropper.score(photo, [[0, 0, 700, 100]])


def test_inputs_path_bytes_pil(cropper, photo, tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(photo).save(path)
    a = cropper.crop(path, aspect="1:1").crops[0].box
    b = cropper.crop(path.read_bytes(), aspect="1:1").crops[0].box
    c = cropper.crop(Image.fromarray(photo), aspect="1:1").crops[0].box
    assert a == b == c


def test_exif_orientation_is_applied(cropper, tmp_path):
    img = Image.fromarray(np.full((200, 400, 3), 100, np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif)
    result = cropper.crop(path, aspect="1:1")
    assert (result.width, result.height) == (200, 400)
    assert result.crops[0].box[2] <= 200 and result.crops[0].box[3] <= 400


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(aspect="0:1"), "positive"),
        (dict(aspect="-4:3"), "W:H"),
        (dict(aspect="abc"), "W:H"),
        (dict(aspect="1e9:1"), "W:H|extreme"),
        (dict(aspect="1000000000:1"), "extreme"),
        (dict(aspect=(1, 0)), "positive"),
        (dict(top_k=0), "top_k"),
        (dict(top_k=1000), "top_k"),
        (dict(top_k="three"), "top_k"),
        (dict(circular="maybe"), "circular"),
        (dict(circular=True, aspect="16:9"), "circular"),
        (dict(nms_iou=2), "nms_iou"),
    ],
)
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(InvalidOption, match=match):
        CropOptions.parse(**kwargs)


@pytest.mark.parametrize("kwargs, match", [(dict(top_k=0), "top_k"), (dict(nms_iou=1.5), "nms_iou"),
                                           (dict(min_scale=0.05), "min_scale"), (dict(aspects=()), "aspect"),
                                           (dict(circular=True), "circular")])
def test_options_built_directly_are_checked(kwargs, match):
    with pytest.raises(InvalidOption, match=match):
        CropOptions(**kwargs)
    assert CropOptions.parse("1:1", circular=True).circular  # what parse builds passes the same checks


def test_options_from_mapping():
    opts = CropOptions.from_mapping({"aspect": "16:9,1:1", "top_k": "2", "circular": "false"})
    assert [a.label for a in opts.aspects] == ["16:9", "1:1"] and opts.top_k == 2
    with pytest.raises(InvalidOption, match="unknown option"):
        CropOptions.from_mapping({"aspect": "1:1", "topk": 3})
    with pytest.raises(InvalidOption, match="unknown option.*heatmap"):  # an output of the shells, not a crop option
        CropOptions.from_mapping({"heatmap": "true"})


def test_bad_images_are_typed_errors(cropper):
    with pytest.raises(InvalidImage):
        cropper.crop(b"not an image")
    with pytest.raises(InvalidImage):
        cropper.crop(np.zeros((10, 10, 3), np.uint8))


def test_candidates_cover_scales_and_stay_inside():
    boxes, group = coarse_candidates([16 / 9, 1.0], 640, 427)
    assert set(group.tolist()) == {0, 1}
    assert (boxes[:, 0] >= -1e-9).all() and (boxes[:, 2] <= 640 + 1e-9).all() and (boxes[:, 3] <= 427 + 1e-9).all()
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert areas.min() < 0.4 * areas.max()
    fine, seed = refine_candidates(boxes[:3], np.array([False, True, False]), 640, 427)
    assert (fine[:, 0] >= -1e-9).all() and (fine[:, 2] <= 640 + 1e-9).all() and (fine[:, 3] <= 427 + 1e-9).all()
    fixed = fine[seed != 1]
    ratio = (fixed[:, 2] - fixed[:, 0]) / (fixed[:, 3] - fixed[:, 1])
    np.testing.assert_allclose(ratio, 16 / 9)


@pytest.mark.parametrize("size", [(640, 427), (427, 640), (97, 300)])
def test_coarse_anchors_are_row_major_grids_per_size(size):
    """Each anchor size is an ny x nx grid of places, row-major, evenly spaced from the
    image's top-left corner to its far edges; sizes in order, ratios in order."""
    width, height = size
    ratios = [16 / 9, 1.0, 9 / 16]
    boxes, group = coarse_candidates(ratios, width, height, min_scale=0.6)
    want, want_group = [], []
    for g, ratio in enumerate(ratios):
        bw, bh = (height * ratio, height) if width / height > ratio else (width, width / ratio)
        for s in torch.linspace(1.0, 0.6, 8).tolist():  # float32 steps, as the anchors use
            w, h = bw * s, bh * s
            nx = max(1, min(9, 1 + int(round((width - w) / (0.05 * width)))))
            ny = max(1, min(9, 1 + int(round((height - h) / (0.05 * height)))))
            for y in np.linspace(0, height - h, ny):
                for x in np.linspace(0, width - w, nx):
                    want.append([x, y, x + w, y + h])
                    want_group.append(g)
    assert group.tolist() == want_group
    np.testing.assert_allclose(boxes, np.array(want), rtol=0, atol=1e-9)


def test_unique_boxes_scores_each_box_once():
    rng = np.random.default_rng(5)
    distinct = rng.random((40, 4)) * 300
    boxes = distinct[rng.integers(0, 40, 500)]
    boxes[0, 0] = np.nextafter(boxes[0, 0], 1e9)  # one ulp apart: its own box
    rows, inverse = unique_boxes(boxes)
    assert np.array_equal(rows[inverse], boxes)
    assert len(rows) == len({tuple(b) for b in boxes.tolist()})
    empty, none = unique_boxes(np.zeros((0, 4)))
    assert empty.shape == (0, 4) and none.shape == (0,)


def test_first_rows_keeps_the_first_row_of_each_key_in_order():
    assert first_rows(np.array([5, 3, 5, 0, 3, 7])).tolist() == [0, 1, 3, 5]
    assert first_rows(np.zeros(0, dtype=np.int64)).tolist() == []


@pytest.mark.parametrize("others", [["free"], ["1:1", "free", "9:16"]])
def test_an_aspects_crops_do_not_depend_on_the_aspects_asked_with_it(cropper, photo, others):
    """Without faces, keep-regions or focus, each aspect is searched on its own candidates;
    boxes that several aspects share (a free crop's 16:9 anchors) are scored once for all."""
    alone = cropper.crop(photo, aspect="16:9", faces=False, top_k=3).crops
    together = [c for c in cropper.crop(photo, aspect=[*others, "16:9"], faces=False, top_k=3).crops if c.aspect == "16:9"]
    assert [c.box for c in together] == [c.box for c in alone]
    # equal up to the summation order of the pooling's numpy fallback (no compiled kernel)
    assert [c.score for c in together] == pytest.approx([c.score for c in alone], rel=1e-12)


def test_snap_box_keeps_ratio():
    for ratio in (16 / 9, 1.0, 9 / 16, 1.91):
        box = snap_box([10.3, 20.7, 10.3 + 300.4, 20.7 + 300.4 / ratio], ratio, 640, 427)
        w, h = box[2] - box[0], box[3] - box[1]
        assert abs(w / ratio - h) <= 0.5 + 1e-9 and box[2] <= 640 and box[3] <= 427


def test_parse_aspects_list_and_dedupe():
    assert [a.label for a in parse_aspects(["16:9", "16:9", "1:1"])] == ["16:9", "1:1"]
    assert parse_aspects(None)[0].free


def test_readme_api_is_importable_from_the_package():
    import asm

    assert asm.Cropper is Cropper and asm.CropOptions is CropOptions
    shipped = asm.Cropper.from_pretrained()  # the README's first line: the shipped model, at its own scale
    assert shipped.runtime == "int8" and shipped.preset == shipped.weights.preset
    assert (shipped.preset.short_side, shipped.preset.max_long_side) == (192, 384)


# --------------------------------------------------------------------------- issue 14


def _iou(a, b):
    return float(box_iou(torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64))[0, 0])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("aspect,nms_iou", [(None, 0.5), ("16:9", 0.5), ("1:1", 0.3), (None, 0.7)])
def test_returned_boxes_obey_nms_and_come_best_first(cropper, seed, aspect, nms_iou):
    """The limit holds for the pixel boxes returned (after snapping), and scores descend."""
    rng = np.random.default_rng(seed)
    h, w = rng.integers(97, 400, 2)
    img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    crops = cropper.crop(img, aspect=aspect, top_k=6, nms_iou=nms_iou, min_scale=0.6).crops
    assert len(crops) >= 2
    scores = [c.score for c in crops]
    assert scores == sorted(scores, reverse=True)
    for i in range(len(crops)):
        for j in range(i):
            assert _iou(crops[i].box, crops[j].box) <= nms_iou + 1e-9, (crops[i].box, crops[j].box)


@pytest.mark.parametrize("aspect", [None, "1:1", "16:9"])
def test_nms_iou_one_still_gives_distinct_boxes(cropper, aspect):
    img = (np.random.default_rng(0).random((427, 640, 3)) * 60).astype(np.uint8)  # near-flat: equal boxes tie
    crops = cropper.crop(img, aspect=aspect, top_k=3, nms_iou=1, min_scale=0.6).crops
    assert len(crops) == 3 and len({tuple(c.box) for c in crops}) == 3


@pytest.mark.parametrize("boxes", [[[0, 0, 10]], "abc", None, [[1, 2, 3, "x"]], [[0, 0, float("nan"), 5]], {"a": 1}, [[[0, 0, 1, 1]]]])
def test_malformed_boxes_are_typed_errors(cropper, photo, boxes):
    with pytest.raises(InvalidOption, match="boxes must be"):
        cropper.score(photo, boxes)


@pytest.mark.parametrize("value", ["١٦:٩", ("١٦", "9"), "１６:９"])
def test_non_ascii_digits_are_refused(value):
    with pytest.raises(InvalidOption, match="aspect"):
        parse_aspect(value)


def test_huge_ratios_give_one_message_whatever_the_form():
    messages = set()
    for value in ("1e9:1", (1e9, 1), "1000000000:1"):
        with pytest.raises(InvalidOption) as ei:
            parse_aspect(value)
        messages.add(str(ei.value))
    assert len(messages) == 1 and "too extreme" in messages.pop()


@pytest.mark.parametrize("options", [{"aspect": "9" * 100_000 + ":1"}, {"aspect": "x" * 100_000}, {"top_k": "x" * 100_000},
                                     {"nms_iou": "1" * 100_000}, {"circular": "y" * 100_000}, {"z" * 100_000: 1}])
def test_messages_echo_at_most_about_100_characters(options):
    with pytest.raises(InvalidOption) as ei:
        CropOptions.from_mapping(options)
    assert len(str(ei.value)) < 220, str(ei.value)[:300]


def test_from_pretrained_raises_asm_errors(tmp_path):
    from asm.errors import InvalidModel, ModelNotFound

    with pytest.raises(ModelNotFound):
        Cropper.from_pretrained(tmp_path / "nope.pt")
    for name, data in (("readme.pt", b"# not a model\n" * 20), ("empty.pt", b""), ("zip.pt", b"PK\x03\x04" + b"\0" * 40)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InvalidModel, match="not an asm model"):
            Cropper.from_pretrained(tmp_path / name)
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(InvalidModel):
        Cropper.from_pretrained(tmp_path / "other.pt")


# --------------------------------------------------------------------------- Analysis


@pytest.mark.parametrize("kwargs", [{}, {"aspect": ["16:9", "1:1", "free"], "top_k": 3}, {"circular": True, "top_k": 2},
                                    {"aspect": "4:3", "keep": [[380, 150, 520, 300]], "focus": (450, 220), "min_scale": 0.8}])
def test_analysis_crops_answer_the_options(cropper, photo, kwargs):
    """Whatever is asked (aspects, top-k, circles, keep-regions, a focus, a zoom limit), every
    crop answers it: its aspect, inside the image, holding the regions and the point."""
    analysis = cropper.analyse(photo)
    assert (analysis.width, analysis.height) == (640, 427)
    options = CropOptions.parse(**kwargs)
    result = analysis.crops(options)
    assert analysis.crops(**kwargs).to_json() == result.to_json()  # keywords and CropOptions: one answer
    wanted = [a.label for a in options.aspects]
    counts = {label: sum(c.aspect == label for c in result.crops) for label in wanted}
    assert all(1 <= n <= options.top_k for n in counts.values()), counts
    for crop in result.crops:
        x1, y1, x2, y2 = crop.box
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 427 and np.isfinite(crop.score)
        assert crop.shape == ("circle" if options.circular else "rect")
        if crop.aspect not in ("free",) and ":" in crop.aspect:
            w, h = (float(v) for v in crop.aspect.split(":"))
            assert abs((x2 - x1) * h / w - (y2 - y1)) <= 1.0, crop
        for kx1, ky1, kx2, ky2 in options.keep:
            assert x1 <= kx1 and y1 <= ky1 and kx2 <= x2 and ky2 <= y2
        if options.focus is not None:
            assert x1 <= options.focus[0] <= x2 and y1 <= options.focus[1] <= y2
    if "min_scale" in kwargs:  # 4:3 at 640x427: the largest box is 569x427
        assert all(c.box[3] - c.box[1] >= options.min_scale * 427 - 1 for c in result.crops)


def test_one_analysis_answers_many_questions_from_one_forward_pass(cropper, photo, monkeypatch):
    analysis = cropper.analyse(photo)
    calls = []
    monkeypatch.setattr(cropper, "score_maps", lambda prepared: calls.append(len(prepared)))  # restored after the test
    for aspect in ("16:9", "1:1", "9:16"):
        assert analysis.crops(aspect=aspect).crops[0].aspect == aspect
    analysis.heatmaps()
    analysis.score([[0, 0, 640, 427]])
    assert calls == []  # none of them ran the network again
    with pytest.raises(TypeError, match="either"):
        analysis.crops(CropOptions(), top_k=2)


def test_analysis_scores_and_heatmaps_match_the_cropper(cropper, photo):
    analysis = cropper.analyse(photo)
    boxes = [[0, 0, 640, 427], [100, 50, 400, 350], [380, 150, 520, 300]]
    np.testing.assert_array_equal(analysis.score(boxes), cropper.score(photo, boxes))
    np.testing.assert_array_equal(analysis.score(boxes, circular=True), cropper.score(photo, boxes, circular=True))
    assert not np.array_equal(analysis.score(boxes, circular=True), analysis.score(boxes))
    heat, again = analysis.heatmaps(at_image_size=True), cropper.heatmaps(photo, at_image_size=True)
    np.testing.assert_array_equal(heat.avg, again.avg)
    np.testing.assert_array_equal(heat.std, again.std)
    with pytest.raises(InvalidOption, match="box 0"):
        analysis.score([[0, 0, 641, 100]])


def test_overlays_are_the_heatmaps_coloured_over_the_photo(cropper, photo):
    from asm.viz import overlay_heatmap

    analysis = cropper.analyse(photo)
    overlays = analysis.overlays()
    heat = analysis.heatmaps()
    assert list(overlays) == ["theta_avg", "theta_std"]
    np.testing.assert_array_equal(overlays["theta_avg"], overlay_heatmap(photo, heat.avg))
    np.testing.assert_array_equal(overlays["theta_std"], overlay_heatmap(photo, heat.std))
    assert overlays["theta_avg"].shape == photo.shape and overlays["theta_avg"].dtype == np.uint8
    assert not np.array_equal(overlays["theta_avg"], overlays["theta_std"])


def test_analyse_many_equals_one_analysis_per_image(cropper, photo):
    """Two images share an input size (one batched forward pass), one has its own."""
    rng = np.random.default_rng(3)
    other = (rng.random((427, 640, 3)) * 255).astype(np.uint8)
    tall = (rng.random((500, 300, 3)) * 255).astype(np.uint8)
    images = [photo, tall, other]
    options = CropOptions.parse(["16:9", "free"], top_k=2)
    many = cropper.analyse_many(images)
    assert len(many) == 3
    for image, batched in zip(images, many):
        single = cropper.analyse(image)
        assert batched.score_map.shape == single.score_map.shape
        np.testing.assert_allclose(batched.score_map, single.score_map, atol=1e-5, rtol=1e-5)
        got, want = batched.crops(options).to_json(), single.crops(options).to_json()
        assert [c["box"] for c in got["crops"]] == [c["box"] for c in want["crops"]]
        np.testing.assert_allclose([c["score"] for c in got["crops"]], [c["score"] for c in want["crops"]], atol=1e-4)
    assert cropper.analyse_many([]) == []


def test_analyse_many_keeps_a_bad_image_to_its_own_place(cropper, photo):
    with pytest.raises(InvalidImage):
        cropper.analyse_many([photo, b"not an image"])
    good, bad, also_good = cropper.analyse_many([photo, b"not an image", photo[:300]], return_exceptions=True)
    assert isinstance(bad, InvalidImage)
    assert good.crops().to_json() == cropper.crop(photo).to_json()
    assert (also_good.width, also_good.height) == (640, 300)


def test_analyse_many_retries_one_by_one_when_the_batch_fails(cropper, photo, monkeypatch):
    """A forward pass that fails for the batch is retried per image; only the image that
    fails alone gets the error."""
    real = cropper.score_maps
    poison = photo[:200, :200].copy()

    def score_maps(prepared):
        if len(prepared) > 1 or prepared[0].width == 200:
            raise RuntimeError("out of memory")
        return real(prepared)

    monkeypatch.setattr(cropper, "score_maps", score_maps)
    first, second, third = cropper.analyse_many([photo, poison, photo], return_exceptions=True)
    assert isinstance(second, RuntimeError)
    assert first.crops().to_json() == third.crops().to_json()
    with pytest.raises(RuntimeError):
        cropper.analyse_many([photo, photo])


def test_anchor_scales_are_torch_linspace_to_the_last_bit():
    """The search is numpy; its float32 anchor sizes stay exactly those it always had
    (``torch.linspace``), so no crop moves by a rounding."""
    from asm.search.candidates import _scales

    for smallest in np.linspace(0.1, 0.99, 300):
        for n in (2, 3, 7, 8, 9):
            assert list(_scales(float(smallest), n)) == torch.linspace(1.0, float(smallest), n).tolist()
    assert _scales(0.5, 1) == (1.0,)


def test_crops_without_the_compiled_kernel_are_the_same(cropper, photo, monkeypatch):
    """A machine without a C compiler runs the pooling's numpy fallback: same crops."""
    import asm.ops.kernel

    options = CropOptions.parse(["16:9", "1:1", "free"], top_k=2)
    analysis = cropper.analyse(photo)
    with_kernel = analysis.crops(options).crops
    monkeypatch.setattr(asm.ops.kernel, "library", lambda: None)
    without = analysis.crops(options).crops
    assert [c.box for c in without] == [c.box for c in with_kernel]
    assert [c.score for c in without] == pytest.approx([c.score for c in with_kernel], rel=1e-12)
