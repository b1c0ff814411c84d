"""Cropping a list of images on this machine: one or more worker processes, each with one
:class:`~asm.cropper.Cropper`, analysing the next image while the crops of this one are searched."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from asm.cropper import Cropper
from asm.errors import describe
from asm.options import CropOptions
from asm.settings import CropperSettings

__all__ = ["crop_chunk", "make_cropper", "run_local", "cpu_count"]

#: Images per task sent to a worker: what an interrupted job may have to redo, per worker.
CHUNK = 8


def cpu_count() -> int:
    """The cores this process may use (its CPU affinity, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def make_cropper(settings: CropperSettings, threads: int) -> Cropper:
    """A Cropper of ``settings`` for one worker, whose networks (ONNX Runtime, or torch when the
    model runs there) and OpenCV use ``threads`` threads. The ONNX path loads no torch in the worker."""
    import cv2

    cv2.setNumThreads(max(1, threads))
    return settings.replace(threads=threads).build()


def _analyse(cropper: Cropper, source: object) -> tuple[Any, BaseException | None]:
    try:
        return cropper.analyse(source), None
    except Exception as e:  # noqa: BLE001 - one bad image becomes its own error record
        return None, e


def crop_chunk(cropper: Cropper, items: Sequence[tuple[str, object]], options: CropOptions) -> list[dict[str, Any]]:
    """One record per ``(name, source)`` (source: a path or the file's bytes), in order:
    ``{"file", "width", "height", "crops", "focal_point"}`` (and ``faces`` when on) or ``{"file", "error", "message"}``.

    The same call as ``asm crop`` (``Cropper.analyse``, then its crops); a thread analyses
    image ``i + 1`` (decode, forward pass) while the crops of image ``i`` are searched.
    """
    records: list[dict[str, Any]] = []
    if not items:
        return records
    with ThreadPoolExecutor(1, thread_name_prefix="asm-analyse") as worker:
        ahead = worker.submit(_analyse, cropper, items[0][1])
        for i, (name, _) in enumerate(items):
            analysis, error = ahead.result()
            if i + 1 < len(items):
                ahead = worker.submit(_analyse, cropper, items[i + 1][1])
            if error is None:
                try:
                    records.append({"file": name, **analysis.crops(options, focal_point=True).to_json()})
                    continue
                except Exception as e:  # noqa: BLE001
                    error = e
            records.append({"file": name, **describe(error)})
    return records


# --------------------------------------------------------------------------- worker processes

_worker: dict[str, Any] = {}


def _exit_with_parent(parent: int) -> None:
    """A worker whose job was killed (``kill -9``) ends too instead of lingering."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(settings: CropperSettings, threads: int, options: CropOptions, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the job's to handle
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    _worker["cropper"] = make_cropper(settings, threads)
    _worker["options"] = options


def _crop_paths(names: list[str]) -> list[dict[str, Any]]:
    return crop_chunk(_worker["cropper"], [(n, n) for n in names], _worker["options"])


def _worker_died(name: str) -> dict[str, Any]:
    return {"file": name, "error": "internal_error",
            "message": "the worker process died while cropping this image (out of memory, or a crash in a decoder)"}


def run_local(
    names: Sequence[str],
    options: CropOptions,
    settings: CropperSettings,
    workers: int | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Records for ``names`` (image paths), a chunk at a time, in the order chunks finish.

    ``workers`` processes (default: the cores), each with a cropper of ``settings`` and
    ``cores // workers`` threads;
    one worker runs in this process. A worker that dies takes only the images it held: they
    are retried one by one in a fresh pool, and an image that kills a worker again is
    answered with an ``internal_error`` record.
    """
    cores = cpu_count()
    workers = max(1, workers or cores)
    threads = max(1, cores // workers)
    chunks = [list(names[i : i + CHUNK]) for i in range(0, len(names), CHUNK)]
    if workers == 1:
        cropper = make_cropper(settings, threads)
        for chunk in chunks:
            yield crop_chunk(cropper, [(n, n) for n in chunk], options)
        return

    import multiprocessing
    from collections import deque

    queue = deque(chunks)
    suspects: deque[str] = deque()  # images that were in a worker when it died
    while queue or suspects:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                                   initargs=(settings, threads, options, os.getpid()))
        running: dict[Future, tuple[list[str], bool]] = {}  # future -> (its images, a suspect alone)
        broken = False
        try:
            while (queue or suspects or running) and not broken:
                if suspects:  # one at a time, alone in the pool: a second crash names the culprit
                    if not running:
                        name = suspects.popleft()
                        running[pool.submit(_crop_paths, [name])] = ([name], True)
                else:
                    while queue and len(running) < 2 * workers:  # a bounded queue: little is in flight
                        chunk = queue.popleft()
                        running[pool.submit(_crop_paths, chunk)] = (chunk, False)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    chunk, alone = running.pop(future)
                    error = future.exception()
                    if error is None:
                        yield future.result()
                    elif not isinstance(error, BrokenProcessPool):
                        raise error
                    elif alone:
                        yield [_worker_died(chunk[0])]
                        broken = True
                    else:
                        suspects.extend(chunk)
                        broken = True
            for chunk, _ in running.values():  # lost with the pool
                suspects.extend(chunk)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
