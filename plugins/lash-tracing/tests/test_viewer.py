"""The HTML viewer: hand-built trace files rendered and parsed back with html.parser."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import attrs
import pytest

from lash_kernel.trace import TRACE_SCHEMA_VERSION
from lash_tracing import JsonlSink, TraceFileError, build_view, load_trace, render_html

TICK_MS = 1000 / 64
BUCKETS = ("input-tokens", "output-tokens", "cache-read-input-tokens", "cache-write-input-tokens", "reasoning-output-tokens")


class Page(HTMLParser):
    """Collects timeline rows (their data-* attributes and cell texts) and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._row: dict | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        for name in ("src", "href"):
            if name in a:
                self.urls.append(a[name])
        if tag == "tr" and "span" in (a.get("class") or "").split():
            self._row = {"attrs": a, "cells": {}}
            self.rows.append(self._row)
        elif tag == "td" and self._row is not None:
            self._cell = (a.get("class") or "").split()[-1]
            self._row["cells"][self._cell] = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._row is not None and self._cell is not None:
            self._row["cells"][self._cell] += data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def write_trace(path, records):
    sink = JsonlSink(path)
    sink.write(records)
    sink.close()
    return path


def test_rows_per_turn_model_call_and_tool_call(tmp_path, turn_records):
    path = write_trace(tmp_path / "trace.jsonl", turn_records)
    html = render_html(build_view(load_trace(path)), title="trace.jsonl")
    page = parse(html)
    assert page.urls == [] and "http://" not in html and "https://" not in html  # self-contained
    assert {"style", "script"} <= page.tags

    kinds = [(r["attrs"]["data-kind"], r["attrs"]["data-span-id"]) for r in page.rows]
    assert kinds == [
        ("turn", "t1"),
        ("model_call", "t1:m1#1"),
        ("tool_call", "t1:t:call_1"),
        ("model_call", "t1:m2#1"),
        ("model_call", "t1:m2#2"),
    ]
    rows = {r["attrs"]["data-span-id"]: r for r in page.rows}

    def num(row, key):
        return float(row["attrs"][f"data-{key}"])

    # durations (ms) and start offsets: turns from the session's first record, calls from their turn
    expected = {"t1": (1, 20), "t1:m1#1": (1, 6), "t1:t:call_1": (8, 3), "t1:m2#1": (12, 1), "t1:m2#2": (14, 4)}
    for span_id, (start_ticks, duration_ticks) in expected.items():
        assert num(rows[span_id], "start-ms") == pytest.approx(start_ticks * TICK_MS), span_id
        assert num(rows[span_id], "duration-ms") == pytest.approx(duration_ticks * TICK_MS), span_id
    assert rows["t1:m1#1"]["cells"]["duration"] == "93.8 ms"

    usage = {span_id: [int(rows[span_id]["attrs"][f"data-{b}"]) for b in BUCKETS] for span_id in rows}
    assert usage == {
        "t1": [240, 28, 50, 5, 3],
        "t1:m1#1": [100, 20, 50, 5, 3],
        "t1:t:call_1": [0, 0, 0, 0, 0],
        "t1:m2#1": [0, 0, 0, 0, 0],
        "t1:m2#2": [140, 8, 0, 0, 0],
    }
    assert rows["t1"]["cells"]["input_tokens"] == "240"
    assert [rows[s]["cells"]["finish"] for s in expected] == ["finished", "tool_calls", "", "", "stop"]
    assert rows["t1:m2#1"]["cells"]["error"] == "HTTP 429: rate limited"
    assert "has-error" in rows["t1:m2#1"]["attrs"]["class"]
    assert [rows[s]["cells"]["error"] for s in ("t1", "t1:m1#1", "t1:t:call_1", "t1:m2#2")] == ["", "", "", ""]
    assert "found x" in rows["t1:t:call_1"]["cells"]["detail"]
    assert "sk-live-123" not in html  # the file was redacted, so is the page
    assert "1 session(s), 1 turn(s), 3 model call(s), 1 tool call(s), 14 record(s)" in html


def test_several_sessions_and_escaping(tmp_path, make_turn):
    records = make_turn("s<1>", "t&1", 1000.0) + make_turn("s2", "t2", 1002.0)
    html = render_html(build_view(load_trace(write_trace(tmp_path / "t.jsonl", records))))
    page = parse(html)
    assert [r["attrs"]["data-span-id"] for r in page.rows if r["attrs"]["data-kind"] == "turn"] == ["t&1", "t2"]
    assert "<1>" not in html and "s&lt;1&gt;" in html


def test_unfinished_turn_and_tool_error(tmp_path, make_turn):
    records = make_turn()[:7]  # ends after the tool call: no turn.finished
    records[6] = attrs.evolve(records[6], attributes={**records[6].attributes, "is_error": True, "output": "no such city"})
    page = parse(render_html(build_view(load_trace(write_trace(tmp_path / "t.jsonl", records)))))
    rows = {r["attrs"]["data-span-id"]: r for r in page.rows}
    assert rows["t1"]["cells"]["finish"] == "incomplete"
    assert rows["t1"]["attrs"]["data-duration-ms"] == "" and rows["t1"]["cells"]["duration"] == "—"
    assert rows["t1:t:call_1"]["cells"]["error"] == "no such city"


def test_empty_file_renders_an_empty_page(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    html = render_html(build_view(load_trace(path)))
    assert "No turns in this trace." in html and parse(html).rows == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"v": 1, "kind": "turn.started", "time_s": 1, "span_id": "t"}\nnot json\n', r"t\.jsonl:2: not a JSON line"),
        (b"[1, 2]\n", r":1: not a trace record \(expected a JSON object\)"),
        (b'{"kind": "x"}\n', r":1: not a trace record \(no schema version 'v'\)"),
        (json.dumps({"v": TRACE_SCHEMA_VERSION + 1, "kind": "x", "time_s": 1, "span_id": "t"}).encode(),
         rf":1: written with trace schema v{TRACE_SCHEMA_VERSION + 1}, newer than this lash-tracing reads"),
        (b'{"v": 1, "kind": "x", "time_s": "soon", "span_id": "t"}', r"'time_s' is not a number"),
        (b'{"v": 1, "kind": "x", "time_s": 1, "span_id": "t", "attributes": []}', r"'attributes' is not an object"),
        (b'{"v": 1, "time_s": 1}', r"missing 'kind' or 'span_id'"),
        (b"\xff\xfe\n", r":1: not UTF-8 text"),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path, content, message):
    path = tmp_path / "t.jsonl"
    path.write_bytes(content)
    with pytest.raises(TraceFileError, match=message) as info:
        load_trace(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(TraceFileError, match="no such trace file"):
        load_trace(tmp_path / "nope.jsonl")
    with pytest.raises(TraceFileError, match="is a directory"):
        load_trace(tmp_path)
