"""CoreHost: the ``PluginHost`` a ``LashCore`` hands its plugins (never the core itself).

Rule: a thin, narrow wrapper. It exposes what ``lash_kernel.plugin.PluginHost`` declares and
nothing else (no ``PluginManager``, no store, no sessions), and it owns the per-core and
per-session ``Stash`` objects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lash_kernel.directives import OpenFrame
from lash_kernel.errors import LashError
from lash_kernel.messages import Message
from lash_kernel.model import ModelRequest, ModelResponse
from lash_kernel.plugin import Stash
from lash_kernel.runtime._state import CURRENT_TURN
from lash_kernel.spec import SessionSpec
from lash_kernel.store.base import SessionInfo
from lash_kernel.tools import Tool, ToolRegistry
from lash_kernel.usage import UsageLedger

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

    # -- agent capabilities: see ``PluginHost`` for the contracts -----------------------------
    async def complete(
        self,
        request: ModelRequest | str,
        *,
        source: str,
        model: str | None = None,
        client: str | None = None,
        session_id: str | None = None,
    ) -> ModelResponse:
        """One model call billed to a session (``PluginHost.complete``)."""
        return await self._core.services.complete(
            request, source=source, model=model, client=client, session_id=session_id
        )

    def open_child_session(
        self, parent_session_id: str, spec: SessionSpec | None = None, *, source: str = "child"
    ) -> Any:
        """A new child session (``PluginHost.open_child_session``)."""
        turn = CURRENT_TURN.get()
        if turn is not None and (turn.session_id != parent_session_id or turn.control.commit is not None):
            turn = None
        return self._core.services.open_child_session(
            spec, source=source, parent_session_id=parent_session_id, parent_turn=turn
        )

    def spawn(self, work: Callable[[], Awaitable[Any]], *, name: str) -> None:
        """Background work owned by the core (``PluginHost.spawn``)."""
        self._core.services.background.spawn(work, name=name)

    def append_nodes(self, session_id: str, records: Iterable[object]) -> None:
        """Plugin records as graph nodes of the running turn (``PluginHost.append_nodes``)."""
        self._core.services.append_records(session_id, records)

    async def commit_maintenance(
        self,
        session_id: str,
        *,
        key: str | None = None,
        records: Iterable[object] = (),
        frame: OpenFrame | None = None,
        usage: UsageLedger | None = None,
        expected_revision: int | None = None,
    ) -> int:
        """A write between turns (``PluginHost.commit_maintenance``); returns the head revision."""
        result = await self._core.services.maintenance_commit(
            session_id, key=key, records=records, frame=frame, usage=usage, expected_revision=expected_revision
        )
        return result.head_revision

    def nodes(self, session_id: str, kind: str) -> tuple[Any, ...]:
        """Decoded plugin records of ``kind`` (``PluginHost.nodes``)."""
        return self._core.services.session_services.records(session_id, kind)

    def history(self, session_id: str) -> tuple[Message, ...]:
        """The current frame's messages (``PluginHost.history``)."""
        return self._core.services.session_services.current_frame(session_id)

    def session_info(self, session_id: str) -> SessionInfo:
        """The session's head (``PluginHost.session_info``)."""
        return self._core.store.get_session(session_id)

    def session_spec(self, session_id: str) -> SessionSpec:
        """The session's settings (``PluginHost.session_spec``)."""
        return self._core.services.session_spec(session_id)

    def emit_activity(self, session_id: str, event: object) -> bool:
        """A plugin's own activity in the running turn (``PluginHost.emit_activity``)."""
        if not isinstance(getattr(type(event), "KIND", None), str):
            raise LashError(f"emit_activity: {type(event).__name__} has no KIND string")
        turn = CURRENT_TURN.get()
        if turn is None or turn.session_id != session_id or turn.control.commit is not None:
            return False
        turn.emit(event, turn.turn_id)  # type: ignore[arg-type]
        return True

    def plugin_names(self) -> tuple[str, ...]:
        """Registered plugin names in call order (``PluginHost.plugin_names``)."""
        return tuple(info.name for info in self._core.plugins())

    def _drop_sessions(self) -> None:
        """Drop every session stash (the core is closing). Idempotent."""
        self._closed = True
        self._sessions.clear()

    def __repr__(self) -> str:
        return f"<PluginHost of {self._core!r}>"
