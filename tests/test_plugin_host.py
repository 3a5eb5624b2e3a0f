"""The ``PluginHost`` plugins receive instead of the core: stash, session stash, tools, names,
and the usage sources the kernel reads back."""

from __future__ import annotations

import logging
from typing import ClassVar

import attrs
import pytest

from lash_kernel import LashCore, hookimpl
from lash_kernel.errors import ConfigError, LashError, PluginError
from lash_kernel.outcomes import Finished
from lash_kernel.plugin import PluginHost, StashKey, TurnMachine
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import ScriptedModel
from lash_kernel.tools import tool
from lash_kernel.usage import TokenUsage

pytestmark = pytest.mark.anyio


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text


def make_core(model: ScriptedModel | None = None, **kw) -> LashCore:
    return LashCore(model_client=model or ScriptedModel(), model="scripted", entry_points=False, **kw)


# ------------------------------------------------------------------------------- the host object


def test_configure_gets_a_narrow_host_that_every_hook_can_ask_for():
    seen: dict[str, object] = {}

    class Probe:
        lash_plugin_name = "probe"

        @hookimpl
        def lash_configure(self, host, config):
            seen["configure"] = host

        @hookimpl
        def lash_register_tools(self, registry, host):
            seen["tools"] = host

        @hookimpl
        def lash_session_opened(self, host):
            seen["opened"] = host

        @hookimpl
        def lash_after_turn(self, host):
            seen["after_turn"] = host

    model = ScriptedModel().enqueue_text("hi")
    core = make_core(model, plugins=[Probe()])
    core.run_sync("hello")
    host = core.plugin_host
    assert seen == {"configure": host, "tools": host, "opened": host, "after_turn": host}
    assert isinstance(host, PluginHost) and host is not core
    for name in ("pm", "store", "session", "hooks", "close"):
        assert not hasattr(host, name), name
    core.close()


def test_old_style_configure_core_is_rejected_naming_the_argument():
    class Old:
        lash_plugin_name = "old"

        @hookimpl
        def lash_configure(self, core, config):
            pass

    with pytest.raises(PluginError, match=r"(?s)cannot register plugin 'old'.*\{'core'\}"):
        make_core(plugins=[Old()])


def test_stash_is_per_core_even_for_one_module_level_plugin():
    turns = StashKey[int]()

    class Counter:  # one object on two cores: the stash separates them
        lash_plugin_name = "counter"

        @hookimpl
        def lash_configure(self, host):
            host.stash[turns] = 0

        @hookimpl
        def lash_after_turn(self, host):
            host.stash[turns] += 1

    plugin = Counter()
    model = ScriptedModel()
    for _ in range(3):
        model.enqueue_text("ok")
    one, two = make_core(model, plugins=[plugin]), make_core(model, plugins=[plugin])
    one.run_sync("a")
    one.run_sync("b")
    two.run_sync("c")
    assert (one.plugin_host.stash[turns], two.plugin_host.stash[turns]) == (2, 1)
    assert turns in one.plugin_host.stash and list(one.plugin_host.stash) == [turns]
    one.close()
    two.close()


def test_tools_view_is_read_only_and_complete_after_build():
    class Adds:
        lash_plugin_name = "adds"

        @hookimpl
        def lash_register_tools(self, registry):
            registry.add(tool(lambda: "x", name="plugin_tool"))

    core = make_core(tools=[echo], plugins=[Adds()])
    view = core.plugin_host.tools
    assert view.names() == ("echo", "plugin_tool")
    assert view.provider_of("plugin_tool") == "adds" and view.get("echo") is core.tools.get("echo")
    assert "echo" in view and len(view) == 2 and [t.name for t in view] == ["echo", "plugin_tool"]
    assert not hasattr(view, "add")
    core.close()


async def test_session_stash_outlives_handles_and_is_dropped_with_the_core(tmp_path):
    key = StashKey[list[str]]()

    class Notes:
        lash_plugin_name = "notes"

        @hookimpl
        def lash_before_turn(self, host, session_id, turn_id):
            host.session_stash(session_id).setdefault(key, []).append(turn_id)

    model = ScriptedModel().enqueue_text("1").enqueue_text("2").enqueue_text("3")
    core = make_core(model, plugins=[Notes()], store=SqliteStore(tmp_path / "lash.db"))
    host = core.plugin_host
    with core.session("s") as session:
        await session.turn("a", turn_id="t1").run()
    with core.session("s") as session:  # a new handle of the same session sees the same stash
        await session.turn("b", turn_id="t2").run()
    await core.session("other").turn("c", turn_id="t3").run()
    assert host.session_stash("s")[key] == ["t1", "t2"]
    assert host.session_stash("other")[key] == ["t3"]
    assert host.session_stash("s") is host.session_stash("s")
    core.close()
    with pytest.raises(LashError, match="closed"):
        host.session_stash("s")


# ------------------------------------------------------------------------------- stable names


@attrs.frozen
class Seen:
    KIND: ClassVar[str] = "test.host.seen"
    turns: int


class Anonymous:
    """Keeps state but has no ``lash_plugin_name``: its name would be ``Anonymous-<id>``."""

    @hookimpl
    def lash_register_record_types(self, registry):
        registry.add(Seen)

    @hookimpl
    def lash_snapshot_state(self):
        return Seen(turns=1)


def test_a_stateful_plugin_without_a_stable_name_is_a_config_error():
    # Before 0.2 this core was built, and the state committed under "Anonymous-7f..." was
    # never restored after a restart (the name changes in every process).
    with pytest.raises(ConfigError, match=r"Anonymous implements lash_snapshot_state .*lash_plugin_name"):
        make_core(plugins=[Anonymous()])


def test_add_plugin_needs_a_name_for_a_stateful_object_and_accepts_one():
    class Adder:
        lash_plugin_name = "adder"

        @hookimpl
        def lash_configure(self, host):
            with pytest.raises(ConfigError, match="lash_plugin_name"):
                host.add_plugin(Anonymous())
            host.add_plugin(Anonymous(), name="anonymous.state")

    core = make_core(plugins=[Adder()])
    assert [p.name for p in core.plugins()][:2] == ["anonymous.state", "adder"]
    core.close()


def test_a_named_or_stateless_object_is_fine():
    class Stateless:
        @hookimpl
        def lash_after_turn(self):
            pass

    class Named(Anonymous):
        lash_plugin_name = "named"

    core = make_core(plugins=[Stateless(), Named()])
    assert "named" in [p.name for p in core.plugins()]
    core.close()


# ------------------------------------------------------------------------------- usage sources


def _mode_with_source(source: str):
    def factory(config, history):
        return TurnMachine(config=attrs.evolve(config, source=source), history=history, repair=False)

    return factory


class Spender:
    """Adds a mode whose model calls are booked under ``ghost`` (declared or not)."""

    lash_plugin_name = "spender"

    def __init__(self, declare: bool) -> None:
        self.declare = declare

    @hookimpl
    def lash_register_modes(self, registry):
        registry.add("ghostly", _mode_with_source("ghost"))

    @hookimpl
    def lash_register_usage_sources(self, registry):
        if self.declare:
            registry.add("ghost", "tokens the ghost spends")


async def test_a_ledger_row_with_an_undeclared_source_logs_a_warning_once(caplog):
    model = ScriptedModel()
    for _ in range(2):
        model.enqueue_text("boo", usage=TokenUsage(input_tokens=3, output_tokens=1))
    core = make_core(model, plugins=[Spender(declare=False)])
    session = core.session("s", mode="ghostly")
    with caplog.at_level(logging.WARNING, logger="lash"):
        result = await session.turn("hi").run()
        await session.turn("again").run()
    assert isinstance(result.outcome, Finished)
    assert session.usage_ledger().get("ghost", "scripted") == TokenUsage(input_tokens=6, output_tokens=2)
    warnings = [r for r in caplog.records if "usage source 'ghost'" in r.getMessage()]
    assert len(warnings) == 1
    assert "lash_register_usage_sources" in warnings[0].getMessage()
    assert "declared: child, turn" in warnings[0].getMessage()
    core.close()


async def test_a_declared_source_is_quiet_and_listed_with_its_plugin(caplog):
    model = ScriptedModel().enqueue_text("boo", usage=TokenUsage(input_tokens=3))
    core = make_core(model, plugins=[Spender(declare=True)])
    with caplog.at_level(logging.WARNING, logger="lash"):
        await core.session("s", mode="ghostly").turn("hi").run()
    assert "usage source" not in caplog.text
    infos = {p.name: p for p in core.plugins()}
    assert infos["spender"].usage_sources == ("ghost",)
    assert infos["lash.standard"].usage_sources == ("child", "turn")
    assert infos["lash.commands"].usage_sources == ()
    assert dict(core.plugin_host.usage_sources) == {
        "child": ("lash.standard", "model calls of child sessions opened without a source of their own"),
        "turn": ("lash.standard", "the session's own model calls"),
        "ghost": ("spender", "tokens the ghost spends"),
    }
    with pytest.raises(TypeError):
        core.plugin_host.usage_sources["x"] = ("me", "")  # type: ignore[index]
    core.close()
