"""Durability with real OS processes: the view is restored by a new process from the SQLite
file alone, and a process SIGKILLed while the background observer runs loses only that run,
which the next ``core.session(id)`` redoes. At no point is a message left out of the view
without a committed observation covering it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from om_helpers import Models, words

from lash_kernel import LashCore
from lash_kernel.plugin import TokenUsage
from lash_kernel.testing import ScriptedModel
from lash_observational_memory import Observation, observation_block
from lash_observational_memory._memory import load_records

TESTS = Path(__file__).resolve().parent

CHILD = textwrap.dedent(
    """
    import json, os, sys
    import anyio
    from lash_kernel import LashCore, SqliteStore
    from lash_kernel.plugin import TokenUsage
    from lash_kernel.testing import ScriptedModel
    from om_helpers import SMALL, words

    class Observer(ScriptedModel):
        \"\"\"Answers the first ``answer`` calls; the next one marks the file and hangs.\"\"\"
        def __init__(self, answer):
            super().__init__(model="observer-model")
            self.answer = answer
        async def stream(self, request):
            if len(self.requests) >= self.answer:
                open(os.environ["OM_MARKER"], "w").close()
                await anyio.sleep(3600)  # the test kills the process here
            async for item in super().stream(request):
                yield item

    async def main(db, mode):
        main_model = ScriptedModel(model="main")
        observer = Observer(answer=int(os.environ.get("OM_ANSWER", "1000")))
        for i in range(10):
            observer.enqueue_text(f"- [medium] 2025-06-01: observed chunk {i}", usage=TokenUsage(input_tokens=100))
        with LashCore(model_client=main_model, model="main", store=SqliteStore(db), allow=["observational_memory"],
                      model_clients={"observer": observer, "reflector": ScriptedModel()},
                      plugin_config={"observational_memory": SMALL}) as core:
            session = core.session("s")
            turns = int(os.environ.get("OM_TURNS", "1"))
            size = int(os.environ.get("OM_SIZE", "100"))
            for k in range(turns):
                main_model.enqueue_text(f"answer {k}")
                await session.turn(f"q{k} " + words(size, f"q{k}")).run()
                if mode == "drain":
                    await core.drain()
            print(json.dumps([m.text for m in main_model.requests[-1].messages]))

    anyio.run(main, sys.argv[1], sys.argv[2])
    """
)


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, **extra}


def _covered_view(core: LashCore, session_id: str):
    """(history, view) of the session as committed, read without starting any work."""
    host = core.plugin_host
    history = host.history(session_id)
    return history, load_records(host, session_id).view(history)


def _assert_nothing_lost(history, view) -> None:
    """Every message left out of the view is covered by a committed, verified observation."""
    covered = {i for o in view.chain for i in range(o.start, o.end)}
    assert all(i in covered for i in range(view.through)), (view.through, sorted(covered))


@pytest.mark.anyio
async def test_a_new_process_restores_the_same_view(tmp_path, models):
    db = tmp_path / "lash.db"
    for i in range(10):
        models.observer.enqueue_text(f"- [high] 2025-07-0{i % 9 + 1}: parent fact {i}")
    with models.core(db) as core:
        session = core.session("s")
        for k in range(4):
            models.main.enqueue_text(f"answer {k}")
            await session.turn(f"q{k} " + words(100, f"q{k}")).run()
            await core.drain()
        block = observation_block(core.plugin_host, "s")
        history, view = _covered_view(core, "s")
    assert block is not None and view.through > 0
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), "once"], capture_output=True, text=True, timeout=120,
        env=_env(OM_SIZE="3"),
    )
    assert proc.returncode == 0, proc.stderr
    sent = json.loads(proc.stdout)
    assert sent[0] == block  # byte-identical block, rebuilt from the file by another process
    assert sent[1:-1] == [m.text for m in history[view.through :]]


def test_a_process_killed_mid_observer_loses_only_that_run(tmp_path):
    db, marker = tmp_path / "lash.db", tmp_path / "marker"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), "drain"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=_env(OM_MARKER=str(marker), OM_ANSWER="3", OM_TURNS="6"),
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the observer never reached its fourth call"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()

    # as the kill left it (a core outside an event loop starts no background work)
    main = ScriptedModel(model="main")
    observer = ScriptedModel(model="observer-model")
    models = Models(observer=observer)
    models.main = main
    with models.core(db) as core:
        history, view = _covered_view(core, "s")
        assert len(history) == 8  # four turns committed; the observer hung after the fourth
        assert [(o.start, o.end) for o in view.chain] == [(0, 2), (2, 4), (4, 6)]
        assert view.through == 4  # activated before turn 3's model call, committed with it
        _assert_nothing_lost(history, view)
        # three observer calls were booked; the killed one never returned, so it cost nothing
        assert core.session("s").usage_report().by_source["observer"].input_tokens == 300
        assert len(core.session("s").nodes(Observation.KIND)) == 3

    async def reopen() -> None:
        observer.enqueue_text("- [medium] 2025-06-02: redone chunk", usage=TokenUsage(input_tokens=100))
        with models.core(db) as core:
            core.session("s")  # opening it redoes the lost run
            await core.drain()
            core.session("s")  # nothing left to redo: no second run
            await core.drain()
            history, view = _covered_view(core, "s")
            assert [(o.start, o.end) for o in view.chain] == [(0, 2), (2, 4), (4, 6), (6, 8)]
            assert view.chain[-1].lines[0].text == "redone chunk"
            assert len(core.session("s").nodes(Observation.KIND)) == 4
            assert len(observer.requests) == 1
            assert core.session("s").usage_report().by_source["observer"].input_tokens == 400
            _assert_nothing_lost(history, view)

    import anyio

    anyio.run(reopen)
