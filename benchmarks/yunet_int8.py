"""YuNet, asm's face detector, quantised to int8 by ONNX Runtime: the candidates that
``benchmarks/bench_faces.py`` measures against the float model ("Detector precision" in
``benchmarks/results/faces.md``). asm ships none of them: they lose faces near the
confidence threshold and run slower than the float model on ONNX Runtime's CPU kernels.

Each recipe is static quantisation (int8 weights per output channel, uint8 activations)
of the float model as asm loads it (:func:`asm.search.faces.runtime_model`), with the
objectness head and the output sigmoids left in float (quantised, the objectness collapses
and no face scores 0.7). Activation ranges come from :func:`calibration_photos`: training
photos only (OSIE 1001-1400 and the training sources of the shared photos), prepared as
:func:`asm.search.faces.detect_faces` prepares them (long side <= 640, padded to a multiple
of 32, BGR 0-255), one photo at a time at its own size.

    python benchmarks/yunet_int8.py OUT.onnx [--recipe minmax]   # writes one, prints its sha256
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Recipe:
    """How a float YuNet becomes int8 (ONNX Runtime's ``quantize_static`` settings)."""

    label: str
    calibration: str = "MinMax"  # or "Percentile" (99.999 %)
    qdq: bool = False  # QuantizeLinear/DequantizeLinear pairs (opset 13) instead of QLinear operators
    first_conv_float: bool = False  # the full-resolution 3 -> 16 convolution stays float


RECIPES = {
    "minmax": Recipe("int8, MinMax (asm's recipe for ASM-Net)"),
    "percentile": Recipe("int8, Percentile", calibration="Percentile"),
    "qdq-first-float": Recipe("int8, MinMax, QDQ, first conv float", qdq=True, first_conv_float=True),
}


def calibration_photos(osie: int = 100, photos: int = 50) -> list[Path]:
    """``osie`` OSIE training photos (ids 1001-1400, evenly spread: people, faces) and
    ``photos`` from the training split of the shared photos; never a validation photo.
    :class:`FileNotFoundError` when the shared data are absent."""
    from asm.data.fixations import OSIE
    from asm.runtime import calibration_photos as shared_training_photos

    train = OSIE(split="train")
    step = max(1, len(train) // osie)
    return [train.image_path(i) for i in train.ids[::step][:osie]] + shared_training_photos(count=photos)


def yunet_inputs(paths: list[Path]) -> list[np.ndarray]:
    """The network inputs ``[1, 3, H, W]`` of photos, as :func:`asm.search.faces.detect_faces` makes them."""
    from asm.io import load_image
    from asm.search.faces import detector_copy, network_input

    return [network_input(detector_copy(load_image(p))[..., ::-1]) for p in paths]


def quantize_yunet(out: str | Path, inputs: list[np.ndarray], recipe: Recipe = RECIPES["minmax"]) -> Path:
    """Write YuNet in int8 to ``out`` by ``recipe``, its activation ranges measured on
    ``inputs`` (:func:`yunet_inputs`). Deterministic for one ONNX Runtime version."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from asm.search.faces import runtime_model, yunet_model

    class OneInput(CalibrationDataReader):
        def __init__(self, x: np.ndarray) -> None:
            self.feed = iter([{"input": x}])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feed, None)

    method = getattr(CalibrationMethod, recipe.calibration)
    root_log = logging.getLogger()
    level = root_log.level
    root_log.setLevel(logging.ERROR)  # the quantiser logs every tensor it leaves in float
    try:
        with tempfile.TemporaryDirectory() as tmp:
            model = onnx.load_from_string(runtime_model(yunet_model()))
            if recipe.qdq:  # per-channel DequantizeLinear needs opset 13
                model = onnx.version_converter.convert_version(model, 13)
            source, prepared, ranges = Path(tmp) / "float.onnx", Path(tmp) / "prepared.onnx", Path(tmp) / "ranges.json"
            onnx.save(model, source)
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            nodes = onnx.load(str(prepared)).graph.node
            keep_float = [n.name for n in nodes if n.op_type == "Sigmoid" or any("multi_level_obj" in i for i in n.input)]
            if recipe.first_conv_float:
                keep_float += [n.name for n in nodes if "input" in n.input]
            # one photo per pass: the photos differ in size, which the histogram collectors
            # cannot stack, and all of them at once would hold every intermediate tensor
            calibrator = create_calibrator(prepared, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                           calibrate_method=method)
            for x in inputs:
                calibrator.collect_data(OneInput(x))
            save_tensors_data(calibrator.compute_data(), ranges)
            del calibrator
            quantize_static(str(prepared), str(out), None, calibration_cache_path=ranges, calibrate_method=method,
                            quant_format=QuantFormat.QDQ if recipe.qdq else QuantFormat.QOperator,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            nodes_to_exclude=keep_float)
    finally:
        root_log.setLevel(level)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="minmax")
    args = parser.parse_args(argv)
    photos = calibration_photos()
    path = quantize_yunet(args.out, yunet_inputs(photos), RECIPES[args.recipe])
    print(f"{path}: {RECIPES[args.recipe].label}, calibrated on {len(photos)} training photos, "
          f"sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
