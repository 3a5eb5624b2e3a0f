"""What agent plugins stand on (0.2): model calls for plugins and tools, child sessions, session
specs, agent frames, plugin nodes, maintenance commits and background work.

Everything goes through the public API with ``ScriptedModel`` and real SQLite files.
"""

from __future__ import annotations

from typing import ClassVar

import anyio
import attrs
import pytest

from lash_kernel import LashCore, SqliteStore
from lash_kernel.errors import ConfigError, LashError
from lash_kernel.outcomes import Finished, Stopped
from lash_kernel.plugin import (
    Message,
    OpenFrame,
    PluginHost,
    RecordTypeRegistrar,
    SessionSpec,
    ToolContext,
    UsageSourceRegistrar,
    hookimpl,
    tool,
)
from lash_kernel.testing import ScriptedModel
from lash_kernel.usage import TokenUsage

pytestmark = pytest.mark.anyio


def U(n: int) -> TokenUsage:
    """A distinct usage per scripted call: n input, 2n output tokens."""
    return TokenUsage(input_tokens=n, output_tokens=2 * n)


@attrs.frozen(kw_only=True)
class Note:
    KIND: ClassVar[str] = "probe_note"
    text: str


class Sources:
    """Declares the usage sources and the record type the tests use."""

    @hookimpl
    def lash_register_usage_sources(self, registry: UsageSourceRegistrar) -> None:
        registry.add("subagent", "spawned agents")
        registry.add("compaction", "summaries")
        registry.add("observer", "background notes")

    @hookimpl
    def lash_register_record_types(self, registry: RecordTypeRegistrar) -> None:
        registry.add(Note)


def make_core(tmp_path, model, *, plugins=(), tools=(), **kw) -> LashCore:
    return LashCore(
        model_client=model, model="scripted", store=SqliteStore(tmp_path / "lash.db"), entry_points=False,
        plugins=(Sources(), *plugins), tools=tools, **kw,
    )


# ------------------------------------------------------------------------------ complete()
async def test_tool_complete_is_committed_with_the_turn_under_its_source(tmp_path):
    @tool
    async def summarise(text: str, ctx: ToolContext) -> str:
        """Summarise text."""
        response = await ctx.complete(f"summarise: {text}", source="subagent")
        return response.message.text

    model = ScriptedModel()
    model.enqueue_tool_calls(("summarise", {"text": "long"}), usage=U(1))
    model.enqueue_text("short", usage=U(10))  # the tool's own call
    model.enqueue_text("done", usage=U(100))
    with make_core(tmp_path, model, tools=[summarise]) as core:
        result = await core.session("s").turn("go").run()
        assert result.outcome == Finished(text="done")
        assert result.usage == U(1) + U(100)
        assert result.children_usage == {("subagent", "scripted"): U(10)}
        assert result.total_usage() == U(111)
        assert model.requests[1].messages == (Message.user("summarise: long"),)
        report = core.session("s").usage_report()
        assert report.by_source == {"subagent": U(10), "turn": U(101)}
        assert report.total == U(111)


async def test_children_usage_is_keyed_by_the_requested_model_summing_what_served_it(tmp_path):
    """Two named clients serve the same requested model under different served names (a
    router's picks): the turn reports one entry for what was asked, the ledger keeps both."""
    @tool
    async def ask_both(ctx: ToolContext) -> str:
        """Ask two clients."""
        first = await ctx.complete("one", source="subagent", client="a")
        second = await ctx.complete("two", source="subagent", client="b")
        return first.message.text + second.message.text

    model = ScriptedModel()
    model.enqueue_tool_calls(("ask_both", {}), usage=U(1))
    model.enqueue_text("done", usage=U(100))
    a = ScriptedModel(model="served-a").enqueue_text("x", usage=U(10))
    b = ScriptedModel(model="served-b").enqueue_text("y", usage=U(20))
    with make_core(tmp_path, model, tools=[ask_both], model_clients={"a": a, "b": b}) as core:
        result = await core.session("s").turn("go").run()
        assert result.children_usage == {("subagent", "scripted"): U(30)}
        report = core.session("s").usage_report()
        assert report.by_source_model[("subagent", "scripted")] == U(30)
        assert report.served[("subagent", "scripted")] == ("served-a", "served-b")


async def test_plugin_complete_outside_a_turn_is_a_maintenance_commit(tmp_path):
    model = ScriptedModel().enqueue_text("hello", usage=U(1)).enqueue_text("note", usage=U(7))
    with make_core(tmp_path, model) as core:
        session = core.session("s")
        await session.turn("hi").run()
        revision = session.info.head_revision
        host = core.plugin_host
        response = await host.complete("observe", source="observer", session_id="s")
        assert response.message.text == "note"
        assert core.session("s").info.head_revision == revision + 1
        assert core.session("s").usage_report().by_source == {"observer": U(7), "turn": U(1)}
        assert [t.turn_id for t in session.turns()] == [session.turns()[0].turn_id]  # not a turn


async def test_complete_refuses_an_undeclared_source_and_a_missing_session(tmp_path):
    with make_core(tmp_path, ScriptedModel()) as core:
        core.session("s")
        with pytest.raises(ConfigError, match="usage source 'nope' was not declared"):
            await core.plugin_host.complete("x", source="nope", session_id="s")
        with pytest.raises(ConfigError, match="needs session_id"):
            await core.plugin_host.complete("x", source="observer")


async def test_complete_through_a_named_client_and_model(tmp_path):
    cheap = ScriptedModel(model="cheap-1").enqueue_text("sum", usage=U(3))
    model = ScriptedModel().enqueue_text("a", usage=U(1))
    with make_core(tmp_path, model, model_clients={"cheap": cheap}) as core:
        await core.session("s").turn("hi").run()
        await core.plugin_host.complete("x", source="compaction", session_id="s", client="cheap", model="cheap-1")
        assert cheap.requests[0].model == "cheap-1"
        assert core.session("s").usage_report().by_source_model == {
            ("compaction", "cheap-1"): U(3), ("turn", "scripted"): U(1)
        }
        with pytest.raises(ConfigError, match="no model client named 'nope'"):
            await core.plugin_host.complete("x", source="compaction", session_id="s", client="nope")


# ------------------------------------------------------------------------------ child sessions
def spawn_tool(child_spec=None, *, source="subagent"):
    @tool
    async def spawn(task: str, ctx: ToolContext) -> str:
        """Run a child agent."""
        with ctx.open_child_session(child_spec, source=source) as child:
            result = await child.turn(task).run()
        return result.text

    return spawn


async def test_child_session_usage_reaches_the_parent_turn_exactly_once(tmp_path):
    model = ScriptedModel()
    model.enqueue_tool_calls(("spawn", {"task": "look"}), usage=U(1))  # parent
    model.enqueue_text("found it", usage=U(20))  # child
    model.enqueue_text("the child found it", usage=U(300))  # parent
    with make_core(tmp_path, model, tools=[spawn_tool()]) as core:
        parent = core.session("p")
        result = await parent.turn("go").run()
        assert result.outcome == Finished(text="the child found it")
        assert result.usage == U(301)
        assert result.children_usage == {("subagent", "scripted"): U(20)}
        child_events = [a.event for a in result.activities if a.event.KIND == "child_usage"]
        assert len(child_events) == 1 and child_events[0].usage == U(20) and child_events[0].source == "subagent"
        [child_info] = parent.children()
        assert child_events[0].session_id == child_info.session_id
        assert child_info.parent_session_id == "p" and child_info.depth == 1
        assert child_info.parent_turn_id == result.turn_id and child_info.parent_call_id == "call_1"
        # the sum over sources equals every call made, no double counting
        assert parent.usage_report().total == U(1) + U(20) + U(300)
        child = core.session(child_info.session_id)
        assert child.usage_report().by_source == {"subagent": U(20)}
        assert child.spec.usage_source == "subagent"


async def test_grandchild_usage_reaches_every_ancestor(tmp_path):
    model = ScriptedModel()
    model.enqueue_tool_calls(("spawn", {"task": "a"}), usage=U(1))  # root
    model.enqueue_tool_calls(("spawn", {"task": "b"}), usage=U(2))  # child
    model.enqueue_text("leaf", usage=U(4))  # grandchild
    model.enqueue_text("child done", usage=U(8))  # child
    model.enqueue_text("root done", usage=U(16))  # root
    with make_core(tmp_path, model, tools=[spawn_tool(source="child")]) as core:
        root = core.session("root")
        result = await root.turn("go").run()
        assert result.children_usage == {("child", "scripted"): U(2) + U(4) + U(8)}
        assert root.usage_report().total == U(31)
        [child] = root.children()
        [grandchild] = core.session(child.session_id).children()
        assert grandchild.depth == 2
        assert core.session(child.session_id).usage_report().total == U(14)


async def test_cancelling_the_parent_turn_cancels_the_child_turn(tmp_path):
    started = anyio.Event()

    @tool
    async def slow(ctx: ToolContext) -> str:
        """Never returns on its own."""
        started.set()
        await anyio.sleep_forever()
        return ""

    model = ScriptedModel()
    model.enqueue_tool_calls(("spawn", {"task": "wait"}))
    model.enqueue_tool_calls(("slow", {}))  # the child calls the slow tool
    with make_core(tmp_path, model, tools=[spawn_tool(), slow]) as core:
        parent = core.session("p")
        turn = parent.turn("go")
        async with anyio.create_task_group() as tg:
            tg.start_soon(turn.run)
            await started.wait()
            turn.cancel("stop it")
        assert isinstance(turn.result.outcome, Stopped) and turn.result.outcome.reason == "cancelled"
        [child] = parent.children()
        [child_turn] = core.session(child.session_id).turns()
        assert isinstance(child_turn.outcome, Stopped) and child_turn.outcome.reason == "cancelled"


# ------------------------------------------------------------------------------ SessionSpec
async def test_session_spec_is_persisted_and_applied(tmp_path):
    @tool
    def secret() -> str:
        """Hidden by the spec."""
        return "x"

    @tool
    def public() -> str:
        """Kept."""
        return "y"

    spec = SessionSpec(model="m-2", system_prompt="You are terse.", tools_deny=("secret",), max_turns=1)
    model = ScriptedModel().enqueue_text("one")
    with make_core(tmp_path, model, tools=[secret, public], prompt="core prompt") as core:
        await core.session("s", spec=spec).turn("hi").run()
    model = ScriptedModel().enqueue_text("two")
    with make_core(tmp_path, model, tools=[secret, public], prompt="core prompt") as core:
        session = core.session("s", spec=SessionSpec(model="ignored"))  # an existing session keeps its spec
        assert session.spec == spec
        await session.turn("again").run()
    request = model.requests[0]
    assert request.model == "m-2"
    assert request.system == "You are terse."
    assert [t.name for t in request.tools] == ["public"]


def test_session_spec_inherit_and_validation():
    parent = SessionSpec(model="big", tools_allow=("a", "b"), plugin_options={"x": {"k": 1}}, usage_source="turn")
    child = SessionSpec.inherit(parent, tools_deny=("b",), plugin_options={"y": {"j": 2}})
    assert child.model == "big" and child.tools_allow == ("a", "b") and child.tools_deny == ("b",)
    assert child.plugin_options == {"x": {"k": 1}, "y": {"j": 2}}
    assert child.usage_source is None
    assert child.allows("a") and not child.allows("b") and not child.allows("c")
    assert SessionSpec.from_json(child.to_json()) == child
    assert SessionSpec().to_json() == ""
    with pytest.raises(ConfigError, match="max_turns"):
        SessionSpec(max_turns=0)
    with pytest.raises(ConfigError, match="no field"):
        SessionSpec.inherit(parent, colour="red")
    with pytest.raises(ConfigError, match="JSON"):
        SessionSpec(plugin_options={"x": {"k": object()}})


# ------------------------------------------------------------------------------ frames
class Compactor:
    """Opens a frame before the model call once the view holds more than ``limit`` messages,
    summarising with one ``complete`` call (usage source ``compaction``)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    @hookimpl
    async def lash_compact(self, host: PluginHost, messages: tuple[Message, ...]) -> OpenFrame | None:
        if len(messages) <= self.limit:
            return None
        summary = await host.complete("summarise", source="compaction")
        return OpenFrame(reason="compaction", seed=(Message.user(f"summary: {summary.message.text}"), messages[-1]))


async def test_lash_compact_opens_a_frame_committed_with_the_turn(tmp_path):
    model = ScriptedModel()
    for i in range(3):
        model.enqueue_text(f"answer {i}", usage=U(1))
    model.enqueue_text("S", usage=U(5))  # the summary, in turn 4
    model.enqueue_text("answer 3", usage=U(1))
    with make_core(tmp_path, model, plugins=[Compactor(limit=6)]) as core:
        session = core.session("s")
        for i in range(4):
            result = await session.turn(f"question {i}").run()
        assert result.children_usage == {("compaction", "scripted"): U(5)}
        assert [m.text for m in model.requests[-1].messages] == ["summary: S", "question 3"]
        assert [m.text for m in session.history()] == ["summary: S", "question 3", "answer 3"]
        [frame] = session.frames()
        assert frame.reason == "compaction" and frame.opened_by == result.turn_id
        assert frame.previous_frame_id == "f0" and len(frame.seed_node_ids) == 2
    model = ScriptedModel().enqueue_text("answer 4")
    with make_core(tmp_path, model) as core:  # a new process loads only the current frame
        session = core.session("s")
        assert [m.text for m in session.history()] == ["summary: S", "question 3", "answer 3"]
        await session.turn("question 4").run()
        assert [m.text for m in model.requests[0].messages] == ["summary: S", "question 3", "answer 3", "question 4"]
        graph = session.graph()
        texts = [n.payload.text for n in graph.nodes if n.kind == "message"]
        before = [t for i in range(3) for t in (f"question {i}", f"answer {i}")]
        assert texts[:10] == [*before, "question 3", "summary: S", "question 3", "answer 3"]
        assert len(graph.frames) == 1


async def test_checkpoint_can_open_a_frame(tmp_path):
    class Continuer:
        @hookimpl
        def lash_checkpoint(self, phase: str, messages: tuple[Message, ...]) -> OpenFrame | None:
            if phase == "after_tools":
                return OpenFrame(reason="continue_as", seed=(Message.user("fresh start"),))
            return None

    @tool
    def ping() -> str:
        """Pong."""
        return "pong"

    model = ScriptedModel().enqueue_tool_calls(("ping", {})).enqueue_text("after")
    with make_core(tmp_path, model, plugins=[Continuer()], tools=[ping]) as core:
        session = core.session("s")
        await session.turn("start").run()
        assert [m.text for m in model.requests[1].messages] == ["fresh start"]
        assert [m.text for m in session.history()] == ["fresh start", "after"]
        assert [f.reason for f in session.frames()] == ["continue_as"]


async def test_frame_switch_between_turns_through_a_maintenance_commit(tmp_path):
    model = ScriptedModel().enqueue_text("a1").enqueue_text("a2")
    with make_core(tmp_path, model) as core:
        session = core.session("s")
        await session.turn("q1").run()
        revision = session.info.head_revision
        frame = OpenFrame(reason="compaction", seed=(Message.user("summary of q1"),))
        assert await core.plugin_host.commit_maintenance("s", frame=frame, expected_revision=revision) == revision + 1
        assert [m.text for m in session.history()] == ["summary of q1"]  # the open handle reloads
        await session.turn("q2").run()
        assert [m.text for m in model.requests[1].messages] == ["summary of q1", "q2"]
        from lash_kernel.errors import CommitConflictError

        with pytest.raises(CommitConflictError):
            await core.plugin_host.commit_maintenance("s", frame=frame, expected_revision=revision)


# ------------------------------------------------------------------------------ plugin nodes
async def test_plugin_nodes_with_the_turn_and_between_turns(tmp_path):
    class Noter:
        @hookimpl
        def lash_after_turn(self, host: PluginHost, session_id: str, messages: tuple[Message, ...]) -> None:
            host.append_nodes(session_id, [Note(text=f"saw {messages[0].text}")])

    model = ScriptedModel().enqueue_text("a1")
    with make_core(tmp_path, model, plugins=[Noter()]) as core:
        session = core.session("s")
        await session.turn("q1").run()
        assert session.nodes("probe_note") == (Note(text="saw q1"),)
        assert [m.text for m in session.history()] == ["q1", "a1"]  # plugin nodes are off the path
        await core.plugin_host.commit_maintenance("s", key="k1", records=[Note(text="later")])
        await core.plugin_host.commit_maintenance("s", key="k1", records=[Note(text="later")])  # idempotent
        assert core.plugin_host.nodes("s", "probe_note") == (Note(text="saw q1"), Note(text="later"))
        with pytest.raises(LashError, match="no turn of session 's' is running"):
            core.plugin_host.append_nodes("s", [Note(text="x")])


# ------------------------------------------------------------------------------ background work
async def test_background_work_lands_through_maintenance_commits(tmp_path):
    class Observer:
        @hookimpl
        def lash_turn_committed(self, host: PluginHost, session_id: str, turn_id: str) -> None:
            async def observe() -> None:
                response = await host.complete("observe", source="observer", session_id=session_id)
                await host.commit_maintenance(
                    session_id, key=f"obs:{turn_id}", records=[Note(text=response.message.text)]
                )

            host.spawn(observe, name=f"observer {turn_id}")

    model = ScriptedModel().enqueue_text("a1", usage=U(1)).enqueue_text("observed", usage=U(9))
    with make_core(tmp_path, model, plugins=[Observer()]) as core:
        session = core.session("s")
        await session.turn("q1").run()
        await core.drain()
        assert session.nodes("probe_note") == (Note(text="observed"),)
        assert session.usage_report().by_source == {"observer": U(9), "turn": U(1)}


async def test_close_cancels_background_work(tmp_path):
    finished = []

    class Slow:
        @hookimpl
        def lash_turn_committed(self, host: PluginHost) -> None:
            async def work() -> None:
                await anyio.sleep(60)
                finished.append(True)

            host.spawn(work, name="slow")

    core = make_core(tmp_path, ScriptedModel().enqueue_text("a"), plugins=[Slow()])
    await core.session("s").turn("q").run()
    assert core.services.background.pending == 1
    core.close()
    await core.drain()  # returns at once: the work was cancelled, not finished
    assert core.services.background.pending == 0 and finished == []
    with pytest.raises(LashError, match="closed"):
        core.plugin_host.spawn(lambda: anyio.sleep(0), name="late")


# ------------------------------------------------------------------------------ for compaction plugins
async def test_a_context_overflow_opens_a_frame_and_retries_once(tmp_path):
    from lash_kernel.errors import ProviderHTTPError

    seen = []

    class OnOverflow:
        @hookimpl
        def lash_compact(self, messages: tuple[Message, ...], overflow: bool) -> OpenFrame | None:
            seen.append(overflow)
            if overflow:
                return OpenFrame(reason="compaction", seed=(Message.user("short summary"), messages[-1]))
            return None

    body = '{"error": {"message": "too long", "code": "context_length_exceeded"}}'
    model = ScriptedModel().enqueue_text("a1")
    model.enqueue_error(ProviderHTTPError(400, body, provider="scripted")).enqueue_text("fits now")
    with make_core(tmp_path, model, plugins=[OnOverflow()]) as core:
        session = core.session("s")
        await session.turn("q1").run()
        result = await session.turn("q2").run()
        assert result.outcome == Finished(text="fits now")
        assert seen == [False, False, True]
        assert [m.text for m in model.requests[-1].messages] == ["short summary", "q2"]
        assert [f.reason for f in session.frames()] == ["compaction"]


async def test_session_compact_asks_the_compaction_plugin(tmp_path):
    class ByHand:
        @hookimpl
        async def lash_compact_session(self, host: PluginHost, session_id: str, instructions: str | None) -> bool:
            info = host.session_info(session_id)
            seed = (Message.user(f"summary ({instructions}) of {len(host.history(session_id))} messages"),)
            await host.commit_maintenance(
                session_id, frame=OpenFrame(reason="compaction", seed=seed), expected_revision=info.head_revision
            )
            return True

    model = ScriptedModel().enqueue_text("a1")
    with make_core(tmp_path, model) as core:
        session = core.session("s")
        await session.turn("q1").run()
        with pytest.raises(ConfigError, match="no loaded plugin compacts sessions"):
            await session.compact()
    with make_core(tmp_path, ScriptedModel(), plugins=[ByHand()]) as core:
        session = core.session("s")
        assert [m.text for m in session.history()] == ["q1", "a1"]
        assert await session.compact("keep names") is True
        assert [m.text for m in session.history()] == ["summary (keep names) of 2 messages"]


async def test_plugin_activities_and_plugin_names(tmp_path):
    @attrs.frozen
    class Compacted:
        KIND: ClassVar[str] = "compaction_finished"
        tokens_before: int

    published = []

    class Emitter:
        @hookimpl
        def lash_before_turn(self, host: PluginHost, session_id: str) -> None:
            published.append(host.emit_activity(session_id, Compacted(tokens_before=10)))
            published.append(host.emit_activity("other", Compacted(tokens_before=1)))
            published.append("emitter" in host.plugin_names())

    model = ScriptedModel().enqueue_text("a")
    with make_core(tmp_path, model, plugins=[Emitter()]) as core:
        core.add_plugin(Emitter(), name="emitter")
        result = await core.session("s").turn("q").run()
        kinds = [a.kind for a in result.activities]
        assert kinds.count("compaction_finished") == 2  # both registrations emitted once
        assert published[:3] == [True, False, True]
        with pytest.raises(LashError, match="no KIND"):
            core.plugin_host.emit_activity("s", object())


def test_tool_flags_for_constrained_agents():
    @tool(read_only=True)
    def look(path: str) -> str:
        """Read a file."""
        return path

    @tool(interactive=True)
    def ask(question: str) -> str:
        """Ask the user."""
        return question

    assert (look.read_only, look.interactive) == (True, False)
    assert (ask.read_only, ask.interactive) == (False, True)
