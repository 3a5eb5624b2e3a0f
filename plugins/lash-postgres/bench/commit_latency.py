"""Commit latency: SQLite (synchronous=NORMAL, as SqliteStore sets it, and FULL) vs PostgreSQL.

Each store gets one session and N sequential turn commits of one user + one assistant message
(a realistic small turn: nodes, usage, turn row and head in one transaction); the same for
fenced commits (a lease claimed first, checked in every commit), and lease claims alone.
Prints median and p95 per operation in milliseconds.

    python plugins/lash-postgres/bench/commit_latency.py [N]   # default 300

PostgreSQL: ``LASH_BENCH_PG_DSN`` if set, else a throwaway local cluster (initdb/pg_ctl, fsync
on, ``synchronous_commit=on``: every commit waits for its WAL flush, like SQLite FULL).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from lash_kernel import SqliteStore
from lash_kernel.plugin import Finished, Message, Node, Store, TextPart, TokenUsage, TurnCommit, UsageKey, UsageLedger
from lash_postgres import PostgresStore
from lash_postgres.cluster import throwaway_cluster


def _commit(sid: str, i: int, leaf: str | None, lease: object | None) -> TurnCommit:
    user = Node(node_id=f"u{i}", parent_id=leaf, frame_id="f0", turn_id=f"t{i}", kind="message",
                payload=Message.user(f"question {i} " + "x" * 200), created_at=float(i))
    answer = Node(node_id=f"a{i}", parent_id=f"u{i}", frame_id="f0", turn_id=f"t{i}", kind="message",
                  payload=Message(role="assistant", parts=(TextPart(text=f"answer {i} " + "y" * 400),)),
                  created_at=float(i))
    usage = UsageLedger.of([(UsageKey(source="turn", model="m"), TokenUsage(input_tokens=100, output_tokens=50), 1)])
    return TurnCommit(session_id=sid, turn_id=f"t{i}", expected_head_revision=i, nodes=(user, answer), usage=usage,
                      outcome=Finished(text=f"answer {i}"), committed_at=float(i), lease=lease)  # type: ignore[arg-type]


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"median {statistics.median(ordered) * 1000:7.3f} ms   p95 {p95 * 1000:7.3f} ms"


def _bench(name: str, store: Store, n: int) -> None:
    for fenced in (False, True):
        sid = uuid.uuid4().hex
        store.open_session(sid, mode="standard", frame_id="f0", now=0.0)
        lease = store.claim_lease(sid, owner="bench", token="tok", ttl_s=1e9, now=0.0) if fenced else None
        samples, leaf = [], None
        for i in range(n):
            commit = _commit(sid, i, leaf, lease)
            start = time.perf_counter()
            leaf = store.commit_turn(commit).leaf_id
            samples.append(time.perf_counter() - start)
        print(f"{name:34s} {'fenced commit' if fenced else 'commit':14s} {_ms(samples)}")
    sid = uuid.uuid4().hex
    store.open_session(sid, mode="standard", frame_id="f0", now=0.0)
    samples = []
    for i in range(n):
        start = time.perf_counter()
        store.claim_lease(sid, owner="bench", token=f"tok{i}", ttl_s=0.5, now=float(i))  # each takes over
        samples.append(time.perf_counter() - start)
    print(f"{name:34s} {'lease claim':14s} {_ms(samples)}")


def _sqlite(path: Path, synchronous: str) -> SqliteStore:
    store = SqliteStore(path)
    # SqliteStore sets NORMAL; FULL syncs the WAL on every commit (the bench's own pragma).
    store._conn.execute(f"PRAGMA synchronous = {synchronous}")
    return store


def main(n: int) -> None:
    """Run every store with ``n`` commits each and print one line per store and operation."""
    print(f"{n} sequential commits per row (2 message nodes + usage each), one process, "
          f"python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        for synchronous in ("NORMAL", "FULL"):
            with _sqlite(Path(tmp) / f"{synchronous}.db", synchronous) as store:
                _bench(f"sqlite synchronous={synchronous}", store, n)
    dsn = os.environ.get("LASH_BENCH_PG_DSN")
    if dsn:
        with PostgresStore(dsn) as store:
            _bench("postgres (LASH_BENCH_PG_DSN)", store, n)
        return
    with throwaway_cluster() as cluster, PostgresStore(cluster) as store:
        _bench("postgres 15 local, sync commit", store, n)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
