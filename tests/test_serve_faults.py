"""Worker crashes under load, against a real TorchServe on loopback: through
:class:`asm.serving.client.Client` no request is lost; what plain (non-retrying) requests
saw at the same time is printed (run with ``-s`` to see it).

Bounded: 4 client threads send 150 crops in all, one plain thread sends requests until they
are done, and a worker process is SIGKILLed 3 times along the way (at 20 %, 45 % and 70 % of
the crops). The server, archive and start-up are tests/test_serve.py's.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from asm.serving.client import Client
from tests.test_serve import Server, _photo, running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

THREADS, REQUESTS, KILLS_AT = 4, 150, (0.20, 0.45, 0.70)
IMAGES = [_photo(320, 240, seed=i) for i in range(4)]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """TorchServe as ``make serve`` runs it: two workers, no batching."""
    yield from running_server(tmp_path_factory, "faults", workers=2, batch_size=1)


def _workers(srv: Server) -> list[int]:
    """The pids of the server's Python worker processes."""
    out = []
    for pid in srv.pids():
        try:
            if b"model_service_worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
        except OSError:
            continue
    return out


def _raw(srv: Server, image: bytes) -> str:
    """One plain request, never sent again: its status, or the connection error's name."""
    try:
        status, _, _ = srv.request("POST", "/predictions/asm", image, {"Content-Type": "image/jpeg"}, timeout=60)
        return str(status)
    except (OSError, http.client.HTTPException) as e:
        return type(e).__name__


@pytest.mark.timeout(900)
def test_no_request_is_lost_through_worker_kills(two_workers):
    srv = two_workers
    client = Client(f"http://127.0.0.1:{srv.ports.inference}", token=srv.key(), timeout=60, retries=10,
                    deadline=240, backoff=0.5, max_backoff=8)
    done, lock, stop = [0], threading.Lock(), threading.Event()
    raw: Counter[str] = Counter()
    killed: list[int] = []

    def crop(i: int) -> dict:
        answer = client.crop(IMAGES[i % len(IMAGES)], aspect="16:9,1:1", top_k=1)
        with lock:
            done[0] += 1
        return answer

    def plain() -> None:
        i = 0
        while not stop.is_set():
            raw[_raw(srv, IMAGES[i % len(IMAGES)])] += 1
            i += 1

    def killer() -> None:
        for share in KILLS_AT:
            while done[0] < share * REQUESTS and not stop.is_set():
                time.sleep(0.05)
            pids = _workers(srv)
            if stop.is_set() or not pids:
                return
            os.kill(pids[len(killed) % len(pids)], signal.SIGKILL)
            killed.append(pids[len(killed) % len(pids)])

    side = ThreadPoolExecutor(2)
    plain_run, killer_run = side.submit(plain), side.submit(killer)
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            answers = list(pool.map(crop, range(REQUESTS)))
    finally:
        stop.set()
        side.shutdown(wait=True)
    plain_run.result(), killer_run.result()
    client.close()

    print(f"\nworker kills: {len(killed)}; through the Client: {len(answers)}/{REQUESTS} answered, "
          f"sent again after: {dict(client.retried)}; plain requests saw: {dict(raw)}")
    assert len(killed) == len(KILLS_AT), "fewer kills than planned: this test no longer tests crashes"
    assert len(answers) == REQUESTS and all(a["width"] == 320 and a["crops"] for a in answers)
