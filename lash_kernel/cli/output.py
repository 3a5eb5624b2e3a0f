"""What the ``lash`` CLI prints: the ``--json`` shapes, one-line errors, tables, and the live
view of a streaming turn (prose to stdout, everything else dimly to stderr).

Rule: no command logic here; commands in ``lash_kernel.cli`` decide, this module renders.
Everything printed goes through ``valid_text`` first (``echo``, ``one_line``, the live view): model,
tool and user text may hold lone surrogates, which a terminal stream cannot encode.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import click

from lash_kernel.activity import (
    AssistantProseDelta,
    ErrorReported,
    ModelAttemptReset,
    ReasoningProseDelta,
    RetryStatus,
    ToolCallCompleted,
    ToolCallProgress,
    ToolCallStarted,
    TurnActivity,
)
from lash_kernel.config import env_var
from lash_kernel.messages import Message, ReasoningPart, ToolResultPart
from lash_kernel.outcomes import Finished, Outcome, Stopped, outcome_json
from lash_kernel.text import SurrogateJoiner, valid_text
from lash_kernel.usage import BUCKETS, TokenUsage, UsageReport

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from lash_kernel.runtime.session import TurnResult
    from lash_kernel.store.base import SessionInfo

# ------------------------------------------------------------------------------- JSON shapes


def outcome_dict(outcome: Outcome) -> dict[str, Any]:
    """An outcome as JSON: ``outcome_json`` (``{type, ...}``, with ``value`` for a final
    value) plus its ``text``."""
    return {**outcome_json(outcome), "text": outcome.text}


def has_value(outcome: Outcome) -> bool:
    """True when the turn finished with a typed value (``Finished(final_value)``)."""
    return isinstance(outcome, Finished) and outcome.output == "final_value"


def turn_json(result: TurnResult, *, with_value: bool = False) -> dict[str, Any]:
    """The ``lash run --json`` object for a committed turn.

    Args:
        result: the turn's result.
        with_value: add ``value`` (the turn ran with ``--output-schema``).
    Returns:
        ``{session_id, turn_id, outcome: {type, ..., text}, text, usage: {five buckets},
        tool_calls: [{id, name, arguments, output, is_error}]}``; usage in tokens, own plus
        children's. With ``with_value``, also ``value``: the typed value, or null when the
        turn ended without one.
    """
    out = {
        "session_id": result.session_id,
        "turn_id": result.turn_id,
        "outcome": outcome_dict(result.outcome),
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
    if with_value:
        out["value"] = result.value
    return out


def message_json(message: Message) -> dict[str, Any]:
    """A stored message as JSON: ``{role, text, reasoning?, tool_calls?, tool_results?}``."""
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


def session_json(info: SessionInfo, pending: int, *, turns: int | None = None) -> dict[str, Any]:
    """One ``lash sessions list --json`` row.

    Args:
        info: the session's head.
        pending: the number of uncommitted inputs.
        turns: the number of committed turns; None uses the head revision, which counts the
            commits made between turns too (plugin work, a compaction) since 0.2.
    """
    return {
        "session_id": info.session_id,
        "turns": info.head_revision if turns is None else turns,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "pending_inputs": pending,
    }


# ------------------------------------------------------------------------------- printing


def echo(text: str = "", *, nl: bool = True, err: bool = False) -> None:
    """``click.echo`` that never fails on invalid Unicode: lone surrogates become U+FFFD.

    Args:
        text: what to print (model, tool or store text may hold lone surrogates).
        nl: end with a newline.
        err: print to stderr instead of stdout.
    """
    click.echo(valid_text(text), nl=nl, err=err)


def echo_json(obj: Any) -> None:
    """Print ``obj`` as one line of JSON on stdout (non-ASCII kept; invalid Unicode replaced)."""
    echo(json.dumps(obj, ensure_ascii=False))


def one_line(text: str) -> str:
    """``text`` on one line (whitespace runs collapsed), valid Unicode; ``(no detail)`` if empty."""
    return valid_text(" ".join(str(text).split())) or "(no detail)"


def fail(message: str, code: int) -> NoReturn:
    """Print ``error: <message>`` on one stderr line and exit with ``code`` (1 runtime, 2 config)."""
    click.echo(f"error: {one_line(message)}", err=True)
    raise click.exceptions.Exit(code)


def err_console() -> Console:
    """The rich console for stderr (status lines, warnings, reasoning); no highlighting."""
    from rich.console import Console  # rich loads only when a command prints

    return Console(stderr=True, highlight=False, soft_wrap=True)


def out_console() -> Console:
    """The rich console for stdout (tables); 200 columns wide when piped."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal and not os.environ.get(env_var("COLUMNS")):
        console.width = 200  # piped: do not fold table cells at rich's 80-column default
    return console


def when(ts: float) -> str:
    """A timestamp (seconds since the epoch) as local ``YYYY-MM-DD HH:MM:SS``."""
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def answered(outcome: Outcome) -> bool:
    """True when the model answered: the CLI then exits 0."""
    return isinstance(outcome, Finished) or (isinstance(outcome, Stopped) and outcome.reason == "max_output_tokens")


def outcome_label(outcome: Outcome) -> str:
    """``finished`` or ``stopped (<reason>)``."""
    if isinstance(outcome, Finished):
        return "finished"
    return f"stopped ({outcome.reason})"


def stop_error(outcome: Outcome) -> str:
    """The error message for a turn that did not answer: ``turn stopped (<reason>): <detail>``."""
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


def summary(result: TurnResult) -> str:
    """The one-line turn summary printed to stderr: outcome, tokens, session id.

    A turn that stopped before the provider reported any usage (e.g. cancelled mid-stream:
    providers report usage only at the end of a stream) says "usage unknown" instead of zeros.
    """
    usage = result.total_usage()
    tokens = _tokens(usage) if usage != TokenUsage() or answered(result.outcome) else "usage unknown"
    return f"{outcome_label(result.outcome)} · {tokens} · session {result.session_id}"


def cancelled(outcome: Outcome) -> bool:
    """True when the turn was cancelled (Ctrl-C): the CLI says "cancelled" and exits 130."""
    return isinstance(outcome, Stopped) and outcome.reason == "cancelled"


def short(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to ``limit`` characters with a trailing ``…``."""
    text = one_line(text) if text else ""  # valid Unicode
    return text if len(text) <= limit else text[: limit - 1] + "…"


BUCKET_HEADERS = {  # column titles of the five usage buckets
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_read_input_tokens": "cache read",
    "cache_write_input_tokens": "cache write",
    "reasoning_output_tokens": "reasoning",
}


def usage_table(report: UsageReport, title: str) -> Table:
    """A rich table of ``report``: one row per (source, requested model), the five buckets and
    calls, plus a total row when there is not exactly one row. Where the provider reported
    serving another model (a dated snapshot, a local server's file path), it follows the
    requested one, dimmed."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    table.add_column("source")
    table.add_column("model", overflow="fold")
    for bucket in BUCKETS:
        table.add_column(BUCKET_HEADERS[bucket], justify="right", no_wrap=True)
    table.add_column("calls", justify="right", no_wrap=True)
    for (source, model), usage in report.by_source_model.items():
        cell = Text(valid_text(model))
        for served in report.served.get((source, model), ()):
            cell.append(f"\nserved: {valid_text(served)}", style="dim")
        table.add_row(
            source,
            cell,
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


class LiveView:
    """Renders a turn's activities as they arrive: prose to stdout, the rest dimly to stderr.

    Never fails on invalid Unicode: a surrogate pair split across two deltas is joined
    (``SurrogateJoiner``) and a lone surrogate is printed as U+FFFD.

    Args:
        err: the stderr console (tool calls, retries, warnings, reasoning).
        prose: print the assistant's prose to stdout (off for ``--json``).
        details: print everything else to stderr (off for ``--json``).
    """

    def __init__(self, err: Console, *, prose: bool = True, details: bool = True) -> None:
        self.err = err
        self.prose = prose
        self.details = details
        self._prose_open = False  # stdout holds prose not yet ended by a newline
        self._reasoning_open = False
        self._prose_text = SurrogateJoiner()
        self._reasoning_text = SurrogateJoiner()
        self._status: Any = None  # rich Status while waiting for the first activity

    def waiting(self, label: str = "waiting for the model…") -> None:
        """Show a status line (spinner and ``label``) on stderr until the first activity or
        ``end()``; only on a terminal and with ``details`` (never in pipes or with --json)."""
        if self.details and self.err.is_terminal and self._status is None:
            self._status = self.err.status(label, spinner="dots")
            self._status.start()

    def _stop_waiting(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def __call__(self, activity: TurnActivity) -> None:
        """Render one activity."""
        self._stop_waiting()
        event = activity.event
        if isinstance(event, AssistantProseDelta):
            if self.prose and event.text:
                self._end_reasoning()
                self._print_prose(self._prose_text.push(event.text))
            return
        if not self.details:
            return
        if isinstance(event, ReasoningProseDelta):
            if event.text:
                self._print_reasoning(self._reasoning_text.push(event.text))
            return
        if isinstance(event, ToolCallStarted):
            self._line(f"→ {event.name}({short(event.arguments)})", "dim")
        elif isinstance(event, ToolCallCompleted):
            mark = "✗" if event.is_error else "←"
            style = "dim red" if event.is_error else "dim"
            self._line(f"{mark} {event.name} ({event.duration_s:.2f}s): {short(event.output)}", style)
        elif isinstance(event, ToolCallProgress) and event.message:
            # nested under its call, e.g. a subagent's "[explore 1f3a…] calling web_search"
            self._line(f"  ↳ {event.name}: {short(event.message)}", "dim")
        elif isinstance(event, RetryStatus):
            attempt = f"attempt {event.attempt}/{event.max_attempts}"
            self._line(f"retrying in {event.wait_s:.1f}s ({attempt}): {short(event.reason)}", "dim yellow")
        elif isinstance(event, ModelAttemptReset):
            self._line("(the failed attempt's partial output above is discarded)", "dim yellow")
        elif isinstance(event, ErrorReported) and event.kind != "provider":
            # provider failures end the turn and are reported once, as the stop reason
            self._line(f"warning ({event.kind}): {short(event.message)}", "dim yellow")

    def _print_prose(self, text: str) -> None:
        if text:
            click.echo(text, nl=False)
            self._prose_open = not text.endswith("\n")

    def _print_reasoning(self, text: str) -> None:
        if text:
            self.err.print(text, style="dim italic", end="", markup=False)
            self._reasoning_open = True

    def _end_reasoning(self) -> None:
        self._print_reasoning(self._reasoning_text.flush())
        if self._reasoning_open:
            self.err.print()
            self._reasoning_open = False

    def _line(self, text: str, style: str) -> None:
        self.end()
        self.err.print(valid_text(text), style=style, markup=False)

    def end(self) -> None:
        """Close any open line (prose on stdout, reasoning on stderr) and the status line."""
        self._stop_waiting()
        self._end_reasoning()
        self._print_prose(self._prose_text.flush())
        if self._prose_open:
            click.echo()
            self._prose_open = False
