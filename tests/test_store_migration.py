"""Schema 2 -> 3: a file written by the 0.2-part-1 SqliteStore opens with every record intact,
its recorded content hashes still replay, and it takes the 0.2 records (frames, plugin nodes,
maintenance commits, leases, child sessions).

``fixtures/store-v2.sql`` is the ``iterdump`` of a database the schema-2 store wrote: session
``s1`` with a turn with a tool call (t1), an empty cancelled turn (t2), a short turn (t3), a
pending input (t4), plugin state and usage; session ``s2`` with one turn.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from lash_kernel.messages import Message, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Finished, Stopped
from lash_kernel.store.base import Frame, MaintenanceCommit, Node, TurnCommit
from lash_kernel.store.sqlite import SCHEMA_VERSION, SqliteStore
from lash_kernel.usage import TokenUsage, UsageKey, UsageLedger

T0 = 1_700_000_000.0
FIXTURE = Path(__file__).parent / "fixtures" / "store-v2.sql"


def _raw(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def v2_file(tmp_path: Path) -> Path:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    conn.executescript(FIXTURE.read_text("utf-8"))
    conn.close()
    assert _raw(path, "SELECT value FROM lash_meta WHERE key = 'schema_version'") == [("2",)]
    return path


# The fixture's commits, rebuilt exactly as the schema-2 store received them.
def _nodes(tid: str, parent: str | None, messages: list[Message]) -> tuple[Node, ...]:
    out = []
    for i, message in enumerate(messages):
        out.append(
            Node(node_id=f"{tid}-n{i}", parent_id=parent, frame_id="f0", turn_id=tid, kind="message",
                 payload=message, created_at=T0)
        )
        parent = out[-1].node_id
    return tuple(out)


def _ledger(i: int, o: int, calls: int) -> UsageLedger:
    return UsageLedger.of([(UsageKey(source="turn", model="m1"), TokenUsage(input_tokens=i, output_tokens=o), calls)])


T1 = TurnCommit(
    session_id="s1",
    turn_id="t1",
    expected_head_revision=0,
    nodes=_nodes(
        "t1",
        None,
        [
            Message.user("what is k1?"),
            Message(role="assistant", parts=(ToolCallPart(id="c1", name="lookup", arguments='{"k":1}'),)),
            Message(role="tool", parts=(ToolResultPart(call_id="c1", name="lookup", output="v1"),)),
            Message(role="assistant", parts=(TextPart(text="k1 is v1 ✓"),)),
        ],
    ),
    usage=_ledger(100, 10, 2),
    outcome=Finished(text="k1 is v1 ✓"),
    committed_at=T0 + 10,
    last_activity_seq=5,
    plugin_state=(("memo", '{"n":1}'),),
)
T2 = TurnCommit(
    session_id="s1",
    turn_id="t2",
    expected_head_revision=1,
    nodes=(),
    usage=UsageLedger(),
    outcome=Stopped(reason="cancelled"),
    committed_at=T0 + 20,
    last_activity_seq=6,
)
T3 = TurnCommit(
    session_id="s1",
    turn_id="t3",
    expected_head_revision=2,
    nodes=_nodes(
        "t3", "t1-n3", [Message.user("and k2?"), Message(role="assistant", parts=(TextPart(text="k2 is unknown"),))]
    ),
    usage=_ledger(50, 5, 1),
    outcome=Finished(text="k2 is unknown"),
    committed_at=T0 + 30,
    last_activity_seq=9,
)


def test_version_2_file_is_migrated_with_its_data_intact(v2_file: Path) -> None:
    with SqliteStore(v2_file) as store:
        s1 = store.get_session("s1")
        assert (s1.head_revision, s1.leaf_id, s1.frame_id, s1.activity_seq, s1.updated_at) == (
            3, "t3-n1", "f0", 9, T0 + 30
        )
        assert (s1.spec, s1.parent_session_id, s1.parent_turn_id, s1.parent_call_id, s1.depth) == (
            "", None, None, None, 0
        )
        assert store.load_active_path("s1") == T1.nodes + T3.nodes
        turns = store.list_turns("s1")
        assert [(t.turn_id, t.revision, t.outcome, t.node_ids) for t in turns] == [
            ("t1", 1, T1.outcome, tuple(n.node_id for n in T1.nodes)),
            ("t2", 2, T2.outcome, ()),
            ("t3", 3, T3.outcome, ("t3-n0", "t3-n1")),
        ]
        assert store.get_turn("s1", "t1") == turns[0]
        assert [p.message.text for p in store.pending_inputs("s1")] == ["pending question"]
        assert store.usage_ledger("s1") == _ledger(150, 15, 3)
        assert store.load_plugin_state("s1") == {"memo": '{"n":1}'}
        assert store.load_graph("s1") == T1.nodes + T3.nodes
        assert store.load_nodes_of_kind("s1", "message") == T1.nodes + T3.nodes
        assert store.list_frames("s1") == []
        assert store.get_lease("s1") is None
        assert store.list_children("s1") == []
        assert [s.session_id for s in store.list_sessions()] == ["s1", "s2"]
        assert [n.message.text for n in store.load_active_path("s2")] == ["hello", "hi"]
    assert _raw(v2_file, "SELECT value FROM lash_meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    # each turn's leaf is recorded (the empty turn's is the leaf it kept)
    assert _raw(v2_file, "SELECT session_id, turn_id, leaf_id FROM turns ORDER BY session_id, revision") == [
        ("s1", "t1", "t1-n3"),
        ("s1", "t2", "t1-n3"),
        ("s1", "t3", "t3-n1"),
        ("s2", "t1", "t1-n1"),
    ]


def test_hashes_recorded_by_schema_2_still_replay(v2_file: Path) -> None:
    with SqliteStore(v2_file) as store:
        before = store.get_session("s1")
        for commit, revision, leaf in ((T1, 1, "t1-n3"), (T2, 2, "t1-n3"), (T3, 3, "t3-n1")):
            result = store.commit_turn(commit)
            assert (result.replayed, result.head_revision, result.leaf_id) == (True, revision, leaf)
        assert store.get_session("s1") == before


def test_migrated_file_takes_the_new_records(v2_file: Path) -> None:
    with SqliteStore(v2_file) as store:
        parent = store.get_session("s1")
        child = store.open_session(
            "s1.child", mode="standard", frame_id="f0", now=T0 + 50, spec='{"model":"m2"}', parent=parent,
            parent_turn_id="t4", parent_call_id="call-9",
        )
        assert (child.depth, child.parent_session_id) == (1, "s1")
        assert store.list_children("s1") == [child]
        lease = store.claim_lease("s1", owner="me", token="tok", ttl_s=30, now=T0 + 60)
        summary = Node(node_id="c1-s0", parent_id=None, frame_id="f1", turn_id="c1", kind="message",
                       payload=Message.user("summary"), created_at=T0 + 61)
        note = Node(node_id="c1-p0", parent_id="t3-n1", frame_id="f0", turn_id="c1", kind="probe.note",
                    payload=json.dumps({"kind": "probe.note", "data": {"n": 1}}), created_at=T0 + 61)
        frame = Frame(frame_id="f1", previous_frame_id="f0", reason="compaction", opened_by="c1",
                      seed_node_ids=("c1-s0",), created_at=T0 + 61)
        result = store.commit_maintenance(
            MaintenanceCommit(session_id="s1", key="c1", expected_head_revision=3, nodes=(note, summary),
                              committed_at=T0 + 61, frame=frame, lease=lease)
        )
        assert (result.head_revision, result.leaf_id) == (4, "c1-s0")
        assert store.load_active_path("s1") == (summary,)
        assert store.list_frames("s1") == [frame]
        assert store.load_nodes_of_kind("s1", "probe.note") == (note,)
        assert [t.turn_id for t in store.list_turns("s1")] == ["t1", "t2", "t3"]


def test_new_indexes_are_used(v2_file: Path) -> None:
    with SqliteStore(v2_file) as store:
        conn = store._conn
        children = " ".join(
            r[3] for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT session_id FROM sessions WHERE parent_session_id = ? "
                "ORDER BY created_at, session_id", ("s1",)
            )
        )
        assert "sessions_by_parent" in children, children
        kinds = " ".join(
            r[3] for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT node_id FROM nodes INDEXED BY nodes_by_kind "
                "WHERE session_id = ? AND kind = ? AND kind != 'message' ORDER BY rowid", ("s1", "k")
            )
        )
        assert "nodes_by_kind" in kinds and "TEMP B-TREE" not in kinds, kinds
        frame = " ".join(
            r[3] for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT node_id FROM nodes INDEXED BY nodes_by_frame "
                "WHERE session_id = ? AND kind = 'message' AND frame_id = ? ORDER BY rowid", ("s1", "f0")
            )
        )
        assert "nodes_by_frame" in frame and "TEMP B-TREE" not in frame, frame
