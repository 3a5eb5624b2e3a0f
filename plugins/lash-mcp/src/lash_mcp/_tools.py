"""lash ``Tool`` objects for MCP tools, and the ``ToolProvider`` that lists them each turn.

Rule: a tool keeps the server's input and output schemas as they are; one lash cannot use
(not a draft 2020-12 object schema) is a per-tool problem, never a failure of the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lash_kernel.plugin import ConfigError, Tool, ToolContext, ToolOutput
from lash_mcp._manager import MCPServerError
from lash_mcp._naming import tool_name
from lash_mcp._results import to_tool_output

if TYPE_CHECKING:
    from lash_mcp._manager import MCPManager

__all__ = ["MCPToolProvider", "build_tool"]


def _context_param(schema: Any) -> str:
    """A parameter name for the ``ToolContext`` that is not one of the schema's properties."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    props = props if isinstance(props, dict) else {}
    name = "ctx"
    while name in props:
        name = f"_{name}"
    return name


def _read_only_hint(mcp_tool: Any) -> bool:
    """The server's ``annotations.readOnlyHint`` (a hint the server vouches for: lash marks the
    tool ``read_only``, so e.g. a read-only subagent may use it); False when absent."""
    annotations = getattr(mcp_tool, "annotations", None)
    hint = getattr(annotations, "read_only_hint", None)
    if hint is None:
        hint = getattr(annotations, "readOnlyHint", None)
    return hint is True


def build_tool(manager: MCPManager, server: str, mcp_tool: Any) -> Tool:
    """Wrap one MCP tool as a lash ``Tool`` named ``mcp__<server>__<tool>``.

    Args:
        manager: the manager that serves calls.
        server: the server's name.
        mcp_tool: an ``mcp.types.Tool`` (``name``, ``description``, ``input_schema``,
            ``output_schema``).
    Returns:
        A ``Tool`` (``read_only`` when the server annotates it ``readOnlyHint: true``) whose
        async function calls the server through ``manager`` and returns a
        ``ToolOutput`` (errors, timeouts and lost connections included, as ``is_error``), and
        reports MCP progress through ``ToolContext.report_progress``.
    Raises:
        ValueError: the schemas are not usable by lash (the message says why).
    """
    original = mcp_tool.name
    input_schema = mcp_tool.input_schema
    ctx_param = _context_param(input_schema)

    async def call_mcp_tool(**kwargs: Any) -> ToolOutput:
        ctx: ToolContext = kwargs.pop(ctx_param)
        running = True

        def on_progress(progress: float, total: float | None, message: str | None) -> None:
            if running:  # a notification that arrives after the call ended is dropped
                ctx.report_progress(progress, total, message)

        try:
            result = await manager.call_tool(server, original, kwargs, on_progress=on_progress)
        except MCPServerError as exc:
            return ToolOutput(text=str(exc), is_error=True)
        finally:
            running = False
        return to_tool_output(result)

    call_mcp_tool.__name__ = f"mcp_{server}_{original}"
    call_mcp_tool.__qualname__ = call_mcp_tool.__name__
    try:
        return Tool(
            name=tool_name(server, original),
            description=mcp_tool.description or getattr(mcp_tool, "title", None) or "",
            input_schema=input_schema,
            output_schema=mcp_tool.output_schema,
            fn=call_mcp_tool,
            takes_context=ctx_param,
            read_only=_read_only_hint(mcp_tool),
        )
    except ConfigError as exc:
        raise ValueError(str(exc).replace(f"tool {tool_name(server, original)!r}: ", "")) from None


class MCPToolProvider:
    """The ``ToolProvider`` a core registers: the MCP tools of one manager, fetched each turn.

    Attributes:
        name: ``"mcp"``, the label in errors and ``lash tools list``.
        manager: the ``MCPManager`` it reads.
    """

    name = "mcp"

    def __init__(self, manager: MCPManager) -> None:
        self.manager = manager

    async def list_tools(self) -> Sequence[Tool]:
        """The tools of every connected server (connecting idle servers first).

        Returns:
            Tools of healthy servers; failed servers are skipped (``manager.status()`` says why).
        """
        if self.manager.closed:
            return []
        return await self.manager.list_tools()

    def close(self) -> None:
        """Close the manager (idempotent)."""
        self.manager.close()
