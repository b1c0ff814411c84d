"""Does asm's face detector find the same faces as OpenCV's ``cv2.FaceDetectorYN``?

asm runs YuNet on ONNX Runtime and decodes its outputs itself (:mod:`asm.search.faces`);
OpenCV's ``FaceDetectorYN`` running the same ONNX file is the reference.

``record OUT.json`` writes :func:`asm.search.faces.detect_faces` of every photo of
:func:`photos` (OSIE val ids 1401-1500, the held-out validation photos and ``examples/*.jpg``);
``compare BEFORE.json AFTER.json`` matches the faces photo by photo and exits 1 unless every
photo has as many faces, each box edge within ``--tolerance`` px (of the original image) and
each confidence within ``--conf-tolerance``. ``check`` runs both detectors now and compares.

    python benchmarks/check_faces.py record /tmp/faces_before.json   # on the old code
    python benchmarks/check_faces.py record /tmp/faces_after.json    # on the new code
    python benchmarks/check_faces.py compare /tmp/faces_before.json /tmp/faces_after.json
    python benchmarks/check_faces.py check                            # asm vs cv2, this code
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OSIE_IMAGES = SHARED / "data" / "osie" / "images"
VAL_IDS = range(1401, 1501)


def photos() -> list[Path]:
    """The photos checked: OSIE val (if present), the held-out validation photos (if present)
    and ``examples/*.jpg``."""
    paths = [OSIE_IMAGES / f"{i}.jpg" for i in VAL_IDS if (OSIE_IMAGES / f"{i}.jpg").is_file()]
    if (SHARED / "data" / "photos").is_dir():
        from asm.evaluation.border import validation_photos

        paths += validation_photos()
    return paths + sorted((ROOT / "examples").glob("*.jpg"))


def _name(path: Path) -> str:
    for base in (ROOT, SHARED):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return path.name


def opencv_yunet(bgr: np.ndarray) -> np.ndarray:
    """:func:`asm.search.faces.yunet` done by ``cv2.FaceDetectorYN`` (the reference):
    ``[N, 5]`` float32 ``(x, y, width, height, score)``."""
    import cv2

    from asm.search import faces

    h, w = bgr.shape[:2]
    model = np.frombuffer(faces.yunet_model(), np.uint8)
    log = cv2.utils.logging
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_ERROR)  # OpenCV 5 warns that its new engine ignores the target
    try:
        detector = cv2.FaceDetectorYN.create("onnx", model, np.empty(0, np.uint8), (w, h),
                                             faces.MIN_CONFIDENCE, faces.NMS_THRESHOLD, faces.NMS_TOP_K)
    finally:
        log.setLogLevel(level)
    _, rows = detector.detect(np.ascontiguousarray(bgr))
    return np.zeros((0, 5), np.float32) if rows is None else rows[:, [0, 1, 2, 3, 14]]


@contextmanager
def detector(yunet: Callable[[np.ndarray], np.ndarray]) -> Iterator[None]:
    """Within it, :func:`asm.search.faces.detect_faces` (and so the cropper) runs ``yunet``
    in place of :func:`asm.search.faces.yunet` (one thread at a time: it swaps a module attribute)."""
    from asm.search import faces

    saved = faces.yunet
    faces.yunet = yunet
    try:
        yield
    finally:
        faces.yunet = saved


def opencv_detector() -> AbstractContextManager[None]:
    """Within it, :func:`asm.search.faces.detect_faces` runs YuNet through :func:`opencv_yunet`."""
    return detector(opencv_yunet)


def detect_all(paths: list[Path]) -> dict[str, list[list[float]]]:
    """``{photo: [[x1, y1, x2, y2, confidence], ...]}`` by :func:`asm.search.faces.detect_faces`."""
    from asm.io import load_image
    from asm.search.faces import detect_faces

    return {_name(p): detect_faces(load_image(p)).tolist() for p in paths}


def match(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair the faces of ``a`` and ``b`` (``[F, 5]`` each, same F): greedily by the largest
    edge distance. Returns the pairs' largest edge distance ``[F]`` and confidence difference ``[F]``."""
    d = np.abs(a[:, None, :4] - b[None, :, :4]).max(axis=2)
    edge, conf = np.zeros(len(a)), np.zeros(len(a))
    for k in range(len(a)):
        i, j = np.unravel_index(np.argmin(d), d.shape)
        edge[k], conf[k] = d[i, j], abs(a[i, 4] - b[j, 4])
        d[i, :], d[:, j] = np.inf, np.inf
    return edge, conf


def compare(a: dict, b: dict, tolerance: float = 1.0, conf_tolerance: float = 0.01) -> list[str]:
    """Every photo whose faces differ (count, an edge by more than ``tolerance`` px, a
    confidence by more than ``conf_tolerance``), one line each; also prints a summary."""
    problems, worst_edge, worst_conf, faces = [], 0.0, 0.0, 0
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            problems.append(f"{name}: only in {'the first' if name in a else 'the second'}")
            continue
        fa, fb = np.asarray(a[name]).reshape(-1, 5), np.asarray(b[name]).reshape(-1, 5)
        if len(fa) != len(fb):
            problems.append(f"{name}: {len(fa)} -> {len(fb)} faces")
            continue
        if len(fa) == 0:
            continue
        faces += len(fa)
        edge, conf = match(fa, fb)
        worst_edge, worst_conf = max(worst_edge, edge.max()), max(worst_conf, conf.max())
        if edge.max() > tolerance or conf.max() > conf_tolerance:
            problems.append(f"{name}: edges move up to {edge.max():.2f} px, confidence up to {conf.max():.4f}")
    print(f"{len(set(a) | set(b))} photos, {faces} faces matched: largest edge move {worst_edge:.3f} px, "
          f"largest confidence change {worst_conf:.5f}; {len(problems)} photos differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="write asm's faces of every photo to a JSON file")
    rec.add_argument("out", type=Path)
    cmp_ = sub.add_parser("compare", help="compare two recorded JSON files")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    check = sub.add_parser("check", help="compare asm's faces with cv2.FaceDetectorYN's, both run now")
    for p in (cmp_, check):
        p.add_argument("--tolerance", type=float, default=1.0, help="px at the original scale (default 1)")
        p.add_argument("--conf-tolerance", type=float, default=0.01)
    args = parser.parse_args(argv)
    if args.cmd == "record":
        faces = detect_all(photos())
        args.out.write_text(json.dumps(faces, indent=0))
        print(f"{len(faces)} photos, {sum(map(len, faces.values()))} faces -> {args.out}")
        return 0
    if args.cmd == "check":
        paths = photos()
        with opencv_detector():
            before = detect_all(paths)
        before_after = before, detect_all(paths)
    else:
        before_after = json.loads(args.before.read_text()), json.loads(args.after.read_text())
    problems = compare(*before_after, args.tolerance, args.conf_tolerance)
    for line in problems:
        print("  " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
