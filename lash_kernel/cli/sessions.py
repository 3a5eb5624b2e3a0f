"""``lash sessions list|show`` and ``lash usage``: read the session store, never write it.

Rule: these commands open the database with ``create=False``: a missing file reads as an empty
store and nothing is created.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import click
from rich.table import Table

from lash_kernel.cli.context import LashGroup, config_db, current_config, db_option, json_option
from lash_kernel.cli.output import (
    echo,
    echo_json,
    err_console,
    message_json,
    one_line,
    out_console,
    outcome_dict,
    outcome_label,
    session_json,
    usage_table,
    when,
)
from lash_kernel.cli.providers import default_db_path, open_store
from lash_kernel.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Stopped
from lash_kernel.store.base import PendingInput, Store, TurnRecord
from lash_kernel.text import valid_text
from lash_kernel.usage import UsageLedger

__all__ = ["sessions", "usage"]


@click.group(cls=LashGroup)
def sessions() -> None:
    """List and inspect stored sessions.

    \b
    Examples:
      lash sessions list
      lash sessions show 3f2a... --json
    """


@contextlib.contextmanager
def _reading(db: Path | None) -> Iterator[Store]:
    path = db or config_db(current_config()) or default_db_path(os.environ)
    store = open_store(path, create=False)
    try:
        yield store
    finally:
        store.close()


@sessions.command("list")
@db_option
@json_option("Print a JSON array of {session_id, turns, created_at, updated_at, pending_inputs}.")
def sessions_list(db: Path | None, as_json: bool) -> None:
    """List sessions, most recently updated first.

    Shows each session's id, committed turns, last update and pending (uncommitted) inputs.

    \b
    Examples:
      lash sessions list
      lash sessions list --json | jq '.[0].session_id'
    """
    with _reading(db) as store:
        rows = [(info, len(store.pending_inputs(info.session_id))) for info in store.list_sessions()]
    if as_json:
        echo_json([session_json(info, pending) for info, pending in rows])
        return
    if not rows:
        err_console().print("no sessions", style="dim")
        return
    table = Table()
    table.add_column("session", overflow="fold")
    table.add_column("turns", justify="right")
    table.add_column("updated")
    table.add_column("pending", justify="right")
    for info, pending in rows:
        table.add_row(info.session_id, str(info.head_revision), when(info.updated_at), str(pending))
    out_console().print(table)


def _indented(text: str) -> str:
    return text.replace("\n", "\n    ")


def _message_lines(message: Message) -> Iterator[str]:
    for part in message.parts:
        if isinstance(part, TextPart) and part.text:
            yield f"  {message.role}: {_indented(part.text)}"
        elif isinstance(part, ReasoningPart) and part.text:
            yield f"  {message.role} (reasoning): {_indented(part.text)}"
        elif isinstance(part, ToolCallPart):
            yield f"  {message.role} → {part.name}({part.arguments}) [{part.id}]"
        elif isinstance(part, ToolResultPart):
            mark = "✗" if part.is_error else "←"
            yield f"  tool {mark} {part.name} [{part.call_id}]: {_indented(part.output)}"


@sessions.command("show")
@click.argument("session_id", metavar="ID")
@db_option
@json_option("Print one JSON object: {session_id, turns: [{turn_id, outcome, messages}], pending_inputs}.")
def sessions_show(session_id: str, db: Path | None, as_json: bool) -> None:
    """Show session ID: each committed turn with its outcome and messages, then pending inputs.

    Pending inputs are user inputs that were admitted but whose turn never committed (for
    example after a crash).

    \b
    Examples:
      lash sessions show 3f2a...
      lash sessions show 3f2a... --json | jq '.turns | length'
    """
    session_id = valid_text(session_id)
    with _reading(db) as store:
        info = store.get_session(session_id)
        turns: list[tuple[TurnRecord, tuple[Message, ...]]] = [
            (rec, tuple(n.message for n in store.load_nodes(session_id, rec.node_ids) if n.kind == "message"))
            for rec in store.list_turns(session_id)
        ]
        pending: list[PendingInput] = store.pending_inputs(session_id)
    if as_json:
        echo_json({
            "session_id": info.session_id,
            "head_revision": info.head_revision,
            "created_at": info.created_at,
            "updated_at": info.updated_at,
            "turns": [
                {
                    "turn_id": rec.turn_id,
                    "revision": rec.revision,
                    "committed_at": rec.committed_at,
                    "outcome": outcome_dict(rec.outcome),
                    "messages": [message_json(m) for m in messages],
                }
                for rec, messages in turns
            ],
            "pending_inputs": [
                {"turn_id": p.turn_id, "created_at": p.created_at, "message": message_json(p.message)}
                for p in pending
            ],
        })
        return
    echo(
        f"session {info.session_id} · {info.head_revision} turn(s) · created {when(info.created_at)}"
        f" · updated {when(info.updated_at)}"
    )
    for rec, messages in turns:
        outcome = rec.outcome
        label = outcome_label(outcome)
        if isinstance(outcome, Stopped) and outcome.detail:
            label += f": {one_line(outcome.detail)}"
        echo(f"turn {rec.revision} · {rec.turn_id} · {label} · {when(rec.committed_at)}")
        for message in messages:
            for line in _message_lines(message):
                echo(line)
    if pending:
        echo(f"pending inputs ({len(pending)}, not committed):")
        for p in pending:
            echo(f"  turn {p.turn_id} · {when(p.created_at)} · {p.message.role}: {_indented(p.message.text)}")


@click.command()
@click.argument("session_id", metavar="[SESSION]", required=False)
@db_option
@json_option("Print the usage report as JSON: {total, by_source, by_model, by_source_model}.")
def usage(session_id: str | None, db: Path | None, as_json: bool) -> None:
    """Show token usage by source and model: the five buckets and the number of model calls.

    Buckets: input (uncached), output (reasoning included), cache read, cache write, and
    reasoning. Without SESSION, every session in the database is summed.

    \b
    Examples:
      lash usage
      lash usage 3f2a... --json | jq .total
    """
    session_id = valid_text(session_id) if session_id is not None else None
    with _reading(db) as store:
        if session_id is not None:
            ledger = store.usage_ledger(session_id)
            title = f"usage: session {session_id}"
        else:
            infos = store.list_sessions()
            ledger = UsageLedger()
            for info in infos:
                ledger = ledger + store.usage_ledger(info.session_id)
            title = f"usage: all sessions ({len(infos)})"
    report = ledger.report()
    if as_json:
        echo_json(report.to_json())
        return
    out_console().print(usage_table(report, title))
