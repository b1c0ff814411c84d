"""Face detection for face-aware crops: YuNet (2023mar) on ONNX Runtime.

The 230 KB ONNX model ships inside asm (``asm/weights/face_detection_yunet_2023mar.onnx``,
MIT, credits in ``asm/weights/YUNET-LICENSE.txt``) and is read as bytes through
:mod:`importlib.resources`, so it also loads from the zipped package a TorchServe archive
carries. Nothing is ever downloaded.

The file declares a fixed ``[1, 3, 640, 640]`` input, but its graph holds no size: when
the model is loaded its input is declared ``[1, 3, height, width]`` and its other declared
shapes are dropped (:func:`runtime_model`), so the network runs on the image padded only to
a multiple of 32, as OpenCV's ``cv2.FaceDetectorYN`` does. (Declaring the input's rank and
channels, rather than dropping its shape, lets ONNX Runtime keep the max-pools in its
blocked NCHWc layout; the landmark head, which asm does not use, is cut off: the same
outputs, bit for bit, in less time; see ``benchmarks/results/faces.md``, "Detector
precision".) The outputs are
decoded here as ``FaceDetectorYN`` decodes them (same scores, boxes and NMS), so the faces
are OpenCV's (``benchmarks/check_faces.py`` checks that).

Detection runs on a copy of the image whose long side is at most :data:`DETECT_SIDE`
pixels; the boxes are mapped back to the original pixels.

>>> faces = detect_faces(rgb)          # [F, 5]: x1, y1, x2, y2, confidence, most prominent first
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from importlib import resources
from typing import TYPE_CHECKING

import cv2
import numpy as np

from asm.cpu_session import cpu_session, cpu_threads

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["detect_faces", "yunet", "decode", "nms", "yunet_model", "runtime_model", "network_input", "detector_copy", "prominence", "YUNET_FILE", "DETECT_SIDE", "MIN_CONFIDENCE"]

YUNET_FILE = "face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
#: The detector sees the image with its long side at most this long (never enlarged).
DETECT_SIDE = 640
#: Detections below this YuNet confidence are dropped.
MIN_CONFIDENCE = 0.7
#: Overlapping detections (IoU above this) keep only the most confident (as OpenCV's default).
NMS_THRESHOLD = 0.3
#: At most this many detections enter the NMS (as OpenCV's default).
NMS_TOP_K = 5000
#: At most this many faces per image (the most prominent).
MAX_FACES = 32
#: YuNet's output strides; the input is padded to a multiple of the largest.
STRIDES = (8, 16, 32)
#: The outputs asm decodes (:func:`decode`): scores and boxes, stride by stride (not the landmarks).
OUTPUTS = tuple(f"{kind}_{s}" for kind in ("cls", "obj", "bbox") for s in STRIDES)

_sessions: dict[int, onnxruntime.InferenceSession] = {}  # by intra-op thread count
_lock = threading.Lock()


def yunet_model() -> bytes:
    """The ONNX model as shipped, checked against its published hash."""
    data = resources.files("asm").joinpath("weights", YUNET_FILE).read_bytes()
    if hashlib.sha256(data).hexdigest() != YUNET_SHA256:
        raise RuntimeError(f"asm/weights/{YUNET_FILE} is damaged (sha256 mismatch); reinstall asm")
    return data


def runtime_model(model: bytes) -> bytes:
    """YuNet as asm runs it: the serialised ONNX ``model`` with its input declared
    ``[1, 3, height, width]`` and no other shape declared, so that ONNX Runtime takes every
    size from the input, and with only the :data:`OUTPUTS` that :func:`yunet` decodes and
    the nodes they need (the landmark head goes). Edits the protobuf wire format directly
    (the ``onnx`` package is slow to import)."""
    return _edit(model, _RUNTIME_EDIT)


def _fields(message: bytes) -> Iterator[tuple[int, bytes, bytes | None]]:
    """A protobuf message's fields in order: ``(number, the field's bytes, its body)``, the
    body for length-delimited fields (bytes, strings, messages), else ``None``."""
    i = 0
    while i < len(message):
        start = i
        key, i = _varint(message, i)
        wire, body = key & 7, None
        if wire == 2:
            n, i = _varint(message, i)
            body, i = message[i:i + n], i + n
        elif wire == 0:
            i = _varint(message, i)[1]
        elif wire in (1, 5):  # fixed 64 and 32 bits
            i += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} in the ONNX model")
        yield key >> 3, message[start:i], body


def _edit(message: bytes, rules: dict) -> bytes:
    """``message`` with its length-delimited fields edited by field number: a rule ``None``
    drops the field, bytes replace its body, a function maps its body, a dict edits the
    body by the same rules."""
    out = bytearray()
    for number, raw, body in _fields(message):
        if body is None or number not in rules:
            out += raw
        elif (rule := rules[number]) is not None:
            body = rule if isinstance(rule, bytes) else rule(body) if callable(rule) else _edit(body, rule)
            out += _message(number, body)
    return bytes(out)


def _only_outputs(graph: bytes, names: set[bytes]) -> bytes:
    """A GraphProto keeping of its outputs (field 12) those ``names`` and of its nodes
    (field 1; inputs 1, outputs 2) those they need."""
    fields = list(_fields(graph))
    needed, keep = set(names), set()
    for k in reversed(range(len(fields))):  # nodes are in topological order
        number, _, body = fields[k]
        if number == 1:
            node = list(_fields(body))
            if any(f == 2 and value in needed for f, _, value in node):
                keep.add(k)
                needed.update(value for f, _, value in node if f == 1)
        elif number == 12 and next(value for f, _, value in _fields(body) if f == 1) in names:
            keep.add(k)
    return b"".join(raw for k, (number, raw, _) in enumerate(fields) if number not in (1, 12) or k in keep)


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if byte < 0x80:
            return value, i


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _message(field: int, body: bytes) -> bytes:
    return _encode_varint(field << 3 | 2) + _encode_varint(len(body)) + body


def _dim(value: int | bytes) -> bytes:
    """A TensorShapeProto's ``dim`` field: a size (dim_value, 1) or a name (dim_param, 2)."""
    return _message(1, _message(2, value) if isinstance(value, bytes) else b"\x08" + _encode_varint(value))


#: Where a GraphProto declares tensor shapes, by protobuf field number: input (11) / output
#: (12) -> type (2) -> tensor_type (1) -> shape (2), and value_info (13). The input's shape
#: becomes ``[1, 3, height, width]``, the others are dropped.
_SHAPE_EDIT: dict = {11: {2: {1: {2: b"".join(map(_dim, (1, 3, b"height", b"width")))}}}, 12: {2: {1: {2: None}}}, 13: None}
#: :func:`runtime_model`'s edit of a ModelProto: its graph (field 7).
_RUNTIME_EDIT: dict = {7: lambda graph: _only_outputs(_edit(graph, _SHAPE_EDIT), {name.encode() for name in OUTPUTS})}


def _session() -> onnxruntime.InferenceSession:
    """The process's YuNet session for the current thread count (:func:`~asm.cpu_session.cpu_threads`;
    made once per count)."""
    threads = cpu_threads()
    session = _sessions.get(threads)
    if session is None:
        with _lock:
            if threads not in _sessions:
                _sessions[threads] = cpu_session(runtime_model(yunet_model()), threads)
            session = _sessions[threads]
    return session


def yunet(bgr: np.ndarray, session: onnxruntime.InferenceSession | None = None) -> np.ndarray:
    """YuNet's faces in an ``[h, w, 3]`` uint8 BGR image, as ``cv2.FaceDetectorYN.detect``
    finds them: ``[N, 5]`` float32 rows ``(x, y, width, height, score)`` in the image's
    pixels, most confident first, after NMS (landmarks are not decoded). ``session``: the
    network to run (default: asm's, for the current thread count, :func:`~asm.cpu_session.cpu_threads`)."""
    x = network_input(bgr)
    outputs = dict(zip(OUTPUTS, (session if session is not None else _session()).run(list(OUTPUTS), {"input": x})))
    return nms(decode(outputs, x.shape[3], x.shape[2], MIN_CONFIDENCE))


def network_input(bgr: np.ndarray) -> np.ndarray:
    """YuNet's input for an ``[h, w, 3]`` uint8 BGR image: ``[1, 3, H, W]`` float32, BGR,
    0-255 (not normalised), zero-padded at the bottom and right to multiples of the
    largest stride."""
    h, w = bgr.shape[:2]
    step = STRIDES[-1]
    x = np.zeros((1, 3, -(-h // step) * step, -(-w // step) * step), np.float32)
    # plane by plane (a strided transpose is slower); the RGB image behind a reversed view split as it is
    planes = cv2.split(bgr) if bgr.flags.c_contiguous else cv2.split(np.ascontiguousarray(bgr[..., ::-1]))[::-1]
    for c, plane in enumerate(planes):
        x[0, c, :h, :w] = plane
    return x


def decode(outputs: dict[str, np.ndarray], width: int, height: int, min_score: float) -> np.ndarray:
    """Candidate faces from YuNet's outputs for a ``width x height`` input.

    ``outputs`` holds ``cls_S``, ``obj_S`` ``[1, N_S, 1]`` and ``bbox_S`` ``[1, N_S, 4]`` for
    each stride ``S`` in :data:`STRIDES`, ``N_S = (height / S) * (width / S)`` grid cells row
    by row. A cell's score is ``sqrt(clip(cls) * clip(obj))``; its box is centred at
    ``(col + dx, row + dy) * S`` with size ``exp(dw, dh) * S``. Returns ``[N, 5]`` float32
    ``(x, y, width, height, score)`` for the cells scoring at least ``min_score``, stride by
    stride, cells in order (OpenCV's order, which breaks score ties in its NMS).
    """
    rows = []
    for s in STRIDES:
        cls = outputs[f"cls_{s}"].reshape(-1).clip(0, 1)
        obj = outputs[f"obj_{s}"].reshape(-1).clip(0, 1)
        score = np.sqrt(cls * obj, dtype=np.float32)
        cell = np.flatnonzero(score >= min_score)
        box = outputs[f"bbox_{s}"].reshape(-1, 4)[cell]
        col, row = (cell % (width // s)).astype(np.float32), (cell // (width // s)).astype(np.float32)
        stride = np.float32(s)
        cx, cy = (col + box[:, 0]) * stride, (row + box[:, 1]) * stride
        w, h = np.exp(box[:, 2]) * stride, np.exp(box[:, 3]) * stride
        rows.append(np.stack([cx - w / 2, cy - h / 2, w, h, score[cell]], axis=1))
    return np.concatenate(rows).astype(np.float32, copy=False)


def nms(faces: np.ndarray) -> np.ndarray:
    """``cv2.dnn.NMSBoxes`` over ``[N, 5]`` ``(x, y, width, height, score)`` rows as
    ``FaceDetectorYN`` calls it (boxes truncated to whole pixels, :data:`NMS_THRESHOLD`,
    :data:`NMS_TOP_K`): the kept rows, most confident first. A single row is kept as it is."""
    if len(faces) <= 1:
        return faces
    boxes = np.trunc(faces[:, :4]).astype(np.float64)  # OpenCV's Rect2i(int(x), ...)
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), faces[:, 4].tolist(), MIN_CONFIDENCE, NMS_THRESHOLD, top_k=NMS_TOP_K)
    return faces[np.asarray(keep, dtype=np.int64).reshape(-1)]


def detect_faces(rgb: np.ndarray, max_side: int = DETECT_SIDE, size: tuple[int, int] | None = None) -> np.ndarray:
    """Faces in an ``[h, w, 3]`` uint8 RGB image.

    Returns ``[F, 5]`` float64 rows ``(x1, y1, x2, y2, confidence)`` in the pixels of the
    image, or of a ``size = (W, H)`` image that ``rgb`` is a scaled copy of, clipped to it,
    most prominent (:func:`prominence`) first; ``[0, 5]`` when none.
    """
    ih, iw = rgb.shape[:2]
    W, H = size if size is not None else (iw, ih)
    small = detector_copy(rgb, max_side)
    h, w = small.shape[:2]
    rows = yunet(small[..., ::-1])  # YuNet wants BGR
    if len(rows) == 0:
        return np.zeros((0, 5))
    x, y, bw, bh, conf = (rows[:, i].astype(np.float64) for i in range(5))
    sx, sy = W / w, H / h
    faces = np.stack([x * sx, y * sy, (x + bw) * sx, (y + bh) * sy, conf], axis=1)
    faces[:, [0, 2]] = faces[:, [0, 2]].clip(0, W)
    faces[:, [1, 3]] = faces[:, [1, 3]].clip(0, H)
    faces = faces[(faces[:, 2] > faces[:, 0]) & (faces[:, 3] > faces[:, 1])]
    return faces[np.argsort(-prominence(faces), kind="stable")][:MAX_FACES]


def detector_copy(rgb: np.ndarray, max_side: int = DETECT_SIDE) -> np.ndarray:
    """The copy of an ``[h, w, 3]`` image the detector sees: its long side at most
    ``max_side`` (never enlarged, the image itself when it fits). Bilinear down to half the
    size, as OpenCV's YuNet sample resizes (area averaging costs 5x more at these scales),
    area-averaged below that."""
    ih, iw = rgb.shape[:2]
    scale = min(1.0, max_side / max(iw, ih))
    w, h = max(1, round(iw * scale)), max(1, round(ih * scale))
    if (w, h) == (iw, ih):
        return rgb
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA)


def prominence(faces: np.ndarray) -> np.ndarray:
    """How much each face matters: its area times its confidence, as a share of the most
    prominent face's (``[F, 5]`` -> ``[F]`` in ``(0, 1]``)."""
    if len(faces) == 0:
        return np.zeros(0)
    p = (faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1]) * faces[:, 4]
    return p / p.max()
