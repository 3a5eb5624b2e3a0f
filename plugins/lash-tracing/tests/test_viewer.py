"""The HTML viewer: hand-built trace files rendered and parsed back with html.parser."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import attrs
import pytest

from lash_kernel.trace import TRACE_SCHEMA_VERSION
from lash_tracing import JsonlSink, TraceFileError, build_view, load_trace, render_html

TICK_MS = 1000 / 64
BUCKETS = (
    "input-tokens", "output-tokens", "cache-read-input-tokens", "cache-write-input-tokens", "reasoning-output-tokens",
)


CELLS = ("name", "info", "duration", "track")


class Page(HTMLParser):
    """Collects waterfall rows (their data-* attributes and cell texts), every URL-bearing attribute,
    and the detail data (the JSON in ``<script id="trace-data">``)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.scripts: list[tuple[dict, str]] = []
        self._row: dict | None = None
        self._spans: list[str] = []
        self._button = False
        self._script: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        for name in ("src", "href"):
            if name in a:
                self.urls.append(a[name])
        classes = (a.get("class") or "").split()
        if tag == "div" and {"row", "span"} <= set(classes):
            self._row = {"attrs": a, "classes": classes, "cells": {}}
            self.rows.append(self._row)
        elif tag == "span" and self._row is not None:
            cell = next((c for c in classes if c in CELLS), "")
            self._spans.append(cell)
            if cell and len(self._spans) == 1:
                self._row["cells"][cell] = ""
                self._row.setdefault("titles", {})[cell] = a.get("title")
        elif tag == "button":
            self._button = True
        elif tag == "script":
            self._script = a
            self.scripts.append((a, ""))

    def handle_endtag(self, tag):
        if tag == "span" and self._spans:
            self._spans.pop()
        elif tag == "div" and self._row is not None and not self._spans:
            self._row = None
        elif tag == "button":
            self._button = False
        elif tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            attrs_, text = self.scripts[-1]
            self.scripts[-1] = (attrs_, text + data)
        elif self._row is not None and self._spans and not self._button:
            self._row["cells"][self._spans[0]] += data

    def data(self) -> list[dict]:
        """The detail data of every row, by ``data-row`` index."""
        (text,) = [t for a, t in self.scripts if a.get("id") == "trace-data"]
        return json.loads(text)["rows"]


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


def rows_by_span(page: Page) -> dict[str, dict]:
    return {r["attrs"]["data-span-id"]: r for r in page.rows}


def test_rows_per_turn_phases_model_calls_and_tool_call(tmp_path, turn_records):
    path = write_trace(tmp_path / "trace.jsonl", turn_records)
    html = render_html(build_view(load_trace(path)), title="trace.jsonl")
    page = parse(html)
    assert page.urls == [] and "http://" not in html and "https://" not in html  # self-contained
    assert {"style", "script"} <= page.tags

    kinds = [(r["attrs"]["data-kind"], r["attrs"]["data-span-id"]) for r in page.rows]
    assert kinds == [
        ("phase", "s1:start-up"),
        ("turn", "t1"),
        ("phase", "t1:prepare"),
        ("model_call", "t1:m1#1"),
        ("tool_call", "t1:t:call_1"),
        ("model_call", "t1:m2#1"),
        ("model_call", "t1:m2#2"),
    ]
    rows = rows_by_span(page)

    def num(row, key):
        return float(row["attrs"][f"data-{key}"])

    # (start, offset from the session's first record, duration) in ticks; start: turns and
    # session phases from the session's first record, a turn's rows from the turn's start
    expected = {
        "s1:start-up": (0, 0, 2), "t1": (1, 1, 20), "t1:prepare": (0, 1, 1), "t1:m1#1": (1, 2, 6),
        "t1:t:call_1": (8, 9, 3), "t1:m2#1": (12, 13, 1), "t1:m2#2": (14, 15, 4),
    }
    for span_id, (start, offset, duration) in expected.items():
        assert num(rows[span_id], "start-ms") == pytest.approx(start * TICK_MS), span_id
        assert num(rows[span_id], "offset-ms") == pytest.approx(offset * TICK_MS), span_id
        assert num(rows[span_id], "duration-ms") == pytest.approx(duration * TICK_MS), span_id
    assert rows["t1:m1#1"]["cells"]["duration"] == "93.8 ms"
    assert [r["attrs"]["data-depth"] for r in page.rows] == ["0", "0", "1", "1", "1", "1", "1"]

    usage = {span_id: [int(rows[span_id]["attrs"][f"data-{b}"]) for b in BUCKETS] for span_id in rows}
    assert usage == {
        "s1:start-up": [0, 0, 0, 0, 0],
        "t1": [240, 28, 50, 5, 3],
        "t1:prepare": [0, 0, 0, 0, 0],
        "t1:m1#1": [100, 20, 50, 5, 3],
        "t1:t:call_1": [0, 0, 0, 0, 0],
        "t1:m2#1": [0, 0, 0, 0, 0],
        "t1:m2#2": [140, 8, 0, 0, 0],
    }
    status = {span_id: rows[span_id]["attrs"]["data-status"] for span_id in rows}
    assert status == {span_id: "ok" for span_id in rows} | {"t1:m2#1": "error"}
    assert "status-error" in rows["t1:m2#1"]["classes"] and "status-ok" in rows["t1:m2#2"]["classes"]
    info = {span_id: rows[span_id]["cells"]["info"] for span_id in rows}
    assert info["t1"] == "finished · 240 in · 28 out"
    assert info["t1:m1#1"] == "tool_calls · 100 in · 20 out"
    assert info["t1:m2#1"] == "HTTP 429: rate limited · retryable"
    assert info["t1:t:call_1"] == "found x"
    # the retry is its own row, named and badged
    assert rows["t1:m2#2"]["cells"]["name"] == "chat m (attempt 2)retry" and "retry" in rows["t1:m2#2"]["classes"]
    assert rows["t1:m2#1"]["cells"]["name"] == "chat m"
    assert rows["t1"]["cells"]["name"] == "turn 1 · t1"

    # the detail pane's data: arguments parsed (and redacted), result, usage, error
    data = page.data()
    tool = data[int(rows["t1:t:call_1"]["attrs"]["data-row"])]
    assert tool["data"]["arguments"] == {"q": "x", "api_key": "[redacted]"}
    assert tool["data"]["result"] == "found x" and tool["data"]["is_error"] is False
    failed = data[int(rows["t1:m2#1"]["attrs"]["data-row"])]["data"]
    assert failed["error"] == {
        "error": "rate limited", "status": 429, "retryable": True, "duration_s": TICK_MS / 1000,
        "messages": ["HTTP 429: rate limited"],
    }
    assert failed["request"]["attempt"] == 1 and failed["request"]["max_output_tokens"] == 256
    ok = data[int(rows["t1:m2#2"]["attrs"]["data-row"])]["data"]
    assert ok["response"]["finish_reason"] == "stop" and ok["usage"]["input_tokens"] == 140
    turn = data[int(rows["t1"]["attrs"]["data-row"])]["data"]
    assert turn["outcome"] == {"type": "finished", "output": "assistant_message"}
    assert turn["prompt"]["sha256"] == "ab" * 32 and turn["usage_rows"][0]["source"] == "turn"
    assert "sk-live-123" not in html  # the file was redacted, so is the page
    assert "1 session(s), 1 turn(s), 3 model call(s), 1 tool call(s), 14 record(s), 1 error(s)" in html


def test_several_sessions_and_escaping(tmp_path, make_turn):
    hostile = '</script><script>alert(1)</script><img src=x onerror="alert(2)"> & \u2028'
    records = make_turn("s<1>", "t&1", 1000.0) + make_turn("s2", "t2", 1002.0)
    records[6] = attrs.evolve(records[6], attributes={**records[6].attributes, "output": hostile})
    html = render_html(build_view(load_trace(write_trace(tmp_path / "t.jsonl", records))))
    page = parse(html)
    assert [r["attrs"]["data-span-id"] for r in page.rows if r["attrs"]["data-kind"] == "turn"] == ["t&1", "t2"]
    assert "<1>" not in html and "s&lt;1&gt;" in html
    # the hostile output appears only escaped: as text in its row and as JSON in the data script
    assert "<script>alert" not in html and "<img" not in html and "onerror=\"" not in html
    rows = rows_by_span(page)
    assert rows["t&1:t:call_1"]["cells"]["info"] == " ".join(hostile.split())
    assert page.data()[int(rows["t&1:t:call_1"]["attrs"]["data-row"])]["data"]["result"] == hostile
    assert sum(1 for a, _ in page.scripts if "type" not in a) == 1  # one script of code: the viewer's own
    assert [r["attrs"]["data-session-id"] for r in page.rows if r["attrs"]["data-kind"] == "turn"] == ["s<1>", "s2"]


def test_unfinished_turn_and_tool_error(tmp_path, make_turn):
    records = make_turn()[:7]  # ends after the tool call: no turn.finished
    records[6] = attrs.evolve(
        records[6], attributes={**records[6].attributes, "is_error": True, "output": "no such city"}
    )
    page = parse(render_html(build_view(load_trace(write_trace(tmp_path / "t.jsonl", records)))))
    rows = rows_by_span(page)
    assert rows["t1"]["cells"]["info"] == "incomplete" and rows["t1"]["attrs"]["data-status"] == "open"
    assert rows["t1"]["attrs"]["data-duration-ms"] == "" and rows["t1"]["cells"]["duration"] == "—"
    assert rows["t1:t:call_1"]["cells"]["info"] == "error: no such city"
    assert rows["t1:t:call_1"]["attrs"]["data-status"] == "error"
    tool = page.data()[int(rows["t1:t:call_1"]["attrs"]["data-row"])]["data"]
    assert tool["result"] == "no such city" and tool["error"] == {"messages": ["no such city"]}


def finish_as(records, outcome, finish_reason="stop"):
    """``records`` with the turn's outcome and the last model call's finish reason replaced."""
    out = []
    for r in records:
        if r.kind == "turn.finished":
            r = attrs.evolve(r, attributes={**r.attributes, "outcome": outcome})
        elif r.kind == "model_call.completed" and r.span_id.endswith("m2#2"):
            r = attrs.evolve(r, attributes={**r.attributes, "finish_reason": finish_reason})
        out.append(r)
    return out


def test_normal_stops_are_amber_and_error_stops_red(tmp_path, make_turn):
    capped = finish_as(
        make_turn("s1", "tcap", 1000.0), {"type": "stopped", "reason": "max_output_tokens", "detail": "hit the cap"},
        finish_reason="length",
    )
    failed = finish_as(
        make_turn("s1", "tfail", 1001.0), {"type": "stopped", "reason": "tool_failure", "detail": "lookup crashed"}
    )
    view = build_view(load_trace(write_trace(tmp_path / "t.jsonl", capped + failed)))
    cap_turn, fail_turn = view.sessions[0].turns
    assert (cap_turn.status, cap_turn.error, cap_turn.note) == ("stop", None, "hit the cap")
    assert (fail_turn.status, fail_turn.error, fail_turn.note) == ("error", "lookup crashed", "")
    page = parse(render_html(view))
    rows = rows_by_span(page)
    assert "status-stop" in rows["tcap"]["classes"] and "status-error" not in rows["tcap"]["classes"]
    assert rows["tcap"]["cells"]["info"] == "stopped: max_output_tokens · hit the cap · 240 in · 28 out"
    assert rows["tcap:m2#2"]["attrs"]["data-status"] == "stop"  # finish reason "length"
    assert "status-error" in rows["tfail"]["classes"]
    assert rows["tfail"]["cells"]["info"].startswith("stopped: tool_failure · lookup crashed")
    # the session's start-up ends at the first model call of its first turn; only one per session
    assert [r["attrs"]["data-span-id"] for r in page.rows if r["attrs"]["data-kind"] == "phase"] == [
        "s1:start-up", "tcap:prepare", "tfail:prepare",
    ]


def test_no_start_up_without_session_opened_and_no_tiny_prepare(tmp_path, make_turn):
    records = [r for r in make_turn() if r.kind != "session.opened"]
    records = [  # the first model call starts 0.5 ms after the turn: no prepare row
        attrs.evolve(r, time_s=1000 + 1 / 64 + 0.0005) if r.kind == "model_call.started" and r.span_id == "t1:m1#1"
        else r
        for r in records
    ]
    view = build_view(load_trace(write_trace(tmp_path / "t.jsonl", records)))
    assert view.sessions[0].startup is None
    assert [c.kind for c in view.sessions[0].turns[0].calls] == ["model_call", "tool_call", "model_call", "model_call"]


def test_the_viewer_redacts_files_written_by_others(tmp_path):
    lines = [
        {"v": 1, "kind": "turn.started", "time_s": 1.0, "session_id": "s", "turn_id": "t", "span_id": "t",
         "attributes": {"model": "m"}},
        {"v": 1, "kind": "tool_call.started", "time_s": 1.5, "session_id": "s", "turn_id": "t", "span_id": "t:t:c",
         "attributes": {"tool": "login", "arguments": '{"user": "ann", "password": "hunter2"}'}},
        {"v": 1, "kind": "tool_call.completed", "time_s": 1.75, "session_id": "s", "turn_id": "t", "span_id": "t:t:c",
         "attributes": {"tool": "login", "output": "ok, Authorization: Bearer abcdef123456", "is_error": False}},
    ]
    path = tmp_path / "foreign.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    html = render_html(build_view(load_trace(path)))
    assert "hunter2" not in html and "abcdef123456" not in html
    page = parse(html)
    tool = page.data()[int(rows_by_span(page)["t:t:c"]["attrs"]["data-row"])]["data"]
    assert tool["arguments"] == {"user": "ann", "password": "[redacted]"}


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
