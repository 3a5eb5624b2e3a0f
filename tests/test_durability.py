"""Crash safety: kill -9 a process mid-turn; the store holds whole turns and the pending input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lash_kernel.outcomes import Finished
from lash_kernel.runtime.core import LashCore
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import ScriptedModel

CHILD = textwrap.dedent(
    """
    import pathlib, sys, time
    from lash_kernel.runtime.core import LashCore
    from lash_kernel.store.sqlite import SqliteStore
    from lash_kernel.testing import ScriptedModel
    from lash_kernel.tools import tool

    db, marker = sys.argv[1], pathlib.Path(sys.argv[2])

    @tool
    def hang(reason: str) -> str:
        '''Signal the parent, then block forever.'''
        marker.write_text("in tool")
        while True:
            time.sleep(0.05)

    model = ScriptedModel()
    model.enqueue_text("first turn answer")
    model.enqueue_tool_calls(("hang", {"reason": "crash me"}), text="working on it")
    core = LashCore(model_client=model, model="scripted", store=SqliteStore(db), tools=[hang],
                    entry_points=False)
    session = core.session("crashy")
    session.run_sync("first question")
    session.run_sync("second question", turn_id="turn-2")
    """
)


def test_kill_mid_tool_leaves_last_turn_intact_and_input_pending(tmp_path):
    db = tmp_path / "lash.db"
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(marker)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"child exited early: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("child never reached the tool")
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    with SqliteStore(db) as store:
        turns = store.list_turns("crashy")
        assert [t.outcome for t in turns] == [Finished(text="first turn answer")]
        path = store.load_active_path("crashy")
        assert [n.payload.text for n in path] == ["first question", "first turn answer"]
        assert {n.turn_id for n in path} == {turns[0].turn_id}  # nothing of the killed turn
        pending = store.pending_inputs("crashy")
        assert [(p.turn_id, p.message.text) for p in pending] == [("turn-2", "second question")]
        assert store.get_session("crashy").head_revision == 1

    # The session reopens in a new core and keeps working from the last committed turn.
    model = ScriptedModel().enqueue_text("after the crash")
    with SqliteStore(db) as store:
        core = LashCore(model_client=model, model="scripted", store=store, entry_points=False)
        result = core.session("crashy").run_sync("third question")
        assert result.outcome == Finished(text="after the crash")
        assert [m.text for m in model.requests[0].messages] == [
            "first question",
            "first turn answer",
            "third question",
        ]
        assert [p.turn_id for p in store.pending_inputs("crashy")] == ["turn-2"]
