"""A throwaway PostgreSQL cluster for tests and benchmarks (not for production).

``throwaway_cluster()`` runs ``initdb`` into a temporary directory, starts ``postgres`` on a free
port listening on 127.0.0.1 only (socket in the same directory, ``trust`` auth, ``fsync`` kept
on), yields its DSN and stops it with ``pg_ctl -m immediate stop`` on exit, removing the
directory. As root, ``initdb`` and ``pg_ctl`` run as the ``postgres`` user (PostgreSQL refuses
to run as root). The server binaries are found on ``PATH`` or under
``/usr/lib/postgresql/<version>/bin`` (Debian's layout).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["find_server_bin", "throwaway_cluster"]


def find_server_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when no server is installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def throwaway_cluster(bindir: Path | None = None) -> Iterator[str]:
    """Start a fresh cluster and yield its DSN (``postgresql://postgres@127.0.0.1:PORT/postgres``).

    Args:
        bindir: where ``initdb`` / ``pg_ctl`` are; default ``find_server_bin()``.
    Raises:
        RuntimeError: no server binaries, or ``initdb`` / ``pg_ctl start`` failed (its output
            is in the message).
    """
    bindir = bindir or find_server_bin()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql")
    root = os.geteuid() == 0
    tmp = Path(tempfile.mkdtemp(prefix="lash-pg-"))
    data = tmp / "data"
    run_as = ["runuser", "-u", "postgres", "--"] if root else []
    if root:
        shutil.chown(tmp, "postgres")
        os.chmod(tmp, 0o700)
    port = _free_port()

    def run(*args: str) -> None:
        proc = subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=120, cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")

    started = False
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        options = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(tmp / "log"), "-o", options, "start")
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            with contextlib.suppress(Exception):
                run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(tmp, ignore_errors=True)
