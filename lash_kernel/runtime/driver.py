"""The async driver: performs the machine's effects, calls hooks, and feeds results back.

Rule: the driver is the only layer that does I/O for a turn (provider HTTP, tool execution,
store commit) and the only caller of hooks (through ``KernelHooks``). Decisions are the
machine's; the driver turns the outside world into events.

Durability: the user input is admitted to the store before the first model call; the turn's
messages, usage and outcome are committed in one store transaction when the machine says
``FinishTurn``. A cancelled turn (by ``TurnControl.cancel``, by cancelling the host task, or by
closing the activity stream early) still commits ``Stopped(cancelled)`` with every tool call
answered, so the session never holds half a turn.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections import deque
from contextlib import aclosing
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
import attrs

from lash_kernel.activity import (
    ActivityEvent,
    AssistantProseDelta,
    ErrorReported,
    ModelAttemptReset,
    ModelRequestStarted,
    ReasoningProseDelta,
    RetryStatus,
    ToolCallProgress,
    TurnActivity,
    TurnFinished,
)
from lash_kernel import serde
from lash_kernel.compaction import apply_compaction
from lash_kernel.directives import AbortTurn, BlockToolCall
from lash_kernel.runtime.effects import CallModel, Checkpoint, Effect, EmitActivity, FinishTurn, RunTools
from lash_kernel.errors import (
    LashError,
    ModelError,
    PluginHookError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderStreamError,
    RecordDecodeError,
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
from lash_kernel.runtime.machine import MachineConfig, TurnMachine, TurnState
from lash_kernel.messages import Message, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Outcome, outcome_json
from lash_kernel.plugin import ModeInfo
from lash_kernel.runtime.hooks import KernelHooks
from lash_kernel.prompt import assemble_prompt
from lash_kernel.model import ModelClient, ModelRequest, ModelResponse, ReasoningDelta, TextDelta
from lash_kernel.store.base import CommitResult, Node, PendingInput, SessionInfo, Store, TurnCommit
from lash_kernel.tools import ToolContext, ToolRegistry, execute_tool_call
from lash_kernel.trace import TraceKind, TraceRecord
from lash_kernel.usage import BUCKETS, TokenUsage

_log = logging.getLogger("lash")

__all__ = [
    "RetryPolicy",
    "SessionState",
    "TurnControl",
    "TurnRuntime",
    "decode_plugin_record",
    "drive_turn",
    "encode_plugin_record",
]


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how long to wait before retrying a failed model call.

    Retried: errors the provider marks retryable (408/409/429/5xx, connection failures and
    timeouts, malformed or truncated streams). Never retried: other 4xx (400, 401, 403, 404,
    context overflow).

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
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after_s is not None:
            return min(retry_after_s, self.max_retry_after_s)
        base = min(self.base_delay_s * (2 ** (attempt - 1)), self.max_delay_s)
        return base * (1 + self.jitter * rng.random())


@attrs.define(kw_only=True)
class TurnRuntime:
    """What a turn needs from its core. Built by ``LashCore``; tests may build one directly.

    Attributes:
        client: the model provider.
        store: durable storage.
        hooks: the plugin facade.
        tools: the tool catalog.
        prompt: the host's base system prompt, or None.
        clock: seconds since the epoch (injectable for tests).
        new_id: returns a fresh unique id string (node ids, turn ids).
        retry: model-call retry policy.
        tool_timeout_s: default per-tool timeout in seconds, or None.
        request_timeout_s: deadline for one model call attempt, whole stream included, in
            seconds (None for none); the per-chunk idle timeout is the provider's read timeout.
            An attempt past its deadline fails as a retryable ``ProviderConnectionError``.
        sleep: awaitable sleep used for backoff (injectable for tests).
        rng: randomness for jitter (injectable for tests).
        catalog: async function returning ``(catalog, failures)`` for a new turn (the static
            tools plus every ``ToolProvider``'s current tools; failures are messages), or None
            to use ``tools`` as is.
        modes: execution modes by name (the built-in ``standard`` mode is ``TurnMachine``).
        record_types: plugin record classes by KIND, as ``(plugin, class)``.
        context_window: the model's context window in tokens, or None (for compaction planning).
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
    sleep: Callable[[float], Awaitable[Any]] = anyio.sleep
    rng: random.Random = attrs.field(factory=random.Random)
    catalog: Callable[[], Awaitable[tuple[ToolRegistry, list[str]]]] | None = None
    modes: Mapping[str, ModeInfo] = attrs.field(factory=dict)
    record_types: Mapping[str, tuple[str, type]] = attrs.field(factory=dict)
    context_window: int | None = None


def _uuid_hex() -> str:
    import uuid

    return uuid.uuid4().hex


@attrs.define(kw_only=True)
class SessionState:
    """The in-process view of one session's head: what the next turn continues from.

    Loaded once from the store (``SessionInfo`` plus the active path), then kept current by the
    driver after every commit, so later turns in the same process read nothing back.
    ``history`` must be consistent (every tool call answered): build it with ``repair_history``.
    """

    info: SessionInfo
    history: tuple[Message, ...]
    activity_seq: int = 0
    last_input_tokens: int = 0

    @property
    def session_id(self) -> str:
        return self.info.session_id

    def next_seq(self) -> int:
        self.activity_seq += 1
        return self.activity_seq

    def apply(self, result: CommitResult, messages: tuple[Message, ...], now: float) -> None:
        """Advance the head after a successful commit."""
        self.info = attrs.evolve(
            self.info, head_revision=result.head_revision, leaf_id=result.leaf_id, updated_at=now
        )
        self.history = self.history + messages


@attrs.define(kw_only=True)
class TurnControl:
    """Per-turn handle shared by the driver and the host: cancellation and the final result."""

    cancel_requested: bool = False
    cancel_reason: str = "cancelled by host"
    outcome: Outcome | None = None
    commit: CommitResult | None = None
    messages: tuple[Message, ...] = ()
    usage: Any = None
    activities: list[TurnActivity] = attrs.field(factory=list)
    _scope: anyio.CancelScope | None = None

    def cancel(self, reason: str = "cancelled by host") -> None:
        """Ask the turn to stop. Safe from any task on the event loop; idempotent."""
        if not self.cancel_requested:
            self.cancel_requested = True
            self.cancel_reason = reason
        if self._scope is not None:
            self._scope.cancel()


_HOT = (AssistantProseDelta, ReasoningProseDelta)


def _usage_json(usage: TokenUsage) -> dict[str, int]:
    return {b: getattr(usage, b) for b in BUCKETS}


class _Turn:
    """One turn in flight. Private: hosts use ``Session.turn(...)``."""

    def __init__(
        self,
        rt: TurnRuntime,
        session: SessionState,
        control: TurnControl,
        *,
        turn_id: str,
        user_input: Message,
        config: MachineConfig,
    ) -> None:
        self.rt = rt
        self.hooks = rt.hooks
        self.session = session
        self.control = control
        self.turn_id = turn_id
        self.user_input = user_input
        self.config = config
        self.tools = rt.tools
        self.machine: Any = None
        self._hook_errors: list[str] = []
        self._tracing = self.hooks.implemented("lash_on_trace_record")
        self._started_perf = time.perf_counter()

    # ---------------------------------------------------------------- activities and traces
    def _activity(
        self, event: ActivityEvent, correlation_id: str, *, seq: int | None = None, observe: bool = True
    ) -> TurnActivity:
        """Record one activity (numbered ``seq``, or the session's next) and show it to observers.

        A failing observer is queued in ``_hook_errors``; ``_emit`` reports those.
        """
        seq = self.session.next_seq() if seq is None else seq
        activity = TurnActivity(id=f"{self.turn_id}:{seq}", correlation_id=correlation_id, seq=seq, event=event)
        self.control.activities.append(activity)
        if observe and not isinstance(event, _HOT) and self.hooks.has_activity_observers:
            self._hook_errors.extend(str(e) for e in self.hooks.on_activity(activity))
        return activity

    def _emit(self, event: ActivityEvent, correlation_id: str) -> list[TurnActivity]:
        out = [self._activity(event, correlation_id)]
        while self._hook_errors:  # observers never break a turn, but their failures are visible
            message = self._hook_errors.pop(0)
            out.append(self._activity(ErrorReported(kind="plugin", message=message), self.turn_id, observe=False))
            if self._tracing:
                self._trace("error", self.turn_id, None, kind="plugin", message=message)
        return out

    def _trace(self, kind: TraceKind, span_id: str, parent: str | None, **attributes: Any) -> None:
        """Hand one ``TraceRecord`` to tracing plugins (callers check ``self._tracing`` first)."""
        record = TraceRecord(
            kind=kind,
            time_s=self.rt.clock(),
            session_id=self.session.session_id,
            turn_id=self.turn_id,
            span_id=span_id,
            parent_span_id=parent,
            attributes=attributes,
        )
        for error in self.hooks.on_trace_record(record):
            _log.error("%s", error)

    def _log_errors(self, errors: list[PluginHookError], what: str) -> None:
        for error in errors:
            _log.error("%s (%s, turn %s of session %s)", error, what, self.turn_id, self.session.session_id)

    # ---------------------------------------------------------------- main loop
    async def run(self) -> AsyncIterator[TurnActivity]:
        rt, session, hooks = self.rt, self.session, self.hooks
        now = rt.clock()
        rt.store.record_input(
            PendingInput(session_id=session.session_id, turn_id=self.turn_id, message=self.user_input, created_at=now)
        )
        if self._tracing:
            self._trace(
                "turn.started", self.turn_id, None,
                model=self.config.model, provider=rt.client.provider_name, max_turns=self.config.max_turns,
            )
        notices: list[ActivityEvent] = []
        abort: str | None = None
        try:
            if rt.catalog is not None:
                self.tools, failures = await rt.catalog()
                notices.extend(ErrorReported(kind="tool_provider", message=m) for m in failures)
            self.config = attrs.evolve(
                self.config, tools=self.tools.specs(), checkpoints=hooks.implemented("lash_checkpoint")
            )
            if hooks.implemented("lash_before_turn"):
                stop = await hooks.before_turn(
                    session_id=session.session_id, turn_id=self.turn_id, user_input=self.user_input
                )
                abort = stop.reason if stop is not None else None
        except PluginHookError as exc:
            abort = str(exc)
        except BaseException:  # cancelled before the machine existed: commit a cancelled turn
            self._start_machine(now)
            self._commit_cancelled("the host task was cancelled")
            raise
        queue: deque[Effect] = deque(self._start_machine(now))
        for notice in notices:
            queue.appendleft(EmitActivity(event=notice, correlation_id=self.turn_id))
        if abort is None:
            try:
                names = frozenset(self.tools.names())
                system = assemble_prompt(
                    rt.prompt, hooks.prompt_contributions(session_id=session.session_id, tool_names=names), names
                )
                queue = deque(self._with_system(queue, system))
                if self._tracing:
                    digest = hashlib.sha256(system.encode()).hexdigest() if system else ""
                    self._trace(
                        "prompt.built", self.turn_id, None,
                        sha256=digest, chars=len(system or ""), tool_count=len(names),
                    )
            except PluginHookError as exc:
                abort = str(exc)
        if abort is not None:
            queue = deque(self.machine.feed(TurnFailed(reason="plugin_abort", message=abort)))
        try:
            while queue:
                effect = queue.popleft()
                if isinstance(effect, EmitActivity):
                    for activity in self._emit(effect.event, effect.correlation_id):
                        yield activity
                elif isinstance(effect, FinishTurn):
                    for activity in await self._finish(effect):
                        yield activity
                    return
                else:
                    effects: list[Effect] = []
                    async with aclosing(self._perform(effect, effects)) as performing:
                        async for item in performing:
                            yield item
                    queue.extend(effects)
        except (anyio.get_cancelled_exc_class(), GeneratorExit):
            # The host cancelled the task or closed the stream: commit what happened, synchronously.
            self._commit_cancelled("the host task was cancelled")
            raise

    def _start_machine(self, now: float) -> list[Effect]:
        mode = self.session.info.mode
        factory = self.rt.modes[mode].factory if mode in self.rt.modes else None
        if factory is None:
            raise LashError(f"session {self.session.session_id} uses mode {mode!r}, which no loaded plugin provides")
        self.machine = factory(self.config, self.session.history)
        return self.machine.start(self.user_input, now=now)

    def _commit_cancelled(self, reason: str) -> None:
        if self.machine is not None and self.machine.state in _LIVE:
            for effect in self.machine.feed(CancelRequested(reason=reason)):
                if isinstance(effect, FinishTurn):
                    self._commit(effect)

    def _with_system(self, effects: deque[Effect], system: str | None) -> list[Effect]:
        """Put the assembled system prompt on the first request (the machine reuses its config after)."""
        if system == self.config.system:
            return list(effects)
        self.config = attrs.evolve(self.config, system=system)
        self.machine.config = self.config
        return [
            CallModel(request=attrs.evolve(e.request, system=system)) if isinstance(e, CallModel) else e
            for e in effects
        ]

    async def _perform(self, effect: Effect, effects: list[Effect]) -> AsyncIterator[TurnActivity]:
        """Perform a CallModel, RunTools or Checkpoint effect, feeding events; new effects go to ``effects``."""
        control = self.control
        with anyio.CancelScope() as scope:
            control._scope = scope
            if control.cancel_requested:
                scope.cancel()
            try:
                if isinstance(effect, Checkpoint):
                    for activity in self._feed(await self._checkpoint(effect), effects):
                        yield activity
                else:
                    if isinstance(effect, CallModel):
                        work = self._call_model(effect.request, effects)
                    else:
                        assert isinstance(effect, RunTools)
                        work = self._run_tools(effect.calls, effects)
                    async with aclosing(work):
                        async for item in work:
                            yield item
            except LashError as exc:  # a bug in a provider adapter or store: stop cleanly
                effects.extend(self.machine.feed(TurnFailed(reason="runtime_error", message=str(exc))))
        control._scope = None
        if scope.cancelled_caught or (control.cancel_requested and self.machine.state is not TurnState.DONE):
            effects.clear()
            effects.extend(self.machine.feed(CancelRequested(reason=control.cancel_reason)))

    def _feed(self, event: Event, effects: list[Effect]) -> list[TurnActivity]:
        out: list[TurnActivity] = []
        for effect in self.machine.feed(event):
            if isinstance(effect, EmitActivity):
                out.extend(self._emit(effect.event, effect.correlation_id))
            else:
                effects.append(effect)
        return out

    async def _checkpoint(self, effect: Checkpoint) -> CheckpointResolved:
        try:
            directive = await self.hooks.checkpoint(
                session_id=self.session.session_id, turn_id=self.turn_id, phase=effect.phase, messages=effect.messages
            )
        except PluginHookError as exc:
            directive = AbortTurn(reason=str(exc))
        return CheckpointResolved(directive=directive)

    # ---------------------------------------------------------------- model calls
    def _prompt_view(self, request: ModelRequest) -> ModelRequest:
        """Apply ``lash_plan_compaction`` and ``lash_transform_context`` to one request."""
        hooks, sid = self.hooks, self.session.session_id
        messages = request.messages
        if hooks.implemented("lash_plan_compaction"):
            plan = hooks.plan_compaction(
                session_id=sid,
                messages=messages,
                context_window=self.rt.context_window,
                input_tokens=self.session.last_input_tokens,
            )
            if plan is not None:
                messages = apply_compaction(messages, plan)
        if hooks.implemented("lash_transform_context"):
            messages = hooks.transform_context(session_id=sid, turn_id=self.turn_id, messages=messages)
        return request if messages is request.messages else attrs.evolve(request, messages=messages)

    def _model_attrs(self, request: ModelRequest, attempt: int) -> dict[str, Any]:
        return {
            "request_id": request.request_id,
            "attempt": attempt,
            "model": request.model,
            "provider": self.rt.client.provider_name,
            "message_count": len(request.messages),
            "tool_count": len(request.tools),
            "max_output_tokens": request.max_output_tokens,
            "temperature": request.temperature,
        }

    async def _call_model(self, request: ModelRequest, effects: list[Effect]) -> AsyncIterator[TurnActivity]:
        rt, policy = self.rt, self.rt.retry
        rid = request.request_id
        try:
            request = self._prompt_view(request)
        except PluginHookError as exc:
            for activity in self._feed(TurnFailed(reason="plugin_abort", message=str(exc)), effects):
                yield activity
            return
        attempt = 1
        while True:
            streamed = False
            response: ModelResponse | None = None
            exc: ModelError | None = None
            span = f"{rid}#{attempt}"
            if self._tracing:
                self._trace("model_call.started", span, self.turn_id, **self._model_attrs(request, attempt))
            started = time.perf_counter()
            try:
                with anyio.fail_after(rt.request_timeout_s):
                    async with aclosing(rt.client.stream(request)) as items:  # type: ignore[type-var]
                        async for item in items:
                            if isinstance(item, TextDelta):
                                streamed = True
                                yield self._activity(AssistantProseDelta(text=item.text), rid)
                            elif isinstance(item, ReasoningDelta):
                                streamed = True
                                yield self._activity(ReasoningProseDelta(text=item.text), rid)
                            elif isinstance(item, ModelResponse):
                                response = item
                if response is None:
                    raise ProviderStreamError(
                        "provider stream ended without a final response", provider=rt.client.provider_name
                    )
            except TimeoutError:
                exc = ProviderConnectionError(
                    f"{rt.client.provider_name}: no complete response within {rt.request_timeout_s} s",
                    provider=rt.client.provider_name,
                )
            except ModelError as error:
                exc = error
            except BaseException:
                if self._tracing:
                    self._trace(
                        "model_call.failed", span, self.turn_id, **self._model_attrs(request, attempt),
                        duration_s=time.perf_counter() - started, error="cancelled", error_type="cancelled",
                        status=None, retryable=False,
                    )
                raise
            duration_s = time.perf_counter() - started
            if exc is not None:
                if self._tracing:
                    self._trace(
                        "model_call.failed", span, self.turn_id, **self._model_attrs(request, attempt),
                        duration_s=duration_s, error=str(exc), error_type=type(exc).__name__,
                        status=exc.status if isinstance(exc, ProviderHTTPError) else None, retryable=exc.retryable,
                    )
                if streamed:  # nothing of this attempt will be committed: retract its deltas
                    yield self._activity(ModelAttemptReset(request_id=rid, attempt=attempt, reason=str(exc)), rid)
                if not exc.retryable or attempt >= policy.max_attempts:
                    for activity in self._emit(ErrorReported(kind="provider", message=str(exc)), rid):
                        yield activity
                    status = exc.status if isinstance(exc, ProviderHTTPError) else None
                    for activity in self._feed(ModelFailed(request_id=rid, message=str(exc), status=status), effects):
                        yield activity
                    return
                retry_after = exc.retry_after_s if isinstance(exc, ProviderHTTPError) else None
                wait_s = policy.delay_s(attempt, retry_after, rt.rng)
                for activity in self._emit(
                    RetryStatus(
                        request_id=rid, attempt=attempt, max_attempts=policy.max_attempts, wait_s=wait_s, reason=str(exc)
                    ),
                    rid,
                ):
                    yield activity
                await rt.sleep(wait_s)
                attempt += 1
                for activity in self._emit(ModelRequestStarted(request_id=rid, model=request.model, attempt=attempt), rid):
                    yield activity
                continue
            assert response is not None
            self.session.last_input_tokens = response.usage.input_tokens
            if self._tracing:
                self._trace(
                    "model_call.completed", span, self.turn_id, **self._model_attrs(request, attempt),
                    duration_s=duration_s, finish_reason=response.finish_reason, response_model=response.model,
                    response_id=response.response_id, usage=_usage_json(response.usage),
                )
            for activity in self._feed(ModelResponded(request_id=rid, response=response), effects):
                yield activity
            return

    # ---------------------------------------------------------------- tools
    async def _run_tools(self, calls: tuple[ToolCallPart, ...], effects: list[Effect]) -> AsyncIterator[TurnActivity]:
        # Calls run concurrently; results are fed in completion order and the machine puts
        # them back in call order. Progress activities travel on the same stream.
        send, receive = anyio.create_memory_object_stream[ToolCallFinished | TurnActivity](math.inf)
        async with anyio.create_task_group() as tg:
            for call in calls:
                tg.start_soon(self._run_one_tool, call, send.clone())
            send.close()
            async with receive:
                async for item in receive:
                    if isinstance(item, TurnActivity):
                        yield item
                        continue
                    for activity in self._feed(item, effects):
                        yield activity

    async def _run_one_tool(
        self, call: ToolCallPart, send: anyio.abc.ObjectSendStream[ToolCallFinished | TurnActivity]
    ) -> None:
        rt, hooks, sid = self.rt, self.hooks, self.session.session_id
        span = f"{self.turn_id}:t:{call.id}"

        def progress(done: float, total: float | None, message: str | None) -> None:
            event = ToolCallProgress(call_id=call.id, name=call.name, progress=done, total=total, message=message)
            for activity in self._emit(event, call.id):
                send.send_nowait(activity)

        ctx = ToolContext(
            session_id=sid, turn_id=self.turn_id, call_id=call.id, tool_name=call.name, on_progress=progress
        )
        async with send:
            if self._tracing:
                self._trace("tool_call.started", span, self.turn_id, tool=call.name, call_id=call.id, arguments=call.arguments)
            started = time.perf_counter()
            result = await self._tool_result(call, ctx)
            duration_s = time.perf_counter() - started
            if hooks.implemented("lash_after_tool_call"):
                try:
                    result = await hooks.after_tool_call(
                        session_id=sid, turn_id=self.turn_id, call=call, result=result, duration_s=duration_s
                    )
                except PluginHookError as exc:
                    result = ToolResultPart(call_id=call.id, name=call.name, output=str(exc), is_error=True)
            if self._tracing:
                self._trace(
                    "tool_call.completed", span, self.turn_id, tool=call.name, call_id=call.id,
                    duration_s=duration_s, is_error=result.is_error, output=result.output,
                )
            await send.send(ToolCallFinished(result=result, duration_s=duration_s))

    async def _tool_result(self, call: ToolCallPart, ctx: ToolContext) -> ToolResultPart:
        """Run ``lash_before_tool_call``, then the tool (a blocked or failed hook is an error result)."""
        run = call
        if self.hooks.implemented("lash_before_tool_call"):
            try:
                decision = await self.hooks.before_tool_call(
                    session_id=self.session.session_id, turn_id=self.turn_id, call=call
                )
            except PluginHookError as exc:
                return ToolResultPart(call_id=call.id, name=call.name, output=str(exc), is_error=True)
            if isinstance(decision, BlockToolCall):
                return ToolResultPart(call_id=call.id, name=call.name, output=decision.reason, is_error=True)
            run = decision
        result = await execute_tool_call(
            self.tools.get(run.name), run, ctx, default_timeout_s=self.rt.tool_timeout_s, available=self.tools.names()
        )
        return result if run.name == call.name else attrs.evolve(result, name=call.name)

    # ---------------------------------------------------------------- commit
    def _plugin_state(self) -> tuple[tuple[str, str], ...]:
        """Collect ``lash_snapshot_state`` and encode each record (bad ones are logged and dropped)."""
        if not self.hooks.implemented("lash_snapshot_state"):
            return ()
        snapshots, errors = self.hooks.snapshot_state(session_id=self.session.session_id, turn_id=self.turn_id)
        self._log_errors(errors, "state snapshot")
        out = []
        for plugin, record in snapshots:
            try:
                out.append((plugin, encode_plugin_record(record, self.rt.record_types)))
            except LashError as exc:
                _log.error("plugin %r: %s (its state was not committed)", plugin, exc)
        return tuple(out)

    def _commit(self, effect: FinishTurn) -> CommitResult:
        rt, session = self.rt, self.session
        self._log_errors(
            self.hooks.after_turn(
                session_id=session.session_id,
                turn_id=self.turn_id,
                outcome=effect.outcome,
                messages=effect.messages,
                usage=effect.usage,
            ),
            "after turn",
        )
        now = rt.clock()
        nodes: list[Node] = []
        parent = session.info.leaf_id
        for message in effect.messages:
            node = Node(
                node_id=rt.new_id(),
                parent_id=parent,
                frame_id=session.info.frame_id,
                turn_id=self.turn_id,
                kind="message",
                payload=message,
                created_at=now,
            )
            nodes.append(node)
            parent = node.node_id
        commit = TurnCommit(
            session_id=session.session_id,
            turn_id=self.turn_id,
            expected_head_revision=session.info.head_revision,
            nodes=tuple(nodes),
            usage=effect.usage,
            outcome=effect.outcome,
            committed_at=now,
            last_activity_seq=session.activity_seq,
            plugin_state=self._plugin_state(),
        )
        result = rt.store.commit_turn(commit)
        session.apply(result, effect.messages, now)
        control = self.control
        control.outcome, control.commit = effect.outcome, result
        control.messages, control.usage = effect.messages, effect.usage
        if self._tracing:
            for key, usage, _calls in effect.usage.entries:
                self._trace("usage", self.turn_id, None, source=key.source, model=key.model, usage=_usage_json(usage))
            self._trace(
                "turn.finished", self.turn_id, None,
                outcome=outcome_json(effect.outcome), duration_s=time.perf_counter() - self._started_perf,
                head_revision=result.head_revision, usage=_usage_json(effect.usage.total()),
            )
        return result

    async def _finish(self, effect: FinishTurn) -> list[TurnActivity]:
        """Commit, tell plugins, and return the closing ``turn_finished`` activity.

        The closing activity's ``seq`` is reserved before the commit so the committed
        ``last_activity_seq`` covers it; a failing ``lash_turn_committed`` is logged (the commit
        stands and nothing may follow ``turn_finished``).
        """
        seq = self.session.next_seq()
        result = self._commit(effect)
        if self.hooks.implemented("lash_turn_committed"):
            errors = await self.hooks.turn_committed(
                session_id=self.session.session_id,
                turn_id=self.turn_id,
                outcome=effect.outcome,
                head_revision=result.head_revision,
            )
            self._log_errors(errors, "the commit stands")
        event = TurnFinished(outcome=effect.outcome, head_revision=result.head_revision)
        activity = self._activity(event, self.turn_id, seq=seq)
        while self._hook_errors:  # nothing may follow turn_finished: log instead
            _log.error("%s", self._hook_errors.pop(0))
        return [activity]


_LIVE = frozenset({TurnState.AWAITING_MODEL, TurnState.RUNNING_TOOLS, TurnState.CHECKPOINT})


def encode_plugin_record(record: object, record_types: Mapping[str, tuple[str, type]]) -> str:
    """Serialise a plugin's state record as ``{"kind": KIND, "data": {...}}`` JSON text.

    Raises:
        LashError: the record's type was not registered with ``lash_register_record_types``.
    """
    kind = getattr(type(record), "KIND", None)
    if not isinstance(kind, str) or record_types.get(kind, (None, None))[1] is not type(record):
        raise LashError(f"{type(record).__name__} is not a registered record type (lash_register_record_types)")
    return serde.dumps({"kind": kind, "data": serde.unstructure(record, type(record))})


def decode_plugin_record(text: str, record_types: Mapping[str, tuple[str, type]]) -> object:
    """Inverse of ``encode_plugin_record``.

    Raises:
        RecordDecodeError: bad JSON, an unknown kind, or data that does not fit the class.
    """
    raw = serde.loads(text, dict)
    entry = record_types.get(raw.get("kind"))
    if entry is None:
        raise RecordDecodeError(f"no registered record type for kind {raw.get('kind')!r}")
    return serde.structure(raw.get("data", {}), entry[1])


def drive_turn(
    rt: TurnRuntime,
    session: SessionState,
    control: TurnControl,
    *,
    turn_id: str,
    user_input: Message,
    config: MachineConfig,
) -> AsyncIterator[TurnActivity]:
    """Run one turn and stream its activities.

    Args:
        rt: the core's runtime pieces.
        session: the session head to continue from; updated in place after the commit.
        control: cancellation handle; receives the outcome, commit result, messages and usage.
        turn_id: unique id for the turn.
        user_input: the user's message.
        config: machine parameters (model, tools, limits).
    Returns:
        An async iterator of ``TurnActivity``; the turn is committed before the final
        ``turn_finished`` activity. Iterate it to the end (or close it with ``aclose``, which
        commits ``Stopped(cancelled)``).
    Raises:
        CommitConflictError: another writer committed to the session meanwhile; nothing of this
            turn was committed and its input stays pending.
        StoreError: the store failed; the input stays pending.
    """
    return _Turn(rt, session, control, turn_id=turn_id, user_input=user_input, config=config).run()
