"""``asm batch --engine ray`` on a real local Ray runtime (2 CPUs, no dashboard, its own temp dir)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from asm.batch import expand_inputs, run_batch
from asm.cli import main
from asm.options import CropOptions
from tests.test_serve import _photo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    # a short temp dir: Ray's socket paths must fit in 107 characters
    with tempfile.TemporaryDirectory(prefix="asmray") as temp:
        import asm

        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level="WARNING", log_to_driver=False,
                 runtime_env={"py_modules": [str(Path(asm.__file__).parent)], "excludes": ["__pycache__"]})
        try:
            yield ray
        finally:
            ray.shutdown()


def test_ray_batch_answers_once_equals_crop_and_resumes(ray_runtime, tmp_path, capsys):
    folder = tmp_path / "cat"
    for i in range(10):
        path = folder / f"d{i % 2}" / f"p{i // 2}.jpg"  # same names in two folders
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_photo(160 + 16 * i, 120, seed=i))  # a clear subject: no near-ties between boxes
    (folder / "d0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (folder / "d1" / "empty.jpg").write_bytes(b"")
    names = expand_inputs([str(folder)])
    out = tmp_path / "r.jsonl"
    options = CropOptions.parse(["1:1", "3:2"], top_k=2)

    summary = run_batch([str(folder), str(folder / "gone.jpg")], out, options, engine="ray")
    assert (summary.done, summary.failed) == (10, 3)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    by_file = {r["file"]: r for r in records}
    assert len(records) == len(by_file) == len(names) + 1  # every input once
    assert set(by_file) == set(names) | {str(folder / "gone.jpg")}
    for bad in ("d0/broken.png", "d1/empty.jpg", "gone.jpg"):
        assert by_file[str(folder / bad)]["error"] == "invalid_image", by_file[str(folder / bad)]

    good = sorted(f for f, r in by_file.items() if "crops" in r)
    assert main(["crop", *good, "--json", "--aspect", "1:1", "--aspect", "3:2", "--top-k", "2"]) == 0
    for line in capsys.readouterr().out.splitlines():
        expected = json.loads(line)
        expected.pop("files")
        got = by_file[expected["file"]]
        # the same boxes; scores agree to float32 rounding (actors run 1 torch thread, asm crop all cores)
        assert [{**c, "score": None} for c in got["crops"]] == [{**c, "score": None} for c in expected["crops"]]
        assert [c["score"] for c in got["crops"]] == pytest.approx([c["score"] for c in expected["crops"]], abs=1e-4)
        assert (got["width"], got["height"]) == (expected["width"], expected["height"])

    again = run_batch([str(folder), str(folder / "gone.jpg")], out, options, engine="ray")
    assert (again.done, again.failed, again.skipped) == (0, 0, len(names) + 1)
    assert out.read_text().count("\n") == len(names) + 1
