"""``lash sessions list --tree`` and ``lash sessions show`` on sessions with children, frames
and plugin records: a real SQLite file written by a ``LashCore`` driven by ``ScriptedModel``,
then read by the CLI (click's runner, as ``tests/test_cli.py`` does).

The database (built once per test by ``built``):
- root ``p``, turn 1: its tool ``delegate`` opens a child (source ``subagent``), whose tool
  ``helper`` opens a grandchild (source ``child``); a plugin appends a ``Note`` node with the
  turn. Then a maintenance commit opens a frame (``compaction``) with a record, then turn 2.
- root ``q``, updated last: its ``ping`` tool is followed by a checkpoint that opens a frame
  inside the turn (``continue_as``).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any, ClassVar

import anyio
import attrs
import pytest
from click.testing import CliRunner, Result

from lash_kernel import LashCore, SqliteStore
from lash_kernel.cli import cli
from lash_kernel.plugin import (
    Message,
    OpenFrame,
    PluginHost,
    RecordTypeRegistrar,
    ToolContext,
    UsageSourceRegistrar,
    hookimpl,
    tool,
)
from lash_kernel.testing import ScriptedModel
from lash_kernel.usage import TokenUsage


def U(n: int) -> TokenUsage:
    """A distinct usage per scripted call: n input, 2n output tokens."""
    return TokenUsage(input_tokens=n, output_tokens=2 * n)


@attrs.frozen(kw_only=True)
class Note:
    KIND: ClassVar[str] = "cli_note"
    text: str


class Probe:
    """Declares the source and record type; notes each turn of ``p``; opens a frame after
    ``q``'s tools."""

    @hookimpl
    def lash_register_usage_sources(self, registry: UsageSourceRegistrar) -> None:
        registry.add("subagent", "delegated work")

    @hookimpl
    def lash_register_record_types(self, registry: RecordTypeRegistrar) -> None:
        registry.add(Note)

    @hookimpl
    def lash_after_turn(self, host: PluginHost, session_id: str, messages: tuple[Message, ...]) -> None:
        if session_id == "p":
            host.append_nodes(session_id, [Note(text=f"saw {messages[0].text}")])

    @hookimpl
    def lash_checkpoint(self, session_id: str, phase: str) -> OpenFrame | None:
        if session_id == "q" and phase == "after_tools":
            return OpenFrame(reason="continue_as", seed=(Message.user("fresh start"),))
        return None


@tool
async def delegate(task: str, ctx: ToolContext) -> str:
    """Run a child agent."""
    with ctx.open_child_session(source="subagent") as child:
        return (await child.turn(task).run()).text


@tool
async def helper(task: str, ctx: ToolContext) -> str:
    """Run a grandchild agent."""
    with ctx.open_child_session(source="child") as child:
        return (await child.turn(task).run()).text


@tool
def ping() -> str:
    """Pong."""
    return "pong"


@attrs.frozen(kw_only=True)
class Built:
    db: Path
    child: str
    grandchild: str
    p_turns: tuple[str, str]
    q_turn: str
    maintenance_key: str
    call_ids: tuple[str, str]  # p's delegate call, the child's helper call


async def _build(db: Path) -> Built:
    model = ScriptedModel()
    model.enqueue_tool_calls(("delegate", {"task": "look"}), usage=U(1))  # p
    model.enqueue_tool_calls(("helper", {"task": "dig"}), usage=U(2))  # child
    model.enqueue_text("leaf", usage=U(4))  # grandchild
    model.enqueue_text("child done", usage=U(8))  # child
    model.enqueue_text("root done", usage=U(16))  # p
    model.enqueue_text("second answer", usage=U(32))  # p, turn 2
    model.enqueue_tool_calls(("ping", {}), usage=U(64))  # q
    model.enqueue_text("after", usage=U(128))  # q, in its new frame
    ticks = itertools.count()
    core = LashCore(
        model_client=model, model="scripted", store=SqliteStore(db), entry_points=False, plugins=[Probe()],
        tools=[delegate, helper, ping], clock=lambda: 1_700_000_000.0 + next(ticks) / 100,
    )
    with core:
        p = core.session("p")
        first = await p.turn("question one").run()
        [child] = p.children()
        [grandchild] = core.session(child.session_id).children()
        frame = OpenFrame(reason="compaction", seed=(Message.user("summary of one"),))
        await core.plugin_host.commit_maintenance(
            "p", key="compact-1", frame=frame, records=[Note(text="compacted")],
            expected_revision=p.info.head_revision,
        )
        second = await p.turn("question two").run()
        q_turn = await core.session("q").turn("go").run()
    assert model.pending == 0
    return Built(
        db=db, child=child.session_id, grandchild=grandchild.session_id,
        p_turns=(first.turn_id, second.turn_id), q_turn=q_turn.turn_id, maintenance_key="compact-1",
        call_ids=(first.tool_calls[0][0].id, grandchild.parent_call_id or ""),
    )


@pytest.fixture
def built(tmp_path: Path) -> Built:
    return anyio.run(_build, tmp_path / "lash.db")


def lash(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), prog_name="lash")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.stderr
    return result


def as_json(*args: str) -> Any:
    return json.loads(lash(*args, "--json").stdout)


# ------------------------------------------------------------------------------- sessions list


def test_list_tree_json_nests_children_under_their_parents(built: Built) -> None:
    roots = as_json("sessions", "list", "--tree", "--db", str(built.db))
    assert [r["session_id"] for r in roots] == ["q", "p"]  # most recently updated first
    q, p = roots
    assert q["children"] == [] and q["depth"] == 0 and q["usage_source"] == "turn"
    assert (p["turns"], p["revision"]) == (2, 3)  # two turns and the maintenance commit
    [child] = p["children"]
    assert child["session_id"] == built.child
    assert (child["depth"], child["usage_source"], child["turns"], child["revision"]) == (1, "subagent", 1, 1)
    assert child["parent_session_id"] == "p"
    assert (child["parent_turn_id"], child["parent_call_id"]) == (built.p_turns[0], built.call_ids[0])
    [grandchild] = child["children"]
    assert grandchild["session_id"] == built.grandchild and grandchild["children"] == []
    assert grandchild["depth"] == 2 and grandchild["usage_source"] == "child"
    assert grandchild["parent_session_id"] == built.child
    assert grandchild["parent_call_id"] == built.call_ids[1]


def test_list_without_tree_is_flat_and_counts_turns_not_revisions(built: Built) -> None:
    rows = as_json("sessions", "list", "--db", str(built.db))
    assert {r["session_id"] for r in rows} == {"p", "q", built.child, built.grandchild}
    by_id = {r["session_id"]: r for r in rows}
    assert by_id["p"] == {
        "session_id": "p", "turns": 2, "created_at": by_id["p"]["created_at"],
        "updated_at": by_id["p"]["updated_at"], "pending_inputs": 0,
    }  # the flat shape is unchanged; its turns are committed turns, not the head revision
    assert "children" not in by_id["q"]


def test_list_tree_text_indents_children_with_depth_source_and_revision(built: Built) -> None:
    text = lash("sessions", "list", "--tree", "--db", str(built.db)).stdout
    assert "depth" in text and "source" in text and "revision" in text
    ids = ("q", "p", built.child, built.grandchild)
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line)]
        for sid in ids:
            if any(c.removeprefix("└").strip() == sid for c in cells):
                rows[sid] = (line, cells)
    assert list(rows) == ["q", "p", built.child, built.grandchild]  # the order on screen
    _, p_cells = rows["p"]
    assert p_cells[1:5] == ["p", "0", "turn", "3"]
    child_line, child_cells = rows[built.child]
    assert f"└ {built.child}" in child_line and child_cells[2:5] == ["1", "subagent", "1"]
    grand_line, grand_cells = rows[built.grandchild]
    assert f"  └ {built.grandchild}" in grand_line and grand_cells[2:4] == ["2", "child"]
    assert grand_line.index("└") > child_line.index("└")  # deeper, further right


def test_list_tree_on_a_missing_database(tmp_path: Path) -> None:
    assert as_json("sessions", "list", "--tree", "--db", str(tmp_path / "none.db")) == []
    result = lash("sessions", "list", "--tree", "--db", str(tmp_path / "none.db"))
    assert "no sessions" in result.stderr
    assert not (tmp_path / "none.db").exists()


# ------------------------------------------------------------------------------- sessions show


def test_show_json_lists_children_with_their_ledger_totals(built: Built) -> None:
    shown = as_json("sessions", "show", "p", "--db", str(built.db))
    assert shown["parent"] is None and shown["depth"] == 0 and shown["usage_source"] == "turn"
    [child] = shown["children"]
    assert child["session_id"] == built.child and child["usage_source"] == "subagent"
    assert (child["parent_turn_id"], child["parent_call_id"]) == (built.p_turns[0], built.call_ids[0])
    # the child's ledger: its own two calls and its grandchild's one
    assert child["usage"] == (U(2) + U(8) + U(4)).as_dict() and child["calls"] == 3
    child_shown = as_json("sessions", "show", built.child, "--db", str(built.db))
    assert child_shown["parent"] == {"session_id": "p", "turn_id": built.p_turns[0], "call_id": built.call_ids[0]}
    assert (child_shown["depth"], child_shown["usage_source"]) == (1, "subagent")
    [grandchild] = child_shown["children"]
    assert grandchild["usage"] == U(4).as_dict() and grandchild["calls"] == 1
    assert grandchild["usage_source"] == "child"


def test_show_json_frames_records_and_maintenance(built: Built) -> None:
    shown = as_json("sessions", "show", "p", "--db", str(built.db))
    [frame] = shown["frames"]
    assert frame["reason"] == "compaction" and frame["previous_frame_id"] == "f0"
    assert frame["opened_by"] == built.maintenance_key and frame["opened_by_turn"] is False
    assert frame["seed_messages"] == 1 and shown["frame_id"] == frame["frame_id"]
    first, second = shown["turns"]
    assert first["messages"][0]["text"] == "question one"
    assert [(r["kind"], r["data"]) for r in first["records"]] == [("cli_note", {"text": "saw question one"})]
    assert first["opened_frame"] is None
    assert [(r["kind"], r["data"]) for r in second["records"]] == [("cli_note", {"text": "saw question two"})]
    [maintenance] = shown["maintenance"]
    assert maintenance["key"] == built.maintenance_key and maintenance["opened_frame"] == frame["frame_id"]
    assert maintenance["messages"] == [{"role": "user", "text": "summary of one"}]
    assert [r["data"] for r in maintenance["records"]] == [{"text": "compacted"}]


def test_show_json_a_frame_opened_inside_a_turn(built: Built) -> None:
    shown = as_json("sessions", "show", "q", "--db", str(built.db))
    [frame] = shown["frames"]
    assert frame["reason"] == "continue_as" and frame["opened_by"] == built.q_turn and frame["opened_by_turn"]
    [turn] = shown["turns"]
    assert turn["opened_frame"] == frame["frame_id"] and turn["records"] == []
    assert [m["role"] for m in turn["messages"]] == ["user", "assistant", "tool", "user", "assistant"]
    assert [m["text"] for m in turn["messages"]][3:] == ["fresh start", "after"]
    assert shown["children"] == [] and shown["maintenance"] == []


def test_show_text(built: Built) -> None:
    text = lash("sessions", "show", "p", "--db", str(built.db)).stdout
    assert "session p · 2 turn(s) · revision 3" in text
    assert "child of session" not in text
    assert "  [cli_note] {\"text\": \"saw question one\"}" in text
    # turns and the maintenance commit in commit order, the frame marked where it opens
    order = [
        text.index(f"turn 1 · {built.p_turns[0]}"),
        text.index(f"maintenance · {built.maintenance_key}"),
        text.index("── frame"),
        text.index("  user: summary of one"),
        text.index(f"turn 3 · {built.p_turns[1]}"),
    ]
    assert order == sorted(order)
    assert "frames (1 opened, current" in text and "compaction" in text
    assert f"maintenance {built.maintenance_key}" in text  # who opened the frame
    assert "children (1)" in text
    child_row = next(line for line in text.splitlines() if built.child in line and "subagent" in line)
    assert str((U(2) + U(8) + U(4)).total_tokens) in child_row and built.call_ids[0] in child_row

    child_text = lash("sessions", "show", built.child, "--db", str(built.db)).stdout
    assert (
        f"child of session p · turn {built.p_turns[0]} · tool call {built.call_ids[0]} · depth 1 · source subagent"
        in child_text
    )

    q_text = lash("sessions", "show", "q", "--db", str(built.db)).stdout
    marker = q_text.index("── frame")
    assert "(continue_as), seeded with 1 message(s)" in q_text
    seed, after = q_text.index("  user: fresh start"), q_text.index("assistant: after")
    assert q_text.index("  tool ← ping") < marker < seed < after
    assert f"turn {built.q_turn}" in q_text  # the frames table says a turn opened it


def test_show_reads_odd_stored_data_leniently(tmp_path: Path) -> None:
    """A plugin node that is not ``{"kind", "data"}`` JSON and a spec that is not JSON are
    shown as stored, not fatal (the CLI loads no plugin record types)."""
    from lash_kernel.outcomes import Finished
    from lash_kernel.store.base import MESSAGE_KIND, Node, TurnCommit
    from lash_kernel.usage import UsageLedger

    db = tmp_path / "odd.db"
    store = SqliteStore(db)
    try:
        store.open_session("s", mode="standard", frame_id="f0", now=1000.0, spec="{not json")
        nodes = (
            Node(node_id="n1", parent_id=None, frame_id="f0", turn_id="t1", kind=MESSAGE_KIND,
                 payload=Message.user("hi"), created_at=1001.0),
            Node(node_id="n2", parent_id="n1", frame_id="f0", turn_id="t1", kind="raw_note",
                 payload="plain text, not JSON", created_at=1001.0),
        )
        store.commit_turn(TurnCommit(
            session_id="s", turn_id="t1", expected_head_revision=0, nodes=nodes, usage=UsageLedger(),
            outcome=Finished(text=""), committed_at=1001.0,
        ))
    finally:
        store.close()
    shown = as_json("sessions", "show", "s", "--db", str(db))
    assert shown["usage_source"] == "?"
    assert shown["turns"][0]["records"] == [{"node_id": "n2", "kind": "raw_note", "text": "plain text, not JSON"}]
    assert "  [raw_note] plain text, not JSON" in lash("sessions", "show", "s", "--db", str(db)).stdout
    [root] = as_json("sessions", "list", "--tree", "--db", str(db))
    assert root["usage_source"] == "?"
