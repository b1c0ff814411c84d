"""The TorchServe handler, for real: archive built here, TorchServe on loopback, real HTTP.

One server for the module, started and stopped by handler/launcher.py (five free ports,
never TorchServe's defaults; its own temp dir and process group, so it cannot touch
another TorchServe on the machine), stopped in the fixture's teardown whatever happens. A few in-process tests drive the handler with a fake context to pin down
batch isolation exactly (which requests share a batch over HTTP is up to TorchServe).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import TEST_PRESET
from PIL import Image

from handler.launcher import Ports, ServeError, TorchServe, busy_ports

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TORCHSERVE = shutil.which("torchserve", path=str(BIN)) or shutil.which("torchserve")
ARCHIVER = shutil.which("torch-model-archiver", path=str(BIN)) or shutil.which("torch-model-archiver")
JAVA = (Path(os.environ["JAVA_HOME"]) / "bin" / "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
START_TIMEOUT = 150  # s; model load + warm-up on 2 busy cores


# --------------------------------------------------------------------------- images


def _photo(w: int = 320, h: int = 240, seed: int = 0, fmt: str = "JPEG") -> bytes:
    """A synthetic 'photo': smooth gradients, a bright disc off-centre, some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w * (0.3 + 0.4 * rng.random()), h * (0.3 + 0.4 * rng.random())
    disc = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * (0.12 * min(w, h)) ** 2))
    img = np.stack([x / w, y / h, disc], axis=2) * 200 + rng.normal(0, 8, (h, w, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, fmt)
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG that claims to be ``width x height`` (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


GOOD = _photo()
GOOD2 = _photo(400, 300, seed=1, fmt="PNG")
CORRUPT = GOOD2[:200] + bytes(b ^ 0x5A for b in GOOD2[200:600]) + GOOD2[600:]  # damaged PNG data


def _multipart(fields: list[tuple[str, object]]) -> tuple[bytes, str]:
    """``(body, content type)`` for fields ``(name, str)`` or ``(name, (filename, bytes, type))``."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields:
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, tuple):
            filename, data, ctype = value
            out.write(f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode())
            out.write(f"Content-Type: {ctype}\r\n\r\n".encode())
            out.write(data)
        else:
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
            out.write(str(value).encode("utf-8"))
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


# --------------------------------------------------------------------------- server


class Server(TorchServe):
    """The launcher's TorchServe plus the shortcuts these tests use."""

    def predict(self, body: bytes, content_type: str | None = "image/jpeg", **kw) -> tuple[int, dict, bytes]:
        headers = {"Content-Type": content_type} if content_type else {}
        return self.request("POST", "/predictions/asm", body, headers, **kw)

    def model_status(self) -> dict:
        status, _, body = self.request("GET", "/models/asm", port=self.ports.management, auth="management", timeout=10)
        assert status == 200, body
        return json.loads(body)[0]


def _build_archive(root: Path, workers: int = 1, batch_size: int = 4) -> Path:
    """``make archive`` into ``root/store`` with the shipped config, ``workers`` workers and
    batches of up to ``batch_size``."""
    store, build = root / "store", root / "build"
    model_file = REPO / "asm" / "weights" / "asm_default.pt"
    if not model_file.is_file():  # the default model is not there: archive a small random one
        import torch

        from asm.models import ASMNet, save_model

        torch.manual_seed(0)
        model_file = root / "model.pt"
        save_model(ASMNet("mobilenet_v3_small"), model_file, TEST_PRESET)
    # the shipped config with batching on (one worker, batches of up to 4), so the burst below
    # really mixes good and bad requests in one batch
    import yaml

    config = yaml.safe_load((REPO / "handler" / "model-config.yaml").read_text())
    config.update(minWorkers=workers, maxWorkers=workers, batchSize=batch_size, maxBatchDelay=50)
    (root / "model-config.yaml").write_text(yaml.safe_dump(config))
    cmd = ["make", "--no-print-directory", "-f", "handler/serve.mk", "archive", f"MODEL_STORE={store}",
           f"SERVE_BUILD={build}", f"MODEL_FILE={model_file}", f"MODEL_CONFIG={root / 'model-config.yaml'}",
           f"PY={sys.executable}", f"ARCHIVER={ARCHIVER}"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (store / "asm.mar").is_file()
    return store


def skip_without_torchserve() -> None:
    """Skip the calling test (or fixture) where TorchServe cannot run here."""
    if JAVA is None or not Path(JAVA).exists():
        pytest.skip("java not found: TorchServe needs a Java runtime (install a JDK 17 or set JAVA_HOME)")
    if TORCHSERVE is None or ARCHIVER is None:
        pytest.skip("torchserve / torch-model-archiver not installed (pip install -e '.[serve]')")
    if shutil.which("make") is None:
        pytest.skip("make not found (the archive is built with `make archive`)")


def running_server(tmp_path_factory, name: str = "serve", **archive):
    """A started :class:`Server` on free ports from a fresh archive (``archive``: see
    :func:`_build_archive`), for a module fixture to ``yield from``; stopped whatever happens."""
    skip_without_torchserve()
    root = tmp_path_factory.mktemp(name)
    store = _build_archive(root, **archive)
    srv = Server(root, root / "build", store, root / "logs", Ports.free())
    try:
        srv.start(START_TIMEOUT)
    except ServeError as e:
        pytest.fail(str(e))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from running_server(tmp_path_factory)


def _json(body: bytes) -> dict:
    return json.loads(body.decode("utf-8"))


def _check_answer(answer: dict, width: int, height: int) -> None:
    assert answer["width"] == width and answer["height"] == height
    assert answer["crops"]
    for crop in answer["crops"]:
        x1, y1, x2, y2 = crop["box"]
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert isinstance(crop["score"], float)
        assert crop["shape"] in ("rect", "circle")
    fp = answer["focal_point"]
    assert 0 <= fp["x"] <= width and 0 <= fp["y"] <= height and (fp["x_norm"], fp["y_norm"]) == (
        round(fp["x_norm"], 4), round(fp["y_norm"], 4)) and 0 <= fp["x_norm"] <= 1 and 0 <= fp["y_norm"] <= 1


# --------------------------------------------------------------------------- good requests


def test_raw_body_jpeg(server):
    status, headers, body = server.predict(GOOD, "image/jpeg")
    assert status == 200, body
    assert headers["content-type"].startswith("application/json")
    answer = _json(body)
    _check_answer(answer, 320, 240)
    assert [c["aspect"] for c in answer["crops"]] == ["free"]
    assert "heatmaps" not in answer


def test_raw_body_octet_stream_and_no_content_type(server):
    status, _, body = server.predict(GOOD2, "application/octet-stream")
    assert status == 200, body
    _check_answer(_json(body), 400, 300)
    # no Content-Type header at all (curl -T): TorchServe hands over the bytes unchanged
    status, _, body = server.predict(GOOD2, None)
    assert status == 200, body


def test_multipart_with_options(server):
    body, ctype = _multipart([("data", ("p.jpg", GOOD, "image/jpeg")), ("aspect", "16:9"),
                              ("aspect", "1:1,4:5"), ("top_k", "2"), ("nms_iou", "0.3")])
    status, _, answer = server.predict(body, ctype)
    assert status == 200, answer
    answer = _json(answer)
    _check_answer(answer, 320, 240)
    aspects = [c["aspect"] for c in answer["crops"]]
    assert sorted(set(aspects), key=aspects.index) == ["16:9", "1:1", "4:5"]  # repeated field kept
    assert all(aspects.count(a) <= 2 for a in set(aspects))


def test_faces_keep_focus_min_scale(server):
    """Multipart (keep repeated) and JSON keys give the same answer; kept regions are reported."""
    body, ctype = _multipart([("data", ("p.jpg", GOOD, "image/jpeg")), ("aspect", "1:1"), ("keep", "10,20,60,70"),
                              ("keep", "200,150,250,200"), ("focus", "150,100"), ("min_scale", "0.7"), ("faces", "on")])
    status, _, answer = server.predict(body, ctype)
    assert status == 200, answer
    answer = _json(answer)
    _check_answer(answer, 320, 240)
    assert answer["faces"] == [] and answer["crops"][0]["keep_kept"] == [0, 1] and answer["crops"][0]["faces_kept"] == []
    x1, y1, x2, y2 = answer["crops"][0]["box"]
    assert x1 <= 10 and y1 <= 20 and x2 >= 250 and y2 >= 200
    payload = {"image": base64.b64encode(GOOD).decode(), "aspect": "1:1", "keep": [[10, 20, 60, 70], [200, 150, 250, 200]],
               "focus": [150, 100], "min_scale": 0.7, "faces": True}
    status, _, same = server.predict(json.dumps(payload).encode(), "application/json")
    assert status == 200 and _json(same) == answer
    payload.update(keep=[[0, 0, 20, 20], [300, 220, 320, 240]], aspect="9:16", faces=False)  # corners: no 9:16 holds both
    status, _, warned = server.predict(json.dumps(payload).encode(), "application/json")
    warned = _json(warned)
    assert status == 200 and "faces" not in warned and "9:16" in warned["warnings"][0]


def test_json_base64(server):
    payload = {"image": base64.b64encode(GOOD).decode(), "aspect": ["3:2", "1:1"], "top_k": 1}
    status, _, body = server.predict(json.dumps(payload).encode(), "application/json")
    assert status == 200, body
    answer = _json(body)
    _check_answer(answer, 320, 240)
    assert [c["aspect"] for c in answer["crops"]] == ["3:2", "1:1"]


def test_circular(server):
    body, ctype = _multipart([("data", ("p.png", GOOD2, "image/png")), ("circular", "true"), ("top_k", "2")])
    status, _, answer = server.predict(body, ctype)
    assert status == 200, answer
    crops = _json(answer)["crops"]
    assert crops and all(c["shape"] == "circle" and c["aspect"] == "1:1" for c in crops)
    for c in crops:
        x1, y1, x2, y2 = c["box"]
        assert abs((x2 - x1) - (y2 - y1)) <= 1


def test_heatmap(server):
    payload = {"image": "data:image/jpeg;base64," + base64.b64encode(GOOD).decode(), "heatmap": True}
    status, _, body = server.predict(json.dumps(payload).encode(), "application/json")
    assert status == 200, body
    answer = _json(body)
    assert set(answer["heatmaps"]) == {"theta_avg", "theta_std"}
    for b64 in answer["heatmaps"].values():
        with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
            assert im.format == "PNG" and im.size == (320, 240)


# --------------------------------------------------------------------------- bad requests

BAD = {
    # name: (body, content type, status, error code, words in the message)
    "corrupt": (CORRUPT, "image/png", 400, "invalid_image", "image"),
    "truncated_jpeg": (GOOD[: len(GOOD) // 2], "image/jpeg", 400, "invalid_image", "truncated"),
    "zero_bytes": (b"", "image/jpeg", 400, "bad_request", "empty"),
    "text_as_image": (b"hello, I am not a picture", "image/png", 400, "invalid_image", "not an image"),
    "text_plain": (b"hello", "text/plain", 400, "bad_request", "Content-Type: image/jpeg"),
    "bomb_png_header": (_png_header(30000, 30000), "image/png", 413, "image_too_large", "too large"),
    "bomb_png_header_81mp": (_png_header(9000, 9000), "image/png", 413, "image_too_large", "limit"),
    "one_by_one": (_tiny_png(), "image/png", 422, "image_too_small", "too small"),
    # curl --data-binary without -H: url-encoded form; a text-like body reaches the handler as fields
    "missing_content_type": (b"aspect=16:9&top_k=2", "application/x-www-form-urlencoded", 400, "bad_request",
                             "Content-Type"),
    "bad_json": (b'{"image": ', "application/json", 400, "bad_request", "JSON"),
    "json_without_image": (b'{"aspect": "16:9"}', "application/json", 400, "bad_request", '"image"'),
    "bad_base64": (b'{"image": "@@@not base64@@@"}', "application/json", 400, "bad_request", "base64"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_request(server, name):
    body, ctype, want_status, want_code, words = BAD[name]
    status, headers, answer = server.predict(body, ctype)
    assert status == want_status, answer
    assert headers["content-type"].startswith("application/json")
    err = _json(answer)
    assert err["error"] == want_code
    assert words.lower() in err["message"].lower(), err["message"]


@pytest.mark.parametrize(
    "fields, words",
    [
        ([("aspect", "16:0")], "aspect"),
        ([("aspect", "wide")], "aspect"),
        ([("top_k", "0")], "top_k"),
        ([("circular", "maybe")], "circular"),
        ([("colour", "red")], "unknown option"),
        ([("top_k", "2"), ("top_k", "3")], "once"),
        ([("aspect", "16:9\u00e9\r\nX-Injected: 1")], "aspect"),  # non-ASCII + CRLF echoed in the message
        ([("keep", "1,2,3")], "keep box 0 must be 4 numbers"),
        ([("keep", "0,0,400,10")], "outside the 320x240 image"),
        ([("focus", "10,999")], "outside the 320x240 image"),
        ([("faces", "maybe")], "faces"),
        ([("min_scale", "5")], "min_scale"),
        ([("focus", "1,2"), ("focus", "3,4")], "once"),
    ],
)
def test_bad_options(server, fields, words):
    body, ctype = _multipart([("data", ("p.jpg", GOOD, "image/jpeg"))] + fields)
    status, headers, answer = server.predict(body, ctype)
    assert status == 400, answer
    assert "x-injected" not in headers
    err = _json(answer)
    assert err["error"] in ("invalid_option", "bad_request")
    assert words.lower() in err["message"].lower(), err["message"]


def test_binary_body_without_content_type_is_refused(server):
    """curl --data-binary @photo.jpg without -H: TorchServe's frontend cannot url-decode the
    bytes (or hands over garbage fields): never a 200, and the worker does not notice."""
    status, _, body = server.predict(GOOD, "application/x-www-form-urlencoded")
    assert status in (400, 500), body
    if status == 400:
        assert "Content-Type" in _json(body)["message"]


def test_token_is_required(server):
    status, _, _ = server.predict(GOOD, "image/jpeg", auth=None)
    assert status in (400, 401, 403)


# --------------------------------------------------------------------------- load


def test_mixed_burst_loses_nothing(server):
    """40 requests, 4 at a time, good and bad mixed: every good one answered, worker unharmed."""
    pid_before = [w["pid"] for w in server.model_status()["workers"]]
    mp_body, mp_type = _multipart([("data", ("p.png", GOOD2, "image/png")), ("aspect", "1:1"), ("top_k", "2")])
    bo_body, bo_type = _multipart([("data", ("p.jpg", GOOD, "image/jpeg")), ("top_k", "99")])
    kinds = [
        ("raw", GOOD, "image/jpeg", 200),
        ("multipart", mp_body, mp_type, 200),
        ("truncated", GOOD[: len(GOOD) // 3], "image/jpeg", 400),
        ("bomb", _png_header(30000, 30000), "image/png", 413),
        ("raw2", GOOD2, "image/png", 200),
        ("tiny", _tiny_png(), "image/png", 422),
        ("text", b"nope", "text/plain", 400),
        ("bad_option", bo_body, bo_type, 400),
    ]
    jobs = [kinds[i % len(kinds)] for i in range(40)]

    def send(job):
        name, body, ctype, want = job
        try:
            status, _, answer = server.predict(body, ctype, timeout=120)
        except Exception as e:  # a lost request
            return name, want, None, repr(e)
        return name, want, status, answer

    with ThreadPoolExecutor(4) as pool:  # each request has its own timeout; no wall-clock limit on the burst
        results = list(pool.map(send, jobs))
    wrong = [(n, w, s, a[:200] if isinstance(a, bytes) else a) for n, w, s, a in results if s != w]
    assert not wrong, wrong
    for name, _, _, answer in results:
        if name in ("raw", "multipart", "raw2"):
            assert _json(answer)["crops"]
    # the same image gets the same answer, whatever else was in its batch
    for name in ("raw", "multipart", "raw2"):
        answers = {json.dumps(_json(a), sort_keys=True) for n, _, _, a in results if n == name}
        assert len(answers) == 1, name
    # the worker is healthy and was never restarted
    status, _, body = server.request("GET", "/ping")
    assert status == 200 and b"Healthy" in body
    assert [w["pid"] for w in server.model_status()["workers"]] == pid_before
    status, _, body = server.predict(GOOD, "image/jpeg")
    assert status == 200 and _json(body)["crops"]


def test_metrics(server):
    server.predict(_tiny_png(), "image/png")
    server.predict(GOOD, "image/jpeg")
    deadline = time.monotonic() + 20
    text = ""
    while time.monotonic() < deadline:
        status, _, body = server.request("GET", "/metrics", port=server.ports.metrics, auth=None)
        text = body.decode()
        if status == 200 and 'Reason="image_too_small"' in text and "CropLatency_count" in text:
            break
        time.sleep(1)
    assert 'RequestsRefused{Reason="image_too_small"' in text, text[-2000:]
    assert "CropLatency_count" in text


# --------------------------------------------------------------------------- in-process


class _FakeContext:
    """What the handler uses of ts.context.Context, recorded for assertions."""

    def __init__(self, manifest: dict, model_dir: str, headers: list[dict]) -> None:
        from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl

        self.manifest = manifest
        self.system_properties = {"model_dir": model_dir, "gpu_id": None, "batch_size": 4}
        self.model_yaml_config = {"handler": {"warmup": False}}
        self.headers = headers
        self.status: dict[int, tuple[int, str]] = {}
        self.types: dict[int, str] = {}
        import ts

        self.metrics = MetricsCacheYamlImpl(str(Path(ts.__file__).parent / "configs" / "metrics.yaml"))
        self.metrics.initialize_cache()
        self.metrics.set_request_ids({i: f"req-{i}" for i in range(len(headers))})

    def get_all_request_header(self, idx):
        return self.headers[idx]

    def get_request_id(self, idx):
        return f"req-{idx}"

    def set_response_status(self, code=200, phrase="", idx=0):
        self.status[idx] = (code, phrase)

    def set_response_content_type(self, idx, value):
        self.types[idx] = value


@pytest.fixture(scope="module")
def handler_module():
    pytest.importorskip("ts")
    sys.path.insert(0, str(REPO / "handler"))
    try:
        import asm_handler
    finally:
        sys.path.remove(str(REPO / "handler"))
    return asm_handler


def test_batch_isolation_in_process(handler_module, tmp_path, monkeypatch):
    """One batch: good, corrupt, bad option, good with heatmap, text -> each its own answer."""
    import torch

    from asm.models import ASMNet, save_model

    torch.manual_seed(0)
    save_model(ASMNet("mobilenet_v3_small"), tmp_path / "m.pt", TEST_PRESET)
    rows = [
        {"body": bytearray(GOOD)},
        {"body": bytearray(GOOD[:100])},
        {"data": bytearray(GOOD), "top_k": bytearray(b"many")},
        {"body": {"image": base64.b64encode(GOOD2).decode(), "heatmap": True, "aspect": "1:1"}},
        {"body": "plain text"},
    ]
    headers = [{"Content-Type": t} for t in ("image/jpeg", "image/jpeg", "multipart/form-data", "application/json", "text/plain")]
    ctx = _FakeContext({"model": {"serializedFile": "m.pt"}}, str(tmp_path), headers)
    h = handler_module.AsmHandler()
    h.initialize(ctx)
    out = h.handle(rows, ctx)
    assert len(out) == 5
    assert 0 not in ctx.status and 3 not in ctx.status
    _check_answer(json.loads(out[0]), 320, 240)
    assert set(json.loads(out[3])["heatmaps"]) == {"theta_avg", "theta_std"}
    assert ctx.status[1][0] == 400 and json.loads(out[1])["error"] == "invalid_image"
    assert ctx.status[2][0] == 400 and json.loads(out[2])["error"] == "invalid_option"
    assert ctx.status[4][0] == 400 and json.loads(out[4])["error"] == "bad_request"
    assert all(ctx.types[i] == "application/json" for i in range(5))

    # an unexpected exception is that request's 500, not the batch's
    import asm.analysis

    original = asm.analysis.search
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return original(*a, **k)

    monkeypatch.setattr(asm.analysis, "search", flaky)
    ctx.status.clear()
    out = h.handle([{"body": bytearray(GOOD)}, {"body": bytearray(GOOD2)}], ctx)
    assert ctx.status[0][0] == 500 and json.loads(out[0])["error"] == "internal_error"
    assert 1 not in ctx.status and json.loads(out[1])["crops"]


def test_shipped_configs_agree():
    """model-config.yaml parses, and the handler's answer limit stays under the frontend's."""
    import yaml

    cfg = yaml.safe_load((REPO / "handler" / "model-config.yaml").read_text())
    assert 1 <= cfg["minWorkers"] <= cfg["maxWorkers"] and cfg["batchSize"] >= 1 and cfg["responseTimeout"] >= 30
    props = dict(line.split("=", 1) for line in (REPO / "handler" / "config.properties").read_text().splitlines()
                 if "=" in line and not line.startswith("#"))
    assert int(cfg["handler"]["max_response_bytes"]) < int(props["max_response_size"])
    assert all(props[k].startswith("http://127.0.0.1:") for k in ("inference_address", "management_address", "metrics_address"))
    assert props.get("enable_model_api", "false") == "false" and props["install_py_dep_per_model"] == "false"
    assert "disable_token_authorization" not in props


def test_reason_phrase_is_safe(handler_module):
    phrase = handler_module._phrase("aspect '16:9\u00e9\r\nX: y' is bad " + "z" * 500)
    assert phrase.isascii() and "\n" not in phrase and "\r" not in phrase and len(phrase) <= 180


def test_repeated_fields_are_kept(handler_module):
    from ts.service import Service

    assert handler_module._keep_repeated_fields()
    batch = [{"requestId": b"r1", "headers": [], "parameters": [
        {"name": "data", "contentType": "image/jpeg", "value": bytearray(b"img")},
        {"name": "aspect", "contentType": "", "value": bytearray(b"16:9")},
        {"name": "aspect", "contentType": "", "value": bytearray(b"1:1")},
    ]}]
    _, inputs, _ = Service.retrieve_data_for_inference(batch)
    assert inputs[0]["aspect"] == [bytearray(b"16:9"), bytearray(b"1:1")]
    assert inputs[0]["data"] == bytearray(b"img")
    request = handler_module._request(inputs[0], "multipart/form-data")
    assert request.image == b"img" and [a.label for a in request.options.aspects] == ["16:9", "1:1"]
    row = {"data": bytearray(b"img"), "keep": [bytearray(b"1,2,3,4"), bytearray(b"5,6,7,8")]}
    assert handler_module._request(row, "multipart/form-data").options.keep == ((1, 2, 3, 4), (5, 6, 7, 8))


# --------------------------------------------------------------------------- make serve / make stop


def _free_base() -> int:
    """A port N with N..N+4 all free (what ``make serve PORT=N`` needs)."""
    for _ in range(50):
        base = Ports.free().inference
        if base < 65530 and not busy_ports(Ports.from_base(base)):
            return base
    pytest.skip("no five consecutive free ports")


def _make(server: Server, target: str, port: int, tmp: Path) -> subprocess.CompletedProcess:
    """``make serve`` / ``make stop`` on the module's archive, with a build folder of its own."""
    cmd = ["make", "--no-print-directory", "-f", "handler/serve.mk", target, f"PORT={port}",
           f"MODEL_STORE={server.model_store}", f"MODEL_CONFIG={server.root / 'model-config.yaml'}",
           f"SERVE_BUILD={tmp / 'build'}", f"SERVE_ROOT={tmp}", f"LOG_DIR={tmp / 'logs'}", f"PY={sys.executable}",
           "SERVE_WAIT=150"]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=200)


def test_make_serve_refuses_a_busy_grpc_port(server, tmp_path):
    """Item: with another server on a gRPC port, `make serve` says which port, starts nothing."""
    base = _free_base()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 3))
        taken.listen()
        done = _make(server, "serve", base, tmp_path)
    assert done.returncode != 0
    assert f"{base + 3} (grpc inference) already in use" in done.stderr, done.stdout + done.stderr
    assert "Exception" not in done.stdout + done.stderr
    assert not (tmp_path / "build" / "tmp" / "asm-serve.json").exists()


def test_make_serve_moves_every_port_and_make_stop_ends_orphaned_workers(server, tmp_path):
    """`make serve PORT=N` listens on N..N+4 (never gRPC's 7070/7071) next to the module's server;
    after the frontend is killed, `make stop` still ends its workers, and says so."""
    base = _free_base()
    done = _make(server, "serve", base, tmp_path)
    srv = TorchServe.from_state(tmp_path / "build")
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert srv is not None and srv.ports == Ports.from_base(base)
        assert [name for name, _ in busy_ports(srv.ports)] == list(Ports.from_base(base).named())
        again = _make(server, "serve", base, tmp_path)
        assert again.returncode != 0 and "make stop" in again.stderr and "torchserve --stop" not in again.stdout + again.stderr
        pids = srv.pids()
        java = [p for p in pids if b"java" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0]]
        assert len(java) == 1 and len(pids) >= 3, pids  # wrapper, frontend, worker(s)
        os.kill(java[0], signal.SIGKILL)  # the frontend dies; its workers are orphaned
        deadline = time.monotonic() + 10
        while any(p == java[0] for p in srv.pids()) and time.monotonic() < deadline:
            time.sleep(0.2)
        orphans = srv.pids()
        assert orphans, "no worker outlived the frontend: this test no longer tests orphans"
        done = _make(server, "stop", base, tmp_path)
        assert done.returncode == 0 and "stopped" in done.stdout, done.stdout + done.stderr
        assert not [p for p in pids if Path(f"/proc/{p}").exists() and b"zombie" not in Path(f"/proc/{p}/status").read_bytes().lower()]
        assert not busy_ports(Ports.from_base(base))
        assert "no TorchServe" in _make(server, "stop", base, tmp_path).stdout
    finally:
        if srv is not None:
            srv.stop()


# --------------------------------------------------------------------------- issue 14: hostile clients


def test_huge_options_get_short_answers_on_a_keep_alive_connection(server):
    """A 100 KB aspect twice on one connection: two short 400s, no reset."""
    body, ctype = _multipart([("data", ("p.jpg", GOOD, "image/jpeg")), ("aspect", "9" * 100_000 + ":1")])
    conn = http.client.HTTPConnection("127.0.0.1", server.ports.inference, timeout=60)
    try:
        for _ in range(2):
            conn.request("POST", "/predictions/asm", body=body,
                         headers={"Content-Type": ctype, "Authorization": f"Bearer {server.key()}"})
            resp = conn.getresponse()
            answer = resp.read()
            assert resp.status == 400 and len(answer) < 400, answer[:300]
            assert _json(answer)["error"] == "invalid_option"
    finally:
        conn.close()


def test_eight_megabyte_json_option_gets_a_short_400(server):
    body = json.dumps({"image": base64.b64encode(GOOD).decode(), "aspect": "x" * 8_000_000}).encode()
    status, _, answer = server.predict(body, "application/json")
    assert status == 400 and len(answer) < 400, answer[:300]
    assert _json(answer)["error"] == "invalid_option"


def test_forged_png_is_refused_without_decoding(server):
    """69 bytes claiming 7000x7000 (49 MP, under the pixel limit): refused as truncated."""
    status, _, answer = server.predict(_png_header(7000, 7000), "image/png")
    assert status == 400 and "end before its pixels" in _json(answer)["message"]


def test_what_torchserve_itself_answers(server):
    """Documented in handler/README.md: TorchServe answers these before the handler runs."""
    status, headers, answer = server.predict(GOOD, "image/jpeg", auth=None)
    assert status == 400 and b"Token Authorization failed" in answer, answer[:300]
    big = b"\xff" * (20 * 1024 * 1024 + 1)  # max_request_size + 1
    status, headers, answer = server.predict(big, "image/jpeg")
    assert status == 413, answer[:300]
    with pytest.raises(ValueError):
        json.loads(answer)


def test_ts_log_has_each_line_once(server):
    lines = [ln for ln in (server.logs / "ts_log.log").read_text(errors="replace").splitlines() if ln[:2] == "20"]
    assert len(lines) > 10
    doubled = sum(a == b for a, b in zip(lines, lines[1:]))
    assert doubled == 0, [a for a, b in zip(lines, lines[1:]) if a == b][:3]


def test_max_pixels_setting(handler_module, tmp_path):
    import torch

    from asm.models import ASMNet, save_model

    torch.manual_seed(0)
    save_model(ASMNet("mobilenet_v3_small"), tmp_path / "m.pt", TEST_PRESET)
    ctx = _FakeContext({"model": {"serializedFile": "m.pt"}}, str(tmp_path), [{"Content-Type": "image/jpeg"}])
    ctx.model_yaml_config = {"handler": {"warmup": False, "max_pixels": 320 * 240 - 1}}
    h = handler_module.AsmHandler()
    h.initialize(ctx)
    out = h.handle([{"body": bytearray(GOOD)}], ctx)
    assert ctx.status[0][0] == 413 and "76,799" in json.loads(out[0])["message"]


def test_threads_setting_sizes_onnx_runtime(handler_module, tmp_path):
    """``threads`` in model-config.yaml sizes the ONNX Runtime session itself (it used to set
    torch's count, which ONNX Runtime followed only as a fallback); ``runtime`` is honoured."""
    from asm.models import ASMNet, save_model

    save_model(ASMNet("mobilenet_v3_small"), tmp_path / "m.pt", TEST_PRESET)
    ctx = _FakeContext({"model": {"serializedFile": "m.pt"}}, str(tmp_path), [{"Content-Type": "image/jpeg"}])
    ctx.model_yaml_config = {"handler": {"warmup": False, "threads": 1, "runtime": "onnx"}}
    h = handler_module.AsmHandler()
    h.initialize(ctx)
    assert h.cropper.runtime == "onnx"
    assert h.cropper.model.session.get_session_options().intra_op_num_threads == 1


# --------------------------------------------------------------------------- KServe v2 (Open Inference Protocol)


def _v2(image: bytes, **extra) -> bytes:
    request = {"id": "req-7", "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                          "data": [base64.b64encode(image).decode("ascii")]}], **extra}
    return json.dumps(request).encode()


def test_kserve_v2_infer(server):
    """POST /v2/models/asm/infer with options as parameters and as inputs; the answer in v2 outputs."""
    body = _v2(GOOD, parameters={"top_k": 2, "min_scale": 0.6})
    request = json.loads(body)
    request["inputs"].append({"name": "aspect", "datatype": "BYTES", "shape": [2], "data": ["16:9", "1:1"]})
    status, _, raw = server.request("POST", "/v2/models/asm/infer", json.dumps(request).encode(),
                                    {"Content-Type": "application/json"}, timeout=60)
    assert status == 200, raw
    answer = _json(raw)
    assert answer["id"] == "req-7" and answer["model_name"] == "asm" and answer["model_version"]
    outputs = {o["name"]: o for o in answer["outputs"]}
    crops = json.loads(outputs["crops"]["data"][0])
    _check_answer(crops, 320, 240)
    assert [c["aspect"] for c in crops["crops"]] == ["16:9", "16:9", "1:1", "1:1"]
    assert outputs["boxes"]["shape"] == [4, 4] and outputs["boxes"]["data"] == [v for c in crops["crops"] for v in c["box"]]
    assert outputs["scores"]["datatype"] == "FP32" and outputs["aspects"]["data"] == ["16:9", "16:9", "1:1", "1:1"]
    fp = crops["focal_point"]
    assert outputs["focal_point"]["data"] == [fp["x"], fp["y"], fp["x_norm"], fp["y_norm"]]
    # the same image on the plain endpoint gives the same crops
    status, _, plain = server.request("POST", "/predictions/asm", json.dumps(
        {"image": base64.b64encode(GOOD).decode(), "aspect": "16:9,1:1", "top_k": 2, "min_scale": 0.6}).encode(),
        {"Content-Type": "application/json"}, timeout=60)
    assert status == 200 and _json(plain)["crops"] == crops["crops"]


@pytest.mark.parametrize("body, status, words", [
    (_v2(CORRUPT), 400, "invalid_image"),
    (json.dumps({"inputs": [{"name": "aspect", "datatype": "BYTES", "shape": [1], "data": ["1:1"]}]}).encode(), 400, "no image"),
    (_v2(GOOD, parameters={"top_k": 99}), 400, "top_k"),
    (_v2(GOOD, parameters={"colour": "red"}), 400, "unknown option"),
])
def test_kserve_v2_refusals(server, body, status, words):
    got, _, raw = server.request("POST", "/v2/models/asm/infer", body, {"Content-Type": "application/json"}, timeout=60)
    assert got == status and words in raw.decode(), raw


def test_kserve_v2_envelope_rows_in_process(handler_module, tmp_path):
    """TorchServe's kservev2 envelope hands over the inputs as rows: one request, one plain answer."""
    import torch

    from asm.models import ASMNet, save_model

    torch.manual_seed(0)
    save_model(ASMNet("mobilenet_v3_small"), tmp_path / "m.pt", TEST_PRESET)
    context = _FakeContext({"model": {"serializedFile": "m.pt", "modelName": "asm"}}, str(tmp_path), [{}, {}])
    handler = handler_module.AsmHandler()
    handler.initialize(context)
    rows = [{"name": "image", "datatype": "BYTES", "shape": [1], "data": base64.b64encode(GOOD).decode()},
            {"name": "aspect", "datatype": "BYTES", "shape": [1], "data": "1:1"}]
    [answer] = handler.handle(rows, context)
    answer = json.loads(answer)
    _check_answer(answer, 320, 240)
    assert [c["aspect"] for c in answer["crops"]] == ["1:1"]


def test_workers_run_the_int8_twin_that_travels_in_the_archive(server):
    """`make archive` puts asm_default.int8.onnx beside the model file, and the handler takes it."""
    logs = "".join(p.read_text(errors="replace") for p in server.logs.glob("*.log"))
    ready = [ln for ln in logs.splitlines() if "asm handler ready" in ln]
    assert ready and all("(int8)" in ln for ln in ready), ready[:2]


def test_workers_run_the_pooling_kernel_that_travels_in_the_archive(server):
    """`make archive` puts the compiled pooling kernel in asm.zip; the workers load it from
    there (copied to their cache folder) and say so, or say why not."""
    from asm.ops import kernel

    logs = "".join(p.read_text(errors="replace") for p in server.logs.glob("*.log"))
    ready = [ln for ln in logs.splitlines() if "asm handler ready" in ln]
    path = "C kernel (" if kernel.library() is not None else "numpy/torch code ("
    assert ready and all(f"pooling op on the CPU: {path}" in ln for ln in ready), ready[:2]
