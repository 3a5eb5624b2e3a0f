"""spawn_agent end to end: depth limit, typed results, failures contained, concurrency,
cancellation, progress, and usage summed exactly across nesting levels (SQLite files)."""

from __future__ import annotations

import json

import anyio
import pytest
from subagents_testing import RoutedModel, make_core

from lash_kernel import SessionSpec
from lash_kernel.plugin import Finished, ModelRequest, Stopped, ToolContext, ToolResultPart, tool
from lash_kernel.testing import ScriptedModel

pytestmark = pytest.mark.anyio

SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["title", "score"],
    "additionalProperties": False,
}


def spawn(task: str, capability: str = "explore", **extra) -> tuple[str, dict]:
    return ("spawn_agent", {"task": task, "capability": capability, **extra})


# ------------------------------------------------------------------------------ depth
async def test_a_child_at_depth_five_does_not_see_spawn_agent(tmp_path):
    model = RoutedModel()
    model.reply(None, calls=(spawn("d1", "peer"),))
    for depth in range(1, 5):
        model.reply(f"d{depth}", calls=(spawn(f"d{depth + 1}", "peer"),))
    model.reply("d5", "deepest")
    for depth in range(4, 0, -1):
        model.reply(f"d{depth}", f"up from {depth}")
    model.reply(None, "root done")
    with make_core(tmp_path, model) as core:
        result = await core.session("root").turn("go").run()
        assert result.text == "root done" and model.pending == 0
        for depth in range(1, 5):
            assert "spawn_agent" in {t.name for t in model.routes[f"d{depth}"].requests[0].tools}
        assert "spawn_agent" not in {t.name for t in model.routes["d5"].requests[0].tools}
        info = core.session("root").children()[0]
        for _ in range(4):
            info = core.session(info.session_id).children()[0]
        assert info.depth == 5 and "spawn_agent" in SessionSpec.from_json(info.spec).tools_deny
        assert result.tool_calls[0][1].output == "up from 1"


async def test_a_spawn_past_the_depth_limit_is_a_tool_error(tmp_path):
    model = ScriptedModel()
    model.enqueue_tool_calls(spawn("too deep"))
    model.enqueue_text("fine, I'll do it")
    with make_core(tmp_path, model, plugin_config={"subagents": {"max_depth": 2}}) as core:
        host = core.plugin_host
        parent = "root"
        core.session(parent)
        for _ in range(2):  # a chain opened by the host, which keeps spawn_agent in view
            parent = host.open_child_session(parent, SessionSpec()).id
        assert host.session_info(parent).depth == 2
        result = await core.session(parent).turn("go").run()
        _, res = result.tool_calls[0]
        assert res.is_error and "depth limit" in res.output and "at most 2 deep" in res.output
        assert core.session(parent).children() == []
        assert result.outcome == Finished(text="fine, I'll do it")


# ------------------------------------------------------------------------------ typed results
async def test_a_typed_result_comes_back_as_json(tmp_path):
    model = RoutedModel()
    model.reply(None, calls=(spawn("rate it", output_schema=SCHEMA),))
    model.reply("rate it", calls=(("final_result", {"title": "A", "score": 3}),))
    model.reply(None, "ok")
    with make_core(tmp_path, model) as core:
        result = await core.session("p").turn("go").run()
        _, res = result.tool_calls[0]
        assert not res.is_error and json.loads(res.output) == {"title": "A", "score": 3}


async def test_an_invalid_value_is_fixed_by_the_child(tmp_path):
    model = RoutedModel()
    model.reply(None, calls=(spawn("rate it", output_schema=SCHEMA),))
    model.reply("rate it", calls=(("final_result", {"title": "A", "score": "high"}),))
    model.reply("rate it", calls=(("final_result", {"title": "A", "score": 9}),))
    model.reply(None, "ok")
    with make_core(tmp_path, model) as core:
        result = await core.session("p").turn("go").run()
        _, res = result.tool_calls[0]
        assert not res.is_error and json.loads(res.output) == {"title": "A", "score": 9}
        child_requests = model.routes["rate it"].requests
        assert len(child_requests) == 2
        errors = [p for m in child_requests[1].messages for p in m.parts if isinstance(p, ToolResultPart)]
        assert len(errors) == 1 and errors[0].is_error and "score" in errors[0].output


async def test_prose_instead_of_a_value_is_an_error_for_the_parent(tmp_path):
    model = RoutedModel()
    model.reply(None, calls=(spawn("rate it", output_schema=SCHEMA),))
    model.reply("rate it", "it is good")
    model.reply("rate it", "really, it is good")  # after the kernel's one reminder
    model.reply(None, "the child gave no value")
    with make_core(tmp_path, model) as core:
        result = await core.session("p").turn("go").run()
        _, res = result.tool_calls[0]
        [child] = core.session("p").children()
        assert res.is_error and "stopped: no_final_value" in res.output and child.session_id in res.output
        assert result.outcome == Finished(text="the child gave no value")


async def test_an_invalid_output_schema_is_refused_before_any_child(tmp_path):
    model = ScriptedModel()
    model.enqueue_tool_calls(spawn("x", output_schema={"type": "nonsense"}))
    model.enqueue_text("ok")
    with make_core(tmp_path, model) as core:
        result = await core.session("p").turn("go").run()
        _, res = result.tool_calls[0]
        assert res.is_error and "not a valid JSON Schema" in res.output
        assert core.session("p").children() == []


# ------------------------------------------------------------------------------ failures
async def test_a_failing_child_gives_a_tool_error_and_the_parent_goes_on(tmp_path):
    from lash_kernel import ModelError

    model = RoutedModel()
    model.reply(None, calls=(spawn("doomed"),))
    model.script("doomed").enqueue_error(ModelError("boom", provider="scripted", retryable=False))
    model.reply(None, "carried on")
    with make_core(tmp_path, model) as core:
        result = await core.session("p").turn("go").run()
        assert result.outcome == Finished(text="carried on")
        _, res = result.tool_calls[0]
        [child] = core.session("p").children()
        assert res.is_error and "stopped: provider_error" in res.output and child.session_id in res.output
        [child_turn] = core.session(child.session_id).turns()
        assert isinstance(child_turn.outcome, Stopped) and child_turn.outcome.reason == "provider_error"


async def test_a_child_out_of_turns_is_contained(tmp_path):
    table = {"capabilities": {"brief": {"description": "one call only", "max_turns": 1}}}
    model = RoutedModel()
    model.reply(None, calls=(spawn("loop", "brief"),))
    model.reply("loop", calls=(spawn("never", "brief"),))  # uses its only model call on a tool call
    model.reply(None, "ok")
    with make_core(tmp_path, model, plugin_config={"subagents": table}) as core:
        result = await core.session("p").turn("go").run()
        _, res = result.tool_calls[0]
        assert res.is_error and "stopped: max_turns" in res.output
        assert result.outcome == Finished(text="ok")


# ------------------------------------------------------------------------------ concurrency, cancellation
class Gate:
    """A read-only tool children call; it tracks how many run at once and can block."""

    def __init__(self, release_after: int | None = None) -> None:
        self.running = 0
        self.peak = 0
        self.started = 0
        self.release = anyio.Event()
        self.release_after = release_after
        self.all_started = anyio.Event()
        self.expected = 0

        @tool(read_only=True)
        async def wait_here(ctx: ToolContext) -> str:
            """Wait at the gate."""
            self.running += 1
            self.started += 1
            self.peak = max(self.peak, self.running)
            if self.started == self.expected:
                self.all_started.set()
            if self.release_after is not None and self.started >= self.release_after:
                self.release.set()
            try:
                await self.release.wait()
            finally:
                self.running -= 1
            return "passed"

        self.tool = wait_here


async def test_two_spawns_in_one_reply_run_concurrently(tmp_path):
    gate = Gate(release_after=2)  # each child blocks until both are inside the gate
    model = RoutedModel()
    model.reply(None, calls=(spawn("a"), spawn("b")))
    for key in ("a", "b"):
        model.reply(key, calls=(("wait_here", {}),))
        model.reply(key, f"answer {key}")
    model.reply(None, "merged")
    with make_core(tmp_path, model, tools=[gate.tool]) as core:
        result = await core.session("p").turn("go").run()
        assert gate.peak == 2
        assert [r.output for _, r in result.tool_calls] == ["answer a", "answer b"]
        assert len(core.session("p").children()) == 2


async def test_max_concurrent_bounds_the_running_spawns(tmp_path):
    gate = Gate()
    model = RoutedModel()
    model.reply(None, calls=tuple(spawn(k) for k in "abc"))
    for key in "abc":
        model.reply(key, calls=(("wait_here", {}),))
        model.reply(key, f"answer {key}")
    model.reply(None, "merged")

    async def open_the_gate_later() -> None:
        while gate.started < 2:
            await anyio.sleep(0.01)
        for _ in range(20):  # give a third child every chance to start, if it could
            await anyio.sleep(0.005)
        gate.release.set()

    with make_core(tmp_path, model, tools=[gate.tool], plugin_config={"subagents": {"max_concurrent": 2}}) as core:
        async with anyio.create_task_group() as tg:
            tg.start_soon(open_the_gate_later)
            result = await core.session("p").turn("go").run()
        assert gate.peak == 2 and gate.started == 3
        assert [r.output for _, r in result.tool_calls] == ["answer a", "answer b", "answer c"]


async def test_cancelling_the_parent_cancels_every_running_child(tmp_path):
    gate = Gate()
    gate.expected = 2
    model = RoutedModel()
    model.reply(None, calls=(spawn("a"), spawn("b")))
    for key in ("a", "b"):
        model.reply(key, calls=(("wait_here", {}),))
    with make_core(tmp_path, model, tools=[gate.tool]) as core:
        turn = core.session("p").turn("go")

        async def cancel_when_both_wait() -> None:
            await gate.all_started.wait()
            turn.cancel("stop now")

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_when_both_wait)
            result = await turn.run()
        assert isinstance(result.outcome, Stopped) and result.outcome.reason == "cancelled"
        children = core.session("p").children()
        assert len(children) == 2
        for child in children:
            [child_turn] = core.session(child.session_id).turns()
            assert isinstance(child_turn.outcome, Stopped) and child_turn.outcome.reason == "cancelled"


# ------------------------------------------------------------------------------ progress
async def test_child_activities_reach_the_parent_as_progress_on_the_spawn_call(tmp_path):
    @tool(read_only=True)
    def web_search(q: str) -> str:
        """Search."""
        return "results"

    model = RoutedModel()
    model.reply(None, calls=(spawn("find"),))
    model.reply("find", calls=(("web_search", {"q": "x"}),))
    model.reply("find", "found")
    model.reply(None, "ok")
    with make_core(tmp_path, model, tools=[web_search]) as core:
        result = await core.session("p").turn("go").run()
        [(call, _)] = result.tool_calls
        progress = [a.event for a in result.activities if a.kind == "tool_call_progress"]
        assert {p.call_id for p in progress} == {call.id} and {p.name for p in progress} == {"spawn_agent"}
        messages = [p.message.split("] ", 1)[1] for p in progress]
        assert messages == ["thinking", "calling web_search", "web_search done", "thinking", "finished"]
        assert all(p.message.startswith("[explore ") for p in progress)
        assert [p.progress for p in progress] == [1, 2, 3, 4, 5]


# ------------------------------------------------------------------------------ usage
async def test_usage_is_exact_across_three_levels_of_nesting(tmp_path):
    model = RoutedModel()
    model.reply(None, calls=(spawn("child", "peer"),))
    model.reply("child", calls=(spawn("grandchild", "peer"), spawn("explorer")))
    model.reply("grandchild", calls=(spawn("great", "explore"),))
    model.reply("great", "deep fact")
    model.reply("grandchild", "grandchild answer")
    model.reply("explorer", "explored")
    model.reply("child", "child answer")
    model.reply(None, "root answer")
    with make_core(tmp_path, model) as core:
        root = core.session("root")
        result = await root.turn("go").run()
        assert model.pending == 0
        assert result.total_usage() == model.spent
        own = model.root.requests  # the root's own two calls are source "turn"
        assert len(own) == 2
        report = root.usage_report()
        assert report.total == model.spent  # every call of every descendant, once
        assert set(report.by_source) == {"turn", "subagent"}
        assert report.by_source["subagent"] == result.children_usage[("subagent", "scripted")]
        child_events = [a.event for a in result.activities if a.kind == "child_usage"]
        assert len(child_events) == 6 and {e.source for e in child_events} == {"subagent"}
        [child] = root.children()
        child_total = core.session(child.session_id).usage_report().total
        assert child_total == model.spent - result.usage


async def test_the_request_the_child_gets_is_task_and_context(tmp_path):
    model = RoutedModel()
    model.reply(None, calls=(spawn("sum it", context="numbers: 1, 2"),))
    child = ScriptedModel().enqueue_text("3")
    model.routes["Context:\nnumbers: 1, 2\n\nTask:\nsum it"] = child
    model.reply(None, "ok")
    with make_core(tmp_path, model) as core:
        result = await core.session("p").turn("go").run()
        seen: list[ModelRequest] = child.requests
        assert result.tool_calls[0][1].output == "3" and len(seen) == 1


# ------------------------------------------------------------------------------ inspection
async def test_sessions_show_lists_children_with_capability_outcome_and_usage(tmp_path):
    from click.testing import CliRunner

    from lash_kernel.cli import cli

    model = RoutedModel()
    model.reply(None, calls=(spawn("look around", "explore"),))
    model.reply("look around", "seen it")
    model.reply(None, "done")
    with make_core(tmp_path, model) as core:
        await core.session("root").turn("go").run()
        db = str(core.store.path)
    result = CliRunner().invoke(cli, ["sessions", "show", "root", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    [child] = json.loads(result.stdout)["children"]
    assert child["capability"] == "explore" and child["usage_source"] == "subagent"
    assert child["outcome"]["type"] == "finished"
    text = CliRunner().invoke(cli, ["sessions", "show", "root", "--db", db]).stdout
    assert "explore" in text and "finished" in text
