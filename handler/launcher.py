"""Start and stop one TorchServe for asm: the launcher ``make serve`` / ``make stop``, the
tests and the serving benchmark share.

    python -m handler.launcher start --port 8080 [--model-store model_store] [--build build/serve] [--logs logs]
    python -m handler.launcher stop [--build build/serve]

Ports, all on 127.0.0.1: inference ``PORT``, management ``PORT+1``, metrics ``PORT+2``, gRPC
inference ``PORT+3``, gRPC management ``PORT+4`` (:meth:`Ports.free` picks five free ones).
A busy port is refused before anything starts.

Everything TorchServe starts (its Python wrapper, the Java frontend, the workers) runs in one
process group of its own, recorded in ``BUILD/tmp/asm-serve.json``; ``stop`` ends that group
and any process that names the private temp dir, so workers orphaned by a frontend that died
are stopped too. TorchServe's pid file, worker sockets and unpacked archives live in that
private temp dir, so this server never touches another TorchServe on the machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

__all__ = ["Ports", "TorchServe", "ServeError", "busy_ports", "main"]

HERE = Path(__file__).resolve().parent
CONFIG_TEMPLATE = HERE / "config.properties"
LOG_CONFIG = HERE / "log4j2.xml"
STATE_FILE = "asm-serve.json"


class ServeError(RuntimeError):
    """TorchServe could not be started (busy port, already running, not ready in time)."""


@dataclass(frozen=True)
class Ports:
    """The five ports one TorchServe listens on."""

    inference: int
    management: int
    metrics: int
    grpc_inference: int
    grpc_management: int

    @classmethod
    def from_base(cls, port: int) -> Ports:
        """``port`` .. ``port + 4``."""
        return cls(*(port + i for i in range(5)))

    @classmethod
    def free(cls) -> Ports:
        """Five distinct ports the kernel has free right now (never TorchServe's defaults)."""
        socks, ports = [], []
        try:
            while len(ports) < 5:
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                socks.append(s)
                p = s.getsockname()[1]
                if p not in ports and p not in (7070, 7071, 8080, 8081, 8082):
                    ports.append(p)
        finally:
            for s in socks:
                s.close()
        return cls(*ports)

    def named(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def busy_ports(ports: Ports) -> list[tuple[str, int]]:
    """``(name, port)`` of every port something already listens on (or that cannot be bound)."""
    busy = []
    for name, port in ports.named().items():
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                busy.append((name, port))
    return busy


def write_config(ports: Ports, out: Path, template: Path = CONFIG_TEMPLATE) -> Path:
    """``template`` with every address and port set to ``ports`` (all on 127.0.0.1)."""
    values = {
        "inference_address": f"http://127.0.0.1:{ports.inference}",
        "management_address": f"http://127.0.0.1:{ports.management}",
        "metrics_address": f"http://127.0.0.1:{ports.metrics}",
        "grpc_inference_address": "127.0.0.1",
        "grpc_management_address": "127.0.0.1",
        "grpc_inference_port": str(ports.grpc_inference),
        "grpc_management_port": str(ports.grpc_management),
    }
    lines = [ln for ln in template.read_text().splitlines() if ln.split("=", 1)[0].strip() not in values]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines + [f"{k}={v}" for k, v in values.items()]) + "\n")
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _proc_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()] if os.path.isdir("/proc") else []


class TorchServe:
    """One TorchServe serving ``models`` from ``model_store``.

    Args:
        root: the folder TorchServe starts from; it writes ``key_file.json`` (the tokens) there.
        build: a private folder for the config and the temp dir (``build/tmp``).
        model_store: where ``asm.mar`` is.
        logs: TorchServe's log folder.
        ports: see :class:`Ports`.
    """

    def __init__(self, root: Path, build: Path, model_store: Path, logs: Path, ports: Ports,
                 models: str = "asm=asm.mar", torchserve: str | None = None) -> None:
        self.root, self.build = Path(root).resolve(), Path(build).resolve()
        self.model_store, self.logs = Path(model_store).resolve(), Path(logs).resolve()
        self.ports, self.models = ports, models
        bin_dir = Path(sys.executable).parent
        self.torchserve = torchserve or shutil.which("torchserve", path=str(bin_dir)) or shutil.which("torchserve") or "torchserve"
        self.tmp = self.build / "tmp"
        self.state = self.tmp / STATE_FILE
        self.env = dict(os.environ, TMPDIR=str(self.tmp), TEMP=str(self.tmp),
                        LOG_LOCATION=str(self.logs), METRICS_LOCATION=str(self.logs))
        self.process: subprocess.Popen | None = None
        self.pgid: int | None = None

    @classmethod
    def from_state(cls, build: Path) -> TorchServe | None:
        """The server a previous ``start`` left in ``build`` (``None`` if there is none)."""
        state = Path(build).resolve() / "tmp" / STATE_FILE
        try:
            s = json.loads(state.read_text())
            srv = cls(Path(s["root"]), Path(build), Path(s["model_store"]), Path(s["logs"]), Ports(**s["ports"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        srv.pgid = int(s["pgid"])
        return srv

    # ------------------------------------------------------------------ start
    def start(self, timeout: float = 180) -> TorchServe:
        """Start and wait until every worker is READY; on any failure nothing is left running."""
        old = TorchServe.from_state(self.build)
        if old is not None and old.pids():
            raise ServeError(f"a TorchServe started here is already running (inference port {old.ports.inference}); "
                             "stop it first (make stop)")
        busy = busy_ports(self.ports)
        if busy:
            taken = ", ".join(f"{port} ({name.replace('_', ' ')})" for name, port in busy)
            raise ServeError(f"port(s) {taken} already in use; pick other ports (make serve PORT=N uses N..N+4)")
        for d in (self.tmp, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        config = write_config(self.ports, self.build / "config.properties")
        cmd = [self.torchserve, "--start", "--foreground", "--ncs", "--ts-config", str(config),
               "--model-store", str(self.model_store), "--models", self.models, "--log-config", str(LOG_CONFIG)]
        with open(self.logs / "torchserve.out", "wb") as out:
            self.process = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.pgid = self.process.pid
        self.state.write_text(json.dumps({"pgid": self.pgid, "root": str(self.root), "model_store": str(self.model_store),
                                          "logs": str(self.logs), "ports": self.ports.named()}))
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServeError("TorchServe exited while starting:\n" + self.log_tail())
            try:
                status, _, body = self.request("GET", "/ping", timeout=5)
                if status == 200 and b"Healthy" in body:
                    status, _, body = self.request("GET", "/models/asm", port=self.ports.management, auth="management", timeout=5)
                    workers = json.loads(body)[0].get("workers", []) if status == 200 else []
                    if workers and all(w.get("status") == "READY" for w in workers):
                        return
            except (OSError, ValueError, KeyError, IndexError, http.client.HTTPException):
                pass
            time.sleep(1)
        raise ServeError(f"the model was not ready after {timeout:.0f} s:\n" + self.log_tail())

    # ------------------------------------------------------------------ talk
    def key(self, kind: str = "inference") -> str:
        """A token from ``key_file.json`` (``"inference"`` or ``"management"``)."""
        return json.loads((self.root / "key_file.json").read_text())[kind]["key"]

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                port: int | None = None, auth: str | None = "inference", timeout: float = 90) -> tuple[int, dict, bytes]:
        """One HTTP request on loopback: ``(status, lower-case headers, body)``."""
        conn = http.client.HTTPConnection("127.0.0.1", port or self.ports.inference, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if auth:
                hdrs["Authorization"] = f"Bearer {self.key(auth)}"
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def log_tail(self, n: int = 30) -> str:
        parts = []
        for p in (self.logs / "torchserve.out", self.logs / "model_log.log", self.logs / "ts_log.log"):
            if p.exists():
                lines = [ln for ln in p.read_text(errors="replace").splitlines() if "TS_METRICS" not in ln and not ln.startswith("\tat ")]
                parts.append(f"--- {p.name}\n" + "\n".join(lines[-n:]))
        return "\n".join(parts)

    # ------------------------------------------------------------------ stop
    def pids(self) -> list[int]:
        """Every live process of this server: the members of its process group (orphaned workers
        keep it) that name its build folder on their command line (so a recycled group id is
        never taken for ours)."""
        if self.pgid is None:
            return []
        mine = []
        marker = str(self.build).encode()
        for pid in _proc_pids():
            try:
                if os.getpgid(pid) != self.pgid:
                    continue
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker in f.read():
                        mine.append(pid)
            except OSError:
                continue
        return mine

    def stop(self, timeout: float = 30) -> list[int]:
        """Stop the frontend and every worker (TERM, then KILL after ``timeout`` s); returns the pids stopped."""
        pids = self.pids()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 10)
            while any(_alive(p) for p in pids) and time.monotonic() < deadline:
                if self.process is not None:
                    self.process.poll()  # reap our own child
                time.sleep(0.2)
            if not any(_alive(p) for p in pids):
                break
        if self.process is not None:
            self.process.poll()
        for f in (self.state, self.tmp / ".model_server.pid", self.root / "key_file.json"):
            f.unlink(missing_ok=True)
        return pids

    def __enter__(self) -> TorchServe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- command line


def _start(args: argparse.Namespace) -> int:
    ports = Ports.free() if args.port == 0 else Ports.from_base(args.port)
    srv = TorchServe(Path(args.root), Path(args.build), Path(args.model_store), Path(args.logs), ports)
    print(f"serve: starting TorchServe on 127.0.0.1:{ports.inference} (logs in {args.logs}/), waiting for the model...", flush=True)
    try:
        srv.start(args.wait)
    except ServeError as e:
        print(f"serve: {e}", file=sys.stderr)
        return 1
    p = ports
    print(f"serve: ready. Ports: inference {p.inference}, management {p.management}, metrics {p.metrics}, "
          f"gRPC {p.grpc_inference}/{p.grpc_management}.")
    print("  Token authorization is on: the keys are in key_file.json; read the inference key with")
    key_file = os.path.relpath(srv.root / "key_file.json")
    print(f"  {args.python} -c 'import json; print(json.load(open(\"{key_file}\"))[\"inference\"][\"key\"])'")
    print(f"  curl -H \"Authorization: Bearer {srv.key()}\" --data-binary @photo.jpg -H 'Content-Type: image/jpeg' "
          f"http://127.0.0.1:{p.inference}/predictions/asm")
    print("  options: -F data=@photo.jpg -F aspect=16:9 -F top_k=3 -F heatmap=true (multipart) or a JSON body "
          '{"image": "<base64>", ...}')
    print(f"  metrics: curl http://127.0.0.1:{p.metrics}/metrics   stop: make stop")
    return 0


def _stop(args: argparse.Namespace) -> int:
    srv = TorchServe.from_state(Path(args.build))
    if srv is None:
        print("stop: no TorchServe started by make serve is running")
        return 0
    pids = srv.stop()
    print(f"stop: TorchServe stopped ({len(pids)} processes)" if pids else "stop: it had already exited; cleaned up")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m handler.launcher", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start TorchServe and wait for the model")
    start.add_argument("--port", type=int, default=8080, help="inference port; the others follow it (0: any free ports)")
    start.add_argument("--model-store", default="model_store")
    start.add_argument("--logs", default="logs")
    start.add_argument("--root", default=".", help="where TorchServe starts and writes key_file.json")
    start.add_argument("--wait", type=float, default=180, help="seconds to wait for the model")
    start.add_argument("--python", default="python", help="the python shown in the key command")
    start.set_defaults(func=_start)
    stop = sub.add_parser("stop", help="stop the TorchServe `start` left in --build, workers included")
    stop.set_defaults(func=_stop)
    for p in (start, stop):
        p.add_argument("--build", default="build/serve", help="private folder: config, temp dir, state")
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
