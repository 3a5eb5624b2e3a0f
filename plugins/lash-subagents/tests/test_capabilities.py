"""Capabilities: each one's tool set, interactive tools stripped, user-defined capabilities from
the config table and from another plugin, and the spec recorded on the child session."""

from __future__ import annotations

import pytest
from subagents_testing import RoutedModel, make_core

import lash_subagents
from lash_kernel import LashCore, SessionSpec
from lash_kernel.plugin import ConfigError, LashError, hookimpl, tool
from lash_kernel.testing import ScriptedModel
from lash_subagents import Capability, SubagentsConfig, child_spec

pytestmark = pytest.mark.anyio


@tool(read_only=True)
def read_file(path: str) -> str:
    """Read a file."""
    return f"contents of {path}"


@tool
def write_file(path: str, text: str) -> str:
    """Write a file."""
    return "written"


@tool(read_only=True, interactive=True)
def ask_user(question: str) -> str:
    """Ask the person."""
    return "yes"


@tool(read_only=True)
def secret(key: str) -> str:
    """A tool the parent session is denied."""
    return "s3cret"


TOOLS = [read_file, write_file, ask_user, secret]
PARENT = SessionSpec(tools_deny=("secret",), model="big")


def tools_seen(model: ScriptedModel) -> set[str]:
    return {t.name for t in model.requests[-1].tools}


async def spawn_once(tmp_path, capability: str, **core_kwargs):
    """Run a parent turn that spawns one child of ``capability``; return (core, model, result)."""
    model = RoutedModel()
    model.reply(None, calls=(("spawn_agent", {"task": "look", "capability": capability}),))
    model.reply("look", "child answer")
    model.reply(None, "parent answer")
    core = make_core(tmp_path, model, tools=TOOLS, **core_kwargs)
    result = await core.session("p", spec=PARENT).turn("go").run()
    return core, model, result


async def test_the_parent_sees_spawn_agent_listing_the_capabilities(tmp_path):
    core, model, result = await spawn_once(tmp_path, "explore")
    with core:
        assert tools_seen(model.root) == {"read_file", "write_file", "ask_user", "spawn_agent"}
        spawn = next(t for t in model.root.requests[0].tools if t.name == "spawn_agent")
        assert "- explore: read-only" in spawn.description and "- peer: " in spawn.description
        assert result.tool_calls[0][1].output == "child answer"


async def test_explore_gets_only_read_only_tools_of_the_parent_and_never_interactive_ones(tmp_path):
    core, model, _ = await spawn_once(tmp_path, "explore")
    with core:
        assert tools_seen(model.routes["look"]) == {"read_file"}  # not ask_user, not secret, no spawn
        [child] = core.session("p").children()
        spec = SessionSpec.from_json(child.spec)
        assert spec.tools_allow == ("read_file",) and "spawn_agent" in spec.tools_deny and "secret" in spec.tools_deny
        assert spec.model == "big" and spec.usage_source == "subagent"
        options = {"capability": "explore", "depth": 1, "max_depth": 5, "may_spawn": False}
        assert spec.plugin_options["subagents"] == options


async def test_peer_inherits_the_parents_tools_minus_interactive_and_may_spawn(tmp_path):
    core, model, _ = await spawn_once(tmp_path, "peer")
    with core:
        assert tools_seen(model.routes["look"]) == {"read_file", "write_file", "spawn_agent"}
        assert model.routes["look"].requests[0].model == "big"
        [child] = core.session("p").children()
        assert SessionSpec.from_json(child.spec).plugin_options["subagents"]["may_spawn"] is True


async def test_a_capability_from_the_config_table_narrows_and_swaps_the_model(tmp_path):
    table = {
        "capabilities": {
            "reviewer": {
                "description": "reviews things",
                "model": "small",
                "system_prompt": "You review.",
                "tools_allow": ["read_file", "write_file", "secret", "ask_user"],
                "tools_deny": ["write_file"],
                "max_turns": 3,
            }
        }
    }
    core, model, _ = await spawn_once(tmp_path, "reviewer", plugin_config={"subagents": table})
    with core:
        assert "- reviewer: reviews things" in core.tools.get("spawn_agent").description
        child_model = model.routes["look"]
        assert tools_seen(child_model) == {"read_file"}  # secret: the parent lacks it; ask_user: interactive
        assert child_model.requests[0].model == "small" and child_model.requests[0].system.startswith("You review.")
        spec = SessionSpec.from_json(core.session("p").children()[0].spec)
        assert spec.max_turns == 3 and spec.plugin_options["subagents"]["capability"] == "reviewer"


async def test_a_capability_with_no_tools_left_gets_none_at_all(tmp_path):
    table = {"capabilities": {"thinker": {"description": "just thinks", "tools_allow": []}}}
    core, model, _ = await spawn_once(tmp_path, "thinker", plugin_config={"subagents": table})
    with core:
        assert tools_seen(model.routes["look"]) == set()
        assert SessionSpec.from_json(core.session("p").children()[0].spec).tools_allow == ()


class OtherPlugin:
    """Another plugin offering a capability through the published hook."""

    @hookimpl
    def subagents_capabilities(self, host):
        return [Capability(name="writer", description="writes files", tools_allow=("write_file",))]


async def test_another_plugin_adds_a_capability_through_the_hook(tmp_path):
    core, model, _ = await spawn_once(tmp_path, "writer", plugins=[OtherPlugin()])
    with core:
        assert "- writer: writes files" in core.tools.get("spawn_agent").description
        assert tools_seen(model.routes["look"]) == {"write_file"}


def test_a_plugin_may_not_redefine_a_builtin_capability(tmp_path):
    class Clash:
        @hookimpl
        def subagents_capabilities(self):
            return [Capability(name="peer", description="mine")]

    with pytest.raises(LashError, match="defined twice"):
        make_core(tmp_path, ScriptedModel(), plugins=[Clash()])


async def test_an_unknown_capability_is_a_tool_error(tmp_path):
    core, model, result = await spawn_once(tmp_path, "wizard")
    with core:
        _, res = result.tool_calls[0]
        assert res.is_error and "unknown capability 'wizard'" in res.output and "explore, peer" in res.output
        assert core.session("p").children() == []
        model.routes.clear()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"max_depth": 0}, "max_depth"),
        ({"max_concurrent": -1}, "max_concurrent"),
        ({"capabilities": {"x": {"description": "d", "max_turns": 0}}}, "max_turns"),
        ({"capabilities": {"x": {"descripton": "d"}}}, "descripton"),
        ({"capabilities": {"bad name": {"description": "d"}}}, "capability name"),
    ],
)
def test_bad_config_tables_are_config_errors_naming_the_key(table, message):
    with pytest.raises(ConfigError, match=message):
        LashCore(model_client=ScriptedModel(), model="m", allow=["subagents"], plugin_config={"subagents": table})


def test_child_spec_never_grants_a_tool_the_parent_lacks():
    parent = SessionSpec(tools_deny=("x",), system_prompt="P", max_turns=7)
    cap = Capability(name="c", tools_allow=("read_file", "secret"), may_spawn=True)
    spec = child_spec(parent, [read_file, ask_user, write_file], cap, depth=2, max_depth=5)
    assert spec.tools_allow == ("read_file",) and spec.tools_deny == ("x",)
    assert spec.system_prompt == "P" and spec.max_turns == 7
    at_limit = child_spec(parent, [read_file, lash_subagents_tool()], cap, depth=5, max_depth=5)
    assert at_limit.tools_allow == ("read_file",) and "spawn_agent" in at_limit.tools_deny


def lash_subagents_tool():
    with LashCore(model_client=ScriptedModel(), model="m", allow=["subagents"]) as core:
        return core.tools.get(lash_subagents.SPAWN_TOOL)


def test_config_defaults():
    config = SubagentsConfig()
    assert config.max_depth == 5 and config.max_concurrent == 4 and config.capabilities == {}


def test_lash_plugins_lists_subagents_from_its_entry_point(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "LASH_PLUGINS": "subagents"}
    out = subprocess.run(
        [sys.executable, "-m", "lash_kernel", "plugins", "--json"], capture_output=True, text=True, env=env,
        cwd=tmp_path, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    [row] = [r for r in json.loads(out.stdout)["plugins"] if r["name"] == "subagents"]
    assert row["distribution"] == "lash-subagents" and row["usage_sources"] == ["subagent"]
