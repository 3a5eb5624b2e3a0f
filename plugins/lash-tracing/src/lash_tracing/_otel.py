"""OpenTelemetry export: trace records become spans following the GenAI semantic conventions.

Rule: the only module that imports ``opentelemetry``; it is imported lazily, only when OTel
export is configured. Spans are built when a turn finishes (never on the hot path), with the
records' wall-clock times as explicit start/end times, on a private ``TracerProvider`` (the
global provider is never read or set).

Mapping (one trace per turn):

- ``turn.started`` .. ``turn.finished`` -> ``invoke_agent lash`` (INTERNAL, root span);
- ``model_call.started`` .. ``.completed`` / ``.failed`` -> ``chat {model}`` (CLIENT), one per
  attempt, child of the turn span;
- ``tool_call.started`` .. ``.completed`` -> ``execute_tool {tool}`` (INTERNAL), child of the
  turn span;
- ``error`` records -> a ``lash.error`` event on their span (or the turn span).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from lash_kernel.plugin import TraceRecord
from lash_tracing._redact import redact
from lash_tracing._schema import ERROR_STOP_REASONS, usage_buckets

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

__all__ = ["AGENT_NAME", "ERROR_STOP_REASONS", "OtelExporter", "build_span_exporter"]

#: ``gen_ai.agent.name`` of every turn span (and the suffix of its name).
AGENT_NAME = "lash"


_END_KINDS = {"turn.finished", "model_call.completed", "model_call.failed", "tool_call.completed"}
_START_KINDS = {"turn.started", "model_call.started", "tool_call.started"}


def build_span_exporter(kind: Literal["console", "otlp"], *, endpoint: str | None = None) -> SpanExporter:
    """Build the span exporter named in ``[plugins.tracing] otel_exporter``.

    Args:
        kind: ``console`` (JSON spans on stderr, so ``lash run --json`` stdout stays clean) or
            ``otlp`` (OTLP/protobuf over HTTP).
        endpoint: for ``otlp``, the full traces URL (``http://localhost:4318/v1/traces``);
            None uses the OTel environment variables or their default.
    Returns:
        A new ``SpanExporter``.
    Raises:
        ValueError: unknown ``kind``.
    """
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr)
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        return OTLPSpanExporter(endpoint=endpoint)
    raise ValueError(f"unknown OpenTelemetry exporter {kind!r} (expected 'console' or 'otlp')")


def _ns(time_s: float) -> int:
    return round(time_s * 1e9)


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Drop None values (OTel rejects them)."""
    return {k: v for k, v in attributes.items() if v is not None}


def _usage_attributes(usage: object) -> dict[str, int]:
    """GenAI usage attributes; ``input_tokens`` includes cached input, as the conventions ask."""
    b = usage_buckets(usage)
    return {
        "gen_ai.usage.input_tokens": b["input_tokens"] + b["cache_read_input_tokens"] + b["cache_write_input_tokens"],
        "gen_ai.usage.output_tokens": b["output_tokens"],
        "gen_ai.usage.cache_read.input_tokens": b["cache_read_input_tokens"],
        "gen_ai.usage.cache_creation.input_tokens": b["cache_write_input_tokens"],
        "gen_ai.usage.reasoning.output_tokens": b["reasoning_output_tokens"],
    }


def _error_type(attrs: Mapping[str, Any]) -> str:
    status = attrs.get("status")
    if isinstance(status, int) and not isinstance(status, bool):
        return str(status)
    error_type = attrs.get("error_type")
    return error_type if isinstance(error_type, str) and error_type else "_OTHER"


class _SpanData:
    __slots__ = ("end", "errors", "start")

    def __init__(self) -> None:
        self.start: TraceRecord | None = None
        self.end: TraceRecord | None = None
        self.errors: list[TraceRecord] = []


class OtelExporter:
    """Turn trace records into OTel spans on a private ``TracerProvider``.

    Exactly one of ``span_exporter`` and ``tracer_provider`` is given.

    Args:
        span_exporter: where spans go; wrapped in a new ``TracerProvider`` owned by this object
            (resource ``service.name`` = ``service_name``). With ``batch=False`` spans are
            exported synchronously when their turn finishes (``SimpleSpanProcessor``).
        tracer_provider: use this provider instead (the caller owns it: ``close()`` only
            flushes it).
        service_name: ``service.name`` of the provider built for ``span_exporter``.
        capture_content: also record tool arguments and results (redacted) as
            ``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result``.
        batch: export from a background thread (``BatchSpanProcessor``); use it for network
            exporters.
    Raises:
        ValueError: neither or both of ``span_exporter`` and ``tracer_provider``.
    """

    def __init__(
        self,
        *,
        span_exporter: SpanExporter | None = None,
        tracer_provider: TracerProvider | None = None,
        service_name: str = AGENT_NAME,
        capture_content: bool = False,
        batch: bool = False,
    ) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SimpleSpanProcessor,
        )

        from lash_tracing import __version__

        if (span_exporter is None) == (tracer_provider is None):
            raise ValueError("give exactly one of span_exporter and tracer_provider")
        if tracer_provider is None:
            assert span_exporter is not None
            tracer_provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
            processor = BatchSpanProcessor(span_exporter) if batch else SimpleSpanProcessor(span_exporter)
            tracer_provider.add_span_processor(processor)
            self._owns_provider = True
        else:
            self._owns_provider = False
        self.provider = tracer_provider
        self.capture_content = capture_content
        self._tracer = tracer_provider.get_tracer("lash_tracing", __version__)
        self._open: dict[str, list[TraceRecord]] = {}  # turn_id -> its records, until turn.finished
        self._closed = False

    # ------------------------------------------------------------------ feeding
    def feed(self, records: Iterable[TraceRecord]) -> int:
        """Take records (in emission order); export every turn whose ``turn.finished`` arrived.

        Records outside a turn (``session.*``) are ignored. Records of unfinished turns are
        kept until their turn finishes or ``close()``.

        Args:
            records: trace records, in order.
        Returns:
            The number of turns exported.
        """
        exported = 0
        for record in records:
            if record.turn_id is None or self._closed:
                continue
            self._open.setdefault(record.turn_id, []).append(record)
            if record.kind == "turn.finished":
                self._export_turn(self._open.pop(record.turn_id))
                exported += 1
        return exported

    def close(self) -> None:
        """Export unfinished turns (their open spans end at their last record, marked
        ``lash.incomplete``), flush, and shut the provider down if this object built it.
        Idempotent."""
        if self._closed:
            return
        pending, self._open = self._open, {}
        for records in pending.values():
            self._export_turn(records)
        self._closed = True
        if self._owns_provider:
            self.provider.shutdown()
        else:
            self.provider.force_flush()

    # ------------------------------------------------------------------ building
    def _export_turn(self, records: list[TraceRecord]) -> None:
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        spans: dict[str, _SpanData] = {}
        turn_id = records[0].turn_id
        assert turn_id is not None
        session_id = next((r.session_id for r in records if r.session_id), None)
        last_time = max(r.time_s for r in records)
        prompt: TraceRecord | None = None
        for r in records:
            data = spans.setdefault(r.span_id, _SpanData())
            if r.kind in _START_KINDS:
                data.start = r
            elif r.kind in _END_KINDS:
                data.end = r
            elif r.kind == "error":
                data.errors.append(r)
            elif r.kind == "prompt.built":
                prompt = r

        turn_data = spans.get(turn_id) or _SpanData()
        turn_started = turn_data.start
        first_time = min(r.time_s for r in records)
        base = {"gen_ai.conversation.id": session_id}
        started_attrs = turn_started.attributes if turn_started is not None else {}
        turn_attrs: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": AGENT_NAME,
            **base,
            "gen_ai.provider.name": started_attrs.get("provider"),
            "gen_ai.request.model": started_attrs.get("model"),
            "lash.turn_id": turn_id,
        }
        if prompt is not None:
            turn_attrs["lash.prompt.sha256"] = prompt.attributes.get("sha256")
        turn_span = self._tracer.start_span(
            f"invoke_agent {AGENT_NAME}",
            context=otel_context.Context(),
            kind=trace.SpanKind.INTERNAL,
            attributes=_clean(turn_attrs),
            start_time=_ns(turn_started.time_s if turn_started is not None else first_time),
        )
        parent_ctx = trace.set_span_in_context(turn_span)
        for span_id, data in spans.items():
            if span_id == turn_id or data.start is None:
                continue
            if data.start.kind == "model_call.started":
                span = self._model_call_span(data, base, parent_ctx)
            elif data.start.kind == "tool_call.started":
                span = self._tool_call_span(data, base, parent_ctx)
            else:  # pragma: no cover - _START_KINDS has no other kinds
                continue
            self._add_error_events(span, data.errors)
            self._end(span, data.end, last_time)
        self._add_error_events(turn_span, turn_data.errors)
        finished = turn_data.end
        if finished is not None:
            fa = finished.attributes
            raw_outcome = fa.get("outcome")
            outcome: Mapping[str, Any] = raw_outcome if isinstance(raw_outcome, Mapping) else {}
            turn_span.set_attributes(_usage_attributes(fa.get("usage")))
            turn_span.set_attributes(_clean({"lash.outcome": outcome.get("type"), "lash.stop_reason": outcome.get("reason")}))
            reason = outcome.get("reason")
            if outcome.get("type") == "stopped" and reason in ERROR_STOP_REASONS:
                turn_span.set_attribute("error.type", reason)
                turn_span.set_status(trace.Status(trace.StatusCode.ERROR, str(outcome.get("detail") or reason)))
        self._end(turn_span, finished, last_time)

    def _model_call_span(self, data: _SpanData, base: dict[str, Any], parent_ctx: Any) -> Span:
        from opentelemetry import trace

        assert data.start is not None
        sa = data.start.attributes
        model = sa.get("model") or "unknown"
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": sa.get("provider"),
            "gen_ai.request.model": sa.get("model"),
            **base,
            "gen_ai.request.max_tokens": sa.get("max_output_tokens"),
            "gen_ai.request.temperature": sa.get("temperature"),
            "lash.model_call.attempt": sa.get("attempt"),
        }
        span = self._tracer.start_span(
            f"chat {model}",
            context=parent_ctx,
            kind=trace.SpanKind.CLIENT,
            attributes=_clean(attrs),
            start_time=_ns(data.start.time_s),
        )
        end = data.end
        if end is not None and end.kind == "model_call.completed":
            ea = end.attributes
            finish = ea.get("finish_reason")
            span.set_attributes(
                _clean(
                    {
                        "gen_ai.response.model": ea.get("response_model") or None,
                        "gen_ai.response.id": ea.get("response_id") or None,
                        "gen_ai.response.finish_reasons": [finish] if finish else None,
                    }
                )
            )
            span.set_attributes(_usage_attributes(ea.get("usage")))
        elif end is not None and end.kind == "model_call.failed":
            ea = end.attributes
            span.set_attribute("error.type", _error_type(ea))
            if isinstance(ea.get("retryable"), bool):
                span.set_attribute("lash.retryable", ea["retryable"])
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(ea.get("error") or "model call failed")))
        return span

    def _tool_call_span(self, data: _SpanData, base: dict[str, Any], parent_ctx: Any) -> Span:
        from opentelemetry import trace

        assert data.start is not None
        sa = data.start.attributes
        tool = sa.get("tool") or "unknown"
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": sa.get("tool"),
            "gen_ai.tool.call.id": sa.get("call_id"),
            "gen_ai.tool.type": "function",
            **base,
        }
        if self.capture_content and isinstance(sa.get("arguments"), str):
            attrs["gen_ai.tool.call.arguments"] = redact(sa["arguments"], "arguments")
        span = self._tracer.start_span(
            f"execute_tool {tool}",
            context=parent_ctx,
            kind=trace.SpanKind.INTERNAL,
            attributes=_clean(attrs),
            start_time=_ns(data.start.time_s),
        )
        end = data.end
        if end is not None:
            ea = end.attributes
            if self.capture_content and isinstance(ea.get("output"), str):
                span.set_attribute("gen_ai.tool.call.result", redact(ea["output"]))
            if ea.get("is_error"):
                span.set_attribute("error.type", "tool_error")
                output = ea.get("output") if isinstance(ea.get("output"), str) else ""
                # the model-facing error text is content: only with capture_content
                span.set_status(trace.Status(trace.StatusCode.ERROR, redact(output) if self.capture_content else "tool error"))
        return span

    @staticmethod
    def _add_error_events(span: Span, errors: list[TraceRecord]) -> None:
        for r in errors:
            attributes = {"lash.error.kind": r.attributes.get("kind"), "lash.error.message": redact(r.attributes.get("message"))}
            span.add_event("lash.error", attributes=_clean(attributes), timestamp=_ns(r.time_s))

    @staticmethod
    def _end(span: Span, end: TraceRecord | None, last_time: float) -> None:
        if end is None:
            span.set_attribute("lash.incomplete", True)
            span.end(end_time=_ns(last_time))
        else:
            span.end(end_time=_ns(end.time_s))
