"""asm.serving.client.Client against a scripted stdlib HTTP server on 127.0.0.1: what it
sends again (5xx, reset or closed connections), what it never sends again (4xx), and when
it gives up (retries, the overall deadline)."""

from __future__ import annotations

import email.parser
import email.policy
import http.server
import json
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from asm.errors import ImageTooLarge, InvalidOption
from asm.serving import wire
from asm.serving.client import Client, Refused, Unavailable
from handler import kserve_v2

ANSWER = {"width": 320, "height": 240, "crops": [{"box": [0, 0, 320, 240], "score": 0.5, "aspect": "free", "shape": "rect"}]}
IMAGE = b"\xff\xd8\xff\xe0not really a jpeg"


class _Script(http.server.ThreadingHTTPServer):
    """Answers each request with the next step of ``steps`` (the last one repeats)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.steps: list[tuple] = []
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def next_step(self) -> tuple:
        with self.lock:
            return self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as TorchServe

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.seen.append((self.path, dict(self.headers), body))
        step = self.server.next_step()
        if step[0] == "reset":  # RST instead of an answer
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if step[0] == "close":  # closed without a word (RemoteDisconnected)
            self.close_connection = True
            return
        status, payload = step
        data = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def script() -> Iterator[_Script]:
    srv = _Script()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _client(url: str, **kw) -> Client:
    kw.setdefault("retries", 5)
    kw.setdefault("timeout", 10)
    return Client(url, token="s3cret", backoff=0.01, max_backoff=0.05, **kw)


def _form(headers: dict[str, str], body: bytes) -> dict:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body)
    return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True) for part in msg.iter_parts()}


def test_retries_5xx_resets_and_closes_then_answers(script):
    script.steps = [(503, {"code": 503, "type": "ServiceUnavailableException", "message": "no worker"}),
                    (500, {"error": "internal_error", "message": "worker died"}), ("reset",), ("close",),
                    (507, {"code": 507, "type": "InternalServerException", "message": "Worker died."}), (200, ANSWER)]
    with _client(script.url) as client:
        assert client.crop(IMAGE, aspect=["16:9", "1:1"], top_k=2, heatmap=False) == ANSWER
    assert len(script.seen) == 6
    path, headers, body = script.seen[-1]
    assert path == "/predictions/asm" and headers["Authorization"] == "Bearer s3cret"
    # what was sent is what the handler reads: the image and the options
    request = wire.parse_form(_form(headers, body), headers["Content-Type"])
    assert request.image == IMAGE and [a.label for a in request.options.aspects] == ["16:9", "1:1"]
    assert request.options.top_k == 2 and request.heatmap is False


def test_options_round_trip_through_the_form(script):
    script.steps = [(200, ANSWER)]
    with _client(script.url) as client:
        client.crop(IMAGE, aspect="1:1", keep=[(1, 2, 30, 40)], focus=(12, 34), min_scale=0.75, faces=False, circular=False)
    _, headers, body = script.seen[0]
    options = wire.parse_form(_form(headers, body), headers["Content-Type"]).options
    assert (options.keep, options.focus, options.min_scale, options.faces) == (((1, 2, 30, 40),), (12, 34), 0.75, False)


def test_asm_refusal_is_raised_typed_and_never_retried(script):
    script.steps = [(400, {"error": "invalid_option", "message": "top_k must be from 1 to 10, got 99"}), (200, ANSWER)]
    with _client(script.url) as client, pytest.raises(InvalidOption, match="top_k must be") as ei:
        client.crop(IMAGE, top_k=99)
    assert ei.value.to_dict() == {"error": "invalid_option", "message": "top_k must be from 1 to 10, got 99"}
    assert ei.value.details["http_status"] == 400 and len(script.seen) == 1
    script.steps = [(413, {"error": "image_too_large", "message": "The image is too large."})]
    with _client(script.url) as client, pytest.raises(ImageTooLarge):
        client.crop(IMAGE)


def test_torchserve_refusal_is_refused_and_never_retried(script):
    script.steps = [(400, {"code": 400, "type": "InvalidKeyException", "message": "Token Authorization failed."})]
    with _client(script.url) as client, pytest.raises(Refused, match="InvalidKeyException") as ei:
        client.crop(IMAGE)
    assert (ei.value.status, ei.value.error, ei.value.message) == (400, "InvalidKeyException", "Token Authorization failed.")
    assert len(script.seen) == 1
    script.steps = [(413, None)]  # TorchServe: a body over max_request_size, empty answer
    with _client(script.url) as client, pytest.raises(Refused) as ei:
        client.crop(IMAGE)
    assert ei.value.status == 413 and len(script.seen) == 2


def test_gives_up_after_the_retries(script):
    script.steps = [(500, {"error": "internal_error", "message": "boom"})]
    with _client(script.url, retries=2) as client, pytest.raises(Unavailable, match="3 tries") as ei:
        client.crop(IMAGE)
    assert len(script.seen) == 3 and [a.status for a in ei.value.attempts] == [500, 500, 500]
    assert ei.value.status == 500


def test_gives_up_at_the_deadline(script):
    script.steps = [(503, {"message": "no worker"})]
    client = Client(script.url, retries=1_000_000, timeout=5, deadline=0.3, backoff=0.02, max_backoff=0.05)
    with client, pytest.raises(Unavailable, match="deadline") as ei:
        client.crop(IMAGE)
    assert 1 <= len(ei.value.attempts) < 1_000_000 and len(script.seen) == len(ei.value.attempts)


def test_refused_connection_is_retried_then_unavailable():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with _client(f"http://127.0.0.1:{port}", retries=2) as client, pytest.raises(Unavailable) as ei:
        client.crop(IMAGE)
    assert [a.failure for a in ei.value.attempts] == ["ConnectionRefusedError"] * 3


def test_infer_sends_a_kserve_v2_request(script):
    v2 = {"id": "x", "model_name": "asm", "outputs": [{"name": "crops", "datatype": "BYTES", "shape": [1], "data": [json.dumps(ANSWER)]}]}
    script.steps = [("reset",), (200, v2)]
    with _client(script.url) as client:
        assert client.infer(IMAGE, aspect=["16:9", "1:1"], top_k=2) == v2
    path, headers, body = script.seen[-1]
    assert path == "/v2/models/asm/infer" and headers["Content-Type"] == "application/json"
    request = kserve_v2.parse(json.loads(body))
    assert request.image == IMAGE and [a.label for a in request.options.aspects] == ["16:9", "1:1"] and request.options.top_k == 2


def test_bad_arguments():
    with pytest.raises(ValueError):
        Client("ftp://127.0.0.1:1")
    with pytest.raises(TypeError):
        Client("http://127.0.0.1:1").crop(12345)
