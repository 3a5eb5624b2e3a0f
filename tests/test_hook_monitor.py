"""One monitored seam for hook calls: ``KernelHooks.monitor``, pluggy's own hook-call
monitoring, ``HookRecorder`` and ``LASH_TRACE_HOOKS``."""

from __future__ import annotations

import pytest

from lash_kernel import LashCore, hookimpl
from lash_kernel.activity import ErrorReported
from lash_kernel.directives import CompactionPlan
from lash_kernel.errors import PluginError
from lash_kernel.outcomes import Finished
from lash_kernel.plugin import PluginHost
from lash_kernel.testing import HookRecorder, ScriptedModel
from lash_kernel.tools import tool
from lash_kernel.usage import TokenUsage

pytestmark = pytest.mark.anyio


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return f"echo:{text}"


class Probe:
    """A sync, an async and an observer hook."""

    lash_plugin_name = "probe"

    @hookimpl
    async def lash_before_turn(self, turn_id):
        return None

    @hookimpl
    def lash_before_tool_call(self, call):
        return None

    @hookimpl
    def lash_on_activity(self, activity):
        pass


def make_core(model: ScriptedModel, **kw) -> LashCore:
    kw.setdefault("tools", [echo])
    return LashCore(model_client=model, model="scripted", entry_points=False, **kw)


def script(model: ScriptedModel, turns: int = 1) -> ScriptedModel:
    for _ in range(turns):
        model.enqueue_tool_calls(("echo", {"text": "a"}), usage=TokenUsage(input_tokens=10))
        model.enqueue_text("done", usage=TokenUsage(input_tokens=12))
    return model


# ------------------------------------------------------------------------------- KernelHooks.monitor


async def test_monitor_sees_every_implementation_call_with_plugin_args_result_and_time():
    seen_before, seen_after = [], []
    core = make_core(script(ScriptedModel(), 2), plugins=[Probe()])
    undo = core.hooks.monitor(before=seen_before.append, after=lambda call, outcome: seen_after.append((call, outcome)))
    result = await core.session("s").turn("go", turn_id="t1").run()
    assert isinstance(result.outcome, Finished)
    hooks = [call.hook for call in seen_before]
    assert hooks == [call.hook for call, _ in seen_after]
    assert {"lash_before_turn", "lash_before_tool_call", "lash_on_activity", "lash_after_turn"} <= set(hooks)
    before_turn = next(c for c in seen_before if c.hook == "lash_before_turn")
    assert before_turn.plugin == "probe"
    assert before_turn.kwargs["turn_id"] == "t1" and before_turn.kwargs["user_input"].text == "go"
    assert before_turn.kwargs["host"] is core.plugin_host
    with pytest.raises(TypeError):
        before_turn.kwargs["turn_id"] = "x"  # type: ignore[index]
    after_turn = [(c, o) for c, o in seen_after if c.hook == "lash_after_turn"]
    assert [c.plugin for c, _ in after_turn] == ["lash.standard"]
    assert all(o.exception is None and o.result is None and o.duration_s >= 0 for _, o in seen_after)

    undo()
    undo()  # idempotent
    count = len(seen_before)
    await core.session("s").turn("again").run()
    assert len(seen_before) == count
    core.close()


async def test_monitored_calls_await_async_results_and_keep_error_attribution():
    class Mixed:
        lash_plugin_name = "mixed"

        @hookimpl
        async def lash_before_tool_call(self, call):
            return call  # an async implementation: the monitor sees the awaited value

        @hookimpl
        def lash_on_activity(self, activity):
            raise RuntimeError("observer broke")

    class Later:
        lash_plugin_name = "later"
        seen = 0

        @hookimpl(trylast=True)
        def lash_on_activity(self, activity):
            Later.seen += 1

    outcomes = []
    core = make_core(script(ScriptedModel()), plugins=[Later(), Mixed()])
    core.hooks.monitor(after=lambda call, outcome: outcomes.append((call.hook, call.plugin, outcome)))
    result = await core.session("s").turn("go").run()
    assert isinstance(result.outcome, Finished)
    (tool_call,) = [o for h, p, o in outcomes if h == "lash_before_tool_call"]
    assert tool_call.result.name == "echo" and tool_call.exception is None
    failures = [o for h, p, o in outcomes if h == "lash_on_activity" and p == "mixed"]
    assert failures and all(isinstance(o.exception, RuntimeError) for o in failures)
    assert Later.seen == len(failures)  # every observer still ran after the failing one
    reported = [a.event.message for a in result.activities if isinstance(a.event, ErrorReported)]
    assert any("plugin 'mixed' failed in lash_on_activity: RuntimeError: observer broke" in m for m in reported)
    core.close()


async def test_monitored_and_unmonitored_turns_are_identical():
    class Planner:
        lash_plugin_name = "planner"

        @hookimpl
        def lash_plan_compaction(self, messages):
            return CompactionPlan(keep_last=1, summary="s") if len(messages) > 2 else None

        @hookimpl
        def lash_transform_context(self, messages):
            return messages[-3:]

    results = []
    for monitored in (False, True):
        model = ScriptedModel()
        for _ in range(3):
            script(model)
        core = make_core(model, plugins=[Planner()], context_window=1000)
        if monitored:
            core.hooks.monitor(after=lambda call, outcome: None)
            assert core.hooks.monitored
        else:
            assert not core.hooks.monitored
        session = core.session("s")
        turns = [await session.turn(p, turn_id=f"t{i}").run() for i, p in enumerate("abc")]
        results.append(([t.outcome for t in turns], [r.messages for r in model.requests], session.history()))
        core.close()
    assert results[0] == results[1]


def test_firstresult_comes_from_the_spec_on_both_paths():
    calls: list[str] = []

    class First:
        lash_plugin_name = "first"

        @hookimpl(tryfirst=True)
        def lash_plan_compaction(self):
            calls.append("first")
            return CompactionPlan(keep_last=1, summary="x")

    class Never:
        lash_plugin_name = "never"

        @hookimpl
        def lash_plan_compaction(self):
            calls.append("never")

    core = make_core(ScriptedModel(), plugins=[Never(), First()])
    assert core.pm.hook.lash_plan_compaction.spec.opts["firstresult"]
    args = {"session_id": "s", "messages": (), "context_window": None, "input_tokens": 0}
    assert core.hooks.plan_compaction(**args) == CompactionPlan(keep_last=1, summary="x")
    core.hooks.monitor()
    assert core.hooks.plan_compaction(**args) == CompactionPlan(keep_last=1, summary="x")
    assert calls == ["first", "first"]
    core.close()


# ------------------------------------------------------------------------------- pluggy's monitoring


async def test_pluggy_hookcall_monitoring_sees_the_kernel_calls():
    # Before 0.2 KernelHooks called implementations directly: this list stayed empty for a
    # whole turn.
    seen: list[tuple[str, list[str]]] = []
    core = make_core(script(ScriptedModel(), 2), plugins=[Probe()])
    undo = core.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: seen.append((name, [i.plugin_name for i in impls])),
        lambda outcome, name, impls, kwargs: None,
    )
    await core.session("s").turn("go").run()
    assert ("lash_before_turn", ["probe"]) in seen
    assert ("lash_before_tool_call", ["probe"]) in seen
    assert ("lash_after_turn", ["lash.standard"]) in seen
    assert all(len(plugins) == 1 for _, plugins in seen)  # one call per implementation
    undo()
    assert not core.hooks.monitored
    count = len(seen)
    await core.session("s").turn("again").run()
    assert len(seen) == count
    core.close()


def test_implementation_parameters_with_defaults_are_rejected():
    class Defaults:
        lash_plugin_name = "defaults"

        @hookimpl
        def lash_after_turn(self, usage, turn_id="?"):
            pass

    with pytest.raises(PluginError, match="plugin 'defaults': lash_after_turn parameters must not have defaults"):
        make_core(ScriptedModel(), plugins=[Defaults()])


# ------------------------------------------------------------------------------- HookRecorder


async def test_hook_recorder_calls_and_pop():
    core = make_core(script(ScriptedModel(), 2), plugins=[Probe()])
    with HookRecorder(core) as recorder:
        await core.session("s").turn("go", turn_id="t1").run()
        (before,) = recorder.calls("lash_before_turn")
        assert before.plugin == "probe" and before["turn_id"] == "t1" and before.exception is None
        assert isinstance(before["host"], PluginHost)
        both = recorder.calls("lash_before_turn", "lash_before_tool_call")
        assert [c.hook for c in both] == ["lash_before_turn", "lash_before_tool_call"]
        assert len(recorder.calls()) == len(recorder) > len(both)

        popped = recorder.pop("lash_before_turn")
        assert popped == before and recorder.calls("lash_before_turn") == []
        expected = r"no recorded call of 'lash_before_turn'; recorded hooks: .*lash_on_activity"
        with pytest.raises(LookupError, match=expected):
            recorder.pop("lash_before_turn")
        recorder.clear()
        assert recorder.calls() == []
    await core.session("s").turn("after close").run()
    assert recorder.calls() == []
    core.close()


def test_hook_recorder_records_failures_and_rejects_non_cores():
    class Grumpy:
        lash_plugin_name = "grumpy"

        @hookimpl
        def lash_session_opened(self):
            raise RuntimeError("nope")

    core = make_core(ScriptedModel(), plugins=[Grumpy()])
    recorder = HookRecorder().attach(core)
    core.session("s")
    (call,) = recorder.calls("lash_session_opened")
    assert isinstance(call.exception, RuntimeError) and call.result is None
    with pytest.raises(TypeError, match="expected a LashCore or KernelHooks"):
        recorder.attach(object())
    recorder.close()
    core.close()


# ------------------------------------------------------------------------------- LASH_TRACE_HOOKS


def test_lash_trace_hooks_prints_each_call_plugin_and_duration(monkeypatch, capsys):
    monkeypatch.setenv("LASH_TRACE_HOOKS", "1")
    core = make_core(ScriptedModel().enqueue_text("hi"), plugins=[Probe()])
    core.run_sync("hello")
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert any(line.startswith("lash hook lash_before_turn plugin=probe ") and line.endswith(" ms") for line in lines)
    assert not any(line.startswith("lash hook lash_configure ") for line in lines)  # nobody implements it
    assert any(line.startswith("lash hook lash_register_modes plugin=lash.standard ") for line in lines)
    assert any(line.startswith("lash hook lash_after_turn plugin=lash.standard ") for line in lines)
    core.close()


def test_lash_trace_hooks_is_read_when_the_core_is_built(monkeypatch, capsys):
    monkeypatch.delenv("LASH_TRACE_HOOKS", raising=False)
    core = make_core(ScriptedModel().enqueue_text("hi").enqueue_text("ho"), plugins=[Probe()])
    monkeypatch.setenv("LASH_TRACE_HOOKS", "1")  # too late for this core
    core.run_sync("hello")
    assert "lash hook" not in capsys.readouterr().err
    monkeypatch.setenv("LASH_TRACE_HOOKS", "0")
    other = make_core(ScriptedModel().enqueue_text("hi"), plugins=[Probe()])
    other.run_sync("hello")
    assert "lash hook" not in capsys.readouterr().err
    core.close()
    other.close()


def test_lash_trace_hooks_reports_a_failure(monkeypatch, capsys):
    class Broken:
        lash_plugin_name = "broken"

        @hookimpl
        def lash_before_tool_call(self, call):
            raise ValueError("bad call")

    monkeypatch.setenv("LASH_TRACE_HOOKS", "1")
    with make_core(script(ScriptedModel()), plugins=[Broken()]) as core:
        result = core.run_sync("go")  # the failure becomes the tool's error result
    assert result.tool_calls[0][1].is_error
    err = capsys.readouterr().err
    assert "lash hook lash_before_tool_call plugin=broken " in err
    assert " ms raised ValueError: bad call" in err
