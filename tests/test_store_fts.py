"""Full-text search over message text (schema 4): ``SqliteStore.search_messages`` and
``lash sessions search``.

``fixtures/store-v3.sql`` is the ``iterdump`` of a database the schema-3 (0.2) store wrote:
session ``s1`` with a turn with a tool call whose answer has two text parts (t1) and a second
turn (t2), session ``s2`` with one turn (u1), and an ``empty`` session.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from lash_kernel.cli import cli
from lash_kernel.cli.sessions import _scan
from lash_kernel.errors import CommitConflictError, LashError
from lash_kernel.messages import Message, TextPart
from lash_kernel.outcomes import Finished
from lash_kernel.store.base import Node, TurnCommit
from lash_kernel.store.memory import MemoryStore
from lash_kernel.store.sqlite import SCHEMA_VERSION, SqliteStore, fts_query
from lash_kernel.usage import UsageLedger

FIXTURE = Path(__file__).parent / "fixtures" / "store-v3.sql"
T0 = 1_700_000_000.0


def _raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def v3_file(tmp_path: Path) -> Path:
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path)
    conn.executescript(FIXTURE.read_text("utf-8"))
    conn.close()
    assert _raw(path, "SELECT value FROM lash_meta WHERE key = 'schema_version'") == [("3",)]
    assert not _raw(path, "SELECT name FROM sqlite_master WHERE name = 'message_fts'")
    return path


def _turn(sid: str, tid: str, revision: int, parent: str | None, *texts: str) -> TurnCommit:
    nodes, prev = [], parent
    for i, text in enumerate(texts):
        role = "user" if i % 2 == 0 else "assistant"
        nodes.append(Node(node_id=f"{tid}-n{i}", parent_id=prev, frame_id="f0", turn_id=tid, kind="message",
                          payload=Message(role=role, parts=(TextPart(text=text),)), created_at=T0))
        prev = nodes[-1].node_id
    return TurnCommit(session_id=sid, turn_id=tid, expected_head_revision=revision, nodes=tuple(nodes),
                      usage=UsageLedger(), outcome=Finished(text=texts[-1]), committed_at=T0 + 100 + revision)


def _found(store: SqliteStore, text: str) -> list[tuple[str, str, str]]:
    return [(h.session_id, h.turn_id, h.message.text) for h in store.search_messages(text)]


def test_a_v3_file_is_migrated_and_back_filled(v3_file):
    with SqliteStore(v3_file) as store:
        assert _raw(v3_file, "SELECT value FROM lash_meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
        assert SCHEMA_VERSION == 4
        assert _found(store, "bergen") == [("s1", "t1", "It is in Bergen, by the harbour ✓")]  # two text parts
        assert _found(store, "FJORD mus") == [("s1", "t1", "Where is the Fjord museum?")]  # case, prefix
        assert _found(store, "opening hours") == [("s1", "t2", "And the opening hours?")]
        assert _found(store, "seven") == [("s2", "u1", "Seven.")]
        assert _found(store, "lookup") == [] and _found(store, "harbour bergen") == []  # tool parts; word order
        assert store.search_messages("?!") == []
        # every record still reads as before
        assert [t.turn_id for t in store.list_turns("s1")] == ["t1", "t2"]
    assert _raw(v3_file, "INSERT INTO message_fts (message_fts) VALUES ('integrity-check')") == []


def test_commits_and_deletes_keep_the_index_in_step(v3_file):
    with SqliteStore(v3_file) as store:
        store.commit_turn(_turn("s2", "u2", 1, "u1-n1", "Is eleven prime?", "Yes, eleven is prime."))
        assert _found(store, "eleven") == [("s2", "u2", "Is eleven prime?"), ("s2", "u2", "Yes, eleven is prime.")]
        assert [h.session_id for h in store.search_messages("is")][:1] == ["s2"]  # most recently updated first
        with pytest.raises(CommitConflictError):  # refused: nothing of it reaches the index
            store.commit_turn(_turn("s2", "u2", 2, "u2-n1", "Is thirteen prime?", "Yes."))
        with pytest.raises(LashError):
            store.commit_turn(_turn("s2", "u3", 0, "u2-n1", "Is thirteen prime?", "Yes."))  # stale head
        assert _found(store, "thirteen") == []
        assert store.delete_session("s2") == ["s2"]
        assert _found(store, "eleven") == [] and _found(store, "seven") == []
        assert _found(store, "bergen")  # other sessions untouched
    assert _raw(v3_file, "INSERT INTO message_fts (message_fts) VALUES ('integrity-check')") == []


def test_a_new_file_has_the_index(tmp_path):
    with SqliteStore(tmp_path / "new.db") as store:
        store.open_session("a", mode="standard", frame_id="f0", now=T0)
        store.commit_turn(_turn("a", "t1", 0, None, "Crème brûlée recipe?", "Sugar, cream, eggs."))
        assert _found(store, "creme brulee") == [("a", "t1", "Crème brûlée recipe?")]  # diacritics ignored
        assert store.search_messages("sugar", limit=0) == []


def test_fts_query_never_has_syntax():
    assert fts_query('rate "limit" OR x*') == '"rate limit OR x" *'
    assert fts_query("  ") == ""


def test_the_cli_searches_a_migrated_file_and_scans_other_stores(v3_file):
    result = CliRunner().invoke(cli, ["sessions", "search", "harbour", "--db", str(v3_file), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"session_id": "s1", "turn_id": "t1", "role": "assistant", "snippet": "It is in Bergen, by the harbour ✓"}
    ]
    limited = CliRunner().invoke(cli, ["sessions", "search", "the", "--limit", "1", "--db", str(v3_file), "--json"])
    assert len(json.loads(limited.stdout)) == 1
    memory = MemoryStore()
    assert not hasattr(memory, "search_messages")  # an optional capability: the CLI scans instead
    memory.open_session("m", mode="standard", frame_id="f0", now=T0)
    memory.commit_turn(_turn("m", "t1", 0, None, "hello there", "General Kenobi"))
    assert [(h.session_id, h.message.text) for h in _scan(memory, "KENOBI", 10)] == [("m", "General Kenobi")]


def test_every_table_of_a_store_file_can_be_counted_by_generic_tools(tmp_path):
    """Database browsers and benchmark harnesses run ``SELECT COUNT(*)`` on every table: the
    FTS index must allow it (a contentless FTS5 table without its size table refuses scans)."""
    SqliteStore(tmp_path / "lash.db").close()
    conn = sqlite3.connect(tmp_path / "lash.db")
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert "message_fts" in tables
        for table in tables:
            conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()
    finally:
        conn.close()
