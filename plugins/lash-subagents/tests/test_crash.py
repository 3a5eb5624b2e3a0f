"""A parent process killed (SIGKILL) while a child agent runs: the children that finished are
durable, linked to the parent turn that never committed, and ``tree_report`` still counts
their usage, exactly once (while ``Session.usage_report()`` holds committed turns only)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from lash_kernel import SqliteStore
from lash_kernel.plugin import TokenUsage
from lash_subagents import tree_ledger, tree_report

PARENT = textwrap.dedent(
    """
    import os, sys
    import anyio
    from lash_kernel import LashCore, SqliteStore
    from lash_kernel.plugin import TokenUsage, tool
    from lash_kernel.testing import ScriptedModel

    @tool(read_only=True)
    async def slow() -> str:
        '''Takes forever.'''
        open(os.environ["MARKER"], "w").close()
        await anyio.sleep(3600)  # the test kills the process here
        return "never"

    def U(n):
        return TokenUsage(input_tokens=n, output_tokens=10 * n, cache_read_input_tokens=n)

    class Routed:
        provider_name = "scripted"
        def __init__(self, routes):
            self.routes = routes
        async def stream(self, request):
            first = next(m for m in request.messages if m.role == "user").text
            async for item in self.routes[first].stream(request):
                yield item
        async def aclose(self):
            pass

    def spawn(task):
        return ("spawn_agent", {"task": task})

    root = ScriptedModel()
    root.enqueue_tool_calls(spawn("first"), usage=U(1))      # turn 1: committed
    root.enqueue_text("turn 1 done", usage=U(2))
    root.enqueue_tool_calls(spawn("second"), usage=U(4))     # turn 2: killed mid-turn
    root.enqueue_tool_calls(spawn("third"), usage=U(8))
    first = ScriptedModel().enqueue_text("first answer", usage=U(16))
    second = ScriptedModel().enqueue_text("second answer", usage=U(32))
    third = ScriptedModel().enqueue_tool_calls(("slow", {}), usage=U(64))
    model = Routed({"one": root, "two": root, "first": first, "second": second, "third": third})

    async def main():
        with LashCore(model_client=model, model="m", store=SqliteStore(sys.argv[1]), allow=["subagents"],
                      tools=[slow]) as core:
            session = core.session("root")
            await session.turn("one").run()
            await session.turn("two").run()

    anyio.run(main)
    """
)


def U(n: int) -> TokenUsage:
    return TokenUsage(input_tokens=n, output_tokens=10 * n, cache_read_input_tokens=n)


def test_a_parent_killed_mid_child_keeps_the_finished_childs_usage_in_its_report(tmp_path):
    db, marker = tmp_path / "lash.db", tmp_path / "marker"
    env = {**os.environ, "MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-c", PARENT, str(db)], stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the third child never reached its slow tool"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    with SqliteStore(db) as store:
        [turn1] = store.list_turns("root")  # turn 2 never committed
        assert [p.message.text for p in store.pending_inputs("root")] == ["two"]
        children = store.list_children("root")
        assert len(children) == 3
        first, second, third = children
        assert first.parent_turn_id == turn1.turn_id
        assert second.parent_turn_id == third.parent_turn_id != turn1.turn_id
        assert all(c.parent_session_id == "root" and c.depth == 1 for c in children)
        # the root's ledger: turn 1 only (its own calls and the first child's)
        assert store.usage_ledger("root").total() == U(1) + U(2) + U(16)
        # the second child finished and committed; the third was killed before its commit
        assert store.usage_ledger(second.session_id).total() == U(32)
        assert store.list_turns(third.session_id) == []
        report = tree_report(store, "root")
        assert report.total == U(1) + U(2) + U(16) + U(32)  # the committed calls, each once
        assert report.by_source == {"turn": U(1) + U(2), "subagent": U(16) + U(32)}
        assert tree_ledger(store, second.session_id).total() == U(32)
