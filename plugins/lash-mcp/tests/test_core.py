"""lash-mcp inside a LashCore: model turns, catalog per turn, cancellation, close, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from lash_kernel.runtime.core import LashCore
from lash_kernel.testing import ScriptedModel
from lash_mcp import MCPPlugin, ServerConfig, get_manager


@pytest.fixture(autouse=True)
def _close_cores(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Close every LashCore a test built, even when the test fails half-way."""
    cores: list[LashCore] = []
    original = LashCore.__init__

    def init(self: LashCore, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        cores.append(self)

    monkeypatch.setattr(LashCore, "__init__", init)
    yield
    for core in cores:
        core.close()


def _tool_names(request: Any) -> list[str]:
    return [spec.name for spec in request.tools]


def test_model_turn_calls_mcp_time_and_commits_the_result(
    scripted_model: ScriptedModel, time_server: ServerConfig, children: Callable[[], set[int]]
) -> None:
    """lash.toml-style config through the installed entry point; one real model turn."""
    before = children()
    core = LashCore(
        model_client=scripted_model,
        model="scripted",
        allow=["mcp"],
        plugin_config={"mcp": {"servers": {"time": {"command": time_server.command, "args": time_server.args}}}},
    )
    scripted_model.enqueue_tool_calls(("mcp__time__get_current_time", {"timezone": "Europe/Paris"}))
    scripted_model.enqueue_text("It is time.")
    session = core.session()
    result = session.run_sync("what time is it in Paris?")

    assert result.outcome.KIND == "finished" and result.text == "It is time."
    [(call, tool_result)] = result.tool_calls
    assert call.name == "mcp__time__get_current_time"
    assert not tool_result.is_error
    assert json.loads(tool_result.output)["timezone"] == "Europe/Paris"
    assert "mcp__time__get_current_time" in _tool_names(scripted_model.requests[0])
    # committed: a fresh handle reads the tool result back from the store
    history = core.session(session.id).history()
    committed = [p for m in history if m.role == "tool" for p in m.parts]
    assert committed == [tool_result]
    # the second model call saw the result
    assert tool_result in [p for m in scripted_model.requests[1].messages for p in m.parts]

    spawned = children() - before
    assert len(spawned) == 1  # one shared connection for the core
    core.close()
    assert not (spawned & children())


def test_in_code_plugin_progress_images_and_two_loops(
    scripted_model: ScriptedModel, test_server: Callable[..., ServerConfig], children: Callable[[], set[int]]
) -> None:
    """MCPPlugin without entry points; progress activities; images; run_sync = a new loop per turn."""
    before = children()
    core = LashCore(
        model_client=scripted_model, model="scripted", entry_points=False, plugins=[MCPPlugin(servers={"t": test_server()})]
    )
    scripted_model.enqueue_tool_calls(("mcp__t__progress", {"steps": 2}), ("mcp__t__image", {}))
    scripted_model.enqueue_text("ok")
    first = core.run_sync("go")
    progress = [a.event for a in first.activities if a.kind == "tool_call_progress"]
    assert [(e.name, e.progress, e.total, e.message) for e in progress] == [
        ("mcp__t__progress", 1.0, 2.0, "step 1"),
        ("mcp__t__progress", 2.0, 2.0, "step 2"),
    ]
    (_, done), (_, image) = first.tool_calls
    assert done.output == "done"
    assert [a.media_type for a in image.attachments] == ["image/png"]

    scripted_model.enqueue_tool_calls(("mcp__t__echo", {"text": "second loop"}))
    scripted_model.enqueue_text("ok")
    second = core.run_sync("again")  # another anyio.run, same connection
    assert second.tool_calls[0][1].output == "second loop"
    assert len(children() - before) == 1
    core.close()


def test_attach_detach_changes_the_next_turns_catalog(
    scripted_model: ScriptedModel, test_server: Callable[..., ServerConfig], time_server: ServerConfig
) -> None:
    core = LashCore(
        model_client=scripted_model, model="scripted", allow=["mcp"], plugins=[MCPPlugin(servers={"t": test_server()})]
    )
    manager = get_manager(core)
    scripted_model.enqueue_text("1")
    core.run_sync("one")
    assert not any(n.startswith("mcp__time__") for n in _tool_names(scripted_model.requests[-1]))

    manager.attach_server("time", time_server)
    scripted_model.enqueue_text("2")
    core.run_sync("two")
    names = _tool_names(scripted_model.requests[-1])
    assert "mcp__time__get_current_time" in names and "mcp__t__echo" in names

    manager.detach_server("t")
    scripted_model.enqueue_text("3")
    core.run_sync("three")
    names = _tool_names(scripted_model.requests[-1])
    assert "mcp__time__get_current_time" in names and not any(n.startswith("mcp__t__") for n in names)
    core.close()


def test_cancelling_the_turn_cancels_the_mcp_call(
    scripted_model: ScriptedModel, test_server: Callable[..., ServerConfig], tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    core = LashCore(
        model_client=scripted_model, model="scripted", entry_points=False, plugins=[MCPPlugin(servers={"t": test_server()})]
    )
    scripted_model.enqueue_tool_calls(("mcp__t__sleep", {"seconds": 60, "marker": str(marker)}))
    turn = core.session().turn("sleep")

    async def main() -> None:
        async with anyio.create_task_group() as tg:

            async def cancel_when_started() -> None:
                while not marker.exists():
                    await anyio.sleep(0.01)
                turn.cancel("user pressed stop")

            tg.start_soon(cancel_when_started)
            await turn.run()

    anyio.run(main)
    result = turn.result
    assert result.outcome.KIND == "stopped" and result.outcome.reason == "cancelled"
    [(call, answer)] = result.tool_calls  # every started call is answered
    assert call.name == "mcp__t__sleep" and answer.is_error

    async def wait_cancelled() -> None:
        while marker.read_text() != "cancelled":  # the server got notifications/cancelled
            await anyio.sleep(0.01)

    anyio.run(wait_cancelled)
    scripted_model.enqueue_tool_calls(("mcp__t__echo", {"text": "still here"}))
    scripted_model.enqueue_text("ok")
    assert core.run_sync("again").tool_calls[0][1].output == "still here"
    core.close()


def test_close_from_inside_an_event_loop_leaves_nothing_behind(
    scripted_model: ScriptedModel, test_server: Callable[..., ServerConfig], time_server: ServerConfig,
    children: Callable[[], set[int]],
) -> None:
    before = children()

    async def main() -> None:
        async with LashCore(
            model_client=scripted_model, model="scripted", entry_points=False,
            plugins=[MCPPlugin(servers={"t": test_server(), "time": time_server})],
        ) as core:
            catalog, failures = await core.tool_catalog()
            assert failures == []
            assert "mcp__time__convert_time" in catalog and "mcp__t__echo" in catalog
            assert len(children() - before) == 2
            thread = get_manager(core)._thread
        assert thread is not None and not thread.is_alive()

    anyio.run(main)
    assert children() == before


# ------------------------------------------------------------------------------------ CLI
@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, time_server: ServerConfig) -> Path:
    for name in ("LASH_CONFIG", "LASH_PLUGINS", "LASH_DISABLE_PLUGINS", "LASH_STRICT_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lash.toml").write_text(
        "[plugins.mcp.servers.time]\n"
        f"command = {json.dumps(sys.executable)}\n"
        f"args = {json.dumps(time_server.args)}\n"
        "\n[plugins.mcp.servers.broken]\n"
        'command = "/nonexistent/mcp-server"\n'
    )
    return tmp_path


def _lash(*args: str) -> Any:
    from lash_kernel.cli import cli

    return CliRunner().invoke(cli, list(args), prog_name="lash")


def test_cli_mcp_list(project: Path) -> None:
    result = _lash("mcp", "list", "--json")
    assert result.exit_code == 1, result.output  # a server failed
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["time"]["state"] == "connected" and rows["time"]["tools"] == 2
    assert rows["broken"]["state"] == "failed" and "/nonexistent/mcp-server" in rows["broken"]["error"]

    table = _lash("mcp", "list")
    assert "connected" in table.stdout and "failed" in table.stdout and "No such file" in table.stdout

    offline = _lash("mcp", "list", "--no-connect", "--json")
    assert offline.exit_code == 0
    assert [row["state"] for row in json.loads(offline.stdout)] == ["idle", "idle"]


def test_cli_tools_list_shows_mcp_tools(project: Path) -> None:
    result = _lash("tools", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert "mcp__time__get_current_time" in rows and "mcp__time__convert_time" in rows
    assert rows["mcp__time__get_current_time"]["provider"] == "mcp"


def test_mcp_is_not_imported_by_the_plugin_module() -> None:
    code = "import sys, lash_mcp.plugin; print(any(m == 'mcp' or m.startswith('mcp.') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_cli_plugins_lists_mcp_once_with_its_tool_object(project: Path) -> None:
    from lash_kernel.cli import cli

    result = CliRunner().invoke(cli, ["plugins", "--json"], env={"LASH_PLUGINS": "mcp"}, prog_name="lash")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["plugins"]}
    assert "mcp-tools" not in rows  # not a plugin of its own with distribution "-"
    assert rows["mcp"]["distribution"] == "lash-mcp"
    assert [(o["name"], o["hooks"]) for o in rows["mcp"]["objects"]] == [("mcp-tools", ["lash_register_tools"])]
    table = CliRunner().invoke(cli, ["plugins"], env={"LASH_PLUGINS": "mcp", "COLUMNS": "200"}, prog_name="lash")
    assert "└ mcp-tools" in table.stdout
