"""What the ``lash`` CLI prints: the ``--json`` shapes, one-line errors, tables, and the live
view of a streaming turn (prose to stdout, everything else dimly to stderr).

Rule: no command logic here; commands in ``lash_kernel.cli`` decide, this module renders.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from lash_kernel.activity import (
    AssistantProseDelta,
    ErrorReported,
    ModelAttemptReset,
    ReasoningProseDelta,
    RetryStatus,
    ToolCallCompleted,
    ToolCallStarted,
    TurnActivity,
)
from lash_kernel.messages import Message, ReasoningPart, ToolResultPart
from lash_kernel.outcomes import Finished, Outcome, Stopped, outcome_json
from lash_kernel.runtime.session import TurnResult
from lash_kernel.store.base import SessionInfo
from lash_kernel.usage import BUCKETS, TokenUsage, UsageReport

# ------------------------------------------------------------------------------- JSON shapes


def _outcome_dict(outcome: Outcome) -> dict[str, str]:
    return {**outcome_json(outcome), "text": outcome.text}


def turn_json(result: TurnResult) -> dict[str, Any]:
    """The ``lash run --json`` object for a committed turn.

    Args:
        result: the turn's result.
    Returns:
        ``{session_id, turn_id, outcome: {type, ..., text}, text, usage: {five buckets},
        tool_calls: [{id, name, arguments, output, is_error}]}``; usage in tokens, own plus
        children's.
    """
    return {
        "session_id": result.session_id,
        "turn_id": result.turn_id,
        "outcome": _outcome_dict(result.outcome),
        "text": result.text,
        "usage": result.total_usage().as_dict(),
        "tool_calls": [
            {
                "id": call.id,
                "name": call.name,
                "arguments": call.arguments,
                "output": res.output,
                "is_error": res.is_error,
            }
            for call, res in result.tool_calls
        ],
    }


def _message_json(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "text": message.text}
    reasoning = "".join(p.text for p in message.parts if isinstance(p, ReasoningPart))
    if reasoning:
        out["reasoning"] = reasoning
    if message.tool_calls:
        out["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls]
    results = [p for p in message.parts if isinstance(p, ToolResultPart)]
    if results:
        out["tool_results"] = [
            {"call_id": r.call_id, "name": r.name, "output": r.output, "is_error": r.is_error} for r in results
        ]
    return out


def _session_json(info: SessionInfo, pending: int) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "turns": info.head_revision,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "pending_inputs": pending,
    }


# ------------------------------------------------------------------------------- helpers


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no detail)"


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {_one_line(message)}", err=True)
    raise click.exceptions.Exit(code)


def _err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _out_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = 200  # piped: do not fold table cells at rich's 80-column default
    return console


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _answered(outcome: Outcome) -> bool:
    """True when the model answered: the CLI then exits 0."""
    return isinstance(outcome, Finished) or (isinstance(outcome, Stopped) and outcome.reason == "max_output_tokens")


def _outcome_label(outcome: Outcome) -> str:
    if isinstance(outcome, Finished):
        return "finished"
    return f"stopped ({outcome.reason})"


def _stop_error(outcome: Outcome) -> str:
    assert isinstance(outcome, Stopped)
    detail = f": {outcome.detail}" if outcome.detail else ""
    return f"turn stopped ({outcome.reason}){detail}"


def _tokens(usage: TokenUsage) -> str:
    parts = [f"{usage.input_tokens} in", f"{usage.output_tokens} out"]
    if usage.cache_read_input_tokens:
        parts.append(f"{usage.cache_read_input_tokens} cache read")
    if usage.cache_write_input_tokens:
        parts.append(f"{usage.cache_write_input_tokens} cache write")
    if usage.reasoning_output_tokens:
        parts.append(f"{usage.reasoning_output_tokens} reasoning")
    return "tokens " + ", ".join(parts)


def _summary(result: TurnResult) -> str:
    return f"{_outcome_label(result.outcome)} · {_tokens(result.total_usage())} · session {result.session_id}"


def _short(text: str, limit: int = 200) -> str:
    text = _one_line(text) if text else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_BUCKET_HEADERS = {
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_read_input_tokens": "cache read",
    "cache_write_input_tokens": "cache write",
    "reasoning_output_tokens": "reasoning",
}


def _usage_table(report: UsageReport, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("source")
    table.add_column("model", overflow="fold")
    for bucket in BUCKETS:
        table.add_column(_BUCKET_HEADERS[bucket], justify="right", no_wrap=True)
    table.add_column("calls", justify="right", no_wrap=True)
    for (source, model), usage in report.by_source_model.items():
        table.add_row(
            source,
            model,
            *(str(getattr(usage, b)) for b in BUCKETS),
            str(report.calls.get((source, model), 0)),
        )
    if len(report.by_source_model) != 1:
        table.add_section()
        table.add_row(
            "total", "", *(str(getattr(report.total, b)) for b in BUCKETS), str(sum(report.calls.values()))
        )
    return table


# ------------------------------------------------------------------------------- live turns


class _LiveView:
    """Renders a turn's activities as they arrive: prose to stdout, the rest dimly to stderr."""

    def __init__(self, err: Console, *, prose: bool = True, details: bool = True) -> None:
        self.err = err
        self.prose = prose
        self.details = details
        self._prose_open = False  # stdout holds prose not yet ended by a newline
        self._reasoning_open = False

    def __call__(self, activity: TurnActivity) -> None:
        event = activity.event
        if isinstance(event, AssistantProseDelta):
            if self.prose and event.text:
                self._end_reasoning()
                click.echo(event.text, nl=False)
                self._prose_open = not event.text.endswith("\n")
            return
        if not self.details:
            return
        if isinstance(event, ReasoningProseDelta):
            if event.text:
                self.err.print(event.text, style="dim italic", end="", markup=False)
                self._reasoning_open = True
            return
        if isinstance(event, ToolCallStarted):
            self._line(f"→ {event.name}({_short(event.arguments)})", "dim")
        elif isinstance(event, ToolCallCompleted):
            mark = "✗" if event.is_error else "←"
            style = "dim red" if event.is_error else "dim"
            self._line(f"{mark} {event.name} ({event.duration_s:.2f}s): {_short(event.output)}", style)
        elif isinstance(event, RetryStatus):
            attempt = f"attempt {event.attempt}/{event.max_attempts}"
            self._line(f"retrying in {event.wait_s:.1f}s ({attempt}): {_short(event.reason)}", "dim yellow")
        elif isinstance(event, ModelAttemptReset):
            self._line("(the failed attempt's partial output above is discarded)", "dim yellow")
        elif isinstance(event, ErrorReported) and event.kind != "provider":
            # provider failures end the turn and are reported once, as the stop reason
            self._line(f"warning ({event.kind}): {_short(event.message)}", "dim yellow")

    def _end_reasoning(self) -> None:
        if self._reasoning_open:
            self.err.print()
            self._reasoning_open = False

    def _line(self, text: str, style: str) -> None:
        self.end()
        self.err.print(text, style=style, markup=False)

    def end(self) -> None:
        """Close any open line (prose on stdout, reasoning on stderr)."""
        self._end_reasoning()
        if self._prose_open:
            click.echo()
            self._prose_open = False
