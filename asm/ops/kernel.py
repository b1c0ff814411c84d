"""The pooling op without torch: :func:`pool_numpy`, and the compiled C kernel behind it.

``pool_numpy(score_map, boxes, partition, circular)`` scores boxes exactly as
``torch.ops.asm.composition_pool`` / ``circular_pool`` do (same conventions, same errors;
see :mod:`asm.ops.pool`), on numpy arrays, without importing torch.

The work is done by ``asm/ops/pool.c``, compiled at install time into ``asm/ops/_kernel*.so``
(``pip install -e .`` with a C compiler) and loaded with ctypes: one pass that builds the
float64 summed-area table and evaluates every box's signed bilinear reads. The torch op
calls the same library on CPU tensors. Where the library is missing (no compiler at
install time) or ``ASM_NO_KERNEL=1`` is set, the same maths run as numpy code: the same
results, slower. :func:`describe` says which path runs.

When asm is imported from a zip (the TorchServe archive), ctypes cannot load the library
from inside it: it is copied once to ``<cache_dir>/kernels/<sha256>-<name>`` (atomically,
so processes starting together never load a half-written file) and loaded from there.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.machinery
import importlib.resources
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from asm.ops.reads import DISC_STRIPS, Reads, check_shapes, check_values, partition_key, terms

__all__ = ["pool_numpy", "library", "describe", "NO_KERNEL_ENV"]

#: Set to 1 to run the numpy / torch code instead of the compiled kernel (tests, comparisons).
NO_KERNEL_ENV = "ASM_NO_KERNEL"
#: asm_kernel_abi() of the pool.c this module calls; bump both when the signature changes.
KERNEL_ABI = 1
_STEM = "_kernel"
_LIBRARY_SUFFIXES = (".so", ".pyd", ".dylib")
#: Table reads per chunk of boxes in the numpy fallback (its work buffers stay in cache).
_CHUNK_READS = 1 << 16

_why_not = ""  # why library() returned None, for describe()
_where = ""  # where the loaded library lives


# --------------------------------------------------------------------------------------
# Loading the compiled kernel
# --------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def library() -> ctypes.CDLL | None:
    """The compiled kernel, or ``None`` where there is none (then the numpy / torch code runs).

    Loaded once per process; :func:`describe` says why it is ``None``.
    """
    global _why_not, _where
    if os.environ.get(NO_KERNEL_ENV, "") not in ("", "0"):
        _why_not = f"{NO_KERNEL_ENV}={os.environ[NO_KERNEL_ENV]}"
        return None
    package = importlib.resources.files(__package__)
    found = _find(package)
    if found is None:
        _why_not = "no compiled kernel in asm/ops (install asm with a C compiler present)"
        return None
    try:
        path = Path(os.fspath(found)) if isinstance(package, Path) else _unzipped(found.name, found.read_bytes())
        lib = ctypes.CDLL(str(path))
        lib.asm_kernel_abi.restype = ctypes.c_int
        if lib.asm_kernel_abi() != KERNEL_ABI:
            _why_not = f"{found.name} is a stale build (rebuild: pip install -e . or python setup.py build_ext --inplace)"
            return None
        lib.asm_pool.restype = ctypes.c_int
        lib.asm_pool.argtypes = [ctypes.c_void_p, ctypes.c_int, *[ctypes.c_int64] * 4,  # map, its dtype, B, L, H, W
                                 ctypes.c_void_p, ctypes.c_int64,  # boxes, K
                                 ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,  # us, nu, vs, nv
                                 *[ctypes.c_void_p] * 4, ctypes.c_int64,  # tu, tv, tp, coef, T
                                 ctypes.c_double, ctypes.c_void_p]  # area fraction, out
    except (OSError, AttributeError) as e:  # unreadable, built for another platform, or stale
        _why_not = f"cannot load {found.name}: {e}"[:200]
        return None
    _where = str(path)
    return lib


def describe() -> str:
    """Which path the pooling op runs on the CPU, in words (for logs)."""
    lib = library()
    return f"C kernel ({_where})" if lib is not None else f"numpy/torch code ({_why_not})"


def _find(package):
    """The kernel among the package's files: this interpreter's extension suffix first."""
    candidates = {f.name: f for f in package.iterdir() if f.name.startswith(_STEM + ".")}
    for suffix in (*importlib.machinery.EXTENSION_SUFFIXES, *_LIBRARY_SUFFIXES):
        if _STEM + suffix in candidates:
            return candidates[_STEM + suffix]
    return next((f for name, f in sorted(candidates.items()) if name.endswith(_LIBRARY_SUFFIXES)), None)


def _unzipped(name: str, data: bytes) -> Path:
    """A file holding ``data`` in the user's cache, named by its hash; written atomically once."""
    from asm.cache import cache_dir, write_atomic

    digest = hashlib.sha256(data).hexdigest()
    path = cache_dir() / "kernels" / f"{digest[:32]}-{name}"
    if not (path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest):
        write_atomic(path, data)
    return path


def _run_kernel(lib: ctypes.CDLL, map_ptr: int, map_f64: bool, map_shape: tuple[int, int, int, int],
               boxes_ptr: int, num_boxes: int, reads: Reads, out_ptr: int) -> None:
    """Call the C kernel on raw pointers.

    The caller guarantees: ``map_ptr`` a C-contiguous ``[B, L, H, W]`` map of float64
    (``map_f64``) or float32; ``boxes_ptr`` C-contiguous float64 ``[K, 5]`` that passed
    :func:`~asm.ops.reads.check_values`; ``out_ptr`` C-contiguous float64 ``[K]``. The kernel
    clamps every coordinate into the map and checks the reads' indices itself, so a wrong
    value can give a wrong score but never a read outside the buffers.
    """
    us, vs, tu, tv, tp, coef, area = reads
    B, L, H, W = (int(n) for n in map_shape)
    rc = lib.asm_pool(map_ptr, int(map_f64), B, L, H, W, boxes_ptr, num_boxes,
                      us.ctypes.data, len(us), vs.ctypes.data, len(vs),
                      tu.ctypes.data, tv.ctypes.data, tp.ctypes.data, coef.ctypes.data, len(coef), area, out_ptr)
    if rc == 1:
        raise MemoryError("asm pooling kernel: out of memory for the summed-area table")
    if rc != 0:
        raise RuntimeError(f"asm pooling kernel failed (code {rc})")


# --------------------------------------------------------------------------------------
# The numpy entry point
# --------------------------------------------------------------------------------------
def pool_numpy(score_map: np.ndarray, boxes: np.ndarray, partition: np.ndarray, circular: bool = False) -> np.ndarray:
    """Composition-aware scores of boxes: ``[B, L, H, W], [K, 5], [gh, gw] -> [K]`` float64.

    ``score_map`` float32 or float64; ``boxes`` rows ``(batch_index, x1, y1, x2, y2)`` in map
    pixels (float); ``partition`` the int64 table of a pattern; ``circular`` scores the discs
    inscribed in the boxes. Same conventions, results (to ~1e-12 relative) and errors
    (``ValueError`` / ``IndexError``) as ``torch.ops.asm.composition_pool`` / ``circular_pool``.
    """
    score_map, boxes, partition = np.asarray(score_map), np.asarray(boxes), np.asarray(partition)
    check_shapes(score_map.shape, str(score_map.dtype), boxes.shape, str(boxes.dtype),
                 np.issubdtype(boxes.dtype, np.floating), partition.shape, str(partition.dtype))
    check_values(boxes, partition, score_map.shape)
    num_boxes = boxes.shape[0]
    if num_boxes == 0:
        return np.empty(0, dtype=np.float64)
    reads = terms(partition_key(partition), bool(circular), DISC_STRIPS)
    boxes = np.ascontiguousarray(boxes, dtype=np.float64)
    lib = library()
    if lib is None:
        return _numpy_forward(score_map, boxes, reads)
    score_map = np.ascontiguousarray(score_map)
    out = np.empty(num_boxes, dtype=np.float64)
    _run_kernel(lib, score_map.ctypes.data, score_map.dtype == np.float64, score_map.shape,
               boxes.ctypes.data, num_boxes, reads, out.ctypes.data)
    return out


def _numpy_forward(score_map: np.ndarray, boxes: np.ndarray, reads: Reads) -> np.ndarray:
    """The kernel's maths as numpy code (the fallback): checked ``[B, L, H, W]`` map and
    float64 ``[K, 5]`` boxes -> ``[K]`` float64."""
    B, L, H, W = score_map.shape
    us, vs, tu, tv, tp, coef, area = reads
    sat = np.zeros((B, L, H + 1, W + 1), dtype=np.float64)
    sat[..., 1:, 1:] = score_map
    flat = sat.cumsum(-2).cumsum(-1).ravel()  # S[r, c] = sum M[:r, :c]
    sy, sp = W + 1, (H + 1) * (W + 1)
    b, x1, y1, x2, y2 = boxes.T
    x1, y1 = x1.clip(0, W), y1.clip(0, H)
    bw, bh = x2.clip(0, W) - x1, y2.clip(0, H) - y1
    base = b.round().astype(np.int64) * (L * sp)
    scale = 1.0 / (bw * bh * area)
    channel = (tp * sp)[:, None]
    out = np.empty(len(boxes), dtype=np.float64)
    step = max(1, _CHUNK_READS // len(coef))
    for k0 in range(0, len(boxes), step):
        k = slice(k0, k0 + step)
        # every distinct edge of the template in map coordinates: its pixel and the fraction
        x = x1[k] + us[:, None] * bw[k]  # [nu, k]
        y = y1[k] + vs[:, None] * bh[k]  # [nv, k]
        c = np.floor(x).clip(0, W - 1)
        r = np.floor(y).clip(0, H - 1)
        fx, fy = (x - c)[tu], (y - r)[tv]  # [T, k]
        idx = (r.astype(np.int64) * sy + base[k])[tv] + c.astype(np.int64)[tu] + channel
        # the integral from the origin to a point is the bilinear interpolation of S there
        top_left, top_right = flat[idx], flat[idx + 1]
        bottom_left, bottom_right = flat[idx + sy], flat[idx + sy + 1]
        top = top_left + fx * (top_right - top_left)
        bottom = bottom_left + fx * (bottom_right - bottom_left)
        out[k] = (coef @ (top + fy * (bottom - top))) * scale[k]
    return out
