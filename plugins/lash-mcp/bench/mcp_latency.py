"""Benchmark: MCP tool-call round trip through lash-mcp (stdio and streamable HTTP), and the
catalog load time of a server with 200 tools.

Run:  python plugins/lash-mcp/bench/mcp_latency.py [--calls 500]

Prints medians in microseconds. "lash" is ``MCPManager.call_tool`` from a host asyncio loop
(the call hops to the manager's loop thread and back); "sdk" is the bare ``mcp.Client`` in
the same loop, for reference: the difference is lash's overhead. Catalog: "cold" starts the
server, initialises, lists and builds the lash ``Tool`` objects; "warm" is the per-turn
``list_tools()`` of an open connection.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from lash_mcp import MCPManager, ServerConfig

SERVER = Path(__file__).resolve().parent.parent / "tests" / "mcp_test_server.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("HTTP test server did not start") from None
            time.sleep(0.05)


async def _lash_calls(config: ServerConfig, calls: int) -> list[float]:
    with MCPManager({"s": config}) as manager:
        for _ in range(20):  # warm up (connects on the first call)
            await manager.call_tool("s", "echo", {"text": "warm"})
        samples = []
        for i in range(calls):
            start = time.perf_counter()
            await manager.call_tool("s", "echo", {"text": f"m{i}"})
            samples.append(time.perf_counter() - start)
        return samples


async def _sdk_calls(target: object, calls: int) -> list[float]:
    async with Client(target, mode="auto", cache=None) as client:  # type: ignore[arg-type]
        for _ in range(20):
            await client.call_tool("echo", {"text": "warm"})
        samples = []
        for i in range(calls):
            start = time.perf_counter()
            await client.call_tool("echo", {"text": f"m{i}"})
            samples.append(time.perf_counter() - start)
        return samples


async def _catalog(tools: int, rounds: int) -> tuple[list[float], list[float], int]:
    cold, warm = [], []
    count = 0
    config = ServerConfig(command=sys.executable, args=[str(SERVER), "--many", str(tools), "--only-generated"])
    for _ in range(rounds):
        with MCPManager({"big": config}) as manager:
            start = time.perf_counter()
            count = len(await manager.list_tools())
            cold.append(time.perf_counter() - start)
            for _ in range(20):
                start = time.perf_counter()
                await manager.list_tools()
                warm.append(time.perf_counter() - start)
    return cold, warm, count


def _us(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e6:10.0f} µs"


async def main(calls: int) -> None:
    stdio = ServerConfig(command=sys.executable, args=[str(SERVER)])
    print(f"tool-call round trip, median of {calls} calls of 'echo'")
    print(f"  stdio  lash {_us(await _lash_calls(stdio, calls))}")
    print(f"  stdio  sdk  {_us(await _sdk_calls(StdioServerParameters(command=sys.executable, args=[str(SERVER)]), calls))}")

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--transport", "http", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, process)
        url = f"http://127.0.0.1:{port}/mcp"
        print(f"  http   lash {_us(await _lash_calls(ServerConfig(url=url), calls))}")
        print(f"  http   sdk  {_us(await _sdk_calls(streamable_http_client(url), calls))}")
    finally:
        process.kill()
        process.wait()

    cold, warm, count = await _catalog(200, rounds=3)
    print(f"catalog of a stdio server with {count} tools")
    print(f"  cold (start + initialise + list + build Tools), median of {len(cold)}: {statistics.median(cold) * 1e3:8.1f} ms")
    print(f"  warm (per-turn list_tools of an open connection), median of {len(warm)}: {_us(warm)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500)
    asyncio.run(main(parser.parse_args().calls))
