"""asm: composition- and saliency-aware automatic image cropping (ASM-Net, AAAI 2020).

``import asm`` is instant: the names below load their modules on first use, so
``asm --help`` waits for nothing. ``import asm.ops.pool`` (or using one of the torch
names of :mod:`asm.ops`) registers ``torch.ops.asm.*``; ``asm.ops.pool_numpy`` needs no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asm.lazy import lazy_names

__version__ = "0.1.0"

__all__ = ["Cropper", "Analysis", "CropOptions", "CropResult", "Crop", "ops", "Pattern", "get_pattern", "PATTERN_NAMES", "__version__"]

_HOMES = {
    "ops": "asm.ops",
    "Cropper": "asm.cropper",
    "Analysis": "asm.analysis",
    "CropOptions": "asm.options",
    "CropResult": "asm.results",
    "Crop": "asm.results",
    "Pattern": "asm.patterns",
    "get_pattern": "asm.patterns",
    "PATTERN_NAMES": "asm.patterns",
}

if TYPE_CHECKING:
    from asm import ops
    from asm.analysis import Analysis
    from asm.cropper import Cropper
    from asm.options import CropOptions
    from asm.patterns import PATTERN_NAMES, Pattern, get_pattern
    from asm.results import Crop, CropResult

__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__)
