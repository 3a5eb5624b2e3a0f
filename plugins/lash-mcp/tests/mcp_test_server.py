"""A small MCP server for the lash-mcp tests and benchmark (run as a subprocess).

Usage:
    python mcp_test_server.py --transport stdio
    python mcp_test_server.py --transport http --port 8765   # streamable HTTP at /mcp
    python mcp_test_server.py --transport stdio --many 200   # plus 200 generated tools

Tools: ``echo``, ``sleep``, ``progress``, ``image``, ``fail``, ``structured``, ``resource``,
``pid`` (the server process id), ``dotted.name`` (a name lash must normalise).
"""

from __future__ import annotations

import argparse
import base64
import os

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, EmbeddedResource, TextContent, TextResourceContents
from pydantic import BaseModel

#: A 1x1 transparent PNG.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class Weather(BaseModel):
    """A structured result."""

    city: str
    celsius: float


def build(many: int = 0) -> MCPServer:
    """Build the server with its tools (and ``many`` extra ``gen_<i>`` tools)."""
    server = MCPServer("lash-test")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    async def sleep(seconds: float) -> str:
        """Sleep, then say how long."""
        await anyio.sleep(seconds)
        return f"slept {seconds}"

    @server.tool()
    async def progress(steps: int, ctx: Context) -> str:
        """Report progress ``steps`` times, then finish."""
        for i in range(steps):
            await ctx.report_progress(i + 1, steps, f"step {i + 1}")
        return "done"

    @server.tool()
    def image() -> Image:
        """Return a 1x1 PNG."""
        return Image(data=PNG_1X1, format="png")

    @server.tool()
    def fail(reason: str) -> str:
        """Always fail with ``reason`` (an isError result)."""
        raise ToolError(reason)

    @server.tool()
    def structured(city: str) -> Weather:
        """Return structured content."""
        return Weather(city=city, celsius=21.5)

    @server.tool()
    def resource() -> CallToolResult:
        """Return an embedded text resource."""
        return CallToolResult(
            content=[
                TextContent(text="see resource"),
                EmbeddedResource(
                    resource=TextResourceContents(uri="file:///notes.txt", text="hello notes", mime_type="text/plain")
                ),
            ]
        )

    @server.tool()
    def pid() -> int:
        """Return this server's process id."""
        return os.getpid()

    @server.tool(name="dotted.name")
    def dotted() -> str:
        """A tool whose name has a dot."""
        return "dotted"

    for i in range(many):

        def gen(x: int, _i: int = i) -> int:
            return x + _i

        server.add_tool(gen, name=f"gen_{i}", description=f"Generated tool {i}.")
    return server


def main() -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--many", type=int, default=0)
    args = parser.parse_args()
    server = build(args.many)
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.settings.log_level = "WARNING"
        server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
