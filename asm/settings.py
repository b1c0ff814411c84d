"""``CropperSettings``: the one way every shell (CLI, batch workers and Ray actors, the TorchServe
handler, the demo) builds a :class:`~asm.cropper.Cropper` from what its user set.

>>> from asm.settings import CropperSettings
>>> CropperSettings(runtime="torch", threads=1).build().runtime
'torch'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from asm.errors import InvalidOption
from asm.io import DEFAULT_MAX_PIXELS
from asm.models.weights import ASMNet_Weights, as_weights
from asm.runtime import RUNTIMES

if TYPE_CHECKING:  # the cropper (and maybe torch) loads only when one is built
    from asm.cropper import Cropper

__all__ = ["CropperSettings"]


@dataclass(frozen=True)
class CropperSettings:
    """What a user may set about a cropper, each with its one default.

    Args:
        model: a model file (``--model``); None: the model that ships (:attr:`ASMNet_Weights.DEFAULT`).
        runtime: where the network runs, one of :data:`~asm.runtime.RUNTIMES` (see :func:`asm.runtime.load_net`).
        max_pixels: larger images are refused before decoding (:data:`asm.io.DEFAULT_MAX_PIXELS`).
        threads: intra-op threads of the network (ONNX Runtime, or torch); None: the runtime's default.
        device: where a torch network runs ("cpu", "cuda:0"); ONNX Runtime runs on the CPU.

    Raises :class:`~asm.errors.InvalidOption` for a value no cropper could take.
    """

    model: str | os.PathLike | None = None
    runtime: str = "auto"
    max_pixels: int = DEFAULT_MAX_PIXELS
    threads: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise InvalidOption(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if self.max_pixels < 1:
            raise InvalidOption(f"--max-pixels must be a positive number of pixels, got {self.max_pixels}")
        if self.threads is not None and self.threads < 1:
            raise InvalidOption(f"threads must be at least 1, got {self.threads}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CropperSettings:
        """Settings from a mapping that may hold more (parsed CLI arguments as ``vars(args)``, a
        handler's config); a missing or None value takes its default."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if values.get(f.name) is not None})

    def check_model(self) -> None:
        """Fail early and cheaply on a bad ``model``: :class:`~asm.errors.ModelNotFound` when it is
        not a readable file. Reads no weights (the file's contents are checked when built)."""
        as_weights(self.model if self.model is not None else ASMNet_Weights.DEFAULT).check_file()

    def build(self) -> Cropper:
        """The :class:`~asm.cropper.Cropper` these settings describe. Sets this process's CPU
        threads (:func:`asm.cpu_session.set_cpu_threads`) when ``threads`` is given, and lifts
        PIL's own pixel limit to ``max_pixels`` (:func:`asm.io.allow_pixels`).

        Raises what :meth:`Cropper.from_pretrained <asm.cropper.Cropper.from_pretrained>` raises."""
        from asm.cpu_session import set_cpu_threads
        from asm.cropper import Cropper
        from asm.io import allow_pixels

        if self.threads is not None:
            set_cpu_threads(self.threads)  # before the ONNX Runtime session is made
        allow_pixels(self.max_pixels)
        cropper = Cropper.from_pretrained(self.model, runtime=self.runtime, max_pixels=self.max_pixels, device=self.device)
        if self.threads is not None and cropper.runtime == "torch":  # torch was loaded for the network just now
            set_cpu_threads(self.threads)
        return cropper

    def replace(self, **changes: Any) -> CropperSettings:
        """These settings with ``changes`` (e.g. a worker's share of the threads)."""
        from dataclasses import replace

        return replace(self, **changes)
