"""The HTTP contract of ``POST /predictions/asm``: requests in, answers out, both sides.

Server side (the TorchServe handler, the demo tests' fake server)::

    request = wire.parse_form(fields)          # multipart / url-encoded form fields
    request = wire.parse_json(obj)             # {"image": "<base64>", "aspect": [...], ...}
    request = wire.parse_body(body, ctype)     # the raw image file as the body
    analysis = cropper.analyse(request.image)  # (or analyse_many for a batch)
    status, body = 200, wire.answer(analysis, request)   # or wire.error_answer(error)

Client side (the Gradio demo's TorchServe backend)::

    fields = wire.encode_form(options, heatmap=True)     # + the file as the field "data"
    result, overlays = wire.read_answer(status, body)    # or asm's typed error, raised

Options (every format): ``aspect`` (comma-separated or a repeated form field; a list in
JSON), ``circular``, ``top_k``, ``nms_iou``, ``faces``, ``keep`` (``x1,y1,x2,y2``, boxes
separated by ``;`` or a repeated field; ``[[x1, y1, x2, y2], ...]`` as JSON), ``focus``
(``x,y``; ``[x, y]``), ``min_scale`` (:class:`~asm.options.CropOptions`), and the output
choice ``heatmap``.

Answer: :meth:`CropResult.to_json <asm.results.CropResult.to_json>` plus, with
``heatmap=true``, ``"heatmaps": {"theta_avg": <base64 PNG>, "theta_std": <base64 PNG>}``
(:meth:`Analysis.overlays <asm.analysis.Analysis.overlays>`). A refusal is the error's
``http_status`` with ``{"error": code, "message": text}`` (:mod:`asm.errors`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from asm.analysis import OVERLAY_NAMES, Analysis
from asm.errors import AsmError, BadRequest, echo, from_dict
from asm.options import OPTION_KEYS, CropOptions, parse_bool, refuse_unknown
from asm.results import CropResult

__all__ = ["Request", "ServerError", "parse_form", "parse_json", "parse_body", "request", "b64decode",
           "encode_form", "answer", "error_answer", "is_error", "read_answer", "IMAGE_FIELDS", "OUTPUT_KEYS", "HOW_TO_SEND"]

#: Keys under which the image may arrive (multipart field / JSON key).
IMAGE_FIELDS = ("data", "image")
#: What the caller chooses to get back besides the crops.
OUTPUT_KEYS = ("heatmap",)
#: Form fields that may repeat, and how their values are joined for CropOptions.
REPEATABLE = {"aspect": ",", "keep": ";"}
HOW_TO_SEND = (
    "send the image as the raw body (curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg'), "
    "as a multipart file field 'data' (curl -F data=@photo.jpg -F aspect=16:9), "
    'or as JSON {"image": "<base64>", "aspect": "16:9"}'
)


@dataclass(frozen=True)
class Request:
    """One parsed request: the image file's bytes, the crop options, and whether the heatmap
    overlays go back too."""

    image: bytes
    options: CropOptions
    heatmap: bool = False


class ServerError(Exception):
    """The server failed (an ``internal_error``) or sent an answer that breaks this contract."""


# --------------------------------------------------------------------------- server: parse


def request(image: bytes, fields: Mapping[str, Any]) -> Request:
    """A :class:`Request` from the image and the option fields (any format); unknown names
    are refused (:class:`~asm.errors.InvalidOption`), so a misspelt option is never ignored."""
    refuse_unknown(fields, OPTION_KEYS + OUTPUT_KEYS)
    heatmap = parse_bool("heatmap", fields.get("heatmap", False))
    return Request(image, CropOptions.from_mapping({k: v for k, v in fields.items() if k not in OUTPUT_KEYS}), heatmap)


def parse_form(fields: Mapping[str, Any], content_type: str = "") -> Request:
    """A multipart or url-encoded form: the image file in ``data`` (or ``image``), options as
    text fields; a repeated field arrives as a list of its values."""
    if not isinstance(fields, Mapping):
        raise BadRequest(f"The request has no image; {HOW_TO_SEND}.")
    names = [k for k in IMAGE_FIELDS if k in fields]
    if not names:
        hint = ""
        if content_type.lower().startswith("application/x-www-form-urlencoded"):
            hint = " (the body arrived as url-encoded form data: set a Content-Type such as image/jpeg)"
        raise BadRequest(f"The request has no image{hint}; {HOW_TO_SEND}.")
    if len(names) > 1:
        raise BadRequest(f"Send the image in one field, not in both {' and '.join(names)}.")
    image = fields[names[0]]
    if isinstance(image, list):
        raise BadRequest(f"Send one image per request; the field {names[0]!r} came {len(image)} times.")
    if isinstance(image, str):
        image = image.encode("utf-8")
    if not isinstance(image, (bytes, bytearray)):
        raise BadRequest(f"The field {names[0]!r} must hold the image file itself; {HOW_TO_SEND}.")
    if not image:
        raise BadRequest(f"The field {names[0]!r} is empty (0 bytes); {HOW_TO_SEND}.")
    options: dict[str, Any] = {}
    for name, value in fields.items():
        if name in names:
            continue
        if isinstance(value, list):  # a repeated form field
            values = [_text(name, v) for v in value]
            if name not in REPEATABLE:
                raise BadRequest(f"option {echo(name)} was given {len(values)} times; give it once")
            value = REPEATABLE[name].join(values)
        options[name] = _text(name, value)
    return request(bytes(image), options)


def parse_json(obj: Any) -> Request:
    """A JSON body, decoded: ``{"image": "<base64 or data URL>", <options>}``."""
    if not isinstance(obj, Mapping):
        raise BadRequest(f'A JSON body must be an object {{"image": "<base64>", ...}}, got {type(obj).__name__}.')
    if "image" not in obj:
        raise BadRequest(f'The JSON object has no "image"; {HOW_TO_SEND}.')
    image = b64decode(obj["image"])
    if not image:
        raise BadRequest(f'The JSON "image" is empty (0 bytes); {HOW_TO_SEND}.')
    return request(image, {k: v for k, v in obj.items() if k != "image"})


def parse_body(body: bytes | bytearray | str, content_type: str = "") -> Request:
    """A raw body: the image file itself (default options). A text body or one that was
    meant to be JSON but does not parse is refused with how to send an image."""
    content_type = content_type.lower()
    if isinstance(body, str):
        raise BadRequest(f"The request body is text ({echo(content_type) if content_type else 'no content type'}), "
                         f"not an image; {HOW_TO_SEND}.")
    if content_type.startswith("application/json"):
        raise BadRequest(f"The request body is not valid JSON; {HOW_TO_SEND}.")
    if not body:
        raise BadRequest(f"The request body is empty (0 bytes); {HOW_TO_SEND}.")
    return request(bytes(body), {})


def b64decode(value: Any) -> bytes:
    """Base64 (standard or URL-safe, padding optional, or a ``data:`` URL) -> bytes."""
    if not isinstance(value, str):
        raise BadRequest(f'"image" must be a base64 string, got {type(value).__name__}')
    text = value.strip()
    if text.startswith("data:") and "," in text:  # data URL: data:image/png;base64,....
        text = text.split(",", 1)[1]
    text = "".join(text.split())
    altchars = b"-_" if ("-" in text or "_" in text) else None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest('"image" is not valid base64') from None


def _text(name: str, value: Any) -> Any:
    """A form field (bytes) as text; JSON values stay as they are."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"option {echo(name)} is not UTF-8 text") from None
    return value


# --------------------------------------------------------------------------- server: answer


def answer(analysis: Analysis, req: Request) -> dict[str, Any]:
    """The JSON answer to ``req``: the crops of ``analysis``, its content focal point
    (:mod:`asm.search.focal`) and, if asked, its heatmap overlays as base64 PNG."""
    from asm.io import encode_png

    out = analysis.crops(req.options, focal_point=True).to_json()
    if req.heatmap:
        out["heatmaps"] = {name: base64.b64encode(encode_png(picture)).decode("ascii")
                           for name, picture in analysis.overlays().items()}
    return out


def error_answer(error: BaseException, request_id: str = "?") -> tuple[int, dict[str, str]]:
    """``(status, {"error": code, "message": text})``: asm's own errors keep their status and
    message; anything else is a 500 that names only its type (the server log has the rest)."""
    if isinstance(error, AsmError):
        return int(error.http_status), error.to_dict()
    return 500, {"error": "internal_error",
                 "message": f"Internal error while cropping this image ({type(error).__name__}); "
                            f"request id {request_id}. The server log has the details."}


# --------------------------------------------------------------------------- client


def encode_form(options: CropOptions, heatmap: bool = False) -> dict[str, str]:
    """The text fields that carry ``options`` (and the heatmap choice) in a form; the
    server's :func:`parse_form` gives the same :class:`~asm.options.CropOptions` back
    (aspects travel by their labels, numbers exactly)."""
    fields = {
        "aspect": ",".join(a.label for a in options.aspects),
        "circular": _flag(options.circular),
        "top_k": str(options.top_k),
        "nms_iou": repr(options.nms_iou),
        "faces": _flag(options.faces),
        "min_scale": repr(options.min_scale),
        "heatmap": _flag(heatmap),
    }
    if options.keep:
        fields["keep"] = json.dumps([list(box) for box in options.keep])
    if options.focus is not None:
        fields["focus"] = json.dumps(list(options.focus))
    return fields


def _flag(value: bool) -> str:
    return "true" if value else "false"


def is_error(body: Any) -> bool:
    """Whether a decoded answer is an asm refusal ``{"error": code, "message": text}``."""
    return isinstance(body, Mapping) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str)


def read_answer(status: int, body: Any) -> tuple[CropResult, dict[str, np.ndarray]]:
    """``(result, overlays)`` from a decoded answer (``overlays``: ``{"theta_avg", "theta_std"}``
    -> ``[H, W, 3]`` uint8, empty unless asked for). A refusal raises asm's typed error
    (:func:`asm.errors.from_dict`); a server failure or an answer that breaks the contract
    raises :class:`ServerError`."""
    from asm.io import load_image

    if status >= 400 or is_error(body):
        error = from_dict(body) if is_error(body) else None
        if error is not None:
            raise error
        message = body.get("message") if isinstance(body, Mapping) else None
        raise ServerError(f"the asm server failed (HTTP {status}): {message if isinstance(message, str) else echo(body)}")
    try:
        result = CropResult.from_json(body)
        maps = body.get("heatmaps") or {}
        if set(maps) - set(OVERLAY_NAMES):
            raise ValueError(f"unknown heatmaps {echo(sorted(set(maps) - set(OVERLAY_NAMES)))}")
        overlays = {name: load_image(base64.b64decode(text, validate=True), min_side=1) for name, text in maps.items()}
    except (AsmError, KeyError, TypeError, ValueError, binascii.Error) as e:
        raise ServerError(f"the asm server sent an answer asm cannot read ({type(e).__name__}: {echo(str(e))})") from None
    return result, overlays
