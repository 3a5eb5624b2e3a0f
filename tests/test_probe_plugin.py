"""A probe plugin, installed through a ``lash.plugins`` entry point, that uses every agent
capability of 0.2 at once: its own usage source for ``complete``, a child session opened from a
tool, its own graph nodes, a new agent frame, and background work. The parent session's usage
report must equal the sum of every scripted model call's usage, exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from lash_kernel import LashCore, SqliteStore
from lash_kernel.testing import ScriptedModel
from lash_kernel.usage import TokenUsage

PROBE = '''
"""The probe plugin: every capability a plugin may use (see tests/test_probe_plugin.py)."""
from typing import ClassVar

import attrs

from lash_kernel.plugin import Message, OpenFrame, SessionSpec, ToolContext, hookimpl, tool


@attrs.frozen(kw_only=True)
class ProbeNote:
    KIND: ClassVar[str] = "probe_note"
    text: str


@tool
async def delegate(task: str, ctx: ToolContext) -> str:
    """Ask a cheaper helper and a child agent."""
    hint = await ctx.complete(f"hint for {task}", source="probe")
    with ctx.open_child_session(SessionSpec(system_prompt="You are a helper."), source="probe_child") as child:
        result = await child.turn(f"{task} ({hint.message.text})").run()
    return result.text


@hookimpl
def lash_register_usage_sources(registry):
    registry.add("probe", "the probe plugin's own calls")
    registry.add("probe_child", "the probe plugin's child agents")


@hookimpl
def lash_register_record_types(registry):
    registry.add(ProbeNote)


@hookimpl
def lash_register_tools(registry):
    registry.add(delegate)


@hookimpl
async def lash_compact(host, session_id, messages):
    if len(messages) < 7:
        return None
    summary = await host.complete("summarise", source="probe")
    return OpenFrame(reason="compaction", seed=(Message.user("summary: " + summary.message.text), messages[-1]))


@hookimpl
def lash_after_turn(host, session_id, turn_id):
    if host.session_info(session_id).depth == 0:
        host.append_nodes(session_id, [ProbeNote(text=f"turn {turn_id}")])


@hookimpl
def lash_turn_committed(host, session_id, turn_id):
    if host.session_info(session_id).depth:
        return

    async def observe():
        note = await host.complete("observe", source="probe", session_id=session_id)
        await host.commit_maintenance(session_id, key=f"observe:{turn_id}", records=[ProbeNote(text=note.message.text)])

    host.spawn(observe, name=f"probe observer {turn_id}")
'''


@pytest.fixture
def probe_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install the probe on sys.path with a dist-info and a ``lash.plugins`` entry point."""
    site = tmp_path / "site"
    info = site / "lash_probe-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "lash_probe.py").write_text(PROBE)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lash-probe\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lash.plugins]\nprobe = lash_probe\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "lash_probe", raising=False)
    return site


class CountingModel(ScriptedModel):
    """A ScriptedModel whose every call reports a distinct usage, summed in ``spent``."""

    def __init__(self) -> None:
        super().__init__()
        self.spent = TokenUsage()
        self._n = 0

    def reply(self, text: str = "", calls=()) -> None:
        self._n += 1
        usage = TokenUsage(input_tokens=self._n, output_tokens=10 * self._n, cache_read_input_tokens=self._n % 3)
        self.spent = self.spent + usage
        if calls:
            self.enqueue_tool_calls(*calls, usage=usage)
        else:
            self.enqueue_text(text, usage=usage)


@pytest.mark.anyio
async def test_probe_uses_every_capability_and_the_ledger_is_exact(tmp_path, probe_installed):
    model = CountingModel()
    # turn 1: the model delegates; the tool calls complete (hint) and a child turn; then answers
    model.reply(calls=[("delegate", {"task": "look"})])
    model.reply("hint-1")
    model.reply("child answer")
    model.reply("answer 1")
    model.reply("observed 1")  # background, after turn 1
    # turn 2 and 3: plain answers (and their background observations)
    model.reply("answer 2")
    model.reply("observed 2")
    # turn 4: 7 messages in view -> lash_compact summarises, then the answer
    model.reply("S")
    model.reply("answer 4")
    model.reply("observed 4")
    with LashCore(model_client=model, model="scripted", store=SqliteStore(tmp_path / "lash.db")) as core:
        assert "probe" in {p.name for p in core.plugins()}
        session = core.session("root")
        results = []
        for question in ("q1", "q2", "q4"):
            results.append(await session.turn(question).run())
            await core.drain()
        assert model.pending == 0
        report = session.usage_report()
        assert report.total == model.spent  # every call, once
        assert set(report.by_source) == {"turn", "probe", "probe_child"}
        [child] = session.children()
        assert child.depth == 1 and child.parent_call_id is not None
        assert results[0].children_usage.keys() == {("probe", "scripted"), ("probe_child", "scripted")}
        assert [f.reason for f in session.frames()] == ["compaction"]
        assert [m.text for m in session.history()][:2] == ["summary: S", "q4"]
        notes = [n.text for n in session.nodes("probe_note")]
        assert notes[0].startswith("turn ") and "observed 1" in notes and "observed 4" in notes
        assert len(notes) == 6


REDO = '''
"""Background work that survives a crash: the work item is committed with the turn, the
result through a maintenance commit keyed by the item, and opening the session redoes the
items without a result."""
import os
from typing import ClassVar

import anyio
import attrs

from lash_kernel.plugin import hookimpl


@attrs.frozen(kw_only=True)
class WorkItem:
    KIND: ClassVar[str] = "redo_work"
    turn_id: str


@attrs.frozen(kw_only=True)
class WorkDone:
    KIND: ClassVar[str] = "redo_done"
    turn_id: str


def start(host, session_id, turn_id):
    async def work():
        if os.environ.get("REDO_MARKER"):
            open(os.environ["REDO_MARKER"], "w").close()
            await anyio.sleep(3600)  # the test kills the process here
        await host.commit_maintenance(session_id, key=f"done:{turn_id}", records=[WorkDone(turn_id=turn_id)])

    host.spawn(work, name=f"redo {turn_id}")


@hookimpl
def lash_register_record_types(registry):
    registry.add(WorkItem)
    registry.add(WorkDone)


@hookimpl
def lash_after_turn(host, session_id, turn_id):
    host.append_nodes(session_id, [WorkItem(turn_id=turn_id)])  # committed with the turn


@hookimpl
def lash_turn_committed(host, session_id, turn_id):
    start(host, session_id, turn_id)


@hookimpl
def lash_session_opened(host, session_id):
    done = {d.turn_id for d in host.nodes(session_id, "redo_done")}
    for item in host.nodes(session_id, "redo_work"):
        if item.turn_id not in done:
            start(host, session_id, item.turn_id)
'''

KILLED = textwrap.dedent(
    """
    import sys
    import anyio
    from lash_kernel import LashCore, SqliteStore
    from lash_kernel.testing import ScriptedModel
    import lash_redo

    async def main():
        model = ScriptedModel().enqueue_text("answer")
        with LashCore(model_client=model, model="m", store=SqliteStore(sys.argv[1]), entry_points=False,
                      plugins=[lash_redo]) as core:
            await core.session("s").turn("question").run()
            await core.drain()

    anyio.run(main)
    """
)


def test_a_process_killed_mid_background_work_loses_only_that_work(tmp_path, monkeypatch):
    (tmp_path / "lash_redo.py").write_text(REDO)
    db, marker = tmp_path / "lash.db", tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "REDO_MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(db)], stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the background work never started"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lash_redo", raising=False)
    import lash_redo

    with SqliteStore(db) as store:
        [turn] = store.list_turns("s")  # the turn is committed, with its work item
        assert [n.kind for n in store.load_graph("s")].count("redo_work") == 1
        assert store.load_nodes_of_kind("s", "redo_done") == ()  # the killed work left nothing

    async def reopen() -> None:
        with LashCore(
            model_client=ScriptedModel(), model="m", store=SqliteStore(db), entry_points=False, plugins=[lash_redo]
        ) as core:
            core.session("s")  # opening it redoes the unfinished item
            await core.drain()
            core.session("s")  # nothing left to redo: no second result
            await core.drain()
            assert core.session("s").nodes("redo_done") == (lash_redo.WorkDone(turn_id=turn.turn_id),)

    anyio.run(reopen)
