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

import logging
import random
import time
from collections import deque
from contextlib import aclosing
from collections.abc import AsyncIterator, Awaitable, Callable
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
    TurnActivity,
    TurnFinished,
)
from lash_kernel.effects import CallModel, Effect, EmitActivity, FinishTurn, RunTools
from lash_kernel.errors import (
    LashError,
    ModelError,
    PluginHookError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderStreamError,
)
from lash_kernel.events import CancelRequested, Event, ModelFailed, ModelResponded, ToolCallFinished, TurnFailed
from lash_kernel.machine import MachineConfig, TurnMachine, TurnState
from lash_kernel.messages import Message, ToolCallPart
from lash_kernel.outcomes import Outcome
from lash_kernel.plugins import KernelHooks
from lash_kernel.prompt import assemble_prompt
from lash_kernel.providers.base import ModelClient, ModelRequest, ModelResponse, ReasoningDelta, TextDelta
from lash_kernel.store.base import CommitResult, Node, PendingInput, SessionInfo, Store, TurnCommit
from lash_kernel.tools import ToolContext, ToolRegistry, execute_tool_call

_log = logging.getLogger("lash")

__all__ = ["RetryPolicy", "SessionState", "TurnControl", "TurnRuntime", "drive_turn"]


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
        self.session = session
        self.control = control
        self.turn_id = turn_id
        self.user_input = user_input
        self.config = config
        self.machine = TurnMachine(config=config, history=session.history, repair=False)
        self._hook_errors: list[str] = []

    # ---------------------------------------------------------------- activities
    def _activity(
        self, event: ActivityEvent, correlation_id: str, *, seq: int | None = None, observe: bool = True
    ) -> TurnActivity:
        """Record one activity (numbered ``seq``, or the session's next) and show it to observers.

        A failing observer is queued in ``_hook_errors``; ``_emit`` reports those.
        """
        seq = self.session.next_seq() if seq is None else seq
        activity = TurnActivity(id=f"{self.turn_id}:{seq}", correlation_id=correlation_id, seq=seq, event=event)
        self.control.activities.append(activity)
        if observe and not isinstance(event, _HOT) and self.rt.hooks.has_activity_observers:
            try:
                self.rt.hooks.on_activity(activity)
            except PluginHookError as exc:
                self._hook_errors.append(str(exc))
        return activity

    def _emit(self, event: ActivityEvent, correlation_id: str) -> list[TurnActivity]:
        out = [self._activity(event, correlation_id)]
        while self._hook_errors:  # observers never break a turn, but their failures are visible
            message = self._hook_errors.pop(0)
            out.append(self._activity(ErrorReported(kind="plugin", message=message), self.turn_id, observe=False))
        return out

    # ---------------------------------------------------------------- main loop
    async def run(self) -> AsyncIterator[TurnActivity]:
        rt, session = self.rt, self.session
        now = rt.clock()
        rt.store.record_input(
            PendingInput(session_id=session.session_id, turn_id=self.turn_id, message=self.user_input, created_at=now)
        )
        queue: deque[Effect] = deque(self.machine.start(self.user_input, now=now))
        try:
            system = assemble_prompt(
                rt.prompt,
                rt.hooks.prompt_contributions(session_id=session.session_id, tool_names=frozenset(rt.tools.names())),
                frozenset(rt.tools.names()),
            )
            queue = deque(self._with_system(queue, system))
        except PluginHookError as exc:
            queue = deque(self.machine.feed(TurnFailed(reason="plugin_abort", message=str(exc))))
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
            if self.machine.state in (TurnState.AWAITING_MODEL, TurnState.RUNNING_TOOLS):
                for effect in self.machine.feed(CancelRequested(reason="the host task was cancelled")):
                    if isinstance(effect, FinishTurn):
                        self._commit(effect)
            raise

    def _with_system(self, effects: deque[Effect], system: str | None) -> list[Effect]:
        """Put the assembled system prompt on the first request (the machine reuses its config after)."""
        if system == self.config.system:
            return list(effects)
        self.machine.config = attrs.evolve(self.config, system=system)
        return [
            CallModel(request=attrs.evolve(e.request, system=system)) if isinstance(e, CallModel) else e
            for e in effects
        ]

    async def _perform(self, effect: Effect, effects: list[Effect]) -> AsyncIterator[TurnActivity]:
        """Perform a CallModel or RunTools effect, feeding events; new effects go to ``effects``."""
        control = self.control
        with anyio.CancelScope() as scope:
            control._scope = scope
            if control.cancel_requested:
                scope.cancel()
            try:
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

    # ---------------------------------------------------------------- model calls
    async def _call_model(self, request: ModelRequest, effects: list[Effect]) -> AsyncIterator[TurnActivity]:
        rt, policy = self.rt, self.rt.retry
        rid = request.request_id
        attempt = 1
        while True:
            streamed = False
            response: ModelResponse | None = None
            exc: ModelError | None = None
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
            if exc is not None:
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
            for activity in self._feed(ModelResponded(request_id=rid, response=response), effects):
                yield activity
            return

    # ---------------------------------------------------------------- tools
    async def _run_tools(self, calls: tuple[ToolCallPart, ...], effects: list[Effect]) -> AsyncIterator[TurnActivity]:
        # Calls run concurrently; results are fed in completion order and the machine puts
        # them back in call order.
        send, receive = anyio.create_memory_object_stream[ToolCallFinished](len(calls))
        async with anyio.create_task_group() as tg:
            for call in calls:
                tg.start_soon(self._run_one_tool, call, send.clone())
            send.close()
            async with receive:
                async for event in receive:
                    for activity in self._feed(event, effects):
                        yield activity

    async def _run_one_tool(self, call: ToolCallPart, send: anyio.abc.ObjectSendStream[ToolCallFinished]) -> None:
        rt = self.rt
        ctx = ToolContext(
            session_id=self.session.session_id, turn_id=self.turn_id, call_id=call.id, tool_name=call.name
        )
        async with send:
            started = time.perf_counter()
            result = await execute_tool_call(
                rt.tools.get(call.name), call, ctx, default_timeout_s=rt.tool_timeout_s, available=rt.tools.names()
            )
            await send.send(ToolCallFinished(result=result, duration_s=time.perf_counter() - started))

    # ---------------------------------------------------------------- commit
    def _commit(self, effect: FinishTurn) -> CommitResult:
        rt, session = self.rt, self.session
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
        )
        result = rt.store.commit_turn(commit)
        session.apply(result, effect.messages, now)
        control = self.control
        control.outcome, control.commit = effect.outcome, result
        control.messages, control.usage = effect.messages, effect.usage
        return result

    async def _finish(self, effect: FinishTurn) -> list[TurnActivity]:
        """Commit, tell plugins, and return the closing ``turn_finished`` activity.

        The closing activity's ``seq`` is reserved before the commit so the committed
        ``last_activity_seq`` covers it; a failing ``lash_turn_committed`` is logged (the commit
        stands and nothing may follow ``turn_finished``).
        """
        seq = self.session.next_seq()
        result = self._commit(effect)
        try:
            await self.rt.hooks.turn_committed(
                session_id=self.session.session_id,
                turn_id=self.turn_id,
                outcome=effect.outcome,
                head_revision=result.head_revision,
            )
        except PluginHookError as exc:
            _log.error("%s (turn %s of session %s is committed)", exc, self.turn_id, self.session.session_id)
        event = TurnFinished(outcome=effect.outcome, head_revision=result.head_revision)
        activity = self._activity(event, self.turn_id, seq=seq)
        while self._hook_errors:  # nothing may follow turn_finished: log instead
            _log.error("%s", self._hook_errors.pop(0))
        return [activity]


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
