"""The driver's state: what a turn needs from its core, the session head, the host's cancel
handle, and the per-turn context every part of the driver reports through.

Rule: data and small helpers only; nothing here performs an effect. ``TurnContext`` is the one
place activities are numbered, recorded and handed to the host (``sink``) and to observers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import anyio
import attrs

from lash_kernel.activity import (
    ActivityEvent,
    AssistantProseDelta,
    ChildUsage,
    ErrorReported,
    ReasoningProseDelta,
    TurnActivity,
    UsageReported,
)
from lash_kernel.directives import OpenFrame
from lash_kernel.errors import ConfigError, PluginHookError
from lash_kernel.messages import Message, repair_history
from lash_kernel.model import ModelClient, ModelRequest, ModelResponse
from lash_kernel.outcomes import Outcome
from lash_kernel.plugin import ModeInfo
from lash_kernel.runtime.hooks import KernelHooks
from lash_kernel.spec import SessionSpec
from lash_kernel.store.base import CommitResult, Lease, SessionInfo, Store
from lash_kernel.text import valid_message
from lash_kernel.tools import ToolRegistry
from lash_kernel.trace import TraceKind, TraceRecord
from lash_kernel.usage import TokenUsage, UsageKey, UsageLedger

__all__ = [
    "CURRENT_TURN",
    "AgentServices",
    "FrameSwitch",
    "RetryPolicy",
    "SessionState",
    "TurnContext",
    "TurnControl",
    "TurnRuntime",
    "message_bytes",
]

_log = logging.getLogger("lash")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how long to wait before retrying a failed model call.

    Retried: errors the provider marks retryable (408/409/429/5xx, connection failures and
    timeouts, malformed or truncated streams, a stream idle past ``stream_idle_timeout_s``).
    Never retried: other 4xx (400, 401, 403, 404, context overflow).

    Attributes:
        max_attempts: total attempts per model call, including the first (1 disables retries).
        base_delay_s: first backoff in seconds; doubles per attempt.
        max_delay_s: cap on the computed backoff, seconds.
        max_retry_after_s: cap on a provider's ``Retry-After``, seconds.
        jitter: random extra fraction of the delay (0.25 adds up to 25%).
    """

    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_retry_after_s: float = 60.0
    jitter: float = 0.25

    def delay_s(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        Args:
            attempt: the attempt that just failed, 1-based.
            retry_after_s: the provider's ``Retry-After`` in seconds, or None.
            rng: randomness for the jitter.
        Returns:
            ``retry_after_s`` capped at ``max_retry_after_s`` when given, else the exponential
            backoff capped at ``max_delay_s``, plus jitter.
        """
        if retry_after_s is not None:
            return min(retry_after_s, self.max_retry_after_s)
        base = min(self.base_delay_s * (2 ** (attempt - 1)), self.max_delay_s)
        return base * (1 + self.jitter * rng.random())


class AgentServices(Protocol):
    """Model calls and child sessions for plugins and tools (``runtime/services.py`` implements
    it; the core puts it in ``TurnRuntime.services``)."""

    async def complete(
        self,
        request: ModelRequest | str,
        *,
        source: str,
        model: str | None = None,
        client: str | None = None,
        session_id: str | None = None,
        turn: TurnContext | None = None,
    ) -> ModelResponse: ...

    def open_child_session(
        self,
        spec: SessionSpec | None,
        *,
        source: str,
        parent_session_id: str,
        parent_turn: TurnContext | None = None,
        call_id: str | None = None,
    ) -> Any: ...

    async def drain(self) -> None:
        """Wait for the core's background work."""
        ...


def _uuid_hex() -> str:
    import uuid

    return uuid.uuid4().hex


@attrs.define(kw_only=True)
class TurnRuntime:
    """What a turn needs from its core. Built by ``LashCore``; tests may build one directly.

    Attributes:
        client: the model provider.
        store: durable storage.
        hooks: the plugin facade.
        tools: the static tool catalog.
        prompt: the host's base system prompt, or None.
        clock: seconds since the epoch (injectable for tests).
        new_id: returns a fresh unique id string (node ids, turn ids).
        retry: model-call retry policy.
        tool_timeout_s: default per-tool timeout in seconds, or None.
        request_timeout_s: deadline for one model call attempt, whole stream included, in
            seconds (None for none). An attempt past its deadline fails as a retryable
            ``ProviderConnectionError``.
        stream_idle_timeout_s: longest wait for the next stream item (the first included), in
            seconds, or None for no limit. A stream that sends nothing for that long fails the
            attempt as a retryable ``ProviderConnectionError`` ("no data for N s"). The check
            is coarse: it fires between N and 1.125 N seconds after the last item. Added in 0.2.
        sleep: awaitable sleep used for backoff (injectable for tests).
        rng: randomness for jitter (injectable for tests).
        catalog: async function returning ``(catalog, failures)`` for a new turn (the static
            tools plus every ``ToolProvider``'s current tools; failures are messages, in
            provider order), or None to use ``tools`` as is.
        modes: execution modes by name (the built-in ``standard`` mode is ``TurnMachine``).
        record_types: plugin record classes by KIND, as ``(plugin, class)``.
        context_window: the model's context window in tokens, or None (for compaction planning).
        clients: the core's other model clients, by name (``SessionSpec.client``,
            ``complete(client=...)``).
        usage_sources: declared usage sources, ``{source: (plugin, description)}``.
        lease_ttl_s: how long a claimed session lease lives without renewal, seconds; a
            running turn renews it every third of that.
        owner: who this process is, for leases (``host:pid``).
        services: model calls and child sessions for tools, or None (tools then cannot use
            them).
    """

    client: ModelClient
    store: Store
    hooks: KernelHooks
    tools: ToolRegistry
    prompt: str | None = None
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = attrs.field(factory=lambda: _uuid_hex)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    tool_timeout_s: float | None = None
    request_timeout_s: float | None = 600.0
    stream_idle_timeout_s: float | None = 60.0
    sleep: Callable[[float], Awaitable[Any]] = anyio.sleep
    rng: random.Random = attrs.field(factory=random.Random)
    catalog: Callable[[], Awaitable[tuple[ToolRegistry, list[str]]]] | None = None
    modes: Mapping[str, ModeInfo] = attrs.field(factory=dict)
    record_types: Mapping[str, tuple[str, type]] = attrs.field(factory=dict)
    context_window: int | None = None
    clients: Mapping[str, ModelClient] = attrs.field(factory=dict)
    usage_sources: Mapping[str, tuple[str, str]] = attrs.field(factory=dict)
    lease_ttl_s: float = 30.0
    owner: str = ""
    services: AgentServices | None = None

    def client_named(self, name: str | None) -> ModelClient:
        """The model client called ``name`` (None: the default one).

        Raises:
            ConfigError: no client has that name.
        """
        if name is None:
            return self.client
        client = self.clients.get(name)
        if client is None:
            known = ", ".join(sorted(self.clients)) or "none"
            raise ConfigError(f"no model client named {name!r} (named clients: {known})")
        return client

    def check_source(self, source: str) -> None:
        """Raise ``ConfigError`` unless ``source`` was declared (``lash_register_usage_sources``)."""
        if source not in self.usage_sources:
            known = ", ".join(sorted(self.usage_sources))
            raise ConfigError(
                f"usage source {source!r} was not declared (declare it in lash_register_usage_sources; "
                f"declared: {known})"
            )


@attrs.define(kw_only=True)
class SessionState:
    """The in-process view of one session's head: what the next turn continues from.

    Loaded once from the store (``SessionInfo`` plus the active path of the current frame, and
    the decoded ``spec``), then kept current by the driver after every commit, so later turns
    in the same process read nothing back.
    ``history`` must be consistent (every tool call answered): build it with ``repair_history``.
    """

    info: SessionInfo
    history: tuple[Message, ...]
    activity_seq: int = 0
    last_input_tokens: int = 0
    spec: SessionSpec = attrs.field(factory=SessionSpec)
    approx_bytes: int = 0

    @property
    def session_id(self) -> str:
        """The session's id."""
        return self.info.session_id

    def next_seq(self) -> int:
        """Reserve and return the next activity ``seq`` (1-based, per session)."""
        self.activity_seq += 1
        return self.activity_seq

    def apply(
        self, result: CommitResult, messages: tuple[Message, ...], now: float, switch: FrameSwitch | None = None
    ) -> None:
        """Advance the head after a successful commit of ``messages`` at ``now`` (epoch seconds).

        With ``switch`` the turn opened a frame: the history becomes its seed and the turn's
        messages after the switch point.
        """
        frame_id = switch.frame_id if switch is not None else self.info.frame_id
        self.info = attrs.evolve(
            self.info, head_revision=result.head_revision, leaf_id=result.leaf_id, updated_at=now, frame_id=frame_id
        )
        if switch is None:
            self.history = self.history + messages
            self.approx_bytes += message_bytes(messages)
        else:
            self.history = switch.seed + messages[switch.at :]
            self.approx_bytes = message_bytes(self.history)

    def apply_maintenance(
        self, result: CommitResult, now: float, frame_id: str | None, seed: tuple[Message, ...]
    ) -> None:
        """Advance the head after a maintenance commit; with ``frame_id`` it opened that frame
        and the history becomes ``seed``."""
        self.info = attrs.evolve(
            self.info, head_revision=result.head_revision, leaf_id=result.leaf_id, updated_at=now,
            frame_id=frame_id or self.info.frame_id,
        )
        if frame_id is not None:
            self.history = seed
            self.approx_bytes = message_bytes(seed)


def message_bytes(messages: tuple[Message, ...]) -> int:
    """A cheap estimate of the memory ``messages`` hold: the characters of their texts, tool
    arguments and tool outputs, plus a fixed 200 per message (the objects around them)."""
    total = 0
    for message in messages:
        total += 200
        for part in message.parts:
            total += len(getattr(part, "text", "") or getattr(part, "arguments", "") or getattr(part, "output", ""))
    return total


@attrs.frozen(kw_only=True)
class FrameSwitch:
    """A frame opened during a turn (by ``lash_compact`` or a checkpoint's ``OpenFrame``).

    Attributes:
        frame_id: the new frame's id.
        reason: its label (``compaction``, ...).
        seed: the messages the new frame starts with.
        at: how many of the turn's messages came before the switch (they stay in the old frame).
    """

    frame_id: str
    reason: str
    seed: tuple[Message, ...]
    at: int


@attrs.define(kw_only=True)
class TurnControl:
    """Per-turn handle shared by the driver and the host: cancellation and the final result.

    Attributes:
        cancel_requested, cancel_reason: set by ``cancel``; the reason becomes the detail of
            ``Stopped(cancelled)``.
        outcome, commit, messages, usage: the committed turn (None / empty until committed).
        children_usage: what else the turn spent (child sessions, plugins' and tools' direct
            completions), per (source, model).
        activities: every activity of the turn, in ``seq`` order.
    """

    cancel_requested: bool = False
    cancel_reason: str = "cancelled by host"
    outcome: Outcome | None = None
    commit: CommitResult | None = None
    messages: tuple[Message, ...] = ()
    usage: Any = None
    children_usage: UsageLedger = attrs.field(factory=UsageLedger)
    activities: list[TurnActivity] = attrs.field(factory=list)
    _scope: anyio.CancelScope | None = None

    def cancel(self, reason: str = "cancelled by host") -> None:
        """Ask the turn to stop. Safe from any task on the event loop, before or during the
        turn; idempotent (the first reason wins)."""
        if not self.cancel_requested:
            self.cancel_requested = True
            self.cancel_reason = reason
        if self._scope is not None:
            self._scope.cancel()

    @contextmanager
    def cancellable(self) -> Iterator[anyio.CancelScope]:
        """A cancel scope that ``cancel`` cancels; already cancelled when cancel was requested.

        The driver performs each effect inside one, so ``cancel`` interrupts exactly the work
        in flight. Never yield from an async generator inside it.
        """
        with anyio.CancelScope() as scope:
            self._scope = scope
            if self.cancel_requested:
                scope.cancel()
            try:
                yield scope
            finally:
                self._scope = None


_HOT = (AssistantProseDelta, ReasoningProseDelta)

CURRENT_TURN: ContextVar[TurnContext | None] = ContextVar("lash_current_turn", default=None)
"""The turn whose task is running (set by the driver for the turn's whole run): plugin and
tool calls of ``complete`` and node appends made from inside it belong to that turn."""


class TurnContext:
    """One turn's view of the runtime: ids, the turn's tool catalog, and where activities go.

    Implements ``lash_kernel.plugin.EffectContext`` (``session_id``, ``turn_id``, ``tools``,
    ``emit``) for the performers of a mode's own effects.

    Args:
        rt: the core's runtime services.
        session: the session head (its activity numbering continues here).
        control: the host's handle; every activity is appended to ``control.activities``.
        turn_id: the turn's id.
        sink: receives each activity as it happens (never blocks; the session's stream).
        lease: the session lease the turn holds (checked by its commit), or None.
        parent: the turn of the parent session this turn runs inside (a child session's turn
            started from a tool of that turn), or None. Its usage reaches the parent as it is
            spent.

    Attributes:
        others: usage spent during the turn other than by its own model calls (child
            sessions, direct completions), ``{UsageKey: (usage, calls)}``; committed with the
            turn.
        plugin_nodes: ``(kind, json_text)`` plugin records appended during the turn.
        frame_switch: the frame the turn opened, or None.
    """

    def __init__(
        self,
        rt: TurnRuntime,
        session: SessionState,
        control: TurnControl,
        turn_id: str,
        sink: Callable[[TurnActivity], object],
        *,
        lease: Lease | None = None,
        parent: TurnContext | None = None,
    ) -> None:
        self.rt = rt
        self.client = rt.client_named(session.spec.client)
        self.hooks = rt.hooks
        self.session = session
        self.control = control
        self.session_id = session.session_id
        self.turn_id = turn_id
        self.tools = rt.tools
        self.lease = lease
        self.parent = parent
        self.others: dict[UsageKey, tuple[TokenUsage, int]] = {}
        self.plugin_nodes: list[tuple[str, str]] = []
        self.frame_switch: FrameSwitch | None = None
        self._others_total = TokenUsage()
        self._sink = sink
        self._hook_errors: list[str] = []
        self.tracing = rt.hooks.implemented("lash_on_trace_record")

    def spent(self, key: UsageKey, usage: TokenUsage, *, child: str | None = None) -> None:
        """Record one model call made on this turn's behalf by someone else, and pass it up.

        Args:
            key: its ledger key (usage source, requested and served model).
            usage: its tokens.
            child: the child session that made it (a ``child_usage`` activity is published),
                or None for a direct completion of this turn.
        """
        prev, calls = self.others.get(key, (TokenUsage(), 0))
        self.others[key] = (prev + usage, calls + 1)
        self._others_total = self._others_total + usage
        if child is not None:
            event = ChildUsage(
                session_id=child, source=key.source, model=key.model, served_model=key.served_model, usage=usage,
                cumulative=self._others_total,
            )
            self.emit(event, child)
        if self.parent is not None:
            self.parent.spent(key, usage, child=child or self.session_id)

    def open_frame(self, frame: OpenFrame, *, at: int) -> None:
        """Open ``frame`` after the turn's first ``at`` messages (at most one frame per turn: a
        second request is logged and ignored)."""
        if self.frame_switch is not None:
            _log.warning(
                "turn %s of session %s already opened a frame; ignoring the request for another (%s)",
                self.turn_id, self.session_id, frame.reason,
            )
            return
        seed = repair_history(valid_message(frame.seed))  # never an unanswered tool call
        frame_id = frame.frame_id or self.rt.new_id()
        self.frame_switch = FrameSwitch(frame_id=frame_id, reason=frame.reason, seed=seed, at=at)

    def others_ledger(self) -> UsageLedger:
        """``others`` as a ledger."""
        return UsageLedger.of((k, u, c) for k, (u, c) in self.others.items())

    def activity(
        self, event: ActivityEvent, correlation_id: str, *, seq: int | None = None, observe: bool = True
    ) -> TurnActivity:
        """Record one activity (numbered ``seq``, or the session's next) and publish it.

        Observers (``lash_on_activity``) see every activity but deltas; a failing observer is
        queued and reported by the next ``emit``. Hot path for deltas: keep it cheap.
        """
        seq = self.session.next_seq() if seq is None else seq
        activity = TurnActivity(id=f"{self.turn_id}:{seq}", correlation_id=correlation_id, seq=seq, event=event)
        self.control.activities.append(activity)
        self._sink(activity)
        if observe and not isinstance(event, _HOT) and self.hooks.has_activity_observers:
            self._hook_errors.extend(str(e) for e in self.hooks.on_activity(activity))
        return activity

    def emit(self, event: ActivityEvent, correlation_id: str) -> None:
        """Publish ``event`` under ``correlation_id``, then report any failed observer as an
        ``error`` activity (observers never break a turn, but their failures are visible).

        A child turn's own model usage is passed up to its parent turn here."""
        self.activity(event, correlation_id)
        if self.parent is not None and isinstance(event, UsageReported):
            key = UsageKey(source=event.source, model=event.model, served_model=event.served_model)
            self.parent.spent(key, event.usage, child=self.session_id)
        while self._hook_errors:
            message = self._hook_errors.pop(0)
            self.activity(ErrorReported(kind="plugin", message=message), self.turn_id, observe=False)
            if self.tracing:
                self.trace("error", self.turn_id, None, kind="plugin", message=message)

    def drop_hook_errors(self) -> None:
        """Log observer failures that can no longer be shown (nothing follows ``turn_finished``)."""
        while self._hook_errors:
            _log.error("%s", self._hook_errors.pop(0))

    def trace(self, kind: TraceKind, span_id: str, parent: str | None, /, **attributes: Any) -> None:
        """Hand one ``TraceRecord`` to tracing plugins (callers check ``self.tracing`` first).

        ``kind``, ``span_id`` and ``parent`` are positional-only, so ``attributes`` may hold
        any name (the ``error`` record has a ``kind`` attribute of its own).
        """
        record = TraceRecord(
            kind=kind,
            time_s=self.rt.clock(),
            session_id=self.session_id,
            turn_id=self.turn_id,
            span_id=span_id,
            parent_span_id=parent,
            attributes=attributes,
        )
        for error in self.hooks.on_trace_record(record):
            _log.error("%s", error)

    def log_errors(self, errors: list[PluginHookError], what: str) -> None:
        """Log hook failures that do not change the turn, naming the turn and session."""
        for error in errors:
            _log.error("%s (%s, turn %s of session %s)", error, what, self.turn_id, self.session_id)
