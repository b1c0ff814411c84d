"""Composition-aware pooling (paper §3.1, eqs. 1-2; circular crops, eq. 9).

* :mod:`asm.ops.pool`: ``torch.ops.asm.composition_pool`` / ``circular_pool``, custom ops
  registered with :mod:`torch.library` (autograd, compile, export, any device). Importing
  ``asm.ops.pool`` (or using one of its names from here) registers them.
* :mod:`asm.ops.kernel`: :func:`~asm.ops.kernel.pool_numpy`, the same op on numpy arrays,
  without torch; it and the torch op run the compiled C kernel (``pool.c``) on the CPU.
* :mod:`asm.ops.reads`: the maths both share.

``import asm.ops`` does not import torch: the torch names below load :mod:`asm.ops.pool`
on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asm.lazy import lazy_names
from asm.ops.reads import BOX_TOLERANCE, DISC_STRIPS

__all__ = ["composition_pool", "circular_pool", "composition_pool_backward", "pool_numpy",
           "BOX_TOLERANCE", "DISC_STRIPS"]

_HOMES = {
    "composition_pool": "asm.ops.pool",
    "circular_pool": "asm.ops.pool",
    "composition_pool_backward": "asm.ops.pool",
    "pool_numpy": "asm.ops.kernel",
}

if TYPE_CHECKING:
    from asm.ops.kernel import pool_numpy
    from asm.ops.pool import circular_pool, composition_pool, composition_pool_backward

__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__)
