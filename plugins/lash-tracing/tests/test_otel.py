"""OpenTelemetry mapping, with hand-built records and an in-memory exporter."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from lash_kernel.trace import TraceRecord
from lash_tracing import REDACTED, TracingPlugin

NS = 10**9
T0 = 1000 * NS
TICK_NS = NS // 64


def at(k: int) -> int:
    return T0 + k * TICK_NS


def feed(plugin: TracingPlugin, records) -> None:
    for record in records:
        plugin.lash_on_trace_record(record)


def by_name(spans):
    out = {}
    for span in spans:
        assert span.name not in out or span.name.startswith("chat"), span.name
        out.setdefault(span.name, []).append(span)
    return out


def test_one_turn_becomes_exactly_these_spans(turn_records):
    exporter = InMemorySpanExporter()
    plugin = TracingPlugin(span_exporter=exporter)
    feed(plugin, turn_records[:-2])
    assert exporter.get_finished_spans() == ()  # nothing before turn.finished
    feed(plugin, turn_records[-2:])
    spans = exporter.get_finished_spans()
    plugin.close()

    assert sorted(s.name for s in spans) == ["chat m", "chat m", "chat m", "execute_tool lookup", "invoke_agent lash"]
    (turn,) = [s for s in spans if s.name == "invoke_agent lash"]
    (tool,) = [s for s in spans if s.name == "execute_tool lookup"]
    m1, m2_failed, m2 = sorted((s for s in spans if s.name == "chat m"), key=lambda s: s.start_time)

    # one trace per turn; the turn is its root; calls are its children
    assert turn.parent is None
    trace_id = turn.context.trace_id
    for child in (tool, m1, m2_failed, m2):
        assert child.context.trace_id == trace_id
        assert child.parent.span_id == turn.context.span_id
    assert len({s.context.span_id for s in spans}) == 5

    assert (turn.kind, m1.kind, tool.kind) == (SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.INTERNAL)
    assert (turn.start_time, turn.end_time) == (at(1), at(21))
    assert (m1.start_time, m1.end_time) == (at(2), at(8))
    assert (tool.start_time, tool.end_time) == (at(9), at(12))
    assert (m2_failed.start_time, m2_failed.end_time) == (at(13), at(14))
    assert (m2.start_time, m2.end_time) == (at(15), at(19))

    assert dict(turn.attributes) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "lash",
        "gen_ai.conversation.id": "s1",
        "gen_ai.provider.name": "scripted",
        "gen_ai.request.model": "m",
        "lash.turn_id": "t1",
        "lash.prompt.sha256": "ab" * 32,
        "gen_ai.usage.input_tokens": 240 + 50 + 5,  # cached input included, as the conventions ask
        "gen_ai.usage.output_tokens": 28,
        "gen_ai.usage.cache_read.input_tokens": 50,
        "gen_ai.usage.cache_creation.input_tokens": 5,
        "gen_ai.usage.reasoning.output_tokens": 3,
        "lash.outcome": "finished",
    }
    assert turn.status.status_code == StatusCode.UNSET
    request = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "scripted",
        "gen_ai.request.model": "m",
        "gen_ai.conversation.id": "s1",
        "gen_ai.request.max_tokens": 256,
        "gen_ai.request.temperature": 0.5,
    }
    assert dict(m1.attributes) == {
        **request,
        "lash.model_call.attempt": 1,
        "gen_ai.response.model": "m-2024",
        "gen_ai.response.id": "resp_1",
        "gen_ai.response.finish_reasons": ("tool_calls",),
        "gen_ai.usage.input_tokens": 155,
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.usage.cache_read.input_tokens": 50,
        "gen_ai.usage.cache_creation.input_tokens": 5,
        "gen_ai.usage.reasoning.output_tokens": 3,
    }
    assert m1.status.status_code == StatusCode.UNSET
    assert dict(m2_failed.attributes) == {**request, "lash.model_call.attempt": 1, "error.type": "429", "lash.retryable": True}
    assert m2_failed.status.status_code == StatusCode.ERROR
    assert m2_failed.status.description == "rate limited"
    assert dict(m2.attributes)["lash.model_call.attempt"] == 2
    assert dict(m2.attributes)["gen_ai.response.finish_reasons"] == ("stop",)
    assert dict(m2.attributes)["gen_ai.usage.input_tokens"] == 140
    assert dict(tool.attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "lookup",
        "gen_ai.tool.call.id": "call_1",
        "gen_ai.tool.type": "function",
        "gen_ai.conversation.id": "s1",
    }  # no content without capture_content
    assert tool.status.status_code == StatusCode.UNSET
    assert {s.resource.attributes["service.name"] for s in spans} == {"lash"}
    assert {s.instrumentation_scope.name for s in spans} == {"lash_tracing"}


def test_capture_content_adds_redacted_arguments_and_results(turn_records):
    exporter = InMemorySpanExporter()
    with TracingPlugin(span_exporter=exporter, capture_content=True, service_name="svc") as plugin:
        feed(plugin, turn_records)
    (tool,) = [s for s in exporter.get_finished_spans() if s.name.startswith("execute_tool")]
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"q": "x", "api_key": REDACTED}
    assert tool.attributes["gen_ai.tool.call.result"] == "found x"
    assert tool.resource.attributes["service.name"] == "svc"


def record(kind_, time_s, span, parent=None, turn="t9", session="s9", **attributes):
    return TraceRecord(kind=kind_, time_s=time_s, session_id=session, turn_id=turn, span_id=span,
                       parent_span_id=parent, attributes=attributes)


def test_tool_errors_and_error_stops_set_error_status():
    exporter = InMemorySpanExporter()
    with TracingPlugin(span_exporter=exporter) as plugin:
        feed(plugin, [
            record("turn.started", 1.0, "t9", model="m", provider="p", max_turns=2),
            record("tool_call.started", 1.25, "t9:t:c1", "t9", tool="boom", call_id="c1", arguments="{}"),
            record("tool_call.completed", 1.5, "t9:t:c1", "t9", tool="boom", call_id="c1", duration_s=0.25,
                   is_error=True, output="secret detail"),
            record("error", 1.625, "t9", kind="plugin", message="policy said no"),
            record("turn.finished", 2.0, "t9", outcome={"type": "stopped", "reason": "tool_failure", "detail": "boom failed"},
                   duration_s=1.0, head_revision=1, usage={"input_tokens": 1}),
        ])
    spans = {s.name: s for s in exporter.get_finished_spans()}
    tool, turn = spans["execute_tool boom"], spans["invoke_agent lash"]
    assert tool.status.status_code == StatusCode.ERROR
    assert tool.status.description == "tool error"  # the output is content: not without capture_content
    assert tool.attributes["error.type"] == "tool_error"
    assert turn.status.status_code == StatusCode.ERROR and turn.status.description == "boom failed"
    assert turn.attributes["error.type"] == "tool_failure"
    assert turn.attributes["lash.outcome"] == "stopped" and turn.attributes["lash.stop_reason"] == "tool_failure"
    assert turn.attributes["gen_ai.usage.input_tokens"] == 1 and turn.attributes["gen_ai.usage.output_tokens"] == 0
    (event,) = turn.events
    assert event.name == "lash.error" and event.timestamp == int(1.625 * 10**9)
    assert dict(event.attributes) == {"lash.error.kind": "plugin", "lash.error.message": "policy said no"}


def test_a_cancelled_turn_is_not_an_error():
    exporter = InMemorySpanExporter()
    with TracingPlugin(span_exporter=exporter) as plugin:
        feed(plugin, [
            record("turn.started", 1.0, "t9", model="m", provider="p", max_turns=2),
            record("turn.finished", 2.0, "t9", outcome={"type": "stopped", "reason": "cancelled", "detail": ""},
                   duration_s=1.0, head_revision=1, usage={}),
        ])
    (turn,) = exporter.get_finished_spans()
    assert turn.status.status_code == StatusCode.UNSET and "error.type" not in turn.attributes


def test_close_exports_an_unfinished_turn_marked_incomplete():
    exporter = InMemorySpanExporter()
    plugin = TracingPlugin(span_exporter=exporter)
    feed(plugin, [
        record("turn.started", 1.0, "t9", model="m", provider="p", max_turns=2),
        record("model_call.started", 1.5, "t9:m1#1", "t9", model="m", provider="p", attempt=1),
    ])
    plugin.flush()
    assert exporter.get_finished_spans() == ()
    plugin.close()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"invoke_agent lash", "chat m"}
    for span in spans.values():
        assert span.attributes["lash.incomplete"] is True
        assert span.end_time == int(1.5 * 10**9)


def test_interleaved_turns_of_two_sessions_get_separate_traces(make_turn):
    exporter = InMemorySpanExporter()
    a, b = make_turn("sa", "ta", 1000.0), make_turn("sb", "tb", 1000.0)
    with TracingPlugin(span_exporter=exporter) as plugin:
        for ra, rb in zip(a, b, strict=True):
            plugin.lash_on_trace_record(ra)
            plugin.lash_on_trace_record(rb)
    spans = exporter.get_finished_spans()
    assert len(spans) == 10
    roots = {s.attributes["gen_ai.conversation.id"]: s for s in spans if s.parent is None}
    assert set(roots) == {"sa", "sb"}
    for span in spans:
        root = roots[span.attributes["gen_ai.conversation.id"]]
        assert span.context.trace_id == root.context.trace_id


def test_a_host_tracer_provider_is_used_but_not_shut_down(turn_records):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with TracingPlugin(tracer_provider=provider) as plugin:
        feed(plugin, turn_records)
    assert len(exporter.get_finished_spans()) == 5
    span = provider.get_tracer("after").start_span("still works")  # not shut down
    span.end()
    assert len(exporter.get_finished_spans()) == 6
    provider.shutdown()


def test_the_global_tracer_provider_is_never_touched(turn_records):
    before = otel_trace.get_tracer_provider()
    exporter = InMemorySpanExporter()
    with TracingPlugin(span_exporter=exporter) as plugin:
        feed(plugin, turn_records)
    assert otel_trace.get_tracer_provider() is before
    assert not isinstance(before, TracerProvider)  # still the default proxy


def test_exporter_and_provider_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        TracingPlugin(span_exporter=InMemorySpanExporter(), tracer_provider=TracerProvider())


def test_exporters_from_config(capsys):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    from lash_tracing import TracingConfig

    assert TracingPlugin.from_config(TracingConfig()) is None
    console = TracingPlugin.from_config(TracingConfig(otel_exporter="console"))
    assert console is not None and console.jsonl is None
    processor = console.otel.provider._active_span_processor._span_processors[0]
    assert isinstance(processor, SimpleSpanProcessor) and isinstance(processor.span_exporter, ConsoleSpanExporter)
    console.lash_on_trace_record(record("turn.started", 1.0, "t9", model="m", provider="p", max_turns=2))
    console.lash_on_trace_record(record("turn.finished", 2.0, "t9", outcome={"type": "finished"}, usage={}))
    console.close()
    out = capsys.readouterr()
    assert out.out == "" and '"name": "invoke_agent lash"' in out.err  # spans go to stderr

    otlp = TracingPlugin.from_config(TracingConfig(otel_exporter="otlp", otlp_endpoint="http://127.0.0.1:9/v1/traces"))
    processor = otlp.otel.provider._active_span_processor._span_processors[0]
    assert type(processor).__name__ == "BatchSpanProcessor"
    exporter = processor._batch_processor._exporter if hasattr(processor, "_batch_processor") else processor.span_exporter
    assert isinstance(exporter, OTLPSpanExporter) and exporter._endpoint == "http://127.0.0.1:9/v1/traces"
    otlp.close()  # no spans: nothing is sent


def test_config_rejects_unknown_exporter():
    from lash_tracing import TracingConfig

    with pytest.raises(ValueError):
        TracingConfig(otel_exporter="jaeger")
