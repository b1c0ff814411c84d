"""``Analysis``: one image, decoded and scored once; crops, heatmaps and box scores from it.

>>> from asm import Cropper, CropOptions
>>> cropper = Cropper.from_pretrained()
>>> analysis = cropper.analyse("examples/dogs-window.jpg")   # decode + the score map, once
>>> analysis.crops(aspect="16:9", top_k=3)            # a CropResult; each call only searches  # doctest: +ELLIPSIS
CropResult(width=533, height=800, crops=[Crop(box=[...], score=..., aspect='16:9', shape='rect', ...), ...], ...)
>>> [c.aspect for c in analysis.crops(CropOptions.parse(["1:1", "4:5"])).crops]
['1:1', '4:5']
>>> maps = analysis.heatmaps()                        # θ_avg / θ_std at the score map's size
>>> maps.avg.shape == maps.std.shape == analysis.score_map.shape[-2:]
True
>>> analysis.score([[0, 0, 533, 300]])                # the caller's own boxes  # doctest: +ELLIPSIS
array([...])
>>> {name: picture.shape for name, picture in analysis.overlays().items()}   # [H, W, 3] uint8
{'theta_avg': (800, 533, 3), 'theta_std': (800, 533, 3)}

As segment-anything's ``SamPredictor`` (``set_image`` once, then many cheap ``predict``
calls): :meth:`Cropper.analyse <asm.cropper.Cropper.analyse>` does the expensive part,
:meth:`Cropper.analyse_many <asm.cropper.Cropper.analyse_many>` does it for several images
in one batch (servers, batch jobs). Every shell makes one of these calls per image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from asm.errors import InvalidOption, echo
from asm.options import CropOptions, parse_bool
from asm.results import CropResult, Heatmaps
from asm.search.scorer import Scorer
from asm.search.search import search

if TYPE_CHECKING:
    from asm.prepare import Prepared

__all__ = ["Analysis", "OVERLAY_NAMES"]

#: The names of the two heatmap overlays (file names of ``asm crop --heatmap``, keys on the wire).
OVERLAY_NAMES = ("theta_avg", "theta_std")


class Analysis:
    """An image as the network saw it: the :class:`~asm.search.scorer.Scorer` of its score map
    (``score_map`` ``[1, L, h, w]``, float32 numpy, covering the ``width x height`` image), and
    the decoded pixels (``image``, ``[H, W, 3]`` uint8 RGB, decoded in full on first use)."""

    def __init__(self, prepared: Prepared, scorer: Scorer) -> None:
        self.prepared = prepared
        self.scorer = scorer

    @property
    def score_map(self) -> np.ndarray:
        return self.scorer.score_map

    @property
    def width(self) -> int:
        return self.prepared.width

    @property
    def height(self) -> int:
        return self.prepared.height

    @property
    def image(self) -> np.ndarray:
        """The full-size pixels ``[H, W, 3]`` uint8 RGB, EXIF-oriented (decoded on first read)."""
        return self.prepared.image

    def crops(self, options: CropOptions | None = None, *, focal_point: bool = False, **kwargs: object) -> CropResult:
        """Best crops for ``options`` (or for the keyword options of
        :meth:`Cropper.crop <asm.cropper.Cropper.crop>`: ``aspect=``, ``top_k=``, ...); with
        ``focal_point``, also the image's content focal point for image proxies
        (:func:`asm.search.focal.content_focal_point`, with the same faces, keep-regions and focus)."""
        if options is not None and kwargs:
            raise TypeError("give either CropOptions or keyword options, not both")
        options = CropOptions.parse(**kwargs) if options is None else options
        result = search(self.scorer, self.prepared, options)
        if focal_point:
            from asm.search.focal import content_focal_point

            result.focal_point = content_focal_point(self, options)
        return result

    def heatmaps(self, at_image_size: bool = False) -> Heatmaps:
        """θ_avg and θ_std (paper eqs. 5-6) at the score map's size, or upsampled to the
        image's (``at_image_size``; ``[H, W]`` float32 each, so only when asked)."""
        m = self.score_map[0].astype(np.float64)  # [L, h, w]
        avg = m.mean(axis=0).astype(np.float32)  # (asm.models.theta_avg / theta_std on tensors)
        std = m.std(axis=0).astype(np.float32)
        if at_image_size:
            size = (self.width, self.height)
            avg = cv2.resize(avg, size, interpolation=cv2.INTER_LINEAR)
            std = cv2.resize(std, size, interpolation=cv2.INTER_LINEAR)
        return Heatmaps(avg, std)

    def overlays(self) -> dict[str, np.ndarray]:
        """θ_avg and θ_std coloured over the photo: ``{"theta_avg", "theta_std"}`` ->
        ``[H, W, 3]`` uint8 RGB (:func:`asm.viz.overlay_heatmap`)."""
        from asm.viz import overlay_heatmap  # matplotlib loads only when overlays are drawn

        heat = self.heatmaps()
        return {name: overlay_heatmap(self.image, m) for name, m in zip(OVERLAY_NAMES, (heat.avg, heat.std))}

    def score(self, boxes: object, circular: object = False) -> np.ndarray:
        """Scores ``[N]`` float64 of the caller's own ``boxes`` (``[N, 4]`` x1, y1, x2, y2 in
        image pixels), as the search scores its candidates (without faces or wishes)."""
        b = _parse_boxes(boxes)
        W, H = self.width, self.height
        bad = ~((b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= W) & (b[:, 3] <= H) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise InvalidOption(f"box {k} {b[k].tolist()} must satisfy 0 <= x1 < x2 <= {W} and 0 <= y1 < y2 <= {H}")
        return self.scorer.score(b, W, H, parse_bool("circular", circular))


def _parse_boxes(boxes: object) -> np.ndarray:
    """``[N, 4]`` float64 from a list / array of ``(x1, y1, x2, y2)`` (one box may be flat)."""
    try:
        b = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        b = None
    if b is None or b.ndim not in (1, 2) or (b.size and b.shape[-1] != 4) or not np.isfinite(b).all():
        raise InvalidOption(f"boxes must be [N, 4] finite numbers (x1, y1, x2, y2), got {echo(boxes)}")
    return b.reshape(-1, 4).copy()
