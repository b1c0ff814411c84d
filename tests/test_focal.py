"""The content focal point (asm.search.focal): pure geometry, and from an analysis."""

import numpy as np
import pytest

from asm import CropOptions

from asm.search.focal import FOCAL_ASPECTS, FocalPoint, box_at, content_focal_point, fit_centre, focal_from_boxes


def test_box_at_is_the_largest_box_pushed_inside():
    assert box_at(400, 300, 1.0, 800, 600) == [100, 0, 700, 600]
    assert box_at(10, 300, 1.0, 800, 600) == [0, 0, 600, 600]  # pushed back from the left edge
    assert box_at(790, 300, 1.0, 800, 600) == [200, 0, 800, 600]
    x1, y1, x2, y2 = box_at(400, 590, 16 / 9, 800, 600)
    assert (x1, x2, y2) == (0, 800, 600) and y2 - y1 == pytest.approx(450)


def test_a_point_is_found_again_from_the_boxes_it_makes():
    W, H = 800, 600
    for x, y in [(400, 300), (250, 210), (620, 480)]:
        boxes = [box_at(x, y, r, W, H) for _, r in FOCAL_ASPECTS]
        fp = focal_from_boxes(boxes, W, H)
        # any point whose boxes are the same boxes is as good; they must be the same boxes
        assert np.allclose([box_at(fp.x, fp.y, r, W, H) for _, r in FOCAL_ASPECTS], boxes, atol=0.5)


def test_fit_centre_ignores_boxes_that_fill_the_axis_and_breaks_ties_towards_the_boxes():
    assert fit_centre([0, 0], [800, 800], 800) == 400  # no box has room: the middle
    # every box against the left edge: all centres up to 150 fit; the tie goes to the boxes' own centre
    assert fit_centre([0, 0], [300, 400], 800) == 150
    assert fit_centre([100], [400], 800) == 300


def test_to_json_in_pixels_and_normalised():
    assert FocalPoint(412.4, 233.0, 800, 600).to_json() == {"x": 412, "y": 233, "x_norm": 0.5155, "y_norm": 0.3883}
    assert focal_from_boxes([], 640, 480).to_json()["x_norm"] == 0.5


def test_content_focal_point_reproduces_the_croppers_largest_boxes(cropper):
    rng = np.random.default_rng(0)
    analysis = cropper.analyse(rng.integers(0, 255, (300, 500, 3), dtype=np.uint8))
    fp = content_focal_point(analysis, CropOptions.parse(faces=False, top_k=3, min_scale=0.5))
    assert 0 <= fp.x <= 500 and 0 <= fp.y <= 300 and (fp.width, fp.height) == (500, 300)
    crops = analysis.crops(aspect=[a for a, _ in FOCAL_ASPECTS], faces=False, min_scale=1.0).crops
    assert fp == focal_from_boxes([c.box for c in crops], 500, 300)


def test_one_call_gives_the_crops_and_the_focal_point(cropper):
    """What every shell asks: the crops of the request and the focal point, in one result."""
    from asm import CropOptions, CropResult

    rng = np.random.default_rng(3)
    img = (rng.random((300, 500, 3)) * 255).astype(np.uint8)
    analysis = cropper.analyse(img)
    options = CropOptions.parse("16:9", faces=False, focus=(100, 80))
    result = analysis.crops(options, focal_point=True)
    assert result.focal_point == content_focal_point(analysis, options)
    assert result.crops == analysis.crops(options).crops and analysis.crops(options).focal_point is None
    assert result.to_json()["focal_point"] == result.focal_point.to_json()
    assert CropResult.from_json(result.to_json()).to_json() == result.to_json()
