"""Start-up: ``import asm`` and ``asm --help`` load nothing heavy; the ONNX crop path (the
Cropper and ``asm crop``) loads no torch at all, nor torchvision's model zoo, nor matplotlib."""

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


def test_onnx_crop_path_loads_no_torch():
    loaded = _modules_after(
        "from asm.cropper import Cropper\n"
        f"c = Cropper.from_pretrained()\nassert c.runtime == 'int8'\n"
        f"r = c.crop({str(PHOTO)!r}, aspect=['16:9', '1:1'], keep=[[10, 10, 60, 60]], top_k=2, min_scale=0.6)\n"
        "assert len(r.crops) == 4 and r.faces is not None\n"
        f"assert c.analyse({str(PHOTO)!r}).score([[0, 0, 100, 100]]).shape == (1,)"
    )
    for heavy in ("torch", "torchvision", "matplotlib", "onnx"):
        assert heavy not in loaded, heavy


def test_cli_crop_loads_no_torch(tmp_path):
    loaded = _modules_after(
        "from asm.cli import main\n"
        f"assert main(['crop', {str(PHOTO)!r}, '--aspect', '16:9', '--aspect', '1:1', '--json', '--out', {str(tmp_path)!r}]) == 0"
    )
    assert "torch" not in loaded and "onnxruntime" in loaded
    assert len(list(tmp_path.glob("*.jpg"))) == 3  # two crops and the overview


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
    """The CLI spells the runtimes out (importing asm.runtime would load numpy for --help);
    they must stay asm.runtime's."""
    from asm.runtime import RUNTIMES

    parser = argparse.ArgumentParser()
    importlib.import_module(module).add_parser(parser.add_subparsers())
    (command,) = parser._subparsers._group_actions[0].choices.values()
    action = next(a for a in command._actions if a.dest == "runtime")
    assert tuple(action.choices) == RUNTIMES and action.default == "auto"


def test_crop_help_states_the_croppers_min_scale():
    """``asm crop --help`` spells the default zoom limit out; it must stay the Cropper's."""
    from asm.options import DEFAULT_MIN_SCALE

    parser = argparse.ArgumentParser()
    importlib.import_module("asm.cli.crop").add_parser(parser.add_subparsers())
    (command,) = parser._subparsers._group_actions[0].choices.values()
    action = next(a for a in command._actions if a.dest == "min_scale")
    assert f"(default {DEFAULT_MIN_SCALE:g}:" in action.help
