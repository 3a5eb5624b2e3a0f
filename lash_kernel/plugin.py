"""The plugin-author API, in one place: everything a lash plugin imports comes from here.

```python
from lash_kernel.plugin import PluginHost, StashKey, TurnActivity, hookimpl

SEEN = StashKey[int]()

@hookimpl
def lash_configure(host: PluginHost) -> None:
    host.stash[SEEN] = 0

@hookimpl
def lash_on_activity(host: PluginHost, activity: TurnActivity) -> None:
    host.stash[SEEN] += 1
```

What is here:

- ``hookimpl`` and ``hookspec`` (the markers) and, in ``lash_kernel.hookspecs``, every hook's
  contract;
- ``PluginHost``: the narrow view of a core that ``lash_configure`` and every per-core hook
  receive as ``host`` (never the core); ``Stash`` / ``StashKey`` for per-core
  (``host.stash``) and per-session (``host.session_stash(id)``) plugin data;
- the registrars handed to ``lash_register_*`` hooks and to ``lash_addhooks``;
- directives hooks return (``AbortTurn``, ``InjectMessages``, ``BlockToolCall``,
  ``CompactionPlan``), ``PromptContribution``, ``TraceRecord``;
- the mode contract (``MachineProtocol``, ``MachineConfig``, ``TurnState``, effects, events,
  ``EffectContext``), for plugins that add an execution mode;
- the records and tool API plugins build on (messages, tools, usage, errors, trace records
  and ``TRACE_SCHEMA_VERSION``);
- for store plugins (``lash_register_stores``, added in 0.3): the ``Store`` protocol and its
  records, the store errors, ``serde`` (the one converter) and the shared commit and lease
  rules every first-party store decides by (``plan_commit``, ``plan_claim``, ``plan_renew``,
  ``releases``, ``commit_hash``, ``commit_key``, ``Head``, ``RecordedTurn``, ``CommitPlan``,
  ``SessionReads``, from ``lash_kernel.store.rules``; the rules are written in
  ``lash_kernel.store._commit``), and the row mapping SQL stores share (``SESSION_COLUMNS``,
  ``NODE_COLUMNS``, ``decode_stored``, ``session_info_from_row``, ``node_from_row``, ``lease_from_row``,
  ``frame_from_row``, ``usage_ledger_from_rows``, from ``lash_kernel.store.rows``).

Tests use ``lash_kernel.testing`` (``ScriptedModel``, ``HookRecorder`` and the pytest fixtures).

Rule: this module defines only the plugin-facing contracts (``PluginHost``, ``Stash``, the
registrars, ``ModeInfo``); everything else is re-exported from the module that owns it, lazily:
a name's module is imported the first time the name is looked up, so an entry module that
imports only ``hookimpl`` and ``PluginHost`` stays cheap (``lash --help`` imports every installed
plugin's entry module). It imports no part of the runtime engine (driver, session, core, loader).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast, runtime_checkable

import attrs

from lash_kernel.errors import ConfigError
from lash_kernel.hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from lash_kernel import serde
    from lash_kernel.activity import ActivityEvent, TurnActivity
    from lash_kernel.directives import (
        AbortTurn,
        BlockToolCall,
        CheckpointDirective,
        CompactionPlan,
        InjectMessages,
        OpenFrame,
    )
    from lash_kernel.errors import (
        CommitConflictError,
        CorruptStoreError,
        LashError,
        LeaseLostError,
        PluginError,
        PluginHookError,
        RecordDecodeError,
        SchemaVersionError,
        SessionBusyError,
        SessionNotFoundError,
        StoreError,
        ToolError,
    )
    from lash_kernel.messages import (
        Attachment,
        Message,
        ReasoningPart,
        TextPart,
        ToolCallPart,
        ToolResultPart,
    )
    from lash_kernel.model import ModelClient, ModelRequest, ModelResponse, ToolSpec
    from lash_kernel.outcomes import Finished, Outcome, Stopped
    from lash_kernel.prompt import SLOTS, PromptContribution
    from lash_kernel.runtime.effects import (
        CallModel,
        Checkpoint,
        Effect,
        EmitActivity,
        FinishTurn,
        RunTools,
    )
    from lash_kernel.runtime.events import (
        CancelRequested,
        CheckpointResolved,
        Event,
        ModelFailed,
        ModelResponded,
        ToolCallFinished,
        TurnFailed,
    )
    from lash_kernel.runtime.machine import MachineConfig, MachineProtocol, TurnMachine, TurnState
    from lash_kernel.spec import SessionSpec
    from lash_kernel.store.base import (
        MESSAGE_KIND,
        CommitResult,
        Frame,
        Lease,
        MaintenanceCommit,
        Node,
        PendingInput,
        SessionInfo,
        Store,
        TurnCommit,
        TurnRecord,
    )
    from lash_kernel.store.rows import (
        NODE_COLUMNS,
        SESSION_COLUMNS,
        decode_stored,
        frame_from_row,
        lease_from_row,
        node_from_row,
        session_info_from_row,
        usage_ledger_from_rows,
    )
    from lash_kernel.store.rules import (
        CommitPlan,
        Head,
        RecordedTurn,
        SessionReads,
        commit_hash,
        commit_key,
        plan_claim,
        plan_commit,
        plan_renew,
        releases,
    )
    from lash_kernel.tools import Tool, ToolContext, ToolOutput, ToolProvider, ToolRegistry, tool
    from lash_kernel.trace import TRACE_KINDS, TRACE_SCHEMA_VERSION, TraceRecord
    from lash_kernel.usage import BUCKETS, TokenUsage, UsageKey, UsageLedger

__all__ = [
    "AbortTurn",
    "ActivityEvent",
    "Attachment",
    "BUCKETS",
    "BlockToolCall",
    "CallModel",
    "CancelRequested",
    "Checkpoint",
    "CheckpointDirective",
    "CheckpointResolved",
    "CommitConflictError",
    "CommitPlan",
    "CommitResult",
    "CompactionPlan",
    "ConfigError",
    "ConfigRegistrar",
    "CorruptStoreError",
    "Effect",
    "EffectContext",
    "EffectPerformer",
    "EmitActivity",
    "Event",
    "FinishTurn",
    "Finished",
    "Frame",
    "Head",
    "HookspecRegistrar",
    "InjectMessages",
    "LashError",
    "Lease",
    "LeaseLostError",
    "MESSAGE_KIND",
    "MachineConfig",
    "MachineProtocol",
    "MaintenanceCommit",
    "Message",
    "ModeInfo",
    "ModeRegistrar",
    "ModelClient",
    "ModelFailed",
    "ModelRequest",
    "ModelResponded",
    "ModelResponse",
    "NODE_COLUMNS",
    "Node",
    "OpenFrame",
    "Outcome",
    "PendingInput",
    "PluginError",
    "PluginHookError",
    "PluginHost",
    "PromptContribution",
    "ReasoningPart",
    "RecordDecodeError",
    "RecordTypeRegistrar",
    "RecordedTurn",
    "RunTools",
    "SESSION_COLUMNS",
    "SLOTS",
    "SchemaVersionError",
    "SessionBusyError",
    "SessionInfo",
    "SessionNotFoundError",
    "SessionReads",
    "SessionSpec",
    "Stash",
    "StashKey",
    "Stopped",
    "Store",
    "StoreError",
    "StoreRegistrar",
    "TRACE_KINDS",
    "TRACE_SCHEMA_VERSION",
    "TextPart",
    "TokenUsage",
    "Tool",
    "ToolCallFinished",
    "ToolCallPart",
    "ToolCatalogView",
    "ToolContext",
    "ToolError",
    "ToolOutput",
    "ToolProvider",
    "ToolRegistrar",
    "ToolRegistry",
    "ToolResultPart",
    "ToolSpec",
    "TraceRecord",
    "TurnActivity",
    "TurnCommit",
    "TurnFailed",
    "TurnMachine",
    "TurnRecord",
    "TurnState",
    "UsageKey",
    "UsageLedger",
    "UsageSourceRegistrar",
    "command_host",
    "commit_hash",
    "commit_key",
    "decode_stored",
    "frame_from_row",
    "hookimpl",
    "hookspec",
    "lease_from_row",
    "node_from_row",
    "plan_claim",
    "plan_commit",
    "plan_renew",
    "releases",
    "serde",
    "session_info_from_row",
    "tool",
    "usage_ledger_from_rows",
]

#: Re-exported names and the module that owns each; imported on first use (``__getattr__``),
#: so a plugin's entry module importing ``hookimpl`` and ``PluginHost`` loads no tool, store
#: or machine code (``lash --help`` imports every installed plugin's entry module).
_EXPORTS: dict[str, str] = {
    "NODE_COLUMNS": "lash_kernel.store.rows",
    "SESSION_COLUMNS": "lash_kernel.store.rows",
    "decode_stored": "lash_kernel.store.rows",
    "frame_from_row": "lash_kernel.store.rows",
    "lease_from_row": "lash_kernel.store.rows",
    "node_from_row": "lash_kernel.store.rows",
    "session_info_from_row": "lash_kernel.store.rows",
    "usage_ledger_from_rows": "lash_kernel.store.rows",
    "AbortTurn": "lash_kernel.directives",
    "ActivityEvent": "lash_kernel.activity",
    "Attachment": "lash_kernel.messages",
    "BUCKETS": "lash_kernel.usage",
    "BlockToolCall": "lash_kernel.directives",
    "CallModel": "lash_kernel.runtime.effects",
    "CancelRequested": "lash_kernel.runtime.events",
    "Checkpoint": "lash_kernel.runtime.effects",
    "CheckpointDirective": "lash_kernel.directives",
    "CheckpointResolved": "lash_kernel.runtime.events",
    "CommitConflictError": "lash_kernel.errors",
    "CommitPlan": "lash_kernel.store.rules",
    "CommitResult": "lash_kernel.store.base",
    "CompactionPlan": "lash_kernel.directives",
    "CorruptStoreError": "lash_kernel.errors",
    "Effect": "lash_kernel.runtime.effects",
    "EmitActivity": "lash_kernel.runtime.effects",
    "Event": "lash_kernel.runtime.events",
    "FinishTurn": "lash_kernel.runtime.effects",
    "Finished": "lash_kernel.outcomes",
    "Frame": "lash_kernel.store.base",
    "Head": "lash_kernel.store.rules",
    "InjectMessages": "lash_kernel.directives",
    "LashError": "lash_kernel.errors",
    "Lease": "lash_kernel.store.base",
    "LeaseLostError": "lash_kernel.errors",
    "MESSAGE_KIND": "lash_kernel.store.base",
    "MachineConfig": "lash_kernel.runtime.machine",
    "MachineProtocol": "lash_kernel.runtime.machine",
    "MaintenanceCommit": "lash_kernel.store.base",
    "Message": "lash_kernel.messages",
    "ModelClient": "lash_kernel.model",
    "ModelFailed": "lash_kernel.runtime.events",
    "ModelRequest": "lash_kernel.model",
    "ModelResponded": "lash_kernel.runtime.events",
    "ModelResponse": "lash_kernel.model",
    "Node": "lash_kernel.store.base",
    "OpenFrame": "lash_kernel.directives",
    "Outcome": "lash_kernel.outcomes",
    "PendingInput": "lash_kernel.store.base",
    "PluginError": "lash_kernel.errors",
    "PluginHookError": "lash_kernel.errors",
    "PromptContribution": "lash_kernel.prompt",
    "ReasoningPart": "lash_kernel.messages",
    "RecordDecodeError": "lash_kernel.errors",
    "RecordedTurn": "lash_kernel.store.rules",
    "RunTools": "lash_kernel.runtime.effects",
    "SLOTS": "lash_kernel.prompt",
    "SchemaVersionError": "lash_kernel.errors",
    "SessionBusyError": "lash_kernel.errors",
    "SessionInfo": "lash_kernel.store.base",
    "SessionNotFoundError": "lash_kernel.errors",
    "SessionReads": "lash_kernel.store.rules",
    "SessionSpec": "lash_kernel.spec",
    "Stopped": "lash_kernel.outcomes",
    "Store": "lash_kernel.store.base",
    "StoreError": "lash_kernel.errors",
    "TRACE_KINDS": "lash_kernel.trace",
    "TRACE_SCHEMA_VERSION": "lash_kernel.trace",
    "TextPart": "lash_kernel.messages",
    "TokenUsage": "lash_kernel.usage",
    "Tool": "lash_kernel.tools",
    "ToolCallFinished": "lash_kernel.runtime.events",
    "ToolCallPart": "lash_kernel.messages",
    "ToolContext": "lash_kernel.tools",
    "ToolError": "lash_kernel.errors",
    "ToolOutput": "lash_kernel.tools",
    "ToolProvider": "lash_kernel.tools",
    "ToolRegistry": "lash_kernel.tools",
    "ToolResultPart": "lash_kernel.messages",
    "ToolSpec": "lash_kernel.model",
    "TraceRecord": "lash_kernel.trace",
    "TurnActivity": "lash_kernel.activity",
    "TurnCommit": "lash_kernel.store.base",
    "TurnFailed": "lash_kernel.runtime.events",
    "TurnMachine": "lash_kernel.runtime.machine",
    "TurnRecord": "lash_kernel.store.base",
    "TurnState": "lash_kernel.runtime.machine",
    "UsageKey": "lash_kernel.usage",
    "UsageLedger": "lash_kernel.usage",
    "commit_hash": "lash_kernel.store.rules",
    "commit_key": "lash_kernel.store.rules",
    "plan_claim": "lash_kernel.store.rules",
    "plan_commit": "lash_kernel.store.rules",
    "plan_renew": "lash_kernel.store.rules",
    "releases": "lash_kernel.store.rules",
    "serde": "lash_kernel.serde",
    "tool": "lash_kernel.tools",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lash_kernel.plugin' has no attribute {name!r}")
    imported = importlib.import_module(module)
    value = imported if name == "serde" else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})

T = TypeVar("T")
D = TypeVar("D")


# ------------------------------------------------------------------------------------ stash
class StashKey(Generic[T]):
    """A typed key into a ``Stash``; create one per kind of data, at module level.

    ``KEY = StashKey[MyState]()``; identity is the object, so two plugins' keys never collide
    (the idea of pytest's ``StashKey``).
    """

    __slots__ = ()


class Stash:
    """Typed per-core or per-session storage for plugins: ``stash[KEY] = value``.

    Replaces module-level registries keyed by core or session: what a plugin keeps here lives
    exactly as long as the core (``host.stash``) or the session handle (``host.session_stash``).
    """

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: dict[StashKey[Any], object] = {}

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._data[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        """Raises ``KeyError`` when ``key`` was never set."""
        return cast(T, self._data[key])

    def get(self, key: StashKey[T], default: D) -> T | D:
        """The value under ``key``, or ``default``."""
        return cast("T | D", self._data.get(key, default))

    def setdefault(self, key: StashKey[T], default: T) -> T:
        """The value under ``key``, storing ``default`` first when absent."""
        return cast(T, self._data.setdefault(key, default))

    def __delitem__(self, key: StashKey[T]) -> None:
        del self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[StashKey[Any]]:
        return iter(tuple(self._data))


# ------------------------------------------------------------------------------------ host
@runtime_checkable
class PluginHost(Protocol):
    """What ``lash_configure(host, config)`` receives: the part of a core a plugin may use.

    A plugin never gets the ``LashCore`` itself (nor its ``PluginManager``); everything it may
    do to a core is here. Every other hook a core calls offers the same object as ``host``,
    so module-level implementations reach their per-core data through ``host.stash``. A host
    application reaches it as ``LashCore.plugin_host``.
    """

    @property
    def config_dir(self) -> Path | None:
        """Directory of the ``lash.toml`` the core was built from, or None (built in code).
        Resolve relative paths in your config table against it."""
        ...

    @property
    def stash(self) -> Stash:
        """Per-core plugin data: ``host.stash[KEY]``; lives as long as the core."""
        ...

    @property
    def tools(self) -> ToolCatalogView:
        """The core's static tool catalog, read-only (tool providers' tools are not in it)."""
        ...

    @property
    def usage_sources(self) -> Mapping[str, tuple[str, str]]:
        """Declared usage-ledger sources (``lash_register_usage_sources``), read-only:
        ``{source: (plugin, description)}``. Empty until the core finished building."""
        ...

    def session_stash(self, session_id: str) -> Stash:
        """Per-session plugin data for ``session_id`` on this core, created on first use.

        One stash per session id, shared by every handle of that session on this core; closing
        a handle keeps it (the next ``core.session(id)`` sees the same data), closing the core
        drops every session stash. Delete your own keys in ``lash_session_closed`` if a
        long-lived core opens many sessions.
        """
        ...

    def add_plugin(self, plugin: object, *, name: str | None = None) -> None:
        """Register another hook-implementing object on this core only.

        Raises:
            PluginError: the name is taken, or ``plugin`` implements an unknown ``lash_*`` hook.
        """
        ...

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` when the core closes (last registered runs first; errors are logged)."""
        ...

    def call_hook(self, name: str, /, **kwargs: Any) -> list[Any]:
        """Call a hook some plugin published with ``lash_addhooks``: every implementation on
        this core, in call order (sync implementations only).

        Args:
            name: the published hook (``myplugin_on_x``); kernel ``lash_*`` hooks are not callable.
            kwargs: its arguments; ``host`` is filled in when the spec declares it.
        Returns:
            The non-None results in call order (at most one for a ``firstresult`` spec).
        Raises:
            PluginError: ``name`` is a kernel hook or nobody published it.
            TypeError: missing or unknown arguments.
            PluginHookError: an implementation raised or was async; later ones did not run.
        """
        ...

    async def acall_hook(self, name: str, /, **kwargs: Any) -> list[Any]:
        """``call_hook`` for hooks whose implementations may be async: each is awaited in turn."""
        ...

    # -- agent capabilities (added in 0.2) ---------------------------------------------------
    async def complete(
        self,
        request: ModelRequest | str,
        *,
        source: str,
        model: str | None = None,
        client: str | None = None,
        session_id: str | None = None,
    ) -> ModelResponse:
        """One model call (streamed and collected, with the kernel's retry policy and
        timeouts) whose usage lands in a session's ledger under ``(source, model)``.

        From inside a turn (any hook the turn calls, e.g. ``lash_compact``, or a tool) the
        session is the turn's and the usage is committed with the turn (``children_usage``);
        outside a turn pass ``session_id`` and the usage is committed at once (a maintenance
        commit).

        Args:
            request: a ``ModelRequest`` (an empty ``model`` means the session's model) or a
                prompt text (one user message, no system prompt, no tools).
            source: a declared usage source (``lash_register_usage_sources``).
            model: model id instead of the request's / the session's.
            client: one of the core's named model clients instead of the session's.
            session_id: the session that pays (required outside a turn).
        Returns:
            The ``ModelResponse``.
        Raises:
            ConfigError: undeclared source, unknown client, or no session outside a turn.
            ModelError: the provider failed after retries (nothing is recorded).
        """
        ...

    def open_child_session(
        self, parent_session_id: str, spec: SessionSpec | None = None, *, source: str = "child"
    ) -> Any:
        """A new durable child ``Session`` of ``parent_session_id`` (tools use
        ``ToolContext.open_child_session``, which also links the tool call).

        From inside a turn of the parent, the child's turns report their usage to that turn
        and are cancelled with it, as from a tool.

        Args:
            parent_session_id: the parent.
            spec: the child's settings (default: inherited from the parent's spec).
            source: the usage source of the child's own model calls unless ``spec`` sets one.
        Raises:
            ConfigError: an undeclared source.
            SessionNotFoundError: no such parent.
        """
        ...

    def spawn(self, work: Callable[[], Awaitable[Any]], *, name: str) -> None:
        """Run ``await work()`` in the background on a task group the core owns (e.g. from
        ``lash_turn_committed``); its results should land through ``commit_maintenance``.
        ``await core.drain()`` waits for it; ``core.close()`` cancels it
        (a process that dies loses only what the work had not committed). Failures are logged.

        Raises:
            LashError: the core is closed, or no asyncio event loop is running.
        """
        ...

    def append_nodes(self, session_id: str, records: Iterable[object]) -> None:
        """Store plugin records (registered through ``lash_register_record_types``) as nodes
        of the session's graph, committed with the turn that is running: call it from a hook
        or tool of a turn of ``session_id`` (between turns use ``commit_maintenance``). Read
        them back with ``nodes`` / ``Session.nodes(kind)``.

        Raises:
            LashError: no turn of ``session_id`` is running here, or a record's type is not
                registered (nothing is stored).
        """
        ...

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
        """Write between turns, atomically: plugin records, a usage delta and/or a new agent
        frame (``OpenFrame(reason, seed)``). Waits while a turn holds the session's lease.

        Args:
            session_id: the session.
            key: idempotency key: the same key and content again is a no-op.
            records: plugin records to store as nodes.
            frame: a frame to open.
            usage: usage to add to the ledger.
            expected_revision: the head revision your work was based on; a newer head then
                raises instead of committing (use it when ``frame`` was computed from history).
        Returns:
            The session's head revision after the commit.
        Raises:
            CommitConflictError: the head moved past ``expected_revision``, or ``key`` was
                committed with other content.
            SessionBusyError: a turn kept the lease too long.
        """
        ...

    def nodes(self, session_id: str, kind: str) -> tuple[Any, ...]:
        """The session's plugin records of ``kind``, decoded, in commit order (every frame)."""
        ...

    def history(self, session_id: str) -> tuple[Message, ...]:
        """The session's current frame, as committed (a fresh read from the store)."""
        ...

    def session_info(self, session_id: str) -> SessionInfo:
        """The session's head (revision, frame, parent link, depth). Raises ``SessionNotFoundError``."""
        ...

    def session_spec(self, session_id: str) -> SessionSpec:
        """The session's settings (``plugin_options`` holds per-plugin options)."""
        ...

    def emit_activity(self, session_id: str, event: object) -> bool:
        """Publish a plugin's own activity event in the running turn of ``session_id``: it
        reaches the host's stream (``turn.stream()``) and ``lash_on_activity`` observers.

        Args:
            session_id: the session whose turn is running here (a hook or tool of that turn).
            event: a frozen attrs record with a ``KIND`` string class variable (its activity
                ``kind``, e.g. ``compaction_finished``); not persisted, so it need not be a
                registered record type.
        Returns:
            True when published; False when no turn of that session is running here (the
            event goes nowhere).
        Raises:
            LashError: ``event`` has no ``KIND`` string.
        """
        ...

    def plugin_names(self) -> tuple[str, ...]:
        """The names of the plugins registered on this core, in call order (first called
        first): e.g. to refuse running beside an incompatible plugin."""
        ...


class ToolCatalogView(Protocol):
    """Read-only access to a ``ToolRegistry``."""

    def get(self, name: str) -> Tool | None: ...

    def names(self) -> tuple[str, ...]: ...

    def provider_of(self, name: str) -> str | None: ...

    def __iter__(self) -> Iterator[Tool]: ...

    def __len__(self) -> int: ...

    def __contains__(self, item: object) -> bool: ...


# ------------------------------------------------------------------------------------ modes
class EffectContext(Protocol):
    """What an effect performer of a plugin mode may use while a turn runs.

    Attributes:
        session_id, turn_id: where the effect happens.
        tools: the turn's tool catalog.
    """

    session_id: str
    turn_id: str
    tools: ToolRegistry

    def emit(self, event: ActivityEvent, correlation_id: str) -> None:
        """Publish one activity on the turn's stream (after any already queued)."""
        ...


EffectPerformer = Callable[[Any, EffectContext], Any]
"""``async def perform(effect, ctx: EffectContext) -> Event | Sequence[Event]``: performs one
effect of a mode's own type and returns the event(s) to feed back to the machine."""


@attrs.frozen(kw_only=True)
class ModeInfo:
    """A registered execution mode.

    Attributes:
        name: mode name (``standard``, ``rlm``, ...), stored with each session.
        factory: ``factory(config: MachineConfig, history: tuple[Message, ...])`` returning a
            ``MachineProtocol`` (``start``, ``feed``, ``state``, ``usage``).
        effects: extra effect types this mode's machine emits, each with its performer; the
            driver performs the kernel's own effects itself.
        description: one line for listings.
        plugin: who registered it.
    """

    name: str
    factory: Callable[[MachineConfig, tuple[Message, ...]], MachineProtocol]
    effects: Mapping[type, EffectPerformer] = attrs.field(factory=dict)
    description: str = ""
    plugin: str = "lash"


# ------------------------------------------------------------------------------------ registrars
class _Registrar:
    """Base of the registrars handed to ``lash_register_*`` hooks: bound to one plugin."""

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin


class ToolRegistrar(_Registrar):
    """Handed to ``lash_register_tools``: adds tools to the catalog on behalf of one plugin.

    Args:
        registry: the core's static catalog.
        providers: the core's list of ``(plugin, ToolProvider)`` pairs.
        plugin: name of the plugin registering (used in conflict errors and ``lash tools list``).
    """

    def __init__(self, registry: ToolRegistry, providers: list[tuple[str, ToolProvider]], plugin: str) -> None:
        super().__init__(plugin)
        self._registry = registry
        self._providers = providers

    def add(self, item: Tool | Callable[..., Any], *, replace: bool = False) -> Tool:
        """Register a ``Tool`` (or a function, wrapped with ``@tool``) and return it.

        Raises:
            ConfigError: the name is taken by another tool (both providers are named).
        """
        from lash_kernel.tools import Tool, tool

        t = item if isinstance(item, Tool) else tool(item)
        self._registry.add(t, provider=self.plugin, replace=replace)
        return t

    def add_provider(self, provider: ToolProvider) -> None:
        """Register a ``ToolProvider``; its tools are listed at the start of every turn.

        Raises:
            ConfigError: ``provider`` lacks ``name``, ``list_tools`` or ``close``.
        """
        from lash_kernel.tools import ToolProvider

        if not isinstance(provider, ToolProvider):
            raise ConfigError(
                f"plugin {self.plugin!r}: {provider!r} is not a ToolProvider (needs name, list_tools(), close())"
            )
        self._providers.append((self.plugin, provider))


class ConfigRegistrar(_Registrar):
    """Handed to ``lash_register_config``: declares the attrs class of one plugin's config table."""

    def __init__(self, classes: dict[str, type], plugin: str) -> None:
        super().__init__(plugin)
        self._classes = classes

    def add(self, cls: type) -> None:
        """Declare ``cls`` (an attrs class) as this plugin's config.

        Raises:
            ConfigError: ``cls`` is not an attrs class, or the plugin already declared one.
        """
        if not attrs.has(cls):
            raise ConfigError(f"plugin {self.plugin!r}: config class {cls!r} must be an attrs class")
        if self.plugin in self._classes:
            raise ConfigError(f"plugin {self.plugin!r} declared two config classes")
        self._classes[self.plugin] = cls


class ModeRegistrar(_Registrar):
    """Handed to ``lash_register_modes``: adds execution modes."""

    def __init__(self, modes: MutableMapping[str, ModeInfo], plugin: str) -> None:
        super().__init__(plugin)
        self._modes = modes

    def add(
        self,
        name: str,
        factory: Callable[[MachineConfig, tuple[Message, ...]], MachineProtocol],
        *,
        effects: Mapping[type, EffectPerformer] | None = None,
        description: str = "",
    ) -> None:
        """Register mode ``name``.

        Args:
            name: the mode's name (what ``core.session(id, mode=name)`` takes).
            factory: builds the machine for one turn (see ``ModeInfo.factory``).
            effects: the mode's own effect types and their async performers (see
                ``EffectPerformer``); the kernel's effects need none.
            description: one line for listings.
        Raises:
            ConfigError: the name is taken (both plugins named), ``factory`` or a performer is
                not callable, or an effect type is one of the kernel's own.
        """
        if not callable(factory):
            raise ConfigError(f"plugin {self.plugin!r}: mode {name!r} factory must be callable")
        if name in self._modes:
            raise ConfigError(
                f"mode {name!r} from plugin {self.plugin!r} conflicts with plugin {self._modes[name].plugin!r}"
            )
        performers = dict(effects or {})
        for effect_type, perform in performers.items():
            if effect_type in _kernel_effects():
                raise ConfigError(
                    f"plugin {self.plugin!r}: mode {name!r} cannot replace the kernel's {effect_type.__name__} effect"
                )
            if not callable(perform):
                raise ConfigError(f"plugin {self.plugin!r}: performer for {effect_type!r} must be callable")
        self._modes[name] = ModeInfo(
            name=name, factory=factory, effects=performers, description=description, plugin=self.plugin
        )


def _kernel_effects() -> frozenset[type]:
    """The effect types the kernel performs itself (a mode may not replace them)."""
    from lash_kernel.runtime.effects import CallModel, Checkpoint, EmitActivity, FinishTurn, RunTools

    return frozenset({CallModel, RunTools, Checkpoint, EmitActivity, FinishTurn})


class RecordTypeRegistrar(_Registrar):
    """Handed to ``lash_register_record_types``: declares persisted plugin record classes."""

    def __init__(self, types: dict[str, tuple[str, type]], plugin: str) -> None:
        super().__init__(plugin)
        self._types = types

    def add(self, cls: type) -> None:
        """Register ``cls``: a frozen attrs class with a ``KIND: ClassVar[str]`` wire tag.

        Raises:
            ConfigError: not an attrs class, no ``KIND``, or a KIND another plugin registered.
        """
        kind = getattr(cls, "KIND", None)
        if not attrs.has(cls) or not isinstance(kind, str) or not kind:
            raise ConfigError(f"plugin {self.plugin!r}: record type {cls!r} must be an attrs class with a KIND string")
        if kind in self._types and self._types[kind][1] is not cls:
            raise ConfigError(
                f"record kind {kind!r} from plugin {self.plugin!r} conflicts with plugin {self._types[kind][0]!r}"
            )
        self._types[kind] = (self.plugin, cls)


class HookspecRegistrar(_Registrar):
    """Handed to ``lash_addhooks``: publishes a plugin's own hookspecs for other plugins.

    Args:
        publish: the kernel's ``(namespace, plugin) -> names`` function.
        plugin: the publishing plugin's name.
    """

    def __init__(self, publish: Callable[[object, str], tuple[str, ...]], plugin: str) -> None:
        super().__init__(plugin)
        self._publish = publish

    def add(self, namespace: object) -> tuple[str, ...]:
        """Publish every ``@hookspec`` function of ``namespace`` (a module or class).

        Returns:
            The published hook names.
        Raises:
            ConfigError: no ``@hookspec`` functions, a name starting with ``lash_``, a
                ``historic`` spec, or a name another plugin already published.
            PluginError: a registered implementation does not match the new spec.
        """
        return self._publish(namespace, self.plugin)


class UsageSourceRegistrar(_Registrar):
    """Handed to ``lash_register_usage_sources``: declares usage-ledger source labels."""

    def __init__(self, sources: dict[str, tuple[str, str]], plugin: str) -> None:
        super().__init__(plugin)
        self._sources = sources

    def add(self, name: str, description: str = "") -> None:
        """Declare source ``name`` (what ``UsageKey.source`` will say).

        Raises:
            ConfigError: empty name, or declared by another plugin.
        """
        if not name:
            raise ConfigError(f"plugin {self.plugin!r}: usage source name must be non-empty")
        if name in self._sources and self._sources[name][0] != self.plugin:
            raise ConfigError(
                f"usage source {name!r} from plugin {self.plugin!r} conflicts with plugin {self._sources[name][0]!r}"
            )
        self._sources[name] = (self.plugin, description)


class StoreRegistrar(_Registrar):
    """Handed to ``lash_register_stores``: declares store URL schemes.

    Args:
        stores: the scheme table being filled: scheme -> ``(plugin, opener, description)``.
        plugin: the declaring plugin's name.
    """

    def __init__(self, stores: dict[str, tuple[str, Callable[[str], Any], str]], plugin: str) -> None:
        super().__init__(plugin)
        self._stores = stores

    def add(self, scheme: str, opener: Callable[[str], Any], description: str = "") -> None:
        """Declare ``scheme``: a URL ``scheme://…`` opens with ``opener(url)``, which returns a
        ``Store`` (see ``lash_kernel.store.base.Store``).

        Args:
            scheme: the URL scheme, matched case-insensitively (stored lower case).
            opener: called with the whole URL string each time a store is opened.
            description: one line for listings and error messages.
        Raises:
            ConfigError: not a valid scheme name, ``opener`` not callable, or the scheme is
                declared by another plugin.
        """
        name = scheme.lower()
        if not _SCHEME.fullmatch(name):
            raise ConfigError(f"plugin {self.plugin!r}: {scheme!r} is not a URL scheme (letters, digits, + - .)")
        if not callable(opener):
            raise ConfigError(f"plugin {self.plugin!r}: the opener of store scheme {scheme!r} must be callable")
        if name in self._stores and self._stores[name][0] != self.plugin:
            raise ConfigError(
                f"store scheme {name!r} from plugin {self.plugin!r} conflicts with plugin {self._stores[name][0]!r}"
            )
        self._stores[name] = (self.plugin, opener, description)


_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


# ------------------------------------------------------------------------------------ CLI commands
def command_host() -> AbstractContextManager[PluginHost]:
    """For a plugin's ``lash`` subcommand: a core built from the running command's ``lash.toml``
    (``--config``, else ``./lash.toml``), exactly as ``lash run`` builds it but without a model,
    entered as a context manager that yields its ``PluginHost`` and closes the core on exit.

    ```python
    @click.command("status")
    def status() -> None:
        with command_host() as host:
            click.echo(repr(host.stash.get(MY_KEY, None)))
    ```

    Returns:
        A context manager yielding the ``PluginHost`` your ``lash_configure`` received.
    Raises:
        ConfigError: invalid ``lash.toml`` or plugin tables (the CLI prints it and exits 2).
        PluginLoadError: strict loading and a plugin failed.
    """
    from lash_kernel.cli.context import plugin_command_host  # the CLI only when a command runs

    return plugin_command_host()
