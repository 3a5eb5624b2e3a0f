"""The HTML trace viewer: a JSONL trace file becomes one self-contained HTML waterfall.

Rule: pure functions plus one file read; standard library and attrs only. The page has inline
CSS and JS and no external URL, and every value from the trace is escaped (HTML attributes and
text through ``html.escape``; the detail data as JSON inside a ``<script type="application/json">``
with ``<``, ``>`` and ``&`` as ``\\u`` escapes; the page's JS writes it with ``textContent``).

Layout: one waterfall per session, a time axis on top. Rows, in order: the session's
``start-up`` phase (session open -> first model call, when the trace has ``session.opened``),
then each turn followed by its children: a ``prepare`` phase (turn start -> first model call:
tool listing, which includes connecting MCP servers, context and prompt; shown when it lasts
1 ms or more), every model call attempt (a retry is its own row) and every tool call, by start
time. Each row is a ``<div class="row span ...">`` with ``data-*`` attributes holding the exact numbers
(``data-start-ms``: turns from the session's first record, children from their turn's start;
``data-offset-ms``: from the session's first record; ``data-duration-ms``; the five token
buckets), so the page is machine-checkable. Colours follow ``data-status``: ``error`` (red:
failed model call, tool error, a turn stopped for a reason in ``ERROR_STOP_REASONS``),
``stop`` (amber: a normal stop such as ``max_output_tokens``, ``max_turns``, a ``length`` /
``content_filter`` finish, a cancellation), ``open`` (never ended in the file) and ``ok``.
Clicking a row shows its arguments, result, usage and error as formatted JSON in the detail
pane; the toolbar filters rows by session, turn, kind and status and searches their text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from html import escape
from pathlib import Path
from typing import Any, Literal, TypeAlias

import attrs

from lash_kernel.plugin import TRACE_SCHEMA_VERSION
from lash_tracing._redact import redact
from lash_tracing._schema import ERROR_STOP_REASONS, USAGE_BUCKETS, usage_buckets

__all__ = [
    "CallRow",
    "SessionView",
    "SpanStatus",
    "TraceFileError",
    "TraceView",
    "TurnView",
    "build_view",
    "load_trace",
    "render_html",
]

_DETAIL_CHARS = 300
#: A turn's prepare phase gets a row only when it lasts at least this long (seconds).
_MIN_PHASE_S = 0.001

#: A span's colour class: ``ok``, ``stop`` (a normal stop, not an error), ``error``, ``open``.
SpanStatus: TypeAlias = Literal["ok", "stop", "error", "open"]

#: Model finish reasons that are normal stops rather than successes (amber, not red).
_STOP_FINISHES = frozenset({"length", "content_filter", "pause"})


class TraceFileError(ValueError):
    """A trace file cannot be read: missing, unreadable, not JSONL, or a newer schema.

    The message is one line and names the file (and the line number, when one line is bad).
    """


@attrs.frozen(kw_only=True)
class CallRow:
    """One row under a turn (a model call attempt, a tool call or a phase) or a session phase.

    Attributes:
        kind: ``model_call``, ``tool_call`` or ``phase`` (``prepare`` under a turn,
            ``start-up`` at session level: derived from record times, not recorded spans).
        span_id: the record's span id (phases: ``<turn>:prepare`` / ``<session>:start-up``).
        name: display name (``chat gpt-4o · attempt 2 (retry)``, ``tool lookup``).
        start_offset_s: seconds from the turn's start (session phases: from the session's
            first record).
        duration_s: seconds; None when the call never ended in the file.
        usage: the five token buckets (zeros for tool calls and phases).
        finish_reason: the model's finish reason, or None.
        error: error text (failed model call, tool error output, ``error`` records), or None.
        detail: short one-line summary (tool arguments -> output, response id), possibly
            truncated.
        status: the colour class (see ``SpanStatus``).
        attempt: the model call attempt (1-based), or None.
        data: what the detail pane shows, JSON-ready and redacted: for a tool call
            ``arguments`` (parsed when JSON) and ``result``; for a model call ``request``,
            ``response``; ``usage`` and ``error`` where there are any.
    """

    kind: Literal["model_call", "tool_call", "phase"]
    span_id: str
    name: str
    start_offset_s: float
    duration_s: float | None
    usage: Mapping[str, int]
    finish_reason: str | None = None
    error: str | None = None
    detail: str = ""
    status: SpanStatus = "ok"
    attempt: int | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class TurnView:
    """One turn and its rows, in start order.

    Attributes:
        turn_id: the turn.
        start_s: wall-clock start, seconds since the epoch.
        start_offset_s: seconds from the session's first record.
        duration_s: seconds; None when the turn never finished in the file.
        model: the model named by ``turn.started`` ("" if unknown).
        outcome: ``finished``, ``stopped: <reason>``, or ``incomplete``.
        usage: the turn's five token buckets (from ``turn.finished``).
        error: the stop detail of an error stop and ``error`` records, or None.
        calls: the ``prepare`` phase, model call attempts and tool calls, by start time.
        status: the colour class: ``error`` for a stop reason in ``ERROR_STOP_REASONS``,
            ``stop`` for other stops (``max_output_tokens`` ...), ``open`` when unfinished.
        note: the stop detail of a normal stop ("" when none).
        data: what the detail pane shows (``request``, ``prompt``, ``outcome``, ``usage``,
            ``usage_rows``, ``error``), JSON-ready and redacted.
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
    status: SpanStatus = "ok"
    note: str = ""
    data: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class SessionView:
    """One session's turns, in start order.

    Attributes:
        session_id: the session ("" for records outside any session).
        start_s: time of the session's first record, seconds since the epoch.
        turns: its turns.
        startup: the ``start-up`` phase (``session.opened`` -> the first model call), or None
            when the file has no ``session.opened`` or no model call for the session.
    """

    session_id: str
    start_s: float
    turns: tuple[TurnView, ...]
    startup: CallRow | None = None


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


def _pick(attributes: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: attributes[k] for k in keys if k in attributes}


def _maybe_json(text: Any) -> Any:
    """``text`` parsed when it is a JSON object or array (tool arguments and results), else as is."""
    if isinstance(text, str) and text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return text
    return text


def _has_usage(usage: Mapping[str, int]) -> bool:
    return any(usage.values())


def build_view(records: Iterable[Mapping[str, Any]]) -> TraceView:
    """Group validated records (``load_trace``) into sessions, turns and calls.

    Durations come from the closing record's ``duration_s`` (monotonic clock) and fall back to
    the difference of ``time_s``. Unknown record kinds are ignored. Attributes shown in the
    detail pane are redacted again (``lash_tracing.redact``), whoever wrote the file.

    Args:
        records: trace records as dicts, in file order.
    Returns:
        The ``TraceView``.
    """
    records = list(records)
    session_order: dict[str, float] = {}
    opened: dict[str, Mapping[str, Any]] = {}
    turns: dict[str, list[Mapping[str, Any]]] = {}
    turn_session: dict[str, str] = {}
    for r in records:
        sid = r.get("session_id") or ""
        session_order.setdefault(sid, r["time_s"])
        session_order[sid] = min(session_order[sid], r["time_s"])
        if r["kind"] == "session.opened":
            opened.setdefault(sid, r)
        tid = r.get("turn_id")
        if tid:
            turns.setdefault(tid, []).append(r)
            turn_session.setdefault(tid, sid)
    by_session: dict[str, list[TurnView]] = {sid: [] for sid in session_order}
    for tid, trs in turns.items():
        sid = turn_session[tid]
        by_session[sid].append(_build_turn(tid, trs, session_order[sid]))
    sessions = []
    for sid, start in session_order.items():
        if not by_session[sid]:
            continue
        session_turns = tuple(sorted(by_session[sid], key=lambda t: t.start_s))
        sessions.append(
            SessionView(
                session_id=sid,
                start_s=start,
                turns=session_turns,
                startup=_startup(sid, opened.get(sid), session_turns, start),
            )
        )
    return TraceView(sessions=tuple(sessions), record_count=len(records))


def _startup(
    session_id: str, opened: Mapping[str, Any] | None, turns: tuple[TurnView, ...], session_start: float
) -> CallRow | None:
    """The session's start-up phase: ``session.opened`` -> its first model call."""
    if opened is None:
        return None
    first_call = min(
        (t.start_offset_s + c.start_offset_s for t in turns for c in t.calls if c.kind == "model_call"), default=None
    )
    if first_call is None:
        return None
    begin = opened["time_s"] - session_start
    duration = max(0.0, first_call - begin)
    return CallRow(
        kind="phase",
        span_id=f"{session_id}:start-up",
        name="start-up (session open → 1st model call)",
        start_offset_s=begin,
        duration_s=duration,
        usage=usage_buckets(None),
        detail="session open, tool listing (MCP server connections), context and prompt, before the first model call",
        data={
            "phase": "start-up",
            "about": "Derived from record times: from session.opened to the first model_call.started of the "
            "session. It includes the wait before the first turn, listing tools (connecting MCP servers) "
            "and building the prompt.",
            "session_opened": redact(opened["attributes"]),
        },
    )


def _build_turn(turn_id: str, records: list[Mapping[str, Any]], session_start: float) -> TurnView:
    started = finished = prompt = None
    spans: dict[str, dict[str, Any]] = {}
    turn_errors: list[str] = []
    usage_rows: list[Any] = []
    for r in records:
        kind, span_id = r["kind"], r["span_id"]
        if kind == "turn.started":
            started = r
        elif kind == "turn.finished":
            finished = r
        elif kind == "prompt.built":
            prompt = r
        elif kind == "usage":
            usage_rows.append(redact(r["attributes"]))
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
    first_model = next((c for c in calls if c.kind == "model_call"), None)
    if started is not None and first_model is not None and first_model.start_offset_s >= _MIN_PHASE_S:
        calls.insert(0, _prepare(turn_id, first_model.start_offset_s, prompt))
    sa = started["attributes"] if started is not None else {}
    model = str(sa.get("model") or "")
    note = ""
    status: SpanStatus = "ok"
    data: dict[str, Any] = {"request": redact(_pick(sa, ("model", "provider", "max_turns")))}
    if prompt is not None:
        data["prompt"] = redact(prompt["attributes"])
    if finished is None:
        outcome, usage, status = "incomplete", usage_buckets(None), "open"
    else:
        fa = finished["attributes"]
        oc = fa.get("outcome") if isinstance(fa.get("outcome"), Mapping) else {}
        outcome = str(oc.get("type", "?"))
        reason = oc.get("reason")
        if reason:
            outcome += f": {reason}"
            if reason in ERROR_STOP_REASONS:
                status = "error"
                if oc.get("detail"):
                    turn_errors.insert(0, str(oc["detail"]))
            else:
                status = "stop"
                note = str(oc.get("detail") or "")
        usage = usage_buckets(fa.get("usage"))
        data["outcome"] = redact(dict(oc))
        data["usage"] = usage
        if usage_rows:
            data["usage_rows"] = usage_rows
    if turn_errors:
        data["error"] = turn_errors
        if status == "ok":
            status = "error"
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
        status=status,
        note=note,
        data=data,
    )


def _prepare(turn_id: str, duration: float, prompt: Mapping[str, Any] | None) -> CallRow:
    """The turn's prepare phase: turn start -> its first model call."""
    return CallRow(
        kind="phase",
        span_id=f"{turn_id}:prepare",
        name="prepare (tools, MCP connect, prompt)",
        start_offset_s=0.0,
        duration_s=duration,
        usage=usage_buckets(None),
        detail="turn start → first model call",
        data={
            "phase": "prepare",
            "about": "Derived from record times: from turn.started to the turn's first model_call.started. "
            "It covers listing the turn's tools (which connects MCP servers on first use), context "
            "transforms and building the prompt.",
            **({"prompt": redact(prompt["attributes"])} if prompt is not None else {}),
        },
    )


_REQUEST_KEYS = (
    "model", "provider", "attempt", "request_id", "message_count", "tool_count", "max_output_tokens", "temperature",
)


def _build_call(data: dict[str, Any], turn_start: float) -> CallRow:
    start, end = data["start"], data.get("end")
    sa = redact(start["attributes"])
    ea = redact(end["attributes"]) if end is not None else {}
    errors = list(data["errors"])
    finish = None
    detail = ""
    attempt = sa.get("attempt") if isinstance(sa.get("attempt"), int) else None
    status: SpanStatus = "open" if end is None else "ok"
    shown: dict[str, Any] = {}
    if start["kind"] == "model_call.started":
        kind: Literal["model_call", "tool_call", "phase"] = "model_call"
        name = f"chat {sa.get('model') or '?'}"
        if attempt is not None and attempt > 1:
            name += f" (attempt {attempt})"
        usage = usage_buckets(ea.get("usage"))
        shown["request"] = _pick(sa, _REQUEST_KEYS)
        if end is not None and end["kind"] == "model_call.completed":
            finish = ea.get("finish_reason")
            detail = " ".join(str(x) for x in (ea.get("response_model"), ea.get("response_id")) if x)
            shown["response"] = _pick(ea, ("finish_reason", "response_model", "response_id", "duration_s"))
            if finish in _STOP_FINISHES:
                status = "stop"
        elif end is not None:
            status_code = ea.get("status")
            errors.insert(0, (f"HTTP {status_code}: " if status_code else "") + str(ea.get("error") or "failed"))
            shown["error"] = _pick(ea, ("error", "error_type", "status", "retryable", "duration_s"))
            status = "stop" if ea.get("error_type") == "cancelled" else "error"
            detail = "retryable" if ea.get("retryable") else ""
        if end is not None:
            shown["usage"] = usage
    else:
        kind = "tool_call"
        name = f"tool {sa.get('tool') or '?'}"
        usage = usage_buckets(None)
        args, output = sa.get("arguments"), ea.get("output")
        detail = _short(f"{args if isinstance(args, str) else ''} → {output if isinstance(output, str) else ''}")
        shown["tool"] = _pick(sa, ("tool", "call_id"))
        shown["arguments"] = _maybe_json(args)
        if end is not None:
            shown["result"] = _maybe_json(output)
            shown["is_error"] = bool(ea.get("is_error"))
        if ea.get("is_error"):
            errors.insert(0, _short(str(output or "tool error")))
            status = "error"
    if errors:
        shown.setdefault("error", {})
        if isinstance(shown["error"], dict):
            shown["error"]["messages"] = errors
        if status == "ok":
            status = "error"
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
        status=status,
        attempt=attempt,
        data=shown,
    )


# ------------------------------------------------------------------------------ rendering
_CSS = """
:root{--fg:#1f2328;--muted:#656d76;--line:#d8dee4;--bg2:#f6f8fa;--sel:#ddf4ff;
--turn:#6e7ce8;--model:#2da44e;--tool:#0969da;--phase:#8c959f;--err:#cf222e;--stop:#d4a72c}
*{box-sizing:border-box}
body{font:13px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);margin:0;padding:12px 16px}
h1{font-size:17px;margin:0;overflow-wrap:anywhere}
.summary{color:var(--muted);margin:2px 0 8px}
.toolbar{display:flex;flex-wrap:wrap;gap:6px 12px;align-items:center;margin:0 0 6px}
.toolbar input[type=search]{flex:1 1 16rem;min-width:0;max-width:28rem;padding:3px 6px;font:inherit}
.toolbar select{max-width:14rem;font:inherit}
.toolbar label{white-space:nowrap}
#count{color:var(--muted)}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;color:var(--muted);font-size:12px;margin:0 0 8px}
.legend i{display:inline-block;width:14px;height:8px;border-radius:2px;margin-right:4px;vertical-align:middle}
.layout{display:grid;grid-template-columns:minmax(0,1fr) clamp(260px,27vw,380px);gap:14px;align-items:start}
@media (max-width:900px){.layout{grid-template-columns:minmax(0,1fr)}}
.waterfall{min-width:0}
.session{margin:0 0 14px;border:1px solid var(--line);border-radius:6px;min-width:0}
.session-head{display:flex;gap:8px;align-items:baseline;padding:5px 8px;background:var(--bg2);
border-bottom:1px solid var(--line);border-radius:6px 6px 0 0;min-width:0}
.session-head h2{font-size:13px;margin:0;flex:1 1 auto;min-width:0;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis}
.session-head .meta{color:var(--muted);white-space:nowrap}
.session-head button,.zoom{font:inherit;font-size:11px;cursor:pointer;background:#fff;border:1px solid var(--line);
border-radius:4px;padding:0 5px}
.row,.axis{display:grid;grid-template-columns:minmax(7rem,16rem) minmax(0,11rem) 4.6rem minmax(6rem,1fr);column-gap:8px;
align-items:center;padding:0 8px;min-width:0}
.axis{height:20px;border-bottom:1px solid var(--line);color:var(--muted);font-size:11px}
.axis .scale{position:relative;height:100%;min-width:0}
.tick{position:absolute;top:3px;white-space:nowrap;border-left:1px solid var(--line);padding-left:2px}
.row{height:22px;cursor:pointer;border-bottom:1px solid #f0f2f4}
.row:hover{background:#f6f8fa}.row.selected{background:var(--sel)}
.row[hidden]{display:none}
.row>span{min-width:0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.name .label{overflow:hidden;text-overflow:ellipsis}
.name{display:flex;align-items:center;gap:2px}
.row.turn{font-weight:600;background:#f8f8fe}
.row.turn.selected{background:var(--sel)}
.row[data-depth="1"] .name{padding-left:1.3rem}
.info{color:var(--muted)}
.status-error .info{color:var(--err)}.status-stop .info{color:#9a6700}
.duration{text-align:right;font-variant-numeric:tabular-nums}
.track{position:relative;height:100%;overflow:hidden}
.bar{position:absolute;top:6px;height:10px;border-radius:2px;min-width:2px;background:var(--phase)}
.turn .bar{background:var(--turn)}.model_call .bar{background:var(--model)}.tool_call .bar{background:var(--tool)}
.phase .bar{background:repeating-linear-gradient(45deg,var(--phase) 0 4px,#b6bcc2 4px 8px)}
.row.status-stop .bar{background:var(--stop)}
.row.status-error .bar{background:var(--err)}
.row.status-open .bar{background:repeating-linear-gradient(45deg,#afb8c1 0 4px,#fff 4px 8px);border:1px dashed #8c959f}
.badge{font-size:10px;font-weight:600;border-radius:3px;padding:0 3px;margin-left:4px;background:#fff8c5;color:#9a6700}
button.toggle{border:0;background:none;cursor:pointer;font:inherit;padding:0 2px;width:1.1rem;flex:none}
.detail{position:sticky;top:8px;max-height:calc(100vh - 16px);overflow:auto;border:1px solid var(--line);
border-radius:6px;padding:8px 10px;min-width:0;background:#fff}
.detail h2{font-size:14px;margin:0 0 6px;overflow-wrap:anywhere}
.detail h3{font-size:12px;margin:10px 0 3px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
.detail dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:1px 10px;margin:0}
.detail dt{color:var(--muted)}.detail dd{margin:0;overflow-wrap:anywhere}
.detail pre{margin:0;padding:6px;background:var(--bg2);border-radius:4px;
font:12px/1.35 ui-monospace,SFMono-Regular,Menlo,monospace;
white-space:pre-wrap;overflow-wrap:anywhere;max-height:45vh;overflow:auto}
.detail .error pre{background:#ffebe9;color:#82071e}
.hint,.empty{color:var(--muted)}
"""

_JS = r"""
(function(){
'use strict';
var DATA=JSON.parse(document.getElementById('trace-data').textContent);
var rows=Array.prototype.slice.call(document.querySelectorAll('.row.span'));
var q=document.getElementById('q'),fs=document.getElementById('f-session'),ft=document.getElementById('f-turn'),
    fst=document.getElementById('f-status'),count=document.getElementById('count'),pane=document.getElementById('detail');
var kinds=Array.prototype.slice.call(document.querySelectorAll('.f-kind'));
var texts=rows.map(function(r){return JSON.stringify(DATA.rows[+r.dataset.row]).toLowerCase();});
function fmt(ms){
  if(ms===null||ms===undefined||isNaN(ms))return '—';if(ms===0)return '0';
  var a=Math.abs(ms);
  if(a<10)return ms.toFixed(2)+' ms';if(a<1000)return ms.toFixed(1)+' ms';
  if(a<60000)return (ms/1000).toFixed(2)+' s';
  return Math.floor(ms/60000)+' m '+((ms%60000)/1000).toFixed(1)+' s';
}
function tickLabel(ms){
  if(ms===0)return '0';if(ms>=1000)return +(ms/1000).toFixed(3)+' s';return +ms.toFixed(3)+' ms';}
function niceStep(span){
  var raw=span/6,p=Math.pow(10,Math.floor(Math.log10(raw||1))),m=raw/p;
  return (m<=1?1:m<=2?2:m<=5?5:10)*p;
}
function layout(sec){
  var lo=+sec.dataset.viewFrom,hi=+sec.dataset.viewTo,span=Math.max(hi-lo,1e-6);
  sec.querySelectorAll('.row.span').forEach(function(r){
    var off=+r.dataset.offsetMs,d=r.dataset.durationMs===''?(hi-off):+r.dataset.durationMs;
    var left=(off-lo)/span*100,width=d/span*100,bar=r.querySelector('.bar');
    if(left<0){width+=left;left=0;}
    bar.style.left=Math.min(left,100).toFixed(3)+'%';bar.style.width=Math.max(0,Math.min(width,100-Math.min(left,100))).toFixed(3)+'%';
  });
  var scale=sec.querySelector('.axis .scale');scale.textContent='';
  var step=niceStep(span);
  for(var t=Math.ceil(lo/step)*step;t<=hi+1e-9;t+=step){
    var pct=(t-lo)/span*100;if(pct>92)break;
    var tick=document.createElement('span');tick.className='tick';tick.style.left=pct.toFixed(3)+'%';
    tick.textContent=tickLabel(t);scale.appendChild(tick);
  }
}
function zoom(sec,from,to){sec.dataset.viewFrom=from;sec.dataset.viewTo=to;layout(sec);
  sec.querySelector('.zoom-reset').hidden=(+from===+sec.dataset.from&&+to===+sec.dataset.to);}
document.querySelectorAll('.session').forEach(function(sec){
  layout(sec);
  sec.querySelector('.zoom-reset').addEventListener('click',function(){zoom(sec,sec.dataset.from,sec.dataset.to);});
});
function apply(){
  var text=q.value.trim().toLowerCase(),s=fs.value,t=ft.value,st=fst.value,shown=0,ks={};
  kinds.forEach(function(k){ks[k.value]=k.checked;});
  Array.prototype.forEach.call(ft.options,function(o){o.hidden=!!(s&&o.value&&o.dataset.session!==s);});
  rows.forEach(function(r,i){
    var ok=(!s||r.dataset.sessionId===s)&&(!t||r.dataset.turnId===t)&&ks[r.dataset.kind]&&(!st||r.dataset.status===st)
      &&(!text||texts[i].indexOf(text)>=0);
    var parent=r.dataset.parentRow?document.querySelector('.row[data-row="'+r.dataset.parentRow+'"]'):null;
    if(ok&&!text&&parent&&parent.classList.contains('collapsed'))ok=false;
    r.hidden=!ok;if(ok)shown++;
  });
  document.querySelectorAll('.session').forEach(function(sec){
    sec.hidden=!sec.querySelector('.row.span:not([hidden])');});
  count.textContent=shown+' of '+rows.length+' spans';
}
function el(tag,cls,text){
  var e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined)e.textContent=text;return e;}
function show(r){
  rows.forEach(function(x){x.classList.toggle('selected',x===r);});
  var d=DATA.rows[+r.dataset.row];pane.textContent='';
  pane.appendChild(el('h2',null,d.name));
  var dl=el('dl');
  [['kind',d.kind],['status',d.status],['span',d.span_id],['session',d.session_id],['turn',d.turn_id],
   ['start','+'+fmt(+r.dataset.startMs)+
     (r.dataset.kind==='turn'||!r.dataset.turnId?' from session start':' from turn start')],
   ['duration',r.dataset.durationMs===''?'— (never ended)':fmt(+r.dataset.durationMs)]].forEach(function(p){
    if(p[1]===undefined||p[1]==='')return;dl.appendChild(el('dt',null,p[0]));dl.appendChild(el('dd',null,String(p[1])));});
  pane.appendChild(dl);
  ['arguments','result','error','usage','response','request','outcome','prompt','usage_rows','tool','about','session_opened'].forEach(function(k){
    if(!(k in d.data))return;var sec=el('section',k==='error'?'error':'part');sec.dataset.part=k;
    sec.appendChild(el('h3',null,k.replace('_',' ')));
    var v=d.data[k];sec.appendChild(el('pre','json',typeof v==='string'?v:JSON.stringify(v,null,2)));
    pane.appendChild(sec);
  });
}
rows.forEach(function(r){
  r.addEventListener('click',function(ev){
    if(ev.target.closest('button.toggle')){
      var open=!r.classList.contains('collapsed');r.classList.toggle('collapsed',open);
      ev.target.textContent=open?'▸':'▾';apply();return;}
    if(ev.target.closest('button.zoom')){var sec=r.closest('.session'),o=+r.dataset.offsetMs,
      d=r.dataset.durationMs===''?(+sec.dataset.to-o):+r.dataset.durationMs;zoom(sec,o,o+Math.max(d,1e-3));return;}
    show(r);
  });
  r.addEventListener('keydown',function(ev){if(ev.key==='Enter'||ev.key===' '){ev.preventDefault();show(r);}});
});
[q,fs,ft,fst].forEach(function(x){x.addEventListener('input',apply);x.addEventListener('change',apply);});
kinds.forEach(function(k){k.addEventListener('change',apply);});
apply();
})();
"""

_KINDS = (("turn", "turns"), ("model_call", "model calls"), ("tool_call", "tool calls"), ("phase", "phases"))


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds >= 60:
        return f"{int(seconds // 60)} m {seconds % 60:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.01:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1000:.2f} ms"


def _attr(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.3f}"


def _bar(offset: float, duration: float | None, lo: float, hi: float) -> str:
    span = hi - lo
    if span <= 0:
        left, width = 0.0, 100.0
    else:
        left = min(100.0, max(0.0, (offset - lo) / span * 100))
        end = hi if duration is None else offset + duration
        width = min(100.0 - left, max(0.0, (end - offset) / span * 100))
    return f'<span class="bar" style="left:{left:.3f}%;width:{width:.3f}%"></span>'


def _tokens(usage: Mapping[str, int]) -> str:
    return f"{usage['input_tokens']:,} in · {usage['output_tokens']:,} out" if _has_usage(usage) else ""


def _json_script(value: Any) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` survives (``</script>`` cannot end it)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return (
        text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


class _Page:
    """Accumulates rows (HTML) and their detail data while rendering."""

    def __init__(self) -> None:
        self.html: list[str] = []
        self.data: list[dict[str, Any]] = []

    def row(
        self,
        *,
        kind: str,
        span_id: str,
        session_id: str,
        turn_id: str,
        name: str,
        info: str,
        status: SpanStatus,
        start: float,
        offset: float,
        duration: float | None,
        usage: Mapping[str, int],
        lo: float,
        hi: float,
        data: Mapping[str, Any],
        parent_row: int | None = None,
        badge: str = "",
        title: str = "",
    ) -> int:
        index = len(self.data)
        self.data.append(
            {
                "name": name, "kind": kind, "status": status, "span_id": span_id,
                "session_id": session_id, "turn_id": turn_id, "info": info, "data": data,
            }
        )
        classes = f"row span {kind} status-{status}" + (" retry" if badge == "retry" else "")
        attrs_ = [
            f'data-row="{index}"',
            f'data-kind="{kind}"',
            f'data-status="{status}"',
            f'data-span-id="{escape(span_id)}"',
            f'data-session-id="{escape(session_id)}"',
            f'data-turn-id="{escape(turn_id)}"',
            f'data-depth="{0 if parent_row is None else 1}"',
            f'data-start-ms="{_attr(start)}"',
            f'data-offset-ms="{_attr(offset)}"',
            f'data-duration-ms="{_attr(duration)}"',
            *(f'data-{b.replace("_", "-")}="{usage[b]}"' for b in USAGE_BUCKETS),
        ]
        if parent_row is not None:
            attrs_.append(f'data-parent-row="{parent_row}"')
        lead = ""
        if kind == "turn":
            lead = (
                '<button class="toggle" type="button" title="collapse / expand">▾</button>'
                '<button class="zoom" type="button" title="zoom the time axis to this turn">⤢</button>'
            )
        badge_html = f'<span class="badge">{escape(badge)}</span>' if badge else ""
        tip = escape(title or name)
        self.html.append(
            f'<div class="{classes}" role="row" tabindex="0" {" ".join(attrs_)}>'
            f'<span class="name" title="{tip}">{lead}<span class="label">{escape(name)}</span>{badge_html}</span>'
            f'<span class="info" title="{escape(info)}">{escape(info)}</span>'
            f'<span class="duration">{_ms(duration)}</span>'
            f'<span class="track">{_bar(offset, duration, lo, hi)}</span></div>'
        )
        return index


def _short_id(value: str) -> str:
    """A long id (a 32-hex session or turn id) cut to its first 8 characters for labels."""
    return value if len(value) <= 12 else value[:8] + "…"


def _turn_end(t: TurnView) -> float:
    if t.duration_s is not None:
        return t.start_offset_s + t.duration_s
    return t.start_offset_s + max((c.start_offset_s + (c.duration_s or 0) for c in t.calls), default=0.0)


def _call_info(c: CallRow) -> str:
    if c.kind == "phase":
        return c.detail
    if c.kind == "tool_call":
        result = c.data.get("result")
        if c.error:
            return f"error: {c.error}"
        if result is None:
            return "no result"
        text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
        return _short(text)[:120]
    if c.error:
        return c.error + (" · retryable" if c.detail == "retryable" else "")
    parts = [p for p in (c.finish_reason or ("incomplete" if c.status == "open" else ""), _tokens(c.usage)) if p]
    return " · ".join(parts)


def _render_session(page: _Page, s: SessionView) -> str:
    hi = max([_turn_end(t) for t in s.turns] + [0.0])
    lo = 0.0
    if s.startup is not None:
        lo = min(lo, s.startup.start_offset_s)
    hi = max(hi, lo + 1e-6)
    first = len(page.html)
    if s.startup is not None:
        c = s.startup
        page.row(
            kind="phase", span_id=c.span_id, session_id=s.session_id, turn_id="", name=c.name, info=c.detail,
            status=c.status, start=c.start_offset_s, offset=c.start_offset_s, duration=c.duration_s, usage=c.usage,
            lo=lo, hi=hi, data=c.data,
        )
    for number, t in enumerate(s.turns, 1):
        info = " · ".join(p for p in (t.outcome, t.error or t.note, _tokens(t.usage)) if p)
        label = f"turn {number} · {_short_id(t.turn_id)}"
        turn_row = page.row(
            kind="turn", span_id=t.turn_id, session_id=s.session_id, turn_id=t.turn_id, name=label, info=info,
            status=t.status, start=t.start_offset_s, offset=t.start_offset_s, duration=t.duration_s, usage=t.usage,
            lo=lo, hi=hi, data=t.data, title=f"turn {t.turn_id}" + (f" · {t.model}" if t.model else ""),
        )
        for c in t.calls:
            page.row(
                kind=c.kind, span_id=c.span_id, session_id=s.session_id, turn_id=t.turn_id, name=c.name,
                info=_call_info(c), status=c.status, start=c.start_offset_s, offset=t.start_offset_s + c.start_offset_s,
                duration=c.duration_s, usage=c.usage, lo=lo, hi=hi, data=c.data, parent_row=turn_row,
                badge="retry" if (c.attempt or 0) > 1 else "", title=f"{c.name} — {c.detail}" if c.detail else c.name,
            )
    label = s.session_id or "(no session)"
    errors = sum(
        (t.status == "error") + sum(c.status == "error" for c in t.calls) for t in s.turns
    )
    meta = f"{len(s.turns)} turn(s) · {_ms(hi - lo)}" + (f" · {errors} error(s)" if errors else "")
    return (
        f'<section class="session" data-session-id="{escape(s.session_id)}" data-from="{lo * 1000:.3f}" '
        f'data-to="{hi * 1000:.3f}" data-view-from="{lo * 1000:.3f}" data-view-to="{hi * 1000:.3f}">'
        f'<div class="session-head"><h2 title="Session {escape(label)}">Session {escape(label)}</h2>'
        f'<span class="meta">{escape(meta)}</span>'
        '<button class="zoom-reset" type="button" hidden>whole session</button></div>'
        '<div class="axis" aria-hidden="true"><span>span</span><span>result</span><span>duration</span>'
        '<span class="scale"></span></div>'
        f'<div class="rows" role="rowgroup">{"".join(page.html[first:])}</div></section>'
    )


def render_html(view: TraceView, *, title: str = "lash trace") -> str:
    """Render ``view`` as one self-contained HTML page (inline CSS/JS, no external URLs).

    The page fits a 1280x800 window with no horizontal scrolling: a waterfall per session on
    the left (long names are ellipsized, with the full text as a tooltip), the detail pane on
    the right (below it on narrow windows), and the toolbar above (search; session, turn,
    kind and status filters). Every value from the trace is escaped.

    Args:
        view: from ``build_view``.
        title: page title (e.g. the trace file's name).
    Returns:
        The HTML document.
    """
    turn_count = sum(len(s.turns) for s in view.sessions)
    counts = {"model_call": 0, "tool_call": 0, "phase": 0}
    errors = 0
    for s in view.sessions:
        for t in s.turns:
            errors += t.status == "error"
            for c in t.calls:
                counts[c.kind] += 1
                errors += c.status == "error"
    page = _Page()
    sections = [_render_session(page, s) for s in view.sessions]
    session_opts = "".join(
        f'<option value="{escape(s.session_id)}">{escape(s.session_id or "(no session)")}</option>'
        for s in view.sessions
    )
    turn_opts = "".join(
        f'<option value="{escape(t.turn_id)}" data-session="{escape(s.session_id)}">{escape(t.turn_id)}</option>'
        for s in view.sessions
        for t in s.turns
    )
    kind_boxes = "".join(
        f'<label><input type="checkbox" class="f-kind" value="{k}" checked> {label}</label>' for k, label in _KINDS
    )
    legend = (
        '<i style="background:var(--turn)"></i>turn <i style="background:var(--model)"></i>model call '
        '<i style="background:var(--tool)"></i>tool call <i style="background:var(--phase)"></i>phase '
        '<i style="background:var(--stop)"></i>normal stop (max_output_tokens, max_turns, length…) '
        '<i style="background:var(--err)"></i>error'
    )
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f'<header><h1>{escape(title)}</h1><p class="summary">{len(view.sessions)} session(s), {turn_count} turn(s), '
        f'{counts["model_call"]} model call(s), {counts["tool_call"]} tool call(s), '
        f"{view.record_count} record(s)" + (f", {errors} error(s)" if errors else "") + "</p>",
        '<div class="toolbar" role="search">'
        '<input type="search" id="q" placeholder="search names, ids, arguments, results, errors" aria-label="search">'
        f'<select id="f-session" aria-label="session"><option value="">all sessions</option>{session_opts}</select>'
        f'<select id="f-turn" aria-label="turn"><option value="">all turns</option>{turn_opts}</select>'
        f"{kind_boxes}"
        '<select id="f-status" aria-label="status"><option value="">any status</option>'
        '<option value="error">errors</option><option value="stop">normal stops</option><option value="ok">ok</option>'
        '<option value="open">unfinished</option></select><span id="count"></span></div>',
        f'<div class="legend">{legend}</div></header>',
        '<main class="layout"><div class="waterfall" id="timeline">',
    ]
    if not view.sessions:
        out.append('<p class="empty">No turns in this trace.</p>')
    out.extend(sections)
    out.append(
        '</div><aside class="detail" id="detail" aria-live="polite">'
        '<p class="hint">Click a span to see its arguments, result, usage and error.</p></aside></main>'
    )
    out.append(f'<script type="application/json" id="trace-data">{_json_script({"rows": page.data})}</script>')
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out)
