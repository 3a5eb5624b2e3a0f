"""The async driver: performs the machine's effects, calls hooks, and feeds results back.

Rule: the driver is the only layer that does I/O for a turn (provider HTTP, tool execution,
store commit) and the only caller of hooks (through ``KernelHooks``). Decisions are the
machine's; the driver turns the outside world into events, and never writes into the machine:
it calls ``start`` and ``feed`` only.

Split by role:

- ``_state``: ``TurnRuntime`` (what a turn needs from its core), ``SessionState``,
  ``TurnControl`` (cancel), ``TurnContext`` (activities and traces);
- ``_prepare``: admission, then the catalog, ``lash_before_turn`` and the system prompt,
  settled in the ``MachineConfig`` before the machine exists;
- ``_model_call``: one streamed attempt, and the retry loop around it;
- ``_tool_batch``: one batch of tool calls, concurrently;
- ``_commit``: the atomic store commit;
- here: the effect loop, which also performs a mode's own effects through the performers the
  mode registered (``ModeInfo.effects``).

Durability: the user input is admitted to the store before the first model call; the turn's
messages, usage and outcome are committed in one store transaction when the machine says
``FinishTurn``. A cancelled turn (by ``TurnControl.cancel``, even before it started, or by
cancelling the host task) still commits ``Stopped(cancelled)`` with every tool call answered,
so the session never holds half a turn.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

import anyio

from lash_kernel.activity import TurnActivity, TurnFinished
from lash_kernel.directives import AbortTurn, CheckpointDirective
from lash_kernel.errors import ConfigError, LashError, MachineStateError, PluginHookError
from lash_kernel.messages import Message
from lash_kernel.plugin import EffectPerformer
from lash_kernel.runtime._commit import commit_turn, valid_finish
from lash_kernel.runtime._model_call import call_model
from lash_kernel.runtime._prepare import Prepared, admit, prepare
from lash_kernel.runtime._state import (
    CURRENT_TURN,
    RetryPolicy,
    SessionState,
    TurnContext,
    TurnControl,
    TurnRuntime,
)
from lash_kernel.runtime._tool_batch import run_tool_batch
from lash_kernel.runtime.effects import CallModel, Checkpoint, Effect, EmitActivity, FinishTurn, RunTools
from lash_kernel.runtime.events import CancelRequested, CheckpointResolved, Event, TurnFailed
from lash_kernel.runtime.machine import MachineConfig, MachineProtocol
from lash_kernel.store.base import Lease

__all__ = ["RetryPolicy", "SessionState", "TurnControl", "TurnRuntime", "run_turn"]

_HOST_CANCELLED = "the host task was cancelled"


async def run_turn(
    rt: TurnRuntime,
    session: SessionState,
    control: TurnControl,
    *,
    turn_id: str,
    user_input: Message,
    config: MachineConfig,
    sink: Callable[[TurnActivity], object],
    lease: Lease | None = None,
    parent: TurnContext | None = None,
) -> None:
    """Run one turn to its commit, handing each activity to ``sink`` as it happens.

    Args:
        rt: the core's runtime services.
        session: the session head to continue from; updated in place after the commit.
        control: cancellation handle; receives the outcome, commit result, messages, usage and
            every activity.
        turn_id: unique id for the turn.
        user_input: the input message (valid Unicode; a non-user role ends the turn with
            ``Stopped(invalid_input)``).
        config: machine parameters (model, limits); the system prompt, tools and checkpoints
            are settled by the driver before the machine starts.
        sink: called with each ``TurnActivity``, in ``seq`` order; must not block. The last
            one is ``turn_finished``, after the commit.
        lease: the session lease the caller holds; the commit is fenced with it.
        parent: the parent session's turn this (child) turn runs inside, or None.
    Raises:
        ConfigError: the session's mode is not registered, or its spec names a model client
            the core does not have; nothing was admitted.
        CommitConflictError: the turn id is already committed (refused before anything is
            admitted or any model call), or another writer committed to the session meanwhile
            (nothing of this turn was committed and its input stays pending).
        StoreError: the store failed; the input stays pending if it was admitted.
        MachineStateError: a mode's machine broke its contract (a bug in the mode).
        LeaseLostError: the lease was reclaimed by another writer; nothing was committed.
    """
    ctx = TurnContext(rt, session, control, turn_id, sink, lease=lease, parent=parent)
    token = CURRENT_TURN.set(ctx)
    try:
        await _Turn(ctx, user_input, config).run()
    finally:
        CURRENT_TURN.reset(token)


class _Turn:
    """One turn in flight: the effect loop around one machine. Private: hosts use ``Session``."""

    def __init__(self, ctx: TurnContext, user_input: Message, config: MachineConfig) -> None:
        mode = ctx.session.info.mode
        info = ctx.rt.modes.get(mode)
        if info is None:
            raise ConfigError(f"session {ctx.session_id!r} uses mode {mode!r}, which no loaded plugin provides")
        self.ctx = ctx
        self.user_input = user_input
        self.config = config
        self.mode = info
        self.performers: Mapping[type, EffectPerformer] = info.effects
        self.machine: MachineProtocol | None = None
        self.finish: FinishTurn | None = None  # the machine's FinishTurn, once it said so
        self.committed = False
        self._started_perf = time.perf_counter()

    async def run(self) -> None:
        ctx = self.ctx
        admit(ctx, self.user_input)
        if ctx.tracing:
            ctx.trace(
                "turn.started", ctx.turn_id, None,
                model=self.config.model, provider=ctx.client.provider_name, max_turns=self.config.max_turns,
            )
        try:
            prepared: Prepared | None = None
            with ctx.control.cancellable():
                prepared = await prepare(ctx, self.user_input, self.config)
            await self._loop(self._start(prepared))
        except anyio.get_cancelled_exc_class():
            # The host cancelled the task or closed the stream: commit what happened, synchronously.
            self._commit_cancelled(_HOST_CANCELLED)
            raise

    # ---------------------------------------------------------------- machine
    def _start(self, prepared: Prepared | None) -> list[Effect]:
        """Build and start the machine on the settled config; returns the effects to perform.

        ``prepared`` is None when ``cancel()`` interrupted the preparation.
        """
        ctx = self.ctx
        if prepared is not None:
            ctx.tools = prepared.tools
            for notice in prepared.notices:
                ctx.emit(notice, ctx.turn_id)
        effects = self._new_machine(prepared.config if prepared is not None else self.config)
        if self.finish is not None:
            return effects
        if prepared is None or ctx.control.cancel_requested:
            return self._feed(CancelRequested(reason=ctx.control.cancel_reason))
        if prepared.abort is not None:
            return self._feed(TurnFailed(reason=prepared.abort_reason, message=prepared.abort))
        return effects

    def _new_machine(self, config: MachineConfig) -> list[Effect]:
        self.machine = self.mode.factory(config, self.ctx.session.history)
        effects = self.machine.start(self.user_input, now=self.ctx.rt.clock())
        self._note_finish(effects)
        return effects

    def _feed(self, event: Event) -> list[Effect]:
        """Feed one event; publish its activities now and return the other effects."""
        assert self.machine is not None
        out: list[Effect] = []
        for effect in self.machine.feed(event):
            if isinstance(effect, EmitActivity):
                self.ctx.emit(effect.event, effect.correlation_id)
            else:
                out.append(effect)
        self._note_finish(out)
        return out

    def _note_finish(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, FinishTurn):
                self.finish = effect

    # ---------------------------------------------------------------- the effect loop
    async def _loop(self, effects: Iterable[Effect]) -> None:
        queue = deque(effects)
        while queue:
            effect = queue.popleft()
            if isinstance(effect, EmitActivity):
                self.ctx.emit(effect.event, effect.correlation_id)
            elif isinstance(effect, FinishTurn):
                await self._finish(effect)
                return
            else:
                queue.extend(await self._perform(effect))

    async def _perform(self, effect: Effect) -> list[Effect]:
        """Perform one effect under the turn's cancel scope; return the effects that follow."""
        control, out = self.ctx.control, list[Effect]()
        with control.cancellable() as scope:
            try:
                await self._dispatch(effect, out)
            except MachineStateError:
                raise
            except LashError as exc:  # a bug in a provider adapter or a store: stop cleanly
                if self.finish is None:
                    out = self._feed(TurnFailed(reason="runtime_error", message=str(exc)))
        if self.finish is None and (scope.cancelled_caught or control.cancel_requested):
            out = self._feed(CancelRequested(reason=control.cancel_reason))
        return out

    async def _dispatch(self, effect: Effect, out: list[Effect]) -> None:
        """Perform ``effect``; the effects that follow its events go to ``out``."""
        if isinstance(effect, CallModel):
            out.extend(self._feed(await call_model(self.ctx, effect.request)))
        elif isinstance(effect, RunTools):
            await run_tool_batch(self.ctx, effect.calls, lambda event: out.extend(self._feed(event)))
        elif isinstance(effect, Checkpoint):
            out.extend(self._feed(await self._checkpoint(effect)))
        else:
            for event in await self._perform_mode_effect(effect):
                out.extend(self._feed(event))

    async def _checkpoint(self, effect: Checkpoint) -> CheckpointResolved:
        ctx = self.ctx
        directive: CheckpointDirective | None
        try:
            directive, frame = await ctx.hooks.checkpoint(
                session_id=ctx.session_id, turn_id=ctx.turn_id, phase=effect.phase, messages=effect.messages
            )
        except PluginHookError as exc:
            directive, frame = AbortTurn(reason=str(exc)), None
        if frame is not None:  # the driver's part: the machine never sees frames
            ctx.open_frame(frame, at=len(effect.messages))
        return CheckpointResolved(directive=directive)

    async def _perform_mode_effect(self, effect: object) -> Sequence[Event]:
        """Perform an effect of the mode's own type with its registered performer.

        An unknown effect type, or a performer that raises, stops the turn with
        ``Stopped(runtime_error)`` naming the effect and the mode.
        """
        name, mode = type(effect).__name__, self.mode
        perform = self.performers.get(type(effect))
        if perform is None:
            message = f"mode {mode.name!r} (plugin {mode.plugin!r}) emitted effect {name}, which has no performer"
            return [TurnFailed(reason="runtime_error", message=message)]
        try:
            result = await perform(effect, self.ctx)
        except Exception as exc:
            message = f"the performer of {name} (mode {mode.name!r}, plugin {mode.plugin!r}) failed: "
            return [TurnFailed(reason="runtime_error", message=f"{message}{type(exc).__name__}: {exc}")]
        return list(result) if isinstance(result, Sequence) else [result]

    # ---------------------------------------------------------------- the end
    async def _finish(self, effect: FinishTurn) -> None:
        """Commit, tell plugins, and publish the closing ``turn_finished`` activity.

        Its ``seq`` is reserved before the commit, so the committed ``last_activity_seq``
        covers it; a failing ``lash_turn_committed`` is logged (the commit stands and nothing
        may follow ``turn_finished``).
        """
        ctx = self.ctx
        effect = valid_finish(effect)
        seq = ctx.session.next_seq()
        self.committed = True
        result = commit_turn(ctx, effect, started_perf=self._started_perf)
        if ctx.hooks.implemented("lash_turn_committed"):
            errors = await ctx.hooks.turn_committed(
                session_id=ctx.session_id, turn_id=ctx.turn_id, outcome=effect.outcome,
                head_revision=result.head_revision,
            )
            ctx.log_errors(errors, "the commit stands")
        ctx.activity(TurnFinished(outcome=effect.outcome, head_revision=result.head_revision), ctx.turn_id, seq=seq)
        ctx.drop_hook_errors()

    def _commit_cancelled(self, reason: str) -> None:
        """Commit the turn as it stands after a host cancel (synchronously: no awaits left)."""
        if self.committed:
            return
        if self.machine is None:
            self._new_machine(self.config)
        if self.finish is None:
            self._feed(CancelRequested(reason=reason))
        assert self.finish is not None
        self.committed = True
        commit_turn(self.ctx, valid_finish(self.finish), started_perf=self._started_perf)
