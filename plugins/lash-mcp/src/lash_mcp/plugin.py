"""Hook implementations of lash-mcp (entry point ``mcp``) and the wiring to one core.

Rule: only hookimpls and wiring here, and cheap imports (``lash --help`` imports this module):
the ``mcp`` SDK is imported by the manager thread on first use.

One ``MCPManager`` per core, kept in the core's stash under ``MANAGER``: made by whichever of
``lash_configure`` (this module, from ``[plugins.mcp]``) or ``MCPPlugin`` (a host object) runs
first for that core, together with a per-core plugin object that registers the manager's
``ToolProvider`` and a close callback.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from lash_kernel.plugin import PluginHost, StashKey, hookimpl

if TYPE_CHECKING:
    import click

    from lash_kernel.plugin import ConfigRegistrar, ToolRegistrar
    from lash_mcp._config import MCPConfig, ServerConfig
    from lash_mcp._manager import MCPManager

__all__ = ["MANAGER", "MCPPlugin", "get_manager"]

#: The plugin name of the per-core object that registers the tool provider.
CORE_PLUGIN_NAME = "mcp-tools"

#: Where a core keeps its ``MCPManager``: ``host.stash[MANAGER]`` (``core.plugin_host.stash``).
MANAGER: StashKey[MCPManager] = StashKey()  # the manager (asyncio, anyio) loads on first use


class _CoreTools:
    """Registered on one core by ``_manager_for``: adds that core's MCP tool provider."""

    lash_plugin_name = CORE_PLUGIN_NAME

    def __init__(self, manager: MCPManager) -> None:
        self.manager = manager

    @hookimpl
    def lash_register_tools(self, registry: ToolRegistrar) -> None:
        from lash_mcp._tools import MCPToolProvider

        registry.add_provider(MCPToolProvider(self.manager))


def _manager_for(host: PluginHost) -> MCPManager:
    """The core's manager, created (with its provider and close callback) on first use."""
    manager = host.stash.get(MANAGER, None)
    if manager is None:
        from lash_mcp._manager import MCPManager

        manager = MCPManager()
        host.stash[MANAGER] = manager
        host.add_plugin(_CoreTools(manager), name=CORE_PLUGIN_NAME)
        host.on_close(manager.close)
    return manager


def get_manager(core: Any) -> MCPManager:
    """The ``MCPManager`` of a core, to attach or detach servers at runtime or read status.

    Args:
        core: a ``LashCore`` built with the ``mcp`` plugin loaded (installed entry point, or
            ``MCPPlugin`` passed in ``plugins=``), or its ``PluginHost``
            (``core.plugin_host``). Same as ``core.plugin_host.stash[MANAGER]``.
    Returns:
        The core's manager (shared by every session of the core).
    Raises:
        LookupError: the plugin is not active on this core (blocked, or not installed).
    """
    host: PluginHost = getattr(core, "plugin_host", core)
    manager = host.stash.get(MANAGER, None)
    if manager is None:
        raise LookupError(
            "this LashCore has no MCP manager: install lash-mcp (entry point 'mcp') and do not "
            "disable it, or pass plugins=[lash_mcp.MCPPlugin(...)]"
        )
    return manager


@hookimpl
def lash_register_config(registry: ConfigRegistrar) -> None:
    """Declare ``MCPConfig`` as the ``[plugins.mcp]`` table."""
    from lash_mcp._config import MCPConfig  # when a core is built, not when lash --help lists commands

    registry.add(MCPConfig)


@hookimpl
def lash_configure(host: PluginHost, config: MCPConfig) -> None:
    """Give the core its manager, with the default timeouts and servers of ``[plugins.mcp]``."""
    manager = _manager_for(host)
    manager.init_timeout_s = config.init_timeout_s
    manager.call_timeout_s = config.call_timeout_s
    if config.log_dir is not None:
        log_dir = Path(config.log_dir).expanduser()
        manager.log_dir = log_dir if log_dir.is_absolute() else (host.config_dir or Path.cwd()) / log_dir
    for name, server in config.servers.items():
        manager.attach_server(name, server)


@hookimpl
def lash_register_commands(cli: click.Group) -> None:
    """Add ``lash mcp`` (``lash mcp list``)."""
    from lash_mcp._cli import mcp_group

    cli.add_command(mcp_group)


class MCPPlugin:
    """MCP servers configured in code: ``LashCore(..., plugins=[MCPPlugin(servers={...})])``.

    Works with or without the installed entry point (both share the core's one manager; a server
    name given twice is an error). Reusable across cores: each core gets its own connections.

    Args:
        servers: servers by name (``ServerConfig`` or a mapping of its fields).
        init_timeout_s: seconds to start and initialise, for these servers (None: the manager's
            default, 30 s unless ``[plugins.mcp] init_timeout_s`` says otherwise).
        call_timeout_s: seconds per tool call, for these servers (None: the manager's default,
            60 s unless configured).
    Raises:
        ValueError / TypeError: an invalid server config (at construction).
    """

    lash_plugin_name = "mcp-code"

    def __init__(
        self,
        servers: Mapping[str, ServerConfig | Mapping[str, Any]] | None = None,
        *,
        init_timeout_s: float | None = None,
        call_timeout_s: float | None = None,
    ) -> None:
        from lash_mcp._config import ServerConfig

        resolved = {}
        for name, value in (servers or {}).items():
            cfg = ServerConfig.coerce(value)
            resolved[name] = attrs.evolve(
                cfg,
                init_timeout_s=cfg.init_timeout_s or init_timeout_s,
                call_timeout_s=cfg.call_timeout_s or call_timeout_s,
            )
        self.servers: dict[str, ServerConfig] = resolved
        self.init_timeout_s = init_timeout_s
        self.call_timeout_s = call_timeout_s

    def __repr__(self) -> str:
        return f"MCPPlugin(servers={sorted(self.servers)!r})"

    @hookimpl
    def lash_configure(self, host: PluginHost) -> None:
        """Attach this plugin's servers to the core's manager."""
        manager = _manager_for(host)
        for name, server in self.servers.items():
            manager.attach_server(name, server)
