"""Trace records: the kernel's structured account of what happened, for tracing plugins.

Rule: the driver builds trace records only when some plugin implements
``lash_on_trace_record`` (so an untraced core pays nothing). Records carry ids that link
them (session -> turn -> model call / tool call) and wall-clock times from the core's clock;
durations are measured with a monotonic clock. They never carry API keys or HTTP headers.

Span ids: a turn's span id is its ``turn_id``; a model call attempt is
``<turn_id>:m<n>#<attempt>``; a tool call is ``<turn_id>:t:<call_id>``. Model and tool call
spans have the turn's span as parent. Turn spans have no parent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeAlias

import attrs

__all__ = ["TRACE_KINDS", "TRACE_SCHEMA_VERSION", "TraceKind", "TraceRecord"]

#: Bumped when a record's shape changes incompatibly (sinks write it with every record).
TRACE_SCHEMA_VERSION = 1

TraceKind: TypeAlias = Literal[
    "session.opened",
    "session.closed",
    "turn.started",
    "prompt.built",
    "model_call.started",
    "model_call.completed",
    "model_call.failed",
    "tool_call.started",
    "tool_call.completed",
    "usage",
    "error",
    "turn.finished",
]

#: Every ``TraceRecord.kind``, in the order they typically occur.
TRACE_KINDS: tuple[str, ...] = TraceKind.__args__  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True, eq=True, hash=False)
class TraceRecord:
    """One trace record, handed to ``lash_on_trace_record``.

    Attributes:
        kind: what happened; one of ``TRACE_KINDS``. ``*.started`` opens the span ``span_id``
            and the matching ``*.completed`` / ``*.failed`` / ``turn.finished`` closes it.
        time_s: wall-clock time, seconds since the epoch (the core's clock).
        session_id: the session, or None for records outside any session.
        turn_id: the turn, or None outside a turn (``session.*``).
        span_id: the span this record opens, closes or belongs to (see the module doc).
        parent_span_id: the enclosing span (a model/tool call's turn), or None.
        attributes: JSON-ready details; keys per kind:

            - ``session.opened``: ``mode``, ``head_revision``, ``created`` (bool).
            - ``session.closed``: ``head_revision``.
            - ``turn.started``: ``model``, ``provider``, ``max_turns``.
            - ``prompt.built``: ``sha256`` (hex of the system prompt, "" when none),
              ``chars``, ``tool_count``.
            - ``model_call.started``: ``request_id``, ``attempt`` (1-based), ``model``,
              ``provider``, ``message_count``, ``tool_count``, ``max_output_tokens``,
              ``temperature``.
            - ``model_call.completed``: the started keys plus ``duration_s``,
              ``finish_reason``, ``response_model``, ``response_id``, ``usage`` (token
              buckets: ``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``,
              ``cache_write_input_tokens``, ``reasoning_output_tokens``).
            - ``model_call.failed``: the started keys plus ``duration_s``, ``error`` (message),
              ``error_type`` (exception class name, or ``cancelled``), ``status`` (HTTP status
              or None), ``retryable``.
            - ``tool_call.started``: ``tool``, ``call_id``, ``arguments`` (raw JSON text).
            - ``tool_call.completed``: ``tool``, ``call_id``, ``duration_s``, ``is_error``,
              ``output`` (the text the model sees).
            - ``usage``: ``source``, ``model``, ``usage`` (token buckets): the turn's ledger
              rows, emitted just before ``turn.finished``.
            - ``error``: ``kind``, ``message``.
            - ``turn.finished``: ``outcome`` (``{"type": ...}``), ``duration_s``,
              ``head_revision``, ``usage`` (the turn's own token buckets).
    """

    KIND: ClassVar[str] = "trace_record"
    kind: TraceKind
    time_s: float
    session_id: str | None
    turn_id: str | None
    span_id: str
    parent_span_id: str | None = None
    attributes: Mapping[str, Any] = attrs.field(factory=dict)
