"""TurnMachine: the pure, synchronous state machine of one agent turn (standard mode).

Rule: no I/O, no clock, no randomness, no hooks. It imports attrs and lash's own data types
only (a test parses this file's imports). Time and ids arrive as data; the driver performs the
effects it returns and feeds the results back as events.

Standard mode: model call -> native tool calls -> tool results (in call order) -> model call ...
-> final assistant message. The transitions, one arrow per line from source states, over an
event, to target states (``|`` separates alternatives; ``start`` is the ``start()`` call).
``_TABLE`` holds the same arrows as data, and ``tests/test_machine.py`` checks this diagram
against it both ways:

    IDLE --start--> AWAITING_MODEL | DONE
        # DONE at once when the input is not a user message: Stopped(invalid_input)
    AWAITING_MODEL --ModelResponded--> RUNNING_TOOLS | CHECKPOINT | AWAITING_MODEL | DONE
        # tool calls -> RUNNING_TOOLS; no calls -> DONE (Finished), or CHECKPOINT first when
        # config.checkpoints; finish_reason length / content_filter -> DONE (Stopped);
        # with config.final_tool, a first prose answer -> AWAITING_MODEL (one reminder), a
        # second -> DONE (Stopped(no_final_value))
    AWAITING_MODEL --ModelFailed--> DONE
        # Stopped(provider_error)
    RUNNING_TOOLS --ToolCallFinished--> RUNNING_TOOLS | AWAITING_MODEL | CHECKPOINT | DONE
        # stays until the last result; then Finished(final_value) when the batch holds a
        # successful config.final_tool call (CHECKPOINT first when config.checkpoints), else
        # the next model call, a checkpoint, or Stopped(max_turns) when model calls == max_turns
    CHECKPOINT --CheckpointResolved--> AWAITING_MODEL | DONE
        # continue / inject messages -> AWAITING_MODEL; abort, max_turns reached, or nothing
        # to add before finishing -> DONE (or, for a prose answer with config.final_tool, the
        # reminder -> AWAITING_MODEL)
    AWAITING_MODEL | RUNNING_TOOLS | CHECKPOINT --CancelRequested--> DONE
        # Stopped(cancelled); open tool calls are answered with errors
    AWAITING_MODEL | RUNNING_TOOLS | CHECKPOINT --TurnFailed--> DONE
        # Stopped(<reason>) (runtime_error, plugin_abort, ...)

Any other (state, event) pair is illegal: ``feed`` raises ``MachineStateError`` and the machine
moves to FAILED, where every later call raises.

With ``config.checkpoints`` set (some plugin implements ``lash_checkpoint``), the machine stops
in CHECKPOINT after each answered tool batch and before finishing, emitting ``Checkpoint``;
``CheckpointResolved`` then continues (None), appends injected messages (and calls the model
again), or aborts with ``Stopped(plugin_abort)``.

Typed results: with ``config.final_tool`` set (a turn run with ``output_schema=``), the turn
ends when a tool batch holds a successful call of that tool (the first one, in call order):
``Finished(output="final_value", value_json=<that call's output text>)``. The other calls of
the batch still run and are committed. The ``before_finish`` checkpoint comes first, as for a
prose answer; injecting messages there drops the value and calls the model again. A prose
answer gets one reminder (a user message asking for the tool; the next model call counts
against ``max_turns``); a second prose answer stops the turn with ``Stopped(no_final_value)``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any, Literal, NoReturn, Protocol, runtime_checkable

import attrs

from lash_kernel.activity import (
    ModelRequestStarted,
    ToolCallCompleted,
    ToolCallStarted,
    UsageReported,
)
from lash_kernel.directives import AbortTurn, InjectMessages
from lash_kernel.errors import MachineStateError
from lash_kernel.messages import Message, ToolCallPart, ToolResultPart, repair_history
from lash_kernel.model import ModelRequest, ToolSpec
from lash_kernel.outcomes import Finished, Outcome, Stopped, StopReason
from lash_kernel.runtime.effects import CallModel, Checkpoint, Effect, EmitActivity, FinishTurn, RunTools
from lash_kernel.runtime.events import (
    CancelRequested,
    CheckpointResolved,
    Event,
    ModelFailed,
    ModelResponded,
    ToolCallFinished,
    TurnFailed,
)
from lash_kernel.usage import TokenUsage, UsageKey, UsageLedger, usage_key

__all__ = ["START_TARGETS", "MachineConfig", "MachineProtocol", "TurnMachine", "TurnState"]


class TurnState(enum.Enum):
    """Where a turn is."""

    IDLE = "idle"
    AWAITING_MODEL = "awaiting_model"
    RUNNING_TOOLS = "running_tools"
    CHECKPOINT = "checkpoint"
    DONE = "done"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class MachineConfig:
    """Everything a turn needs to know up front, as data.

    Attributes:
        turn_id: the turn's id; request ids are derived from it (``<turn_id>:m<n>``).
        model: model id sent with every call.
        system: system prompt, or None.
        tools: tool specs offered to the model.
        max_turns: maximum model calls within this turn (>= 1).
        max_output_tokens: per-call output-token cap, or None.
        temperature: sampling temperature, or None.
        source: usage-ledger source label for this turn's calls (``turn``).
        options: extra provider body fields.
        checkpoints: stop at ``Checkpoint`` effects (set when a plugin implements
            ``lash_checkpoint``).
        final_tool: name of the tool whose successful call ends the turn with its output as
            the value (``Finished(final_value)``), or None for a turn that ends in prose.
            Added in 0.2.
        output_schema: what the host asked the value to be (a JSON Schema mapping or an attrs
            class), or None. The driver builds the ``final_tool`` from it; the machine never
            reads it. Added in 0.2.
    """

    turn_id: str
    model: str
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    checkpoints: bool = False
    max_turns: int = 16
    max_output_tokens: int | None = None
    temperature: float | None = None
    source: str = "turn"
    options: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    final_tool: str | None = None
    output_schema: Mapping[str, Any] | type | None = attrs.field(default=None, hash=False)

    def __attrs_post_init__(self) -> None:
        if self.max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {self.max_turns}")


@runtime_checkable
class MachineProtocol(Protocol):
    """What the driver needs of a mode's machine (``TurnMachine`` is the standard one).

    A machine is pure: it never does I/O, reads a clock or calls hooks. The driver calls
    ``start`` once, then ``feed`` with one event per performed effect, until an effect is
    ``FinishTurn``.

    Attributes:
        state: where the turn is; ``TurnState.IDLE`` before ``start``, ``TurnState.DONE`` after
            ``FinishTurn`` and ``TurnState.FAILED`` after a ``MachineStateError``. Any other
            value (a mode may use its own enum) means the turn is live: cancelling it must
            produce a ``FinishTurn``.
        usage: the turn's own model usage so far, per (source, model).
    """

    @property
    def state(self) -> Any: ...

    @property
    def usage(self) -> UsageLedger: ...

    def start(self, user_input: Message, *, now: float) -> list[Effect]:
        """Begin the turn; return the first effects.

        An input the mode cannot take (e.g. not a user message) ends the turn at once: the
        effects then end with ``FinishTurn(Stopped(invalid_input))``.

        Raises:
            MachineStateError: started twice.
        """
        ...

    def feed(self, event: Event) -> list[Effect]:
        """Advance by one event; return the effects to perform next, in order.

        Raises:
            MachineStateError: the event is illegal in the current state.
        """
        ...


_TRUNCATED_OUTPUT = "error: not run: the model's output was cut off before the call was complete"
_CANCELLED_OUTPUT = "error: the turn was cancelled before this tool call returned"
_REMINDER = (
    "You answered in prose, but this turn needs a structured answer: call the {tool} tool "
    "with your final answer as its arguments (matching its input schema). Do not answer in prose."
)


@attrs.define(slots=True)
class TurnMachine:
    """Pure turn state machine. Consumes events, returns effects. Never does I/O or reads a clock.

    Args:
        config: the turn's fixed parameters.
        history: the session's committed messages, oldest first.
        repair: repair ``history`` (``repair_history``) before the first model call. A caller
            that guarantees a consistent history (the driver: sessions are repaired once when
            loaded, and every committed turn answers all its tool calls) passes False to keep
            the per-turn cost independent of history length.
    """

    config: MachineConfig
    history: tuple[Message, ...] = ()
    repair: bool = True
    state: TurnState = TurnState.IDLE
    messages: list[Message] = attrs.field(factory=list)
    model_calls: int = 0
    _ledger: dict[UsageKey, tuple[TokenUsage, int]] = attrs.field(factory=dict)
    _cumulative: TokenUsage = attrs.field(factory=TokenUsage)
    _request_id: str = ""
    _calls: tuple[ToolCallPart, ...] = ()
    _results: dict[str, ToolResultPart] = attrs.field(factory=dict)
    _phase: str = ""
    _reminded: bool = False  # the one prose-answer reminder of a final_tool turn was sent
    _value: Finished | None = None  # a final value waiting for the before_finish checkpoint

    # ---------------------------------------------------------------- public API
    def start(self, user_input: Message, *, now: float) -> list[Effect]:
        """Begin the turn with ``user_input``.

        Args:
            user_input: the user's message (role ``user``).
            now: seconds since the epoch; recorded for replay, not otherwise used.
        Returns:
            The first effects: announce and perform the first model call. An input whose role
            is not ``user`` ends the turn at once with ``Stopped(invalid_input)``, committing
            no messages.
        Raises:
            MachineStateError: the machine was already started.
        """
        del now  # time is data; the machine does not need it yet
        if self.state is not TurnState.IDLE:
            self._fail(f"start() called in state {self.state.value}")
        if user_input.role != "user":
            self.state = TurnState.DONE
            detail = f"turn input must be a user message, got role {user_input.role!r}"
            return [FinishTurn(outcome=Stopped(reason="invalid_input", detail=detail), messages=(), usage=self.usage)]
        if self.repair:
            self.history = repair_history(self.history)
        self.messages.append(user_input)
        return self._call_model()

    def feed(self, event: Event) -> list[Effect]:
        """Advance by one event.

        Returns:
            Effects to perform, in order. An empty list means waiting for more events.
        Raises:
            MachineStateError: the event is illegal in the current state (caller bug); the
                machine moves to FAILED and every later call raises.
        """
        entry = _TABLE.get((self.state, type(event)))
        if entry is None:
            self._fail(f"{type(event).__name__} is illegal in state {self.state.value}")
        handler, targets = entry
        effects = handler(self, event)
        if self.state not in targets:  # the table is the contract: a handler may not leave it
            self._fail(f"{type(event).__name__} moved the machine to {self.state.value}, not in the table")
        return effects

    @property
    def usage(self) -> UsageLedger:
        """This turn's own usage so far, per (source, model)."""
        return UsageLedger.of((k, u, c) for k, (u, c) in self._ledger.items())

    # ---------------------------------------------------------------- transitions
    def _on_model_responded(self, event: ModelResponded) -> list[Effect]:
        self._expect_request(event.request_id)
        response = event.response
        message = response.message
        self.messages.append(message)
        key = usage_key(self.config.source, self.config.model, response.model)
        prev, calls = self._ledger.get(key, (TokenUsage(), 0))
        self._ledger[key] = (prev + response.usage, calls + 1)
        self._cumulative = self._cumulative + response.usage
        effects: list[Effect] = [
            EmitActivity(
                event=UsageReported(
                    request_id=event.request_id,
                    source=key.source,
                    model=key.model,
                    served_model=key.served_model,
                    usage=response.usage,
                    cumulative=self._cumulative,
                ),
                correlation_id=event.request_id,
            )
        ]
        calls_made = message.tool_calls
        if response.finish_reason in ("length", "content_filter"):
            reason: StopReason = "max_output_tokens" if response.finish_reason == "length" else "content_filter"
            self._close_calls(calls_made, _TRUNCATED_OUTPUT)
            detail = (
                "the model reached the output-token cap"
                if reason == "max_output_tokens"
                else "the provider filtered or refused the output"
            )
            return effects + self._finish(Stopped(reason=reason, detail=detail, text=message.text))
        if not calls_made:
            if self.config.checkpoints:
                return effects + self._checkpoint("before_finish")
            return effects + self._prose_answer(message.text)
        self.state = TurnState.RUNNING_TOOLS
        self._calls = calls_made
        self._results = {}
        for call in calls_made:
            effects.append(
                EmitActivity(
                    event=ToolCallStarted(call_id=call.id, name=call.name, arguments=call.arguments),
                    correlation_id=call.id,
                )
            )
        effects.append(RunTools(calls=calls_made))
        return effects

    def _on_model_failed(self, event: ModelFailed) -> list[Effect]:
        self._expect_request(event.request_id)
        return self._finish(Stopped(reason="provider_error", detail=event.message))

    def _on_tool_finished(self, event: ToolCallFinished) -> list[Effect]:
        result = event.result
        if result.call_id not in {c.id for c in self._calls} or result.call_id in self._results:
            self._fail(f"unexpected tool result for call {result.call_id!r}")
        self._results[result.call_id] = result
        effects: list[Effect] = [
            EmitActivity(
                event=ToolCallCompleted(
                    call_id=result.call_id,
                    name=result.name,
                    output=result.output,
                    is_error=result.is_error,
                    duration_s=event.duration_s,
                ),
                correlation_id=result.call_id,
            )
        ]
        if len(self._results) < len(self._calls):
            return effects
        value = self._final_value()
        self._close_calls(self._calls, "")
        if value is not None:
            if self.config.checkpoints:
                self._value = value
                return effects + self._checkpoint("before_finish")
            return effects + self._finish(value)
        if self.model_calls >= self.config.max_turns:
            detail = f"reached max_turns={self.config.max_turns} model calls in one turn"
            return effects + self._finish(Stopped(reason="max_turns", detail=detail))
        if self.config.checkpoints:
            return effects + self._checkpoint("after_tools")
        return effects + self._call_model()

    def _on_checkpoint_resolved(self, event: CheckpointResolved) -> list[Effect]:
        directive, phase = event.directive, self._phase
        if isinstance(directive, AbortTurn):
            return self._finish(Stopped(reason="plugin_abort", detail=directive.reason))
        value, self._value = self._value, None
        if isinstance(directive, InjectMessages):
            self.messages.extend(directive.messages)
        elif phase == "before_finish":
            return self._finish(value) if value is not None else self._prose_answer(self.messages[-1].text)
        if self.model_calls >= self.config.max_turns:
            detail = f"reached max_turns={self.config.max_turns} model calls in one turn"
            return self._finish(Stopped(reason="max_turns", detail=detail))
        return self._call_model()

    def _on_abort(self, event: CancelRequested | TurnFailed) -> list[Effect]:
        if self.state is TurnState.RUNNING_TOOLS:
            self._close_calls(self._calls, _CANCELLED_OUTPUT)
        if isinstance(event, CancelRequested):
            return self._finish(Stopped(reason="cancelled", detail=event.reason))
        return self._finish(Stopped(reason=event.reason, detail=event.message))  # type: ignore[arg-type]

    # ---------------------------------------------------------------- helpers
    def _prose_answer(self, text: str) -> list[Effect]:
        """The model answered in prose: finish, or (when a final value is wanted) remind once."""
        tool = self.config.final_tool
        if tool is None:
            return self._finish(Finished(text=text))
        if self._reminded:
            detail = f"the model answered in prose twice without calling {tool}"
            return self._finish(Stopped(reason="no_final_value", detail=detail, text=text))
        self._reminded = True
        self.messages.append(Message.user(_REMINDER.format(tool=tool)))
        if self.model_calls >= self.config.max_turns:
            detail = f"reached max_turns={self.config.max_turns} model calls in one turn"
            return self._finish(Stopped(reason="max_turns", detail=detail, text=text))
        return self._call_model()

    def _final_value(self) -> Finished | None:
        """``Finished(final_value)`` for the answered batch's first successful final-tool call."""
        tool = self.config.final_tool
        if tool is None:
            return None
        for call in self._calls:
            result = self._results[call.id]
            if call.name == tool and not result.is_error:
                text = next((m.text for m in reversed(self.messages) if m.role == "assistant"), "")
                return Finished(output="final_value", text=text, value_json=result.output)
        return None

    def _checkpoint(self, phase: Literal["after_tools", "before_finish"]) -> list[Effect]:
        self.state = TurnState.CHECKPOINT
        self._phase = phase
        return [Checkpoint(phase=phase, messages=tuple(self.messages))]

    def _call_model(self) -> list[Effect]:
        self.model_calls += 1
        self.state = TurnState.AWAITING_MODEL
        self._request_id = f"{self.config.turn_id}:m{self.model_calls}"
        cfg = self.config
        request = ModelRequest(
            model=cfg.model,
            messages=(*self.history, *self.messages),
            system=cfg.system,
            tools=cfg.tools,
            max_output_tokens=cfg.max_output_tokens,
            temperature=cfg.temperature,
            request_id=self._request_id,
            options=cfg.options,
        )
        return [
            EmitActivity(
                event=ModelRequestStarted(request_id=self._request_id, model=cfg.model),
                correlation_id=self._request_id,
            ),
            CallModel(request=request),
        ]

    def _close_calls(self, calls: tuple[ToolCallPart, ...], missing_output: str) -> None:
        """Append the tool message answering ``calls`` in call order; fill gaps with errors."""
        if not calls:
            return
        parts = tuple(
            self._results.get(c.id)
            or ToolResultPart(call_id=c.id, name=c.name, output=missing_output, is_error=True)
            for c in calls
        )
        self.messages.append(Message(role="tool", parts=parts))
        self._calls = ()
        self._results = {}

    def _finish(self, outcome: Outcome) -> list[Effect]:
        self.state = TurnState.DONE
        return [FinishTurn(outcome=outcome, messages=tuple(self.messages), usage=self.usage)]

    def _expect_request(self, request_id: str) -> None:
        if request_id != self._request_id:
            self._fail(f"response for {request_id!r} but the open request is {self._request_id!r}")

    def _fail(self, message: str) -> NoReturn:
        self.state = TurnState.FAILED
        raise MachineStateError(message)


_Handler = Callable[[TurnMachine, Any], list[Effect]]

_S = TurnState
_LIVE = (_S.AWAITING_MODEL, _S.RUNNING_TOOLS, _S.CHECKPOINT)

START_TARGETS: frozenset[TurnState] = frozenset({_S.AWAITING_MODEL, _S.DONE})
"""States ``start()`` may move an IDLE machine to (the ``IDLE --start-->`` arrow)."""

_TABLE: dict[tuple[TurnState, type], tuple[_Handler, frozenset[TurnState]]] = {
    (_S.AWAITING_MODEL, ModelResponded): (
        TurnMachine._on_model_responded,
        frozenset({_S.RUNNING_TOOLS, _S.CHECKPOINT, _S.AWAITING_MODEL, _S.DONE}),
    ),
    (_S.AWAITING_MODEL, ModelFailed): (TurnMachine._on_model_failed, frozenset({_S.DONE})),
    (_S.RUNNING_TOOLS, ToolCallFinished): (
        TurnMachine._on_tool_finished,
        frozenset({_S.RUNNING_TOOLS, _S.AWAITING_MODEL, _S.CHECKPOINT, _S.DONE}),
    ),
    (_S.CHECKPOINT, CheckpointResolved): (
        TurnMachine._on_checkpoint_resolved,
        frozenset({_S.AWAITING_MODEL, _S.DONE}),
    ),
    **{
        (state, event): (TurnMachine._on_abort, frozenset({_S.DONE}))
        for state in _LIVE
        for event in (CancelRequested, TurnFailed)
    },
}
"""``(state, event type) -> (handler, states the handler may move to)``: the diagram, as data."""
