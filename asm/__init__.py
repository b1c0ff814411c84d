"""asm: composition- and saliency-aware automatic image cropping (ASM-Net, AAAI 2020)."""

from asm import ops  # registers torch.ops.asm.*
from asm.cropper import Crop, CropOptions, Cropper, CropResult
from asm.patterns import PATTERN_NAMES, Pattern, get_pattern

__version__ = "0.1.0"

__all__ = ["Cropper", "CropOptions", "CropResult", "Crop", "ops", "Pattern", "get_pattern", "PATTERN_NAMES", "__version__"]
