"""``lash sessions list|show|export|search|delete`` and ``lash usage``: read the session store
(only ``delete`` writes it).

Rule: these commands open the database with ``create=False``: a missing file reads as an empty
store and nothing is created. Stored data is read leniently: a node that holds a plugin record
(JSON text, not a ``Message``) is summarised by its kind and data, never decoded into the
plugin's class (the CLI loads no plugin record types), and an unreadable stored spec shows
its usage source as ``?``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import click

from lash_kernel.cli.context import LashGroup, config_db, core_options, current_config, db_option, json_option
from lash_kernel.cli.output import (
    BUCKET_HEADERS,
    echo,
    echo_json,
    err_console,
    message_json,
    one_line,
    out_console,
    outcome_dict,
    outcome_label,
    session_json,
    short,
    usage_table,
    when,
)
from lash_kernel.cli.providers import default_db_path, open_store
from lash_kernel.errors import ConfigError
from lash_kernel.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Finished, Outcome, Stopped
from lash_kernel.spec import SessionSpec
from lash_kernel.store.base import (
    MESSAGE_KIND,
    Frame,
    MessageHit,
    Node,
    PendingInput,
    SessionInfo,
    Store,
    TurnRecord,
)
from lash_kernel.text import valid_text
from lash_kernel.usage import BUCKETS, UsageLedger

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["sessions", "usage"]


@click.group(cls=LashGroup)
def sessions() -> None:
    """List and inspect stored sessions.

    \b
    Examples:
      lash sessions list
      lash sessions list --tree
      lash sessions show 3f2a... --json
    """


@contextlib.contextmanager
def _reading(db: Path | str | None) -> Iterator[Store]:
    config = current_config()
    path = db or config_db(config) or default_db_path(os.environ)
    if isinstance(path, str):  # a store URL: its scheme comes from the plugins this command selects
        options = core_options(config, os.environ)
        store = open_store(path, create=False, allow=options["allow"], block=options["block"], strict=options["strict"])
    else:
        store = open_store(path, create=False)
    try:
        yield store
    finally:
        store.close()


def _usage_source(info: SessionInfo) -> str:
    """The usage-ledger source of a session's own model calls, read from its stored spec.

    Args:
        info: the session's head (``info.spec`` is the spec's JSON text, "" for the defaults).
    Returns:
        The spec's ``usage_source``; ``turn`` when it sets none (a root session's default);
        ``?`` when the stored spec cannot be read.
    """
    try:
        return SessionSpec.from_json(info.spec).usage_source or "turn"
    except ConfigError:
        return "?"


def _label(info: SessionInfo) -> str:
    """What a plugin called a child session: the first ``capability`` option a plugin stored in
    its spec's ``plugin_options`` (lash-subagents stores the capability it spawned), or ""."""
    try:
        options = SessionSpec.from_json(info.spec).plugin_options
    except ConfigError:
        return ""
    for values in options.values():
        label = values.get("capability") if isinstance(values, dict) else None
        if isinstance(label, str):
            return label
    return ""


def _last_outcome(outcome: Outcome | None) -> str:
    """A child's last committed outcome in a few words: ``finished``, ``stopped: <reason>``, or
    ``-`` before its first commit."""
    if outcome is None:
        return "-"
    return "finished" if isinstance(outcome, Finished) else f"stopped: {outcome.reason}"


# ------------------------------------------------------------------------------- sessions list


@attrs.frozen(kw_only=True)
class _Row:
    """One session as ``sessions list`` shows it."""

    info: SessionInfo
    turns: int
    pending: int


def _children_of(rows: list[_Row]) -> dict[str, list[_Row]]:
    """Each listed session's listed children, oldest first (``created_at``, then id), the
    order of ``Store.list_children``."""
    ids = {r.info.session_id for r in rows}
    children: dict[str, list[_Row]] = {}
    for row in rows:
        parent = row.info.parent_session_id
        if parent is not None and parent in ids and parent != row.info.session_id:
            children.setdefault(parent, []).append(row)
    for kids in children.values():
        kids.sort(key=lambda r: (r.info.created_at, r.info.session_id))
    return children


def _roots(rows: list[_Row]) -> list[_Row]:
    """The rows that are no listed session's child, in ``rows``'s order (a child whose parent
    is missing from the store is shown as a root)."""
    ids = {r.info.session_id for r in rows}
    return [r for r in rows if r.info.parent_session_id is None or r.info.parent_session_id not in ids]


def _walk(root: _Row, children: dict[str, list[_Row]], seen: set[str]) -> Iterator[tuple[int, _Row]]:
    """``root`` and its descendants depth first, each with its level below ``root`` (0 for
    ``root``). ``seen`` guards against a damaged store's cycle: each session once."""
    stack = [(0, root)]
    while stack:
        level, row = stack.pop()
        if row.info.session_id in seen:
            continue
        seen.add(row.info.session_id)
        yield level, row
        stack.extend((level + 1, kid) for kid in reversed(children.get(row.info.session_id, [])))


def _tree_json(root: _Row, children: dict[str, list[_Row]], seen: set[str]) -> dict[str, Any]:
    """``root`` as a ``--tree --json`` object with its ``children`` nested."""
    nodes: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for level, row in _walk(root, children, seen):
        node = {**_tree_row_json(row), "children": []}
        nodes[row.info.session_id] = node
        if level == 0:
            top = node
        else:
            nodes[row.info.parent_session_id or ""]["children"].append(node)
    return top


def _tree_row_json(row: _Row) -> dict[str, Any]:
    info = row.info
    return {
        **session_json(info, row.pending, turns=row.turns),
        "revision": info.head_revision,
        "depth": info.depth,
        "usage_source": _usage_source(info),
        "parent_session_id": info.parent_session_id,
        "parent_turn_id": info.parent_turn_id,
        "parent_call_id": info.parent_call_id,
    }


@sessions.command("list")
@click.option("--tree", is_flag=True, help="Show child sessions indented under their parents.")
@db_option
@json_option(
    "Print a JSON array of {session_id, turns, created_at, updated_at, pending_inputs}; with --tree, "
    "the root sessions, each also with {revision, depth, usage_source, parent_session_id, "
    "parent_turn_id, parent_call_id, children: [...]} (children nested the same way)."
)
def sessions_list(tree: bool, db: Path | str | None, as_json: bool) -> None:
    """List sessions, most recently updated first.

    Shows each session's id, committed turns, last update and pending (uncommitted) inputs.
    With --tree, child sessions (opened by a tool or plugin of another session) are shown
    indented under their parent, oldest first, with their depth, the usage source their own
    model calls are booked under, and their head revision (turns plus commits between turns).

    \b
    Examples:
      lash sessions list
      lash sessions list --tree
      lash sessions list --json | jq '.[0].session_id'
      lash sessions list --tree --json | jq '.[0].children[].session_id'
    """
    with _reading(db) as store:
        rows = [
            _Row(
                info=info,
                turns=len(store.list_turns(info.session_id)),
                pending=len(store.pending_inputs(info.session_id)),
            )
            for info in store.list_sessions()
        ]
    if not tree:
        if as_json:
            echo_json([session_json(r.info, r.pending, turns=r.turns) for r in rows])
            return
        if not rows:
            err_console().print("no sessions", style="dim")
            return
        from rich.table import Table  # rich loads only when a table is printed
        table = Table()
        table.add_column("session", overflow="fold")
        table.add_column("turns", justify="right")
        table.add_column("updated")
        table.add_column("pending", justify="right")
        for r in rows:
            table.add_row(r.info.session_id, str(r.turns), when(r.info.updated_at), str(r.pending))
        out_console().print(table)
        return
    children, seen = _children_of(rows), set[str]()
    if as_json:
        echo_json([_tree_json(root, children, seen) for root in _roots(rows)])
        return
    if not rows:
        err_console().print("no sessions", style="dim")
        return
    from rich.table import Table
    table = Table()
    table.add_column("session", overflow="fold")
    table.add_column("depth", justify="right")
    table.add_column("source")
    table.add_column("revision", justify="right")
    table.add_column("turns", justify="right")
    table.add_column("updated")
    table.add_column("pending", justify="right")
    for root in _roots(rows):
        for level, row in _walk(root, children, seen):
            info = row.info
            label = info.session_id if level == 0 else "  " * (level - 1) + "└ " + info.session_id
            table.add_row(
                label, str(info.depth), _usage_source(info), str(info.head_revision), str(row.turns),
                when(info.updated_at), str(row.pending),
            )
    out_console().print(table)


# ------------------------------------------------------------------------------- sessions show


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


def _record_json(node: Node) -> dict[str, Any]:
    """A plugin node (any kind but ``message``) as JSON, without decoding it into its class.

    Args:
        node: a node whose payload is a plugin record's JSON text
            (``{"kind": KIND, "data": {...}}``, as ``serde.encode_plugin_record`` wrote it).
    Returns:
        ``{node_id, kind, data}``: ``data`` is the record's fields as stored; when the text is
        not such JSON, ``{node_id, kind, text}`` with the raw text instead.
    """
    text = str(node.payload)
    try:
        raw = json.loads(text)
    except ValueError:
        raw = None
    if isinstance(raw, dict) and "data" in raw:
        return {"node_id": node.node_id, "kind": node.kind, "data": raw["data"]}
    return {"node_id": node.node_id, "kind": node.kind, "text": valid_text(text)}


def _record_line(node: Node) -> str:
    shown = _record_json(node)
    body = json.dumps(shown["data"], ensure_ascii=False) if "data" in shown else shown["text"]
    return f"  [{node.kind}] {short(body)}"


@attrs.frozen(kw_only=True)
class _Commit:
    """One commit's nodes as ``sessions show`` prints them: a turn, or a maintenance commit."""

    key: str
    nodes: tuple[Node, ...]
    opened_frame: Frame | None

    @property
    def messages(self) -> list[Message]:
        return [n.message for n in self.nodes if n.kind == MESSAGE_KIND]

    @property
    def records(self) -> list[Node]:
        return [n for n in self.nodes if n.kind != MESSAGE_KIND]

    def json(self) -> dict[str, Any]:
        return {
            "messages": [message_json(m) for m in self.messages],
            "records": [_record_json(n) for n in self.records],
            "opened_frame": self.opened_frame.frame_id if self.opened_frame is not None else None,
        }

    def lines(self) -> Iterator[str]:
        frame = self.opened_frame
        for node in self.nodes:
            if frame is not None and node.frame_id == frame.frame_id and node.kind == MESSAGE_KIND:
                seed = len(frame.seed_node_ids)
                yield f"  ── frame {frame.frame_id} opened ({frame.reason}), seeded with {seed} message(s):"
                frame = None
            if node.kind == MESSAGE_KIND:
                yield from _message_lines(node.message)
            else:
                yield _record_line(node)
        if frame is not None:  # a frame with no seed and nothing after it in this commit
            yield f"  ── frame {frame.frame_id} opened ({frame.reason}), seeded with 0 message(s)"


def _frame_json(frame: Frame, turn_ids: set[str]) -> dict[str, Any]:
    return {
        "frame_id": frame.frame_id,
        "previous_frame_id": frame.previous_frame_id,
        "reason": frame.reason,
        "opened_by": frame.opened_by,
        "opened_by_turn": frame.opened_by in turn_ids,
        "seed_messages": len(frame.seed_node_ids),
        "created_at": frame.created_at,
    }


def _child_json(info: SessionInfo, ledger: UsageLedger, outcome: Outcome | None) -> dict[str, Any]:
    report = ledger.report()
    return {
        "session_id": info.session_id,
        "usage_source": _usage_source(info),
        "capability": _label(info) or None,
        "outcome": outcome_dict(outcome) if outcome is not None else None,
        "depth": info.depth,
        "revision": info.head_revision,
        "parent_turn_id": info.parent_turn_id,
        "parent_call_id": info.parent_call_id,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "usage": report.total.as_dict(),
        "calls": sum(report.calls.values()),
    }


def _children_table(children: list[tuple[SessionInfo, UsageLedger, Outcome | None]]) -> Table:
    from rich.table import Table
    table = Table(title=f"children ({len(children)})", title_justify="left")
    table.add_column("session", overflow="fold")
    table.add_column("source")
    table.add_column("capability")
    table.add_column("outcome")
    table.add_column("tool call", overflow="fold")
    table.add_column("revision", justify="right")
    for bucket in BUCKETS:
        table.add_column(BUCKET_HEADERS[bucket], justify="right", no_wrap=True)
    table.add_column("total", justify="right", no_wrap=True)
    table.add_column("calls", justify="right", no_wrap=True)
    for info, ledger, outcome in children:
        report = ledger.report()
        table.add_row(
            info.session_id, _usage_source(info), _label(info), _last_outcome(outcome), info.parent_call_id or "",
            str(info.head_revision),
            *(str(getattr(report.total, b)) for b in BUCKETS),
            str(report.total.total_tokens), str(sum(report.calls.values())),
        )
    return table


def _frames_table(frames: list[Frame], current: str, turn_ids: set[str]) -> Table:
    from rich.table import Table
    table = Table(title=f"frames ({len(frames)} opened, current {current})", title_justify="left")
    table.add_column("frame", overflow="fold")
    table.add_column("previous", overflow="fold")
    table.add_column("reason")
    table.add_column("opened by", overflow="fold")
    table.add_column("seed", justify="right")
    table.add_column("opened")
    for frame in frames:
        by = f"{'turn' if frame.opened_by in turn_ids else 'maintenance'} {frame.opened_by}"
        table.add_row(
            frame.frame_id, frame.previous_frame_id, frame.reason, by, str(len(frame.seed_node_ids)),
            when(frame.created_at),
        )
    return table


@sessions.command("show")
@click.argument("session_id", metavar="ID")
@db_option
@json_option(
    "Print one JSON object: {session_id, head_revision, frame_id, depth, usage_source, parent, "
    "turns: [{turn_id, outcome, messages, records, opened_frame}], maintenance: [{key, messages, "
    "records, opened_frame}], frames, children: [{session_id, usage_source, usage, calls, ...}], "
    "pending_inputs}."
)
def sessions_show(session_id: str, db: Path | str | None, as_json: bool) -> None:
    """Show session ID: each committed turn with its outcome and messages, then pending inputs,
    the agent frames opened in it and its child sessions.

    Pending inputs are user inputs that were admitted but whose turn never committed (for
    example after a crash). Plugin records stored in the session are shown by kind and data;
    commits made between turns (background work, a compaction) are shown as "maintenance".
    A child session shows where it was opened (parent session, turn and tool call); each
    child is listed with the total of its usage ledger (its own calls and its children's).

    \b
    Examples:
      lash sessions show 3f2a...
      lash sessions show 3f2a... --json | jq '.turns | length'
      lash sessions show 3f2a... --json | jq '.children[].usage'
    """
    session_id = valid_text(session_id)
    with _reading(db) as store:
        info = store.get_session(session_id)
        records = store.list_turns(session_id)
        turns: list[tuple[TurnRecord, _Commit]] = []
        frames = store.list_frames(session_id)
        opened = {f.opened_by: f for f in frames}
        for rec in records:
            nodes = store.load_nodes(session_id, rec.node_ids)
            turns.append((rec, _Commit(key=rec.turn_id, nodes=nodes, opened_frame=opened.get(rec.turn_id))))
        turn_ids = {rec.turn_id for rec in records}
        maintenance = _maintenance_commits(store.load_graph(session_id), turn_ids, opened)
        pending: list[PendingInput] = store.pending_inputs(session_id)
        children = [
            (child, store.usage_ledger(child.session_id), _outcome_of(store, child.session_id))
            for child in store.list_children(session_id)
        ]
    parent = (
        {"session_id": info.parent_session_id, "turn_id": info.parent_turn_id, "call_id": info.parent_call_id}
        if info.parent_session_id is not None
        else None
    )
    if as_json:
        echo_json({
            "session_id": info.session_id,
            "head_revision": info.head_revision,
            "frame_id": info.frame_id,
            "depth": info.depth,
            "usage_source": _usage_source(info),
            "parent": parent,
            "created_at": info.created_at,
            "updated_at": info.updated_at,
            "turns": [
                {
                    "turn_id": rec.turn_id,
                    "revision": rec.revision,
                    "committed_at": rec.committed_at,
                    "outcome": outcome_dict(rec.outcome),
                    **commit.json(),
                }
                for rec, commit in turns
            ],
            "maintenance": [
                {"key": commit.key, "created_at": created_at, **commit.json()} for created_at, commit in maintenance
            ],
            "frames": [_frame_json(f, turn_ids) for f in frames],
            "children": [_child_json(*child) for child in children],
            "pending_inputs": [
                {"turn_id": p.turn_id, "created_at": p.created_at, "message": message_json(p.message)}
                for p in pending
            ],
        })
        return
    echo(
        f"session {info.session_id} · {len(records)} turn(s) · revision {info.head_revision}"
        f" · created {when(info.created_at)} · updated {when(info.updated_at)}"
    )
    if parent is not None:
        echo(
            f"child of session {info.parent_session_id} · turn {info.parent_turn_id or '-'}"
            f" · tool call {info.parent_call_id or '-'} · depth {info.depth} · source {_usage_source(info)}"
        )
    # turns and maintenance commits in commit order (by time; a turn first on a tie)
    entries: list[tuple[float, int, Iterator[str]]] = [
        (rec.committed_at, 0, _turn_lines(rec, commit)) for rec, commit in turns
    ]
    entries += [(created_at, 1, _maintenance_lines(created_at, commit)) for created_at, commit in maintenance]
    for _at, _order, lines in sorted(entries, key=lambda e: (e[0], e[1])):
        for line in lines:
            echo(line)
    if pending:
        echo(f"pending inputs ({len(pending)}, not committed):")
        for p in pending:
            echo(f"  turn {p.turn_id} · {when(p.created_at)} · {p.message.role}: {_indented(p.message.text)}")
    if frames:
        out_console().print(_frames_table(frames, info.frame_id, turn_ids))
    if children:
        out_console().print(_children_table(children))


def _outcome_of(store: Store, session_id: str) -> Outcome | None:
    """The last committed turn's outcome of ``session_id``, or None before its first."""
    turns = store.list_turns(session_id)
    return turns[-1].outcome if turns else None


def _turn_lines(rec: TurnRecord, commit: _Commit) -> Iterator[str]:
    outcome = rec.outcome
    label = outcome_label(outcome)
    if isinstance(outcome, Stopped) and outcome.detail:
        label += f": {one_line(outcome.detail)}"
    yield f"turn {rec.revision} · {rec.turn_id} · {label} · {when(rec.committed_at)}"
    yield from commit.lines()


def _maintenance_lines(created_at: float, commit: _Commit) -> Iterator[str]:
    yield f"maintenance · {commit.key} · {when(created_at)}"
    yield from commit.lines()


def _maintenance_commits(
    graph: tuple[Node, ...], turn_ids: set[str], opened: dict[str, Frame]
) -> list[tuple[float, _Commit]]:
    """The nodes written between turns (maintenance commits), grouped by commit key in commit
    order, with each group's time (its first node's ``created_at``)."""
    groups: dict[str, list[Node]] = {}
    for node in graph:
        if node.turn_id not in turn_ids:
            groups.setdefault(node.turn_id, []).append(node)
    return [
        (nodes[0].created_at, _Commit(key=key, nodes=tuple(nodes), opened_frame=opened.get(key)))
        for key, nodes in groups.items()
    ]


# ------------------------------------------------------------------------------- usage
@click.command()
@click.argument("session_id", metavar="[SESSION]", required=False)
@db_option
@json_option("Print the usage report as JSON: {total, by_source, by_model, by_source_model}.")
def usage(session_id: str | None, db: Path | str | None, as_json: bool) -> None:
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


# ------------------------------------------------------------------------------- export and search


def _turn_messages(store: Store, session_id: str) -> list[tuple[TurnRecord, list[Message]]]:
    """Each committed turn of ``session_id`` (oldest first) with its messages, in order."""
    return [
        (rec, [n.payload for n in store.load_nodes(session_id, rec.node_ids) if isinstance(n.payload, Message)])
        for rec in store.list_turns(session_id)
    ]


def _markdown(info: SessionInfo, turns: list[tuple[TurnRecord, list[Message]]]) -> str:
    lines = [f"# Session {info.session_id}", "", f"Created {when(info.created_at)}, updated {when(info.updated_at)}."]
    for rec, messages in turns:
        lines += ["", f"## Turn {rec.turn_id} · {outcome_label(rec.outcome)}"]
        for message in messages:
            for part in message.parts:
                if isinstance(part, TextPart) and part.text:
                    lines += ["", f"**{message.role}**:", "", part.text]
                elif isinstance(part, ToolCallPart):
                    lines += ["", f"**{message.role}** calls `{part.name}`:", "", "```json", part.arguments, "```"]
                elif isinstance(part, ToolResultPart):
                    status = "error" if part.is_error else "result"
                    lines += ["", f"**tool** `{part.name}` {status}:", "", "```", part.output, "```"]
    return "\n".join(lines) + "\n"


@sessions.command("export")
@click.argument("session_id", metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True,
              help="json: {session_id, created_at, updated_at, turns: [{turn_id, outcome, messages}]}; "
              "markdown: a readable transcript.")
@db_option
def sessions_export(session_id: str, fmt: str, db: Path | None) -> None:
    """Print session ID's committed turns and messages to stdout, as JSON or Markdown.

    \b
    Examples:
      lash sessions export 3f2a... > session.json
      lash sessions export 3f2a... --format markdown > session.md
    """
    session_id = valid_text(session_id)
    with _reading(db) as store:
        info = store.get_session(session_id)
        turns = _turn_messages(store, session_id)
    if fmt == "markdown":
        click.echo(_markdown(info, turns), nl=False)
        return
    echo_json({
        "session_id": info.session_id,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "turns": [
            {"turn_id": rec.turn_id, "outcome": outcome_dict(rec.outcome), "messages": [message_json(m) for m in ms]}
            for rec, ms in turns
        ],
    })


def _snippet(body: str, needle: str) -> str:
    """``body`` from a little before the first case-insensitive match of any word of ``needle``
    (from its start when none matches), shortened to one line of 120 characters."""
    folded = body.casefold()
    positions = [folded.find(word) for word in needle.casefold().split()]
    at = min((p for p in positions if p >= 0), default=0)
    start = max(0, at - 40)
    return short(("…" if start else "") + body[start:], 120)


def _scan(store: Store, text: str, limit: int) -> list[MessageHit]:
    """``search_messages`` for a store without it: every committed message, substring match."""
    needle = text.casefold()
    hits: list[MessageHit] = []
    for info in store.list_sessions():
        for rec, messages in _turn_messages(store, info.session_id):
            for message in messages:
                if needle in message.text.casefold():
                    hit = MessageHit(session_id=info.session_id, turn_id=rec.turn_id, node_id="", message=message)
                    hits.append(hit)
                    if len(hits) >= limit:
                        return hits
    return hits


@sessions.command("search")
@click.argument("text")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="Show at most this many hits.")
@db_option
@json_option("Print a JSON array of {session_id, turn_id, role, snippet}.")
def sessions_search(text: str, limit: int, db: Path | None, as_json: bool) -> None:
    """Find committed messages containing TEXT, most recently updated session first.

    A SQLite store answers from its full-text index (kept in step with every commit): the
    words of TEXT match whole words, in order, ignoring case and accents, and the last word
    may be the start of one ("rate lim" finds "Rate limited"). Tool calls and results are not
    searched. Other stores scan every message for TEXT as a substring.

    \b
    Examples:
      lash sessions search "rate limit"
      lash sessions search oslo --json | jq '.[].session_id'
    """
    text = valid_text(text)
    with _reading(db) as store:
        search = getattr(store, "search_messages", None)
        found: list[MessageHit] = search(text, limit=limit) if search is not None else _scan(store, text, limit)
    hits = [
        {"session_id": h.session_id, "turn_id": h.turn_id, "role": h.message.role,
         "snippet": _snippet(h.message.text, text)}
        for h in found
    ]
    if as_json:
        echo_json(hits)
        return
    if not hits:
        err_console().print(f"no message contains {text!r}", style="dim", markup=False)
        return
    from rich.table import Table
    table = Table()
    for column in ("session", "turn", "role", "text"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        table.add_row(hit["session_id"], hit["turn_id"], hit["role"], hit["snippet"])
    out_console().print(table)


@sessions.command("delete")
@click.argument("session_id", metavar="ID")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@db_option
def sessions_delete(session_id: str, yes: bool, db: Path | None) -> None:
    """Delete session ID, its child sessions and everything stored for them (turns, usage,
    pending inputs, frames, plugin state). Asks first unless --yes.

    \b
    Examples:
      lash sessions delete 3f2a...
      lash sessions delete 3f2a... --yes
    """
    session_id = valid_text(session_id)
    with _reading(db) as store:
        store.get_session(session_id)  # unknown: one line, exit 1, before asking
        children = len(store.list_children(session_id))
        extra = f" and its {children} child session(s)" if children else ""
        if not yes:
            click.confirm(f"delete session {session_id}{extra}?", abort=True, err=True)
        deleted = store.delete_session(session_id)
    err_console().print(f"deleted {len(deleted)} session(s): {', '.join(deleted)}", style="dim", markup=False)
