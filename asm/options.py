"""Crop options: :class:`CropOptions`, checked when built, from Python values, form text or
a JSON object (:meth:`CropOptions.from_mapping`, the one path of servers, forms and batch jobs).

Every refusal is an :class:`~asm.errors.InvalidOption` with a short message naming the option.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from asm.errors import InvalidOption, echo
from asm.search.candidates import Aspect, parse_aspects

__all__ = ["CropOptions", "OPTION_KEYS", "DEFAULT_MIN_SCALE", "MAX_TOP_K", "MAX_KEEP", "parse_bool", "refuse_unknown"]

#: The most crops one aspect may ask for (``top_k``).
MAX_TOP_K = 20
#: Options accepted by :meth:`CropOptions.from_mapping` (servers and forms).
OPTION_KEYS = ("aspect", "circular", "top_k", "nms_iou", "faces", "keep", "focus", "min_scale")
#: The smallest crop side of a fixed aspect, as a share of the largest box of the aspect, by
#: default: 1, the largest box (as smartcrop, libvips, Thumbor, Cloudinary and imgix place it);
#: zoom only when asked. Free crops choose their own size (asm.search.framing). Zooming by
#: default (0.6) kept no more fixations on the validation sets and cut tight bands out of photos.
DEFAULT_MIN_SCALE = 1.0
#: The most keep-regions one request may give.
MAX_KEEP = 16


def parse_bool(name: str, value: object) -> bool:
    """A flag from a bool, 0 / 1, or text (``"true"``, ``"off"``, ...; empty is false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise InvalidOption(f"{name} must be true or false, got {echo(value)}")


def _parse_number(name: str, value: object, lo: float, hi: float, whole: bool = False) -> float:
    """``value`` as a number in ``[lo, hi]`` (a whole number where ``whole``), or
    :class:`~asm.errors.InvalidOption` that names ``name`` and echoes the value."""
    try:
        if whole and (isinstance(value, bool) or (isinstance(value, float) and not value.is_integer())):
            raise ValueError
        number = int(value) if whole else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidOption(f"{name} must be a {'whole number' if whole else 'number'}, got {echo(value)}") from None
    if not lo <= number <= hi:
        raise InvalidOption(f"{name} must be between {lo:g} and {hi:g}, got {echo(value)}")
    return number


def _parse_int(name: str, value: object, lo: int, hi: int) -> int:
    return int(_parse_number(name, value, lo, hi, whole=True))


def _parse_float(name: str, value: object, lo: float, hi: float) -> float:
    return float(_parse_number(name, value, lo, hi))


def _numbers(name: str, value: object, count: int) -> list[float]:
    """``count`` finite numbers from a list or a comma-separated string."""
    items = value.replace(" ", ",").split(",") if isinstance(value, str) else value
    if isinstance(items, (list, tuple)):
        items = [v for v in items if not (isinstance(v, str) and not v.strip())]
    try:
        if not isinstance(items, (list, tuple)) or len(items) != count or any(isinstance(v, bool) for v in items):
            raise ValueError
        numbers = [float(v) for v in items]
    except (TypeError, ValueError):
        raise InvalidOption(f"{name} must be {count} numbers, got {echo(value)}") from None
    if not all(np.isfinite(numbers)):
        raise InvalidOption(f"{name} must be finite numbers, got {echo(value)}")
    return numbers


def _parse_keep(value: object) -> tuple[tuple[float, float, float, float], ...]:
    """Keep-regions ``x1,y1,x2,y2`` in image pixels: one box or a list of them, as lists or
    as text (``"10,20,200,180"``, boxes separated by ``;``, or JSON ``[[10, 20, 200, 180]]``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise InvalidOption(f"keep is not valid JSON: {echo(value)}") from None
        else:
            value = [part for part in text.split(";") if part.strip()]
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (list, tuple, str)):
        value = [value]  # one flat box
    if not isinstance(value, (list, tuple)):
        raise InvalidOption(f"keep must be boxes x1,y1,x2,y2, got {echo(value)}")
    if len(value) > MAX_KEEP:
        raise InvalidOption(f"at most {MAX_KEEP} keep-regions, got {len(value)}")
    boxes = []
    for i, item in enumerate(value):
        x1, y1, x2, y2 = _numbers(f"keep box {i}", item, 4)
        if not (0 <= x1 < x2 and 0 <= y1 < y2):
            raise InvalidOption(f"keep box {i} {echo(item)} must satisfy 0 <= x1 < x2 and 0 <= y1 < y2")
        boxes.append((x1, y1, x2, y2))
    return tuple(boxes)


def _parse_focus(value: object) -> tuple[float, float] | None:
    """A focus point ``x,y`` in image pixels (``[x, y]`` or ``"x,y"``), or None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidOption(f"focus is not valid JSON: {echo(value)}") from None
    x, y = _numbers("focus", value, 2)
    if x < 0 or y < 0:
        raise InvalidOption(f"focus {echo(value)} must be a point x,y inside the image (not negative)")
    return x, y


@dataclass(frozen=True)
class CropOptions:
    """Validated crop options (every shell parses user input through this); built directly,
    the numbers and the circular shape are checked as :meth:`parse` checks them."""

    aspects: tuple[Aspect, ...] = (Aspect("free", None),)
    circular: bool = False
    top_k: int = 1
    nms_iou: float = 0.5
    faces: bool = True  # detect faces, keep them whole and let them weigh in the score
    keep: tuple[tuple[float, float, float, float], ...] = ()  # regions x1, y1, x2, y2 every crop must hold
    focus: tuple[float, float] | None = None  # a point x, y the crops are pulled towards (and hold)
    min_scale: float = DEFAULT_MIN_SCALE  # fixed aspects: smallest crop side, as a share of the largest box's

    def __post_init__(self) -> None:
        _parse_int("top_k", self.top_k, 1, MAX_TOP_K)
        _parse_float("nms_iou", self.nms_iou, 0.0, 1.0)
        _parse_float("min_scale", self.min_scale, 0.1, 1.0)
        if not self.aspects:
            raise InvalidOption("at least one aspect is needed")
        if self.circular and any(a.ratio is None or abs(a.ratio - 1) > 1e-9 for a in self.aspects):
            raise InvalidOption("circular crops are round (1:1); leave out the aspect or ask for 1:1")

    @classmethod
    def parse(cls, aspect: object = None, circular: object = False, top_k: object = 1, nms_iou: object = 0.5,
              faces: object = True, keep: object = None, focus: object = None, min_scale: object = None) -> CropOptions:
        """Checked options from user input (strings as forms and the CLI send them, or
        Python values); raises :class:`~asm.errors.InvalidOption` with a short message."""
        aspects = tuple(parse_aspects(aspect))
        circular = parse_bool("circular", circular)
        if circular:
            if any(a.ratio is not None and abs(a.ratio - 1) > 1e-9 for a in aspects):
                raise InvalidOption("circular crops are round (1:1); leave out the aspect or ask for 1:1")
            aspects = (Aspect("1:1", 1.0),)
        return cls(aspects, circular, _parse_int("top_k", top_k, 1, MAX_TOP_K), _parse_float("nms_iou", nms_iou, 0.0, 1.0),
                   parse_bool("faces", faces), _parse_keep(keep), _parse_focus(focus),
                   DEFAULT_MIN_SCALE if min_scale is None else _parse_float("min_scale", min_scale, 0.1, 1.0))

    @classmethod
    def from_mapping(cls, options: Mapping[str, object]) -> CropOptions:
        """Options from a form or JSON object (keys :data:`OPTION_KEYS`).

        Unknown keys are refused, so a misspelt option is never ignored silently.
        """
        refuse_unknown(options, OPTION_KEYS)
        return cls.parse(**{k: options[k] for k in OPTION_KEYS if k in options})


def refuse_unknown(names: Iterable[object], known: Sequence[str]) -> None:
    """:class:`~asm.errors.InvalidOption` naming any of ``names`` not in ``known``, so a
    misspelt option is never ignored silently."""
    unknown = sorted(set(names) - set(known), key=str)
    if unknown:
        raise InvalidOption(f"unknown option(s) {echo(', '.join(map(str, unknown)))}; known: {', '.join(known)}")
