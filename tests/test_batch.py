"""``asm batch``: inputs, resumable results, worker processes, a killed job resumed for real."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asm.batch import Progress, expand_inputs, open_results, run_batch
from asm.batch.ray_engine import actor_plan
from asm.cli import main
from asm.errors import BadRequest
from asm.options import CropOptions

REPO = Path(__file__).resolve().parents[1]


def _image(path: Path, seed: int, size: tuple[int, int] = (200, 150)) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def catalogue(tmp_path):
    """Two folders with the same file names, a nested folder, a damaged JPEG and a text file."""
    root = tmp_path / "cat"
    for i in range(3):
        _image(root / "a" / f"p{i}.jpg", i)
        _image(root / "b" / f"p{i}.jpg", 10 + i, (150, 200))
    _image(root / "b" / "deep" / "x.png", 20)
    good = (root / "a" / "p0.jpg").read_bytes()
    (root / "b" / "broken.jpg").write_bytes(good[:300])
    (root / "b" / "notes.txt.jpg").write_text("not an image")
    (root / "b" / "readme.md").write_text("ignored: not an image suffix")
    return root


def _lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


# --------------------------------------------------------------------------- inputs


def test_inputs_folders_globs_manifests(tmp_path, catalogue, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from_folder = expand_inputs(["cat"])
    assert len(from_folder) == 9 and all(os.path.isabs(p) for p in from_folder)
    assert str(catalogue / "a" / "p0.jpg") in from_folder and str(catalogue / "b" / "p0.jpg") in from_folder
    assert str(catalogue / "b" / "deep" / "x.png") in from_folder
    assert not any(p.endswith("readme.md") for p in from_folder)

    assert expand_inputs(["cat/*/p1.jpg"]) == [str(catalogue / "a" / "p1.jpg"), str(catalogue / "b" / "p1.jpg")]
    assert expand_inputs(["cat/**/*.png"]) == [str(catalogue / "b" / "deep" / "x.png")]
    with pytest.raises(BadRequest, match="matches no files"):
        expand_inputs(["cat/*.gif"])

    (catalogue / "list.txt").write_text("# a comment\na/p2.jpg\n\n  b/p2.jpg  \nmissing.jpg\n")
    assert expand_inputs(["cat/list.txt"]) == [str(catalogue / n) for n in ("a/p2.jpg", "b/p2.jpg", "missing.jpg")]
    (catalogue / "list.csv").write_text("sku,path\n1,a/p0.jpg\n2,b/p0.jpg\n")
    assert expand_inputs(["cat/list.csv"]) == [str(catalogue / "a" / "p0.jpg"), str(catalogue / "b" / "p0.jpg")]
    # the same file named twice (folder + explicit, relative + absolute) is one input
    twice = expand_inputs(["cat/a", str(catalogue / "a" / "p0.jpg"), "cat/a/../a/p1.jpg"])
    assert len(twice) == 3


# --------------------------------------------------------------------------- results file


def test_results_drop_a_torn_last_line(tmp_path):
    out = tmp_path / "r.jsonl"
    whole = '{"file":"/x/a.jpg","width":2,"height":2,"crops":[]}\n{"file":"/x/b.jpg","error":"invalid_image","message":"m"}\n'
    out.write_text(whole + '{"file":"/x/c.jpg","wid')
    with open_results(out) as results:
        assert results.answered == {"/x/a.jpg": False, "/x/b.jpg": True}
        results.write([{"file": "/x/c.jpg", "width": 1, "height": 1, "crops": []}])
    assert [r["file"] for r in _lines(out)] == ["/x/a.jpg", "/x/b.jpg", "/x/c.jpg"]


def test_results_never_touch_a_foreign_file_and_refuse_a_second_writer(tmp_path):
    foreign = tmp_path / "notes.jsonl"
    foreign.write_text("hello\nworld")
    with pytest.raises(BadRequest, match="line 1 is not an asm batch result"):
        open_results(foreign)
    assert foreign.read_text() == "hello\nworld"

    out = tmp_path / "r.jsonl"
    with open_results(out):
        with pytest.raises(BadRequest, match="another asm batch is writing"):
            open_results(out)
    with open_results(out):  # the lock went with the first writer
        pass


def test_full_disk_leaves_whole_lines(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    results = open_results(out)
    results.write([{"file": "/x/a.jpg", "width": 1, "height": 1, "crops": []}])
    import asm.batch.results as module

    real_write = os.write

    def full_disk(fd, data):  # what a full disk does: part of the data, then ENOSPC
        if len(data) > 20:
            return real_write(fd, bytes(data[:20]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module.os, "write", full_disk)
    with pytest.raises(OSError, match="cannot write .*No space left"):
        results.write([{"file": "/x/b.jpg", "width": 1, "height": 1, "crops": []}])
    monkeypatch.setattr(module.os, "write", real_write)
    results.close()
    assert [r["file"] for r in _lines(out)] == ["/x/a.jpg"]


# --------------------------------------------------------------------------- the job


def test_batch_equals_crop_and_resumes(tmp_path, catalogue, capsys):
    out = tmp_path / "r.jsonl"
    options = ["--aspect", "1:1", "--aspect", "16:9", "--top-k", "2"]
    assert main(["batch", str(catalogue), "--out", str(out), "--workers", "1", *options]) == 1  # bad files: 1
    err = capsys.readouterr().err
    assert "7 done, 2 failed, 0 skipped" in err and "images/s" in err
    records = {r["file"]: r for r in _lines(out)}
    assert len(records) == len(_lines(out)) == 9
    assert records[str(catalogue / "b" / "broken.jpg")]["error"] == "invalid_image"
    assert records[str(catalogue / "b" / "notes.txt.jpg")]["error"] == "invalid_image"

    # the very same records as `asm crop --json` (less the list of written files)
    good = sorted(f for f, r in records.items() if "crops" in r)
    assert main(["crop", *good, "--json", *options]) == 0
    for line in capsys.readouterr().out.splitlines():
        expected = json.loads(line)
        expected.pop("files")
        assert records[expected["file"]] == expected

    # a second run answers nothing again, and still says some failed
    assert main(["batch", str(catalogue), "--out", str(out), *options]) == 1
    assert "0 done, 0 failed, 9 skipped (answered before, 2 of them failed)" in capsys.readouterr().err
    assert len(_lines(out)) == 9
    # a new image joins the catalogue: only it is cropped
    _image(catalogue / "a" / "new.jpg", 99)
    summary = run_batch([str(catalogue)], out, CropOptions.parse(["1:1", "16:9"], top_k=2), workers=1)
    assert (summary.done, summary.failed, summary.skipped) == (1, 0, 9)
    assert len(_lines(out)) == 10


def test_two_workers_answer_everything_once(tmp_path, catalogue):
    out = tmp_path / "r.jsonl"
    summary = run_batch([str(catalogue)], out, workers=2)
    assert (summary.done, summary.failed) == (7, 2)
    files = [r["file"] for r in _lines(out)]
    assert sorted(files) == sorted(expand_inputs([str(catalogue)]))


def test_parquet_results_resume(tmp_path, catalogue):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "results"
    summary = run_batch([str(catalogue)], out, fmt="parquet", workers=1)
    assert (summary.done, summary.failed) == (7, 2)
    table = pq.read_table(out).to_pylist()  # the folder reads as one table (hidden lock file ignored)
    assert len(table) == 9
    row = next(r for r in table if r["error"] is None)
    assert json.loads(row["crops"])[0]["box"] and row["width"] in (150, 200)
    assert set(json.loads(row["focal_point"])) == {"x", "y", "x_norm", "y_norm"}
    assert run_batch([str(catalogue)], out, fmt="parquet").skipped == 9
    assert len(pq.read_table(out)) == 9


def test_unusable_jobs_exit_2_with_one_line(tmp_path, catalogue, capsys, monkeypatch):
    assert main(["batch", str(catalogue), "--out", str(tmp_path)]) == 2  # a folder, not a file
    assert "is a folder" in capsys.readouterr().err
    assert main(["batch", str(catalogue), "--out", str(tmp_path / "r.jsonl"), "--model", str(tmp_path / "none.pt")]) == 2
    assert "no asm model" in capsys.readouterr().err
    assert main(["batch", str(catalogue), "--out", str(tmp_path / "r.jsonl"), "--ray-address", "auto"]) == 2
    assert "--engine ray" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed: the local engine never needs it
    assert main(["batch", str(catalogue), "--out", str(tmp_path / "r.jsonl"), "--engine", "ray"]) == 2
    assert "pip install 'asm-crop[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").read_text()


def test_plain_progress_lines_off_a_terminal():
    stream = io.StringIO()
    progress = Progress(4, stream, interval=0.0)
    progress.update([{"file": "a"}, {"file": "b", "error": "x"}])
    progress.close()
    line = stream.getvalue()
    assert line.startswith("asm batch: 2/4 (50%), 1 failed,") and "images/s, ETA" in line


def test_actor_plan_leaves_a_cpu_for_reading():
    assert actor_plan(2) == (2, 0.5, 1)  # two actors share one CPU; the reader keeps the other
    actors, share, threads = actor_plan(16, 3)
    assert actors == 3 and share * actors + 1 <= 16 and threads == 5
    assert actor_plan(1)[1] == 0.5


# --------------------------------------------------------------------------- killed for real


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(folder: Path, out: Path) -> subprocess.Popen:
    # Ctrl-C as at a terminal: a runner started in the background (`cmd &` in a script) hands its
    # children SIGINT ignored, and Python then never turns it into KeyboardInterrupt
    return subprocess.Popen([sys.executable, "-m", "asm.cli", "batch", str(folder), "--out", str(out), "--workers", "2"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _freeze(proc: subprocess.Popen) -> list[int]:
    """Stop the job and its workers (SIGSTOP) where they are, so what happens next does not
    depend on how fast this machine crops; :func:`_thaw` lets them go on."""
    pids = [proc.pid, *_children(proc.pid)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    return pids


def _thaw(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def _wait_for_lines(proc: subprocess.Popen, out: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.exists() and out.read_bytes().count(b"\n") >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"fewer than {n} lines after {timeout} s")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads worker processes from /proc")
def test_interrupted_and_killed_jobs_resume_with_every_input_once(tmp_path):
    folder = tmp_path / "many"
    # enough images that a quiet machine is still busy with them when the signals come
    # (48 were all done within the test's first poll on an idle 2-core machine)
    for i in range(400):
        _image(folder / f"d{i % 3}" / "same.jpg" if i < 3 else folder / f"img{i:03d}.jpg", i, (160, 120))
    (folder / "bad.jpg").write_bytes(b"\xff\xd8 not really")
    names = expand_inputs([str(folder)])
    out = tmp_path / "r.jsonl"

    from asm.batch.local import CHUNK

    in_flight = 2 * 2 * CHUNK  # --workers 2 holds at most two chunks each (asm.batch.local)
    # Ctrl-C: exit 130, whole lines only, and the job stops within the work it held
    proc = _start(folder, out)
    _wait_for_lines(proc, out, 8)
    frozen = _freeze(proc)
    done = out.read_bytes().count(b"\n")
    proc.send_signal(signal.SIGINT)
    _thaw(frozen)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err, err
    first = len(_lines(out))
    assert 8 <= done <= first <= done + in_flight
    assert first < len(names), "the job finished before the signal: give it more images"

    # kill -9: the workers go too, and a half-written line is left behind
    proc = _start(folder, out)
    _wait_for_lines(proc, out, first + 8)
    workers = _children(proc.pid)
    assert workers
    _freeze(proc)
    proc.kill()
    _thaw(workers)
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 15
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(_alive, workers)), "worker processes outlived their killed job"
    with open(out, "ab") as f:
        f.write(b'{"file": "' + names[-1].encode() + b'", "wid')  # as if killed mid-write
    killed = out.read_bytes().count(b"\n")
    assert killed < len(names)

    # resume: everything answered exactly once, the torn line gone
    proc = _start(folder, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err  # bad.jpg
    files = [r["file"] for r in _lines(out)]
    assert sorted(files) == sorted(names)
    assert f"{killed} skipped" in err
