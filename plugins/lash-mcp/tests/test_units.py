"""Pure parts: catalog names, config validation, result mapping (with the SDK's real types)."""

from __future__ import annotations

import base64
import json

import pytest
from mcp.types import (
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from lash_kernel.errors import ConfigError, PluginHookError
from lash_kernel.messages import Attachment
from lash_kernel.runtime.core import LashCore
from lash_kernel.testing import ScriptedModel
from lash_mcp import MCPConfig, MCPManager, MCPPlugin, ServerConfig, tool_name
from lash_mcp._naming import find_collisions
from lash_mcp._results import to_tool_output

NAME_RE = r"^[a-zA-Z0-9_-]{1,64}$"


# ------------------------------------------------------------------------------------ naming
def test_tool_name_plain_and_sanitised() -> None:
    assert tool_name("time", "get_current_time") == "mcp__time__get_current_time"
    assert tool_name("my server", "dotted.name/x") == "mcp__my_server__dotted_name_x"
    assert tool_name("héllo", "a-b") == "mcp__h_llo__a-b"


def test_long_names_are_shortened_deterministically() -> None:
    long_tool = "t" * 100
    name = tool_name("srv", long_tool)
    assert len(name) == 64
    assert __import__("re").match(NAME_RE, name)
    assert name == tool_name("srv", long_tool)  # deterministic
    assert name != tool_name("srv", long_tool + "x")  # same prefix, different hash
    assert name.startswith("mcp__srv__ttt")


def test_collisions_name_both_originals() -> None:
    errors = find_collisions([("s", "a.b"), ("s", "a_b"), ("s", "ok")])
    assert set(errors) == {("s", "a.b"), ("s", "a_b")}
    message = errors[("s", "a.b")]
    assert "'a.b'" in message and "'a_b'" in message and "mcp__s__a_b" in message
    # server/tool split ambiguity: "a__b" + "c" vs "a" + "b__c"
    assert len(find_collisions([("a__b", "c"), ("a", "b__c")])) == 2


def test_attach_rejects_server_names_that_normalise_alike() -> None:
    manager = MCPManager({"my.server": {"url": "http://127.0.0.1:1/mcp"}})
    with pytest.raises(ValueError, match=r"'my\.server' and 'my_server'"):
        manager.attach_server("my_server", {"url": "http://127.0.0.1:1/mcp"})
    with pytest.raises(ValueError, match="already attached"):
        manager.attach_server("my.server", {"url": "http://127.0.0.1:1/mcp"})
    manager.close()


# ------------------------------------------------------------------------------------ config
def test_server_config_needs_exactly_one_transport() -> None:
    with pytest.raises(ValueError, match="exactly one of 'command'.*got neither"):
        ServerConfig()
    with pytest.raises(ValueError, match="got both"):
        ServerConfig(command="x", url="http://h/mcp")
    with pytest.raises(ValueError, match="'headers' apply to 'url' servers"):
        ServerConfig(command="x", headers={"a": "b"})
    with pytest.raises(ValueError, match="'args' applies to 'command' servers"):
        ServerConfig(url="http://h/mcp", args=["x"])
    with pytest.raises(ValueError, match="http:// or https://"):
        ServerConfig(url="ftp://h")
    with pytest.raises(ValueError, match="call_timeout_s must be a positive"):
        ServerConfig(command="x", call_timeout_s=0)
    assert ServerConfig(command="x").transport == "stdio"
    assert ServerConfig(url="https://h/mcp").transport == "http"


def _core(**kwargs: object) -> LashCore:
    return LashCore(model_client=ScriptedModel(), model="scripted", **kwargs)  # type: ignore[arg-type]


def test_config_table_is_validated_by_the_kernel() -> None:
    table = {
        "servers": {"time": {"command": "python", "args": ["-m", "mcp_server_time"], "call_timeout_s": 5}},
        "init_timeout_s": 10,
    }
    core = _core(allow=["mcp"], plugin_config={"mcp": table})
    config = core.plugin_configs["mcp"]
    assert isinstance(config, MCPConfig)
    assert config.servers["time"] == ServerConfig(command="python", args=["-m", "mcp_server_time"], call_timeout_s=5)
    from lash_mcp import get_manager

    manager = get_manager(core)
    assert manager.init_timeout_s == 10 and manager.call_timeout_s == 60
    assert [s.name for s in manager.status()] == ["time"]
    assert manager.status()[0].state == "idle"  # nothing starts before first use
    core.close()
    assert manager.closed


def test_config_unknown_key_and_missing_transport_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="comand"):
        _core(allow=["mcp"], plugin_config={"mcp": {"servers": {"t": {"comand": "x"}}}})
    with pytest.raises(ConfigError, match="exactly one of 'command'"):
        _core(allow=["mcp"], plugin_config={"mcp": {"servers": {"t": {"args": ["x"]}}}})


def test_same_server_in_code_and_config_is_an_error() -> None:
    plugin = MCPPlugin(servers={"t": {"command": "x"}})
    with pytest.raises(PluginHookError, match="already attached"):
        _core(allow=["mcp"], plugins=[plugin], plugin_config={"mcp": {"servers": {"t": {"command": "y"}}}})


def test_each_core_keeps_its_manager_in_its_plugin_stash() -> None:
    from lash_mcp import MANAGER, get_manager

    plugin = MCPPlugin(servers={"t": {"command": "x"}})
    first, second = _core(entry_points=False, plugins=[plugin]), _core(entry_points=False, plugins=[plugin])
    manager = first.plugin_host.stash[MANAGER]
    assert manager is get_manager(first) is get_manager(first.plugin_host)
    assert manager is not second.plugin_host.stash[MANAGER]
    assert [s.name for s in second.plugin_host.stash[MANAGER].status()] == ["t"]
    first.close()
    assert manager.closed and not get_manager(second).closed
    second.close()


def test_get_manager_without_the_plugin() -> None:
    from lash_mcp import get_manager

    core = _core(entry_points=False)
    with pytest.raises(LookupError, match="no MCP manager"):
        get_manager(core)
    core.close()


# ------------------------------------------------------------------------------------ results
PNG = base64.b64encode(b"\x89PNG fake").decode()


def test_text_and_error() -> None:
    out = to_tool_output(CallToolResult(content=[TextContent(text="a"), TextContent(text="b")]))
    assert (out.text, out.attachments, out.is_error) == ("a\nb", (), False)
    assert to_tool_output(CallToolResult(content=[TextContent(text="boom")], is_error=True)).is_error


def test_structured_content() -> None:
    only = to_tool_output(CallToolResult(content=[], structured_content={"t": 1.5, "ok": True}))
    assert json.loads(only.text) == {"t": 1.5, "ok": True}
    # servers also send it serialised as text: the text is used, not duplicated
    both = to_tool_output(CallToolResult(content=[TextContent(text='{"t": 1.5}')], structured_content={"t": 1.5}))
    assert both.text == '{"t": 1.5}'


def test_images_and_resources() -> None:
    out = to_tool_output(
        CallToolResult(
            content=[
                ImageContent(data=PNG, mime_type="image/png"),
                EmbeddedResource(resource=TextResourceContents(uri="file:///n.txt", text="notes")),
                EmbeddedResource(resource=BlobResourceContents(uri="file:///b.bin", blob=PNG, mime_type="application/pdf")),
                ResourceLink(uri="file:///x", name="x"),
            ]
        )
    )
    assert out.attachments == (
        Attachment(media_type="image/png", data=PNG),
        Attachment(media_type="application/pdf", data=PNG, name="file:///b.bin"),
    )
    assert out.text == "[resource file:///n.txt]\nnotes\n[resource link file:///x (x)]"
    image_only = to_tool_output(CallToolResult(content=[ImageContent(data=PNG, mime_type="image/png")]))
    assert image_only.text == "[image/png]"


def test_bare_command_missing_from_path_is_found_beside_the_interpreter(monkeypatch):
    import sys
    from pathlib import Path

    from lash_mcp._manager import _resolve_command

    monkeypatch.setenv("PATH", "/nonexistent")
    name = Path(sys.executable).name
    assert _resolve_command(name) == str(Path(sys.executable).parent / name)
    assert _resolve_command("no-such-tool-xyz") == "no-such-tool-xyz"
    assert _resolve_command("/bin/sh") == "/bin/sh"


# ------------------------------------------------------------------------------------ annotations
def test_read_only_hint_marks_the_tool_read_only() -> None:
    from mcp.types import Tool as MCPTool
    from mcp.types import ToolAnnotations

    from lash_mcp._tools import build_tool

    schema = {"type": "object", "properties": {}}
    hinted = MCPTool(name="get", input_schema=schema, annotations=ToolAnnotations(read_only_hint=True))
    writer = MCPTool(name="put", input_schema=schema, annotations=ToolAnnotations(read_only_hint=False))
    bare = MCPTool(name="bare", input_schema=schema)
    assert build_tool(MCPManager(), "s", hinted).read_only is True
    assert build_tool(MCPManager(), "s", writer).read_only is False
    assert build_tool(MCPManager(), "s", bare).read_only is False
