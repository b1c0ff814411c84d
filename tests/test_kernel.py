"""The torch-free entry point ``asm.ops.kernel.pool_numpy`` and the compiled C kernel behind it
(and behind the torch op on the CPU), against the references of test_ops.py and the torch code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

import asm.ops.pool  # noqa: F401  (registers torch.ops.asm)
from asm.ops import kernel, pool_numpy
from asm.ops.reads import partition_key, terms
from asm.patterns import PATTERN_NAMES, get_pattern
from test_ops import BAD_ARGUMENTS, _args, exact_circular, naive_pool, random_boxes, score_map_for

ROOT = Path(__file__).resolve().parents[1]
CROSS = get_pattern("cross_rectangle").partition
OPS = {False: torch.ops.asm.composition_pool, True: torch.ops.asm.circular_pool}


@contextmanager
def tensor_code():
    """Run the pre-kernel code paths: the torch op's tensor code, pool_numpy's numpy code."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernel, "library", lambda: None)
        yield


@pytest.fixture
def built_kernel():
    """The C kernel; the test is skipped where it is not built (see test_kernel_is_built_where_a_compiler_is)."""
    if kernel.library() is None:
        pytest.skip(f"no C kernel here: {kernel.describe()}")
    return kernel.library()


@pytest.fixture(params=["kernel", "numpy"])
def backend(request):
    """Both paths of pool_numpy (and of the torch op on the CPU): the C kernel, the fallback."""
    if request.param == "kernel":
        request.getfixturevalue("built_kernel")
        yield request.param
    else:
        with tensor_code():
            yield request.param


def _np(*tensors):
    return tuple(t.numpy() for t in tensors)


def _edge_boxes(B: int, H: int, W: int) -> torch.Tensor:
    """Boxes on the map's edges: the whole map, the last pixel, thin slivers at each border."""
    return torch.tensor([[B - 1, 0, 0, W, H], [0, W - 1, H - 1, W, H], [0, W - 0.25, 0, W, H], [0, 0, H - 0.1, W, H],
                         [B - 1, 0, 0, 0.3, 0.7], [0, 2.5, 0, 3.5, H]], dtype=torch.float64)


# --------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PATTERN_NAMES)
def test_matches_naive_reference_every_pattern(backend, name):
    gen = torch.Generator().manual_seed(100 + PATTERN_NAMES.index(name))
    part = get_pattern(name).partition
    B, H, W = 3, 9, 13
    m = score_map_for(part, B, H, W, gen) * 4 - 1
    boxes = torch.cat([_edge_boxes(B, H, W), random_boxes(10, B, H, W, gen)])
    want = naive_pool(m, boxes, part).numpy()
    for dtype in (np.float64, np.float32):
        got = pool_numpy(m.numpy().astype(dtype), boxes.numpy(), part.numpy())
        assert got.dtype == np.float64 and got.shape == (len(boxes),)
        ref = want if dtype == np.float64 else naive_pool(m.float(), boxes, part).numpy()
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["grid1x1", "grid3x3", "cross_rectangle", "multi_direction"])
def test_circular_matches_exact_disc_areas(backend, name):
    gen = torch.Generator().manual_seed(200 + PATTERN_NAMES.index(name))
    part = get_pattern(name).partition
    H, W = 12, 16
    m = score_map_for(part, 2, H, W, gen)
    boxes = torch.cat([_edge_boxes(2, H, W)[:3], random_boxes(5, 2, H, W, gen, min_size=0.3)])
    got = pool_numpy(m.numpy(), boxes.numpy(), part.numpy(), circular=True)
    want = [exact_circular(m, b, part) for b in boxes]
    np.testing.assert_allclose(got, want, rtol=6e-4, atol=0)


@pytest.mark.parametrize("circular", [False, True], ids=["rect", "circular"])
@pytest.mark.parametrize("name", PATTERN_NAMES)
def test_same_scores_as_the_torch_code(backend, name, circular):
    """pool_numpy (either path) == the torch op's tensor code, to ~1e-12, float32 and float64
    maps, several batch items, boxes of every size and on the edges."""
    gen = torch.Generator().manual_seed(300 + PATTERN_NAMES.index(name))
    part = get_pattern(name).partition
    B, H, W = 2, 21, 34
    m = score_map_for(part, B, H, W, gen) * 4 - 1
    boxes = torch.cat([_edge_boxes(B, H, W), random_boxes(200, B, H, W, gen)])
    with tensor_code():
        want = OPS[circular](m, boxes, part).numpy()
    got = pool_numpy(m.numpy(), boxes.numpy(), part.numpy(), circular)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # a float32 map is read as float64: the same as its float64 copy
    got32 = pool_numpy(m.float().numpy(), boxes.float().numpy(), part.numpy(), circular)
    with tensor_code():
        want32 = OPS[circular](m.float().double(), boxes.float().double(), part).numpy()
    np.testing.assert_allclose(got32, want32, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("circular", [False, True], ids=["rect", "circular"])
def test_torch_op_through_the_kernel_equals_the_tensor_code(built_kernel, circular, dtype):
    """The torch op on CPU tensors takes the kernel when it is built: same scores, same dtype,
    on non-contiguous inputs too."""
    gen = torch.Generator().manual_seed(7)
    m = score_map_for(CROSS, 3, 40, 30, gen, dtype).transpose(-1, -2)  # [3, 12, 30, 40], not contiguous
    boxes = torch.cat([_edge_boxes(3, 30, 40), random_boxes(300, 3, 30, 40, gen)]).to(dtype)
    boxes = torch.stack([boxes, boxes], 1)[:, 0]  # every other row of a buffer: not contiguous
    assert not m.is_contiguous() and not boxes.is_contiguous()
    got = OPS[circular](m, boxes, CROSS)
    with tensor_code():
        want = OPS[circular](m, boxes, CROSS)
    assert got.dtype == dtype
    tol = 1e-12 if dtype == torch.float64 else 1.2e-7  # float32: at most the last bit of the cast
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)


def test_empty_boxes(backend):
    m = np.random.default_rng(0).random((2, 12, 5, 5), dtype=np.float32)
    for circular in (False, True):
        out = pool_numpy(m, np.empty((0, 5)), CROSS.numpy(), circular)
        assert out.shape == (0,) and out.dtype == np.float64


def test_boxes_slightly_outside_are_clamped(backend):
    m = np.random.default_rng(1).random((1, 12, 6, 8))
    eps = asm.ops.BOX_TOLERANCE / 2
    inside = pool_numpy(m, np.array([[0, 0, 0, 8, 6.0]]), CROSS.numpy())
    outside = pool_numpy(m, np.array([[0, -eps, -eps, 8 + eps, 6 + eps]]), CROSS.numpy())
    np.testing.assert_array_equal(outside, inside)


# --------------------------------------------------------------------------------------
# errors: the same from both entries, on both paths
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, error, match", BAD_ARGUMENTS)
def test_same_errors_as_the_torch_op(backend, change, error, match):
    args = change(*_args())
    with pytest.raises(error, match=match) as from_torch:
        OPS[False](*args)
    with pytest.raises(error, match=match) as from_numpy:
        pool_numpy(*_np(*args))
    assert str(from_numpy.value) == str(from_torch.value)


def test_error_names_the_offending_box(backend):
    m, _, p = _np(*_args())
    boxes = np.array([[0, 1, 1, 5, 4], [0, 1, 1, 5, 4], [0, 3, 1, 2, 4]], dtype=np.float32)
    with pytest.raises(ValueError, match=r"box 2 is \[3\.0, 1\.0, 2\.0, 4\.0\]"):
        pool_numpy(m, boxes, p)


def test_hostile_values_are_refused_before_the_kernel(backend):
    """Huge, NaN and negative coordinates, batch indices far outside: clear errors, no crash."""
    m, b, p = _np(*_args())
    for row in ([0, 1, 1, 1e300, 4], [0, -1e300, 1, 5, 4], [float("nan")] * 5, [2**62, 1, 1, 5, 4],
                [0, 1, 1, 5, float("-inf")]):
        with pytest.raises((ValueError, IndexError), match="boxes"):
            pool_numpy(m, np.array([row], dtype=np.float64), p)
    with pytest.raises(IndexError, match="partition values"):
        pool_numpy(m, b, np.full((6, 6), 2**40, dtype=np.int64))


def test_the_kernel_itself_stays_inside_its_buffers(built_kernel):
    """Past the checks, the C code still clamps: hostile boxes give some numbers, bad reads an
    error code, and neither reads outside the buffers (a crash would end this test run)."""
    m = np.random.default_rng(2).random((2, 12, 6, 8))
    boxes = np.array([[np.nan] * 5, [99, -1e300, 1e300, 1e300, -1e300], [-5, 7.9, 5.9, 1e-300, np.inf],
                      [1, 0, 0, 8, 6]], dtype=np.float64)
    reads = terms(partition_key(CROSS), False)
    out = np.empty(len(boxes))
    kernel._run_kernel(built_kernel, m.ctypes.data, True, m.shape, boxes.ctypes.data, len(boxes), reads, out.ctypes.data)
    assert out[-1] == pytest.approx(pool_numpy(m, boxes[-1:], CROSS.numpy())[0], rel=1e-12)
    us, vs, tu, tv, tp, coef, area = reads
    for bad in ((us, vs, tu, tv, tp + 12, coef, area), (us, vs, tu + len(us), tv, tp, coef, area),
                (us, vs, tu, tv - len(vs), tp, coef, area)):
        with pytest.raises(RuntimeError, match="code 2"):
            kernel._run_kernel(built_kernel, m.ctypes.data, True, m.shape, boxes.ctypes.data, len(boxes), bad,
                               out.ctypes.data)


# --------------------------------------------------------------------------------------
# imports and loading
# --------------------------------------------------------------------------------------
def _run(code: str, env: dict | None = None, cwd: Path = ROOT) -> str:
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300,
                         env={**os.environ, **(env or {})})
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_pool_numpy_needs_no_torch():
    out = _run("import sys, numpy as np, asm.ops.kernel as k\n"
               "from asm.ops import pool_numpy\n"
               "s = pool_numpy(np.ones((1, 12, 4, 6)), np.array([[0, 0.5, 0.5, 5, 3.5]]), np.arange(36).reshape(6, 6) % 12)\n"
               "print(float(s[0]), 'torch' in sys.modules, k.describe())")
    score, torch_loaded, _ = out.split(" ", 2)
    assert float(score) == pytest.approx(1.0) and torch_loaded == "False"


def test_no_kernel_environment_variable_forces_the_fallback():
    out = _run("import asm.ops.kernel as k; print(k.library() is None, k.describe())", env={kernel.NO_KERNEL_ENV: "1"})
    assert out.startswith("True ") and f"{kernel.NO_KERNEL_ENV}=1" in out


def test_kernel_is_built_where_a_compiler_is():
    """`make install` builds the kernel wherever there is a C compiler: CI never runs the
    fallback without saying so."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}): asm runs the numpy / torch code")
    if os.environ.get(kernel.NO_KERNEL_ENV, "") not in ("", "0"):
        pytest.skip(f"{kernel.NO_KERNEL_ENV} is set")
    assert kernel.library() is not None, f"{kernel.describe()}; run `make install` or `python setup.py build_ext --inplace`"


def test_a_stale_build_is_refused(built_kernel, monkeypatch):
    """A library built from another version of pool.c is never called with the wrong arguments."""
    monkeypatch.setattr(kernel, "KERNEL_ABI", kernel.KERNEL_ABI + 1)
    kernel.library.cache_clear()
    try:
        assert kernel.library() is None and "stale build" in kernel.describe()
        args = _args()
        np.testing.assert_allclose(pool_numpy(*_np(*args)), OPS[False](*args).numpy(), rtol=1e-6)  # the fallback
    finally:
        monkeypatch.undo()
        kernel.library.cache_clear()
    assert kernel.library() is not None


def _archive_zip(tmp_path: Path) -> Path:
    """asm.zip as `make archive` builds it (the recipe of handler/serve.mk)."""
    recipe = (ROOT / "handler" / "serve.mk").read_text().split("define ASM_ZIP_PY\n", 1)[1].split("endef", 1)[0]
    z = tmp_path / "asm.zip"
    subprocess.run([sys.executable, "-c", recipe, str(z)], cwd=ROOT, check=True, timeout=120)
    return z


def test_kernel_loads_from_the_torchserve_zip_into_the_home_cache(built_kernel, tmp_path):
    """TorchServe imports asm from asm.zip: the kernel travels in it and is copied out once to
    ~/.cache/asm/kernels, also when two workers start at once and when a damaged file of the
    same name is in the way."""
    z = _archive_zip(tmp_path)
    with zipfile.ZipFile(z) as f:
        (member,) = [n for n in f.namelist() if n.startswith("asm/ops/_kernel.")]
        library = f.read(member)
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "ASM_CACHE_DIR", kernel.NO_KERNEL_ENV)}
    env.update(HOME=str(home), PYTHONPATH=str(z))
    code = ("import json, numpy as np, asm.ops.kernel as k\n"
            f"assert k.__file__.startswith({str(z)!r}), k.__file__\n"
            "s = k.pool_numpy(np.arange(2 * 12 * 8 * 10, dtype=np.float32).reshape(2, 12, 8, 10),"
            " np.array([[1, 0.5, 1.25, 9.5, 7.0], [0, 0, 0, 10, 8]]), np.arange(36).reshape(6, 6) % 12)\n"
            "print(json.dumps([k.describe(), s.tolist()]))")

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def answer(proc: subprocess.Popen) -> tuple[str, list[float]]:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        return tuple(json.loads(out))

    want = pool_numpy(np.arange(2 * 12 * 8 * 10, dtype=np.float32).reshape(2, 12, 8, 10),
                      np.array([[1, 0.5, 1.25, 9.5, 7.0], [0, 0, 0, 10, 8]]), np.arange(36).reshape(6, 6) % 12)
    kernels = home / ".cache" / "asm" / "kernels"
    for (where, scores) in [answer(p) for p in [start(), start()]]:
        assert re.fullmatch(rf"C kernel \({re.escape(str(kernels))}/[0-9a-f]{{32}}-_kernel\..+\)", where), where
        np.testing.assert_allclose(scores, want, rtol=1e-12)
    (cached,) = kernels.iterdir()  # one file, no temporary left behind
    cached.write_bytes(b"not a library")  # damaged (or another file of that name)
    where, scores = answer(start())
    assert where.startswith("C kernel") and cached.read_bytes() == library
    np.testing.assert_allclose(scores, want, rtol=1e-12)
    assert [p.name for p in kernels.iterdir()] == [cached.name]
