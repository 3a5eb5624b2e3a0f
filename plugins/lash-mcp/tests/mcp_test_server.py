"""A small MCP server for the lash-mcp tests and benchmark (run as a subprocess).

Usage:
    python mcp_test_server.py --transport stdio
    python mcp_test_server.py --transport http --port 8765   # streamable HTTP at /mcp
    python mcp_test_server.py --transport stdio --many 200   # plus 200 generated tools
    python mcp_test_server.py --bad-schema                   # plus a tool lash must skip
    python mcp_test_server.py --many 200 --only-generated    # exactly 200 tools
    python mcp_test_server.py --collide                      # plus dotted_name (vs dotted.name)

Tools: ``echo``, ``sleep``, ``progress``, ``image``, ``fail``, ``structured``, ``resource``,
``pid`` (the server process id), ``dotted.name`` (a name lash must normalise); with
``--bad-schema`` also ``bad_schema_tool`` (an invalid input schema).
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, EmbeddedResource, TextContent, TextResourceContents
from pydantic import BaseModel

#: A 1x1 transparent PNG.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class Weather(BaseModel):
    """A structured result."""

    city: str
    celsius: float


def build(many: int = 0, bad_schema: bool = False, only_generated: bool = False, collide: bool = False) -> MCPServer:
    """Build the server with its tools (plus ``many`` ``gen_<i>`` tools, and with ``bad_schema``
    a tool whose input schema is invalid, with ``collide`` a ``dotted_name`` tool); ``only_generated``
    keeps just the ``gen_<i>`` tools."""
    server = MCPServer("lash-test")
    if only_generated:
        _add_generated(server, many)
        return server

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    async def sleep(seconds: float, marker: str = "") -> str:
        """Sleep, then say how long. With ``marker``, write ``started`` to that file first and
        ``cancelled`` if the call is cancelled (``notifications/cancelled``)."""
        if marker:
            Path(marker).write_text("started")
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            if marker:
                Path(marker).write_text("cancelled")
            raise
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

    if collide:

        @server.tool(name="dotted_name")
        def dotted_underscore() -> str:
            """Collides with ``dotted.name`` once normalised."""
            return "underscore"

    if bad_schema:

        @server.tool()
        def bad_schema_tool(x: int) -> int:
            """A tool whose advertised input schema is not valid JSON Schema."""
            return x

        server._tool_manager.get_tool("bad_schema_tool").parameters = {  # type: ignore[union-attr]
            "type": "object",
            "properties": {"x": {"type": 12}},
        }

    _add_generated(server, many)
    return server


def _add_generated(server: MCPServer, many: int) -> None:
    def make(offset: int) -> Callable[..., int]:
        def gen(x: int, label: str = "") -> int:
            return x + offset

        return gen

    for i in range(many):
        server.add_tool(make(i), name=f"gen_{i}", description=f"Generated tool {i}.")


def main() -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--many", type=int, default=0)
    parser.add_argument("--bad-schema", action="store_true")
    parser.add_argument("--only-generated", action="store_true")
    parser.add_argument("--collide", action="store_true")
    parser.add_argument("--stderr-line", default=None, help="write this line to stderr at start-up")
    args = parser.parse_args()
    if args.stderr_line is not None:
        print(args.stderr_line, file=sys.stderr, flush=True)
    server = build(args.many, args.bad_schema, args.only_generated, args.collide)
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.settings.log_level = "WARNING"
        server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
