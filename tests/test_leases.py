"""The single-writer lease through the public API: a busy session fails fast, a dead holder's
lease is reclaimed with a higher fencing number, the stale holder's commit writes nothing, and
two real processes racing on one session commit exactly once per revision."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import anyio
import pytest

from lash_kernel import LashCore, SqliteStore
from lash_kernel.errors import LeaseLostError, SessionBusyError
from lash_kernel.outcomes import Finished
from lash_kernel.plugin import ToolContext, tool
from lash_kernel.testing import ScriptedModel

pytestmark = pytest.mark.anyio


def blocking_tool():
    started, release = anyio.Event(), anyio.Event()

    @tool
    async def wait(ctx: ToolContext) -> str:
        """Wait until the test releases it."""
        started.set()
        await release.wait()
        return "released"

    return wait, started, release


async def test_a_second_writer_fails_at_once_before_any_model_call(tmp_path):
    wait, started, release = blocking_tool()
    model_a = ScriptedModel().enqueue_tool_calls(("wait", {})).enqueue_text("a done")
    model_b = ScriptedModel().enqueue_text("never")
    db = tmp_path / "lash.db"
    with (
        LashCore(model_client=model_a, model="m", store=SqliteStore(db), entry_points=False, tools=[wait]) as core_a,
        LashCore(model_client=model_b, model="m", store=SqliteStore(db), entry_points=False) as core_b,
    ):
        session_a = core_a.session("s")
        async with anyio.create_task_group() as tg:
            tg.start_soon(session_a.turn("first").run)
            await started.wait()
            with pytest.raises(SessionBusyError):  # another core (same process, same file)
                await core_b.session("s").turn("second").run()
            with pytest.raises(SessionBusyError):  # another handle on the same core
                await core_a.session("s").turn("third").run()
            release.set()
        assert model_b.requests == []
        assert [p.message.text for p in core_b.session("s").pending_inputs()] == []
        # once the turn is committed the lease is free again
        result = await core_b.session("s").turn("second").run()
        assert result.outcome == Finished(text="never")
        assert [t.revision for t in core_b.session("s").turns()] == [1, 2]


async def test_an_expired_lease_is_reclaimed_and_the_stale_holder_commits_nothing(tmp_path):
    now = [1000.0]
    wait, started, release = blocking_tool()
    db = tmp_path / "lash.db"
    model = ScriptedModel().enqueue_tool_calls(("wait", {})).enqueue_text("stale answer")
    with LashCore(
        model_client=model, model="m", store=SqliteStore(db), entry_points=False, tools=[wait],
        clock=lambda: now[0], lease_ttl_s=30,
    ) as core:
        session = core.session("s")
        turn = session.turn("slow question", turn_id="t-stale")
        async with anyio.create_task_group() as tg:

            async def run_stale() -> None:
                with pytest.raises(LeaseLostError):
                    await turn.run()

            tg.start_soon(run_stale)
            await started.wait()
            fencing = core.store.get_lease("s").fencing
            # another writer elsewhere claims it after it expired (its clock says so)
            with SqliteStore(db) as other:
                with pytest.raises(SessionBusyError):
                    other.claim_lease("s", owner="elsewhere:1", token="x", ttl_s=30, now=now[0] + 10)
                lease = other.claim_lease("s", owner="elsewhere:1", token="x", ttl_s=30, now=now[0] + 31)
                assert lease.fencing == fencing + 1
            release.set()
        with SqliteStore(db) as store:
            assert store.list_turns("s") == []  # the stale holder wrote nothing
            assert [p.turn_id for p in store.pending_inputs("s")] == ["t-stale"]  # its input is kept


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_a_lease_left_by_a_dead_process_on_this_machine_is_released_at_once(tmp_path):
    db = tmp_path / "lash.db"
    with SqliteStore(db) as store:
        store.open_session("s", mode="standard", frame_id="f0", now=0.0)
        owner = f"{socket.gethostname()}:{_dead_pid()}"
        held = store.claim_lease("s", owner=owner, token="dead", ttl_s=3600, now=anyio_time())
    model = ScriptedModel().enqueue_text("hello")
    with LashCore(model_client=model, model="m", store=SqliteStore(db), entry_points=False) as core:
        result = await core.session("s").turn("hi").run()
        assert result.outcome == Finished(text="hello")
        assert core.store.get_lease("s").fencing == held.fencing + 1


def anyio_time() -> float:
    import time

    return time.time()


RACER = textwrap.dedent(
    """
    import json, sys
    import anyio
    from lash_kernel import LashCore, SqliteStore
    from lash_kernel.errors import SessionBusyError
    from lash_kernel.plugin import tool
    from lash_kernel.testing import ScriptedModel

    db, name, target = sys.argv[1], sys.argv[2], int(sys.argv[3])

    @tool
    async def pause() -> str:
        "Take a little time, so the writers overlap."
        await anyio.sleep(0.004)
        return "ok"

    async def main():
        wins, busy, i = [], 0, 0
        model = ScriptedModel()
        store = SqliteStore(db)
        with LashCore(model_client=model, model="m", store=store, entry_points=False, tools=[pause]) as core:
            while store.get_session("race").head_revision < target:
                i += 1
                text = f"{name} {i}"
                if model.pending == 0:
                    model.enqueue_tool_calls(("pause", {})).enqueue_text("answer")
                try:
                    with core.session("race") as session:  # a stateless handler: reload every turn
                        await session.turn(text).run()
                    wins.append(text)
                except SessionBusyError:
                    busy += 1
        print(json.dumps({"wins": wins, "busy": busy}))

    anyio.run(main)
    """
)


def test_two_processes_racing_commit_exactly_once_per_revision(tmp_path):
    db = tmp_path / "race.db"
    with SqliteStore(db) as store:
        store.open_session("race", mode="standard", frame_id="f0", now=0.0)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(db), name, "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env,
        )
        for name in ("A", "B")
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    wins = [w for r in results for w in r["wins"]]
    with SqliteStore(db) as store:
        turns = store.list_turns("race")
        assert [t.revision for t in turns] == list(range(1, len(turns) + 1))  # one commit per revision
        assert len(turns) == len(wins) >= 100
        inputs = [n.payload.text for n in store.load_active_path("race") if n.payload.role == "user"]
        assert sorted(inputs) == sorted(wins)  # every won input exactly once, nothing else
        assert store.pending_inputs("race") == []  # a loser never admitted its input
    print(f"\nrace: A won {len(results[0]['wins'])}, busy {results[0]['busy']}; "
          f"B won {len(results[1]['wins'])}, busy {results[1]['busy']}")


async def test_a_running_turn_keeps_its_lease_renewed(tmp_path):
    # lease_ttl_s=3: renewed every second; the turn outlives one lifetime and still commits,
    # and a writer arriving after that lifetime still finds the session busy.
    wait, started, release = blocking_tool()
    db = tmp_path / "lash.db"
    model = ScriptedModel().enqueue_tool_calls(("wait", {})).enqueue_text("done")
    with LashCore(
        model_client=model, model="m", store=SqliteStore(db), entry_points=False, tools=[wait], lease_ttl_s=3
    ) as core:
        turn = core.session("s").turn("long")
        async with anyio.create_task_group() as tg:
            tg.start_soon(turn.run)
            await started.wait()
            first = core.store.get_lease("s")
            await anyio.sleep(4)
            with SqliteStore(db) as other, pytest.raises(SessionBusyError):
                other.claim_lease("s", owner="elsewhere:1", token="x", ttl_s=3, now=anyio_time())
            renewed = core.store.get_lease("s")
            assert renewed.fencing == first.fencing and renewed.expires_at > first.expires_at
            release.set()
        assert turn.result.outcome == Finished(text="done")
