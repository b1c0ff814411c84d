"""The asm web demo: upload a photo, pick aspect ratios, see the crops asm picks and why.

Run it with ``make demo`` or::

    python -m gradio_demo.app [--port N] [--model PATH] [--backend URL [--token T]]

It serves on 127.0.0.1 (``--host`` to change). Two named API endpoints, for
``gradio_client``::

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    answer = client.predict(handle_file("photo.jpg"), api_name="/crop")   # the JSON only
    # {"width": 800, "height": 450, "crops": [{"box": [x1, y1, x2, y2], "score": ..., ...}]}
    client.predict(handle_file("photo.jpg"), ["16:9", "1:1"], "", False, 3, api_name="/crop")

``/crop_view`` returns everything the page shows (drawn crops, cut-outs, θ maps, JSON).

This module is a shell: the crops come from :class:`asm.cropper.Cropper` (in-process, one
``analyse`` call per image) or from a running TorchServe (``--backend``, in :mod:`asm.serving.wire`'s
format), decoding from :func:`asm.io.load_image`, and every picture from :mod:`asm.viz`. It
never crops, resizes or draws by itself.
"""

from __future__ import annotations

import os

# Offline by default: no telemetry / version check from Gradio (read when Gradio runs).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import base64
import hashlib
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from asm import viz
from asm.cropper import Cropper
from asm.settings import CropperSettings
from asm.errors import AsmError, echo
from asm.io import load_image
from asm.options import DEFAULT_MIN_SCALE, CropOptions
from asm.results import CropResult
from asm.serving import wire
from asm.serving.client import Client, ClientError, Refused, Unavailable

__all__ = [
    "build_demo",
    "main",
    "parse_options",
    "LocalEngine",
    "BackendEngine",
    "BackendError",
    "Answer",
    "EXAMPLES",
    "ASPECT_CHOICES",
]

HERE = Path(__file__).resolve().parent
EXAMPLES_DIR = HERE.parent / "examples"  # the repository's example photos (examples/README.md)
ASPECT_CHOICES = ["9:16", "3:4", "1:1", "4:3", "16:9", "free"]
DEFAULT_ASPECTS = ["16:9", "1:1", "free"]
DEFAULT_TOP_K = 1
MAX_TOP_K_UI = 5
MAX_UPLOAD = "25mb"  # bytes on the wire; the pixel limit is asm.io's (checked from the header)

#: (file, aspects, custom W:H, circular, top-k, heatmaps): one example per row, each showing
#: something else (several ratios, round avatars, top-k alternatives, custom ratios).
EXAMPLES: list[tuple[str, list[str], str, bool, int, bool]] = [
    ("osprey.jpg", ["16:9", "1:1", "free"], "", False, 1, True),
    ("otters.jpg", [], "", True, 2, True),
    ("desert-hike.jpg", ["9:16", "1:1"], "", False, 2, True),
    ("dogs-window.jpg", ["1:1", "16:9"], "1.91:1", False, 1, True),
    ("dandelion.jpg", ["3:4", "9:16"], "", False, 2, True),
    ("colorado-sign.jpg", ["free"], "2:1", False, 3, True),
]

CAPTION_AVG = "**θ_avg: where the content matters.** Good crops keep the bright parts (paper §3.2)."
CAPTION_STD = "**θ_std: where placement matters.** Bright parts must land in the right place in the crop (paper §3.2)."

INTRO = """\
# asm: composition-aware cropping
Upload a photo (or pick an example below), choose the aspect ratios you need and press
**Crop**. asm (ASM-Net, AAAI 2020) scores every candidate crop on one *aesthetic score map*
and keeps the best, mutually distinct ones. The two heatmaps show why.
"""

CSS = """
.asm-caption p { font-size: 0.9em; margin: 0.2em 0 0.6em 0; }
/* Gradio gives fewer results than columns the whole width (one round crop became a 700 px
   square cut by the gallery's height): keep every result a fifth of the row. */
#asm-gallery .grid-container { grid-template-columns: repeat(5, minmax(0, 1fr)) !important; }
"""


class BackendError(Exception):
    """The TorchServe backend refused the request, failed, or could not be reached."""


@dataclass
class Answer:
    """What one request produced: the decoded image, the crops, the θ overlays (if asked)."""

    image: np.ndarray  # [H, W, 3] uint8 RGB, EXIF-oriented
    result: CropResult
    theta_avg: np.ndarray | None = None  # RGB overlay, same size as image
    theta_std: np.ndarray | None = None


# --------------------------------------------------------------------------- engines
class LocalEngine:
    """Crops with an in-process :class:`~asm.cropper.Cropper`."""

    def __init__(self, cropper: Cropper) -> None:
        self.cropper = cropper

    def describe(self) -> str:
        return "in-process model"

    def fingerprint(self) -> str:
        if getattr(self.cropper.model, "digest", ""):  # an ONNX twin names its checkpoint's SHA-256
            return self.cropper.model.digest
        h = hashlib.sha256()
        for name, tensor in self.cropper.model.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def run(self, source: Any, options: CropOptions, heatmap: bool) -> Answer:
        analysis = self.cropper.analyse(source)
        return Answer(analysis.image, analysis.crops(options, focal_point=True), **(analysis.overlays() if heatmap else {}))


class BackendEngine:
    """Crops with a running TorchServe: ``POST {url}/predictions/asm`` through
    :class:`asm.serving.client.Client` (multipart ``data``, options as form fields; a request
    whose worker died is sent again). The image is also decoded here, by
    :func:`asm.io.load_image` (bad uploads never leave the demo, and the drawing needs the pixels)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 120.0, model_name: str = "asm") -> None:
        self.url = url.rstrip("/")
        self.endpoint = f"{self.url}/predictions/{model_name}"
        self.token = token or None
        self._client = Client(self.url, token=self.token, timeout=timeout, retries=3, model=model_name)

    def describe(self) -> str:
        return f"TorchServe at {self.url}"

    def fingerprint(self) -> str:
        return hashlib.sha256(self.endpoint.encode()).hexdigest()

    def close(self) -> None:
        self._client.close()

    def run(self, source: Any, options: CropOptions, heatmap: bool) -> Answer:
        rgb = load_image(source)
        payload = Path(source).read_bytes() if isinstance(source, (str, os.PathLike)) else bytes(source)
        try:
            body = self._client.crop(payload, **wire.encode_form(options, heatmap))
        except Refused as e:  # TorchServe's own answers, not the handler's (asm's come back typed)
            raise BackendError(_torchserve_message(e.status, e.error, e.message, self.url, len(payload))) from None
        except Unavailable as e:
            raise BackendError(f"the asm server at {self.url} did not answer ({e}). Is TorchServe running?") from None
        except ClientError as e:
            raise BackendError(str(e)) from None
        try:
            result, overlays = wire.read_answer(200, body)
        except wire.ServerError as e:
            raise BackendError(str(e)) from None
        if (result.width, result.height) != (rgb.shape[1], rgb.shape[0]):
            raise BackendError(f"the asm server saw a {result.width}x{result.height} image, the demo decoded "
                               f"{rgb.shape[1]}x{rgb.shape[0]}")
        return Answer(rgb, result, **overlays)


def _torchserve_message(status: int | None, kind: str | None, message: str | None, url: str, size: int) -> str:
    """A clear sentence for what TorchServe itself answers (handler/README.md): a missing or
    wrong token is a 400 ``InvalidKeyException``, a body over ``max_request_size`` a 413
    with an empty body."""
    if status in (401, 403) or kind == "InvalidKeyException":
        return f"the asm server at {url} refused the token (HTTP {status}); check --token / ASM_TOKEN"
    if status == 413:
        return (f"the image file ({size / 1e6:.1f} MB) is larger than the asm server at {url} accepts "
                "(TorchServe's max_request_size); send a smaller file")
    return f"the asm server refused the request (HTTP {status}): {echo(message or kind or '')}"


# --------------------------------------------------------------------------- request logic
def parse_options(aspects: Sequence[str] | None, custom: str | None, circular: Any, top_k: Any, faces: Any = True,
                  keep: str | None = "", focus: str | None = "", min_scale: Any = None) -> CropOptions:
    """The form's values as :class:`CropOptions` (raises :class:`asm.errors.InvalidOption`).

    ``custom`` holds extra ``W:H`` ratios, comma-separated. Round crops are always 1:1, so
    with ``circular`` the aspect choices are ignored (the form says so). ``keep`` holds
    boxes ``x1,y1,x2,y2`` separated by ``;``, ``focus`` a point ``x,y`` (image pixels).
    """
    chosen = [str(a) for a in (aspects or [])]
    chosen += [part.strip() for part in str(custom or "").split(",") if part.strip()]
    circular = bool(circular) if isinstance(circular, (bool, int, np.integer)) else circular
    if circular is True:
        chosen = []
    return CropOptions.from_mapping({"aspect": chosen or None, "circular": circular,
                                     "top_k": DEFAULT_TOP_K if top_k is None else top_k,
                                     "faces": True if faces is None else faces, "keep": keep, "focus": focus,
                                     "min_scale": min_scale})


class _Runner:
    """The functions behind the UI button and the API endpoints."""

    def __init__(self, engine: LocalEngine | BackendEngine) -> None:
        self.engine = engine

    def _answer(self, image: Any, aspects: Any, custom: Any, circular: Any, top_k: Any, heatmap: bool,
                *wishes: Any) -> tuple[Answer, CropOptions]:
        if image is None:
            raise gr.Error("Upload a photo first (JPEG, PNG, WebP, GIF, BMP or TIFF).", print_exception=False)
        try:
            options = parse_options(aspects, custom, circular, top_k, *wishes)
            return self.engine.run(image, options, bool(heatmap)), options
        except AsmError as e:  # the in-process cropper's, or the server's refusal (asm.serving.wire)
            message = str(e)
            if isinstance(image, _Upload):  # name the user's file, not Gradio's temp copy
                message = message.replace(str(image), image.display_name)
            raise gr.Error(message, title=e.title, print_exception=False) from None
        except BackendError as e:
            raise gr.Error(str(e), title="asm server", print_exception=False) from None

    def crop(self, image: Any, aspects: Any, custom: Any, circular: Any, top_k: Any, faces: Any = True,
             keep: Any = "", focus: Any = "", min_scale: Any = None) -> dict[str, Any]:
        """Best crops of the image: ``{"width", "height", "crops": [{"box", "score", "aspect", "shape", ...}], "faces"}``."""
        answer, _ = self._answer(image, aspects, custom, circular, top_k, False, faces, keep, focus, min_scale)
        return answer.result.to_json()

    def crop_view(self, image: Any, aspects: Any, custom: Any, circular: Any, top_k: Any, heatmap: Any, faces: Any = True,
                  keep: Any = "", focus: Any = "", min_scale: Any = None):
        """Everything the page shows: crops (with faces, keep boxes and focus) drawn, cut-outs,
        θ_avg / θ_std overlays, JSON."""
        answer, options = self._answer(image, aspects, custom, circular, top_k, bool(heatmap), faces, keep, focus, min_scale)
        for warning in answer.result.warnings:
            gr.Warning(warning)
        crops = answer.result.crops
        marked = viz.draw_regions(answer.image, answer.result.faces or (), options.keep, options.focus)
        drawn = viz.draw_crops(marked, crops)
        cutouts = [
            (viz.cut_crop(answer.image, c), f"#{i + 1} {c.aspect}{' circle' if c.shape == 'circle' else ''} · {c.score:.3f}")
            for i, c in enumerate(crops)
        ]
        return drawn, cutouts, answer.theta_avg, answer.theta_std, answer.result.to_json()


class _Upload(str):
    """The path of an uploaded file, with the name the user knows it by."""

    display_name: str


def _photo_input(**kwargs: Any) -> gr.Image:
    """A ``gr.Image`` input that hands the function the uploaded file *unopened*.

    Plain ``gr.Image`` opens the upload with PIL before our code runs, so a non-image or a
    decompression bomb fails inside Gradio with an unreadable error. Here the file goes to
    :func:`asm.io.load_image`, which checks it safely and says what is wrong. (An instance
    override, not a subclass: Gradio writes a ``.pyi`` stub next to the source of every
    component subclass.)
    """
    component = gr.Image(type="filepath", **kwargs)
    component.preprocess = types.MethodType(_preprocess_unopened, component)  # type: ignore[method-assign]
    return component


def _preprocess_unopened(self: gr.Image, payload: Any) -> _Upload | bytes | None:
    if payload is None:
        return None
    url = getattr(payload, "url", None)
    if url and url.startswith("data:"):
        try:
            return base64.b64decode(url.split(",", 1)[-1], validate=False)
        except ValueError:
            raise gr.Error("The uploaded data is not valid base64.", print_exception=False) from None
    if payload.path is None:
        raise gr.Error("No image was uploaded.", print_exception=False)
    upload = _Upload(payload.path)
    upload.display_name = Path(getattr(payload, "orig_name", None) or payload.path).name
    return upload


# --------------------------------------------------------------------------- the app
def _cache_dir(engine: LocalEngine | BackendEngine) -> Path:
    """A cache folder per (model or backend, asm code and fitted data in every subpackage, demo
    code, examples): a new model, a changed module or calibration (``asm/search/framing.json``)
    or a changed example never shows stale cached results."""
    root = Path(os.environ.get("ASM_DEMO_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asm" / "gradio-examples")
    h = hashlib.sha256(engine.fingerprint().encode())
    asm_dir = Path(viz.__file__).resolve().parent
    sources = sorted([*asm_dir.rglob("*.py"), *asm_dir.rglob("*.json")])
    for path in sources + [Path(__file__).resolve()] + [EXAMPLES_DIR / e[0] for e in EXAMPLES]:
        h.update(str(path.relative_to(asm_dir) if path.is_relative_to(asm_dir) else path.name).encode())
        h.update(path.read_bytes())
    h.update(repr(EXAMPLES).encode() + gr.__version__.encode())
    return root / h.hexdigest()[:16]


def build_demo(
    cropper: Cropper | None = None,
    *,
    model: str | os.PathLike | None = None,
    backend: str | None = None,
    token: str | None = None,
    cache_examples: str = "eager",
    concurrency: int = 1,
    queue_size: int = 64,
) -> gr.Blocks:
    """The Gradio app (not launched; see :func:`launch_kwargs` for how ``main`` launches it).

    Args:
        cropper: the in-process cropper (default: ``CropperSettings(model).build()``);
            ignored with ``backend``.
        model: a model file for the default cropper.
        backend: a TorchServe base URL; crops come from ``POST {backend}/predictions/asm``.
        token: bearer token for the backend (default: env ``ASM_TOKEN``).
        cache_examples: ``"eager"`` (computed at launch, kept on disk per model),
            ``"lazy"`` (on first click) or ``"off"``.
        concurrency: requests that run at once (all endpoints share it).
        queue_size: requests that may wait; more are turned away with Gradio's "Queue is full".
            64 by default, so that the last in line waits well under a minute (the timings:
            benchmarks/results/); past that, "busy, try again" beats a long wait.
    """
    if cache_examples not in ("eager", "lazy", "off"):
        raise ValueError(f"cache_examples must be 'eager', 'lazy' or 'off', got {cache_examples!r}")
    if backend:
        engine: LocalEngine | BackendEngine = BackendEngine(backend, token if token is not None else os.environ.get("ASM_TOKEN"))
    else:
        engine = LocalEngine(cropper if cropper is not None else CropperSettings(model).build())
    runner = _Runner(engine)

    # Gradio serves only files under the working dir, the temp dir or launch(allowed_paths=...):
    # the examples and their cache (by default in ~/.cache/asm) are allowed explicitly.
    allowed = [str(EXAMPLES_DIR)]
    if cache_examples != "off":
        # Gradio reads this when it caches and again when it serves the cached files.
        os.environ["GRADIO_EXAMPLES_CACHE"] = str(_cache_dir(engine))
        allowed.append(os.environ["GRADIO_EXAMPLES_CACHE"])

    with gr.Blocks(title="asm: composition-aware cropping", analytics_enabled=False) as demo:
        # outputs first (rendered further down) so the examples, in the left column, can fill them
        drawn = gr.Image(
            label="Crops on the photo", show_label=False, format="jpeg", height=400, interactive=False,
            buttons=["fullscreen"], elem_id="asm-drawn", render=False,
        )  # no label or download badge over the crop labels (the picture is self-explanatory)
        gallery = gr.Gallery(
            label="Cropped results (circles as transparent PNG)", format="png", columns=5, height=230,
            object_fit="contain", interactive=False, elem_id="asm-gallery", render=False,
        )
        theta_avg = gr.Image(label="θ_avg", format="jpeg", height=230, interactive=False, elem_id="asm-theta-avg", render=False)
        theta_std = gr.Image(label="θ_std", format="jpeg", height=230, interactive=False, elem_id="asm-theta-std", render=False)
        answer = gr.JSON(label="JSON answer", open=False, max_height=300, elem_id="asm-json", render=False)

        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                image = _photo_input(label="Photo", sources=["upload", "clipboard"], height=260, elem_id="asm-input")
                aspects = gr.CheckboxGroup(
                    ASPECT_CHOICES, value=DEFAULT_ASPECTS, label="Aspect ratios (width:height)",
                    info="One best crop per ratio; 'free' lets asm choose the shape.",
                )
                custom = gr.Textbox("", label="Custom W:H", placeholder="e.g. 1.91:1 or 2:3, 5:4", max_lines=1)
                with gr.Row():
                    circular = gr.Checkbox(label="Circular", info="Round 1:1 crops (avatars); ignores the ratios.", elem_id="asm-circular")
                    heatmap = gr.Checkbox(value=True, label="Heatmaps", info="Show θ_avg and θ_std.", elem_id="asm-heatmap")
                top_k = gr.Slider(1, MAX_TOP_K_UI, value=DEFAULT_TOP_K, step=1, label="Top-k", info="Distinct alternatives per ratio.")
                with gr.Accordion("Faces, keep-regions, focus, zoom", open=False):
                    faces = gr.Checkbox(value=True, label="Faces", info="Detect faces (drawn in white) and keep them whole.",
                                        elem_id="asm-faces")
                    keep = gr.Textbox("", label="Keep boxes (green)", placeholder="x1,y1,x2,y2; x1,y1,x2,y2 (image pixels)",
                                      max_lines=1, elem_id="asm-keep")
                    focus = gr.Textbox("", label="Focus point", placeholder="x,y (image pixels)", max_lines=1, elem_id="asm-focus")
                    min_scale = gr.Slider(0.1, 1.0, value=DEFAULT_MIN_SCALE, step=0.05, label="Min scale",
                                          info="Fixed ratios: smallest crop side, as a share of the largest crop (1: the largest box). Free crops choose their own size.",
                                          elem_id="asm-min-scale")
                run = gr.Button("Crop", variant="primary", elem_id="asm-run")
                inputs = [image, aspects, custom, circular, top_k, heatmap, faces, keep, focus, min_scale]
                outputs = [drawn, gallery, theta_avg, theta_std, answer]
                gr.Examples(
                    [[str(EXAMPLES_DIR / name), *options, True, "", "", DEFAULT_MIN_SCALE] for name, *options in EXAMPLES],
                    inputs=inputs,
                    outputs=outputs,
                    fn=runner.crop_view,
                    cache_examples=cache_examples != "off",
                    cache_mode="lazy" if cache_examples == "lazy" else "eager",
                    run_on_click=True,
                    visible_columns=[0],  # thumbnails; the options they use appear on click
                    label="Examples (open-licence photos, credits in examples/README.md)",
                    examples_per_page=len(EXAMPLES),
                    elem_id="asm-examples",
                )
            with gr.Column(scale=3, min_width=420):
                drawn.render()
                gallery.render()
                with gr.Row(equal_height=False, elem_id="asm-heat") as heat_row:
                    with gr.Column(min_width=200):
                        theta_avg.render()
                        gr.Markdown(CAPTION_AVG, elem_classes="asm-caption")
                    with gr.Column(min_width=200):
                        theta_std.render()
                        gr.Markdown(CAPTION_STD, elem_classes="asm-caption")
        answer.render()
        gr.Markdown(
            f"Crops by the {engine.describe()}. API: `/crop` (the JSON) and `/crop_view` (everything above); "
            "see *Use via API* at the bottom of the page.",
            elem_classes="asm-caption",
        )

        run.click(  # progress and a failure show on the main picture only (plus the error toast), not on all five
            runner.crop_view, inputs, outputs, api_name="crop_view", concurrency_id="asm", show_progress_on=[drawn],
            api_description="Everything the page shows: crops drawn, cut-outs, θ_avg / θ_std overlays, JSON.",
        )
        # the JSON-only endpoint for gradio_client: a trigger that is never shown
        api_trigger = gr.Button(visible=False)
        api_trigger.click(
            runner.crop, inputs[:5] + inputs[6:], [answer], api_name="crop", concurrency_id="asm",
            api_description="Best crops of the image: {width, height, crops: [{box: [x1, y1, x2, y2], score, aspect, shape}]}.",
        )
        heatmap.change(lambda on: gr.Row(visible=bool(on)), heatmap, heat_row, queue=False, show_progress="hidden", api_visibility="private")
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    demo.asm_engine = engine  # type: ignore[attr-defined]
    demo.asm_allowed_paths = allowed  # type: ignore[attr-defined]
    return demo


def launch_kwargs(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None) -> dict[str, Any]:
    """The arguments :func:`main` launches ``demo`` with (tests launch the same way)."""
    return {
        "allowed_paths": list(demo.asm_allowed_paths),  # type: ignore[attr-defined]
        "server_name": host,
        "server_port": port,
        "max_file_size": MAX_UPLOAD,
        "ssr_mode": False,  # no Node server
        "show_error": False,  # our gr.Error messages are shown anyway; no tracebacks to users
        "theme": gr.themes.Default(primary_hue="orange", secondary_hue="slate"),  # local fonts only
        "css": CSS,
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gradio_demo.app",
        description="The asm web demo: composition-aware cropping with heatmaps, on 127.0.0.1.",
    )
    p.add_argument("--port", type=int, default=None, help="port (default: 7860, or the next free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--model", type=Path, metavar="PATH", help="a model file (default: the model shipped with asm)")
    p.add_argument("--backend", metavar="URL", help="use a running TorchServe (e.g. http://127.0.0.1:8080) instead of the in-process model")
    p.add_argument("--token", help="bearer token for --backend (default: env ASM_TOKEN)")
    p.add_argument("--cache-examples", choices=("eager", "lazy", "off"), default=None,
                   help="compute the examples' answers at launch (eager; the default, kept on disk per model), "
                   "on first click (lazy; the default with --backend) or never (off)")
    p.add_argument("--concurrency", type=int, default=1, help="requests that run at once (default 1)")
    p.add_argument("--queue-size", type=int, default=64,
                   help="requests that may wait; more get Gradio's 'Queue is full' (default 64, under a minute of work on 2 CPU cores)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        demo = build_demo(
            model=args.model, backend=args.backend, token=args.token,
            cache_examples=args.cache_examples or ("lazy" if args.backend else "eager"),
            concurrency=max(1, args.concurrency), queue_size=max(1, args.queue_size),
        )
    except AsmError as e:  # no model file, not a model file
        print(f"asm demo: {e}", file=sys.stderr)
        return 2
    demo.launch(**launch_kwargs(demo, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
