"""lash-subagents: a ``spawn_agent`` tool that runs child agents in durable child sessions.

Installed next to ``lash-kernel`` it is loaded by every ``LashCore`` (entry point
``subagents``). Capabilities decide what a child may do (``explore``: read-only, ``peer``: a
full agent; more from ``lash.toml`` and other plugins); a child never gets a tool its parent
lacks, nor an interactive one. Child model calls are booked under the usage source
``subagent``; ``tree_report`` sums a whole session tree, also after a crash.

Importing this package is cheap and starts nothing.
"""

from __future__ import annotations

__version__ = "0.2.0"

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lash_subagents._capabilities import (
        BUILTIN_CAPABILITIES,
        PLUGIN_NAME,
        SPAWN_TOOL,
        Capability,
        child_spec,
    )
    from lash_subagents._config import CapabilityConfig, SubagentsConfig
    from lash_subagents._spawn import SOURCE, Settings, progress_message
    from lash_subagents._usage import tree_ledger, tree_report
    from lash_subagents.plugin import CONFIG, SETTINGS, SubagentsHooks

#: Each public name and its module, imported on first use: the entry point imports this
#: package, and ``lash --help`` imports every installed plugin's entry point.
_EXPORTS = {
    "BUILTIN_CAPABILITIES": "lash_subagents._capabilities",
    "CONFIG": "lash_subagents.plugin",
    "Capability": "lash_subagents._capabilities",
    "CapabilityConfig": "lash_subagents._config",
    "PLUGIN_NAME": "lash_subagents._capabilities",
    "SETTINGS": "lash_subagents.plugin",
    "SOURCE": "lash_subagents._spawn",
    "SPAWN_TOOL": "lash_subagents._capabilities",
    "Settings": "lash_subagents._spawn",
    "SubagentsConfig": "lash_subagents._config",
    "SubagentsHooks": "lash_subagents.plugin",
    "child_spec": "lash_subagents._capabilities",
    "progress_message": "lash_subagents._spawn",
    "tree_ledger": "lash_subagents._usage",
    "tree_report": "lash_subagents._usage",
}

__all__ = [
    "BUILTIN_CAPABILITIES",
    "CONFIG",
    "PLUGIN_NAME",
    "SETTINGS",
    "SOURCE",
    "SPAWN_TOOL",
    "Capability",
    "CapabilityConfig",
    "Settings",
    "SubagentsConfig",
    "SubagentsHooks",
    "__version__",
    "child_spec",
    "progress_message",
    "tree_ledger",
    "tree_report",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lash_subagents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
