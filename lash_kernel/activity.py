"""The app channel: semantic events a turn streams to its host.

Each is wrapped in a ``TurnActivity{id, correlation_id, seq, event}``. ``seq`` increases across a
session's turns (it continues from the last committed turn), so a client can resume a feed with
"events after seq N". ``correlation_id`` ties related events together: a model call's events
share its request id, a tool call's started/completed pair shares the call id.
"""

from __future__ import annotations

from typing import ClassVar, TypeAlias

import attrs

from lash_kernel.outcomes import Outcome
from lash_kernel.usage import TokenUsage

__all__ = [
    "ActivityEvent",
    "AssistantProseDelta",
    "ChildUsage",
    "ErrorReported",
    "ModelAttemptReset",
    "ModelRequestStarted",
    "ReasoningProseDelta",
    "RetryStatus",
    "ToolCallCompleted",
    "ToolCallProgress",
    "ToolCallStarted",
    "TurnActivity",
    "TurnFinished",
    "UsageReported",
]


@attrs.frozen(kw_only=True)
class ModelRequestStarted:
    """A model call began. ``attempt`` counts from 1 and grows on retries."""

    KIND: ClassVar[str] = "model_request_started"
    request_id: str
    model: str
    attempt: int = 1


@attrs.frozen(kw_only=True)
class AssistantProseDelta:
    """A chunk of assistant text as it streams (not fired through hooks: too hot)."""

    KIND: ClassVar[str] = "assistant_prose_delta"
    text: str


@attrs.frozen(kw_only=True)
class ReasoningProseDelta:
    """A chunk of model reasoning (or its summary) as it streams."""

    KIND: ClassVar[str] = "reasoning_delta"
    text: str


@attrs.frozen(kw_only=True)
class ModelAttemptReset:
    """Retract every delta streamed by the failed attempt ``attempt`` of ``request_id``."""

    KIND: ClassVar[str] = "model_attempt_reset"
    request_id: str
    attempt: int
    reason: str


@attrs.frozen(kw_only=True)
class RetryStatus:
    """The driver will retry a model call after waiting ``wait_s`` seconds."""

    KIND: ClassVar[str] = "retry_status"
    request_id: str
    attempt: int
    max_attempts: int
    wait_s: float
    reason: str


@attrs.frozen(kw_only=True)
class ToolCallStarted:
    """A tool call is about to run. ``arguments`` is the raw JSON text from the model."""

    KIND: ClassVar[str] = "tool_call_started"
    call_id: str
    name: str
    arguments: str


@attrs.frozen(kw_only=True)
class ToolCallCompleted:
    """A tool call returned (or failed: ``is_error``). ``duration_s`` is wall time in seconds."""

    KIND: ClassVar[str] = "tool_call_completed"
    call_id: str
    name: str
    output: str
    is_error: bool
    duration_s: float


@attrs.frozen(kw_only=True)
class ToolCallProgress:
    """A running tool reported progress (``ToolContext.report_progress``; MCP progress).

    Attributes:
        call_id: the tool call.
        name: the tool.
        progress: work done so far, in the tool's own units (increases).
        total: the amount of work when known, else None.
        message: a human-readable status, or None.
    """

    KIND: ClassVar[str] = "tool_call_progress"
    call_id: str
    name: str
    progress: float
    total: float | None = None
    message: str | None = None


@attrs.frozen(kw_only=True)
class UsageReported:
    """Usage of one model call, and the turn's cumulative own usage after it (tokens).

    ``model`` is the requested model; ``served_model`` the one the provider reported, when it
    differs ("" otherwise; added in 0.3), as in ``UsageKey``.
    """

    KIND: ClassVar[str] = "usage"
    request_id: str
    source: str
    model: str
    usage: TokenUsage
    cumulative: TokenUsage
    served_model: str = ""


@attrs.frozen(kw_only=True)
class ChildUsage:
    """One model call of a child session (subagent), made during the parent's turn.

    Attributes:
        session_id: the child session that made the call (a grandchild's id for calls made
            deeper down: every call reaches every ancestor's stream once).
        source: the usage source the call is attributed to (``child``, ``subagent``, ...).
        model: the model that was asked for (changed in 0.3: it was the served one).
        usage: the call's tokens.
        cumulative: everything spent by children and direct completions during this turn so
            far, this call included (tokens). Added in 0.2.
        served_model: the model the provider reported, when it differs from ``model`` (else
            ""). Added in 0.3.
    """

    KIND: ClassVar[str] = "child_usage"
    session_id: str
    source: str
    model: str
    usage: TokenUsage
    cumulative: TokenUsage = attrs.field(factory=TokenUsage)
    served_model: str = ""


@attrs.frozen(kw_only=True)
class ErrorReported:
    """Something went wrong; ``kind`` is ``provider``, ``tool``, ``plugin`` or ``runtime``."""

    KIND: ClassVar[str] = "error"
    kind: str
    message: str


@attrs.frozen(kw_only=True)
class TurnFinished:
    """The turn ended and was committed at ``head_revision``."""

    KIND: ClassVar[str] = "turn_finished"
    outcome: Outcome
    head_revision: int


ActivityEvent: TypeAlias = (
    ModelRequestStarted
    | AssistantProseDelta
    | ReasoningProseDelta
    | ModelAttemptReset
    | RetryStatus
    | ToolCallStarted
    | ToolCallCompleted
    | UsageReported
    | ChildUsage
    | ErrorReported
    | TurnFinished
    | ToolCallProgress
)


@attrs.frozen(kw_only=True)
class TurnActivity:
    """One entry of a turn's activity stream.

    Attributes:
        id: unique activity id (``<turn_id>:<seq>``).
        correlation_id: groups related events (request id, tool call id, or the turn id).
        seq: per-session sequence number, strictly increasing across turns.
        event: the semantic event.
    """

    id: str
    correlation_id: str
    seq: int
    event: ActivityEvent

    @property
    def kind(self) -> str:
        """The event's stable KIND tag, e.g. ``tool_call_completed``."""
        return self.event.KIND
