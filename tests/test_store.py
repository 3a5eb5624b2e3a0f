"""Stores: the conformance suite on both first-party stores, plus SQLite-only behaviour."""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from lash_kernel import serde
from lash_kernel.errors import (
    CommitConflictError,
    ConfigError,
    CorruptStoreError,
    RecordDecodeError,
    SchemaVersionError,
    SessionNotFoundError,
    StoreError,
)
from lash_kernel.messages import Message, TextPart
from lash_kernel.outcomes import Finished, Stopped
from lash_kernel.store.base import Node, PendingInput, Store, TurnCommit
from lash_kernel.store.memory import MemoryStore
from lash_kernel.store.sqlite import _ACTIVE_PATH_SQL, SCHEMA_VERSION, SqliteStore
from lash_kernel.testing import conformance
from lash_kernel.testing.conformance import check_store
from lash_kernel.usage import TokenUsage, UsageKey, UsageLedger

T0 = 1_700_000_000.0


def _turn(
    session_id: str,
    turn_id: str,
    expected: int,
    parent_id: str | None,
    texts: tuple[str, ...] = ("hello", "hi there"),
    *,
    tokens: int = 10,
    at: float = T0,
    node_prefix: str | None = None,
) -> TurnCommit:
    nodes = []
    parent = parent_id
    prefix = node_prefix or turn_id
    for i, text in enumerate(texts):
        role = "user" if i == 0 else "assistant"
        node = Node(
            node_id=f"{prefix}-{i}",
            parent_id=parent,
            frame_id="f0",
            turn_id=turn_id,
            kind="message",
            payload=Message(role=role, parts=(TextPart(text=text),)),
            created_at=at,
        )
        nodes.append(node)
        parent = node.node_id
    return TurnCommit(
        session_id=session_id,
        turn_id=turn_id,
        expected_head_revision=expected,
        nodes=tuple(nodes),
        usage=UsageLedger.of([(UsageKey(source="turn", model="m"), TokenUsage(input_tokens=tokens), 1)]),
        outcome=Finished(text=texts[-1]),
        committed_at=at,
    )


def _open(store: Store, session_id: str) -> None:
    store.open_session(session_id, mode="standard", frame_id="f0", now=T0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "lash.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(db_path) as s:
        yield s


def _raw(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        with conn:
            return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# -- conformance -------------------------------------------------------------------------------


def test_memory_store_conforms() -> None:
    check_store(MemoryStore)


def test_sqlite_store_conforms_fresh_file_per_check(tmp_path: Path) -> None:
    counter = itertools.count()
    check_store(lambda: SqliteStore(tmp_path / f"db{next(counter)}.sqlite"))


def test_sqlite_store_conforms_one_shared_file(db_path: Path) -> None:
    check_store(lambda: SqliteStore(db_path))
    with SqliteStore(db_path) as store:
        assert len(store.list_sessions()) > 10  # every check's sessions live in the one file


def test_sqlite_store_conforms_in_memory() -> None:
    check_store(lambda: SqliteStore(":memory:"))


def test_conformance_exports_every_check() -> None:
    assert sorted(conformance.__all__) == conformance.__all__
    for check in conformance.CHECKS:
        assert check.__name__ in conformance.__all__
        assert check.__doc__


class _Wrapped:
    """A MemoryStore with one behaviour broken, to prove the suite catches it."""

    def __init__(self, broken: str) -> None:
        self._inner = MemoryStore()
        self._broken = broken

    def __getattr__(self, name: str) -> Any:
        if name == "load_frame_messages" and self._broken == "frame_messages":
            return lambda sid: tuple(reversed([n.message for n in self._inner.load_active_path(sid)]))
        return getattr(self._inner, name)

    def commit_turn(self, commit: TurnCommit) -> Any:
        if self._broken == "no_cas":
            head = self._inner.get_session(commit.session_id).head_revision
            commit = attrs.evolve(commit, expected_head_revision=head)
        return self._inner.commit_turn(commit)

    def load_active_path(self, session_id: str) -> tuple[Node, ...]:
        path = self._inner.load_active_path(session_id)
        return tuple(reversed(path)) if self._broken == "reversed_path" else path

    def usage_ledger(self, session_id: str) -> UsageLedger:
        ledger = self._inner.usage_ledger(session_id)
        return UsageLedger(entries=ledger.entries[:1]) if self._broken == "usage" else ledger


@pytest.mark.parametrize(
    ("broken", "check"),
    [
        ("no_cas", "check_commit_cas_conflict"),
        ("reversed_path", "check_active_path"),
        ("frame_messages", "check_active_path"),
        ("usage", "check_usage_ledger_accumulates"),
    ],
)
def test_conformance_catches_broken_stores(broken: str, check: str) -> None:
    with pytest.raises(AssertionError, match=check):
        check_store(lambda: _Wrapped(broken))  # type: ignore[arg-type,return-value]


# -- SQLite: files, processes, schema ----------------------------------------------------------


def test_reopen_sees_same_state(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        _open(store, "s1")
        store.commit_turn(_turn("s1", "t1", 0, None))
        store.commit_turn(_turn("s1", "t2", 1, "t1-1", at=T0 + 1))
        store.record_input(PendingInput(session_id="s1", turn_id="t3", message=Message.user("q"), created_at=T0 + 2))
        before = (
            store.get_session("s1"),
            store.load_active_path("s1"),
            store.list_turns("s1"),
            store.usage_ledger("s1"),
            store.pending_inputs("s1"),
            store.list_sessions(),
        )
    with SqliteStore(db_path, create=False) as again:
        after = (
            again.get_session("s1"),
            again.load_active_path("s1"),
            again.list_turns("s1"),
            again.usage_ledger("s1"),
            again.pending_inputs("s1"),
            again.list_sessions(),
        )
        assert after == before
        assert again.commit_turn(_turn("s1", "t2", 1, "t1-1", at=T0 + 1)).replayed


def test_other_process_reads_committed_turn_and_can_write(store: SqliteStore, db_path: Path) -> None:
    _open(store, "s1")
    store.commit_turn(_turn("s1", "t1", 0, None, ("question", "the answer")))
    code = textwrap.dedent(
        """
        import json, sys
        from lash_kernel.store.sqlite import SqliteStore
        from lash_kernel.store.base import Node, TurnCommit
        from lash_kernel.messages import Message
        from lash_kernel.outcomes import Finished
        from lash_kernel.usage import UsageLedger
        with SqliteStore(sys.argv[1], create=False) as store:
            turns = store.list_turns("s1")
            path = store.load_active_path("s1")
            node = Node(node_id="t2-0", parent_id=path[-1].node_id, frame_id="f0", turn_id="t2",
                        kind="message", payload=Message.user("from the child"), created_at=2.0)
            result = store.commit_turn(TurnCommit(session_id="s1", turn_id="t2", expected_head_revision=1,
                nodes=(node,), usage=UsageLedger(), outcome=Finished(), committed_at=2.0))
            print(json.dumps({
                "turns": [[t.turn_id, t.revision, t.outcome.text, list(t.node_ids)] for t in turns],
                "path": [n.payload.text for n in path],
                "head": result.head_revision,
            }))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(db_path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen == {
        "turns": [["t1", 1, "the answer", ["t1-0", "t1-1"]]],
        "path": ["question", "the answer"],
        "head": 2,
    }
    # the parent's still-open connection sees the child's commit
    assert store.get_session("s1").head_revision == 2
    assert [n.payload.text for n in store.load_active_path("s1")] == ["question", "the answer", "from the child"]


def test_durability_normal_is_the_hosts_choice(db_path: Path) -> None:
    with SqliteStore(db_path, durability="normal") as store:
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with pytest.raises(ConfigError, match="durability must be 'full' or 'normal'"):
        SqliteStore(db_path, durability="off")  # type: ignore[arg-type]


def test_pragmas_and_schema_version(store: SqliteStore, db_path: Path) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: durable by default
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    assert _raw(db_path, "PRAGMA journal_mode")[0][0] == "wal"  # persistent, seen by others
    assert _raw(db_path, "SELECT value FROM lash_meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    assert SCHEMA_VERSION == 4


def test_version_1_file_is_migrated_on_open(db_path: Path) -> None:
    # a file the first release wrote: the schema-2 fixture without what version 2 added
    conn = sqlite3.connect(db_path)
    conn.executescript((Path(__file__).parent / "fixtures" / "store-v2.sql").read_text("utf-8"))
    conn.execute("DROP TABLE plugin_state")
    conn.execute("UPDATE lash_meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with SqliteStore(str(db_path)) as store:
        assert store.get_session("s1").head_revision == 3
        assert store.load_plugin_state("s1") == {}
    assert _raw(db_path, "SELECT value FROM lash_meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    assert _raw(db_path, "SELECT name FROM sqlite_master WHERE name = 'plugin_state'") == [("plugin_state",)]


def test_repr_and_path(db_path: Path) -> None:
    with SqliteStore(str(db_path)) as store:
        assert store.path == db_path
        assert str(db_path) in repr(store)
    assert "closed" in repr(store)


def test_newer_schema_version_is_refused_and_untouched(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        _open(store, "s1")
    _raw(db_path, "UPDATE lash_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    before = db_path.read_bytes()
    with pytest.raises(SchemaVersionError) as info:
        SqliteStore(db_path)
    message = str(info.value)
    assert str(db_path) in message
    assert "newer lash" in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message and str(SCHEMA_VERSION) in message
    assert "upgrade lash-kernel" in message.lower()
    assert db_path.read_bytes() == before


def test_garbage_file_is_corrupt(db_path: Path) -> None:
    garbage = b"this is not a database, just some text " * 200
    db_path.write_bytes(garbage)
    with pytest.raises(CorruptStoreError, match="not a SQLite database") as info:
        SqliteStore(db_path)
    assert str(db_path) in str(info.value)
    assert db_path.read_bytes() == garbage


def test_foreign_sqlite_database_is_corrupt(db_path: Path) -> None:
    _raw(db_path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    before = db_path.read_bytes()
    with pytest.raises(CorruptStoreError, match="not a lash database") as info:
        SqliteStore(db_path)
    assert str(db_path) in str(info.value)
    assert db_path.read_bytes() == before
    assert _raw(db_path, "SELECT name FROM sqlite_master WHERE type = 'table'") == [("customers",)]


def test_create_false(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(StoreError, match="no lash database"):
        SqliteStore(missing, create=False)
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(CorruptStoreError, match="empty"):
        SqliteStore(empty, create=False)


def test_closed_store_refuses_calls(db_path: Path) -> None:
    store = SqliteStore(db_path)
    _open(store, "s1")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get_session("s1")
    memory = MemoryStore()
    memory.close()
    memory.close()
    with pytest.raises(StoreError, match="closed"):
        memory.list_sessions()


# -- SQLite: commits -----------------------------------------------------------------------------


def _counts(path: Path, session_id: str) -> dict[str, Any]:
    return {
        table: _raw(path, f"SELECT * FROM {table} WHERE session_id = ? ORDER BY 1, 2", (session_id,))
        for table in ("sessions", "nodes", "turns", "pending_inputs", "usage")
    }


def test_conflicting_node_id_rolls_back_everything(store: SqliteStore, db_path: Path) -> None:
    _open(store, "s1")
    store.commit_turn(_turn("s1", "t1", 0, None))
    store.record_input(PendingInput(session_id="s1", turn_id="t2", message=Message.user("q"), created_at=T0))
    before = _counts(db_path, "s1")
    # three fine nodes, then one whose id exists already: the first three must not stay behind
    bad = _turn("s1", "t2", 1, "t1-1", ("a", "b", "c", "d"), tokens=99)
    bad = attrs.evolve(bad, nodes=(*bad.nodes[:3], attrs.evolve(bad.nodes[3], node_id="t1-0")))
    with pytest.raises(CommitConflictError, match="'t1-0'.*already exists"):
        store.commit_turn(bad)
    assert _counts(db_path, "s1") == before
    assert not store._conn.in_transaction


def test_failure_late_in_commit_rolls_back_everything(store: SqliteStore, db_path: Path) -> None:
    _open(store, "s1")
    store.commit_turn(_turn("s1", "t1", 0, None))
    store.record_input(PendingInput(session_id="s1", turn_id="t2", message=Message.user("q"), created_at=T0))
    before = _counts(db_path, "s1")
    # fail the very last statements (head update) after nodes, usage and the turn row were written
    _raw(
        db_path,
        "CREATE TRIGGER fail_head BEFORE UPDATE ON sessions WHEN NEW.head_revision = 2 "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    with pytest.raises(StoreError, match="injected failure"):
        store.commit_turn(_turn("s1", "t2", 1, "t1-1", tokens=99))
    assert _counts(db_path, "s1") == before
    _raw(db_path, "DROP TRIGGER fail_head")
    assert store.commit_turn(_turn("s1", "t2", 1, "t1-1", tokens=99)).head_revision == 2
    assert store.pending_inputs("s1") == []


def test_cas_across_two_connections(db_path: Path) -> None:
    with SqliteStore(db_path) as a, SqliteStore(db_path) as b:
        _open(a, "s1")
        assert b.get_session("s1").head_revision == 0
        a.commit_turn(_turn("s1", "ta", 0, None))
        with pytest.raises(CommitConflictError, match="expected head revision 0, actual 1"):
            b.commit_turn(_turn("s1", "tb", 0, None, node_prefix="tb"))
        assert [t.turn_id for t in b.list_turns("s1")] == ["ta"]


def test_load_active_path_interleaved_sessions(store: SqliteStore) -> None:
    sessions = ["s1", "s2", "s3"]
    for sid in sessions:
        _open(store, sid)
    leaves: dict[str, str | None] = dict.fromkeys(sessions)
    for turn in range(4):
        for sid in sessions:  # same turn and node ids in every session, written interleaved
            commit = _turn(sid, f"t{turn}", turn, leaves[sid], (f"{sid} q{turn}", f"{sid} a{turn}"), at=T0 + turn)
            leaves[sid] = store.commit_turn(commit).leaf_id
    for sid in sessions:
        path = store.load_active_path(sid)
        assert [n.payload.text for n in path] == [f"{sid} {k}{t}" for t in range(4) for k in ("q", "a")]
        assert path[-1].node_id == store.get_session(sid).leaf_id


def test_active_path_and_head_use_key_lookups_only(store: SqliteStore) -> None:
    """Path and head reads are index searches keyed by session: no table scans."""
    conn = store._conn
    plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + _ACTIVE_PATH_SQL, {"sid": "x"})]
    assert not [step for step in plan if step.startswith("SCAN") and step not in ("SCAN p", "SCAN path")], plan
    assert any("sqlite_autoindex_nodes_1" in step for step in plan), plan
    head_plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM sessions WHERE session_id = ?", ("x",))]
    assert head_plan == ["SEARCH sessions USING PRIMARY KEY (session_id=?)"]


def test_outcome_text_is_stored_once_and_restored(store: SqliteStore, db_path: Path) -> None:
    _open(store, "s1")
    answer = "a long final answer " * 50
    store.commit_turn(_turn("s1", "t1", 0, None, ("question", answer)))
    stopped = attrs.evolve(
        _turn("s1", "t2", 1, "t1-1", ("q2", "partial")), outcome=Stopped(reason="max_turns", text="other text")
    )
    store.commit_turn(stopped)
    empty = TurnCommit(
        session_id="s1",
        turn_id="t3",
        expected_head_revision=2,
        nodes=(),
        usage=UsageLedger(),
        outcome=Finished(text="no nodes"),
        committed_at=T0,
    )
    store.commit_turn(empty)
    stored = dict(_raw(db_path, "SELECT turn_id, outcome FROM turns WHERE session_id = 's1'"))
    assert answer not in stored["t1"]
    assert "other text" in stored["t2"] and "no nodes" in stored["t3"]
    outcomes = [t.outcome for t in store.list_turns("s1")]
    assert outcomes == [
        Finished(text=answer),
        Stopped(reason="max_turns", text="other text"),
        Finished(text="no nodes"),
    ]


def test_corrupt_row_raises_record_decode_error(store: SqliteStore, db_path: Path) -> None:
    _open(store, "s1")
    store.commit_turn(_turn("s1", "t1", 0, None))
    _raw(db_path, "UPDATE nodes SET payload = '{\"role\": 5' WHERE node_id = 't1-0'")
    with pytest.raises(RecordDecodeError, match="'t1-0'"):
        store.load_active_path("s1")
    _raw(db_path, "UPDATE turns SET outcome = '[1, 2]' WHERE turn_id = 't1'")
    with pytest.raises(RecordDecodeError, match="'t1'"):
        store.list_turns("s1")


def test_persisted_json_is_read_leniently(store: SqliteStore, db_path: Path) -> None:
    _open(store, "s1")
    store.commit_turn(_turn("s1", "t1", 0, None))
    payload = json.dumps({"role": "user", "parts": [{"kind": "text", "text": "hello", "lang": "en"}], "extra": 1})
    _raw(db_path, "UPDATE nodes SET payload = ? WHERE node_id = 't1-0'", (payload,))
    assert store.load_active_path("s1")[0].payload == Message.user("hello")


def test_unknown_session_errors_are_key_errors(store: SqliteStore) -> None:
    with pytest.raises(KeyError):
        store.get_session("nope")
    with pytest.raises(SessionNotFoundError, match="'nope'"):
        store.discard_input("nope", "t1")


def test_load_nodes_missing_id(store: SqliteStore) -> None:
    _open(store, "s1")
    store.commit_turn(_turn("s1", "t1", 0, None))
    with pytest.raises(StoreError, match="'zzz'"):
        store.load_nodes("s1", ("t1-0", "zzz"))
    ids = tuple(f"t1-{i % 2}" for i in range(1200))  # more ids than one IN (...) chunk, repeated
    assert [n.node_id for n in store.load_nodes("s1", ids)] == list(ids)


def test_storage_stays_within_twice_the_message_json(db_path: Path) -> None:
    rnd = random.Random(7)
    words = "the agent calls a tool and reads its result then answers the user briefly".split()
    json_bytes = 0
    with SqliteStore(db_path) as store:
        for _ in range(4):
            sid = uuid.uuid4().hex
            _open(store, sid)
            leaf = None
            for revision in range(30):
                texts = tuple(" ".join(rnd.choices(words, k=rnd.randint(120, 400))) for _ in range(3))
                commit = _turn(sid, uuid.uuid4().hex, revision, leaf, texts, node_prefix=uuid.uuid4().hex)
                json_bytes += sum(len(serde.dumps(n.payload, Message).encode()) for n in commit.nodes)
                leaf = store.commit_turn(commit).leaf_id
    size = db_path.stat().st_size  # closing the last connection checkpointed the WAL
    assert not Path(f"{db_path}-wal").exists() or Path(f"{db_path}-wal").stat().st_size == 0
    fixed_overhead = 16 * 4096  # one page per table/index
    assert size <= 2 * json_bytes + fixed_overhead, (size, json_bytes)


# -- text that is not valid Unicode ---------------------------------------------------------------

LONE = "an emoji split in half \ud83d, and a stray low half \udc80"


@pytest.mark.parametrize("make", [MemoryStore, lambda: SqliteStore(":memory:")], ids=["memory", "sqlite-memory"])
def test_both_stores_store_lone_surrogates_exactly(make: Any) -> None:
    # the conformance check also allows a clean StoreError; our stores must store the text
    with make() as store:
        _open(store, "s1")
        pending = PendingInput(session_id="s1", turn_id="t1", message=Message.user(LONE), created_at=T0)
        store.record_input(pending)
        assert store.pending_inputs("s1") == [pending]
        commit = attrs.evolve(_turn("s1", "t1", 0, None, (LONE, f"echo: {LONE}")), plugin_state=(("p", f'"{LONE}"'),))
        assert store.commit_turn(commit).head_revision == 1
        assert store.load_active_path("s1") == commit.nodes
        assert store.list_turns("s1")[0].outcome == Finished(text=f"echo: {LONE}")
        assert json.loads(store.load_plugin_state("s1")["p"]) == LONE
        assert store.commit_turn(commit).replayed


def test_sqlite_stores_lone_surrogates_as_json_escapes_in_valid_utf8(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        _open(store, "s1")
        commit = _turn("s1", "t1", 0, None, (LONE, "ok"))
        store.commit_turn(commit)
        store.record_input(PendingInput(session_id="s1", turn_id="t2", message=Message.user(LONE), created_at=T0))
    # the file holds valid UTF-8 text (other tools can read it) with JSON escapes for the halves
    conn = sqlite3.connect(db_path)
    try:
        conn.text_factory = bytes
        payload = conn.execute("SELECT payload FROM nodes WHERE node_id = 't1-0'").fetchone()[0]
        message = conn.execute("SELECT message FROM pending_inputs").fetchone()[0]
    finally:
        conn.close()
    for raw in (payload, message):
        text = raw.decode("utf-8")  # strict: raises on invalid UTF-8
        assert "\\ud83d" in text and "\\udc80" in text
    with SqliteStore(db_path) as store:  # and reads back exactly after a reopen
        assert store.load_active_path("s1") == commit.nodes
        assert store.pending_inputs("s1")[0].message == Message.user(LONE)


def test_sqlite_refuses_a_lone_surrogate_in_an_id_with_a_store_error(store: SqliteStore, db_path: Path) -> None:
    with pytest.raises(StoreError, match="not valid Unicode") as info:
        _open(store, "s\ud800")
    assert not isinstance(info.value, UnicodeError)
    _open(store, "s1")
    before = _counts(db_path, "s1")
    bad = _turn("s1", "t1", 0, None, node_prefix="n\udfff")
    with pytest.raises(StoreError, match="not valid Unicode"):
        store.commit_turn(bad)
    assert _counts(db_path, "s1") == before  # rolled back: nothing written
    assert store.commit_turn(_turn("s1", "t1", 0, None)).head_revision == 1
