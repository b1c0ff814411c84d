"""Where a fixed-aspect crop sits: the search's best place, drawn part of the way back to the
middle of the image.

The score map ranks places well but its best place overshoots: the crop that scores highest
sits, on average, further from the middle than the crop that keeps the most of where people
look (the winner's curse of a noisy maximum; scenes without a clear subject most of all). So
the offset of a crop's centre from the image's centre is scaled by :data:`KEEP_OFFSET`,
fitted on the train splits of three eye-fixation sets
(``benchmarks/results/placement.md``, ``tools/fit_placement.py``). A move that would cut a
face that matters or leave out a keep-region the search's place held is shortened, in steps,
until it no longer does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["KEEP_OFFSET", "toward_centre", "settle"]

#: Share of the search's offset from the image centre that a fixed-aspect crop keeps.
KEEP_OFFSET = 0.75
#: The shares tried, in order, when the full move would cost a face or a keep-region.
STEP = 0.05


def toward_centre(boxes: np.ndarray, width: int, height: int, keep: float) -> np.ndarray:
    """``boxes [N, 4]`` (integer pixels) moved so that each centre's offset from the image
    centre is ``keep`` times what it was; sizes unchanged, boxes kept inside the image.
    Returns ``[N, 4]`` float64 integer-valued boxes."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx = width / 2 + keep * ((boxes[:, 0] + boxes[:, 2]) / 2 - width / 2)
    cy = height / 2 + keep * ((boxes[:, 1] + boxes[:, 3]) / 2 - height / 2)
    x1 = np.clip(np.round(cx - w / 2), 0, width - w)
    y1 = np.clip(np.round(cy - h / 2), 0, height - h)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


def settle(box: list[int], width: int, height: int, hard: Callable[[np.ndarray], np.ndarray],
           keep: float | None = None) -> list[int]:
    """``box`` (integer pixels) at the place :func:`toward_centre` gives it with the largest move
    (share ``keep``, then ``keep + STEP``, ... up to 1: no move) whose hard cost
    ``hard(boxes [M, 4]) -> [M]`` (<= 0; :meth:`asm.search.constraints.Wishes.hard`) is no worse
    than the box's own. ``keep`` defaults to :data:`KEEP_OFFSET`."""
    keep = KEEP_OFFSET if keep is None else keep
    shares = np.append(np.arange(keep, 1.0 - 1e-9, STEP), 1.0)
    moved = np.concatenate([toward_centre(np.array([box]), width, height, s) for s in shares[:-1]]
                           + [np.array([box], dtype=np.float64)])  # [S, 4]; the last row: no move
    cost = hard(moved)
    return [int(v) for v in moved[np.argmax(cost >= cost[-1])]]
