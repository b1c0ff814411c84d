"""asm: composition- and saliency-aware automatic image cropping (ASM-Net, AAAI 2020).

``import asm`` is instant: the names below load their modules (and torch) on first use, so
``asm --help`` never waits for torch. ``import asm.ops.pool`` (or using one of the torch
names of :mod:`asm.ops`) registers ``torch.ops.asm.*``; ``asm.ops.pool_numpy`` needs no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Cropper", "Analysis", "CropOptions", "CropResult", "Crop", "ops", "Pattern", "get_pattern", "PATTERN_NAMES", "__version__"]

_HOMES = {
    "Cropper": "asm.cropper",
    "Analysis": "asm.analysis",
    "CropOptions": "asm.cropper",
    "CropResult": "asm.cropper",
    "Crop": "asm.cropper",
    "Pattern": "asm.patterns",
    "get_pattern": "asm.patterns",
    "PATTERN_NAMES": "asm.patterns",
}

if TYPE_CHECKING:
    from asm import ops
    from asm.analysis import Analysis
    from asm.cropper import Crop, CropOptions, Cropper, CropResult
    from asm.patterns import PATTERN_NAMES, Pattern, get_pattern


def __getattr__(name: str) -> Any:
    if name == "ops":
        return importlib.import_module("asm.ops")
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'asm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
