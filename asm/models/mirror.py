"""The mirror-averaged score map: the network's map of an image and of its left-right mirror, averaged.

A crop of an image and the mirrored crop of the mirrored image show the same content, so the
model should score them alike; it does only up to noise. Averaging the two scores removes the part
of that noise that is not symmetric, and costs a second forward pass (measured in
``benchmarks/results/crop.md``; its gain in ``benchmarks/results/eval.md``).

The score of a box is linear in the map (paper eq. 2), so the average of the two scores of every
box is the score on one averaged map: the mirrored image's map flipped back left-right, with each
partition's channel taken from its mirror partition (cell ``(y, x)`` of the pattern becomes
cell ``(y, gx - 1 - x)``). That needs a pattern whose mirror image is again a partition into the
same parts (:func:`mirror_permutation`); for the others there is no averaged map.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mirror_permutation", "mirror_mean"]


def mirror_permutation(table: np.ndarray) -> np.ndarray | None:
    """``[L]`` int64: the partition that each partition of ``table [gy, gx]`` becomes when the
    pattern is mirrored left-right (``table[:, ::-1] == perm[table]``); None if the mirrored
    pattern is not a relabelling of the same partitions. (Where each part's mirror image is one
    part, mirroring twice gives the cells back, so ``perm`` is its own inverse: a permutation.)"""
    table = np.asarray(table, dtype=np.int64)
    mirrored = table[:, ::-1]
    perm = np.empty(int(table.max()) + 1, dtype=np.int64)
    for part in range(len(perm)):
        images = np.unique(mirrored[table == part])
        if len(images) != 1:  # split in two by the mirror, or no such part at all
            return None
        perm[part] = images[0]
    return perm


def mirror_mean(maps: np.ndarray, mirrored_maps: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """``maps [B, L, h, w]`` of images and ``mirrored_maps [B, L, h, w]`` of their left-right
    mirrors -> ``[B, L, h, w]`` float32: their mean in the images' frame (channel ``l`` of the
    mirror's map, flipped back, is partition ``perm[l]``'s; :func:`mirror_permutation`). A box
    scores on it the mean of its score on ``maps`` and its mirror's score on ``mirrored_maps``."""
    back = np.empty_like(mirrored_maps)
    back[:, perm] = mirrored_maps[..., ::-1]
    return ((maps + back) * 0.5).astype(np.float32)
