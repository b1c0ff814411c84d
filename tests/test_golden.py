"""Golden answers: ``asm crop --json`` on the shipped example photos, compared with the JSON in
tests/golden/ (written by tests/golden/make_golden.py; rerun it when the model, the search or a
default changes on purpose, and review the diff)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golden.make_golden import CASES, answer

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize("name", sorted(CASES))
def test_asm_crop_json_matches_the_golden_answer(name):
    golden = json.loads((GOLDEN / f"{name}.json").read_text())
    assert golden["argv"] == CASES[name], "the case changed: rerun tests/golden/make_golden.py"
    want, got = golden["answer"], answer(CASES[name])
    assert list(got) == list(want)  # the same fields, in the same order
    assert {k: got[k] for k in ("file", "width", "height", "files")} == {k: want[k] for k in ("file", "width", "height", "files")}
    assert [(c["aspect"], c["shape"], sorted(c)) for c in got["crops"]] == [(c["aspect"], c["shape"], sorted(c)) for c in want["crops"]]
    for g, w in zip(got["crops"], want["crops"]):
        # a box may move a pixel between CPUs (the int8 network's rounding), no more
        assert all(abs(a - b) <= 1 for a, b in zip(g["box"], w["box"])), (g, w)
        assert g["score"] == pytest.approx(w["score"], rel=1e-3, abs=1e-3)
    assert abs(got["focal_point"]["x"] - want["focal_point"]["x"]) <= 2
    assert abs(got["focal_point"]["y"] - want["focal_point"]["y"]) <= 2
