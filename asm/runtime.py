"""ASM-Net on ONNX Runtime: the CPU fast path, and the ONNX export that feeds it.

The torch checkpoint (``MODEL.pt``, written by :func:`asm.models.save_model`) stays the one
source of truth. Its ONNX twin is, in this order:

1. ``MODEL.onnx`` next to it, written by ``asm export`` (or :func:`export_onnx`);
2. ``<cache>/onnx/<sha256 of MODEL.pt>.onnx`` in the user's cache folder
   (``$ASM_CACHE_DIR``, else ``$XDG_CACHE_HOME/asm``, else ``~/.cache/asm``), exported
   there on first use.

An int8 twin, ``MODEL.int8.onnx`` next to the checkpoint, is the float twin quantised by
ONNX Runtime (:func:`quantize_int8`: static, per-channel int8 weights, uint8 activations whose
ranges were measured on calibration photos). It needs photos, so it is never made on the fly:
``asm export --int8`` writes it, and the shipped model's twin is committed beside it.
``Cropper.from_pretrained`` prefers it on the CPU (see its ``runtime`` argument).

Every twin records the SHA-256 of the checkpoint it came from and the export format
(:data:`ONNX_FORMAT`); a twin that does not match the checkpoint byte for byte is ignored, so
a retrained or replaced checkpoint never runs with stale weights. Files are written atomically (a temporary file in the same folder, then
``os.replace``), so concurrent workers exporting the same model at once are safe.

The network is exported with dynamic batch, height and width axes: ``images [B, 3, H, W]``
(ImageNet-normalised float32) -> ``score_map [B, L, ceil(H/s), ceil(W/s)]``, for any
:class:`~asm.models.ASMNet` configuration (backbone, pattern, map stride, padding).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from asm.cache import cache_dir, write_atomic
from asm.cpu_session import cpu_session, cpu_threads
from asm.errors import InvalidOption
from asm.models.weights import InferencePreset, Weights, as_weights
from asm.patterns import Pattern, get_pattern

if TYPE_CHECKING:  # exporting needs torch; running a twin does not
    import torch

    from asm.models import ASMNet

__all__ = ["RUNTIMES", "load_net", "served_preset", "device_type", "ONNX_FORMAT", "OnnxNet", "export_onnx", "export_checkpoint", "quantize_int8", "export_int8", "calibration_photos", "load_onnx_net", "int8_path", "onnx_cache_path",
           "cache_dir", "file_digest"]

#: Export format tag; bump it when the export changes, so cached twins are rebuilt.
ONNX_FORMAT = "asm-onnx/3"
#: ONNX opset of the export (ONNX Runtime >= 1.14 runs it).
OPSET = 17
#: Where the network runs (:func:`load_net`): "auto" (the int8 twin, else the float twin, on the
#: CPU with onnxruntime installed; else torch), "int8" (ONNX Runtime, int8 twin), "onnx" (ONNX
#: Runtime, float twin) or "torch".
RUNTIMES = ("auto", "int8", "onnx", "torch")


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def int8_path(checkpoint: str | os.PathLike) -> Path:
    """Where the int8 twin of ``checkpoint`` lives: ``MODEL.pt`` -> ``MODEL.int8.onnx``."""
    return Path(checkpoint).with_suffix(".int8.onnx")


def onnx_cache_path(digest: str) -> Path:
    """Where the cached ONNX twin of the checkpoint with SHA-256 ``digest`` lives."""
    return cache_dir() / "onnx" / f"{digest}.onnx"


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, digest: str = "",
                preset: InferencePreset | None = None) -> Path:
    """Write ``model`` (an :class:`~asm.models.ASMNet`) as ONNX to ``path``, atomically.

    Dynamic axes: batch, height and width. ``digest`` (the checkpoint's SHA-256), the
    model's ``config`` and the serving ``preset`` (the checkpoint's) go into the file's
    metadata, so a twin serves without reading the checkpoint. Needs the ``onnx`` package.
    """
    import onnx  # the exporter needs it; running the result does not
    import torch

    path = Path(path)
    model = model.eval().cpu()
    example = torch.zeros(1, 3, 256, 320)  # H != W, so no axis gets specialised to the other
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer's notes (shape checks become constants, slices are not folded) are
        # expected for this network; the export is checked against torch in the tests
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            buf,
            dynamo=False,  # the TorchScript exporter: no onnxscript needed, exact for these ops
            input_names=["images"],
            output_names=["score_map"],
            dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"},
                          "score_map": {0: "batch", 2: "map_height", 3: "map_width"}},
            opset_version=OPSET,
        )
    proto = onnx.load_from_string(buf.getvalue())
    config = dict(getattr(model, "config", {}))
    props = {
        "asm_format": ONNX_FORMAT,
        "asm_checkpoint_sha256": digest,
        "asm_config": json.dumps(config, sort_keys=True),
        # parameters outside the forward pass that scoring needs (the centre prior's weight)
        "asm_prior_weight": repr(float(torch.as_tensor(getattr(model, "prior_weight", 0.0)).detach())),
    }
    if preset is not None:
        props["asm_preset"] = json.dumps(asdict(preset), sort_keys=True)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    write_atomic(path, proto.SerializeToString())
    return path


def export_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike, digest: str | None = None) -> Path:
    """Write the float ONNX twin of the model file ``checkpoint`` to ``path``
    (:func:`export_onnx` with the file's network, SHA-256 and serving preset)."""
    from asm.models import Weights, asm_net

    weights = Weights(checkpoint)
    return export_onnx(asm_net(weights=weights), path, digest or file_digest(checkpoint), weights.preset)


def quantize_int8(float_twin: str | os.PathLike, path: str | os.PathLike, calibration: Iterable[np.ndarray]) -> Path:
    """Quantise a float ONNX twin (:func:`export_onnx`) to int8 with ONNX Runtime and write it
    to ``path``, atomically.

    Static quantisation in operator form (``QLinearConv``, which ONNX Runtime runs with the
    CPU's int8 dot-product instructions): int8 weights per output channel, uint8 activations
    whose ranges are the minima and maxima seen on ``calibration``, network inputs
    ``[1, 3, H, W]`` as :meth:`asm.cropper.Cropper.prepare` makes them (any sizes). The twin's
    metadata is kept; ``asm_precision`` says ``int8`` and ``asm_calibration`` how many inputs
    set the ranges.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    inputs = [np.ascontiguousarray(x, dtype=np.float32) for x in calibration]
    if not inputs:
        raise ValueError("int8 quantisation needs at least one calibration input")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feed = iter(inputs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.feed, None)
            return None if x is None else {"images": x}

    path = Path(path)
    root_log = logging.getLogger()
    level = root_log.level
    root_log.setLevel(logging.ERROR)  # the quantiser logs each tensor it leaves in float (shapes, slices)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prepared, quantised = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
            # graph clean-up before quantisation; symbolic shape inference cannot follow the
            # network's dynamic height and width, so ONNX's own inference is used
            quant_pre_process(str(float_twin), str(prepared), skip_symbolic_shape=True)
            # the backbone in int8; the heads, their upsampling and sum stay float, so that
            # the score map is not rounded to 256 levels
            heads = [n.name for n in onnx.load(str(prepared)).graph.node if not n.name.startswith("/stages.")]
            quantize_static(str(prepared), str(quantised), Reader(), quant_format=QuantFormat.QOperator,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=heads)
            proto = onnx.load(str(quantised))
    finally:
        root_log.setLevel(level)
    source = onnx.load(str(float_twin), load_external_data=False)
    del proto.metadata_props[:]
    for entry in source.metadata_props:
        proto.metadata_props.add(key=entry.key, value=entry.value)
    proto.metadata_props.add(key="asm_precision", value="int8")
    proto.metadata_props.add(key="asm_calibration", value=f"{len(inputs)} inputs")
    write_atomic(path, proto.SerializeToString())
    return path


#: How many photos set the int8 activation ranges by default.
CALIBRATION_PHOTOS = 40


def calibration_photos(folder: str | os.PathLike | None = None, count: int = CALIBRATION_PHOTOS) -> list[Path]:
    """``count`` photos spread evenly over a sorted folder of images (searched recursively),
    or by default over the training split of the shared photos (never a validation source).
    :class:`FileNotFoundError` when there are none."""
    if folder is None:
        from asm.data.photos import photo_folder, split_by_source

        try:
            pool = [p.path for p in split_by_source(photo_folder())[0]]
        except FileNotFoundError as e:
            raise FileNotFoundError(f"no calibration photos given and none shared ({e}); pass a folder of photos "
                                    "like the ones you will crop") from None
    else:
        from asm.data.photos import IMAGE_EXTENSIONS

        root = Path(folder).expanduser()
        pool = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not pool:
            raise FileNotFoundError(f"no images under {root}")
    step = max(1, len(pool) // count)
    return pool[::step][:count]


def export_int8(checkpoint: str | os.PathLike, photos: Iterable[str | os.PathLike], out: str | os.PathLike | None = None) -> Path:
    """Write the int8 twin of ``checkpoint`` (default: :func:`int8_path`), calibrated on
    ``photos`` prepared exactly as a cropper serving the model prepares them."""
    from asm.io import DEFAULT_MAX_PIXELS
    from asm.prepare import prepare

    weights = as_weights(checkpoint)
    net = load_net(weights, runtime="onnx")  # the float twin (exported on first use)
    preset = served_preset(net, weights)
    inputs = [prepare(Path(p), preset, DEFAULT_MAX_PIXELS).input for p in photos]
    return quantize_int8(net.path, out or int8_path(checkpoint), inputs)  # type: ignore[union-attr]


class OnnxNet:
    """An exported ASM-Net run by ONNX Runtime on the CPU.

    ``net(images [B, 3, H, W] float32 numpy) -> score_map [B, L, h, w]`` (float32 numpy).
    Carries the model's ``config``, ``pattern``, ``num_partitions`` and ``prior_weight`` like
    :class:`~asm.models.ASMNet`, the serving ``preset`` (None in a twin written before the
    preset was recorded) and the checkpoint ``digest`` it was exported from. Loads no torch.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (default :func:`asm.cpu_session.cpu_threads`: the count
            :func:`~asm.cpu_session.set_cpu_threads` set, else torch's when torch is loaded,
            else ONNX Runtime's default of one per physical core).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.path = Path(path)
        self.session = cpu_session(str(self.path), threads or cpu_threads())
        props = self.session.get_modelmeta().custom_metadata_map
        self.format = props.get("asm_format", "")
        self.digest = props.get("asm_checkpoint_sha256", "")
        self.config: dict[str, Any] = json.loads(props.get("asm_config", "{}"))
        self.pattern: Pattern = get_pattern(self.config["pattern"]) if "pattern" in self.config else None  # type: ignore[assignment]
        self.map_stride = int(self.config.get("map_stride", 8))
        self.prior_weight = float(props.get("asm_prior_weight", "0"))
        self.preset = InferencePreset(**json.loads(props["asm_preset"])) if "asm_preset" in props else None
        #: "float32" (the exact twin) or "int8" (:func:`quantize_int8`)
        self.precision = props.get("asm_precision", "float32")

    @property
    def num_partitions(self) -> int:
        return self.pattern.num_partitions

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(images, dtype=np.float32)
        return self.session.run(None, {"images": x})[0]


def load_onnx_net(checkpoint: str | os.PathLike, export: bool = True, threads: int | None = None,
                  precision: str = "float32") -> OnnxNet:
    """The ONNX twin of ``checkpoint`` (see the module docstring) in ``precision`` ("float32"
    or "int8").

    The float twin is exported to the cache on first use when ``export`` is true; the int8
    twin is only read (``asm export --int8`` makes it). :class:`FileNotFoundError` when there
    is none to use.
    """
    checkpoint = Path(checkpoint)
    digest = file_digest(checkpoint)
    cached = onnx_cache_path(digest)
    candidates = (int8_path(checkpoint),) if precision == "int8" else (checkpoint.with_suffix(".onnx"), cached)
    for candidate in candidates:
        if candidate.is_file():
            try:
                net = OnnxNet(candidate, threads)
            except Exception:  # unreadable (e.g. cut short by a full disk): rebuilt below
                continue
            if net.digest == digest and net.format == ONNX_FORMAT and net.pattern is not None and net.precision == precision:
                return net
    if precision == "int8":
        raise FileNotFoundError(f"no int8 twin of {checkpoint.name} that matches it; run `asm export --int8 --model {checkpoint}`")
    if not export:
        raise FileNotFoundError(f"no ONNX export of {checkpoint}; run `asm export --model {checkpoint}`")
    export_checkpoint(checkpoint, cached, digest)
    return OnnxNet(cached, threads)


def device_type(device: object) -> str:
    """``"cpu"``, ``"cuda"``, ... of a device given as a string (``"cuda:1"``) or a
    ``torch.device``, without importing torch."""
    return str(getattr(device, "type", device)).split(":")[0].strip().lower()


def load_net(weights: Weights, runtime: str = "auto", device: object = "cpu") -> ASMNet | OnnxNet:
    """The network of ``weights`` on ``runtime``:

    * "auto": on the CPU with onnxruntime installed, the int8 twin when there is one next
      to the model file (the shipped model has one), else the float ONNX twin (exported to
      the user's cache on first use); otherwise torch.
    * "int8", "onnx" (the float twin, equal to torch within 1e-3) or "torch" insist.

    Raises :class:`~asm.errors.InvalidOption` (no such runtime),
    :class:`~asm.errors.ModelNotFound` (no such file) or :class:`~asm.errors.InvalidModel`
    (not an asm model, unreadable).
    """
    if runtime not in RUNTIMES:
        raise InvalidOption(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    weights.check_file()
    model: ASMNet | OnnxNet | None = None
    fast_cpu = runtime == "auto" and device_type(device) == "cpu" and _onnxruntime_installed()
    if runtime == "int8" or (fast_cpu and int8_path(weights.file).is_file()):
        try:
            model = load_onnx_net(weights.file, precision="int8")
        except FileNotFoundError as e:  # a stale twin (the model file changed): the float path
            if runtime == "int8":
                raise
            warnings.warn(f"asm: {e}", stacklevel=3)
    if model is None and (runtime == "onnx" or fast_cpu):
        try:
            model = load_onnx_net(weights.file)
        except (ImportError, OSError) as e:  # no exporter installed, a read-only cache, ...
            if runtime == "onnx":
                raise
            warnings.warn(f"asm: running the network on torch: no ONNX export of {weights.file.name} ({e})", stacklevel=3)
    if model is None:
        from asm.models import asm_net

        model = asm_net(weights=weights)
    return model


def served_preset(model: ASMNet | OnnxNet, weights: Weights) -> InferencePreset:
    """The preset ``model`` is served with: a twin carries its checkpoint's (reading the
    checkpoint itself needs torch), else the weights'."""
    return model.preset if isinstance(model, OnnxNet) and model.preset is not None else weights.preset


def _onnxruntime_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None
