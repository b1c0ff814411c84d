"""asm.viz: labels on the overview picture."""

import numpy as np

from asm.results import Crop
from asm.viz import _overlap, draw_crops, label_boxes


def test_labels_of_crops_sharing_a_corner_do_not_overlap():
    """Full-height crops all start at y=0 (a common result): their labels used to sit on each other."""
    crops = [Crop([x, 0, x + 300, 400], 0.5, a) for x, a in ((0, "16:9"), (10, "1:1"), (20, "free"), (0, "4:3"))]
    labels = [f"#{i + 1} {c.aspect} {c.score:.2f}" for i, c in enumerate(crops)]
    boxes = label_boxes(crops, labels, 640, 400, 2, 0.57)
    for i in range(len(boxes)):
        assert 0 <= boxes[i][0] and 0 <= boxes[i][1] and boxes[i][2] <= 640 and boxes[i][3] <= 400
        for j in range(i):
            assert not _overlap(boxes[i], boxes[j]), (boxes[i], boxes[j])
    out = draw_crops(np.zeros((400, 640, 3), np.uint8), crops)
    assert out.shape == (400, 640, 3) and out.any()


def test_labels_of_ones_own_replace_the_default_ones():
    """``labels`` (the eval sheet's aspect names) are what is written: a shorter label paints
    a narrower tag, in the crop's own colour."""
    from asm.viz import PALETTE

    crops = [Crop([20, 20, 300, 200], 0.5, "16:9")]
    image = np.zeros((240, 320, 3), np.uint8)
    default, own = draw_crops(image, crops), draw_crops(image, crops, labels=["16:9"])
    tag = lambda out: int((out[:60] == PALETTE[0]).all(-1).sum())  # noqa: E731 - filled label + outline pixels
    assert tag(own) < tag(default)
    assert not np.array_equal(own, default)
