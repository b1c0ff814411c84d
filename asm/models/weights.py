"""Weights as objects: a model file, the network it fits, how it is served, what made it.

In the style of torchvision's ``models`` (a weights enum and a builder):

>>> weights = ASMNet_Weights.DEFAULT       # the model that ships in asm/weights/
>>> weights.preset                         # InferencePreset(short_side=192, max_long_side=384)
>>> weights.config["backbone"], weights.meta.val["osie_kept"]
>>> model = asm_net(weights=weights)       # an ASMNet with these weights, eval mode
>>> model = asm_net(weights="runs/finetune/final.pt")   # any file written by save_model

A model file (format ``asm-model/2``) is one ``torch.save`` of plain values:
``{"format", "config": ASMNet kwargs, "preset": {"short_side", "max_long_side"},
"meta": {"recipe", "training", "data", "val"}, "state_dict"}``; ``asm/weights/asm_default.pt``
is one. Files of the first format (``asm-model/1``: the preset, training config and validation
figures as JSON strings inside ``meta``) read the same.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asm.errors import InvalidModel, ModelNotFound, echo

if TYPE_CHECKING:  # torch loads only when a model file is read or a network built
    import numpy as np
    import torch

    from asm.models.asmnet import ASMNet

__all__ = ["Weights", "ASMNet_Weights", "InferencePreset", "WeightsMeta", "asm_net", "save_model",
           "DEFAULT_MODEL_PATH", "CHECKPOINT_FORMAT"]

#: The format tag written into new model files.
CHECKPOINT_FORMAT = "asm-model/2"
#: Every format tag this module reads.
READABLE_FORMATS = ("asm-model/1", CHECKPOINT_FORMAT)
#: The model file that ships in the package (``ASMNet_Weights.DEFAULT.file``).
DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "weights" / "asm_default.pt"


@dataclass(frozen=True)
class InferencePreset:
    """How a model is served: the network sees the image resized so its short side is
    ``short_side`` and its long side at most ``max_long_side`` (the scale it trained at), then
    ImageNet-normalised (:meth:`network_input`). It travels with the model (in the model file,
    and in its ONNX twins); there are no defaults, since a wrong scale would crop silently wrong."""

    short_side: int
    max_long_side: int

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """Network input ``(w, h)`` for a ``width x height`` image: its aspect kept, short side
        :attr:`short_side`, long side at most :attr:`max_long_side`, both multiples of 32 (at least 96)."""
        scale = min(self.short_side / min(width, height), self.max_long_side / max(width, height))
        return max(96, int(round(width * scale / 32)) * 32), max(96, int(round(height * scale / 32)) * 32)

    def network_input(self, rgb: np.ndarray, width: int, height: int) -> np.ndarray:
        """``rgb`` ``[h', w', 3]`` uint8, the pixels of a ``width x height`` image (or a smaller
        decode of them) -> the network's input ``[1, 3, h, w]`` float32: resized (area) to
        :meth:`input_size` and ImageNet-normalised (:func:`asm.models.preprocess.network_input`)."""
        import cv2

        from asm.models.preprocess import network_input

        return network_input(cv2.resize(rgb, self.input_size(width, height), interpolation=cv2.INTER_AREA))


@dataclass(frozen=True)
class WeightsMeta:
    """What made a model: the training ``recipe``, its config (``training``, the
    :class:`~asm.training.config.TrainConfig` as a dict), the ``data`` it saw, and the
    validation figures of the saved epoch (``val``, e.g. ``val["osie_kept"]``)."""

    recipe: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    data: str = ""
    val: dict[str, Any] = field(default_factory=dict)


class Weights:
    """A model file and what it carries. The file is read on first use of ``config``,
    ``preset`` or ``meta``; :class:`~asm.errors.ModelNotFound` if it is missing,
    :class:`~asm.errors.InvalidModel` if it is not an asm model file."""

    def __init__(self, file: str | os.PathLike) -> None:
        self.file = Path(file)

    def __repr__(self) -> str:
        return f"Weights({str(self.file)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Weights) and self.file == other.file

    def __hash__(self) -> int:
        return hash(self.file)

    @property
    def config(self) -> dict[str, Any]:
        """The :class:`~asm.models.asmnet.ASMNet` arguments: backbone, pattern, map_stride, padding_mode."""
        return dict(self._header[0])

    @property
    def preset(self) -> InferencePreset:
        return self._header[1]

    @property
    def meta(self) -> WeightsMeta:
        return self._header[2]

    def get_state_dict(self) -> dict[str, torch.Tensor]:
        """The network's weights as float32 (files may store float16)."""
        import torch

        state = self._read()["state_dict"]
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        state.setdefault("prior_weight", torch.zeros(()))  # files from before the centre prior
        return state

    @cached_property
    def _header(self) -> tuple[dict[str, Any], InferencePreset, WeightsMeta]:
        ckpt = self._read()
        try:
            meta = dict(ckpt.get("meta") or {})
            if ckpt["format"] == "asm-model/1":  # the preset and the figures were JSON strings in meta
                preset = json.loads(meta.get("preset", "{}"))
                training = json.loads(meta.get("config", "{}"))
                meta = {"recipe": meta.get("recipe", ""), "training": training, "data": training.get("data", ""),
                        "val": json.loads(meta.get("val", "{}"))}
            else:
                preset = ckpt.get("preset") or {}
            return dict(ckpt["config"]), InferencePreset(**preset), WeightsMeta(**meta)
        except (KeyError, TypeError, ValueError) as e:
            raise self._invalid(type(e).__name__) from e

    def _invalid(self, reason: str) -> InvalidModel:
        return InvalidModel(f"{echo(str(self.file))} is not an asm model file ({reason}); "
                            "pass a file written by `asm train` (--model PATH)")

    def check_file(self) -> None:
        """:class:`~asm.errors.ModelNotFound` unless :attr:`file` is a file this process can read;
        reads none of it (so no torch)."""
        if not self.file.is_file():
            raise ModelNotFound(f"no asm model at {echo(str(self.file))}. The default model ships inside the "
                                f"package ({DEFAULT_MODEL_PATH}); pass a model file (--model PATH) or train one "
                                "with `asm train`.")
        if not os.access(self.file, os.R_OK):
            raise ModelNotFound(f"cannot read the model file {echo(str(self.file))} (no permission)")

    def _read(self) -> dict[str, Any]:
        self.check_file()
        import torch

        try:
            ckpt = torch.load(self.file, map_location="cpu", weights_only=True)
            if not isinstance(ckpt, dict) or ckpt.get("format") not in READABLE_FORMATS:
                raise ValueError(f"not of format {' or '.join(READABLE_FORMATS)}")
        except Exception as e:  # torch.load's UnpicklingError / RuntimeError / EOFError, another format, ...
            raise self._invalid(e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__) from e
        return ckpt


class ASMNet_Weights(Enum):
    """The weights that ship in the package. ``GAZE_V2``: MobileNetV2, cross_rectangle
    pattern, trained on human and teacher fixations (the model card in the README)."""

    GAZE_V2 = Weights(DEFAULT_MODEL_PATH)
    DEFAULT = GAZE_V2

    @property
    def file(self) -> Path:
        return self.value.file

    @property
    def config(self) -> dict[str, Any]:
        return self.value.config

    @property
    def preset(self) -> InferencePreset:
        return self.value.preset

    @property
    def meta(self) -> WeightsMeta:
        return self.value.meta

    def get_state_dict(self) -> dict[str, torch.Tensor]:
        return self.value.get_state_dict()


def as_weights(weights: Weights | ASMNet_Weights | str | os.PathLike) -> Weights:
    """A :class:`Weights` from an enum member, a :class:`Weights` or a model file path."""
    if isinstance(weights, ASMNet_Weights):
        return weights.value
    return weights if isinstance(weights, Weights) else Weights(weights)


def asm_net(weights: Weights | ASMNet_Weights | str | os.PathLike | None = None, **config: Any) -> ASMNet:
    """An :class:`~asm.models.asmnet.ASMNet`: with ``weights`` (an enum member, a
    :class:`Weights` or a model file) built to their config, loaded and in eval mode;
    without, a new network of ``config`` (the ASMNet arguments)."""
    from asm.models.asmnet import ASMNet

    if weights is None:
        return ASMNet(**config)
    weights = as_weights(weights)
    clash = {k: v for k, v in config.items() if weights.config.get(k, v) != v}
    if clash:
        raise ValueError(f"{weights.file.name} holds a {weights.config} network, not {clash}")
    try:
        model = ASMNet(**{**weights.config, **config})
        model.load_state_dict(weights.get_state_dict())
    except (TypeError, ValueError, RuntimeError) as e:  # a config or weights this code cannot build
        raise weights._invalid(f"{type(e).__name__}: {echo(str(e))}") from e
    return model.eval()


def save_model(model: ASMNet, path: str | os.PathLike, preset: InferencePreset, half: bool = False,
               meta: WeightsMeta | None = None) -> Weights:
    """Write ``model`` with its serving ``preset`` (the scale it trained at,
    :func:`asm.training.config.serving_preset`) and ``meta`` to one file (``half``: store
    float16 weights); returns its :class:`Weights`."""
    import torch

    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    header = {"format": CHECKPOINT_FORMAT, "config": dict(model.config),
              "preset": asdict(preset), "meta": _plain(asdict(meta or WeightsMeta()))}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**header, "state_dict": state}, path)
    return Weights(path)


def _plain(value: Any) -> Any:
    """``value`` as JSON values (numpy numbers to floats, tuples to lists): what a
    ``weights_only`` load reads back."""
    return json.loads(json.dumps(value, default=float))
