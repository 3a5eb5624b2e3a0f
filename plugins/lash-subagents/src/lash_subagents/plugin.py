"""Hook implementations of lash-subagents (entry point ``subagents``).

Rule: only hookimpls and wiring here, and cheap imports (``lash --help`` imports this module).
``lash_configure`` keeps the validated ``[plugins.subagents]`` table in the core's stash;
``lash_register_tools`` collects the capabilities (built-ins, other plugins' through the
published ``subagents_capabilities`` hook, then ``lash.toml``'s) and registers the core's own
``spawn_agent`` tool, whose description lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lash_kernel.plugin import PluginHost, StashKey, hookimpl, hookspec
from lash_subagents._capabilities import Capability, merge_capabilities
from lash_subagents._config import SubagentsConfig

if TYPE_CHECKING:
    from collections.abc import Iterable

    from lash_kernel.plugin import (
        ConfigRegistrar,
        HookspecRegistrar,
        ToolRegistrar,
        UsageSourceRegistrar,
    )
    from lash_subagents._spawn import Settings

__all__ = ["CONFIG", "SETTINGS", "SubagentsHooks"]

#: The core's validated ``[plugins.subagents]`` table: ``host.stash[CONFIG]``.
CONFIG = StashKey[SubagentsConfig]()

#: What the core's ``spawn_agent`` runs with (capabilities and limits): ``host.stash[SETTINGS]``.
SETTINGS: StashKey[Settings] = StashKey()  # _spawn (the tool API, anyio) loads when a core is built


class SubagentsHooks:
    """The hook lash-subagents publishes for other plugins."""

    @hookspec
    def subagents_capabilities(self, host: PluginHost) -> Iterable[Capability]:  # type: ignore[empty-body]
        """Offer subagent capabilities (``lash_subagents.Capability``) on this core.

        Called by: lash-subagents, once per core, while tools are registered (after every
        ``lash_configure``). Sync.
        Args:
            host: the core's ``PluginHost`` (its stash holds what your ``lash_configure`` kept).
        Returns:
            Capabilities to add, or None. A name already defined by the built-ins or another
            plugin is a ``ConfigError``; ``[plugins.subagents.capabilities]`` may redefine any.
        Raises:
            Any exception fails ``LashCore`` construction with ``PluginHookError``.
        """


@hookimpl
def lash_addhooks(registry: HookspecRegistrar) -> None:
    registry.add(SubagentsHooks)


@hookimpl
def lash_register_config(registry: ConfigRegistrar) -> None:
    registry.add(SubagentsConfig)


@hookimpl
def lash_configure(host: PluginHost, config: SubagentsConfig) -> None:
    host.stash[CONFIG] = config


@hookimpl
def lash_register_usage_sources(registry: UsageSourceRegistrar) -> None:
    from lash_subagents._spawn import SOURCE

    registry.add(SOURCE, "child agents run by spawn_agent (lash-subagents)")


@hookimpl
def lash_register_tools(registry: ToolRegistrar, host: PluginHost) -> None:
    from lash_subagents._spawn import Settings, make_spawn_tool

    config = host.stash.get(CONFIG, None) or SubagentsConfig()
    from_config = {name: table.capability(name) for name, table in config.capabilities.items()}
    capabilities = merge_capabilities(host.call_hook("subagents_capabilities"), from_config)
    settings = Settings(
        capabilities=capabilities, max_depth=config.max_depth, max_concurrent=config.max_concurrent
    )
    host.stash[SETTINGS] = settings
    registry.add(make_spawn_tool(host, settings))
