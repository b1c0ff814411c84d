"""Regressions for what the fuzz harnesses (tests/fuzz/) found: each was an exception other
than asm's typed errors (a crash of `asm batch`, a 500 from the server) or an inconsistency."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from asm.batch.inputs import expand_inputs
from asm.batch.results import JsonlResults
from asm.errors import BadRequest
from asm.serving import wire
from handler import kserve_v2


@pytest.mark.parametrize("line", [b'{"file":["x"]}', b'{"file":{"a":1}}', b'{"file":1}', b"[" * 100_000])
def test_jsonl_resume_refuses_a_line_that_is_not_a_result(tmp_path: Path, line: bytes):
    """Was TypeError (unhashable "file") and RecursionError (deep nesting) at resume."""
    path = tmp_path / "results.jsonl"
    data = b'{"file":"a.jpg","width":1,"height":1,"crops":[]}\n' + line + b"\n"
    path.write_bytes(data)
    with pytest.raises(BadRequest, match="line 2 is not an asm batch result"):
        JsonlResults(path)
    assert path.read_bytes() == data


@pytest.mark.parametrize("text", ["path\n" + "x" * 140_000 + "\n", 'path\n"' + "y" * 140_000 + '"\n'])
def test_csv_manifest_with_a_huge_field_is_a_bad_request(tmp_path: Path, text: str):
    """Was csv.Error ("field larger than field limit")."""
    manifest = tmp_path / "list.csv"
    manifest.write_text(text)
    with pytest.raises(BadRequest, match="cannot read the manifest") as ei:
        expand_inputs([str(manifest)])
    assert len(str(ei.value)) < 300


def test_kserve_v2_image_parameters_that_are_not_an_object():
    """Was TypeError / ValueError, so the handler answered 500 instead of 400."""
    for parameters in (1, "abc", [1, 2]):
        request = {"inputs": [{"name": "image", "datatype": "BYTES", "data": [base64.b64encode(b"x").decode()],
                               "parameters": parameters}]}
        with pytest.raises(BadRequest, match='"parameters" that are not an object'):
            kserve_v2.parse(request)


def test_json_request_with_an_empty_image_is_refused_like_the_other_formats():
    """parse_form and the v2 parser refused an empty image; parse_json let it through."""
    with pytest.raises(BadRequest, match="empty"):
        wire.parse_json({"image": ""})
