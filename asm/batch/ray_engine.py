"""Cropping a list of images on a Ray cluster (or a local Ray runtime) with Ray Data.

Ray reads the files (``read_binary_files``); a pool of actors, each holding one
:class:`~asm.cropper.Cropper`, crops batches of them through ``map_batches`` with the same
per-image steps as the local engine (:func:`asm.batch.local.crop_chunk`); the records stream
back to the driver, which writes them (so resuming works exactly as locally).

CPU budget: one CPU stays free for the read tasks and the actors share the rest
(``(cpus - 1) / actors`` each). Giving every actor a whole CPU on a 2-CPU machine leaves
the reader none, and the job waits forever.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from asm.errors import BadRequest, describe
from asm.options import CropOptions
from asm.settings import CropperSettings

__all__ = ["run_ray", "actor_plan"]

#: CPUs kept for Ray's read tasks.
READ_CPUS = 1.0


def actor_plan(cluster_cpus: float, actors: int | None = None) -> tuple[int, float, int]:
    """``(actors, CPUs per actor, threads per actor)`` for a cluster of ``cluster_cpus``:
    by default one actor per CPU, all of them sharing what the readers leave."""
    spare = max(cluster_cpus - READ_CPUS, 0.5)
    actors = max(1, actors or int(cluster_cpus))
    share = spare / actors
    return actors, share, max(1, int(share))


class _CropActor:
    """One Cropper per actor; ``{"bytes", "path"}`` batches in, ``{"record": JSON text}`` out."""

    def __init__(self, settings: CropperSettings, threads: int, options: CropOptions) -> None:
        from asm.batch.local import make_cropper

        self.cropper = make_cropper(settings, threads)
        self.options = options

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from asm.batch.local import crop_chunk

        items = [(str(p), bytes(b)) for p, b in zip(batch["path"], batch["bytes"])]
        records = crop_chunk(self.cropper, items, self.options)
        return {"record": np.array([json.dumps(r) for r in records], dtype=object)}


def run_ray(
    names: Sequence[str],
    options: CropOptions,
    settings: CropperSettings,
    workers: int | None = None,
    address: str | None = None,
    batch_size: int = 8,
) -> Iterator[list[dict[str, Any]]]:
    """Records for ``names`` (paths every node can read), a batch at a time, as they finish;
    each actor crops with a cropper of ``settings`` (its model path made absolute for the nodes).

    Joins the cluster at ``address`` (``"auto"``, ``"HOST:6379"``, ``"ray://HOST:10001"``), or
    uses the runtime this process already started, or starts a local one (and stops it after).
    The driver's ``asm`` package travels with the job, so the nodes run the same code.
    Paths the driver cannot read are answered here, without Ray.
    """
    try:
        import ray
        import ray.data
    except ImportError:
        raise BadRequest("--engine ray needs Ray: pip install 'asm-crop[ray]'") from None

    readable = []
    for name in names:
        if os.path.isfile(name) and os.access(name, os.R_OK):
            readable.append(name)
        else:  # the same message the local engine gives (asm.io refuses it before reading)
            from asm.io import load_image

            try:
                load_image(name)
                error: BaseException = BadRequest("not a readable file")
            except Exception as e:  # noqa: BLE001
                error = e
            yield [{"file": name, **describe(error)}]
    if not readable:
        return

    started = not ray.is_initialized()
    if started:
        import asm

        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                 runtime_env={"py_modules": [str(Path(asm.__file__).parent)], "excludes": ["__pycache__"]})
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the job draws its own
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        actors, share, threads = actor_plan(ray.cluster_resources().get("CPU", 1.0), workers)
        if settings.model is not None:
            settings = settings.replace(model=str(Path(settings.model).resolve()))
        wanted = set(readable)
        data = ray.data.read_binary_files(readable, include_paths=True, num_cpus=READ_CPUS)
        crops = data.map_batches(
            _CropActor,
            fn_constructor_kwargs={"settings": settings, "threads": threads, "options": options},
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=share,
            batch_format="numpy",
        )
        for batch in crops.iter_batches(batch_size=None, batch_format="numpy"):
            records = [json.loads(text) for text in batch["record"]]
            for r in records:  # Ray keeps the paths it was given; anything else is a bug to see
                if r["file"] not in wanted:
                    raise RuntimeError(f"Ray answered a path it was not given: {r['file']!r}")
            yield records
    finally:
        if started:
            ray.shutdown()
