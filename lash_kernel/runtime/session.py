"""Sessions and turns: the host-facing handles.

``Session.turn(input)`` returns a ``Turn``; ``await turn.run()`` gives a ``TurnResult``, and
``turn.stream()`` yields ``TurnActivity`` objects live. A session is a cheap handle: opening one
reads only its head; the active path is loaded at the first turn and then kept in memory.

Rule: a ``Session`` knows its core only through ``SessionServices`` (the turn runtime and the
turn defaults), built once by ``LashCore``; it never touches the core's private members.
Every exception a turn documents reaches the host bare (never wrapped in an ExceptionGroup).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import anyio
import attrs

from lash_kernel.activity import TurnActivity
from lash_kernel.errors import CommitConflictError, ConfigError, LashError, PluginHookError, RecordDecodeError
from lash_kernel.messages import Message, ToolCallPart, ToolResultPart, assistant_text, repair_history
from lash_kernel.outcomes import Outcome
from lash_kernel.runtime.driver import SessionState, TurnControl, TurnRuntime, run_turn
from lash_kernel.runtime.machine import MachineConfig
from lash_kernel.serde import decode_plugin_record
from lash_kernel.store.base import PendingInput, SessionInfo, Store, TurnRecord
from lash_kernel.text import valid_message, valid_text
from lash_kernel.trace import TraceKind, TraceRecord
from lash_kernel.usage import TokenUsage, UsageLedger, UsageReport

__all__ = ["Session", "SessionServices", "Turn", "TurnResult"]

_log = logging.getLogger("lash")


@attrs.frozen(kw_only=True)
class SessionServices:
    """What a ``Session`` needs from its core. Built once by ``LashCore``, shared by its sessions.

    Attributes:
        runtime: the turn runtime (model client, store, hooks, tools, clock, ids, modes, ...).
        model: model id for every turn.
        max_turns: default model calls allowed per turn (>= 1).
        max_output_tokens: default output-token cap per model call, or None.
        temperature: default sampling temperature, or None.
    """

    runtime: TurnRuntime
    model: str
    max_turns: int = 16
    max_output_tokens: int | None = None
    temperature: float | None = None

    @property
    def store(self) -> Store:
        """The core's store."""
        return self.runtime.store

    def machine_config(
        self,
        *,
        turn_id: str,
        max_turns: int | None = None,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> MachineConfig:
        """One turn's parameters: the given values, else the defaults (system prompt and tools
        are settled by the driver).

        Raises:
            ConfigError: an invalid limit (e.g. ``max_turns < 1``).
        """
        try:
            return MachineConfig(
                turn_id=turn_id,
                model=self.model,
                max_turns=max_turns or self.max_turns,
                max_output_tokens=max_output_tokens or self.max_output_tokens,
                temperature=temperature if temperature is not None else self.temperature,
                options=dict(options or {}),
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

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
        children_usage: usage spent by child sessions, per (source, model).
        head_revision: the session's revision after the commit.
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

    def total_usage(self) -> TokenUsage:
        """Own usage plus every child's usage."""
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
        state = session._enter()
        # The turn runs in its own task and hands activities over a memory stream, so its
        # cancel scopes (turn.cancel(), the request deadline) never reach the consumer's code.
        send, receive = anyio.create_memory_object_stream[TurnActivity](math.inf)
        failures: list[Exception] = []

        async def produce() -> None:
            with send:
                try:
                    await run_turn(
                        session._services.runtime, state, self.control, turn_id=self.turn_id,
                        user_input=self.user_input, config=self.config, sink=send.send_nowait,
                    )
                except Exception as exc:  # re-raised bare below, never inside an ExceptionGroup
                    failures.append(exc)

        try:
            async with anyio.create_task_group() as tg, receive:
                tg.start_soon(produce)
                try:
                    async for activity in receive:
                        yield activity
                except GeneratorExit:  # the consumer closed the stream: stop (and commit) the turn
                    tg.cancel_scope.cancel()
        finally:
            session._busy = False
        if failures:
            session._turn_failed(failures[0])
            raise failures[0]

    async def run(self) -> TurnResult:
        """Run the turn to its end and return the ``TurnResult``. Raises as ``stream()``."""
        async for _ in self.stream():
            pass
        return self.result

    def run_sync(self) -> TurnResult:
        """``run()`` for scripts: starts an event loop (do not call from async code)."""
        return anyio.run(self.run)

    @property
    def result(self) -> TurnResult:
        """The committed result. Raises ``LashError`` if the turn has not been committed."""
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
                children_usage={},
                head_revision=c.commit.head_revision,
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

    def __init__(self, services: SessionServices, info: SessionInfo) -> None:
        self._services = services
        self.id = info.session_id
        self._info = info
        self._stale = False  # the head in _info is out of date (a turn lost a commit race)
        self._state: SessionState | None = None
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

    def history(self) -> tuple[Message, ...]:
        """Committed messages on the active path, oldest first (loads them on first use)."""
        return self._load().history

    def turn(
        self,
        user_input: str | Message,
        *,
        max_turns: int | None = None,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
        options: Mapping[str, Any] | None = None,
        turn_id: str | None = None,
    ) -> Turn:
        """Prepare a turn (nothing runs until ``run``/``stream``).

        Text is made valid Unicode here (``lash_kernel.text``): a lone surrogate, e.g. from an
        undecodable byte in ``sys.argv``, becomes U+FFFD.

        Args:
            user_input: the user's text, or a ``Message`` with role ``user`` (another role is
                committed as ``Stopped(invalid_input)`` when the turn runs, calling no model).
            max_turns: model calls allowed in this turn (default: the core's).
            max_output_tokens: output-token cap per model call (default: the core's).
            temperature: sampling temperature (default: the core's / provider's).
            options: extra provider body fields for this turn.
            turn_id: explicit turn id (default: a fresh unique id). Running a turn whose id
                the session already committed raises ``CommitConflictError``.
        Raises:
            ConfigError: invalid limits (e.g. ``max_turns < 1``).
        """
        message = valid_message(Message.user(user_input) if isinstance(user_input, str) else user_input)
        config = self._services.machine_config(
            turn_id=valid_text(turn_id) if turn_id else self._services.runtime.new_id(),
            max_turns=max_turns,
            max_output_tokens=max_output_tokens,
            temperature=temperature,
            options=options,
        )
        return Turn(self, message, config)

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
        """The session head and active path: read from the store once, then kept current."""
        if self._state is None:
            store = self._services.store
            info = store.get_session(self.id)
            nodes = store.load_active_path(self.id)
            history = repair_history(tuple(n.message for n in nodes if n.kind == "message"))
            self._state = SessionState(info=info, history=history, activity_seq=info.activity_seq)
            self._info, self._stale = info, False
            if self._services.runtime.hooks.implemented("lash_restore_state"):
                self._restore_plugin_state()
        return self._state

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
        """After a failed turn: a lost commit race means the store moved on, so forget the
        in-memory head; the next use reloads it (head, active path, plugin state)."""
        if isinstance(error, CommitConflictError) and self._state is not None:
            self._info, self._state, self._stale = self._state.info, None, True

    def _enter(self) -> SessionState:
        if self._closed:
            raise LashError(f"session {self.id} is closed")
        if self._busy:
            raise LashError(f"session {self.id} already has a turn running")
        state = self._load()
        self._busy = True
        return state
