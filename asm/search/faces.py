"""Face detection for face-aware crops: YuNet through OpenCV's ``cv2.FaceDetectorYN``.

The 230 KB ONNX model ships inside asm (``asm/weights/face_detection_yunet_2023mar.onnx``,
MIT, credits in ``asm/weights/YUNET-LICENSE.txt``) and is read as bytes through
:mod:`importlib.resources`, so it also loads from the zipped package a TorchServe archive
carries. Nothing is ever downloaded.

Detection runs on a copy of the image whose long side is at most :data:`DETECT_SIDE`
pixels; the boxes are mapped back to the original pixels.

>>> faces = detect_faces(rgb)          # [F, 5]: x1, y1, x2, y2, confidence, most prominent first
"""

from __future__ import annotations

import hashlib
import threading
from importlib import resources

import cv2
import numpy as np

__all__ = ["detect_faces", "prominence", "YUNET_FILE", "DETECT_SIDE", "MIN_CONFIDENCE"]

YUNET_FILE = "face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
#: The detector sees the image with its long side at most this long (never enlarged).
DETECT_SIDE = 640
#: Detections below this YuNet confidence are dropped.
MIN_CONFIDENCE = 0.7
#: At most this many faces per image (the most prominent).
MAX_FACES = 32

_model_bytes: np.ndarray | None = None
_local = threading.local()  # one cv2 detector per thread (it keeps its input size)


def _model() -> np.ndarray:
    """The ONNX file as a uint8 buffer, checked against its published hash once."""
    global _model_bytes
    if _model_bytes is None:
        data = resources.files("asm").joinpath("weights", YUNET_FILE).read_bytes()
        if hashlib.sha256(data).hexdigest() != YUNET_SHA256:
            raise RuntimeError(f"asm/weights/{YUNET_FILE} is damaged (sha256 mismatch); reinstall asm")
        _model_bytes = np.frombuffer(data, dtype=np.uint8)
    return _model_bytes


def _detector(width: int, height: int) -> cv2.FaceDetectorYN:
    det = getattr(_local, "detector", None)
    if det is None:
        log = cv2.utils.logging
        level = log.getLogLevel()
        log.setLogLevel(log.LOG_LEVEL_ERROR)  # OpenCV 5 warns that its new engine ignores the target
        try:
            det = cv2.FaceDetectorYN.create("onnx", _model(), np.empty(0, np.uint8), (width, height),
                                            MIN_CONFIDENCE, 0.3, 5000)
        finally:
            log.setLogLevel(level)
        _local.detector = det
    det.setInputSize((width, height))
    return det


def detect_faces(rgb: np.ndarray, max_side: int = DETECT_SIDE, size: tuple[int, int] | None = None) -> np.ndarray:
    """Faces in an ``[h, w, 3]`` uint8 RGB image.

    Returns ``[F, 5]`` float64 rows ``(x1, y1, x2, y2, confidence)`` in the pixels of the
    image, or of a ``size = (W, H)`` image that ``rgb`` is a scaled copy of, clipped to it,
    most prominent (:func:`prominence`) first; ``[0, 5]`` when none.
    """
    ih, iw = rgb.shape[:2]
    W, H = size if size is not None else (iw, ih)
    scale = min(1.0, max_side / max(iw, ih))
    w, h = max(1, round(iw * scale)), max(1, round(ih * scale))
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA) if (w, h) != (iw, ih) else rgb
    _, rows = _detector(w, h).detect(np.ascontiguousarray(small[..., ::-1]))  # YuNet wants BGR
    if rows is None or len(rows) == 0:
        return np.zeros((0, 5))
    x, y, bw, bh, conf = (rows[:, i].astype(np.float64) for i in (0, 1, 2, 3, 14))
    sx, sy = W / w, H / h
    faces = np.stack([x * sx, y * sy, (x + bw) * sx, (y + bh) * sy, conf], axis=1)
    faces[:, [0, 2]] = faces[:, [0, 2]].clip(0, W)
    faces[:, [1, 3]] = faces[:, [1, 3]].clip(0, H)
    faces = faces[(faces[:, 2] > faces[:, 0]) & (faces[:, 3] > faces[:, 1])]
    return faces[np.argsort(-prominence(faces), kind="stable")][:MAX_FACES]


def prominence(faces: np.ndarray) -> np.ndarray:
    """How much each face matters: its area times its confidence, as a share of the most
    prominent face's (``[F, 5]`` -> ``[F]`` in ``(0, 1]``)."""
    if len(faces) == 0:
        return np.zeros(0)
    p = (faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1]) * faces[:, 4]
    return p / p.max()
