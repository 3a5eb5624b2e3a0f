"""MCP servers' stderr goes to one log file per server, never to the terminal (issue 15, item 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lash_mcp import MCPManager, ServerConfig, default_log_dir

NOISE = "NOISE-FROM-THE-SERVER-STDERR"


def test_default_log_dir_follows_xdg_state_home(tmp_path):
    assert default_log_dir({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "lash" / "mcp"
    assert default_log_dir({"XDG_STATE_HOME": "relative"}) == Path.home() / ".local" / "state" / "lash" / "mcp"
    assert default_log_dir({}) == Path.home() / ".local" / "state" / "lash" / "mcp"


def test_a_stdio_servers_stderr_goes_to_its_log_file(
    tmp_path: Path, test_server: Callable[..., ServerConfig], capfd: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    with MCPManager({"noisy one": test_server("--stderr-line", NOISE)}, log_dir=logs) as manager:
        (status,) = manager.connect()
        assert status.state == "connected", status.error
        assert status.log_path == str(logs / "noisy_one.log")
    text = (logs / "noisy_one.log").read_text()
    assert text.startswith("--- ") and "lash-mcp starts server 'noisy one'" in text
    assert NOISE in text.splitlines()  # the line itself, not only the header's command line
    captured = capfd.readouterr()
    assert NOISE not in captured.err and NOISE not in captured.out  # nothing on this process's fds
    with MCPManager({"noisy one": test_server("--stderr-line", NOISE)}, log_dir=logs) as manager:
        manager.connect()
    lines = (logs / "noisy_one.log").read_text().splitlines()
    assert lines.count(NOISE) == 2 and len([x for x in lines if x.startswith("--- ")]) == 2  # appended


def test_an_unwritable_log_dir_still_starts_the_server(
    tmp_path: Path, test_server: Callable[..., ServerConfig]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with MCPManager({"t": test_server()}, log_dir=blocker / "logs") as manager:
        (status,) = manager.connect()
    assert status.state == "connected", status.error


def test_http_servers_have_no_log(http_server) -> None:
    with MCPManager({"web": ServerConfig(url=http_server.url)}) as manager:
        (status,) = manager.status()
    assert status.log_path is None


def test_lash_tools_call_and_mcp_list_in_real_processes(tmp_path: Path) -> None:
    server = Path(__file__).with_name("mcp_test_server.py")
    (tmp_path / "lash.toml").write_text(
        "[plugins.mcp.servers.t]\n"
        f"command = {json.dumps(sys.executable)}\n"
        f"args = {json.dumps([str(server), '--stderr-line', NOISE])}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASH_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["LASH_PLUGINS"] = "mcp"
    called = subprocess.run(
        [sys.executable, "-m", "lash_kernel", "tools", "call", "mcp__t__echo", "--args", '{"text": "hi"}'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert called.returncode == 0, called.stderr
    assert called.stdout.strip() == "hi"
    assert NOISE not in called.stderr and "Processing request" not in called.stderr
    log = tmp_path / "state" / "lash" / "mcp" / "t.log"
    assert NOISE in log.read_text().splitlines()
    listed = subprocess.run(
        [sys.executable, "-m", "lash_kernel", "mcp", "list", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["log"] == str(log) and row["state"] == "connected"
    assert NOISE not in listed.stderr
    table = subprocess.run(
        [sys.executable, "-m", "lash_kernel", "mcp", "list"],
        cwd=tmp_path, env=env | {"COLUMNS": "400"}, capture_output=True, text=True, timeout=120,
    )
    assert str(log) in table.stdout


def test_log_dir_in_lash_toml_is_relative_to_the_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lash_kernel.cli import cli

    (tmp_path / "lash.toml").write_text(
        '[plugins.mcp]\nlog_dir = "logs/mcp"\n\n[plugins.mcp.servers.t]\ncommand = "x"\n'
    )
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "lash.toml"), "mcp", "list", "--no-connect", "--json"],
                                env={"LASH_PLUGINS": "mcp"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["log"] == str(tmp_path / "logs" / "mcp" / "t.log")
