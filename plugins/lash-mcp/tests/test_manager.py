"""The connection manager against real MCP servers in subprocesses (stdio and streamable HTTP)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from lash_kernel.tools import ToolContext, ToolOutput
from lash_mcp import MCPManager, MCPServerError, ServerConfig

pytestmark = pytest.mark.anyio


def _ctx(name: str, progress: list[tuple[float, float | None, str | None]] | None = None) -> ToolContext:
    def on_progress(done: float, total: float | None, message: str | None) -> None:
        assert progress is not None
        progress.append((done, total, message))

    return ToolContext(session_id="s", turn_id="t", call_id="c", tool_name=name, on_progress=on_progress)


async def _run(tools: dict[str, Any], name: str, progress: list[Any] | None = None, **arguments: Any) -> ToolOutput:
    """Call a catalog tool the way the kernel does: fn(**arguments, <ctx param>=ToolContext)."""
    t = tools[name]
    return await t.fn(**arguments, **{t.takes_context: _ctx(name, progress if progress is not None else [])})


async def test_stdio_list_and_call_with_schemas_preserved(time_server: ServerConfig) -> None:
    with MCPManager({"time": time_server}) as manager:
        tools = {t.name: t for t in await manager.list_tools()}
        assert set(tools) == {"mcp__time__get_current_time", "mcp__time__convert_time"}

        # the schemas are the server's own, unchanged
        params = StdioServerParameters(command=time_server.command or "", args=time_server.args)
        async with Client(params, mode="auto") as client:
            listed = {t.name: t for t in (await client.list_tools()).tools}
        for name in ("get_current_time", "convert_time"):
            assert tools[f"mcp__time__{name}"].input_schema == listed[name].input_schema
            assert tools[f"mcp__time__{name}"].output_schema == listed[name].output_schema
            assert tools[f"mcp__time__{name}"].description == listed[name].description

        out = await _run(tools, "mcp__time__get_current_time", timezone="Asia/Tokyo")
        assert not out.is_error
        assert json.loads(out.text)["timezone"] == "Asia/Tokyo"
        bad = await _run(tools, "mcp__time__get_current_time", timezone="Not/AZone")
        assert bad.is_error and "Not/AZone" in bad.text
        [status] = manager.status()
        assert (status.state, status.tool_count, status.transport) == ("connected", 2, "stdio")


async def test_http_results_progress_images_errors(http_server: Any) -> None:
    with MCPManager({"web": ServerConfig(url=http_server.url, headers={"X-Test": "1"})}) as manager:
        tools = {t.name: t for t in await manager.list_tools()}
        assert "mcp__web__dotted_name" in tools  # "dotted.name" normalised
        assert (await _run(tools, "mcp__web__dotted_name")).text == "dotted"

        assert (await _run(tools, "mcp__web__echo", text="hé")).text == "hé"

        image = await _run(tools, "mcp__web__image")
        assert [(a.media_type, len(a.data) > 0) for a in image.attachments] == [("image/png", True)]

        failed = await _run(tools, "mcp__web__fail", reason="no disk")
        assert failed.is_error and "no disk" in failed.text

        structured = await _run(tools, "mcp__web__structured", city="Oslo")
        assert json.loads(structured.text) == {"city": "Oslo", "celsius": 21.5}
        assert tools["mcp__web__structured"].output_schema["properties"]["celsius"] == {"title": "Celsius", "type": "number"}

        resource = await _run(tools, "mcp__web__resource")
        assert resource.text == "see resource\n[resource file:///notes.txt]\nhello notes"

        progress: list[Any] = []
        done = await _run(tools, "mcp__web__progress", progress, steps=3)
        assert done.text == "done"
        assert progress == [(1.0, 3.0, "step 1"), (2.0, 3.0, "step 2"), (3.0, 3.0, "step 3")]


async def test_progress_is_reported_on_the_callers_thread(test_server: Callable[..., ServerConfig]) -> None:
    threads: set[int] = set()
    with MCPManager({"t": test_server()}) as manager:
        await manager.call_tool(
            "t", "progress", {"steps": 2}, on_progress=lambda *_: threads.add(threading.get_ident())
        )
    assert threads == {threading.get_ident()}


async def test_killed_server_is_restarted_and_the_call_retried(test_server: Callable[..., ServerConfig]) -> None:
    with MCPManager({"t": test_server()}) as manager:
        tools = {t.name: t for t in await manager.list_tools()}
        first = int((await _run(tools, "mcp__t__pid")).text)
        os.kill(first, 9)
        second = await _run(tools, "mcp__t__pid")  # connection lost -> reconnect -> retry
        assert not second.is_error
        assert int(second.text) != first
        assert manager.status()[0].state == "connected"


async def test_server_killed_mid_call(test_server: Callable[..., ServerConfig], tmp_path: Path) -> None:
    marker = tmp_path / "m"
    with MCPManager({"t": test_server()}) as manager:
        pid = int((await manager.call_tool("t", "pid")).content[0].text)
        call = asyncio.ensure_future(manager.call_tool("t", "sleep", {"seconds": 0.2, "marker": str(marker)}))
        while not marker.exists():
            await asyncio.sleep(0.01)
        os.kill(pid, 9)
        result = await call  # retried once on the restarted server
        assert result.content[0].text == "slept 0.2"


async def test_dropped_http_connection(http_server: Any) -> None:
    with MCPManager({"web": ServerConfig(url=http_server.url)}) as manager:
        tools = {t.name: t for t in await manager.list_tools()}
        first = int((await _run(tools, "mcp__web__pid")).text)
        http_server.kill()
        http_server.start()  # same port, new process
        again = await _run(tools, "mcp__web__pid")
        assert not again.is_error and int(again.text) != first

        http_server.kill()  # gone for good: one reconnect attempt fails
        lost = await _run(tools, "mcp__web__pid")
        assert lost.is_error and lost.text.startswith("MCP server 'web': connection lost during 'pid'")
        assert "reconnecting failed" in lost.text
        assert manager.status()[0].state == "failed"

        http_server.start()
        manager.reconnect("web")  # failed servers come back only when asked
        assert not (await _run(tools, "mcp__web__echo", text="back")).is_error
        assert manager.status()[0].state == "connected"


async def test_name_collisions_leave_both_tools_out(test_server: Callable[..., ServerConfig]) -> None:
    with MCPManager({"t": test_server("--collide")}) as manager:  # "dotted.name" and "dotted_name"
        names = {t.name for t in await manager.list_tools()}
        assert "mcp__t__echo" in names and "mcp__t__dotted_name" not in names
        [status] = manager.status()
        [problem] = status.problems
        assert "'dotted.name'" in problem and "'dotted_name'" in problem and "mcp__t__dotted_name" in problem
        assert status.tool_count == len(names)


async def test_reconnect_failure_is_a_tool_error(tmp_path: Path) -> None:
    # A server that starts once: the second start exits immediately.
    once = tmp_path / "started"
    script = (
        "import os, runpy, sys\n"
        f"flag = {str(once)!r}\n"
        "if os.path.exists(flag): sys.exit(3)\n"
        "open(flag, 'w').close()\n"
        f"sys.argv = ['mcp_test_server.py']\n"
        f"runpy.run_path({str(Path(__file__).with_name('mcp_test_server.py'))!r}, run_name='__main__')\n"
    )
    with MCPManager({"flaky": ServerConfig(command=sys.executable, args=["-c", script])}) as manager:
        tools = {t.name: t for t in await manager.list_tools()}
        os.kill(int((await _run(tools, "mcp__flaky__pid")).text), 9)
        out = await _run(tools, "mcp__flaky__pid")
        assert out.is_error
        assert "MCP server 'flaky'" in out.text and "reconnecting failed" in out.text
        [status] = manager.status()
        assert status.state == "failed" and status.error
        assert await manager.list_tools() == []  # failed servers leave the catalog
        failed_again = await _run(tools, "mcp__flaky__echo", text="x")
        assert failed_again.is_error and "not connected (failed)" in failed_again.text


async def test_bad_command_is_reported_by_name_while_another_server_works(
    time_server: ServerConfig, http_server: Any
) -> None:
    servers = {
        "broken": ServerConfig(command="/nonexistent/mcp-server"),
        "time": time_server,
        "web": ServerConfig(url=http_server.url),
        "off": ServerConfig(command="/nonexistent/too", enabled=False),
    }
    with MCPManager(servers) as manager:
        tools = {t.name: t for t in await manager.list_tools()}
        assert "mcp__time__get_current_time" in tools and "mcp__web__echo" in tools
        assert not any("broken" in name for name in tools)
        status = {s.name: s for s in manager.status()}
        assert status["broken"].state == "failed"
        assert "/nonexistent/mcp-server" in (status["broken"].error or "")
        assert status["off"].state == "disabled"
        with pytest.raises(MCPServerError, match=r"MCP server 'broken': not connected \(failed\)"):
            await manager.call_tool("broken", "anything")
        assert not (await _run(tools, "mcp__web__echo", text="ok")).is_error


async def test_server_that_hangs_at_start_hits_the_init_timeout(test_server: Callable[..., ServerConfig]) -> None:
    servers = {
        "mute": ServerConfig(command=sys.executable, args=["-c", "import time; time.sleep(60)"], init_timeout_s=0.5),
        "t": test_server(),
    }
    with MCPManager(servers) as manager:
        names = [t.name for t in await manager.list_tools()]
        assert "mcp__t__echo" in names
        mute = manager.status()[0]
        assert mute.state == "failed" and mute.error == "did not start and initialise within 0.5 s"


async def test_call_timeout(test_server: Callable[..., ServerConfig]) -> None:
    with MCPManager({"t": test_server(call_timeout_s=0.3)}) as manager:
        tools = {t.name: t for t in await manager.list_tools()}
        out = await _run(tools, "mcp__t__sleep", seconds=30)
        assert out.is_error and out.text == "MCP server 't': tool 'sleep' timed out after 0.3 s"
        assert (await _run(tools, "mcp__t__echo", text="after")).text == "after"  # still usable


async def test_cancelled_caller_cancels_the_call_on_the_server(
    test_server: Callable[..., ServerConfig], tmp_path: Path
) -> None:
    marker = tmp_path / "m"
    with MCPManager({"t": test_server()}) as manager:
        call = asyncio.ensure_future(manager.call_tool("t", "sleep", {"seconds": 30, "marker": str(marker)}))
        while not marker.exists():
            await asyncio.sleep(0.01)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        while marker.read_text() != "cancelled":  # the server saw notifications/cancelled
            await asyncio.sleep(0.01)
        assert (await manager.call_tool("t", "echo", {"text": "x"})).content[0].text == "x"


async def test_two_servers_and_concurrent_calls(test_server: Callable[..., ServerConfig], http_server: Any) -> None:
    with MCPManager({"a": test_server(), "b": ServerConfig(url=http_server.url)}) as manager:
        results = await asyncio.gather(
            *(manager.call_tool(server, "sleep", {"seconds": 0.2}) for server in ("a", "b", "a", "b")),
            *(manager.call_tool(server, "echo", {"text": server}) for server in ("a", "b")),
        )
        texts = [r.content[0].text for r in results]
        assert texts == ["slept 0.2"] * 4 + ["a", "b"]


def test_callers_on_different_event_loops(test_server: Callable[..., ServerConfig]) -> None:
    """One manager serves several host loops (as ``run_sync`` does: a new loop per turn)."""
    with MCPManager({"t": test_server()}) as manager:
        outputs: list[str] = []

        def in_new_loop(text: str) -> None:
            result = asyncio.run(manager.call_tool("t", "echo", {"text": text}))
            outputs.append(result.content[0].text)

        threads = [threading.Thread(target=in_new_loop, args=(f"loop{i}",)) for i in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        in_new_loop("again")
        assert sorted(outputs) == ["again", "loop0", "loop1", "loop2"]


async def test_invalid_schema_is_a_per_tool_problem(test_server: Callable[..., ServerConfig]) -> None:
    with MCPManager({"t": test_server("--bad-schema")}) as manager:
        names = {t.name for t in await manager.list_tools()}
        assert "mcp__t__echo" in names and "mcp__t__bad_schema_tool" not in names
        [status] = manager.status()
        assert status.state == "connected"
        [problem] = status.problems
        assert problem.startswith("tool 'bad_schema_tool' skipped: input_schema is not valid JSON Schema")


async def test_attach_detach_at_runtime(
    test_server: Callable[..., ServerConfig], time_server: ServerConfig, children: Callable[[], set[int]]
) -> None:
    with MCPManager({"t": test_server()}) as manager:
        assert {t.name.split("__")[1] for t in await manager.list_tools()} == {"t"}
        before = children()
        manager.attach_server("time", time_server)
        assert {t.name.split("__")[1] for t in await manager.list_tools()} == {"t", "time"}
        started = children() - before
        assert len(started) == 1
        manager.detach_server("time")
        assert not (started & children())  # the subprocess is gone when detach returns
        assert {t.name.split("__")[1] for t in await manager.list_tools()} == {"t"}
        with pytest.raises(MCPServerError, match="not attached"):
            await manager.call_tool("time", "get_current_time", {"timezone": "UTC"})
        with pytest.raises(KeyError):
            manager.detach_server("time")


def test_close_terminates_subprocesses_and_the_thread(
    test_server: Callable[..., ServerConfig], time_server: ServerConfig, children: Callable[[], set[int]]
) -> None:
    before = children()
    manager = MCPManager({"t": test_server(), "time": time_server})
    statuses = manager.connect()
    assert [s.state for s in statuses] == ["connected", "connected"]
    spawned = children() - before
    assert len(spawned) == 2
    thread = manager._thread
    manager.close()
    manager.close()  # idempotent
    assert not (spawned & children())
    assert thread is not None and not thread.is_alive()
    assert [s.state for s in manager.status()] == []
    with pytest.raises(RuntimeError, match="closed"):
        manager.connect()
