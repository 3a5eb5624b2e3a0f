"""The JSONL trace line format, shared by the sink, the OTel mapping and the viewer.

Rule: pure data and pure functions; no I/O, no third-party imports.

A line is one JSON object: ``{"v", "kind", "time_s", "session_id", "turn_id", "span_id",
"parent_span_id", "attributes"}``; ``v`` is ``lash_kernel.trace.TRACE_SCHEMA_VERSION`` of the
writer. Token buckets inside ``attributes["usage"]`` use the names documented in
``lash_kernel.trace``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lash_kernel.plugin import TRACE_SCHEMA_VERSION, TraceRecord

__all__ = ["ERROR_STOP_REASONS", "LINE_FIELDS", "USAGE_BUCKETS", "record_to_line", "usage_buckets"]

#: Keys of every JSONL line, in the order they are written.
LINE_FIELDS = ("v", "kind", "time_s", "session_id", "turn_id", "span_id", "parent_span_id", "attributes")

#: The five token buckets of a ``usage`` attribute (``lash_kernel.trace`` names), in display order.
USAGE_BUCKETS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens", "reasoning_output_tokens")

#: ``Stopped`` reasons that are errors: the OTel turn span gets ERROR status (``error.type`` =
#: the reason) and the viewer colours the turn red. ``cancelled``, ``max_turns``,
#: ``max_output_tokens`` and ``content_filter`` are normal stops, not errors.
ERROR_STOP_REASONS = frozenset(
    {"provider_error", "tool_failure", "plugin_abort", "invalid_input", "runtime_error", "no_final_value"}
)


def record_to_line(record: TraceRecord, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The JSONL object for ``record``, with ``attributes`` (already redacted) in place of its own.

    Args:
        record: the kernel's trace record.
        attributes: the attributes to write (the record's, after redaction).
    Returns:
        A dict with the keys of ``LINE_FIELDS``, in that order.
    """
    return {
        "v": TRACE_SCHEMA_VERSION,
        "kind": record.kind,
        "time_s": record.time_s,
        "session_id": record.session_id,
        "turn_id": record.turn_id,
        "span_id": record.span_id,
        "parent_span_id": record.parent_span_id,
        "attributes": attributes,
    }


def usage_buckets(usage: object) -> dict[str, int]:
    """The five token buckets of a ``usage`` attribute; missing or non-integer buckets are 0.

    Args:
        usage: the ``usage`` attribute of a record (a mapping of bucket name to tokens), or
            anything else (treated as no usage).
    Returns:
        ``{bucket: tokens}`` for every name in ``USAGE_BUCKETS``.
    """
    if not isinstance(usage, Mapping):
        return dict.fromkeys(USAGE_BUCKETS, 0)
    out: dict[str, int] = {}
    for name in USAGE_BUCKETS:
        value = usage.get(name, 0)
        out[name] = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return out
