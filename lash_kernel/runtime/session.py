"""Sessions and turns: the host-facing handles.

``Session.turn(input)`` returns a ``Turn``; ``await turn.run()`` gives a ``TurnResult``, and
``turn.stream()`` yields ``TurnActivity`` objects live. A session is a cheap handle: opening one
reads only its head; the active path is loaded at the first turn and then kept in memory.

Rule: a ``Session`` knows its core only through ``SessionServices`` (the turn runtime and the
turn defaults), built once by ``LashCore``; it never touches the core's private members.
Every exception a turn documents reaches the host bare (never wrapped in an ExceptionGroup).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import anyio
import attrs

from lash_kernel.activity import TurnActivity
from lash_kernel.errors import (
    CommitConflictError,
    ConfigError,
    LashError,
    LeaseLostError,
    PluginHookError,
    RecordDecodeError,
)
from lash_kernel.messages import Message, ToolCallPart, ToolResultPart, assistant_text, repair_history
from lash_kernel.outcomes import Outcome
from lash_kernel.runtime._cache import StateCache
from lash_kernel.runtime._final_result import FINAL_TOOL, OutputSpec, decode_value, final_result_tool
from lash_kernel.runtime._lease import claim, keep_renewed, release
from lash_kernel.runtime._state import TurnContext, message_bytes
from lash_kernel.runtime.driver import SessionState, TurnControl, TurnRuntime, run_turn
from lash_kernel.runtime.machine import MachineConfig
from lash_kernel.serde import decode_plugin_record
from lash_kernel.spec import SessionSpec
from lash_kernel.store.base import MESSAGE_KIND, Frame, Lease, Node, PendingInput, SessionInfo, Store, TurnRecord
from lash_kernel.text import valid_message, valid_text
from lash_kernel.trace import TraceKind, TraceRecord
from lash_kernel.usage import TokenUsage, UsageLedger, UsageReport

__all__ = ["Session", "SessionGraph", "SessionServices", "Turn", "TurnResult"]

_log = logging.getLogger("lash")


def _load_anyio() -> None:
    """Load, with the runtime, the parts of anyio a turn uses: anyio imports them (and its
    asyncio backend) on first use, which put about 20-50 ms of imports into a new process's
    first turn. A host imports the runtime once at start-up; its first request should not pay.
    """
    for name in ("CancelScope", "Event", "create_memory_object_stream", "create_task_group", "to_thread"):
        getattr(anyio, name)
    with contextlib.suppress(ImportError):  # anyio's backend module: private, so only a warm-up
        importlib.import_module("anyio._backends._asyncio")


_load_anyio()


@attrs.frozen(kw_only=True)
class SessionServices:
    """What a ``Session`` needs from its core. Built once by ``LashCore``, shared by its sessions.

    Attributes:
        runtime: the turn runtime (model client, store, hooks, tools, clock, ids, modes, ...).
        model: model id for every turn.
        max_turns: default model calls allowed per turn (>= 1).
        max_output_tokens: default output-token cap per model call, or None.
        temperature: default sampling temperature, or None.
        cache: the decoded states of sessions served recently (see ``runtime/_cache.py``).
    """

    runtime: TurnRuntime
    model: str
    max_turns: int = 16
    max_output_tokens: int | None = None
    temperature: float | None = None
    cache: StateCache = attrs.field(factory=StateCache)

    @property
    def store(self) -> Store:
        """The core's store."""
        return self.runtime.store

    def machine_config(
        self,
        *,
        turn_id: str,
        spec: SessionSpec,
        max_turns: int | None = None,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
        options: Mapping[str, Any] | None = None,
        output_schema: OutputSpec | None = None,
    ) -> MachineConfig:
        """One turn's parameters: the given values, else the session's spec, else the core's
        defaults (the system prompt is settled by the driver from ``spec.system_prompt`` or
        the core's prompt, plus plugin contributions; tools likewise). An ``output_schema``
        (already checked by ``Session.turn``) makes the turn end with the ``final_result`` tool.

        Raises:
            ConfigError: an invalid limit (e.g. ``max_turns < 1``).
        """
        try:
            return MachineConfig(
                turn_id=turn_id,
                model=spec.model or self.model,
                system=spec.system_prompt,
                max_turns=max_turns or spec.max_turns or self.max_turns,
                max_output_tokens=max_output_tokens or self.max_output_tokens,
                temperature=temperature if temperature is not None else self.temperature,
                source=spec.usage_source or "turn",
                options=dict(options or {}),
                final_tool=FINAL_TOOL if output_schema is not None else None,
                output_schema=output_schema,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def records(self, session_id: str, kind: str) -> tuple[Any, ...]:
        """The plugin records of ``kind`` stored in ``session_id``, decoded, in commit order.

        Raises:
            RecordDecodeError: a stored record cannot be decoded (e.g. its type is no longer
                registered).
        """
        runtime = self.runtime
        nodes = runtime.store.load_nodes_of_kind(session_id, kind)
        return tuple(decode_plugin_record(str(n.payload), runtime.record_types) for n in nodes)

    def current_frame(self, session_id: str) -> tuple[Message, ...]:
        """The messages of ``session_id``'s current frame as committed (repaired: every tool
        call answered), read from the store."""
        store = self.store
        fast = getattr(store, "load_frame_messages", None)  # optional store capability
        if fast is not None:
            return repair_history(fast(session_id))
        nodes = store.load_active_path(session_id)
        return repair_history(tuple(n.message for n in nodes if n.kind == MESSAGE_KIND))

    @staticmethod
    def log_errors(errors: list[PluginHookError]) -> None:
        """Log hook failures that change nothing (observers, lifecycle hooks)."""
        for error in errors:
            _log.error("%s", error)

    def trace_session(self, kind: TraceKind, info: SessionInfo, **attributes: Any) -> None:
        """Hand a session-level ``TraceRecord`` (``session.opened`` / ``session.closed``) to
        tracing plugins; a no-op when none is loaded."""
        hooks = self.runtime.hooks
        if hooks.implemented("lash_on_trace_record"):
            record = TraceRecord(
                kind=kind, time_s=self.runtime.clock(), session_id=info.session_id, turn_id=None,
                span_id=info.session_id, attributes=attributes,
            )
            self.log_errors(hooks.on_trace_record(record))


@attrs.frozen(kw_only=True)
class SessionGraph:
    """A session's whole history (``Session.graph()``): nothing is ever rewritten.

    Attributes:
        frames: frame records, oldest first (the session's first frame has none).
        nodes: every node (messages and plugin records, every frame), in commit order.
    """

    frames: tuple[Frame, ...]
    nodes: tuple[Node, ...]


@attrs.frozen(kw_only=True)
class TurnResult:
    """What a finished (committed) turn produced.

    Attributes:
        session_id, turn_id: identity.
        outcome: ``Finished`` or ``Stopped``.
        text: the last assistant text of the turn ("" if none).
        messages: every message the turn committed, user input first.
        activities: the full activity stream, in ``seq`` order.
        usage: this session's own model calls in this turn, summed (tokens).
        ledger: the same usage per (source, model).
        children_usage: everything else spent during the turn, per (source, requested model): child
            sessions' model calls (grandchildren included) and direct completions of plugins
            and tools (``complete``). Committed to this session's ledger with the turn.
        head_revision: the session's revision after the commit.
        value: for a turn run with ``output_schema=`` that finished with a final value
            (``Finished(output="final_value")``), the decoded JSON value, an instance of the
            class when ``output_schema`` was an attrs class; None otherwise. Added in 0.2.
    """

    session_id: str
    turn_id: str
    outcome: Outcome
    text: str
    messages: tuple[Message, ...]
    activities: tuple[TurnActivity, ...]
    usage: TokenUsage
    ledger: UsageLedger
    children_usage: Mapping[tuple[str, str], TokenUsage]
    head_revision: int
    value: Any = None

    def total_usage(self) -> TokenUsage:
        """Own usage plus ``children_usage``: every token the turn spent (tokens)."""
        total = self.usage
        for usage in self.children_usage.values():
            total = total + usage
        return total

    @property
    def tool_calls(self) -> tuple[tuple[ToolCallPart, ToolResultPart], ...]:
        """Each tool call of the turn with its result, in call order."""
        results = {
            p.call_id: p for m in self.messages if m.role == "tool" for p in m.parts if isinstance(p, ToolResultPart)
        }
        return tuple(
            (call, results[call.id]) for m in self.messages for call in m.tool_calls if call.id in results
        )


class Turn:
    """One turn, not started until you call ``run()``, ``run_sync()`` or ``stream()``.

    A turn runs at most once. Use ``cancel()`` from any task, before or while it runs, to stop
    it: the turn then commits ``Stopped(cancelled, reason)`` with every started tool call
    answered, and its stream still ends with ``turn_finished``.
    """

    def __init__(self, session: Session, user_input: Message, config: MachineConfig) -> None:
        self.session = session
        self.user_input = user_input
        self.config = config
        self.turn_id = config.turn_id
        self.control = TurnControl()
        self._started = False
        self._result: TurnResult | None = None

    def cancel(self, reason: str = "cancelled by host") -> None:
        """Request cancellation; idempotent (the first reason wins), safe from any task on the
        event loop, also before the turn runs."""
        self.control.cancel(reason)

    async def stream(self) -> AsyncGenerator[TurnActivity, None]:
        """Run the turn, yielding each activity as it happens.

        The turn is committed before the last activity (``turn_finished``) is yielded. Consume
        the stream to the end; if you stop early, close it (``contextlib.aclosing``) and the turn
        commits as cancelled.

        Raises:
            LashError: the turn was already started, another turn is running on the session,
                or the session is closed.
            SessionBusyError: another writer (a handle, core or process) holds the session's
                lease; nothing was admitted and no model was called.
            LeaseLostError: the lease was reclaimed by another writer while the turn ran;
                nothing of the turn was committed (its input stays pending).
            ConfigError: the session's mode is not registered on this core.
            CommitConflictError: the turn id is already committed (refused before any model
                call; nothing admitted), or another writer committed to the session first
                (nothing of this turn was committed and its input stays pending). Either way
                the handle reloads the session, so its next turn continues from the store.
            StoreError: the store failed; an admitted input stays pending.
            MachineStateError: the session's mode broke the machine contract (a plugin bug).
        """
        if self._started:
            raise LashError(f"turn {self.turn_id} was already started")
        self._started = True
        session = self.session
        rt = session._services.runtime
        state, lease = session._enter()
        # The turn runs in its own task and hands activities over a memory stream, so its
        # cancel scopes (turn.cancel(), the request deadline) never reach the consumer's code.
        send, receive = anyio.create_memory_object_stream[TurnActivity](math.inf)
        failures: list[Exception] = []
        renewing = anyio.CancelScope()
        parent = session._parent_turn  # a child session's turn reports to its parent's, while it runs
        if parent is not None and parent.control.commit is not None:
            parent = None

        async def produce() -> None:
            with send:
                try:
                    await run_turn(
                        rt, state, self.control, turn_id=self.turn_id, user_input=self.user_input,
                        config=self.config, sink=send.send_nowait, lease=lease, parent=parent,
                    )
                except Exception as exc:  # re-raised bare below, never inside an ExceptionGroup
                    failures.append(exc)
                finally:
                    renewing.cancel()

        async def renew() -> None:
            with renewing:
                await keep_renewed(rt, lease, self.control.cancel)

        try:
            async with anyio.create_task_group() as tg, receive:
                tg.start_soon(produce)
                tg.start_soon(renew)
                try:
                    async for activity in receive:
                        yield activity
                except GeneratorExit:  # the consumer closed the stream: stop (and commit) the turn
                    tg.cancel_scope.cancel()
        finally:
            session._busy = False
            release(rt, lease)
            if not failures and session._state is state:  # committed (or nothing to commit)
                session._services.cache.put(session.id, state, lease.fencing)
        if failures:
            session._turn_failed(failures[0])
            raise failures[0]

    async def run(self) -> TurnResult:
        """Run the turn to its end and return the ``TurnResult``. Raises as ``stream()``."""
        async for _ in self.stream():
            pass
        return self.result

    def run_sync(self) -> TurnResult:
        """``run()`` for scripts: starts an event loop (do not call from async code), and
        waits for the background work the turn started before the loop ends."""

        async def run_and_drain() -> TurnResult:
            result = await self.run()
            services = self.session._services.runtime.services
            if services is not None:
                await services.drain()
            return result

        return anyio.run(run_and_drain)

    @property
    def result(self) -> TurnResult:
        """The committed result.

        Raises:
            LashError: the turn has not been committed.
            RecordDecodeError: the final value does not decode (only if a plugin's
                ``lash_after_tool_call`` rewrote the ``final_result`` output).
        """
        if self._result is None:
            c = self.control
            if c.outcome is None or c.commit is None:
                raise LashError(f"turn {self.turn_id} has not been committed")
            own = c.usage.total() if c.usage is not None else TokenUsage()
            self._result = TurnResult(
                session_id=self.session.id,
                turn_id=self.turn_id,
                outcome=c.outcome,
                text=assistant_text(c.messages),
                messages=c.messages,
                activities=tuple(c.activities),
                usage=own,
                ledger=c.usage or UsageLedger(),
                children_usage=dict(c.children_usage.report().by_source_model),  # served models summed
                head_revision=c.commit.head_revision,
                value=decode_value(c.outcome, self.config.output_schema),
            )
        return self._result


class Session:
    """A handle on one durable session. Get one from ``LashCore.session(id)``.

    Args:
        services: what the session needs from its core (built by ``LashCore``).
        info: the session's head, as the store returned it.

    Attributes:
        id: the session id.
    """

    def __init__(
        self, services: SessionServices, info: SessionInfo, *, parent_turn: TurnContext | None = None
    ) -> None:
        self._services = services
        self.id = info.session_id
        self._info = info
        self._stale = False  # the head in _info is out of date (a turn lost a commit race)
        self._state: SessionState | None = None
        self._spec: SessionSpec | None = None
        self._parent_turn = parent_turn
        self._fencing = -1  # fencing number of the last lease this handle held
        self._busy = False
        self._closed = False

    @property
    def info(self) -> SessionInfo:
        """The session's head as of the last commit seen by this handle (re-read from the
        store after this handle lost a commit race)."""
        if self._state is not None:
            return self._state.info
        if self._stale:
            self._info = self._services.store.get_session(self.id)
            self._stale = False
        return self._info

    @property
    def spec(self) -> SessionSpec:
        """The session's settings, as persisted when it was created. Added in 0.2."""
        if self._spec is None:
            self._spec = SessionSpec.from_json(self._info.spec)
        return self._spec

    @property
    def parent_session_id(self) -> str | None:
        """The parent session's id for a child session, else None. Added in 0.2."""
        return self._info.parent_session_id

    @property
    def depth(self) -> int:
        """0 for a root session, the parent's depth + 1 for a child. Added in 0.2."""
        return self._info.depth

    def history(self) -> tuple[Message, ...]:
        """The current frame's committed messages on the active path, oldest first (its seed
        first after a frame switch; loads them on first use). Every frame stays in the store:
        see ``graph()``."""
        return self._load().history

    def children(self) -> list[SessionInfo]:
        """The session's child sessions, oldest first. Added in 0.2."""
        return self._services.store.list_children(self.id)

    def frames(self) -> list[Frame]:
        """Frames opened in the session, oldest first (the first frame has no record). Added in 0.2."""
        return self._services.store.list_frames(self.id)

    def graph(self) -> SessionGraph:
        """Every frame record and every node of the session, in commit order. Added in 0.2."""
        store = self._services.store
        return SessionGraph(frames=tuple(store.list_frames(self.id)), nodes=store.load_graph(self.id))

    def nodes(self, kind: str) -> tuple[Any, ...]:
        """The plugin records of ``kind`` (a registered record type's ``KIND``) stored in the
        session, in commit order, decoded. Added in 0.2.

        Raises:
            RecordDecodeError: a stored record cannot be decoded (e.g. its type is no longer
                registered).
        """
        return self._services.records(self.id, kind)

    def turn(
        self,
        user_input: str | Message,
        *,
        max_turns: int | None = None,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
        options: Mapping[str, Any] | None = None,
        turn_id: str | None = None,
        output_schema: OutputSpec | None = None,
    ) -> Turn:
        """Prepare a turn (nothing runs until ``run``/``stream``).

        Text is made valid Unicode here (``lash_kernel.text``): a lone surrogate, e.g. from an
        undecodable byte in ``sys.argv``, becomes U+FFFD.

        Args:
            user_input: the user's text, or a ``Message`` with role ``user`` (another role is
                committed as ``Stopped(invalid_input)`` when the turn runs, calling no model).
            max_turns: model calls allowed in this turn (default: the spec's, else the core's).
            max_output_tokens: output-token cap per model call (default: the core's).
            temperature: sampling temperature (default: the core's / provider's).
            options: extra provider body fields for this turn.
            turn_id: explicit turn id (default: a fresh unique id). Running a turn whose id
                the session already committed raises ``CommitConflictError``.
            output_schema: ask for a typed result: a JSON Schema (a mapping) or an attrs
                class. The model then ends the turn by calling the kernel's ``final_result``
                tool with arguments matching it (a schema that is not an object schema is
                wrapped as ``{"value": ...}`` for the model and unwrapped again); a violation
                is an error result the model can fix, and a prose answer gets one reminder.
                ``TurnResult.value`` holds the value. Standard mode only: another mode may
                ignore it. Added in 0.2.
        Raises:
            ConfigError: invalid limits (e.g. ``max_turns < 1``); an ``output_schema`` that is
                not a valid JSON Schema or an attrs class ``@tool`` can derive a schema for;
                or a static tool already named ``final_result`` (a tool provider's tool of
                that name stops the turn with ``Stopped(runtime_error)`` when it runs).
        """
        if output_schema is not None:
            final_result_tool(output_schema)  # raises ConfigError for a bad schema
            if FINAL_TOOL in self._services.runtime.tools:
                raise ConfigError(
                    f"output_schema needs the tool name {FINAL_TOOL!r}, which a registered tool already "
                    f"uses (from {self._services.runtime.tools.provider_of(FINAL_TOOL)!r}); rename that tool"
                )
        message = valid_message(Message.user(user_input) if isinstance(user_input, str) else user_input)
        config = self._services.machine_config(
            turn_id=valid_text(turn_id) if turn_id else self._services.runtime.new_id(),
            spec=self.spec,
            max_turns=max_turns,
            max_output_tokens=max_output_tokens,
            temperature=temperature,
            options=options,
            output_schema=output_schema,
        )
        return Turn(self, message, config)

    async def compact(self, instructions: str | None = None) -> bool:
        """Compact the session now, between turns: a compaction plugin (``lash_compact_session``,
        e.g. lash-compaction) summarises the current frame and opens a new one. History is
        never rewritten. Added in 0.2.

        Args:
            instructions: what the summary should focus on, or None.
        Returns:
            True when a new frame was opened, False when there was nothing to compact.
        Raises:
            ConfigError: no loaded plugin compacts sessions.
            LashError: a turn is running on this handle, or the session is closed.
            PluginHookError: the plugin failed (nothing was committed).
        """
        if self._closed:
            raise LashError(f"session {self.id} is closed")
        if self._busy:
            raise LashError(f"session {self.id} has a turn running; compact it between turns")
        hooks = self._services.runtime.hooks
        if not hooks.implemented("lash_compact_session"):
            raise ConfigError("no loaded plugin compacts sessions (install one, e.g. lash-compaction)")
        opened = await hooks.compact_session(
            session_id=self.id, instructions=valid_text(instructions) if instructions else None
        )
        if opened is None:
            raise ConfigError("no loaded plugin compacted the session (every lash_compact_session returned None)")
        return opened

    def run_sync(self, user_input: str | Message, **kwargs: Any) -> TurnResult:
        """Run one turn to completion from synchronous code. See ``turn`` for arguments."""
        return self.turn(user_input, **kwargs).run_sync()

    def turns(self) -> list[TurnRecord]:
        """Committed turns, oldest first."""
        return self._services.store.list_turns(self.id)

    def pending_inputs(self) -> list[PendingInput]:
        """Inputs that were admitted but whose turn never committed (e.g. after a crash)."""
        return self._services.store.pending_inputs(self.id)

    def usage_ledger(self) -> UsageLedger:
        """The session's cumulative usage ledger, per (source, model)."""
        return self._services.store.usage_ledger(self.id)

    def usage_report(self) -> UsageReport:
        """The ledger aggregated by source, by model, and by source x model."""
        return self.usage_ledger().report()

    def close(self) -> None:
        """Fire ``lash_session_closed`` for this handle. Idempotent; the session stays in the store."""
        if self._closed:
            return
        self._closed = True
        services = self._services
        services.log_errors(services.runtime.hooks.session_closed(session_id=self.id))
        services.trace_session("session.closed", self.info, head_revision=self.info.head_revision)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- internals
    def _load(self) -> SessionState:
        """The session head and active path: this core's cached state when it is still the
        store's head, else read from the store once; then kept current."""
        if self._state is None and not self._adopt_cached(None):
            store = self._services.store
            info = store.get_session(self.id)
            history = self._services.current_frame(self.id)
            self._spec = SessionSpec.from_json(info.spec)
            self._state = SessionState(
                info=info, history=history, activity_seq=info.activity_seq, spec=self._spec,
                approx_bytes=message_bytes(history),
            )
            self._info, self._stale, self._fencing = info, False, -1
            self._services.cache.put(self.id, self._state, -1)
            if self._services.runtime.hooks.implemented("lash_restore_state"):
                self._restore_plugin_state()
        assert self._state is not None
        return self._state

    def _adopt_cached(self, lease: Lease | None) -> bool:
        """Take this core's cached state of the session if it is still the store's head: the
        new ``lease`` follows the one it was written under (nobody wrote in between), or one
        read of the head revision says so. Returns True when adopted."""
        services = self._services
        hit = services.cache.get(self.id)
        if hit is None:
            return False
        state, fencing = hit
        if lease is not None and lease.fencing == fencing + 1:
            self._fencing = fencing
        elif services.store.get_session(self.id).head_revision == state.info.head_revision:
            self._fencing = lease.fencing - 1 if lease is not None else fencing  # checked just now
        else:
            services.cache.drop(self.id)
            return False
        self._state, self._spec, self._info, self._stale = state, state.spec, state.info, False
        if services.runtime.hooks.implemented("lash_restore_state"):
            self._restore_plugin_state()
        return True

    def _restore_plugin_state(self) -> None:
        """Hand each plugin its last committed snapshot (undecodable ones are logged and skipped)."""
        runtime = self._services.runtime
        states = {}
        for plugin, text in runtime.store.load_plugin_state(self.id).items():
            try:
                states[plugin] = decode_plugin_record(text, runtime.record_types)
            except RecordDecodeError as exc:
                _log.error("session %s: cannot restore the state of plugin %r: %s", self.id, plugin, exc)
        self._services.log_errors(runtime.hooks.restore_state(session_id=self.id, states=states))

    def _turn_failed(self, error: Exception) -> None:
        """After a failed turn: a lost commit race or lease means the store moved on, so forget
        the in-memory head; the next use reloads it (head, active path, plugin state)."""
        if isinstance(error, (CommitConflictError, LeaseLostError)):
            self._invalidate()

    def _invalidate(self, *, drop_cached: bool = True) -> None:
        """Forget the in-memory head (another commit moved the session on); reloaded on next use
        (and, with ``drop_cached``, not from this core's cache either)."""
        if self._state is not None:
            self._info, self._state = self._state.info, None
        self._stale = True
        if drop_cached:
            self._services.cache.drop(self.id)

    def _enter(self) -> tuple[SessionState, Lease]:
        """Start a turn: claim the session's lease, then make sure the head is current (another
        handle, process or a maintenance commit may have moved it)."""
        if self._closed:
            raise LashError(f"session {self.id} is closed")
        if self._busy:
            raise LashError(f"session {self.id} already has a turn running")
        rt = self._services.runtime
        lease = claim(rt, self.id)
        try:
            if self._state is None:
                self._adopt_cached(lease)
            # Every writer claims the lease first, so when its fencing number follows the one
            # this handle last held, nobody wrote in between and the head needs no re-read.
            moved = self._state is not None and lease.fencing != self._fencing + 1
            state = self._load()
            if moved and rt.store.get_session(self.id).head_revision != state.info.head_revision:
                self._invalidate()
                state = self._load()
        except BaseException:
            release(rt, lease)
            raise
        self._busy, self._fencing = True, lease.fencing
        return state, lease
