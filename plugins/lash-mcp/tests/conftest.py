"""Fixtures: real MCP servers as subprocesses (mcp-server-time over stdio, the test server over
stdio and streamable HTTP), and a check that no child process outlives a test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lash_mcp import ServerConfig

SERVER_SCRIPT = Path(__file__).with_name("mcp_test_server.py")


def _children() -> set[int]:
    """PIDs of this process's child processes (alive or zombie), from /proc."""
    me = os.getpid()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces, so split after the last ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me:
            found.add(int(entry.name))
    return found


def _wait_gone(pids: set[int], timeout_s: float = 15.0) -> set[int]:
    """Wait until none of ``pids`` is a child any more; return the ones still there."""
    deadline = time.monotonic() + timeout_s
    left = pids & _children()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = pids & _children()
    return left


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def children() -> Callable[[], set[int]]:
    """``children()``: the PIDs of this process's live (or unreaped) child processes."""
    return _children


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Every child process a test starts is gone (and reaped) when the test ends."""
    before = _children()
    yield
    leaked = _wait_gone(_children() - before)
    assert not leaked, f"child processes left running: {sorted(leaked)}"


@pytest.fixture
def time_server() -> ServerConfig:
    """mcp-server-time (from PyPI) over stdio."""
    return ServerConfig(command=sys.executable, args=["-m", "mcp_server_time", "--local-timezone", "UTC"])


@pytest.fixture
def test_server() -> Callable[..., ServerConfig]:
    """``test_server(*args, **fields)``: the test server over stdio."""

    def make(*args: str, **fields: object) -> ServerConfig:
        return ServerConfig(command=sys.executable, args=[str(SERVER_SCRIPT), *args], **fields)  # type: ignore[arg-type]

    return make


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HttpServer:
    """The test server over streamable HTTP on 127.0.0.1, in a subprocess."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "--transport", "http", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the HTTP test server did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """A running HTTP test server (``.url``, ``.kill()``, ``.start()`` again on the same port)."""
    server = HttpServer()
    server.start()
    yield server
    server.kill()
