"""Start-up: ``import asm`` and ``asm --help`` load nothing heavy; the ONNX crop path loads
neither torchvision's model zoo nor matplotlib nor torch._dynamo."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from asm.cli import LAZY_COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "otters.jpg"


def _modules_after(code: str) -> set[str]:
    """Module names loaded by a fresh interpreter that runs ``code``."""
    script = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return set(json.loads(run.stdout.strip().splitlines()[-1]))


def test_import_asm_loads_no_torch():
    loaded = _modules_after("import asm; assert asm.__version__")
    assert "torch" not in loaded and "numpy" not in loaded


@pytest.mark.parametrize("argv", [["--help"], ["crop", "--help"], ["export", "--help"]])
def test_help_loads_no_torch(argv):
    loaded = _modules_after(f"from asm.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit as e:\n    assert e.code == 0")
    assert "torch" not in loaded


def test_lazy_names_still_resolve():
    import asm

    from asm.cropper import Cropper

    assert asm.Cropper is Cropper and "Cropper" in dir(asm)
    assert asm.ops.composition_pool is importlib.import_module("asm.ops").composition_pool
    with pytest.raises(AttributeError):
        asm.no_such_name  # noqa: B018


def test_onnx_crop_path_loads_no_model_zoo_matplotlib_or_dynamo():
    from asm.models import DEFAULT_MODEL_PATH
    from asm.runtime import load_onnx_net

    load_onnx_net(DEFAULT_MODEL_PATH)  # the twin exists before the measured process starts
    loaded = _modules_after(
        "from asm.cropper import Cropper\n"
        f"c = Cropper.from_pretrained()\nassert c.runtime == 'int8'\nc.crop({str(PHOTO)!r}, aspect=['16:9', '1:1'])"
    )
    for heavy in ("torchvision", "matplotlib", "torch._dynamo", "onnx"):
        assert heavy not in loaded, heavy


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_lazy_command_help_lines_match_their_parsers(name):
    """``asm --help`` lists train/eval without importing them; the line must stay true."""
    module, line = LAZY_COMMANDS[name]
    parser = argparse.ArgumentParser()
    importlib.import_module(module).add_parser(parser.add_subparsers())
    real = next(a for a in parser._subparsers._group_actions[0]._choices_actions if a.dest == name)
    assert real.help == line
    # and the full parser is built when the command runs
    sub = build_parser(name)._subparsers._group_actions[0].choices[name]
    assert sub.add_help and len(sub._actions) > 3


@pytest.mark.parametrize("module", ["asm.cli.crop", "asm.evaluation.run"])
def test_runtime_choices_are_the_croppers(module):
    """The CLI spells the runtimes out (importing asm.cropper would load torch for --help);
    they must stay Cropper.from_pretrained's."""
    from asm.cropper import RUNTIMES

    parser = argparse.ArgumentParser()
    importlib.import_module(module).add_parser(parser.add_subparsers())
    (command,) = parser._subparsers._group_actions[0].choices.values()
    action = next(a for a in command._actions if a.dest == "runtime")
    assert tuple(action.choices) == RUNTIMES and action.default == "auto"
