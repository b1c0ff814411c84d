"""A client for a running asm server that loses nothing when a worker dies.

    from asm.serving.client import Client

    client = Client("http://127.0.0.1:8080", token=KEY, timeout=60, retries=5)
    answer = client.crop("photo.jpg", aspect=["16:9", "1:1"], top_k=2)   # POST /predictions/asm
    v2 = client.infer(image_bytes, aspect="16:9")                        # POST /v2/models/asm/infer

A crop is idempotent, so the client sends it again when the server failed (any 5xx:
TorchServe answers a request whose worker died with a 5xx and never replays it) or the
connection was reset, refused or closed before the answer. It waits between tries with
exponential backoff and full jitter, and gives up at ``retries`` retries or at the overall
``deadline``, whichever comes first (:class:`Unavailable`). A 4xx is the caller's error and
is never retried: asm's own refusals (``{"error": code, "message": text}``) are raised as
asm's typed errors (:class:`~asm.errors.InvalidImage`, :class:`~asm.errors.InvalidOption`,
...), TorchServe's own (a wrong token, a body over ``max_request_size``, an unknown model)
as :class:`Refused`. The standard library only (``http.client``); one keep-alive connection
per thread, so one client may be shared by threads.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import random
import socket
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Union

import numpy as np

from asm.errors import echo, from_dict

__all__ = ["Client", "ClientError", "Refused", "Unavailable", "Attempt", "RETRY_STATUS"]

ImageInput = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes], np.ndarray]

#: Statuses sent again: every 5xx (TorchServe's worker-died answers are 500 and 507; 503
#: while no worker is up).
RETRY_STATUS = range(500, 600)
#: Connection failures that mean "no answer came": sent again.
_RETRY_ERRORS = (ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead,
                 http.client.BadStatusLine, http.client.CannotSendRequest, http.client.ResponseNotReady)


class ClientError(Exception):
    """The asm server gave no usable answer (base class of :class:`Refused`, :class:`Unavailable`).

    Attributes: ``status`` (the last HTTP status, None if none came), ``error`` and
    ``message`` (the server's ``{"error", "message"}`` where it sent one), ``attempts``
    (:class:`Attempt` per try).
    """

    def __init__(self, text: str, status: int | None = None, error: str | None = None, message: str | None = None,
                 attempts: list[Attempt] | None = None) -> None:
        super().__init__(text)
        self.status, self.error, self.message = status, error, message
        self.attempts = list(attempts or [])


class Refused(ClientError):
    """A 4xx that is not one of asm's own refusals (TorchServe's: token, size, unknown model)."""


class Unavailable(ClientError):
    """No answer after every retry, or the overall deadline passed (5xx or connection failures)."""


@dataclass(frozen=True)
class Attempt:
    """One try: its HTTP status (None: no answer) or the connection error's name, and its time."""

    status: int | None
    failure: str | None
    seconds: float


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Client:
    """Crops from an asm server (TorchServe with the asm handler), with retries.

    Args:
        base_url: ``http(s)://host:port`` of the inference API.
        token: the bearer token (TorchServe's inference key); None sends none.
        timeout: seconds one try may take (connect and answer).
        retries: how many times a failed try is sent again (0: never).
        deadline: seconds all tries together may take, waits included (default:
            ``timeout * (retries + 1)``).
        backoff: the first wait's upper bound in seconds; it doubles per retry (full jitter:
            the wait is drawn uniformly below it) up to ``max_backoff``.
        model: the model's name on the server.
    """

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60.0, retries: int = 5,
                 deadline: float | None = None, backoff: float = 0.2, max_backoff: float = 5.0, model: str = "asm") -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port], got {echo(base_url)}")
        if retries < 0 or timeout <= 0:
            raise ValueError("retries must be >= 0 and timeout > 0")
        self.base_url = base_url.rstrip("/")
        self._https = url.scheme == "https"
        self._host, self._port = url.hostname, url.port
        self._prefix = url.path.rstrip("/")
        self.token, self.timeout, self.retries, self.model = token, float(timeout), int(retries), model
        self.deadline = float(deadline) if deadline is not None else self.timeout * (self.retries + 1)
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        self._local = threading.local()
        self._rng = random.Random()
        self._lock = threading.Lock()
        #: What made this client send a request again: ``{"500": n, "ConnectionResetError": n, ...}``.
        self.retried: Counter[str] = Counter()

    # ------------------------------------------------------------------ API
    def crop(self, image: ImageInput, **options: Any) -> dict[str, Any]:
        """``POST /predictions/<model>``: the image as the multipart field ``data``, the options
        (``aspect``, ``top_k``, ``circular``, ``keep``, ``focus``, ``min_scale``, ``faces``,
        ``nms_iou``, ``heatmap``; Python values or form strings) as text fields. Returns the
        answer's JSON ``{"width", "height", "crops", ...}``."""
        fields = {name: _field_text(name, value) for name, value in options.items() if value is not None}
        body, ctype = _multipart(_image_bytes(image), fields)
        return self._call(f"/predictions/{self.model}", body, ctype)

    def infer(self, image: ImageInput, **options: Any) -> dict[str, Any]:
        """``POST /v2/models/<model>/infer`` (KServe v2): the image as the BYTES input ``image``
        (base64), the options as request ``parameters`` (JSON values). Returns the v2 answer
        (``{"id", "model_name", "outputs": [...]}``; ``outputs[0]`` holds :meth:`crop`'s JSON)."""
        request = {"id": uuid.uuid4().hex, "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                                       "data": [base64.b64encode(_image_bytes(image)).decode("ascii")]}]}
        params = {name: _json_value(value) for name, value in options.items() if value is not None}
        if params:
            request["parameters"] = params
        return self._call(f"/v2/models/{self.model}/infer", json.dumps(request).encode(), "application/json")

    def close(self) -> None:
        """Close this thread's connection (other threads' close when they are collected)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ retry loop
    def _call(self, path: str, body: bytes, content_type: str) -> dict[str, Any]:
        """One request, sent again on a 5xx or a dropped connection until an answer, the
        retry limit or the deadline; then the answer's JSON or the right error."""
        headers = {"Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        end = time.monotonic() + self.deadline
        attempts: list[Attempt] = []
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise self._gave_up(attempts, f"the overall deadline of {self.deadline:g} s passed")
            start, answer = time.monotonic(), None
            try:
                answer = self._send(self._prefix + path, body, headers, min(self.timeout, left))
            except _RETRY_ERRORS as e:
                attempts.append(Attempt(None, type(e).__name__, time.monotonic() - start))
                self.close()
            except (TimeoutError, socket.timeout) as e:  # a slow answer: sending it again only doubles the load
                attempts.append(Attempt(None, type(e).__name__, time.monotonic() - start))
                self.close()
                cut = " (cut by the overall deadline)" if left < self.timeout else ""
                raise Unavailable(f"the asm server at {self.base_url} did not answer within {min(self.timeout, left):g} s{cut}",
                                  attempts=attempts) from None
            except OSError as e:  # DNS, no route, ...: not a dropped connection, so not retried
                attempts.append(Attempt(None, type(e).__name__, time.monotonic() - start))
                self.close()
                raise Unavailable(f"cannot reach the asm server at {self.base_url} ({type(e).__name__}: {echo(str(e))})",
                                  attempts=attempts) from None
            else:
                attempts.append(Attempt(answer.status, None, time.monotonic() - start))
                if answer.status not in RETRY_STATUS:
                    return _decode(answer, attempts)
            if len(attempts) > self.retries:
                raise self._gave_up(attempts, f"{len(attempts)} tries")
            wait = self._wait(len(attempts), answer)
            if time.monotonic() + wait >= end:
                raise self._gave_up(attempts, f"the overall deadline of {self.deadline:g} s would pass while waiting")
            with self._lock:
                last = attempts[-1]
                self.retried[str(last.status) if last.status is not None else str(last.failure)] += 1
            time.sleep(wait)

    def _wait(self, n: int, answer: _Answer | None) -> float:
        """Full-jitter exponential backoff; a ``Retry-After`` in seconds is honoured up to ``max_backoff``."""
        cap = min(self.max_backoff, self.backoff * 2 ** (n - 1))
        wait = self._rng.uniform(0, cap)
        after = answer.headers.get("retry-after", "") if answer is not None else ""
        if after.strip().isdigit():
            wait = max(wait, min(float(after), self.max_backoff))
        return wait

    def _gave_up(self, attempts: list[Attempt], why: str) -> Unavailable:
        last = attempts[-1] if attempts else None
        seen = ", ".join(str(a.status) if a.status is not None else a.failure or "?" for a in attempts[-6:])
        return Unavailable(f"the asm server at {self.base_url} gave no answer after {why} (last tries: {seen or 'none'})",
                           status=last.status if last else None, attempts=attempts)

    # ------------------------------------------------------------------ HTTP
    def _send(self, path: str, body: bytes, headers: dict[str, str], timeout: float) -> _Answer:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = self._local.conn = cls(self._host, self._port, timeout=timeout)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.will_close:
            self.close()
        return _Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)


# --------------------------------------------------------------------------- answers


def _decode(answer: _Answer, attempts: list[Attempt]) -> dict[str, Any]:
    """The JSON of a 2xx; asm's typed error for its own refusal; :class:`Refused` for any other 4xx."""
    try:
        body = json.loads(answer.body) if answer.body else None
    except ValueError:
        body = None
    if 200 <= answer.status < 300 and isinstance(body, dict):
        return body
    error = body.get("error") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    if answer.status >= 400:
        typed = from_dict(body) if isinstance(error, str) and isinstance(message, str) else None
        if typed is not None:
            typed.details["http_status"] = answer.status
            raise typed
        kind = body.get("type") if isinstance(body, dict) else None
        text = message if isinstance(message, str) else answer.body.decode("utf-8", "replace")
        raise Refused(f"the asm server refused the request (HTTP {answer.status}{', ' + kind if isinstance(kind, str) else ''})"
                      f"{': ' + echo(text) if text else ''}", answer.status, error if isinstance(error, str) else kind,
                      text or None, attempts)
    raise ClientError(f"the asm server sent HTTP {answer.status} with an answer that is not a JSON object: "
                      f"{echo(answer.body[:200])}", answer.status, attempts=attempts)


# --------------------------------------------------------------------------- requests


def _image_bytes(image: ImageInput) -> bytes:
    """The image file's bytes: bytes as they are, a path read, a file object read, an array as PNG."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as f:
            return f.read()
    if isinstance(image, np.ndarray):
        from asm.io import encode_png

        return encode_png(image, compress_level=1)
    if hasattr(image, "read") and not isinstance(image, io.TextIOBase):
        return bytes(image.read())
    raise TypeError(f"image must be bytes, a path, a binary file object or a numpy array, got {type(image).__name__}")


def _field_text(name: str, value: Any) -> str:
    """An option as the text of a form field (what :func:`asm.serving.wire.parse_form` reads back)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if name == "aspect" and isinstance(value, (list, tuple)):
        return ",".join(v if isinstance(v, str) else ":".join(map(str, v)) for v in value)
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(_json_value(value))
    return str(value)


def _json_value(value: Any) -> Any:
    """Options as JSON values (tuples become lists, numpy scalars numbers)."""
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _multipart(image: bytes, fields: Mapping[str, str]) -> tuple[bytes, str]:
    """``(body, content type)``: the image as the file field ``data``, then the text fields."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="data"; filename="image"\r\n'
              "Content-Type: application/octet-stream\r\n\r\n".encode())
    out.write(image)
    for name, text in fields.items():
        safe = "".join(c for c in name if c.isprintable() and c not in '"\r\n')
        out.write(f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="{safe}"\r\n\r\n'.encode())
        out.write(text.encode("utf-8"))
    out.write(f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"

