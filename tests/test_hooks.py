"""Every hook group of DESIGN §7, driven through real turns (ScriptedModel, real SQLite).

Each test registers small plugin objects and checks what the hooks saw and what they changed:
call order, async implementations, directives, committed state, error attribution.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import attrs
import pytest

from lash_kernel import hookimpl
from lash_kernel.activity import ErrorReported, ToolCallProgress
from lash_kernel.directives import AbortTurn, BlockToolCall, CompactionPlan, InjectMessages
from lash_kernel.errors import ConfigError, PluginError, PluginHookError
from lash_kernel.messages import Message, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Finished, Stopped
from lash_kernel.runtime.core import LashCore
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import ScriptedModel
from lash_kernel.tools import Tool, ToolContext, ToolOutput, tool
from lash_kernel.trace import TRACE_KINDS, TraceRecord
from lash_kernel.usage import TokenUsage

pytestmark = pytest.mark.anyio


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return f"echo:{text}"


def make_core(model: ScriptedModel, tmp_path, **kw) -> LashCore:
    if "store" not in kw:
        kw["store"] = SqliteStore(tmp_path / "lash.db")
    kw.setdefault("tools", [echo])
    return LashCore(model_client=model, model="scripted", entry_points=False, **kw)


# ------------------------------------------------------------------------------- call order and async


async def test_async_hooks_are_awaited_in_pluggy_call_order(tmp_path):
    seen: list[str] = []

    class First:
        lash_plugin_name = "first"

        @hookimpl(tryfirst=True)
        async def lash_before_turn(self, turn_id):
            seen.append(f"first:{turn_id}")

    class Second:
        lash_plugin_name = "second"

        @hookimpl
        def lash_before_turn(self, user_input):
            seen.append(f"second:{user_input.text}")

    class Last:
        lash_plugin_name = "last"

        @hookimpl(trylast=True)
        async def lash_before_turn(self, session_id):
            seen.append(f"last:{session_id}")

    model = ScriptedModel()
    model.enqueue_text("hi")
    core = make_core(model, tmp_path, plugins=[Last(), Second(), First()])
    result = await core.session("s").turn("hello", turn_id="t1").run()
    assert isinstance(result.outcome, Finished)
    assert seen == ["first:t1", "second:hello", "last:s"]


def test_wrappers_are_rejected_on_lash_hooks(tmp_path):
    class Wrapper:
        @hookimpl(wrapper=True)
        def lash_before_turn(self):
            return (yield)

    with pytest.raises(PluginError, match="wrappers are not supported on lash_before_turn"):
        make_core(ScriptedModel(), tmp_path, plugins=[Wrapper()])


def test_misspelled_hook_is_rejected_with_its_name(tmp_path):
    class Typo:
        @hookimpl
        def lash_before_trun(self):
            pass

    with pytest.raises(PluginError, match="lash_before_trun"):
        make_core(ScriptedModel(), tmp_path, plugins=[Typo()])


# ------------------------------------------------------------------------------- turn hooks


async def test_before_turn_abort_commits_the_input_with_plugin_abort(tmp_path):
    class Gate:
        lash_plugin_name = "gate"

        @hookimpl
        def lash_before_turn(self, user_input):
            return AbortTurn(reason="no profanity") if "darn" in user_input.text else None

    model = ScriptedModel()
    core = make_core(model, tmp_path, plugins=[Gate()])
    session = core.session("s")
    result = await session.turn("darn it").run()
    assert result.outcome == Stopped(reason="plugin_abort", detail="plugin 'gate': no profanity")
    assert model.requests == []
    assert [m.text for m in session.history()] == ["darn it"]
    assert session.pending_inputs() == []


async def test_before_turn_exception_names_the_plugin(tmp_path):
    class Broken:
        lash_plugin_name = "broken"

        @hookimpl
        async def lash_before_turn(self):
            raise RuntimeError("database down")

    core = make_core(ScriptedModel(), tmp_path, plugins=[Broken()])
    result = await core.session("s").turn("x").run()
    assert result.outcome.reason == "plugin_abort"
    assert "broken" in result.outcome.detail and "database down" in result.outcome.detail


async def test_checkpoint_injects_after_tools_and_before_finish(tmp_path):
    phases: list[tuple[str, int]] = []

    class Steer:
        @hookimpl
        async def lash_checkpoint(self, phase, messages):
            phases.append((phase, len(messages)))
            if phase == "before_finish" and len([p for p in phases if p[0] == "before_finish"]) == 1:
                return InjectMessages(messages=(Message.user("Double-check, please."),))
            return None

    model = ScriptedModel()
    model.enqueue_tool_calls(("echo", {"text": "a"}))
    model.enqueue_text("first answer")
    model.enqueue_text("checked answer")
    core = make_core(model, tmp_path, plugins=[Steer()])
    session = core.session("s")
    result = await session.turn("go").run()
    assert result.outcome == Finished(text="checked answer")
    # user, assistant(call), tool | assistant | injected user, assistant
    assert phases == [("after_tools", 3), ("before_finish", 4), ("before_finish", 6)]
    assert [m.role for m in result.messages] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert result.messages[4].text == "Double-check, please."
    assert model.requests[2].messages[-1].text == "Double-check, please."
    assert [m.text for m in session.history()][-2:] == ["Double-check, please.", "checked answer"]


async def test_checkpoint_abort_wins_and_injection_respects_max_turns(tmp_path):
    class Abort:
        lash_plugin_name = "stopper"

        @hookimpl
        def lash_checkpoint(self, phase):
            return AbortTurn(reason="budget exhausted") if phase == "after_tools" else None

    class Inject:
        @hookimpl
        def lash_checkpoint(self):
            return InjectMessages(messages=(Message.user("more"),))

    model = ScriptedModel()
    model.enqueue_tool_calls(("echo", {"text": "a"}))
    core = make_core(model, tmp_path, plugins=[Inject(), Abort()])
    result = await core.session("s").turn("go").run()
    assert result.outcome == Stopped(reason="plugin_abort", detail="plugin 'stopper': budget exhausted")
    assert len(model.requests) == 1

    model2 = ScriptedModel()
    model2.enqueue_text("done")
    core2 = make_core(model2, tmp_path, store=SqliteStore(tmp_path / "b.db"), plugins=[Inject()])
    result2 = await core2.session("s").turn("go", max_turns=1).run()
    assert result2.outcome.reason == "max_turns"
    assert [m.text for m in result2.messages] == ["go", "done", "more"]


async def test_before_tool_call_blocks_and_rewrites(tmp_path):
    class Policy:
        lash_plugin_name = "policy"

        @hookimpl
        async def lash_before_tool_call(self, call):
            if "secret" in call.arguments:
                return BlockToolCall(reason="blocked by policy: secrets")
            return ToolCallPart(id=call.id, name=call.name, arguments='{"text": "rewritten"}')

    model = ScriptedModel()
    model.enqueue_tool_calls(("echo", {"text": "secret"}), ("echo", {"text": "plain"}))
    model.enqueue_text("ok")
    core = make_core(model, tmp_path, plugins=[Policy()])
    result = await core.session("s").turn("go").run()
    (_, blocked), (_, rewritten) = result.tool_calls
    assert blocked.is_error and blocked.output == "blocked by policy: secrets"
    assert not rewritten.is_error and rewritten.output == "echo:rewritten"


async def test_after_tool_call_replaces_results_and_failures_become_errors(tmp_path):
    class Redact:
        @hookimpl
        def lash_after_tool_call(self, result, duration_s):
            assert duration_s >= 0
            return attrs.evolve(result, output=result.output.replace("hunter2", "[redacted]"))

    class Bad:
        lash_plugin_name = "bad"

        @hookimpl(tryfirst=True)
        def lash_after_tool_call(self, call):
            if "boom" in call.arguments:
                raise ValueError("cannot post-process")

    model = ScriptedModel()
    model.enqueue_tool_calls(("echo", {"text": "hunter2"}), ("echo", {"text": "boom"}))
    model.enqueue_text("ok")
    core = make_core(model, tmp_path, plugins=[Redact(), Bad()])
    result = await core.session("s").turn("go").run()
    (_, redacted), (_, failed) = result.tool_calls
    assert redacted.output == "echo:[redacted]"
    assert failed.is_error and "'bad'" in failed.output and "cannot post-process" in failed.output


async def test_after_turn_sees_outcome_messages_and_usage_before_commit(tmp_path):
    seen = {}

    class Watch:
        @hookimpl
        def lash_after_turn(self, outcome, messages, usage):
            seen.update(outcome=outcome, roles=[m.role for m in messages], total=usage.total())

    model = ScriptedModel()
    model.enqueue_text("hi", usage=TokenUsage(input_tokens=7, output_tokens=3))
    core = make_core(model, tmp_path, plugins=[Watch()])
    await core.session("s").turn("x").run()
    assert seen == {"outcome": Finished(text="hi"), "roles": ["user", "assistant"], "total": TokenUsage(input_tokens=7, output_tokens=3)}


# ------------------------------------------------------------------------------- context hooks


async def test_transform_context_chains_and_never_reaches_the_store(tmp_path):
    class Tag:
        @hookimpl
        def lash_transform_context(self, messages):
            return (*messages[:-1], Message.user(messages[-1].text + " [tagged]"))

    class Upper:
        @hookimpl(trylast=True)
        def lash_transform_context(self, messages):
            return tuple(Message.user(m.text.upper()) if m.role == "user" else m for m in messages)

    model = ScriptedModel()
    model.enqueue_text("ok")
    core = make_core(model, tmp_path, plugins=[Tag(), Upper()])
    session = core.session("s")
    await session.turn("hello").run()
    assert model.requests[0].messages[-1].text == "HELLO [TAGGED]"
    assert session.history()[0].text == "hello"


async def test_plan_compaction_is_firstresult_and_keeps_tool_pairs(tmp_path):
    calls = []

    class Planner:
        @hookimpl
        def lash_plan_compaction(self, messages, context_window, input_tokens):
            calls.append((len(messages), context_window, input_tokens))
            return CompactionPlan(keep_last=2, summary="earlier: greeting") if input_tokens >= 100 else None

    class Never:
        @hookimpl(trylast=True)
        def lash_plan_compaction(self):
            raise AssertionError("firstresult: not reached once a plan is returned")

    model = ScriptedModel()
    model.enqueue_text("first", usage=TokenUsage(input_tokens=100))
    model.enqueue_tool_calls(("echo", {"text": "a"}), usage=TokenUsage(input_tokens=120))
    model.enqueue_text("second", usage=TokenUsage(input_tokens=130))
    core = make_core(model, tmp_path, plugins=[Planner()], context_window=1000)
    session = core.session("s")
    await session.turn("hi").run()
    core.pm.register(Never())
    await session.turn("again").run()
    assert calls[0] == (1, 1000, 0)
    second_view = model.requests[1].messages
    assert second_view[0].text.startswith("[Summary of the earlier conversation]\nearlier: greeting")
    assert [m.text for m in second_view[1:]] == ["first", "again"]
    third_view = model.requests[2].messages  # the cut moved so the tool result keeps its call
    assert [m.role for m in third_view] == ["user", "assistant", "tool"]
    assert [m.text for m in session.history()] == ["hi", "first", "again", "", "", "second"]


# ------------------------------------------------------------------------------- lifecycle + state


@attrs.frozen
class Counter:
    KIND: ClassVar[str] = "test.counter"
    turns: int
    last: str


class CountingPlugin:
    """Counts turns per session; state is committed with each turn and restored on load."""

    lash_plugin_name = "counter"

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.events: list[str] = []
        self.restored: dict[str, Counter] = {}

    @hookimpl
    def lash_register_record_types(self, registry):
        registry.add(Counter)

    @hookimpl
    def lash_session_opened(self, session_id, created):
        self.events.append(f"opened:{session_id}:{created}")

    @hookimpl
    def lash_session_closed(self, session_id):
        self.events.append(f"closed:{session_id}")

    @hookimpl
    async def lash_turn_committed(self, turn_id, head_revision):
        self.events.append(f"committed:{turn_id}:{head_revision}")

    @hookimpl
    def lash_restore_state(self, session_id, state):
        self.restored[session_id] = state
        self.counts[session_id] = state.turns

    @hookimpl
    def lash_snapshot_state(self, session_id, turn_id):
        self.counts[session_id] = self.counts.get(session_id, 0) + 1
        return Counter(turns=self.counts[session_id], last=turn_id)


async def test_plugin_state_commits_with_the_turn_and_is_restored(tmp_path):
    db = tmp_path / "lash.db"
    model = ScriptedModel()
    for _ in range(3):
        model.enqueue_text("ok")
    plugin = CountingPlugin()
    with make_core(model, tmp_path, store=SqliteStore(db), plugins=[plugin]) as core:
        session = core.session("s")
        await session.turn("a", turn_id="t1").run()
        await session.turn("b", turn_id="t2").run()
        assert core.store.load_plugin_state("s") == {"counter": '{"kind":"test.counter","data":{"turns":2,"last":"t2"}}'}
    assert plugin.events == ["opened:s:True", "committed:t1:1", "committed:t2:2", "closed:s"]

    fresh = CountingPlugin()
    with make_core(model, tmp_path, store=SqliteStore(db), plugins=[fresh]) as core:
        session = core.session("s")
        await session.turn("c", turn_id="t3").run()
    assert fresh.restored == {"s": Counter(turns=2, last="t2")}
    assert fresh.counts["s"] == 3
    assert fresh.events[0] == "opened:s:False"


async def test_unregistered_state_type_is_logged_and_the_turn_still_commits(tmp_path, caplog):
    class Sloppy:
        lash_plugin_name = "sloppy"

        @hookimpl
        def lash_snapshot_state(self):
            return Counter(turns=1, last="x")  # never registered

    model = ScriptedModel()
    model.enqueue_text("ok")
    core = make_core(model, tmp_path, plugins=[Sloppy()])
    with caplog.at_level(logging.ERROR, logger="lash"):
        result = await core.session("s").turn("x").run()
    assert isinstance(result.outcome, Finished)
    assert core.store.load_plugin_state("s") == {}
    assert "sloppy" in caplog.text and "not a registered record type" in caplog.text


async def test_failing_lifecycle_hooks_are_logged_not_raised(tmp_path, caplog):
    class Grumpy:
        lash_plugin_name = "grumpy"

        @hookimpl
        def lash_session_opened(self):
            raise RuntimeError("open failed")

        @hookimpl
        async def lash_turn_committed(self):
            raise RuntimeError("notify failed")

    model = ScriptedModel()
    model.enqueue_text("ok")
    with caplog.at_level(logging.ERROR, logger="lash"):
        core = make_core(model, tmp_path, plugins=[Grumpy()])
        result = await core.session("s").turn("x").run()
    assert result.head_revision == 1
    assert "plugin 'grumpy' failed in lash_session_opened" in caplog.text
    assert "notify failed" in caplog.text


# ------------------------------------------------------------------------------- build hooks


def test_build_hooks_run_in_order_with_per_plugin_config(tmp_path):
    order: list[str] = []

    @attrs.frozen
    class GreeterConfig:
        greeting: str = "hello"
        times: int = 1

    class Greeter:
        lash_plugin_name = "greeter"

        @hookimpl
        def lash_register_config(self, registry):
            order.append("config")
            registry.add(GreeterConfig)

        @hookimpl
        def lash_configure(self, host, config):
            order.append(f"configure:{config.greeting}x{config.times}")
            host.on_close(lambda: order.append("closed"))

        @hookimpl
        def lash_register_tools(self, registry):
            order.append("tools")
            registry.add(Tool(name="greet", fn=lambda: "hi", description="Say hi."))

        @hookimpl
        def lash_register_modes(self, registry):
            order.append("modes")

        @hookimpl
        def lash_register_record_types(self, registry):
            order.append("records")

        @hookimpl
        def lash_register_usage_sources(self, registry):
            order.append("usage")
            registry.add("greeter", "tokens spent on greetings")

    core = make_core(ScriptedModel(), tmp_path, plugins=[Greeter()], plugin_config={"greeter": {"greeting": "hey", "times": 2}})
    assert order == ["config", "configure:heyx2", "tools", "modes", "records", "usage"]
    assert core.tools.provider_of("greet") == "greeter"
    assert core.usage_sources["greeter"] == ("greeter", "tokens spent on greetings")
    assert [(p.name, p.origin) for p in core.plugins()] == [
        ("greeter", "host"), ("lash.commands", "builtin"), ("lash.standard", "builtin")
    ]
    assert core.modes["standard"].plugin == "lash.standard"
    assert core.usage_sources["turn"] == ("lash.standard", "the session's own model calls")
    core.close()
    core.close()
    assert order[-1] == "closed" and order.count("closed") == 1


def test_plugin_config_errors_name_source_table_and_key(tmp_path):
    @attrs.frozen
    class Conf:
        level: int = 1

    class P:
        lash_plugin_name = "p"

        @hookimpl
        def lash_register_config(self, registry):
            registry.add(Conf)

    with pytest.raises(ConfigError, match=r"lash.toml: \[plugins.p\] unknown key 'levle'"):
        make_core(ScriptedModel(), tmp_path, plugins=[P()], plugin_config={"p": {"levle": 2}}, config_source="lash.toml")
    with pytest.raises(ConfigError, match=r"\[plugins.p\] key 'level': expected an integer, got str"):
        make_core(ScriptedModel(), tmp_path, plugins=[P()], plugin_config={"p": {"level": "high"}})
    with pytest.raises(ConfigError, match=r"no loaded plugin is named 'ghost'"):
        make_core(ScriptedModel(), tmp_path, plugins=[P()], plugin_config={"ghost": {}})


def test_conflicts_name_both_plugins(tmp_path):
    class A:
        lash_plugin_name = "a"

        @hookimpl
        def lash_register_usage_sources(self, registry):
            registry.add("memory")

        @hookimpl
        def lash_register_modes(self, registry):
            registry.add("rlm", lambda config, history: None)

    class B:
        lash_plugin_name = "b"

        @hookimpl
        def lash_register_usage_sources(self, registry):
            registry.add("memory")

    class C:
        lash_plugin_name = "c"

        @hookimpl
        def lash_register_modes(self, registry):
            registry.add("rlm", lambda config, history: None)

    with pytest.raises(PluginHookError, match="usage source 'memory' from plugin 'a' conflicts with plugin 'b'"):
        make_core(ScriptedModel(), tmp_path, plugins=[A(), B()])
    with pytest.raises(PluginHookError, match="mode 'rlm' from plugin 'a' conflicts with plugin 'c'"):
        make_core(ScriptedModel(), tmp_path, plugins=[A(), C()])


async def test_registered_mode_runs_its_own_machine(tmp_path):
    from lash_kernel.runtime.machine import TurnMachine

    built = []

    def careful(config, history):
        built.append(config.max_turns)
        return TurnMachine(config=attrs.evolve(config, max_turns=1), history=history, repair=False)

    class Modes:
        @hookimpl
        def lash_register_modes(self, registry):
            registry.add("careful", careful, description="one model call per turn")

    model = ScriptedModel()
    model.enqueue_tool_calls(("echo", {"text": "a"}))
    core = make_core(model, tmp_path, plugins=[Modes()])
    with pytest.raises(ConfigError, match="unknown mode 'nope'"):
        core.session("x", mode="nope")
    session = core.session("s", mode="careful")
    result = await session.turn("go").run()
    assert built == [16]
    assert result.outcome.reason == "max_turns"
    assert core.session("s").info.mode == "careful"


# ------------------------------------------------------------------------------- observation


async def test_trace_records_cover_a_turn_with_linked_ids(tmp_path):
    records: list[TraceRecord] = []

    class Tracer:
        @hookimpl
        def lash_on_trace_record(self, record):
            records.append(record)

    model = ScriptedModel()
    model.enqueue_tool_calls(("echo", {"text": "a"}), usage=TokenUsage(input_tokens=10, output_tokens=2))
    model.enqueue_text("done", usage=TokenUsage(input_tokens=15, output_tokens=1))
    core = make_core(model, tmp_path, plugins=[Tracer()], prompt="Be brief.", clock=lambda: 1000.0)
    with core.session("s") as session:
        await session.turn("go", turn_id="t1").run()
    assert [r.kind for r in records] == [
        "session.opened", "turn.started", "prompt.built",
        "model_call.started", "model_call.completed", "tool_call.started", "tool_call.completed",
        "model_call.started", "model_call.completed", "usage", "turn.finished", "session.closed",
    ]
    assert set(r.kind for r in records) <= set(TRACE_KINDS)
    by_kind = {r.kind: r for r in records}
    assert by_kind["model_call.completed"].span_id == "t1:m2#1"
    assert all(r.parent_span_id == "t1" for r in records if r.kind.startswith(("model_call", "tool_call")))
    assert by_kind["tool_call.completed"].span_id == "t1:t:call_1"
    assert by_kind["tool_call.completed"].attributes["output"] == "echo:a"
    first_model = records[4].attributes
    assert first_model["usage"]["input_tokens"] == 10 and first_model["finish_reason"] == "tool_calls"
    assert first_model["provider"] == "scripted" and first_model["model"] == "scripted"
    assert by_kind["turn.finished"].attributes["usage"]["input_tokens"] == 25
    assert by_kind["turn.finished"].attributes["outcome"]["type"] == "finished"
    import hashlib

    assert by_kind["prompt.built"].attributes["sha256"] == hashlib.sha256(b"Be brief.").hexdigest()
    assert all(r.session_id == "s" and r.time_s == 1000.0 for r in records)


async def test_tool_progress_becomes_an_activity(tmp_path):
    @tool
    async def slow(ctx: ToolContext) -> ToolOutput:
        """Work in steps."""
        for i in (1, 2):
            ctx.report_progress(i, 2, f"step {i}")
        return ToolOutput(text="done", attachments=())

    model = ScriptedModel()
    model.enqueue_tool_calls(("slow", {}))
    model.enqueue_text("ok")
    core = make_core(model, tmp_path, tools=[slow])
    result = await core.session("s").turn("go").run()
    progress = [a.event for a in result.activities if isinstance(a.event, ToolCallProgress)]
    assert progress == [
        ToolCallProgress(call_id="call_1", name="slow", progress=1.0, total=2.0, message="step 1"),
        ToolCallProgress(call_id="call_1", name="slow", progress=2.0, total=2.0, message="step 2"),
    ]
    kinds = [a.kind for a in result.activities]
    assert kinds.index("tool_call_progress") < kinds.index("tool_call_completed")


async def test_tool_providers_are_listed_per_turn_and_failures_reported(tmp_path):
    class Remote:
        name = "remote"

        def __init__(self):
            self.tools = [Tool(name="r1", fn=lambda: "one")]
            self.closed = False

        async def list_tools(self):
            return list(self.tools)

        def close(self):
            self.closed = True

    class Flaky:
        name = "flaky"

        async def list_tools(self):
            raise ConnectionError("server down")

        def close(self):
            pass

    remote = Remote()

    class Provides:
        lash_plugin_name = "remote-plugin"

        @hookimpl
        def lash_register_tools(self, registry):
            registry.add_provider(remote)
            registry.add_provider(Flaky())

    model = ScriptedModel()
    model.enqueue_text("a")
    model.enqueue_text("b")
    core = make_core(model, tmp_path, plugins=[Provides()])
    session = core.session("s")
    first = await session.turn("x").run()
    remote.tools.append(Tool(name="r2", fn=lambda: "two"))
    await session.turn("y").run()
    assert [t.name for t in model.requests[0].tools] == ["echo", "r1"]
    assert [t.name for t in model.requests[1].tools] == ["echo", "r1", "r2"]
    errors = [a.event for a in first.activities if isinstance(a.event, ErrorReported)]
    assert errors and errors[0].kind == "tool_provider" and "server down" in errors[0].message
    catalog, failures = await core.tool_catalog()
    assert catalog.provider_of("r2") == "remote" and len(failures) == 1
    remote.tools.append(Tool(name="echo", fn=lambda: "clash"))  # taken by the host tool: skipped alone
    catalog, failures = await core.tool_catalog()
    assert catalog.names() == ("echo", "r1", "r2") and catalog.provider_of("echo") == "host"
    assert any("duplicate tool name 'echo'" in f and "tool skipped" in f for f in failures)
    core.close()
    assert remote.closed


async def test_tool_output_attachments_are_committed(tmp_path):
    from lash_kernel.messages import Attachment

    @tool
    def screenshot() -> ToolOutput:
        """Take a screenshot."""
        return ToolOutput(text="a red square", attachments=(Attachment(media_type="image/png", data="iVBORw0KGgo="),))

    db = tmp_path / "lash.db"
    model = ScriptedModel()
    model.enqueue_tool_calls(("screenshot", {}))
    model.enqueue_text("I see red")
    with make_core(model, tmp_path, store=SqliteStore(db), tools=[screenshot]) as core:
        await core.session("s").turn("look").run()
    with SqliteStore(db) as store:
        results = [p for n in store.load_active_path("s") for p in n.payload.parts if isinstance(p, ToolResultPart)]
    assert results[0].attachments == (Attachment(media_type="image/png", data="iVBORw0KGgo="),)


def test_block_given_as_a_generator_still_excuses_its_config_table(tmp_path):
    # the blocked name is read by the loader and again by config validation
    core = LashCore(
        model_client=ScriptedModel(), model="scripted", block=(n for n in ["ghost"]), plugin_config={"ghost": {"x": 1}}
    )
    assert "ghost" not in core.plugin_configs
    core.close()
