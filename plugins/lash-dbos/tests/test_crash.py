"""Worker crashes: real worker processes on a real PostgreSQL, SIGKILLed mid-turn.

What "exactly once" means here, checked on the store and the scripted model's call log:
every submitted turn is committed once (revisions 1..n per session, no gaps, no duplicates),
no input is pending or lost (each prompt is in the history once), and no model call whose
result had been journaled was made again: for every call whose result a committed turn used,
no later call with the same request id (``<turn id>:m<n>``) is in the log. Calls that were
cut off before their step was journaled may repeat; the chaos test counts them.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from lash_dbos import TurnClient
from lash_kernel.plugin import MESSAGE_KIND, TextPart, ToolCallPart
from lash_postgres import PostgresStore


def wait_alive(dsn: str, n: int, timeout_s: float = 60.0) -> None:
    """Wait until ``n`` workers have a fresh heartbeat and DBOS's schema exists."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(dsn) as conn:
                fresh = conn.execute(
                    "SELECT count(*) FROM lash_dbos_workers WHERE heartbeat_at > now() - interval '2 seconds'"
                ).fetchone()
                queue = conn.execute("SELECT count(*) FROM dbos.queues").fetchone()
                if fresh and fresh[0] >= n and queue and queue[0] >= 1:
                    return
        except psycopg.Error:
            pass
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} workers came up in {timeout_s} s")


def wait_for(path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def read_log(path: Path) -> list[tuple[str, str]]:
    """``(request_id, nonce)`` per model call, in call order."""
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines() if line.strip()]  # type: ignore[misc]


def check_exactly_once(dsn: str, submitted: dict[str, tuple[str, str]], log: list[tuple[str, str]]) -> dict[str, int]:
    """Assert the exactly-once properties (module docstring) and return counts.

    Args:
        submitted: turn id -> (session id, prompt).
        log: the model call log.
    """
    store = PostgresStore(dsn)
    try:
        by_session: dict[str, list[str]] = {}
        for turn_id, (session_id, _) in submitted.items():
            by_session.setdefault(session_id, []).append(turn_id)
        used_nonces: set[str] = set()
        for session_id, turn_ids in by_session.items():
            turns = store.list_turns(session_id)
            committed = [t.turn_id for t in turns]
            assert Counter(committed) == Counter(turn_ids), f"{session_id}: committed {committed} vs {turn_ids}"
            assert [t.revision for t in turns] == list(range(1, len(turn_ids) + 1)), f"{session_id}: revisions"
            assert store.pending_inputs(session_id) == [], f"{session_id}: input left pending"
            nodes = [n for n in store.load_graph(session_id) if n.kind == MESSAGE_KIND]
            users = Counter(n.message.text for n in nodes if n.message.role == "user")
            assert users == Counter(submitted[t][1] for t in turn_ids), f"{session_id}: user inputs"
            for node in nodes:
                if node.message.role != "assistant":
                    continue
                for part in node.message.parts:
                    if isinstance(part, ToolCallPart):
                        used_nonces.add(part.id.removeprefix("c-"))
                    elif isinstance(part, TextPart) and (m := re.fullmatch(r"done (\w+)", part.text)):
                        used_nonces.add(m.group(1))
        assert len(used_nonces) == 2 * len(submitted)  # two model calls per turn
        last_call = {request_id: nonce for request_id, nonce in log}  # the last call per request id
        nonce_request = {nonce: request_id for request_id, nonce in log}
        repeated_after_journal = [n for n in used_nonces if last_call[nonce_request[n]] != n]
        assert repeated_after_journal == [], "a journaled model call was made again"
        return {
            "turns": len(submitted),
            "sessions": len(by_session),
            "model_calls": len(log),
            "distinct_requests": len(last_call),
            "unjournaled_repeats": len(log) - len(last_call),
        }
    finally:
        store.close()


def test_worker_killed_after_a_journaled_model_call_is_finished_once_by_another(pg_dsn, workers, tmp_path):
    hold = tmp_path / "hold"
    hold.touch()
    first = workers.start()
    wait_alive(pg_dsn, 1)
    client = TurnClient(pg_dsn)
    try:
        turn_id = client.submit("s-crash", "hello")
        wait_for(tmp_path / "hold.reached")  # model call 1 journaled, its tool call running
        workers.start()
        wait_alive(pg_dsn, 2)
        hold.unlink()
        workers.kill(first)
        result = client.result(turn_id, timeout_s=60)
        later = client.submit("s-crash", "again")
        assert client.result(later, timeout_s=60)["revision"] == 2
    finally:
        client.close()
    assert result["revision"] == 1 and result["outcome"] == "finished", workers.logs()
    log = read_log(tmp_path / "calls.log")
    calls = Counter(request_id for request_id, _ in log if request_id.startswith(turn_id))
    assert calls == {f"{turn_id}:m1": 1, f"{turn_id}:m2": 1}  # the journaled call was replayed, not made
    tool_runs = (tmp_path / "calls.log.tools").read_text().split()
    assert len(tool_runs) == 3 and len(set(tool_runs[:2])) == 1  # the interrupted tool ran again (at-least-once)
    check_exactly_once(pg_dsn, {turn_id: ("s-crash", "hello"), later: ("s-crash", "again")}, log)


@pytest.mark.parametrize("seed", [16])
def test_chaos_four_workers_one_killed_every_few_seconds(pg_dsn, workers, tmp_path, seed, monkeypatch):
    rng = random.Random(seed)
    workers.env["LASH_DBOS_TEST_DELAY"] = "0.05"
    for _ in range(4):
        workers.start()
    wait_alive(pg_dsn, 4)
    client = TurnClient(pg_dsn)
    submitted: dict[str, tuple[str, str]] = {}
    kills = 0
    try:
        for i in range(200):
            session_id, prompt = f"s{i % 20:02d}", f"turn {i}"
            submitted[client.submit(session_id, prompt)] = (session_id, prompt)
        deadline = time.monotonic() + 80
        next_kill = time.monotonic() + rng.uniform(2.0, 3.0)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute("SELECT count(*) FROM lash_turns").fetchone()
                if row and row[0] >= len(submitted):
                    break
                if time.monotonic() >= next_kill:
                    victim = rng.choice(workers.alive())
                    workers.kill(victim)
                    kills += 1
                    workers.start()
                    next_kill = time.monotonic() + rng.uniform(2.0, 3.0)
                time.sleep(0.1)
        results = [client.result(t, timeout_s=max(1.0, deadline - time.monotonic())) for t in submitted]
    finally:
        client.close()
    assert all(r["outcome"] == "finished" for r in results)
    counts = check_exactly_once(pg_dsn, submitted, read_log(tmp_path / "calls.log"))
    recoveries = workers.logs().count("recovering the workflows of dead workers")
    print(f"\nchaos: {counts}, workers killed {kills}, recovery passes {recoveries}")
    assert kills >= 1
