"""lash-mcp: tools from MCP servers (stdio and streamable HTTP) in a lash core's catalog.

Configure servers in ``lash.toml``::

    [plugins.mcp.servers.time]
    command = "python"
    args = ["-m", "mcp_server_time"]

or in code with ``MCPPlugin``; manage them at runtime through ``get_manager(core)`` (the
manager lives in the core's plugin stash under ``MANAGER``). Each tool
appears as ``mcp__<server>__<tool>``. Importing this package does not import the ``mcp`` SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lash_mcp._config import (
        DEFAULT_CALL_TIMEOUT_S,
        DEFAULT_INIT_TIMEOUT_S,
        MCPConfig,
        ServerConfig,
        default_log_dir,
    )
    from lash_mcp._manager import MCPManager, MCPServerError, ServerStatus
    from lash_mcp._naming import tool_name
    from lash_mcp.plugin import MANAGER, MCPPlugin, get_manager

#: Each public name and its module, imported on first use: the ``mcp`` entry point
#: (``lash_mcp.plugin``) imports this package, and ``lash --help`` imports every entry point.
_EXPORTS = {
    "DEFAULT_CALL_TIMEOUT_S": "lash_mcp._config",
    "DEFAULT_INIT_TIMEOUT_S": "lash_mcp._config",
    "MANAGER": "lash_mcp.plugin",
    "MCPConfig": "lash_mcp._config",
    "MCPManager": "lash_mcp._manager",
    "MCPPlugin": "lash_mcp.plugin",
    "MCPServerError": "lash_mcp._manager",
    "ServerConfig": "lash_mcp._config",
    "ServerStatus": "lash_mcp._manager",
    "default_log_dir": "lash_mcp._config",
    "get_manager": "lash_mcp.plugin",
    "tool_name": "lash_mcp._naming",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lash_mcp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
