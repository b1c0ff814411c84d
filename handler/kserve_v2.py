"""The Open Inference Protocol (KServe v2) for the asm handler: ``POST /v2/models/asm/infer``.

Request (JSON)::

    {"id": "42",
     "parameters": {"aspect": "16:9,1:1", "top_k": 3},             # options, here ...
     "inputs": [
       {"name": "image", "datatype": "BYTES", "shape": [1], "data": ["<base64 image file>"]},
       {"name": "aspect", "datatype": "BYTES", "shape": [2], "data": ["16:9", "1:1"]},  # ... or as inputs
       {"name": "top_k", "datatype": "INT32", "shape": [1], "data": [3]}]}

The image is the ``image`` (or ``data``) input: one BYTES element holding the file, base64
encoded as JSON requires. Options are the plain endpoint's (:mod:`asm.serving.wire`: ``aspect``,
``top_k``, ..., ``heatmap``), as request ``parameters``, ``parameters`` of the image input, or
inputs of their own name; giving one twice is refused.

Answer::

    {"id": "42", "model_name": "asm", "model_version": "0.1.0",
     "outputs": [
       {"name": "crops", "datatype": "BYTES", "shape": [1], "data": ["<the handler's JSON answer>"]},
       {"name": "boxes", "datatype": "INT32", "shape": [N, 4], "data": [x1, y1, x2, y2, ...]},
       {"name": "scores", "datatype": "FP32", "shape": [N], "data": [...]},
       {"name": "aspects", "datatype": "BYTES", "shape": [N], "data": ["16:9", ...]},
       {"name": "focal_point", "datatype": "FP32", "shape": [4], "data": [x, y, x_norm, y_norm]}]}

``focal_point``: asm's content focal point (:mod:`asm.search.focal`), in pixels and 0-1, for
image proxies that crop around one point. A refused request gets its HTTP status and ``{"error": code, "message": text}`` as on the
plain endpoint (KServe's own errors carry ``"error"`` too).

TorchServe's ``kservev2`` service envelope (``service_envelope=kservev2``, which KServe's
TorchServe runtime may set) hands the handler the request's inputs as rows instead of the
body: :func:`from_envelope` turns them back into one request, and the envelope itself writes
the v2 answer (one BYTES output holding the handler's JSON answer).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from asm.errors import BadRequest, echo
from asm.serving import wire

__all__ = ["request_of", "from_envelope", "parse", "response"]

IMAGE_INPUTS = ("image", "data")
#: Marks a request rebuilt from the envelope's rows: the envelope writes the v2 answer itself.
ENVELOPED = "_asm_enveloped"
_V2_KEYS = ("name", "datatype", "data")


def request_of(row: Any) -> dict[str, Any] | None:
    """The v2 request in one row TorchServe hands the handler (``{"body": {...}}``), else None."""
    body = row.get("body") if isinstance(row, Mapping) and len(row) == 1 else None
    if isinstance(body, Mapping) and isinstance(body.get("inputs"), list):
        return dict(body)
    return None


def from_envelope(rows: Any) -> dict[str, Any] | None:
    """One v2 request from the rows the ``kservev2`` envelope passes (its inputs, BYTES data
    already reduced to their first element), else None."""
    if isinstance(rows, list) and rows and all(isinstance(r, Mapping) and all(k in r for k in _V2_KEYS) for r in rows):
        return {ENVELOPED: True, "inputs": [{**r, "data": r["data"] if isinstance(r["data"], list) else [r["data"]]} for r in rows]}
    return None


def parse(request: Mapping[str, Any]) -> wire.Request:
    """The :class:`asm.serving.wire.Request` a v2 request holds; :class:`~asm.errors.BadRequest` if
    malformed, :class:`~asm.errors.InvalidOption` for a bad option (as on the plain endpoint)."""
    options: dict[str, Any] = {}

    def add(name: str, value: Any) -> None:
        if name in options:
            raise BadRequest(f"option {echo(name)} is given twice in the v2 request; give it once")
        options[name] = value

    image = None
    if not isinstance(request.get("parameters") or {}, Mapping):
        raise BadRequest('v2 "parameters" must be an object of option names and values')
    for name, value in dict(request.get("parameters") or {}).items():
        add(name, value)
    for tensor in request["inputs"]:
        if not isinstance(tensor, Mapping) or not isinstance(tensor.get("name"), str) or not isinstance(tensor.get("data"), list):
            raise BadRequest('every v2 input needs a "name" and a "data" list, e.g. '
                             '{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["<base64>"]}')
        name, data = tensor["name"], tensor["data"]
        if name in IMAGE_INPUTS:
            if image is not None or len(data) != 1 or tensor.get("datatype", "BYTES") != "BYTES":
                raise BadRequest('send one image per request: one BYTES input "image" holding one base64 string')
            image = wire.b64decode(data[0])
            if not isinstance(tensor.get("parameters") or {}, Mapping):
                raise BadRequest('the v2 input "image" has "parameters" that are not an object of option names and values')
            for key, value in dict(tensor.get("parameters") or {}).items():
                add(key, value)
        elif name == "aspect":
            add(name, ",".join(map(str, data)))
        elif len(data) == 1:
            add(name, data[0])
        else:
            raise BadRequest(f"option input {echo(name)} must hold one value, got {len(data)}")
    if image is None:
        raise BadRequest('the v2 request has no image: add an input {"name": "image", "datatype": "BYTES", '
                         '"shape": [1], "data": ["<base64 image file>"]}')
    if not image:
        raise BadRequest('the v2 input "image" is empty (0 bytes)')
    return wire.request(image, options)


def response(answer: Mapping[str, Any], request: Mapping[str, Any], model_name: str, model_version: str | None) -> dict[str, Any]:
    """The v2 answer around the handler's JSON ``answer`` ({width, height, crops, ...}); the
    answer itself for a request that came through the envelope (which wraps it)."""
    if request.get(ENVELOPED):
        return dict(answer)
    crops = answer["crops"]
    out: dict[str, Any] = {"model_name": model_name, "outputs": [
        {"name": "crops", "datatype": "BYTES", "shape": [1], "data": [json.dumps(answer, separators=(",", ":"))]},
        {"name": "boxes", "datatype": "INT32", "shape": [len(crops), 4], "data": [v for c in crops for v in c["box"]]},
        {"name": "scores", "datatype": "FP32", "shape": [len(crops)], "data": [c["score"] for c in crops]},
        {"name": "aspects", "datatype": "BYTES", "shape": [len(crops)], "data": [c["aspect"] for c in crops]},
    ]}
    if "focal_point" in answer:
        fp = answer["focal_point"]
        out["outputs"].append({"name": "focal_point", "datatype": "FP32", "shape": [4],
                               "data": [float(fp[k]) for k in ("x", "y", "x_norm", "y_norm")]})
    if model_version:
        out["model_version"] = str(model_version)
    if isinstance(request.get("id"), str):
        out["id"] = request["id"]
    return out
