"""Geometry of the user's and the detector's wishes: faces, keep-regions, a focus point, zoom.

Pure numpy functions on ``[N, 4]`` float64 boxes ``(x1, y1, x2, y2)`` in image pixels (the same
frame as :mod:`asm.search.candidates`). :func:`asm.search.search.search` uses them to

* move and grow candidate crops so they hold what must stay inside (:func:`fit_around`),
* tell which regions a crop keeps whole (:func:`contains`) or cuts through (:func:`cuts`),
* hold whole the faces the model's own best crop reaches into (:meth:`Wishes.agreeing`),
* pull crops towards a focus point (:func:`focus_prior`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "Wishes",
    "contains",
    "cuts",
    "union_box",
    "fits",
    "fit_around",
    "clear_of",
    "pad_boxes",
    "focus_prior",
    "smallest_side_share",
    "face_matters",
    "cuts_faces_that_matter",
]

#: Faces are padded by this share of their size on every side (hair, chin) before a crop
#: is asked to hold them with room around them.
FACE_PAD = 0.15
#: Objective terms. Hard: a keep-region left out (per share of its area) and a face that
#: matters cut through cost far more than any score difference, so the search first minimises them.
KEEP_COST = 1e8
CUT_COST = 1e5
#: A face that matters and that the model's own best crop of an aspect reaches into (the score
#: map and the detector agree on it), left out of a crop of that aspect: less than a cut, more
#: than any score difference. So a cut is mended by taking the face in, not by leaving it out.
HOLD_COST = 1e3
#: A face *matters* to a crop when its area is at least this share of the crop's area (a head
#: about a tenth of the crop's side)...
MATTER_SHARE = 0.01
#: ...times ``sqrt(faces / CROWD)`` when more than ``CROWD`` faces were found: in a crowd the
#: crop follows the content, and only its larger faces must stay whole.
CROWD = 4
#: Soft, in units of the spread of the image's crop scores: a face held whole (with its
#: padding) adds ``FACE_GAIN`` times its prominence, so a face is held where the score map
#: nearly agrees, never for its size alone; the focus pull is ``FOCUS_GAIN`` times
#: :func:`focus_prior`. (The values were chosen on the fixation sets' training photos:
#: benchmarks/results/face_rule.md.)
FACE_GAIN = 0.25
FOCUS_GAIN = 0.5
#: Candidates are also fitted around the 1, 2, ... most prominent faces, up to this many.
MAX_FACE_SETS = 3
#: A region counts as inside a crop when it sticks out by at most this many pixels (snapping to whole pixels).
TOLERANCE = 1.0


def contains(boxes: np.ndarray, regions: np.ndarray, tol: float = TOLERANCE) -> np.ndarray:
    """``[N, M]`` bool: region ``m`` lies wholly inside box ``n`` (``boxes [N, 4]``, ``regions [M, 4]``)."""
    b, r = boxes[:, None, :], regions[None, :, :]
    return ((r[..., 0] >= b[..., 0] - tol) & (r[..., 1] >= b[..., 1] - tol)
            & (r[..., 2] <= b[..., 2] + tol) & (r[..., 3] <= b[..., 3] + tol))


def cuts(boxes: np.ndarray, regions: np.ndarray, tol: float = TOLERANCE, inside: np.ndarray | None = None) -> np.ndarray:
    """``[N, M]`` bool: box ``n`` overlaps region ``m`` without holding it whole (its edge
    runs through the region); ``inside``: :func:`contains` of the same boxes and regions, if known."""
    b, r = boxes[:, None, :], regions[None, :, :]
    overlap_w = np.minimum(b[..., 2], r[..., 2]) - np.maximum(b[..., 0], r[..., 0])
    overlap_h = np.minimum(b[..., 3], r[..., 3]) - np.maximum(b[..., 1], r[..., 1])
    return (overlap_w > tol) & (overlap_h > tol) & ~(contains(boxes, regions, tol) if inside is None else inside)


def union_box(regions: np.ndarray) -> np.ndarray:
    """The smallest box ``[4]`` holding every region of ``regions [M, 4]`` (M >= 1)."""
    return np.concatenate([regions[:, :2].min(axis=0), regions[:, 2:].max(axis=0)])


def fits(region: np.ndarray, ratios: np.ndarray, width: int, height: int) -> np.ndarray:
    """``[N]`` bool: some crop of each of ``ratios [N]`` (width / height) inside the image
    holds ``region [4]``."""
    largest_w = np.minimum(float(width), height * ratios)
    return (region[2] - region[0] <= largest_w + TOLERANCE) & (region[3] - region[1] <= largest_w / ratios + TOLERANCE)


def fit_around(boxes: np.ndarray, region: np.ndarray, width: int, height: int) -> np.ndarray:
    """Each of ``boxes [N, 4]`` moved as little as possible, and grown about its centre
    (same aspect) where it is too small, so that it holds ``region [4]`` and stays inside
    the ``width x height`` image. Returns ``[N, 4]``.

    The region must :func:`fit` every box's aspect; a box of an aspect it does not fit is
    grown to the largest box of that aspect and placed as close as it can get.
    """
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    rw, rh = region[2] - region[0], region[3] - region[1]
    grow = np.maximum(1.0, np.maximum(rw / w, rh / h))
    grow = np.minimum(grow, np.minimum(width / w, height / h))  # never past the image
    w, h = w * grow, h * grow
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    x1, y1 = cx - w / 2, cy - h / 2
    # the region's edges bound where x1 may lie: region.x2 - w <= x1 <= region.x1
    x1 = np.minimum(np.maximum(x1, region[2] - w), region[0])
    y1 = np.minimum(np.maximum(y1, region[3] - h), region[1])
    x1 = np.minimum(np.maximum(x1, 0), width - w)
    y1 = np.minimum(np.maximum(y1, 0), height - h)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


def clear_of(boxes: np.ndarray, region: np.ndarray, width: int, height: int) -> np.ndarray:
    """Each of ``boxes [N, 4]`` shifted just clear of ``region [4]``: so that it ends left
    of it, starts right of it, ends above it and starts below it (clamped to the image).
    Returns ``[4 * N, 4]`` in that order."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    x1 = np.stack([region[0] - w, np.broadcast_to(region[2], w.shape), boxes[:, 0], boxes[:, 0]])
    y1 = np.stack([boxes[:, 1], boxes[:, 1], region[1] - h, np.broadcast_to(region[3], h.shape)])
    x1 = np.minimum(np.maximum(x1, 0), width - w)
    y1 = np.minimum(np.maximum(y1, 0), height - h)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=-1).reshape(-1, 4)


def pad_boxes(regions: np.ndarray, share: float, width: int, height: int) -> np.ndarray:
    """``regions [M, 4]`` grown by ``share`` of their size on every side, clipped to the image."""
    w, h = regions[:, 2] - regions[:, 0], regions[:, 3] - regions[:, 1]
    pad = np.stack([-w, -h, w, h], axis=1) * share
    out = regions + pad
    return np.stack([np.clip(out[:, 0], 0, width), np.clip(out[:, 1], 0, height),
                     np.clip(out[:, 2], 0, width), np.clip(out[:, 3], 0, height)], axis=1)


def focus_prior(boxes: np.ndarray, point: tuple[float, float], sigma: float = 0.25) -> np.ndarray:
    """Log Gaussian of the offset between each crop's centre and ``point (x, y)``, in units
    of ``sigma`` times the crop's own width and height: ``boxes [N, 4]`` -> ``[N]``, 0 for a
    crop centred on the point, -2 for one whose edge runs through it."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    dx = ((boxes[:, 0] + boxes[:, 2]) / 2 - point[0]) / (sigma * w)
    dy = ((boxes[:, 1] + boxes[:, 3]) / 2 - point[1]) / (sigma * h)
    return -0.5 * (dx * dx + dy * dy)


def smallest_side_share(boxes: np.ndarray, ratios: np.ndarray, width: int, height: int) -> np.ndarray:
    """Each box's width as a share of the width of the largest box of its ratio ``[N]``
    (the zoom level :attr:`asm.options.CropOptions.min_scale` bounds)."""
    largest_w = np.minimum(float(width), height * ratios)
    return (boxes[:, 2] - boxes[:, 0]) / largest_w


@dataclass
class Wishes:
    """What a crop should hold, for one image: detected faces, the user's keep-regions and
    focus point. Boxes ``[M, 4]`` float64 in image pixels."""

    width: int
    height: int
    faces: np.ndarray  # [F, 4] as detected, most prominent first
    weight: np.ndarray  # [F] prominence in (0, 1] (asm.search.faces.prominence)
    keep: np.ndarray  # [K, 4] the user's keep-regions
    focus: tuple[float, float] | None = None
    #: per requested aspect, the indices of the faces a crop of it should hold (:meth:`agreeing`)
    hold: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        self.padded = pad_boxes(self.faces, FACE_PAD, self.width, self.height)
        point = [] if self.focus is None else [[*self.focus, *self.focus]]
        #: [R, 4] what every crop must hold: the keep-regions and the focus point
        self.required = np.concatenate([self.keep, np.array(point, dtype=np.float64).reshape(-1, 4)])

    @property
    def empty(self) -> bool:
        return len(self.faces) == 0 and len(self.required) == 0

    def required_fits(self, ratios: np.ndarray) -> np.ndarray:
        """``[N]`` bool: a crop of each ratio can hold every required region at once."""
        if len(self.required) == 0:
            return np.ones(ratios.shape, dtype=bool)
        return fits(union_box(self.required), ratios, self.width, self.height)

    def variants(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``boxes [N, 4]`` moved onto the required regions (where their aspect allows),
        followed by copies fitted around the required regions plus the 1, 2, ... most
        prominent padded faces (where those fit). Returns ``[N', 4]`` (N' >= N) and the
        index of the box each came from ``[N']``."""
        ratios = (boxes[:, 2] - boxes[:, 0]) / (boxes[:, 3] - boxes[:, 1])
        out, source = [self.project(boxes)], [np.arange(boxes.shape[0])]
        for k in range(1, min(len(self.faces), MAX_FACE_SETS) + 1):
            region = union_box(np.concatenate([self.required, self.padded[:k]]))
            ok = fits(region, ratios, self.width, self.height)
            if ok.any():
                out.append(fit_around(boxes[ok], region, self.width, self.height))
                source.append(np.flatnonzero(ok))
        for face in self.faces[:MAX_FACE_SETS]:  # boxes that cut a face, moved clear of it
            hit = np.flatnonzero(cuts(out[0], face[None])[:, 0])
            if len(hit):
                moved = self.project(clear_of(out[0][hit], face, self.width, self.height))
                out.append(moved)
                source.append(np.tile(hit, 4))
        return np.concatenate(out), np.concatenate(source)

    def project(self, boxes: np.ndarray) -> np.ndarray:
        """``boxes [N, 4]`` moved (grown where needed) to hold the required regions, where
        their aspect can."""
        if len(self.required) == 0:
            return boxes
        ratios = (boxes[:, 2] - boxes[:, 0]) / (boxes[:, 3] - boxes[:, 1])
        ok = self.required_fits(ratios)
        out = boxes.copy()
        out[ok] = fit_around(boxes[ok], union_box(self.required), self.width, self.height)
        return out

    def agreeing(self, boxes: np.ndarray, aspect_of: np.ndarray, scores: np.ndarray, n_aspects: int) -> Wishes:
        """These wishes plus, for each aspect, the faces to hold: those that matter to the
        best-scoring of ``boxes [N, 4]`` of that aspect (``aspect_of [N]``, model ``scores [N]``)
        and that it reaches into. Where the model's own crop runs through or around a face,
        the crop should take the face whole; a face it leaves alone may stay out."""
        if len(self.faces) == 0:
            return self
        hold = []
        for a in range(n_aspects):
            rows = np.flatnonzero(aspect_of == a)
            if len(rows) == 0:
                hold.append(np.zeros(0, dtype=np.int64))
                continue
            best = boxes[rows[np.argmax(scores[rows])]][None]
            reached = (cuts(best, self.faces) | contains(best, self.faces)) & face_matters(best, self.faces)
            hold.append(np.flatnonzero(reached[0]))
        return replace(self, hold=tuple(hold))

    def hard(self, boxes: np.ndarray, aspect_of: np.ndarray | None = None) -> np.ndarray:
        """``[N]`` <= 0: minus the cost of required regions left out (by area share), of
        faces that matter cut through (:func:`cuts_faces_that_matter`) and, for boxes of the
        aspects ``aspect_of [N]``, of the faces to hold (:meth:`agreeing`) left out."""
        cost = np.zeros(boxes.shape[0], dtype=np.float64)
        if len(self.required):
            cost += KEEP_COST * _outside_share(boxes, self.required).sum(axis=1)
        if len(self.faces):
            cost += CUT_COST * cuts_faces_that_matter(boxes, self.faces).sum(axis=1, dtype=np.float64)
            if aspect_of is not None and self.hold:
                held = contains(boxes, self.faces)
                for a, faces in enumerate(self.hold):
                    rows = aspect_of == a
                    if len(faces) and rows.any():
                        cost[rows] += HOLD_COST * (~held[np.ix_(rows, faces)]).sum(axis=1)
        return -cost

    def soft(self, boxes: np.ndarray, spread: float) -> np.ndarray:
        """``[N]`` score terms in units of ``spread``: faces held whole (with padding), by
        prominence, and the focus pull."""
        gain = np.zeros(boxes.shape[0], dtype=np.float64)
        if len(self.faces):
            gain += FACE_GAIN * (contains(boxes, self.padded) * self.weight).sum(axis=1)
        if self.focus is not None:
            gain += FOCUS_GAIN * focus_prior(boxes, self.focus)
        return spread * gain

    def kept(self, box: list[int]) -> tuple[list[int], list[int]]:
        """Indices of the faces and of the keep-regions a crop ``box`` holds whole."""
        b = np.array([box], dtype=np.float64)
        faces = np.flatnonzero(contains(b, self.faces)[0]).tolist() if len(self.faces) else []
        keep = np.flatnonzero(contains(b, self.keep)[0]).tolist() if len(self.keep) else []
        return faces, keep


def face_matters(boxes: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``[N, F]`` bool: face ``f`` of ``faces [F, 4]`` matters to crop ``n`` of ``boxes [N, 4]``:
    its area is at least :data:`MATTER_SHARE` of the crop's, times ``sqrt(F / CROWD)`` when
    there are more than :data:`CROWD` faces."""
    face_area = (faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1])
    box_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    share = MATTER_SHARE * max(1.0, float(np.sqrt(len(faces) / CROWD)))
    return face_area[None, :] >= share * box_area[:, None]


def cuts_faces_that_matter(boxes: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``[N, F]`` bool: crop ``n`` runs through face ``f`` and the face matters to it
    (:func:`face_matters`): what the search avoids first, and what ``asm eval`` counts."""
    return cuts(boxes, faces) & face_matters(boxes, faces)


def _outside_share(boxes: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """``[N, M]``: the share of region ``m``'s area outside box ``n`` (a point: 0 or 1)."""
    b, r = boxes[:, None, :], regions[None, :, :]
    inside = contains(boxes, regions).astype(np.float64)
    w = np.maximum(np.minimum(b[..., 2], r[..., 2]) - np.maximum(b[..., 0], r[..., 0]), 0)
    h = np.maximum(np.minimum(b[..., 3], r[..., 3]) - np.maximum(b[..., 1], r[..., 1]), 0)
    area = (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])
    share = np.where(area > 0, 1 - w * h / np.maximum(area, 1e-9), 1 - inside)
    return np.where(inside > 0, 0.0, np.clip(share, 0, 1))
