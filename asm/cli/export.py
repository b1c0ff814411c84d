"""``asm export``: a model as ONNX next to its checkpoint (the fast CPU path)."""

from __future__ import annotations

import argparse
from pathlib import Path

from asm.cli import fail

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as ONNX next to it (the fast CPU path)",
        description="Write the model as ONNX (dynamic height and width) next to the checkpoint: MODEL.pt -> "
        "MODEL.onnx. Croppers use it whenever it matches the checkpoint byte for byte; without it, they "
        "export to the user's cache on first use. With --int8: the int8 twin MODEL.int8.onnx (ONNX Runtime "
        "static quantisation, calibrated on photos), which croppers on the CPU prefer.",
    )
    p.add_argument("--model", type=Path, metavar="PATH", help="a model file (default: the model shipped with asm)")
    p.add_argument("--out", type=Path, metavar="FILE", help="where to write (default: next to the model, .onnx or .int8.onnx)")
    p.add_argument("--int8", action="store_true", help="write the int8 twin instead of the float one")
    p.add_argument("--calibration", type=Path, metavar="DIR",
                   help="--int8: photos that set the activation ranges (default: the shared photos' training split)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from asm.errors import AsmError
    from asm.models import DEFAULT_MODEL_PATH
    from asm.runtime import calibration_photos, export_checkpoint, export_int8

    model_path = args.model or DEFAULT_MODEL_PATH
    try:
        if args.int8:
            out = export_int8(model_path, calibration_photos(args.calibration), args.out)
        else:
            out = export_checkpoint(model_path, args.out or model_path.with_suffix(".onnx"))
    except (AsmError, OSError, ValueError, ImportError) as e:
        fail("export", str(e))
        return 2
    print(out)
    return 0
