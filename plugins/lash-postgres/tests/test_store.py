"""What the conformance suite does not reach: the URL scheme through a core, the versioned
schema and its advisory lock, one-statement lease claims racing from many threads, fencing, and
how database failures surface (timeouts, serialization failures, deadlocks)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from lash_kernel import (
    CommitConflictError,
    ConfigError,
    LashCore,
    LeaseLostError,
    SchemaVersionError,
    SessionBusyError,
    StoreError,
)
from lash_kernel.plugin import Finished, Message, Node, TokenUsage, TurnCommit, UsageKey, UsageLedger
from lash_kernel.testing import ScriptedModel
from lash_postgres import SCHEMA_VERSION, PostgresStore


def _open(store: PostgresStore) -> str:
    sid = uuid.uuid4().hex
    store.open_session(sid, mode="standard", frame_id="f0", now=1.0)
    return sid


def _commit(sid: str, turn: str, expected: int, parent: str | None, **kw: object) -> TurnCommit:
    node = Node(node_id=f"{turn}-n", parent_id=parent, frame_id="f0", turn_id=turn, kind="message",
                payload=Message.user(turn), created_at=2.0)
    kw.setdefault("usage", UsageLedger())
    return TurnCommit(session_id=sid, turn_id=turn, expected_head_revision=expected, nodes=(node,),
                      outcome=Finished(text=turn), committed_at=2.0, **kw)  # type: ignore[arg-type]


def test_core_opens_the_postgresql_url_and_a_second_core_sees_its_turns(pg_dsn: str) -> None:
    model = ScriptedModel().enqueue_text("first answer")
    with LashCore(model_client=model, model="m", store=pg_dsn) as core:
        assert isinstance(core.store, PostgresStore)
        assert core.session("s1").run_sync("hello").text == "first answer"
    with LashCore(model_client=ScriptedModel(), model="m", store=pg_dsn) as core:
        turns = core.session("s1").turns()
        assert [t.outcome.text for t in turns] == ["first answer"]


def test_an_unknown_scheme_names_the_postgres_schemes_among_the_known() -> None:
    with pytest.raises(ConfigError, match="known store schemes: memory, postgres, postgresql, sqlite"):
        LashCore(model_client=ScriptedModel(), model="m", store="nosuch://x")


def test_many_stores_opening_a_fresh_database_at_once_create_the_schema_once(pg_dsn: str) -> None:
    with ThreadPoolExecutor(8) as pool:
        stores = list(pool.map(lambda _: PostgresStore(pg_dsn, max_size=1), range(8)))
    for store in stores:
        store.close()
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT key, value FROM lash_meta").fetchall()
    assert rows == [("schema_version", str(SCHEMA_VERSION))]


def test_a_newer_schema_is_refused_and_left_alone(pg_dsn: str) -> None:
    PostgresStore(pg_dsn).close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE lash_meta SET value = %s WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(SchemaVersionError, match="newer lash-postgres"):
        PostgresStore(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT value FROM lash_meta").fetchone() == (str(SCHEMA_VERSION + 1),)


def test_a_version_1_database_is_migrated_in_place_keeping_its_usage(pg_dsn: str) -> None:
    """Schema 1 keyed usage by (session, source, model); 2 adds the served model to the key."""
    with PostgresStore(pg_dsn) as store:
        sid = _open(store)
        ledger = UsageLedger.of([(UsageKey(source="turn", model="m"), TokenUsage(input_tokens=7), 2)])
        store.commit_turn(_commit(sid, "t1", 0, None, usage=ledger))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # back to what version 1 wrote
        conn.execute("ALTER TABLE lash_usage DROP CONSTRAINT lash_usage_pkey")
        conn.execute("ALTER TABLE lash_usage DROP COLUMN served_model")
        conn.execute("ALTER TABLE lash_usage ADD PRIMARY KEY (session_id, source, model)")
        conn.execute("UPDATE lash_meta SET value = '1' WHERE key = 'schema_version'")
    with PostgresStore(pg_dsn) as store:
        assert store.usage_ledger(sid) == ledger
        key = UsageKey(source="turn", model="m", served_model="m-0613")
        served = UsageLedger.of([(key, TokenUsage(input_tokens=1), 1)])
        store.commit_turn(_commit(sid, "t2", 1, "t1-n", usage=served))
        assert store.usage_ledger(sid) == ledger + served
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT value FROM lash_meta").fetchone() == (str(SCHEMA_VERSION),)


def test_an_empty_database_without_create_and_an_unreachable_server_are_store_errors(pg_dsn: str) -> None:
    with pytest.raises(StoreError, match="no lash schema"):
        PostgresStore(pg_dsn, create=False)
    with pytest.raises(StoreError, match="cannot connect"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/x", connect_timeout_s=2)


def test_racing_claims_have_exactly_one_winner_and_each_takeover_bumps_the_fencing(pg_dsn: str) -> None:
    with PostgresStore(pg_dsn, max_size=8) as store:
        sid = _open(store)
        barrier = threading.Barrier(8)

        def claim(i: int) -> object:
            barrier.wait()
            try:
                return store.claim_lease(sid, owner=f"w{i}", token=f"tok{i}", ttl_s=30, now=100.0)
            except SessionBusyError as exc:
                return exc

        results = list(ThreadPoolExecutor(8).map(claim, range(8)))
        winners = [r for r in results if not isinstance(r, SessionBusyError)]
        assert len(winners) == 1 and winners[0].fencing == 1  # type: ignore[union-attr]
        later = store.claim_lease(sid, owner="late", token="late", ttl_s=30, now=200.0)  # the first expired
        assert later.fencing == 2 and store.get_lease(sid) == later


def test_a_commit_with_a_reclaimed_lease_is_fenced_off(pg_dsn: str) -> None:
    with PostgresStore(pg_dsn) as store:
        sid = _open(store)
        old = store.claim_lease(sid, owner="a", token="a", ttl_s=1, now=10.0)
        new = store.claim_lease(sid, owner="b", token="b", ttl_s=30, now=20.0)
        with pytest.raises(LeaseLostError):
            store.commit_turn(_commit(sid, "t1", 0, None, lease=old))
        with pytest.raises(LeaseLostError):
            store.renew_lease(old, ttl_s=30, now=21.0)
        assert store.get_session(sid).head_revision == 0
        assert store.commit_turn(_commit(sid, "t1", 0, None, lease=new)).head_revision == 1


def test_a_commit_stuck_behind_a_row_lock_fails_as_a_retryable_conflict(pg_dsn: str) -> None:
    with PostgresStore(pg_dsn, lock_timeout_s=0.2) as store:
        sid = _open(store)
        with psycopg.connect(pg_dsn) as blocker:
            blocker.execute("SELECT 1 FROM lash_sessions WHERE session_id = %s FOR UPDATE", (sid,))
            with pytest.raises(CommitConflictError, match="lock_timeout"):
                store.commit_turn(_commit(sid, "t1", 0, None))
        assert store.commit_turn(_commit(sid, "t1", 0, None)).head_revision == 1


def test_a_statement_past_statement_timeout_is_a_store_error(pg_dsn: str) -> None:
    with PostgresStore(pg_dsn, lock_timeout_s=30, statement_timeout_s=0.2) as store:
        sid = _open(store)
        with psycopg.connect(pg_dsn) as blocker:
            blocker.execute("SELECT 1 FROM lash_sessions WHERE session_id = %s FOR UPDATE", (sid,))
            with pytest.raises(StoreError, match="statement_timeout"):
                store.commit_turn(_commit(sid, "t1", 0, None))


@pytest.mark.parametrize(("sqlstate", "name"), [("40001", "SerializationFailure"), ("40P01", "DeadlockDetected")])
def test_serialization_failures_and_deadlocks_surface_as_commit_conflicts(
    pg_dsn: str, sqlstate: str, name: str
) -> None:
    with PostgresStore(pg_dsn) as store:
        with pytest.raises(CommitConflictError, match=f"{name}.*retryable"), store._tx("commit_turn") as cur:
            cur.execute(f"DO $$ BEGIN RAISE EXCEPTION 'raised by the server' USING ERRCODE = '{sqlstate}'; END $$")
