"""Composition patterns (paper §3.1, Fig. 3, Table 1).

A pattern splits a crop into a ``gy x gx`` grid of equal cells and assigns each cell a
*partition* ``0..L-1``. The score map has one channel per partition; a pixel's score in a
crop is read from the channel of the partition it falls in (eq. 1).

Our reading of Fig. 3 (the figure is not in the text; see docs/patterns.md):

=================  ======  ===  ==============================================================
name               cells   L    cell -> partition
=================  ======  ===  ==============================================================
grid{r}x{c}        r x c   r*c  identity (row-major)
multi_rectangle    6 x 6   3    concentric rings: centre 2x2, middle ring, outer ring
                                (Fig. 3 shows 3 rings; Table 1's "5" is not reproducible
                                on a 6x6 grid, so we take the figure)
multi_direction    12x12   8    45-degree sectors (boundaries at 0, 45, ... degrees) of the cell
                                centre's angle around the crop centre; diagonal cells alternate
                                sides, so each sector holds exactly 18 cells (paper: "about 18")
cross_rectangle    6 x 6   12   the 3 rings of multi_rectangle, each cut into 4 quadrants by
                                the centre cross: partition = 4 * ring + quadrant
=================  ======  ===  ==============================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["Pattern", "get_pattern", "PATTERN_NAMES", "DEFAULT_PATTERN"]

DEFAULT_PATTERN = "cross_rectangle"


@dataclass(frozen=True, eq=False)
class Pattern:
    """A composition pattern: ``table[gy, gx]`` (int64) with values in ``0..num_partitions-1``.

    ``table`` is a read-only numpy array (the crop search needs no torch); ``partition`` is
    the same table as a torch tensor, for the network and the pooling ops. Patterns compare
    and hash by identity (:func:`get_pattern` makes one per name).
    """

    name: str
    table: np.ndarray  # [gy, gx] int64, read-only

    @cached_property
    def partition(self) -> torch.Tensor:
        """``table`` as an int64 torch tensor ``[gy, gx]`` (imports torch)."""
        import torch

        return torch.from_numpy(self.table.copy())

    @property
    def num_partitions(self) -> int:
        return int(self.table.max()) + 1

    @property
    def grid(self) -> tuple[int, int]:
        gy, gx = self.table.shape
        return int(gy), int(gx)


def _grid(rows: int, cols: int) -> np.ndarray:
    return np.arange(rows * cols, dtype=np.int64).reshape(rows, cols)


def _rings(n: int = 6) -> np.ndarray:
    """Ring index of each cell of an ``n x n`` grid: 0 = centre 2x2, 1 = middle, 2 = outer."""
    idx = np.arange(n)
    dist = np.minimum(idx, n - 1 - idx)  # distance to the nearest border, per axis
    border = np.minimum(dist[:, None], dist[None, :])
    return (n // 2 - 1 - border).astype(np.int64)


def _quadrants(n: int = 6) -> np.ndarray:
    """Quadrant of each cell: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right."""
    half = (np.arange(n) >= n // 2).astype(np.int64)
    return 2 * half[:, None] + half[None, :]


def _directions(n: int = 12, sectors: int = 8) -> np.ndarray:
    """Sector of the angle of each cell centre around the crop centre, boundaries every 45°.

    Cells on a diagonal lie exactly on a boundary; they alternate sides along the diagonal,
    so each sector holds exactly 18 cells (the paper: "approximately covered by 18 cells").
    """
    centre = np.arange(n, dtype=np.float64) + 0.5 - n / 2
    y, x = np.meshgrid(-centre, centre, indexing="ij")  # y points up
    angle = np.arctan2(y, x)
    on_diagonal = np.abs(x) == np.abs(y)
    side = np.where(np.mod(np.abs(x) - 0.5, 2) == 0, 1.0, -1.0)
    angle = angle + np.where(on_diagonal, 1e-6 * side, 0.0)
    return (np.floor(angle / (2 * math.pi / sectors)).astype(np.int64) % sectors).astype(np.int64)


_BUILDERS = {
    "grid1x1": lambda: _grid(1, 1),
    "grid1x3": lambda: _grid(1, 3),
    "grid3x1": lambda: _grid(3, 1),
    "grid3x3": lambda: _grid(3, 3),
    "grid5x5": lambda: _grid(5, 5),
    "multi_rectangle": _rings,
    "multi_direction": _directions,
    "cross_rectangle": lambda: 4 * _rings() + _quadrants(),
}

PATTERN_NAMES: tuple[str, ...] = tuple(_BUILDERS)


@lru_cache(maxsize=None)
def get_pattern(name: str) -> Pattern:
    """The pattern called ``name`` (one of :data:`PATTERN_NAMES`)."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown pattern {name!r}; choose one of {', '.join(PATTERN_NAMES)}") from None
    table = builder()
    table.flags.writeable = False
    return Pattern(name, table)
