"""The JSONL sink: trace records appended to a file, one JSON object per line.

Rule: the only module that writes trace files. Records are redacted (``_redact``) and
serialised when they are written, never on the hot path. Each ``write`` is one ``write(2)`` of
whole lines on a file opened with ``O_APPEND``, so several sinks (several cores, several
processes) appending to their own or even the same file never interleave partial lines.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lash_kernel.plugin import TraceRecord
from lash_tracing._redact import redact
from lash_tracing._schema import record_to_line

__all__ = ["JsonlSink", "encode_records"]


def _default(obj: object) -> Any:
    """JSON fallback for attribute values that are not JSON types (sets, paths, attrs objects)."""
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    return str(obj)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def encode_records(records: Iterable[TraceRecord]) -> bytes:
    """Redact and serialise ``records`` as JSONL.

    Args:
        records: trace records, in the order they are to be written.
    Returns:
        UTF-8 bytes: one compact JSON object per record, each ending with ``\\n``
        (``b""`` for no records).
    """
    encode = _ENCODER.encode
    parts = [encode(record_to_line(r, redact(r.attributes))) for r in records]
    if not parts:
        return b""
    return ("\n".join(parts) + "\n").encode("utf-8")


class JsonlSink:
    """Append trace records to one JSONL file.

    The file (and missing parent directories) is created when the sink is built, so a bad path
    fails early. Thread-safe.

    Args:
        path: the file to append to; ``~`` is expanded, a relative path is relative to the
            current directory at construction.

    Raises:
        OSError: the file cannot be opened for appending.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().absolute()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """True once ``close()`` ran."""
        return self._fd is None

    def write(self, records: Iterable[TraceRecord]) -> int:
        """Append ``records`` (redacted) to the file and hand them to the OS.

        Args:
            records: trace records, in order.
        Returns:
            The number of bytes written (0 when there was nothing to write).
        Raises:
            ValueError: the sink is closed.
            OSError: the write failed (disk full, file system gone); nothing is retried.
        """
        data = encode_records(records)
        if not data:
            return 0
        with self._lock:
            if self._fd is None:
                raise ValueError(f"trace sink {self.path} is closed")
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        return len(data)

    def close(self) -> None:
        """Close the file. Idempotent."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r}{', closed' if self.closed else ''})"
