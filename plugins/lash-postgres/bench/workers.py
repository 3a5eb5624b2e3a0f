"""Worker throughput: turns per second with 1, 2 and 4 ``lash worker`` processes.

Each run submits SESSIONS x TURNS turns (``LashCore.submit``) to an empty store, then starts W
worker processes (``lash worker --until-idle --concurrency C``) whose model is
``lash_kernel.testing.EchoModel`` answering after a fixed latency (50 ms by default). Throughput
is measured between the first and the last commit (``TurnRecord.committed_at``), so process
start-up does not count. Every turn makes one model call; a turn's own runtime overhead (lease
claim, admission, prompt, commit, release) adds to the model latency.

    python plugins/lash-postgres/bench/workers.py [--latency 0.05] [--sessions 64] [--turns 5]
        [--concurrency 8] [--workers 1,2,4] [--no-sqlite]

PostgreSQL: ``LASH_BENCH_PG_DSN`` if set, else a throwaway local cluster (initdb/pg_ctl, fsync
on). SQLite (one WAL file shared by the worker processes) is measured for comparison.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from lash_kernel import LashCore
from lash_kernel.testing import EchoModel
from lash_postgres.cluster import throwaway_cluster


def _fresh_pg_db(server: str) -> str:
    name = f"lash_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def _run(store: str, *, workers: int, args: argparse.Namespace) -> tuple[float, int]:
    """Returns (turns per second between first and last commit, turns committed)."""
    env = {**os.environ, "LASH_PLUGINS": "postgres", "LASH_ECHO_DELAY_S": str(args.latency)}
    sessions = [f"bench-{s:03d}" for s in range(args.sessions)]
    with LashCore(model_client=EchoModel(), model="echo", store=store, allow=["postgres"]) as host:
        for k in range(args.turns):
            for sid in sessions:
                host.submit(sid, f"{sid} turn {k}")
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "lash_kernel", "worker", "--store", store, "--until-idle",
                 "--concurrency", str(args.concurrency), "--poll-interval", "0.05",
                 "--model-client", "lash_kernel.testing:echo_model_from_env"],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        codes = [p.wait(timeout=600) for p in procs]
        if any(codes):
            raise SystemExit(f"a worker failed: exit codes {codes}")
        stamps = sorted(r.committed_at for sid in sessions for r in host.store.list_turns(sid))
    span = stamps[-1] - stamps[0]
    return (len(stamps) - 1) / span if span > 0 else float("inf"), len(stamps)


def _report(store: str, workers: int, rate: float, done: int) -> None:
    plural = "s" if workers > 1 else " "
    print(f"{store:10s}  {workers} worker{plural}  {rate:8.1f} turns/s   ({done} turns)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.05, help="model latency per call, seconds")
    parser.add_argument("--sessions", type=int, default=64)
    parser.add_argument("--turns", type=int, default=5, help="turns per session")
    parser.add_argument("--concurrency", type=int, default=8, help="turns at once per worker")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure, comma-separated")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite comparison")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    total = args.sessions * args.turns
    print(
        f"{total} turns ({args.sessions} sessions x {args.turns}), model latency {args.latency * 1000:.0f} ms "
        f"per call, concurrency {args.concurrency} per worker; ideal per worker "
        f"{args.concurrency / args.latency:.0f} turns/s"
    )
    with ExitStack() as stack:
        server = os.environ.get("LASH_BENCH_PG_DSN") or stack.enter_context(throwaway_cluster())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for n in counts:
            _report("postgresql", n, *_run(_fresh_pg_db(server), workers=n, args=args))
        if not args.no_sqlite:
            for n in counts:
                db = tmp / f"bench-{n}-{time.time_ns()}.db"
                _report("sqlite", n, *_run(f"sqlite:///{db}", workers=n, args=args))


if __name__ == "__main__":
    main()
