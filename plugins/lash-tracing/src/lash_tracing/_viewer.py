"""The HTML trace viewer: a JSONL trace file becomes one self-contained HTML timeline.

Rule: pure functions plus one file read; standard library and attrs only. The page has inline CSS and
JS and no external URL. Layout: sessions -> turns -> model calls and tool calls, each a table
row with its start offset (turns: from the session's first record; calls: from their turn's
start), duration, the five token buckets, finish reason / outcome and error. Rows carry
``data-*`` attributes with the exact numbers (``data-start-ms``, ``data-duration-ms``,
``data-input-tokens`` ...), so the page is machine-checkable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from html import escape
from pathlib import Path
from typing import Any, Literal

import attrs

from lash_kernel.plugin import TRACE_SCHEMA_VERSION
from lash_tracing._schema import USAGE_BUCKETS, usage_buckets

__all__ = ["CallRow", "SessionView", "TraceFileError", "TraceView", "TurnView", "build_view", "load_trace", "render_html"]

_DETAIL_CHARS = 300


class TraceFileError(ValueError):
    """A trace file cannot be read: missing, unreadable, not JSONL, or a newer schema.

    The message is one line and names the file (and the line number, when one line is bad).
    """


@attrs.frozen(kw_only=True)
class CallRow:
    """One model call attempt or tool call of a turn.

    Attributes:
        kind: ``model_call`` or ``tool_call``.
        span_id: the record's span id.
        name: display name (``chat gpt-4o (attempt 1)``, ``tool lookup``).
        start_offset_s: seconds from the turn's start.
        duration_s: seconds; None when the call never ended in the file.
        usage: the five token buckets (zeros for tool calls).
        finish_reason: the model's finish reason, or None.
        error: error text (failed model call, tool error output, ``error`` records), or None.
        detail: short extra text (tool arguments -> output, response id), possibly truncated.
    """

    kind: Literal["model_call", "tool_call"]
    span_id: str
    name: str
    start_offset_s: float
    duration_s: float | None
    usage: Mapping[str, int]
    finish_reason: str | None = None
    error: str | None = None
    detail: str = ""


@attrs.frozen(kw_only=True)
class TurnView:
    """One turn and its calls, in start order.

    Attributes:
        turn_id: the turn.
        start_s: wall-clock start, seconds since the epoch.
        start_offset_s: seconds from the session's first record.
        duration_s: seconds; None when the turn never finished in the file.
        model: the model named by ``turn.started`` ("" if unknown).
        outcome: ``finished``, ``stopped: <reason>``, or ``incomplete``.
        usage: the turn's five token buckets (from ``turn.finished``).
        error: stop detail or ``error`` records, or None.
        calls: model and tool call rows.
    """

    turn_id: str
    start_s: float
    start_offset_s: float
    duration_s: float | None
    model: str
    outcome: str
    usage: Mapping[str, int]
    error: str | None
    calls: tuple[CallRow, ...]


@attrs.frozen(kw_only=True)
class SessionView:
    """One session's turns, in start order.

    Attributes:
        session_id: the session ("" for records outside any session).
        start_s: time of the session's first record, seconds since the epoch.
        turns: its turns.
    """

    session_id: str
    start_s: float
    turns: tuple[TurnView, ...]


@attrs.frozen(kw_only=True)
class TraceView:
    """A whole trace file, ready to render.

    Attributes:
        sessions: sessions in order of first appearance.
        record_count: number of records read.
    """

    sessions: tuple[SessionView, ...]
    record_count: int


# ------------------------------------------------------------------------------ reading
def load_trace(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate a JSONL trace file.

    Args:
        path: the file written by the JSONL sink.
    Returns:
        The records as dicts, in file order (blank lines skipped).
    Raises:
        TraceFileError: the file is missing or unreadable, a line is not valid UTF-8/JSON or
            not a trace record, or a record has a schema version newer than
            ``TRACE_SCHEMA_VERSION``.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise TraceFileError(f"{p}: no such trace file") from None
    except IsADirectoryError:
        raise TraceFileError(f"{p}: is a directory, not a trace file") from None
    except OSError as exc:
        raise TraceFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
    records: list[dict[str, Any]] = []
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise TraceFileError(f"{p}:{number}: not UTF-8 text") from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TraceFileError(f"{p}:{number}: not a JSON line ({exc.msg})") from None
        except RecursionError:
            raise TraceFileError(f"{p}:{number}: not a trace record (nested too deeply)") from None
        records.append(_check_record(obj, p, number))
    return records


def _check_record(obj: Any, path: Path, number: int) -> dict[str, Any]:
    where = f"{path}:{number}"
    if not isinstance(obj, dict):
        raise TraceFileError(f"{where}: not a trace record (expected a JSON object)")
    version = obj.get("v")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TraceFileError(f"{where}: not a trace record (no schema version 'v')")
    if version > TRACE_SCHEMA_VERSION:
        raise TraceFileError(
            f"{where}: written with trace schema v{version}, newer than this lash-tracing reads "
            f"(v{TRACE_SCHEMA_VERSION}); upgrade lash-tracing"
        )
    time_s = obj.get("time_s")
    if not isinstance(obj.get("kind"), str) or not isinstance(obj.get("span_id"), str):
        raise TraceFileError(f"{where}: not a trace record (missing 'kind' or 'span_id')")
    if not isinstance(time_s, int | float) or isinstance(time_s, bool) or not math.isfinite(time_s):
        raise TraceFileError(f"{where}: not a trace record ('time_s' is not a number)")
    if not isinstance(obj.get("attributes", {}), dict):
        raise TraceFileError(f"{where}: not a trace record ('attributes' is not an object)")
    obj.setdefault("attributes", {})
    return obj


# ------------------------------------------------------------------------------ building
def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + "…"


def _duration(start: Mapping[str, Any] | None, end: Mapping[str, Any] | None) -> float | None:
    if end is None:
        return None
    d = _num(end["attributes"].get("duration_s"))
    if d is not None:
        return d
    return max(0.0, end["time_s"] - start["time_s"]) if start is not None else None


def build_view(records: Iterable[Mapping[str, Any]]) -> TraceView:
    """Group validated records (``load_trace``) into sessions, turns and calls.

    Durations come from the closing record's ``duration_s`` (monotonic clock) and fall back to
    the difference of ``time_s``. Unknown record kinds are ignored.

    Args:
        records: trace records as dicts, in file order.
    Returns:
        The ``TraceView``.
    """
    records = list(records)
    session_order: dict[str, float] = {}
    turns: dict[str, list[Mapping[str, Any]]] = {}
    turn_session: dict[str, str] = {}
    for r in records:
        sid = r.get("session_id") or ""
        session_order.setdefault(sid, r["time_s"])
        session_order[sid] = min(session_order[sid], r["time_s"])
        tid = r.get("turn_id")
        if tid:
            turns.setdefault(tid, []).append(r)
            turn_session.setdefault(tid, sid)
    by_session: dict[str, list[TurnView]] = {sid: [] for sid in session_order}
    for tid, trs in turns.items():
        sid = turn_session[tid]
        by_session[sid].append(_build_turn(tid, trs, session_order[sid]))
    sessions = tuple(
        SessionView(session_id=sid, start_s=start, turns=tuple(sorted(by_session[sid], key=lambda t: t.start_s)))
        for sid, start in session_order.items()
        if by_session[sid]
    )
    return TraceView(sessions=sessions, record_count=len(records))


def _build_turn(turn_id: str, records: list[Mapping[str, Any]], session_start: float) -> TurnView:
    started = finished = None
    spans: dict[str, dict[str, Any]] = {}
    turn_errors: list[str] = []
    for r in records:
        kind, span_id = r["kind"], r["span_id"]
        if kind == "turn.started":
            started = r
        elif kind == "turn.finished":
            finished = r
        elif kind in ("model_call.started", "tool_call.started"):
            spans.setdefault(span_id, {"errors": []})["start"] = r
        elif kind in ("model_call.completed", "model_call.failed", "tool_call.completed"):
            spans.setdefault(span_id, {"errors": []})["end"] = r
        elif kind == "error":
            msg = f"{r['attributes'].get('kind', 'error')}: {r['attributes'].get('message', '')}"
            if span_id in spans:
                spans[span_id]["errors"].append(msg)
            else:
                turn_errors.append(msg)
    start_s = started["time_s"] if started is not None else min(r["time_s"] for r in records)
    calls = [_build_call(data, start_s) for data in spans.values() if "start" in data]
    calls.sort(key=lambda c: c.start_offset_s)
    model = str(started["attributes"].get("model") or "") if started is not None else ""
    if finished is None:
        outcome, usage = "incomplete", usage_buckets(None)
    else:
        fa = finished["attributes"]
        oc = fa.get("outcome") if isinstance(fa.get("outcome"), Mapping) else {}
        outcome = str(oc.get("type", "?"))
        if oc.get("reason"):
            outcome += f": {oc['reason']}"
            if oc.get("detail"):
                turn_errors.insert(0, str(oc["detail"]))
        usage = usage_buckets(fa.get("usage"))
    return TurnView(
        turn_id=turn_id,
        start_s=start_s,
        start_offset_s=start_s - session_start,
        duration_s=_duration(started, finished) if finished is not None else None,
        model=model,
        outcome=outcome,
        usage=usage,
        error="; ".join(turn_errors) or None,
        calls=tuple(calls),
    )


def _build_call(data: dict[str, Any], turn_start: float) -> CallRow:
    start, end = data["start"], data.get("end")
    sa = start["attributes"]
    ea = end["attributes"] if end is not None else {}
    errors = list(data["errors"])
    finish = None
    detail = ""
    if start["kind"] == "model_call.started":
        kind: Literal["model_call", "tool_call"] = "model_call"
        name = f"chat {sa.get('model') or '?'}"
        if sa.get("attempt") is not None:
            name += f" (attempt {sa['attempt']})"
        usage = usage_buckets(ea.get("usage"))
        if end is not None and end["kind"] == "model_call.completed":
            finish = ea.get("finish_reason")
            detail = " ".join(str(x) for x in (ea.get("response_model"), ea.get("response_id")) if x)
        elif end is not None:
            status = ea.get("status")
            errors.insert(0, (f"HTTP {status}: " if status else "") + str(ea.get("error") or "failed"))
    else:
        kind = "tool_call"
        name = f"tool {sa.get('tool') or '?'}"
        usage = usage_buckets(None)
        args, output = sa.get("arguments"), ea.get("output")
        detail = _short(f"{args if isinstance(args, str) else ''} → {output if isinstance(output, str) else ''}")
        if ea.get("is_error"):
            errors.insert(0, _short(str(output or "tool error")))
    return CallRow(
        kind=kind,
        span_id=start["span_id"],
        name=name,
        start_offset_s=start["time_s"] - turn_start,
        duration_s=_duration(start, end),
        usage=usage,
        finish_reason=str(finish) if finish else None,
        error="; ".join(errors) or None,
        detail=detail,
    )


# ------------------------------------------------------------------------------ rendering
_CSS = """
:root{--fg:#1d1f21;--muted:#6a737d;--line:#e1e4e8;--turn:#5b6ee1;--model:#2da44e;--tool:#d4a72c;--err:#cf222e}
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;color:var(--fg);margin:24px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.summary{color:var(--muted);margin:0 0 16px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top;white-space:nowrap}
th{font-weight:600;background:#f6f8fa;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.detail{white-space:normal;max-width:28em;color:var(--muted);font-size:12px;word-break:break-word}
td.error{white-space:normal;max-width:24em;color:var(--err);word-break:break-word}
tr.turn{background:#f3f4fd;font-weight:600}
tr.model_call td.name,tr.tool_call td.name{padding-left:28px}
tr.collapsed-child{display:none}
button.toggle{border:0;background:none;cursor:pointer;font:inherit;padding:0 4px 0 0}
td.bar-cell{width:22%;min-width:120px;position:relative}
.bar{height:10px;border-radius:2px;margin-top:4px;min-width:2px}
tr.turn .bar{background:var(--turn)} tr.model_call .bar{background:var(--model)} tr.tool_call .bar{background:var(--tool)}
tr.has-error .bar{background:var(--err)}
"""

_JS = """
document.querySelectorAll('button.toggle').forEach(function(b){
  b.addEventListener('click',function(){
    var id=b.getAttribute('data-turn');var open=b.textContent==='▾';
    b.textContent=open?'▸':'▾';
    document.querySelectorAll('tr[data-parent="'+CSS.escape(id)+'"]').forEach(function(r){
      r.classList.toggle('collapsed-child',open);});
  });
});
"""

_HEAD = (
    "<th>span</th><th>start</th><th>duration</th><th>input</th><th>output</th><th>cache read</th>"
    "<th>cache write</th><th>reasoning</th><th>finish / outcome</th><th>error</th><th>detail</th><th>timeline</th>"
)


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds >= 10:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms"


def _attr(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.3f}"


def _bar(offset: float, duration: float | None, scale: float) -> str:
    if scale <= 0:
        left, width = 0.0, 100.0
    else:
        left = min(100.0, max(0.0, offset / scale * 100))
        width = min(100.0 - left, max(0.0, (duration or 0.0) / scale * 100))
    return f'<div class="bar" style="margin-left:{left:.2f}%;width:{width:.2f}%"></div>'


def _row(
    *,
    kind: str,
    span_id: str,
    turn_id: str,
    name_html: str,
    offset: float,
    duration: float | None,
    usage: Mapping[str, int],
    finish: str | None,
    error: str | None,
    detail: str,
    scale_offset: float,
    scale: float,
) -> str:
    classes = f"span {kind}" + (" has-error" if error else "")
    data = [
        f'data-kind="{kind}"',
        f'data-span-id="{escape(span_id)}"',
        f'data-turn-id="{escape(turn_id)}"',
        f'data-start-ms="{_attr(offset)}"',
        f'data-duration-ms="{_attr(duration)}"',
    ]
    if kind != "turn":
        data.append(f'data-parent="{escape(turn_id)}"')
    data += [f'data-{b.replace("_", "-")}="{usage[b]}"' for b in USAGE_BUCKETS]
    cells = [
        f'<td class="name">{name_html}</td>',
        f'<td class="num start">+{_ms(offset)}</td>',
        f'<td class="num duration">{_ms(duration)}</td>',
        *(f'<td class="num {b}">{usage[b]:,}</td>' for b in USAGE_BUCKETS),
        f'<td class="finish">{escape(finish or "")}</td>',
        f'<td class="error">{escape(error or "")}</td>',
        f'<td class="detail">{escape(detail)}</td>',
        f'<td class="bar-cell">{_bar(scale_offset, duration, scale)}</td>',
    ]
    return f'<tr class="{classes}" {" ".join(data)}>{"".join(cells)}</tr>'


def render_html(view: TraceView, *, title: str = "lash trace") -> str:
    """Render ``view`` as one self-contained HTML page (inline CSS/JS, no external URLs).

    Args:
        view: from ``build_view``.
        title: page title (e.g. the trace file's name).
    Returns:
        The HTML document.
    """
    turn_count = sum(len(s.turns) for s in view.sessions)
    call_counts = {"model_call": 0, "tool_call": 0}
    for s in view.sessions:
        for t in s.turns:
            for c in t.calls:
                call_counts[c.kind] += 1
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="summary">{len(view.sessions)} session(s), {turn_count} turn(s), '
        f'{call_counts["model_call"]} model call(s), {call_counts["tool_call"]} tool call(s), '
        f"{view.record_count} record(s)</p>",
    ]
    if not view.sessions:
        out.append('<p class="empty">No turns in this trace.</p>')
    for s in view.sessions:
        label = s.session_id or "(no session)"
        span_end = max(
            (t.start_offset_s + (t.duration_s or max((c.start_offset_s + (c.duration_s or 0) for c in t.calls), default=0)))
            for t in s.turns
        )
        out.append(f'<section class="session" data-session-id="{escape(s.session_id)}">')
        out.append(f"<h2>Session {escape(label)}</h2>")
        out.append(f"<table><thead><tr>{_HEAD}</tr></thead><tbody>")
        for t in s.turns:
            toggle = f'<button class="toggle" data-turn="{escape(t.turn_id)}" title="collapse">▾</button>'
            out.append(
                _row(
                    kind="turn",
                    span_id=t.turn_id,
                    turn_id=t.turn_id,
                    name_html=f"{toggle}turn {escape(t.turn_id)}" + (f" · {escape(t.model)}" if t.model else ""),
                    offset=t.start_offset_s,
                    duration=t.duration_s,
                    usage=t.usage,
                    finish=t.outcome,
                    error=t.error,
                    detail="",
                    scale_offset=t.start_offset_s,
                    scale=span_end,
                )
            )
            turn_scale = t.duration_s or max((c.start_offset_s + (c.duration_s or 0) for c in t.calls), default=0)
            for c in t.calls:
                out.append(
                    _row(
                        kind=c.kind,
                        span_id=c.span_id,
                        turn_id=t.turn_id,
                        name_html=escape(c.name),
                        offset=c.start_offset_s,
                        duration=c.duration_s,
                        usage=c.usage,
                        finish=c.finish_reason,
                        error=c.error,
                        detail=c.detail,
                        scale_offset=c.start_offset_s,
                        scale=turn_scale,
                    )
                )
        out.append("</tbody></table></section>")
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out)
