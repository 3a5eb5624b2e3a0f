"""lash-mcp: tools from MCP servers (stdio and streamable HTTP) in a lash core's catalog.

Configure servers in ``lash.toml``::

    [plugins.mcp.servers.time]
    command = "python"
    args = ["-m", "mcp_server_time"]

or in code with ``MCPPlugin``; manage them at runtime through ``get_manager(core)`` (the
manager lives in the core's plugin stash under ``MANAGER``). Each tool
appears as ``mcp__<server>__<tool>``. Importing this package does not import the ``mcp`` SDK.
"""

from lash_mcp._config import DEFAULT_CALL_TIMEOUT_S, DEFAULT_INIT_TIMEOUT_S, MCPConfig, ServerConfig, default_log_dir
from lash_mcp._manager import MCPManager, MCPServerError, ServerStatus
from lash_mcp._naming import tool_name
from lash_mcp.plugin import MANAGER, MCPPlugin, get_manager

__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "DEFAULT_INIT_TIMEOUT_S",
    "MANAGER",
    "MCPConfig",
    "MCPManager",
    "MCPPlugin",
    "MCPServerError",
    "ServerConfig",
    "ServerStatus",
    "default_log_dir",
    "get_manager",
    "tool_name",
]
