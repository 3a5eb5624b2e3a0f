"""Fixtures: ``pg_dsn`` (a fresh database, from ``lash_postgres.testing``: a throwaway
PostgreSQL cluster, or ``LASH_TEST_PG_DSN`` for your own server) and ``workers``
(real worker processes, ``lash dbos worker``, that a test can SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lash_postgres.testing import pg_dsn, pg_server

__all__ = ["pg_dsn", "pg_server"]

HERE = Path(__file__).parent


class Workers:
    """Worker processes (``python -m lash_kernel dbos worker``) of one test, each a real OS process."""

    def __init__(self, dsn: str, tmp: Path, env: dict[str, str]) -> None:
        self.dsn, self.tmp, self.env = dsn, tmp, env
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *, concurrency: int = 4) -> subprocess.Popen[bytes]:
        """Start one worker; returns its process."""
        env = {**os.environ, **self.env, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        with open(self.tmp / f"worker-{len(self.procs)}.log", "wb") as log:  # the child keeps its own fd
            proc = subprocess.Popen(
                [sys.executable, "-m", "lash_kernel", "dbos", "worker", "--store", self.dsn, "--factory",
                 "dbos_testapp:make_core", "--concurrency", str(concurrency), "--heartbeat", "0.5"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL ``proc`` and reap it."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def stop_all(self) -> None:
        for proc in self.alive():
            proc.terminate()
        deadline = time.monotonic() + 15
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("worker-*.log")))


@pytest.fixture
def workers(pg_dsn: str, tmp_path: Path) -> Iterator[Workers]:
    """Start worker processes with ``workers.start()``; all are stopped after the test."""
    env = {"LASH_DBOS_TEST_LOG": str(tmp_path / "calls.log"), "LASH_DBOS_TEST_HOLD": str(tmp_path / "hold")}
    pool = Workers(pg_dsn, tmp_path, env)
    yield pool
    pool.stop_all()
