"""The JSONL sink and TracingPlugin buffering, with hand-built records."""

from __future__ import annotations

import json
import threading

import pytest

from lash_kernel.trace import TRACE_SCHEMA_VERSION, TraceRecord
from lash_tracing import REDACTED, JsonlSink, TracingPlugin
from lash_tracing._schema import LINE_FIELDS


def read_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_sink_writes_one_redacted_object_per_line(tmp_path, turn_records):
    sink = JsonlSink(tmp_path / "sub" / "trace.jsonl")  # missing directories are created
    n = sink.write(turn_records)
    sink.close()
    raw = (tmp_path / "sub" / "trace.jsonl").read_bytes()
    assert n == len(raw) and raw.endswith(b"\n")
    lines = read_lines(tmp_path / "sub" / "trace.jsonl")
    assert len(lines) == len(turn_records)
    for line, record in zip(lines, turn_records, strict=True):
        assert list(line) == list(LINE_FIELDS)
        assert line["v"] == TRACE_SCHEMA_VERSION
        assert (line["kind"], line["time_s"], line["session_id"], line["turn_id"], line["span_id"], line["parent_span_id"]) == (
            record.kind, record.time_s, record.session_id, record.turn_id, record.span_id, record.parent_span_id,
        )
    tool_started = lines[5]
    assert tool_started["kind"] == "tool_call.started"
    assert json.loads(tool_started["attributes"]["arguments"]) == {"q": "x", "api_key": REDACTED}
    assert b"sk-live-123" not in raw
    assert lines[4]["attributes"]["usage"] == {
        "input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 50, "cache_write_input_tokens": 5, "reasoning_output_tokens": 3,
    }


def test_sink_appends_and_rejects_writes_after_close(tmp_path, turn_records):
    path = tmp_path / "t.jsonl"
    path.write_text('{"existing": true}\n')
    sink = JsonlSink(path)
    sink.write(turn_records[:2])
    sink.write([])
    sink.close()
    sink.close()  # idempotent
    assert [line.get("kind") for line in read_lines(path)] == [None, "session.opened", "turn.started"]
    with pytest.raises(ValueError, match="closed"):
        sink.write(turn_records[:1])


def test_sink_open_error_is_raised_early(tmp_path):
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(OSError):
        JsonlSink(tmp_path / "dir.jsonl")


class Odd:
    def __str__(self) -> str:
        return "odd!"


def test_non_json_attribute_values_are_stringified(tmp_path):
    record = TraceRecord(
        kind="error", time_s=1.0, session_id="s", turn_id="t", span_id="t",
        attributes={"kind": "plugin", "message": Odd(), "set": {"b", "a"}},
    )
    sink = JsonlSink(tmp_path / "t.jsonl")
    sink.write([record])
    sink.close()
    (line,) = read_lines(tmp_path / "t.jsonl")
    assert line["attributes"] == {"kind": "plugin", "message": "odd!", "set": ["a", "b"]}


def test_plugin_buffers_until_turn_finished_then_flushes(tmp_path, turn_records):
    path = tmp_path / "trace.jsonl"
    plugin = TracingPlugin(jsonl=path)
    finished_at = next(i for i, r in enumerate(turn_records) if r.kind == "turn.finished")
    for record in turn_records[:finished_at]:
        plugin.lash_on_trace_record(record)
    assert path.read_bytes() == b""  # nothing written on the hot path
    plugin.lash_on_trace_record(turn_records[finished_at])
    assert [line["kind"] for line in read_lines(path)] == [r.kind for r in turn_records[: finished_at + 1]]
    plugin.lash_on_trace_record(turn_records[finished_at + 1])  # session.closed flushes too
    assert len(read_lines(path)) == len(turn_records)
    plugin.close()
    plugin.lash_on_trace_record(turn_records[0])  # ignored after close
    plugin.flush()
    assert len(read_lines(path)) == len(turn_records)
    assert plugin.closed and plugin.jsonl is not None and plugin.jsonl.closed


def test_plugin_close_flushes_a_partial_turn(tmp_path, turn_records):
    path = tmp_path / "trace.jsonl"
    with TracingPlugin(jsonl=path) as plugin:
        for record in turn_records[:4]:
            plugin.lash_on_trace_record(record)
        assert path.read_bytes() == b""
    assert [line["kind"] for line in read_lines(path)] == [r.kind for r in turn_records[:4]]


def test_plugin_flushes_early_when_the_buffer_is_full(tmp_path, turn_records):
    path = tmp_path / "trace.jsonl"
    plugin = TracingPlugin(jsonl=path, max_buffered=3)
    for record in turn_records[:5]:
        plugin.lash_on_trace_record(record)
    assert len(read_lines(path)) == 3
    plugin.close()
    assert len(read_lines(path)) == 5


def test_plugin_needs_an_output():
    with pytest.raises(ValueError, match="needs a jsonl path"):
        TracingPlugin()
    with pytest.raises(ValueError, match="max_buffered"):
        TracingPlugin(jsonl="x.jsonl", max_buffered=0)


def test_several_plugins_and_threads_write_whole_lines(tmp_path, make_turn):
    """Two plugins (two cores) on separate files, and four threads on one plugin: no line is lost or torn."""
    a, b = TracingPlugin(jsonl=tmp_path / "a.jsonl"), TracingPlugin(jsonl=tmp_path / "b.jsonl")
    turns = {n: make_turn(session_id=f"s{n}", turn_id=f"t{n}") for n in range(4)}

    def feed(plugin, records):
        for record in records:
            plugin.lash_on_trace_record(record)

    threads = [threading.Thread(target=feed, args=(a, turns[n])) for n in range(4)]
    threads.append(threading.Thread(target=feed, args=(b, turns[0])))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a.close()
    b.close()
    lines_a = read_lines(tmp_path / "a.jsonl")
    assert sorted((line["session_id"], line["kind"], line["time_s"]) for line in lines_a) == sorted(
        (r.session_id, r.kind, r.time_s) for n in range(4) for r in turns[n]
    )
    for n in range(4):  # each turn's records keep their order
        assert [line["kind"] for line in lines_a if line["session_id"] == f"s{n}"] == [r.kind for r in turns[n]]
    assert [line["kind"] for line in read_lines(tmp_path / "b.jsonl")] == [r.kind for r in turns[0]]
