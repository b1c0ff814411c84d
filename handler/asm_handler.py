"""TorchServe handler for asm: ``POST /predictions/asm`` -> the best crops of an image.

A thin shell over :class:`asm.cropper.Cropper`: it unpacks what TorchServe hands over,
analyses the batch's images in one call (``Cropper.analyse_many``: safe decode, one batched
forward pass), asks each analysis for its crops (and heatmap overlays) and turns the
results, or the errors, into JSON. It never decodes, resizes, searches or draws by itself.

The request and answer formats (raw body, multipart form, JSON with base64; options;
``{"width", "height", "crops", ...}`` plus ``heatmaps`` with ``heatmap=true``; refusals as
``{"error": code, "message": text}`` with the error's status) are :mod:`asm.serving.wire`'s, shared
with the demo's TorchServe client. URL query parameters never reach a TorchServe handler,
so options travel in the multipart form or the JSON object. Every refused request gets its
own status; the other requests of its batch are answered normally.

What TorchServe 0.12 hands ``handle`` (one dict per request):

* raw body with ``Content-Type: image/*`` / ``application/octet-stream`` / none at all
  (``curl -T``): ``{"body": bytearray}``;
* ``text/*``: ``{"body": str}`` (``bytearray`` if it is not UTF-8);
* ``application/json``: ``{"body": <parsed JSON>}`` (``bytearray`` if it does not parse);
* multipart or url-encoded form: one key per field, every value a ``bytearray``; a
  repeated field keeps only its last value unless :func:`_keep_repeated_fields` is
  installed (it is, in :meth:`AsmHandler.initialize`: the handler cannot see that a value
  was dropped, and ``-F aspect=16:9 -F aspect=1:1`` must not answer for 1:1 alone);
* ``curl --data-binary`` without a content type sends
  ``application/x-www-form-urlencoded``: binary data is refused by the frontend (HTTP 500
  ``ErrorDataDecoderException``) before any handler runs; text-like data arrives as
  nonsense form fields, answered here with a 400 that says how to send an image.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import types
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
#: The asm package travels inside the archive as a zip (``make archive``); it wins over an
#: installed asm so the server runs exactly the code that was archived.
_ASM_ZIP = os.path.join(_HERE, "asm.zip")
if os.path.isfile(_ASM_ZIP) and _ASM_ZIP not in sys.path:
    sys.path.insert(0, _ASM_ZIP)

try:
    import torch

    from asm.cropper import Cropper
    from asm.errors import ImageTooLarge
    from asm.ops import kernel as pool_kernel
    from asm.serving import wire
    from asm.settings import CropperSettings
except ImportError as e:  # TorchServe would hide an ImportError behind "no module ts.torch_handler..."
    raise RuntimeError(
        f"asm handler: cannot import asm ({e}); the archive should contain asm.zip (make archive) "
        "and the host needs torch, torchvision, onnxruntime, numpy, pillow, opencv-python-headless and matplotlib"
    ) from e

from ts.torch_handler.base_handler import BaseHandler

import kserve_v2  # the Open Inference Protocol (KServe v2); travels in the archive next to this file

try:
    from ts.metrics.dimension import Dimension
    from ts.metrics.metric_type_enum import MetricTypes
except ImportError:  # pragma: no cover - metrics are optional
    Dimension = MetricTypes = None

logger = logging.getLogger(__name__)

MODEL_NAME = "asm"
#: Handler settings (model-config.yaml ``handler:`` section overrides them). The cropper's own
#: (``runtime``, ``threads``, ``max_pixels``: larger images get a 413) are
#: :class:`~asm.settings.CropperSettings`'s, with its defaults; ``threads`` 0 is the runtime's default.
DEFAULTS = {
    "heatmap_max_pixels": 4_000_000,  # heatmap overlays are full size PNGs: bound the work
    "max_response_bytes": 16_000_000,  # keep under config.properties max_response_size
    "warmup": True,
}


# --------------------------------------------------------------------------- helpers


def _phrase(message: str, limit: int = 180) -> str:
    """HTTP reason phrase: printable ASCII on one line.

    TorchServe 0.12 packs the phrase's length in characters but writes UTF-8 bytes, and the
    frontend rejects control characters: either kills the worker. Messages can echo what
    the client sent, so they are cleaned here (the JSON body keeps the full message).
    """
    text = "".join(c if " " <= c <= "~" else "?" for c in " ".join(str(message).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _headers(context: Any, idx: int) -> dict[str, str]:
    try:
        return {str(k).lower(): v for k, v in (context.get_all_request_header(idx) or {}).items() if isinstance(v, str)}
    except Exception:
        return {}


def _request(row: Any, content_type: str) -> wire.Request:
    """One request as TorchServe hands it over, parsed by :mod:`asm.serving.wire`: a lone ``body``
    is the raw body (bytes or text) or the parsed JSON; anything else is form fields."""
    if isinstance(row, dict) and len(row) == 1 and "body" in row:
        body = row["body"]
        if isinstance(body, (bytes, bytearray, str)):
            return wire.parse_body(body, content_type)
        return wire.parse_json(body)
    return wire.parse_form(row, content_type)


def _keep_repeated_fields() -> bool:
    """Let a repeated form field (``-F aspect=16:9 -F aspect=1:1``) reach the handler as a list.

    TorchServe 0.12's Python backend builds each request's dict with ``dict.update`` per
    field, so only the last value of a repeated field survives. This wraps
    ``ts.service.Service.retrieve_data_for_inference`` (in the worker process only) to put
    the list of values back for names that occur more than once. Returns whether it is on.
    """
    try:
        from ts.service import Service
    except ImportError:
        return False
    original = Service.retrieve_data_for_inference
    if getattr(original, "_asm_keeps_repeats", False):
        return True

    def retrieve_data_for_inference(batch):
        headers, input_batch, req_id_map = original(batch)
        try:
            for i, request in enumerate(batch or []):
                values: dict[str, list] = {}
                for parameter in request.get("parameters") or []:
                    values.setdefault(parameter["name"], []).append(parameter["value"])
                for name, vs in values.items():
                    if len(vs) > 1:
                        input_batch[i][name] = vs
        except Exception:  # never let this break a batch: fall back to TorchServe's view
            logger.warning("could not collect repeated form fields", exc_info=True)
        return headers, input_batch, req_id_map

    retrieve_data_for_inference._asm_keeps_repeats = True
    Service.retrieve_data_for_inference = staticmethod(retrieve_data_for_inference)
    return True


# --------------------------------------------------------------------------- handler


class AsmHandler(BaseHandler):
    """TorchServe entry point: ``initialize`` once per worker, ``handle`` once per batch."""

    def __init__(self) -> None:
        super().__init__()
        self.cropper: Cropper | None = None
        self.settings = dict(DEFAULTS)

    # ------------------------------------------------------------------ setup
    def initialize(self, context: Any) -> None:
        """Build the Cropper from the archived model file (the .mar's ``serializedFile``)."""
        self.context = context
        self.manifest = context.manifest
        props = context.system_properties
        model_dir = props.get("model_dir") or _HERE
        yaml_cfg = getattr(context, "model_yaml_config", None) or {}
        self.settings.update((yaml_cfg.get("handler") or {}) if isinstance(yaml_cfg, dict) else {})

        gpu_id = props.get("gpu_id")
        if torch.cuda.is_available() and gpu_id is not None:
            self.device = torch.device(f"cuda:{gpu_id}")
        else:
            self.device = torch.device("cpu")

        serialized = (self.manifest or {}).get("model", {}).get("serializedFile")
        if not serialized:
            raise RuntimeError("asm handler: the archive has no model file (torch-model-archiver --serialized-file)")
        threads = int(self.settings.get("threads") or 0) or None  # sizes ONNX Runtime (and torch) directly
        self.cropper = CropperSettings.from_mapping(
            {**self.settings, "model": os.path.join(model_dir, serialized), "threads": threads, "device": str(self.device)}
        ).build()
        self.repeated_fields = _keep_repeated_fields()
        if self.settings.get("warmup"):
            self._warmup()
        self.initialized = True
        logger.info(
            "asm handler ready: model %s on %s (%s), threads %s, batch size %s, repeated form fields %s, "
            "pooling op on the CPU: %s",
            serialized, self.device, self.cropper.runtime, threads or "the runtime's default", props.get("batch_size"),
            "kept" if self.repeated_fields else "last value only", pool_kernel.describe(),
        )

    def _warmup(self) -> None:
        """One small crop so the first client does not pay for lazy initialisation."""
        import numpy as np

        image = np.tile(np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None], (240, 1, 3))
        self.cropper.crop(image)

    # ------------------------------------------------------------------ entry point
    def handle(self, data: list | None, context: Any) -> list | None:
        """One answer per request; no request can spoil another or take the worker down."""
        if data is None:  # function-style initialisation call; nothing to answer
            return None
        start = time.perf_counter()
        self.context = context
        if len(data) == 1 and not data[0] and _headers(context, 0).get("describe") == "True":
            return [json.dumps(self.describe_handle())]
        enveloped = kserve_v2.from_envelope(data)  # TorchServe's kservev2 envelope: one request's inputs
        if enveloped is not None:
            data = [{"body": enveloped}]
        items = self.preprocess(data)
        self.inference(items)
        output = self.postprocess(items)
        self._metric("add_time", "HandlerTime", round((time.perf_counter() - start) * 1000, 2), None)
        return output

    def describe_handle(self) -> dict[str, Any]:
        model = self.cropper.model if self.cropper is not None else None
        return {"model": MODEL_NAME, "config": dict(getattr(model, "config", {}) or {}), "meta": getattr(model, "meta", {})}

    # ------------------------------------------------------------------ steps
    def preprocess(self, data: list) -> list[types.SimpleNamespace]:
        """Per request: the parsed :class:`asm.serving.wire.Request` (image bytes, options, outputs)."""
        items = []
        for i, row in enumerate(data):
            item = types.SimpleNamespace(idx=i, start=time.perf_counter(), request=None, analysis=None, error=None,
                                         v2=kserve_v2.request_of(row))
            items.append(item)
            try:
                if item.v2 is not None:
                    item.request = kserve_v2.parse(item.v2)
                else:
                    item.request = _request(row, _headers(self.context, i).get("content-type", "").lower())
            except Exception as e:  # noqa: BLE001 - request-level isolation
                item.error = e
        return items

    def inference(self, items: list[types.SimpleNamespace], *args: Any, **kwargs: Any) -> list[types.SimpleNamespace]:
        """One core call for the batch: ``Cropper.analyse_many`` (decode each image, one
        forward pass per input size); an image that fails is that request's own error."""
        ok = [it for it in items if it.error is None]
        for it, analysis in zip(ok, self.cropper.analyse_many([it.request.image for it in ok], return_exceptions=True)):
            if isinstance(analysis, Exception):
                it.error = analysis
            else:
                it.analysis = analysis
        return items

    def postprocess(self, items: list[types.SimpleNamespace]) -> list[str]:
        """Per request: crops, heatmaps, JSON; errors become that request's own 4xx/500."""
        out = []
        for it in items:
            if it.error is None:
                try:
                    body = self._answer(it)
                    limit = int(self.settings["max_response_bytes"])
                    if len(body) > limit:
                        raise ImageTooLarge(
                            f"The answer would be {len(body) / 1e6:.1f} MB, over this server's limit of "
                            f"{limit / 1e6:.1f} MB (heatmap overlays of a large image). "
                            "Leave out heatmap or send a smaller image."
                        )
                    self._set_status(it.idx, 200, "OK")
                    self._metric("add_time", "CropLatency", round(time.perf_counter() - it.start, 4), it.idx,
                                 unit="s", metric_type=getattr(MetricTypes, "HISTOGRAM", None))
                    out.append(body)
                    continue
                except Exception as e:  # noqa: BLE001
                    it.error = e
            out.append(self._error(it))
            it.analysis = None  # free big arrays early
        return out

    def _answer(self, it: types.SimpleNamespace) -> str:
        analysis = it.analysis
        if it.request.heatmap and analysis.width * analysis.height > int(self.settings["heatmap_max_pixels"]):
            raise ImageTooLarge(
                f"Heatmap overlays are returned for images up to {int(self.settings['heatmap_max_pixels']):,} "
                f"pixels; this one has {analysis.width}x{analysis.height}. Leave out heatmap or send a smaller image."
            )
        result = wire.answer(analysis, it.request)
        if it.v2 is not None:
            model = (self.manifest or {}).get("model", {})
            result = kserve_v2.response(result, it.v2, model.get("modelName", MODEL_NAME), model.get("modelVersion"))
        return json.dumps(result, separators=(",", ":"))

    def _error(self, it: types.SimpleNamespace) -> str:
        status, payload = wire.error_answer(it.error, self._request_id(it.idx))
        if status < 500:
            logger.info("request %s refused: %s %s", self._request_id(it.idx), payload["error"], _phrase(payload["message"]))
        else:
            logger.error("request %s failed: %s", self._request_id(it.idx), payload["error"], exc_info=it.error)
        self._set_status(it.idx, status, payload["message"])
        self._metric("add_counter", "RequestsRefused", 1, it.idx, reason=payload["error"])
        return json.dumps(payload)

    # ------------------------------------------------------------------ TorchServe glue
    def _request_id(self, idx: int) -> str:
        try:
            return str(self.context.get_request_id(idx))
        except Exception:
            return "?"

    def _set_status(self, idx: int, code: int, message: str) -> None:
        self.context.set_response_content_type(idx, "application/json")
        if code != 200:
            self.context.set_response_status(code, _phrase(message), idx=idx)

    def _metric(self, method: str, name: str, value: float, idx: int | None, reason: str | None = None, **kwargs: Any) -> None:
        """Custom metrics through TorchServe's metrics API; a metrics problem never fails a request.

        ``CropLatency`` (seconds, histogram): from the start of a request's decoding to its
        answer. ``RequestsRefused{Reason=<error code>}`` (counter): every 4xx / 500 answer.
        """
        metrics = getattr(self.context, "metrics", None)
        if metrics is None:
            return
        try:
            dims = [Dimension("Reason", reason)] if (reason is not None and Dimension is not None) else []
            kwargs = {k: v for k, v in kwargs.items() if v is not None}
            getattr(metrics, method)(name, value, idx=idx, dimensions=dims, **kwargs)
        except Exception:  # noqa: BLE001
            logger.debug("metric %s not recorded", name, exc_info=True)
