"""ASM-Net on ONNX Runtime: the CPU fast path, and the ONNX export that feeds it.

The torch checkpoint (``MODEL.pt``, written by :func:`asm.models.save_model`) stays the one
source of truth. Its ONNX twin is, in this order:

1. ``MODEL.onnx`` next to it, written by ``asm export`` (or :func:`export_onnx`);
2. ``<cache>/onnx/<sha256 of MODEL.pt>.onnx`` in the user's cache folder
   (``$ASM_CACHE_DIR``, else ``$XDG_CACHE_HOME/asm``, else ``~/.cache/asm``), exported
   there on first use.

Every twin records the SHA-256 of the checkpoint it came from and the export format
(:data:`ONNX_FORMAT`); a twin that does not match the checkpoint byte for byte is ignored, so
a retrained or replaced checkpoint never runs with stale weights, and no ONNX binary is
committed. Files are written atomically (a temporary file in the same folder, then
``os.replace``), so concurrent workers exporting the same model at once are safe.

The network is exported with dynamic batch, height and width axes: ``images [B, 3, H, W]``
(ImageNet-normalised float32) -> ``score_map [B, L, ceil(H/s), ceil(W/s)]``, for any
:class:`~asm.models.ASMNet` configuration (backbone, pattern, map stride, padding).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from asm.cpu_session import cpu_session
from asm.patterns import Pattern, get_pattern

__all__ = ["ONNX_FORMAT", "OnnxNet", "export_onnx", "load_onnx_net", "onnx_cache_path", "cache_dir", "file_digest"]

#: Export format tag; bump it when the export changes, so cached twins are rebuilt.
ONNX_FORMAT = "asm-onnx/2"
#: ONNX opset of the export (ONNX Runtime >= 1.14 runs it).
OPSET = 17


def cache_dir() -> Path:
    """The user's asm cache folder (not created here)."""
    if os.environ.get("ASM_CACHE_DIR"):
        return Path(os.environ["ASM_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "asm"


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def onnx_cache_path(digest: str) -> Path:
    """Where the cached ONNX twin of the checkpoint with SHA-256 ``digest`` lives."""
    return cache_dir() / "onnx" / f"{digest}.onnx"


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, digest: str = "") -> Path:
    """Write ``model`` (an :class:`~asm.models.ASMNet`) as ONNX to ``path``, atomically.

    Dynamic axes: batch, height and width. ``digest`` (the checkpoint's SHA-256) and the
    model's ``config`` go into the file's metadata. Needs the ``onnx`` package.
    """
    import onnx  # the exporter needs it; running the result does not

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
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    _write_atomic(path, proto.SerializeToString())
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file (mkstemp makes it private)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class OnnxNet:
    """An exported ASM-Net run by ONNX Runtime on the CPU, called like the torch model.

    ``net(images [B, 3, H, W] float32) -> score_map [B, L, h, w]`` (a CPU tensor). Carries the
    model's ``config``, ``pattern``, ``num_partitions`` and ``prior_weight`` like
    :class:`~asm.models.ASMNet`, and the checkpoint ``digest`` it was exported from.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (default: ``torch.get_num_threads()``, as the torch path uses).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.path = Path(path)
        self.session = cpu_session(str(self.path), threads or torch.get_num_threads())
        props = self.session.get_modelmeta().custom_metadata_map
        self.format = props.get("asm_format", "")
        self.digest = props.get("asm_checkpoint_sha256", "")
        self.config: dict[str, Any] = json.loads(props.get("asm_config", "{}"))
        self.pattern: Pattern = get_pattern(self.config["pattern"]) if "pattern" in self.config else None  # type: ignore[assignment]
        self.map_stride = int(self.config.get("map_stride", 8))
        self.prior_weight = torch.tensor(float(props.get("asm_prior_weight", "0")))

    @property
    def num_partitions(self) -> int:
        return self.pattern.num_partitions

    def __call__(self, images: Tensor) -> Tensor:
        x = images.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {"images": x})[0])


def load_onnx_net(checkpoint: str | os.PathLike, export: bool = True, threads: int | None = None) -> OnnxNet:
    """The ONNX twin of ``checkpoint`` (see the module docstring), exported to the cache on
    first use when ``export`` is true; :class:`FileNotFoundError` when there is none and
    ``export`` is false."""
    checkpoint = Path(checkpoint)
    digest = file_digest(checkpoint)
    cached = onnx_cache_path(digest)
    for candidate in (checkpoint.with_suffix(".onnx"), cached):
        if candidate.is_file():
            try:
                net = OnnxNet(candidate, threads)
            except Exception:  # unreadable (e.g. cut short by a full disk): rebuilt below
                continue
            if net.digest == digest and net.format == ONNX_FORMAT and net.pattern is not None:
                return net
    if not export:
        raise FileNotFoundError(f"no ONNX export of {checkpoint}; run `asm export --model {checkpoint}`")
    from asm.models import asm_net

    export_onnx(asm_net(weights=checkpoint), cached, digest)
    return OnnxNet(cached, threads)
