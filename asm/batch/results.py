"""Where a batch job's answers go, written so that an interrupted job can resume.

One record per input: ``{"file", "width", "height", "crops"}`` (as ``asm crop --json``) or
``{"file", "error", "message"}``. Two formats:

* JSONL (``results.jsonl``): one line per record, appended with a single ``write`` each, so a
  killed process leaves at most one torn last line. Opening the file drops a torn tail and
  reads which inputs are answered; a file that is not an asm result file is never touched.
* Parquet (``results/`` folder): parts ``part-*.parquet`` of up to ``rows_per_part`` rows,
  each written under a hidden name and renamed into place whole; ``crops``, ``faces`` and
  ``warnings`` are their JSON text.

Either holds an exclusive lock while open: a second job writing the same results is refused.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from asm.errors import BadRequest, echo

__all__ = ["ResultsFile", "JsonlResults", "ParquetResults", "open_results", "FORMATS"]

FORMATS = ("jsonl", "parquet")


class ResultsFile:
    """Common shape of the writers: ``answered`` (file -> failed) at open, ``write``, ``close``."""

    path: Path
    answered: dict[str, bool]

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock(fd: int, path: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BadRequest(f"another asm batch is writing to {echo(str(path))}; wait for it or choose another --out") from None


def _cannot_write(path: Path, e: OSError) -> OSError:
    return OSError(e.errno, f"cannot write {echo(str(path))}: {e.strerror or e}")


class JsonlResults(ResultsFile):
    """Append-only JSON lines; see the module docstring for what survives a crash."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise _cannot_write(self.path, e) from None
        _lock(self.fd, self.path)
        try:
            self.answered, good_size = self._read()
            if good_size < os.fstat(self.fd).st_size:  # a torn last line: the input is redone
                os.ftruncate(self.fd, good_size)
        except BaseException:
            os.close(self.fd)
            raise
        self.size = good_size

    def _read(self) -> tuple[dict[str, bool], int]:
        """Answered inputs and the size up to the end of the last whole line."""
        answered: dict[str, bool] = {}
        size = 0
        with open(self.fd, "rb", closefd=False) as f:
            f.seek(0)
            for number, line in enumerate(f, 1):
                if not line.endswith(b"\n"):
                    break  # torn: written by a process that died mid-line
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # RecursionError: a line of thousands of "["
                    record = None
                name = record.get("file") if isinstance(record, dict) else None
                if not isinstance(name, str):
                    raise BadRequest(f"{echo(str(self.path))} line {number} is not an asm batch result; "
                                     "choose another --out (it is left as it is)") from None
                answered[name] = "error" in record
                size += len(line)
        return answered, size

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        """Append ``records`` whole; on a failed write (a full disk) the file is cut back to its
        last whole line and the ``OSError`` names the path."""
        data = b"".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n" for r in records)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as e:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass  # the next run drops the torn tail
            raise _cannot_write(self.path, e) from None
        self.size += len(data)

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.fsync(self.fd)
            except OSError:
                pass
            os.close(self.fd)  # releases the lock
            self.fd = -1


class ParquetResults(ResultsFile):
    """A folder of Parquet parts, each renamed into place whole (needs ``pyarrow``)."""

    def __init__(self, path: Path, rows_per_part: int = 1000) -> None:
        try:
            import pyarrow as pa
        except ImportError:
            raise BadRequest("--format parquet needs pyarrow: pip install 'asm-crop[ray]' (or pyarrow)") from None
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise BadRequest(f"--format parquet writes a folder of parts; {echo(str(self.path))} is a file")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path / ".asm-batch.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise _cannot_write(self.path, e) from None
        _lock(self.fd, self.path)
        self.schema = pa.schema([("file", pa.string()), ("width", pa.int64()), ("height", pa.int64()),
                                 ("crops", pa.string()), ("faces", pa.string()), ("warnings", pa.string()),
                                 ("focal_point", pa.string()),
                                 ("error", pa.string()), ("message", pa.string())])
        self.rows_per_part = rows_per_part
        self.pending: list[dict[str, Any]] = []
        for leftover in self.path.glob(".part-*.tmp"):  # a part that was being written when a job died
            leftover.unlink(missing_ok=True)
        self.answered = self._read()

    def _read(self) -> dict[str, bool]:
        import pyarrow.parquet as pq

        answered: dict[str, bool] = {}
        for part in sorted(self.path.glob("part-*.parquet")):
            table = pq.read_table(part, columns=["file", "error"])
            for name, error in zip(table.column("file").to_pylist(), table.column("error").to_pylist()):
                answered[name] = error is not None
        return answered

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        for r in records:
            self.pending.append({**r, **{k: json.dumps(r[k], separators=(",", ":")) if k in r else None
                                         for k in ("crops", "faces", "warnings", "focal_point")}})
        if len(self.pending) >= self.rows_per_part:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.pending:
            return
        name = f"part-{uuid.uuid4().hex[:16]}.parquet"
        tmp = self.path / f".{name}.tmp"
        try:
            pq.write_table(pa.Table.from_pylist(self.pending, schema=self.schema), tmp)
            os.replace(tmp, self.path / name)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise _cannot_write(self.path / name, e) from None
        self.pending = []

    def close(self) -> None:
        if self.fd >= 0:
            try:
                self.flush()
            finally:
                os.close(self.fd)
                self.fd = -1


def open_results(path: Path, fmt: str = "jsonl") -> ResultsFile:
    """The results at ``path`` in format ``fmt`` (``jsonl`` or ``parquet``), opened to resume."""
    if fmt == "jsonl":
        if Path(path).is_dir():
            raise BadRequest(f"--out {echo(str(path))} is a folder; give a file such as results.jsonl")
        return JsonlResults(path)
    if fmt == "parquet":
        return ParquetResults(path)
    raise BadRequest(f"unknown format {echo(fmt)}; known: {', '.join(FORMATS)}")
