"""CoreHost: the ``PluginHost`` a ``LashCore`` hands its plugins (never the core itself).

Rule: a thin, narrow wrapper. It exposes what ``lash_kernel.plugin.PluginHost`` declares and
nothing else (no ``PluginManager``, no store, no sessions), and it owns the per-core and
per-session ``Stash`` objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lash_kernel.errors import LashError
from lash_kernel.plugin import Stash
from lash_kernel.tools import Tool, ToolRegistry

if TYPE_CHECKING:
    from lash_kernel.runtime.core import LashCore

__all__ = ["CoreHost", "ReadOnlyTools"]


class ReadOnlyTools:
    """A read-only view of a ``ToolRegistry`` (``PluginHost.tools``): lookups, no ``add``.

    Args:
        registry: the catalog to show; later additions to it are visible.
    """

    __slots__ = ("_registry",)

    def __init__(self, registry: ToolRegistry) -> None:
        self._registry = registry

    def get(self, name: str) -> Tool | None:
        """The tool named ``name``, or None."""
        return self._registry.get(name)

    def names(self) -> tuple[str, ...]:
        """Tool names in catalog order."""
        return self._registry.names()

    def provider_of(self, name: str) -> str | None:
        """Who added the tool (``host`` or a plugin name), or None for an unknown name."""
        return self._registry.provider_of(name)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._registry)

    def __len__(self) -> int:
        return len(self._registry)

    def __contains__(self, item: object) -> bool:
        return item in self._registry

    def __repr__(self) -> str:
        return f"ReadOnlyTools({list(self._registry.names())!r})"


class CoreHost:
    """The ``PluginHost`` of one ``LashCore`` (see ``lash_kernel.plugin.PluginHost``).

    Args:
        core: the core it serves. Plugins reach the core only through this object.

    Attributes:
        stash: per-core plugin data.
    """

    __slots__ = ("_closed", "_core", "_sessions", "stash")

    def __init__(self, core: LashCore) -> None:
        self._core = core
        self.stash = Stash()
        self._sessions: dict[str, Stash] = {}
        self._closed = False
        core.on_close(self._drop_sessions)  # registered first, so it runs after every plugin's

    @property
    def config_dir(self) -> Path | None:
        """Directory of the core's ``lash.toml``, or None when it was configured in code."""
        return self._core.config_dir

    @property
    def tools(self) -> ReadOnlyTools:
        """The core's static tool catalog, read-only (tool providers' tools are not in it)."""
        return ReadOnlyTools(self._core.tools)

    @property
    def usage_sources(self) -> Mapping[str, tuple[str, str]]:
        """Declared usage sources, ``{source: (plugin, description)}``, read-only."""
        return MappingProxyType(self._core.usage_sources)

    def session_stash(self, session_id: str) -> Stash:
        """The stash of ``session_id`` on this core, created on first use.

        Kept across handles of the session; dropped when the core closes.
        Raises:
            LashError: the core is closed.
        """
        if self._closed:
            raise LashError("this LashCore is closed: its session stashes were dropped")
        stash = self._sessions.get(session_id)
        if stash is None:
            stash = self._sessions[session_id] = Stash()
        return stash

    def add_plugin(self, plugin: object, *, name: str | None = None) -> None:
        """Register another hook-implementing object on this core only (``LashCore.add_plugin``)."""
        self._core.add_plugin(plugin, name=name)

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` when the core closes (``LashCore.on_close``)."""
        self._core.on_close(fn)

    def call_hook(self, name: str, /, **kwargs: Any) -> list[Any]:
        """Call a published hook (see ``PluginHost.call_hook``)."""
        return self._core.hooks.call_published(name, kwargs)

    async def acall_hook(self, name: str, /, **kwargs: Any) -> list[Any]:
        """Call a published hook whose implementations may be async (see ``PluginHost.acall_hook``)."""
        return await self._core.hooks.acall_published(name, kwargs)

    def _drop_sessions(self) -> None:
        """Drop every session stash (the core is closing). Idempotent."""
        self._closed = True
        self._sessions.clear()

    def __repr__(self) -> str:
        return f"<PluginHost of {self._core!r}>"
