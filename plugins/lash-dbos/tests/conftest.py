"""Fixtures: ``pg_dsn`` (a fresh database on a throwaway PostgreSQL cluster, the technique of
lash-postgres's tests: ``LASH_TEST_PG_DSN`` points at your own server instead) and ``workers``
(real worker processes, ``lash dbos worker``, that a test can SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from lash_postgres.cluster import find_server_bin, throwaway_cluster

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The DSN of the server the tests use."""
    dsn = os.environ.get("LASH_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    if find_server_bin() is None:
        pytest.skip("no LASH_TEST_PG_DSN and no PostgreSQL server binaries (apt-get install postgresql)")
    with throwaway_cluster() as started:
        yield started


@pytest.fixture
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards)."""
    name = f"lash_dbos_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(pg_server)._replace(path=f"/{name}"))
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
