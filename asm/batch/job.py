"""One batch job: expand the inputs, skip what the results already answer, crop the rest on
an engine (``local`` or ``ray``), append each record once, and report progress."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from asm.batch.inputs import expand_inputs
from asm.batch.results import open_results
from asm.errors import BadRequest

if TYPE_CHECKING:  # the cropper (and torch) load when a job runs, not for `asm --help`
    from asm.options import CropOptions
    from asm.settings import CropperSettings

__all__ = ["run_batch", "Summary", "Progress", "ENGINES"]

ENGINES = ("local", "ray")


@dataclass
class Summary:
    """What a job did: ``done`` and ``failed`` this run, ``skipped`` (answered before, of which
    ``failed_before`` are error records), ``seconds`` of cropping."""

    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    failed_before: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def images_per_s(self) -> float:
        return (self.done + self.failed) / self.seconds if self.seconds > 0 else 0.0

    @property
    def any_failed(self) -> bool:
        return bool(self.failed or self.failed_before)

    def line(self) -> str:
        before = f", {self.failed_before} of them failed" if self.failed_before else ""
        head = "interrupted (run the same command again to resume)" if self.interrupted else "finished"
        return (f"{head}: {self.done} done, {self.failed} failed, {self.skipped} skipped (answered before{before}); "
                f"{self.images_per_s:.2f} images/s")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """A tqdm bar (rate, ETA) on a terminal; otherwise a plain line every ``interval`` seconds."""

    def __init__(self, total: int, stream: IO[str] | None = None, interval: float = 10.0, bar: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total, self.count, self.failed = total, 0, 0
        self.interval, self.start = interval, time.monotonic()
        self.last = self.start
        if bar is None:
            bar = self.stream.isatty()
        self.bar = None
        if bar and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", desc="asm batch", file=self.stream, dynamic_ncols=True)

    def update(self, records: Sequence[dict[str, Any]]) -> None:
        self.count += len(records)
        self.failed += sum("error" in r for r in records)
        if self.bar is not None:
            self.bar.update(len(records))
            if self.failed:
                self.bar.set_postfix(failed=self.failed, refresh=False)
            return
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            rate = self.count / (now - self.start)
            eta = _duration((self.total - self.count) / rate) if rate > 0 else "?"
            print(f"asm batch: {self.count}/{self.total} ({100 * self.count / max(self.total, 1):.0f}%), "
                  f"{self.failed} failed, {rate:.2f} images/s, ETA {eta}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_batch(
    inputs: Sequence[str],
    out: str | os.PathLike,
    options: CropOptions | None = None,
    settings: CropperSettings | None = None,
    *,
    fmt: str = "jsonl",
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    progress: Progress | None = None,
    stream: IO[str] | None = None,
) -> Summary:
    """Crop every image named by ``inputs`` (see :func:`~asm.batch.inputs.expand_inputs`) into
    the results at ``out`` (see :mod:`asm.batch.results`), skipping those already answered.
    Every worker builds its cropper from ``settings`` (default :class:`~asm.settings.CropperSettings`),
    with its share of the threads.

    Raises :class:`~asm.errors.AsmError` for an unusable job (no such engine, results that
    are not asm's, Ray missing) and ``OSError`` when the results cannot be written (a full
    disk): what was written stays whole and a re-run resumes. ``KeyboardInterrupt`` ends the
    job the same way, with ``summary.interrupted`` set on the summary it returns.
    """
    if engine not in ENGINES:
        raise BadRequest(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise BadRequest(f"--workers must be at least 1, got {workers}")
    from asm.options import CropOptions
    from asm.settings import CropperSettings

    options = options or CropOptions()
    settings = settings or CropperSettings()
    names = expand_inputs(inputs)
    summary = Summary(total=len(names))
    with open_results(Path(out), fmt) as results:
        answered = results.answered
        todo = [n for n in names if n not in answered]
        summary.skipped = len(names) - len(todo)
        summary.failed_before = sum(answered[n] for n in names if n in answered)
        if not todo:
            return summary
        settings.check_model()  # a missing --model fails the job here, not each image
        if engine == "ray":
            from asm.batch.ray_engine import run_ray

            runner = run_ray(todo, options, settings, workers, ray_address)
        else:
            from asm.batch.local import run_local

            runner = run_local(todo, options, settings, workers)
        progress = progress or Progress(len(todo), stream)
        start = time.monotonic()
        try:
            for records in runner:
                fresh = [r for r in records if r["file"] not in answered]  # never a second line for one input
                results.write(fresh)
                for r in fresh:
                    answered[r["file"]] = "error" in r
                summary.failed += sum("error" in r for r in fresh)
                summary.done += sum("error" not in r for r in fresh)
                progress.update(fresh)
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            summary.seconds = time.monotonic() - start
            progress.close()
            runner.close()
    return summary
