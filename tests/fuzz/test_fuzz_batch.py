"""Fuzz what a batch job reads from disk: manifests of paths and the JSONL results it resumes."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import strategies as st

from asm.batch.inputs import MANIFEST_SUFFIXES, expand_inputs
from asm.batch.results import JsonlResults
from tests.fuzz.harness import fuzz, guarded

LINES = ["photo.jpg", "a/b.png", "# comment", "path,width", "file\tx", '"quoted, name.jpg"', "~/x.jpg", "../up.jpg",
         "\0", "\ufeffbom.jpg", '{"file": "x"}', "", " ", "\r", "x" * 140_000, '"' + "y" * 140_000]
manifest_text = st.one_of(st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=30)), max_size=8).map("\n".join),
                          st.text(max_size=200))
RECORDS = [b'{"file":"a.jpg","width":1,"height":1,"crops":[]}', b'{"file":"b.jpg","error":"invalid_image","message":"x"}',
           b'{"file":["x"]}', b'{"file":{"a":1}}', b'{"file":1}', b"[1,2]", b'"text"', b"null", b"{}", b"[" * 5000, b"\xff\xfe",
           b'{"file":"a.jpg"', b"1e999"]
jsonl_bytes = st.one_of(st.lists(st.one_of(st.sampled_from(RECORDS), st.binary(max_size=40)), max_size=6).map(
    lambda lines: b"\n".join(lines)), st.binary(max_size=200)).flatmap(lambda b: st.sampled_from([b, b + b"\n"]))


@fuzz(manifest_text, st.sampled_from(sorted(MANIFEST_SUFFIXES)))
def test_fuzz_manifest(text: str, suffix: str) -> None:
    """expand_inputs on a manifest: absolute paths or BadRequest."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / f"list{suffix}"
        manifest.write_bytes(text.encode("utf-8", "surrogatepass"))
        got = guarded("batch: manifest", expand_inputs, [str(manifest)])
        assert got is None or all(isinstance(p, str) for p in got)


@fuzz(jsonl_bytes)
def test_fuzz_jsonl_resume(data: bytes) -> None:
    """Resuming a results.jsonl: what it answered, or BadRequest with the file left as it was."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.jsonl"
        path.write_bytes(data)
        results = guarded("batch: JSONL resume", JsonlResults, path)
        if results is None:
            assert path.read_bytes() == data, "a refused results file was changed"
        else:
            results.close()
            assert data.startswith(path.read_bytes())
            assert all(isinstance(failed, bool) for failed in results.answered.values())
