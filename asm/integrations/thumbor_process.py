"""A Thumbor server in a child process on a free loopback port (tests and benchmarks).

>>> with ThumborProcess(tmp, root="examples", unsafe=True) as server:
...     urllib.request.urlopen(server.base + "/unsafe/300x200/smart/osprey.jpg")

The socket is bound here (``127.0.0.1``, port 0) and handed to Thumbor (``--fd``), so no
other process can take the port in between. Settings come from ``deploy/thumbor/thumbor.conf``
(or ``conf``) and the ``ASM_THUMBOR_*`` variables it reads.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["ThumborProcess", "CONF", "get"]

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "thumbor" / "thumbor.conf"


def get(url: str, timeout: float = 60) -> tuple[int, bytes]:
    """``(status, body)`` of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class ThumborProcess:
    """Thumbor serving ``root`` with ``conf``; ``tmp`` holds its key, storage and log."""

    def __init__(self, tmp: Path, root: str | os.PathLike, unsafe: bool = False, key: str = "asm-local-key",
                 storage: str = "thumbor.storages.no_storage", conf: Path = CONF, wait: float = 90) -> None:
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        keyfile = self.tmp / "security.key"
        keyfile.write_text(key)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.setblocking(False)  # Tornado accepts until no connection is left
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        env = {**os.environ, "ASM_THUMBOR_ROOT": str(Path(root).resolve()), "ASM_THUMBOR_UNSAFE": "1" if unsafe else "",
               "ASM_THUMBOR_STORAGE": storage, "ASM_THUMBOR_STORAGE_ROOT": str(self.tmp / "storage"),
               "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.log_path = self.tmp / "thumbor.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from thumbor.server import main; main(sys.argv[1:])",
             "--fd", str(self.sock.fileno()), "--conf", str(conf), "--keyfile", str(keyfile), "-l", "info"],
            env=env, cwd=self.tmp, pass_fds=(self.sock.fileno(),), stdout=self.log, stderr=subprocess.STDOUT)
        self._wait(wait)

    def _wait(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                if get(f"{self.base}/healthcheck", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"thumbor did not start: {self.log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s) and close its socket."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.sock.close()
        self.log.close()

    def __enter__(self) -> ThumborProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
