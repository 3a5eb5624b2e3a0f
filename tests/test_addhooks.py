"""Plugins publish hookspecs for other plugins (``lash_addhooks``) and call them through the host."""

from __future__ import annotations

import sys
import types

import pytest

from lash_kernel import LashCore
from lash_kernel.errors import ConfigError, PluginError, PluginHookError
from lash_kernel.plugin import CompactionPlan, PluginHost, hookimpl, hookspec
from lash_kernel.runtime.loader import load_plugins, make_plugin_manager
from lash_kernel.testing import HookRecorder, ScriptedModel
from lash_kernel.usage import TokenUsage

pytestmark = pytest.mark.anyio


class CompactionSpecs:
    """The hooks the compaction plugin publishes."""

    @hookspec
    def compaction_on_compacted(self, session_id: str, summary: str, host: PluginHost) -> str | None:
        """The compaction plugin replaced old messages by ``summary``."""

    @hookspec(firstresult=True)
    def compaction_pick_summary(self, candidates: tuple[str, ...]) -> str | None:
        """Choose a summary; the first non-None answer wins."""


class Compaction:
    """Publishes ``compaction_*`` and calls them when it compacts."""

    lash_plugin_name = "compaction"

    def __init__(self) -> None:
        self.answers: list[list[object]] = []

    @hookimpl
    def lash_addhooks(self, registry):
        assert registry.add(CompactionSpecs) == ("compaction_on_compacted", "compaction_pick_summary")

    @hookimpl
    def lash_plan_compaction(self, host, session_id, messages):
        if len(messages) < 3:
            return None
        (summary,) = host.call_hook("compaction_pick_summary", candidates=("short", "long")) or ["default"]
        self.answers.append(host.call_hook("compaction_on_compacted", session_id=session_id, summary=summary))
        return CompactionPlan(keep_last=1, summary=summary)


class Memory:
    """Reacts to the compaction plugin's hook, which it implements like any other."""

    lash_plugin_name = "memory"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    @hookimpl
    def compaction_on_compacted(self, session_id, summary, host):
        self.seen.append((session_id, summary, isinstance(host, PluginHost)))
        return f"memory saw {summary}"

    @hookimpl
    def compaction_pick_summary(self, candidates):
        return candidates[-1]


class Picky:
    lash_plugin_name = "picky"

    @hookimpl(tryfirst=True)
    def compaction_pick_summary(self, candidates):
        return candidates[0]


def make_core(model: ScriptedModel | None = None, **kw) -> LashCore:
    return LashCore(model_client=model or ScriptedModel(), model="scripted", entry_points=False, **kw)


def two_turns() -> ScriptedModel:
    return ScriptedModel().enqueue_text("one", usage=TokenUsage(input_tokens=5)).enqueue_text("two")


@pytest.mark.parametrize("order", ["publisher first", "implementer first"])
async def test_one_plugin_publishes_a_hook_and_another_implements_it(order):
    compaction, memory = Compaction(), Memory()
    plugins = [compaction, memory] if order == "publisher first" else [memory, compaction]
    core = make_core(two_turns(), plugins=plugins)
    assert core.hooks.published == {"compaction_on_compacted": "compaction", "compaction_pick_summary": "compaction"}
    session = core.session("s")
    with HookRecorder(core) as recorder:
        await session.turn("hi").run()
        await session.turn("again").run()
    assert memory.seen == [("s", "long", True)]
    assert compaction.answers == [["memory saw long"]]
    (call,) = recorder.calls("compaction_on_compacted")
    assert call.plugin == "memory" and call["summary"] == "long"
    assert "compaction_on_compacted" in {p.name: p for p in core.plugins()}["memory"].hooks
    core.close()


def test_firstresult_of_a_published_spec_stops_at_the_first_answer():
    memory = Memory()
    core = make_core(plugins=[Compaction(), memory, Picky()])
    assert core.plugin_host.call_hook("compaction_pick_summary", candidates=("a", "b")) == ["a"]
    assert core.plugin_host.call_hook("compaction_on_compacted", session_id="x", summary="y") == ["memory saw y"]
    core.close()


async def test_acall_hook_awaits_async_implementations_in_order():
    order: list[str] = []

    class AsyncMemory:
        lash_plugin_name = "async-memory"

        @hookimpl
        async def compaction_on_compacted(self, summary):
            order.append(f"async:{summary}")
            return "awaited"

    core = make_core(plugins=[Compaction(), Memory(), AsyncMemory()])
    results = await core.plugin_host.acall_hook("compaction_on_compacted", session_id="s", summary="z")
    assert results == ["awaited", "memory saw z"] and order == ["async:z"]
    with pytest.raises(PluginHookError, match="compaction_on_compacted must not be async"):
        core.plugin_host.call_hook("compaction_on_compacted", session_id="s", summary="z")
    core.close()


def test_implementing_a_hook_nobody_published_is_an_unknown_hook():
    with pytest.raises(PluginError, match="compaction_on_compacted"):
        make_core(plugins=[Memory()])


def test_call_hook_refuses_kernel_hooks_unknown_hooks_and_bad_arguments():
    core = make_core(plugins=[Compaction(), Memory()])
    host = core.plugin_host
    with pytest.raises(PluginError, match="'lash_before_turn': it is a kernel hook"):
        host.call_hook("lash_before_turn", session_id="s")
    with pytest.raises(PluginError, match="'other_hook': it is not published"):
        host.call_hook("other_hook")
    with pytest.raises(TypeError, match=r"missing arguments \['summary'\], unknown arguments \['oops'\]"):
        host.call_hook("compaction_on_compacted", session_id="s", oops=1)
    core.close()


def test_a_failing_implementation_is_attributed_to_its_plugin():
    class Broken:
        lash_plugin_name = "broken-memory"

        @hookimpl
        def compaction_on_compacted(self):
            raise RuntimeError("disk full")

    core = make_core(plugins=[Compaction(), Broken()])
    with pytest.raises(PluginHookError, match="plugin 'broken-memory' failed in compaction_on_compacted: RuntimeError"):
        core.plugin_host.call_hook("compaction_on_compacted", session_id="s", summary="x")
    core.close()


def test_publishing_rules():
    class Kernelish:
        @hookspec
        def lash_mine(self) -> None:
            """Not allowed: the lash_ prefix is the kernel's."""

    class Historic:
        @hookspec(historic=True)
        def thing_happened(self) -> None:
            """Not supported."""

    def publisher(name: str, namespace: object) -> object:
        class Publisher:
            lash_plugin_name = name

            @hookimpl
            def lash_addhooks(self, registry):
                registry.add(namespace)

        return Publisher()

    cases = [
        ([publisher("k", Kernelish)], "hook names starting with 'lash_' are the kernel's"),
        ([publisher("h", Historic)], "historic hooks are not supported"),
        ([publisher("e", object())], "has no @hookspec functions"),
        (  # call order: the last registered publishes first
            [publisher("one", CompactionSpecs), publisher("two", CompactionSpecs)],
            "from plugin 'one' is already published by plugin 'two'",
        ),
    ]
    for plugins, message in cases:
        with pytest.raises(PluginHookError, match=message) as info:
            make_core(plugins=plugins)
        assert isinstance(info.value.__cause__, ConfigError)


def test_an_implementation_that_does_not_match_the_published_spec_is_rejected():
    class Wrong:
        lash_plugin_name = "wrong"

        @hookimpl
        def compaction_on_compacted(self, summary, mood):
            pass

    with pytest.raises(PluginHookError, match=r"(?s)hook published by plugin 'compaction'.*mood"):
        make_core(plugins=[Wrong(), Compaction()])


def test_a_plugin_added_later_publishes_through_add_plugin():
    memory = Memory()

    class Loader:
        lash_plugin_name = "loader"

        @hookimpl
        def lash_configure(self, host):
            host.add_plugin(Compaction())
            host.add_plugin(memory)

    core = make_core(plugins=[Loader()])
    assert core.plugin_host.call_hook("compaction_on_compacted", session_id="s", summary="late") == ["memory saw late"]
    core.close()


def test_the_cli_loader_runs_addhooks_too(monkeypatch):
    module = types.ModuleType("lash_test_memory_plugin")
    module.compaction_on_compacted = hookimpl(lambda summary: None)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    pm = make_plugin_manager()
    load_plugins(pm, builtins=[], plugins=[Compaction(), module], entry_points=False)
    assert pm.hook.compaction_on_compacted.spec is not None
