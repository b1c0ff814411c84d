"""Gaze samples in one file (photos as WebP, densities as float16): training data that travels
without the photo folders (e.g. to a GPU machine). ``asm train --write-pack`` writes one."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from asm.data.gaze import GazeSample

__all__ = ["save_pack", "load_pack"]


def save_pack(sets: dict[str, list[GazeSample]], path: str | os.PathLike, quality: int = 85) -> None:
    """Write named sample lists to one file (photos as WebP, densities as float16)."""
    import pickle

    def enc(s: GazeSample) -> dict:
        ok, webp = cv2.imencode(".webp", s.image[:, :, ::-1], [cv2.IMWRITE_WEBP_QUALITY, quality])
        if not ok:
            raise ValueError(f"could not encode {s.name}")
        return {"webp": webp.tobytes(), "target": s.target.astype(np.float16), "teacher": s.teacher.astype(np.float16),
                "name": s.name, "points": s.points}

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({"format": "asm-gaze-pack/2", "sets": {k: [enc(s) for s in v] for k, v in sets.items()}}, f, protocol=5)


def load_pack(path: str | os.PathLike) -> dict[str, list[GazeSample]]:
    """Read a file written by :func:`save_pack` (a pickle: load only packs you made)."""
    import pickle

    with open(path, "rb") as f:
        pack = pickle.load(f)
    if not isinstance(pack, dict) or pack.get("format") != "asm-gaze-pack/2":
        raise ValueError(f"{path} is not an asm gaze pack")

    def dec(d: dict) -> GazeSample:
        image = cv2.imdecode(np.frombuffer(d["webp"], np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1].copy()
        target, teacher = (d[k].astype(np.float32) for k in ("target", "teacher"))
        return GazeSample(image, target / target.sum(), teacher / teacher.sum(), d["name"], d["points"])

    return {k: [dec(d) for d in v] for k, v in pack["sets"].items()}
