"""Metrics against hand-computed values and the real GAICD annotation of 302166.jpg."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asm.data.cropping import GAICD
from asm.data.shared import shared_dir
from asm.evaluation.metrics import (
    boundary_displacement,
    gaicd_acc,
    gaicd_evaluate,
    iou,
    rankdata,
    srcc,
)
from asm.geometry import fixations_kept

SHARED = shared_dir()
needs_shared = pytest.mark.skipif(
    SHARED is None,
    reason="shared data folder not found: set ASM_SHARED or place it at <repo>/../shared",
)


# --------------------------------------------------------------------------------------
# SRCC
# --------------------------------------------------------------------------------------
def test_rankdata_ties_averaged():
    assert rankdata([10, 20, 20, 30]).tolist() == [1, 2.5, 2.5, 4]
    assert rankdata([3, 1, 2]).tolist() == [3, 1, 2]
    assert rankdata([5, 5, 5]).tolist() == [2, 2, 2]


def test_srcc_hand_values():
    # rank differences d = (0, 1, 1, 0): rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8
    assert srcc([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert srcc([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert srcc(torch.tensor([1.0, 2.0, 3.0]), np.array([3, 2, 1])) == pytest.approx(-1.0)
    # ties: ranks (1.5, 1.5, 3) vs (1, 2, 3) -> Pearson of the ranks = sqrt(3)/2
    assert srcc([1, 1, 2], [1, 2, 3]) == pytest.approx(np.sqrt(3) / 2)
    assert np.isnan(srcc([1, 1, 1], [1, 2, 3]))
    assert np.isnan(srcc([1], [1]))


def test_srcc_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 6, 40).astype(float)  # many ties
    b = a + rng.normal(0, 2, 40)
    assert srcc(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


# --------------------------------------------------------------------------------------
# GAICD accuracy
# --------------------------------------------------------------------------------------
def test_gaicd_acc_hand_values():
    gt = np.arange(12, 0, -1, dtype=float)  # crop i has GT rank i (0 best)
    pred = np.zeros(12)
    # predicted order: crops 0, 6, 2, 11, then the rest
    for rank, crop in enumerate([0, 6, 2, 11]):
        pred[crop] = 10 - rank
    a = gaicd_acc(pred, gt)
    # top-5 GT = crops 0..4: hits 1, 0, 1, 0 -> Acc1/5..Acc4/5 = 100, 50, 66.7, 50
    assert [a[f"Acc{k}/5"] for k in (1, 2, 3, 4)] == pytest.approx([100, 50, 200 / 3, 50])
    assert a["Acc5"] == pytest.approx((100 + 50 + 200 / 3 + 50) / 4)
    # top-10 GT = crops 0..9: hits 1, 1, 1, 0 -> 100, 100, 100, 75
    assert [a[f"Acc{k}/10"] for k in (1, 2, 3, 4)] == pytest.approx([100, 100, 100, 75])
    assert a["Acc10"] == pytest.approx(93.75)


def test_gaicd_acc_ties_at_the_threshold_count():
    # GT scores with a tie across the 5th place: crops 4 and 5 both have the 5th-best score
    gt = np.array([9, 8, 7, 6, 5, 5, 1, 1, 1, 1, 1, 0], dtype=float)
    pred = np.zeros(12)
    pred[5] = 1.0  # the predicted best is crop 5, tied at the 5th place -> a hit
    assert gaicd_acc(pred, gt)["Acc1/5"] == 100.0
    # fewer than 10 crops: every crop is in the "top 10"
    small = gaicd_acc([3, 2, 1, 0, -1, -2], [0, 1, 2, 3, 4, 5])
    assert small["Acc10"] == 100.0 and small["Acc1/5"] == 0.0


@needs_shared
def test_gaicd_metrics_on_real_annotation():
    item = GAICD(split="test").annotation("302166.jpg")
    gt = item.scores.numpy()
    assert len(gt) == 87
    perfect = gaicd_acc(gt, gt)
    assert all(v == 100.0 for v in perfect.values())
    assert srcc(gt, gt) == pytest.approx(1.0)
    assert srcc(-gt, gt) == pytest.approx(-1.0)
    reverse = gaicd_acc(-gt, gt)
    assert all(v == 0.0 for v in reverse.values())
    # a monotone transform of the truth is as good as the truth
    assert gaicd_acc(np.exp(gt), gt) == perfect
    ev = gaicd_evaluate([gt, -gt], [gt, gt])
    assert ev["SRCC"] == pytest.approx(0.0, abs=1e-12) and ev["Acc5"] == 50.0 and ev["images"] == 2


def test_gaicd_evaluate_skips_nan_srcc():
    ev = gaicd_evaluate([[1, 1, 1, 1, 1], [1, 2, 3, 4, 5]], [[5, 4, 3, 2, 1], [1, 2, 3, 4, 5]])
    assert ev["SRCC"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        gaicd_evaluate([], [])


# --------------------------------------------------------------------------------------
# Boxes, pairs, fixations
# --------------------------------------------------------------------------------------
def test_iou_hand_values():
    assert iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)  # inter 1, union 4 + 4 - 1
    assert iou([0, 0, 2, 2], [0, 0, 2, 2]) == 1.0
    assert iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0
    assert iou([0, 0, 4, 2], [2, 0, 6, 2]) == pytest.approx(4 / 12)
    assert iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
    many = iou(np.array([[0, 0, 2, 2], [1, 1, 3, 3]]), [0, 0, 2, 2])
    assert many.tolist() == pytest.approx([1.0, 1 / 7])


def test_boundary_displacement_hand_value():
    # |dx1| = 1, |dx2| = 1 over W = 20; |dy1| = 2, |dy2| = 2 over H = 40 -> mean(0.05 x 4)
    assert boundary_displacement([0, 0, 10, 10], [1, 2, 9, 8], 20, 40) == pytest.approx(0.05)
    assert boundary_displacement([0, 0, 10, 10], [0, 0, 10, 10], 20, 40) == 0.0
    assert boundary_displacement([0, 0, 20, 40], [10, 0, 20, 20], 20, 40) == pytest.approx((0.5 + 0.5) / 4)
    with pytest.raises(ValueError):
        boundary_displacement([0, 0, 1, 1], [0, 0, 1, 1], 0, 10)


def test_fixations_kept_box():
    pts = np.array([[1, 1], [5, 5], [9, 9], [2, 8]], dtype=float)
    assert fixations_kept([0, 0, 6, 6], pts) == 0.5
    assert fixations_kept([0, 0, 10, 10], pts) == 1.0
    assert fixations_kept([0, 0, 5, 5], pts) == 0.5  # edges count
    assert np.isnan(fixations_kept([0, 0, 1, 1], np.zeros((0, 2))))


@needs_shared
def test_fixations_kept_on_osie():
    from asm.data.fixations import OSIE

    item = OSIE(split="val")[0]
    H, W = item.size
    assert fixations_kept([0, 0, W, H], item.points) == 1.0
    centre = fixations_kept([W / 4, H / 4, 3 * W / 4, 3 * H / 4], item.points)
    assert 0.0 < centre < 1.0


# ---------------------------------------------------------------- saliency and retention
from asm.evaluation.metrics import auc_all_pixels, nss, placement_offset  # noqa: E402
from asm.geometry import density_kept  # noqa: E402


def test_nss_and_auc_by_hand():
    m = np.zeros((10, 10))
    m[2, 3] = 1.0
    # one hot pixel: std = sqrt(0.01 * 0.99), standardised value (1 - 0.01) / std
    assert nss(m, [[3.5, 2.5]]) == pytest.approx(0.99 / np.sqrt(0.0099))
    assert auc_all_pixels(m, [[3.5, 2.5]]) == pytest.approx((99 + 0.5) / 100)
    assert auc_all_pixels(m, [[0.5, 0.5]]) == pytest.approx(0.5 * 99 / 100)  # tied with 99 pixels
    assert np.isnan(nss(np.ones((4, 4)), [[1, 1]])) and np.isnan(auc_all_pixels(m, np.zeros((0, 2))))


def test_density_kept_is_exact_for_fractional_boxes():
    d = np.zeros((4, 4))
    d[1, 1] = 3.0
    d[2, 3] = 1.0
    kept = density_kept(d, [[1, 1, 2, 2], [0, 0, 4, 4], [1.5, 1, 2, 2], [2, 2, 4, 3]])
    assert kept == pytest.approx([0.75, 1.0, 0.375, 0.25])


def test_map_rows_scale_boxes_into_map_cells_for_numpy_and_torch():
    from asm.geometry import map_rows

    boxes = np.array([[0.0, 0.0, 640.0, 480.0], [160.0, 120.0, 320.0, 240.0]])
    rows = map_rows(boxes, (640, 480), (80, 60), batch=3)
    np.testing.assert_array_equal(rows, [[3, 0, 0, 80, 60], [3, 20, 15, 40, 30]])
    t = map_rows(torch.from_numpy(boxes).float(), (640, 480), (80, 60), batch=3)
    assert t.dtype == torch.float32 and t.tolist() == rows.tolist()


def test_placement_offset_by_hand():
    assert placement_offset([0, 0, 600, 600], 800, 600) == -1.0
    assert placement_offset([200, 0, 800, 600], 800, 600) == 1.0
    assert placement_offset([150, 0, 750, 600], 800, 600) == pytest.approx(0.5)
    assert placement_offset([0, 30, 800, 480], 800, 600) == pytest.approx(-0.6)  # room along y only
    assert np.isnan(placement_offset([0, 0, 800, 600], 800, 600))
