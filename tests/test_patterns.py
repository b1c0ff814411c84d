"""The composition patterns (paper §3.1, Fig. 3): grids, partition counts, symmetries."""

from __future__ import annotations

import math

import pytest
import torch

from asm.patterns import DEFAULT_PATTERN, PATTERN_NAMES, Pattern, get_pattern

# name -> (grid, L)
EXPECTED = {
    "grid1x1": ((1, 1), 1),
    "grid1x3": ((1, 3), 3),
    "grid3x1": ((3, 1), 3),
    "grid3x3": ((3, 3), 9),
    "grid5x5": ((5, 5), 25),
    "multi_rectangle": ((6, 6), 3),
    "multi_direction": ((12, 12), 8),
    "cross_rectangle": ((6, 6), 12),
}


def _ring(n: int = 6) -> torch.Tensor:
    """Ring of each cell, written out independently: 0 = centre 2x2, 1 = middle, 2 = outer."""
    out = torch.empty(n, n, dtype=torch.int64)
    for i in range(n):
        for j in range(n):
            border = min(i, j, n - 1 - i, n - 1 - j)  # 0 on the outer ring
            out[i, j] = n // 2 - 1 - border
    return out


def test_names_and_default():
    assert set(PATTERN_NAMES) == set(EXPECTED)
    assert len(PATTERN_NAMES) == len(set(PATTERN_NAMES)) == 8
    assert DEFAULT_PATTERN == "cross_rectangle" and DEFAULT_PATTERN in PATTERN_NAMES


@pytest.mark.parametrize("name", PATTERN_NAMES)
def test_grid_and_partition_count(name):
    pattern = get_pattern(name)
    grid, L = EXPECTED[name]
    assert isinstance(pattern, Pattern) and pattern.name == name
    assert pattern.grid == grid
    assert tuple(pattern.partition.shape) == grid
    assert pattern.partition.dtype == torch.int64
    assert pattern.num_partitions == L
    # every partition 0..L-1 is used, nothing else
    assert torch.equal(pattern.partition.flatten().unique(), torch.arange(L))


@pytest.mark.parametrize("name", ["grid1x1", "grid1x3", "grid3x1", "grid3x3", "grid5x5"])
def test_grids_are_identity_row_major(name):
    part = get_pattern(name).partition
    gh, gw = part.shape
    assert torch.equal(part, torch.arange(gh * gw).reshape(gh, gw))


def test_multi_rectangle_rings():
    part = get_pattern("multi_rectangle").partition
    assert torch.equal(part, _ring())
    assert torch.bincount(part.flatten()).tolist() == [4, 12, 20]
    assert torch.equal(part[2:4, 2:4], torch.zeros(2, 2, dtype=torch.int64))  # the centre 2x2
    border = torch.cat([part[0], part[-1], part[:, 0], part[:, -1]])
    assert (border == 2).all()
    # symmetric under both mirrors and the transpose
    assert torch.equal(part, part.flip(0)) and torch.equal(part, part.flip(1)) and torch.equal(part, part.T)


def test_cross_rectangle_is_ring_times_four_plus_quadrant():
    part = get_pattern("cross_rectangle").partition
    rings = get_pattern("multi_rectangle").partition
    assert torch.equal(part // 4, rings)
    quadrant = part % 4
    # 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right (the centre cross cuts at 3)
    assert (quadrant[:3, :3] == 0).all() and (quadrant[:3, 3:] == 1).all()
    assert (quadrant[3:, :3] == 2).all() and (quadrant[3:, 3:] == 3).all()
    # each ring's 4 quadrants are equal in size: 1, 3 and 5 cells
    assert torch.bincount(part.flatten()).tolist() == [1] * 4 + [3] * 4 + [5] * 4


def test_cross_rectangle_mirror_symmetry():
    part = get_pattern("cross_rectangle").partition
    ring, quadrant = part // 4, part % 4
    # a left-right mirror swaps left and right quadrants (bit 0), keeps rings
    assert torch.equal(part.flip(1), 4 * ring + (quadrant ^ 1))
    # an up-down mirror swaps top and bottom quadrants (bit 1)
    assert torch.equal(part.flip(0), 4 * ring + (quadrant ^ 2))
    # the transpose swaps top-right and bottom-left
    swap = torch.tensor([0, 2, 1, 3])
    assert torch.equal(part.T, 4 * ring + swap[quadrant])


def test_multi_direction_sectors():
    part = get_pattern("multi_direction").partition
    assert torch.bincount(part.flatten(), minlength=8).tolist() == [18] * 8
    n = 12
    for i in range(n):
        for j in range(n):
            x, y = j + 0.5 - n / 2, n / 2 - (i + 0.5)  # cell centre, y up
            angle = math.degrees(math.atan2(y, x)) % 360
            sector = int(part[i, j])
            if abs(abs(x) - abs(y)) < 1e-9:  # on a 45-degree boundary: either neighbour
                assert sector in {round(angle / 45) % 8, (round(angle / 45) - 1) % 8}, (i, j)
            else:
                assert sector == int(angle // 45), (i, j)


def test_multi_direction_rotation_symmetry():
    part = get_pattern("multi_direction").partition
    # a quarter turn moves every sector by two (90 degrees); a half turn by four
    assert torch.equal(part.rot90(-1), (part + 2) % 8)
    assert torch.equal(part.flip(0, 1), (part + 4) % 8)


def test_sector_ring_and_quadrant_cells_are_connected():
    """Every partition of the non-grid patterns is one 4-connected region."""
    for name in ("multi_rectangle", "multi_direction", "cross_rectangle"):
        part = get_pattern(name).partition
        gh, gw = part.shape
        for p in range(int(part.max()) + 1):
            cells = {(int(i), int(j)) for i, j in torch.nonzero(part == p)}
            seen, todo = set(), [next(iter(cells))]
            while todo:
                i, j = todo.pop()
                if (i, j) in seen:
                    continue
                seen.add((i, j))
                todo += [c for c in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)) if c in cells]
            assert seen == cells, (name, p)


def test_get_pattern_is_cached_and_unknown_raises():
    assert get_pattern("grid3x3") is get_pattern("grid3x3")
    with pytest.raises(ValueError, match="unknown pattern 'nope'"):
        get_pattern("nope")
    with pytest.raises(ValueError, match="cross_rectangle"):  # the message lists the choices
        get_pattern("Cross_Rectangle")


def test_patterns_are_hashable_singletons_with_a_read_only_table():
    p = get_pattern(DEFAULT_PATTERN)
    assert {p: 1}[get_pattern(DEFAULT_PATTERN)] == 1 and p != get_pattern("grid3x3")
    with pytest.raises(ValueError):
        p.table[0, 0] = 5
    assert p.partition is p.partition and p.partition.tolist() == p.table.tolist()
