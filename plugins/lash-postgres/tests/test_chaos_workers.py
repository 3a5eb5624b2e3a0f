"""Chaos: four ``lash worker`` processes on one PostgreSQL database, one of them SIGKILLed and
restarted every ~2 s, while 200 turns on 20 sessions are submitted and run.

The model is ``lash_kernel.testing.EchoModel`` (``--model-client
lash_kernel.testing:echo_model_from_env``): 50 ms per call, every call appended to one log file
shared by all processes. Each turn makes exactly one model call, so every line beyond 200 is a
model call made again for a turn whose first worker was killed (at-least-once without DBOS).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from lash_kernel import LashCore
from lash_kernel.plugin import MESSAGE_KIND
from lash_kernel.testing import EchoModel

SESSIONS = 20
TURNS_PER_SESSION = 10
WORKERS = 4
KILL_EVERY_S = 2.0
DEADLINE_S = 120.0


def _wait_ready(err_file: Path) -> None:
    """Wait until the worker writing ``err_file`` said it is ready (signal handlers installed)."""
    deadline = time.monotonic() + 60
    while b"worker ready" not in err_file.read_bytes():
        assert time.monotonic() < deadline, f"worker never got ready: {err_file.read_text()}"
        time.sleep(0.02)


def _start_worker(dsn: str, env: dict[str, str], logs: Path, n: int) -> tuple[subprocess.Popen[bytes], Path]:
    path = logs / f"worker-{n}.err"
    err = open(path, "wb")  # the child keeps its own descriptor; ours is closed below
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "lash_kernel", "worker", "--store", dsn, "--concurrency", "4",
             "--poll-interval", "0.05", "--lease-ttl", "2", "--grace", "5",
             "--model-client", "lash_kernel.testing:echo_model_from_env"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        ), path
    finally:
        err.close()


def test_workers_killed_at_random_commit_every_submitted_turn_exactly_once(pg_dsn: str, tmp_path: Path) -> None:
    calls_log = tmp_path / "calls.log"
    env = {
        **os.environ, "LASH_PLUGINS": "postgres", "LASH_ECHO_DELAY_S": "0.05", "LASH_ECHO_LOG": str(calls_log),
    }
    rng = random.Random(1234)
    submitted: dict[str, list[tuple[str, str]]] = {f"chaos-{s:02d}": [] for s in range(SESSIONS)}
    kills = 0
    with LashCore(model_client=EchoModel(), model="echo", store=pg_dsn, allow=["postgres"]) as host:

        def submit(k: int) -> None:
            for sid, turns in submitted.items():
                prompt = f"{sid} turn {k}"
                turns.append((host.submit(sid, prompt), prompt))

        # Half the turns before the workers start; the rest one round per session at a time,
        # each round a moment before a kill, so kills land while turns run however fast they go.
        for k in range(TURNS_PER_SESSION // 2):
            submit(k)
        waves = list(range(TURNS_PER_SESSION // 2, TURNS_PER_SESSION))
        workers = [_start_worker(pg_dsn, env, tmp_path, n) for n in range(WORKERS)]
        started = time.monotonic()
        try:
            next_kill = time.monotonic() + KILL_EVERY_S
            while waves or host.store.sessions_with_pending_input(limit=1):
                assert time.monotonic() - started < DEADLINE_S, "the workers did not finish in time"
                time.sleep(0.05)
                if time.monotonic() >= next_kill:
                    if waves:
                        submit(waves.pop(0))
                        time.sleep(rng.uniform(0.05, 0.3))
                    n = rng.randrange(WORKERS)
                    workers[n][0].send_signal(signal.SIGKILL)
                    workers[n][0].wait()
                    kills += 1
                    workers[n] = _start_worker(pg_dsn, env, tmp_path, WORKERS + kills)
                    next_kill = time.monotonic() + KILL_EVERY_S
            elapsed = time.monotonic() - started
        finally:
            for w, err_file in workers:
                _wait_ready(err_file)  # a worker still importing would die of SIGTERM's default action
                w.send_signal(signal.SIGTERM)
            codes = [w.wait(timeout=60) for w, _ in workers]
        assert codes == [0] * WORKERS, f"a worker did not stop cleanly on SIGTERM: {codes}"

        store = host.store
        total = 0
        for sid, turns in submitted.items():
            records = store.list_turns(sid)
            assert [r.turn_id for r in records] == [tid for tid, _ in turns], f"{sid}: committed != submitted"
            assert [r.revision for r in records] == list(range(1, TURNS_PER_SESSION + 1)), f"{sid}: revisions"
            assert store.pending_inputs(sid) == []
            for record, (_, prompt) in zip(records, turns, strict=True):
                nodes = store.load_nodes(sid, record.node_ids)
                messages = [n.message for n in nodes if n.kind == MESSAGE_KIND]
                assert [(m.role, m.text) for m in messages] == [("user", prompt), ("assistant", f"echo: {prompt}")]
            total += len(records)
        assert total == SESSIONS * TURNS_PER_SESSION

    calls = [json.loads(line) for line in calls_log.read_text().splitlines()]
    per_turn = Counter(c["turn_id"] for c in calls)
    every_turn = {tid for turns in submitted.values() for tid, _ in turns}
    assert set(per_turn) == every_turn  # every call belongs to a submitted turn, every turn was called
    assert all(c["call"] == 1 for c in calls)  # one model call per turn attempt
    rerun_calls = len(calls) - len(every_turn)
    rerun_turns = sum(1 for n in per_turn.values() if n > 1)
    assert kills >= TURNS_PER_SESSION // 2
    print(
        f"\nchaos: {total} turns committed once each in {elapsed:.1f} s; {kills} workers SIGKILLed; "
        f"{len(calls)} model calls, {rerun_calls} of them re-runs ({rerun_turns} turns re-run)"
    )
