"""The crop search (paper §3.3): the best boxes of each requested aspect on one image's score
map, in two stages (coarse anchors, then a fine search around the best), each scored in one
call of the :class:`~asm.search.scorer.Scorer`.

Faces, keep-regions and the focus point (:mod:`asm.search.constraints`) add candidates fitted
around them and terms to each candidate's score.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from asm.errors import InvalidOption
from asm.options import CropOptions
from asm.results import Crop, CropResult
from asm.search.candidates import (box_iou, coarse_candidates, first_rows, iter_nms, nms, refine_candidates, snap_box,
                                   unique_boxes)
from asm.search.constraints import Wishes, smallest_side_share
from asm.search.faces import detect_faces, prominence
from asm.search.framing import FRAMING_WEIGHT, framing_prior, free_ratios, shape_bias
from asm.search.placement import settle
from asm.search.scorer import Scorer

if TYPE_CHECKING:
    from asm.prepare import Prepared

__all__ = ["search", "image_wishes", "REFINE_SEEDS"]

#: The second stage refines this many of the best coarse candidates of each aspect (kept
#: apart by suppression) per crop asked for, up to two crops, or 3 per crop when more (the
#: measurement behind 5: benchmarks/results/settings.md).
REFINE_SEEDS = 5


def image_wishes(prepared: Prepared, options: CropOptions) -> tuple[Wishes, np.ndarray]:
    """Faces (detected unless ``options.faces`` is off; ``[F, 5]`` as
    :func:`asm.search.faces.detect_faces` gives them), keep-regions and focus point of one
    image, checked against its size (:class:`~asm.errors.InvalidOption` if outside)."""
    W, H = prepared.width, prepared.height
    for i, (x1, y1, x2, y2) in enumerate(options.keep):
        if x2 > W or y2 > H:
            raise InvalidOption(f"keep box {i} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] lies outside the {W}x{H} image")
    if options.focus is not None and not (options.focus[0] <= W and options.focus[1] <= H):
        raise InvalidOption(f"focus [{options.focus[0]:g}, {options.focus[1]:g}] lies outside the {W}x{H} image")
    if options.faces and prepared.faces is None:  # detected once per image, whatever is asked of it
        prepared.faces = detect_faces(prepared.preview, size=(W, H))
    faces = prepared.faces if options.faces else np.zeros((0, 5))
    return Wishes(W, H, faces[:, :4].copy(), prominence(faces),
                  np.array(options.keep, dtype=np.float64).reshape(-1, 4), options.focus), faces


def search(scorer: Scorer, prepared: Prepared, options: CropOptions) -> CropResult:
    """Two-stage search (coarse anchors, then a fine search around the best) for every
    aspect in ``options``, each stage scored in one call of the pooling op.

    Faces, keep-regions and the focus point (:mod:`asm.search.constraints`) add candidates
    fitted around them and terms to each candidate's score: first no keep-region left
    out and no face that matters cut through wherever some candidate manages it, then no
    face left out that the model's own best crop of the aspect reaches into, then the
    model's score plus the faces held whole (by prominence), the pull of the focus point and,
    for free aspects, how people frame (:mod:`asm.search.framing`). Each fixed-aspect crop
    returned is then drawn part of the way back to the image centre
    (:mod:`asm.search.placement`), as far as that cuts no face and drops no keep-region.
    """
    W, H = prepared.width, prepared.height
    wishes, faces = image_wishes(prepared, options)
    ratios, owner = [], []  # candidate ratio -> index of the requested aspect
    for a, aspect in enumerate(options.aspects):
        for r in [aspect.ratio] if aspect.ratio is not None else free_ratios(W, H):
            ratios.append(r)
            owner.append(a)
    is_free = np.array([a.free for a in options.aspects])
    # fixed aspects from the largest box down to min_scale; free shapes at their own sizes
    parts = []
    for free, min_scale in ((False, options.min_scale), (True, None)):
        which = np.array([i for i, o in enumerate(owner) if is_free[o] == free], dtype=np.int64)
        if len(which):
            b, g = coarse_candidates([ratios[i] for i in which], W, H, min_scale=min_scale)
            parts.append((b, which[g]))
    boxes, group = np.concatenate([b for b, _ in parts]), np.concatenate([g for _, g in parts])
    aspect_of = np.array(owner)[group]
    if not wishes.empty:  # fitted copies keep the aspect (and so the owner) of their anchor
        boxes, source = wishes.variants(boxes)
        aspect_of = aspect_of[source]
    boxes, aspect_of, scores, spread = _score(scorer, boxes, aspect_of, wishes, options.circular)
    wishes = wishes.agreeing(boxes, aspect_of, scores, len(options.aspects))  # the faces the model's own crops reach
    objective = _objective(wishes, boxes, aspect_of, scores, spread, is_free, scorer)

    # stage 2: refine the best few (kept diverse) of each aspect, all in one call
    n_seeds = max(REFINE_SEEDS * min(options.top_k, 2), 3 * options.top_k)
    seeds = [np.flatnonzero(aspect_of == a) for a in range(len(options.aspects))]
    # (suppression in float32, as the search always ranked its seeds)
    seeds = [s[nms(boxes[s].astype(np.float32), objective[s].astype(np.float32), 0.7, n_seeds)] for s in seeds]
    seed_idx = np.concatenate(seeds)
    fine, from_seed = refine_candidates(boxes[seed_idx], is_free[aspect_of[seed_idx]], W, H)
    fine, fine_aspects, fine_scores, _ = _score(scorer, wishes.project(fine), aspect_of[seed_idx][from_seed], wishes,
                                                options.circular, spread)
    fine_objective = _objective(wishes, fine, fine_aspects, fine_scores, spread, is_free, scorer)
    all_boxes = np.concatenate([boxes, fine])
    all_objective = np.concatenate([objective, fine_objective])
    all_aspects = np.concatenate([aspect_of, fine_aspects])
    all_ratios = (all_boxes[:, 2] - all_boxes[:, 0]) / (all_boxes[:, 3] - all_boxes[:, 1])
    too_small = (smallest_side_share(all_boxes, all_ratios, W, H) < options.min_scale - 0.01) & ~is_free[all_aspects]
    all_objective[too_small] = -float("inf")  # refinement shrank them past the zoom limit (fixed aspects)

    # the best top_k of each aspect, kept apart by non-maximum suppression on the pixel
    # boxes actually returned (snapping moves boxes; equal boxes are never returned twice)
    picked: list[tuple[int, list[int]]] = []
    short: list[str] = []  # aspects with fewer than top_k distinct crops
    for a, aspect in enumerate(options.aspects):
        sel = np.flatnonzero((all_aspects == a) & ~too_small)
        places = all_boxes[sel]
        objective_sel = all_objective[sel].astype(np.float32)  # (suppression in float32, as the search always ranked)
        best = int(np.argmax(objective_sel)) if len(sel) else 0  # what suppression keeps first
        if not aspect.free and len(sel):  # the best place settles before it suppresses others
            places = places.copy()
            places[best] = _settled(snap_box(places[best].tolist(), aspect.ratio, W, H), a, wishes)
        kept: list[list[int]] = []
        for j in iter_nms(places.astype(np.float32), objective_sel, options.nms_iou):
            box = snap_box(places[j].tolist(), aspect.ratio, W, H)
            if not aspect.free and j != best:  # settled too, unless that repeats a crop kept
                moved = _settled(box, a, wishes)
                box = box if kept and _repeats(moved, kept, options.nms_iou, False) else moved
            if not kept or (box not in kept and not _repeats(box, kept, options.nms_iou, aspect.free)):
                kept.append(box)
                if len(kept) == options.top_k:
                    break
        picked += [(a, b) for b in kept]
        if len(kept) < options.top_k:
            short.append(f"only {len(kept)} distinct free crop(s) of this image" if aspect.free else
                         f"only {len(kept)} distinct {aspect.label} crop(s) of this image at min_scale {options.min_scale:g} "
                         "(the largest box has little room to move); a lower min_scale gives more")
    picked_boxes = np.array([b for _, b in picked], dtype=np.float64).reshape(-1, 4)
    picked_aspects = np.array([a for a, _ in picked], dtype=np.int64)
    final_scores = _objective(wishes, picked_boxes, picked_aspects, scorer.score(picked_boxes, W, H, options.circular),
                              spread, is_free, scorer, hard=False)  # what each crop is returned with
    rank = (final_scores + wishes.hard(picked_boxes, picked_aspects)).tolist()
    final = final_scores.tolist()
    shape = "circle" if options.circular else "rect"
    crops = []
    for (a, b), s in zip(picked, final):
        faces_kept, keep_kept = wishes.kept(b)
        crops.append(Crop(b, float(s), options.aspects[a].label, shape,
                          faces_kept if options.faces else None, keep_kept if options.keep else None))
    order = sorted(range(len(crops)), key=lambda j: (picked[j][0], -rank[j]))  # best first per aspect
    return CropResult(W, H, [crops[j] for j in order], faces.tolist() if options.faces else None,
                      _warnings(wishes, options, ratios, owner) + short)


def _settled(box: list[int], aspect: int, wishes: Wishes) -> list[int]:
    """A fixed-aspect crop ``box`` of the requested aspect ``aspect``, drawn part of the way back
    to the image centre (:func:`asm.search.placement.settle`)."""
    return settle(box, wishes.width, wishes.height, lambda b: wishes.hard(b, np.full(len(b), aspect)))


def _score(scorer: Scorer, boxes: np.ndarray, aspect_of: np.ndarray, wishes: Wishes, circular: bool,
           spread: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The model's scores of candidates ``boxes [N, 4]`` of the aspects ``aspect_of [N]``, each
    distinct box scored once (candidates repeat: equal aspects, boxes pushed against the
    image's edges or fitted around the same face).

    Returns the first row of each distinct (aspect, box) pair, in order (a repeat changes
    no search result: suppression drops it): ``boxes [M, 4]``, ``aspect_of [M]``,
    ``scores [M]``; and the spread (standard deviation) of the scores of all N rows, which
    sets the scale of the soft terms (``spread`` when given).
    """
    distinct, inverse = unique_boxes(boxes)
    scores = scorer.score(distinct, wishes.width, wishes.height, circular)
    if spread is None:
        spread = float(scores[inverse].std(ddof=1)) if len(inverse) > 1 else 1.0
    if len(distinct) == len(boxes):  # no repeats (one fixed aspect, no faces)
        rows = np.arange(len(boxes))
    else:
        rows = first_rows(aspect_of * len(distinct) + inverse)
    return boxes[rows], aspect_of[rows], scores[inverse[rows]], spread


def _objective(wishes: Wishes, boxes: np.ndarray, aspect_of: np.ndarray, scores: np.ndarray, spread: float,
               is_free: np.ndarray, scorer: Scorer, hard: bool = True) -> np.ndarray:
    """What the search maximises over ``boxes [N, 4]``: the hard terms (keep-regions, faces that
    matter cut or left out) dominate; then the model's ``scores [N]``, the soft terms and, for
    free aspects, how people frame. ``hard=False``: without the hard terms, the score a crop is
    returned with."""
    framing = _framing(boxes, aspect_of, is_free, wishes.width, wishes.height, spread, scorer)
    if wishes.empty:
        return scores + framing
    total = scores + wishes.soft(boxes, spread)
    if hard:
        total = total + wishes.hard(boxes, aspect_of)
    return total + framing


def _framing(boxes: np.ndarray, aspect_of: np.ndarray, is_free: np.ndarray, width: int, height: int,
             spread: float, scorer: Scorer) -> np.ndarray:
    """``[N]``: for boxes of a free aspect, how people frame (:func:`asm.search.framing.framing_prior`)
    minus the model's shape bias (:func:`asm.search.framing.shape_bias`, where fitted), in units of
    ``spread``; 0 for fixed aspects."""
    free = is_free[aspect_of]
    out = np.zeros(len(boxes), dtype=np.float64)
    if free.any():
        bias = scorer.shape_bias
        weight = FRAMING_WEIGHT if bias is None else bias.weight
        out[free] = spread * weight * framing_prior(boxes[free], width, height)
        if bias is not None:
            out[free] -= spread * shape_bias(boxes[free], width, height, bias)
    return out


def _repeats(box: list[int], kept: list[list[int]], nms_iou: float, free: bool) -> bool:
    """Whether ``box`` repeats a crop already ``kept``: it overlaps one by more than ``nms_iou``
    (IoU) or, for a free aspect, has nearly its shape (aspect within 10 %) and overlaps it by
    more than ``nms_iou / 2``; so top-k free crops differ in shape as well as place."""
    iou = box_iou(np.array([box], dtype=np.float64), np.array(kept, dtype=np.float64))[0]
    if float(iou.max()) > nms_iou:
        return True
    if not free:
        return False
    k = np.array(kept, dtype=np.float64)
    same_shape = np.abs(np.log(((box[2] - box[0]) / (box[3] - box[1])) / ((k[:, 2] - k[:, 0]) / (k[:, 3] - k[:, 1])))) < 0.1
    return bool((same_shape & (iou > nms_iou / 2)).any())


def _warnings(wishes: Wishes, options: CropOptions, ratios: list[float], owner: list[int]) -> list[str]:
    """One sentence per aspect whose crop cannot hold every keep-region and the focus point."""
    if len(wishes.required) == 0:
        return []
    fit = wishes.required_fits(np.array(ratios, dtype=np.float64))
    out = []
    for a, aspect in enumerate(options.aspects):
        if not any(bool(fit[i]) for i, o in enumerate(owner) if o == a):
            out.append(f"the keep-regions and focus point do not fit together in a {aspect.label} crop of this "
                       "image; the crop holds as much of them as it can")
    return out
