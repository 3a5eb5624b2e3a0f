"""Submitting turns from any process and running them on workers (``LashCore.submit``,
``wait_turn``, ``Worker``, ``lash worker`` / ``lash submit``), on real SQLite files; the crash
case with a real worker process killed mid-turn."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from lash_kernel import LashCore, Worker
from lash_kernel.errors import (
    ConfigError,
    SessionNotFoundError,
    StoreError,
    TurnNotPendingError,
    TurnWaitTimeoutError,
)
from lash_kernel.outcomes import Finished, Stopped
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import EchoModel

pytestmark = pytest.mark.anyio


def _core(db: Path, model: EchoModel | None = None, **kwargs: object) -> LashCore:
    return LashCore(
        model_client=model or EchoModel(), model="echo", store=SqliteStore(db), entry_points=False, **kwargs
    )


def _calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


async def test_two_workers_run_every_submitted_turn_once_in_order(tmp_path: Path) -> None:
    db, log = tmp_path / "w.db", tmp_path / "calls.log"
    submitted: dict[str, list[str]] = {}
    with _core(db) as host:
        for k in range(3):
            for s in range(4):
                submitted.setdefault(f"s{s}", []).append(host.submit(f"s{s}", f"s{s} turn {k}"))
    with _core(db, EchoModel(delay_s=0.01, log_path=log)) as a, _core(db, EchoModel(delay_s=0.01, log_path=log)) as b:
        wa, wb = Worker(a, concurrency=2, poll_interval_s=0.02), Worker(b, concurrency=2, poll_interval_s=0.02)
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: wa.run(until_idle=True))
            tg.start_soon(lambda: wb.run(until_idle=True))
    with _core(db) as host:
        for sid, turn_ids in submitted.items():
            assert [t.turn_id for t in host.store.list_turns(sid)] == turn_ids  # submission order
            assert [t.revision for t in host.store.list_turns(sid)] == [1, 2, 3]
            assert host.store.pending_inputs(sid) == []
            record = await host.wait_turn(sid, turn_ids[-1], timeout=1)
            assert record.outcome == Finished(text=f"echo: {sid} turn 2")
            history = host.session(sid).history()
            assert [m.text for m in history if m.role == "user"] == [f"{sid} turn {k}" for k in range(3)]
    calls = _calls(log)
    assert sorted(c["turn_id"] for c in calls) == sorted(t for ids in submitted.values() for t in ids)
    assert wa.stats.committed + wb.stats.committed == 12
    assert wa.stats.failed == wb.stats.failed == 0


async def test_submit_is_idempotent_per_turn_id(tmp_path: Path) -> None:
    with _core(tmp_path / "w.db") as core:
        tid = core.submit("s", "first", turn_id="t1")
        assert core.submit("s", "changed my mind", turn_id="t1") == "t1"
        pending = core.store.pending_inputs("s")
        assert [(p.turn_id, p.message.text) for p in pending] == [("t1", "first")]
        await Worker(core, poll_interval_s=0.01).run(until_idle=True)
        record = await core.wait_turn("s", tid)
        assert core.submit("s", "again", turn_id="t1") == "t1"  # committed: nothing recorded
        assert core.store.pending_inputs("s") == []
        assert await core.wait_turn("s", tid, timeout=0) == record
        assert [t.turn_id for t in core.store.list_turns("s")] == ["t1"]


async def test_wait_turn_errors(tmp_path: Path) -> None:
    with _core(tmp_path / "w.db") as core:
        tid = core.submit("s", "nobody serves this")
        started = time.monotonic()
        with pytest.raises(TurnWaitTimeoutError) as info:
            await core.wait_turn("s", tid, timeout=0.1)
        assert isinstance(info.value, TimeoutError)
        assert time.monotonic() - started < 5
        assert [p.turn_id for p in core.store.pending_inputs("s")] == [tid]  # still pending
        core.store.discard_input("s", tid)
        with pytest.raises(TurnNotPendingError):
            await core.wait_turn("s", tid, timeout=5)
        with pytest.raises(TurnNotPendingError):
            await core.wait_turn("s", "never-submitted")
        with pytest.raises(SessionNotFoundError):
            await core.wait_turn("no-such-session", tid)


async def test_worker_skips_a_session_another_writer_holds(tmp_path: Path) -> None:
    with _core(tmp_path / "w.db") as core:
        core.submit("held", "wait for the lease", turn_id="h1")
        core.submit("free", "go", turn_id="f1")
        lease = core.store.claim_lease("held", owner="elsewhere:1", token="x" * 32, ttl_s=600, now=time.time())
        worker = Worker(core, poll_interval_s=0.01)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            while core.store.get_turn("free", "f1") is None:
                await anyio.sleep(0.01)
            await anyio.sleep(0.1)  # a few more polls
            assert core.store.get_turn("held", "h1") is None
            assert [p.turn_id for p in core.store.pending_inputs("held")] == ["h1"]
            core.store.release_lease(lease)
            with anyio.fail_after(30):
                await core.wait_turn("held", "h1")
            worker.stop()
        assert worker.stats.committed == 2


async def test_stop_lets_running_turns_finish_then_cancels_after_grace(tmp_path: Path) -> None:
    with _core(tmp_path / "w.db", EchoModel(delay_s=0.3)) as core:
        core.submit("quick", "q", turn_id="q1")
        worker = Worker(core, poll_interval_s=0.01, grace_s=10)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            while not worker.running:
                await anyio.sleep(0.01)
            worker.stop()
        assert core.store.get_turn("quick", "q1").outcome == Finished(text="echo: q")  # finished, not cancelled

    with _core(tmp_path / "w2.db", EchoModel(delay_s=60)) as core:
        core.submit("slow", "s", turn_id="s1")
        core.submit("slow", "never started", turn_id="s2")
        worker = Worker(core, poll_interval_s=0.01, grace_s=0.2)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            while not worker.running:
                await anyio.sleep(0.01)
            worker.stop()
        outcome = core.store.get_turn("slow", "s1").outcome
        assert isinstance(outcome, Stopped) and outcome.reason == "cancelled"
        assert [p.turn_id for p in core.store.pending_inputs("slow")] == ["s2"]  # not started after stop()


def test_worker_arguments_are_checked(tmp_path: Path) -> None:
    with _core(tmp_path / "w.db") as core:
        assert Worker(core).running == ()  # built outside an event loop
        for bad in ({"concurrency": 0}, {"poll_interval_s": 0}, {"grace_s": -1}):
            with pytest.raises(ConfigError):
                Worker(core, **bad)  # type: ignore[arg-type]


def _lash(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lash_kernel", *args], env=env, cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_a_worker_killed_mid_turn_leaves_it_to_another_that_commits_it_once(tmp_path: Path) -> None:
    """Real processes: ``lash worker`` is SIGKILLed while its model call runs; a second worker
    re-runs the turn (the call is made again: at-least-once) and commits it exactly once."""
    db, log = tmp_path / "w.db", tmp_path / "calls.log"
    env = {**os.environ, "LASH_PLUGINS": "", "LASH_ECHO_LOG": str(log), "LASH_ECHO_DELAY_S": "30"}
    submitted = subprocess.run(
        [sys.executable, "-m", "lash_kernel", "submit", "--store", str(db), "s1", "survive a crash"],
        env=env, cwd=tmp_path, text=True, capture_output=True, check=True,
    )
    tid = submitted.stdout.strip()
    common = ["worker", "--store", str(db), "--model-client", "lash_kernel.testing:echo_model_from_env",
              "--poll-interval", "0.05", "--lease-ttl", "1"]
    doomed = _lash(*common, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not _calls(log) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [c["turn_id"] for c in _calls(log)] == [tid]
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate()
    with SqliteStore(db) as store:
        assert store.get_turn("s1", tid) is None
        assert [p.turn_id for p in store.pending_inputs("s1")] == [tid]
    rescuer = _lash(*common, "--until-idle", env={**env, "LASH_ECHO_DELAY_S": "0"}, cwd=tmp_path)
    _, err = rescuer.communicate(timeout=60)
    assert rescuer.returncode == 0, err
    waited = subprocess.run(
        [sys.executable, "-m", "lash_kernel", "submit", "--store", str(db), "s1", "survive a crash",
         "--turn-id", tid, "--wait", "--timeout", "5", "--json"],
        env=env, cwd=tmp_path, text=True, capture_output=True,
    )
    assert waited.returncode == 0, waited.stderr
    answer = json.loads(waited.stdout)
    assert (answer["turn_id"], answer["revision"], answer["text"]) == (tid, 1, "echo: survive a crash")
    calls = _calls(log)
    assert [(c["turn_id"], c["call"]) for c in calls] == [(tid, 1), (tid, 1)]  # the call was made twice
    assert len({c["pid"] for c in calls}) == 2
    with SqliteStore(db) as store:
        assert [t.turn_id for t in store.list_turns("s1")] == [tid]
        assert store.pending_inputs("s1") == []


class _FlakyStore(SqliteStore):
    """A SQLite store whose first ``failures`` turn commits fail with ``StoreError``."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures

    def commit_turn(self, commit):  # type: ignore[no-untyped-def]
        if self.failures > 0:
            self.failures -= 1
            raise StoreError("the database went away (scripted)")
        return super().commit_turn(commit)


async def test_a_failed_turn_stays_pending_and_is_retried_with_backoff(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    store = _FlakyStore(tmp_path / "w.db", failures=2)
    with LashCore(model_client=EchoModel(log_path=log), model="echo", store=store, entry_points=False) as core:
        tid = core.submit("s", "try again")
        worker = Worker(core, poll_interval_s=0.01)
        with anyio.fail_after(30):
            await worker.run(until_idle=True)
        assert (worker.stats.failed, worker.stats.committed) == (2, 1)
        assert [t.turn_id for t in core.store.list_turns("s")] == [tid]
        assert core.store.pending_inputs("s") == []
    assert [c["turn_id"] for c in _calls(log)] == [tid] * 3  # each attempt called the model again
