"""The centre prior: people look at the middle of a photo more than at its edges.

Human eye fixations are centre-biased whatever the content (every saliency benchmark
models it). asm keeps that fact out of the score map, which sees only content and is
checked for image-border trends, and adds it to each crop's score as one explicit,
position-only term: the log of a centre Gaussian (std a third of each side) at the crop's
centre, times a weight learnt with the network (``ASMNet.prior_weight``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["centre_prior", "PRIOR_SIGMA"]

#: Std of the centre Gaussian, as a share of the image side.
PRIOR_SIGMA = 1 / 3

Boxes = TypeVar("Boxes", np.ndarray, "Tensor")


def centre_prior(boxes: Boxes, width: float, height: float, sigma: float = PRIOR_SIGMA) -> Boxes:
    """Log centre Gaussian at the centre of each box: ``boxes [N, 4]`` (x1, y1, x2, y2 in a
    ``width x height`` frame) -> ``[N]``, 0 for a centred box, about -1.1 for a box centred
    on an edge midpoint. Plain arithmetic: numpy arrays (the search) and torch tensors
    (training, with gradients) alike."""
    dx = ((boxes[:, 0] + boxes[:, 2]) / (2 * width) - 0.5) / sigma
    dy = ((boxes[:, 1] + boxes[:, 3]) / (2 * height) - 0.5) / sigma
    return -0.5 * (dx * dx + dy * dy)
