"""``PostgresStore``: the lash ``Store`` protocol on PostgreSQL (psycopg 3, a connection pool).

Rule: the store decides nothing itself. Every commit and every lease change follows the kernel's
shared rules (``plan_commit``, ``plan_claim``, ``plan_renew``, ``releases`` from
``lash_kernel.plugin``), so it behaves exactly like ``SqliteStore`` and ``MemoryStore``; it only
stores. Records are (de)serialised with the kernel's ``serde``; timestamps arrive as data.

Transactions (READ COMMITTED):
- a commit locks the session row (``SELECT … FOR UPDATE``), so commits of one session are
  serialised and those of different sessions run in parallel; it reads the lease row ``FOR
  SHARE``, so a claim cannot slip in between the fencing check and the commit; then it writes
  nodes, usage, the turn (or maintenance) row, frame and head in the same transaction;
- a lease claim is ONE ``INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING`` statement (the
  claim rule of ``plan_claim`` written in SQL); a renewal and a release are one ``UPDATE …
  RETURNING`` each. Only when nothing was returned does the store read the row, to say why
  (busy, lost, or no such session) through the shared rules;
- ``lock_timeout`` and ``statement_timeout`` are set on every connection, as backstops: a
  statement stuck behind a lock or running away fails instead of hanging a worker;
- a serialization failure or a detected deadlock raises ``CommitConflictError`` (retryable:
  re-read the head and try again); nothing of the failed transaction is kept.

Schema (version ``SCHEMA_VERSION`` in ``lash_meta``), created once under a transaction-level
advisory lock so that many processes opening a fresh database at once create it exactly once::

    lash_meta            (key PK, value)
    lash_sessions        (session_id PK, head_revision, leaf_id, frame_id, mode, created_at,
                          updated_at, activity_seq, spec, parent_session_id, parent_turn_id,
                          parent_call_id, depth)
    lash_nodes           (session_id, node_id, parent_id, frame_id, turn_id, kind, payload,
                          created_at, revision, ord)  PK (session_id, node_id);
                          commit order = (revision, ord)
    lash_turns           (session_id, turn_id, revision, outcome, content_hash, committed_at,
                          node_ids, leaf_id)  PK (session_id, turn_id), UNIQUE (session_id, revision)
    lash_maintenance     (session_id, key, revision, content_hash, committed_at, node_ids, leaf_id)
    lash_frames          (session_id, frame_id, previous_frame_id, reason, opened_by,
                          seed_node_ids, revision, created_at)
    lash_leases          (session_id PK, owner, token, fencing, expires_at)
    lash_pending_inputs  (id, session_id, turn_id, message, created_at)
    lash_usage           (session_id, source, model, served_model, <five buckets>, calls)
    lash_plugin_state    (session_id, plugin, turn_id, payload)

Text PostgreSQL cannot hold (a lone surrogate, a NUL) inside JSON text is stored as its JSON
escape (``\\udXXX``, ``\\u0000``), which reads back as equal JSON; in an id it is refused
with ``StoreError``.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, final

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from lash_kernel.plugin import (
    BUCKETS,
    NODE_COLUMNS,
    SESSION_COLUMNS,
    CommitConflictError,
    CommitPlan,
    CommitResult,
    Frame,
    Head,
    LashError,
    Lease,
    LeaseLostError,
    MaintenanceCommit,
    Message,
    Node,
    Outcome,
    PendingInput,
    RecordDecodeError,
    RecordedTurn,
    SchemaVersionError,
    SessionBusyError,
    SessionInfo,
    SessionNotFoundError,
    StoreError,
    TurnCommit,
    TurnRecord,
    UsageLedger,
    commit_hash,
    commit_key,
    decode_stored,
    frame_from_row,
    lease_from_row,
    node_from_row,
    plan_claim,
    plan_commit,
    plan_renew,
    serde,
    session_info_from_row,
    usage_ledger_from_rows,
)

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

SCHEMA_VERSION = 2
"""The schema version this lash-postgres writes and reads (``lash_meta.schema_version``)."""

# Statements that bring a database from version ``n`` to ``n + 1``, run under the schema lock.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (  # 2: usage is keyed by the served model too (lash-kernel 0.3)
        "ALTER TABLE lash_usage ADD COLUMN served_model TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE lash_usage DROP CONSTRAINT lash_usage_pkey",
        "ALTER TABLE lash_usage ADD PRIMARY KEY (session_id, source, model, served_model)",
        "UPDATE lash_meta SET value = '2' WHERE key = 'schema_version'",
    ),
}

_ADVISORY_KEY = 0x6C617368  # "lash": the advisory lock taken while the schema is created

_SCHEMA = f"""
CREATE TABLE lash_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE lash_sessions (
    session_id TEXT PRIMARY KEY,
    head_revision BIGINT NOT NULL,
    leaf_id TEXT,
    frame_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    activity_seq BIGINT NOT NULL DEFAULT 0,
    spec TEXT NOT NULL DEFAULT '',
    parent_session_id TEXT,
    parent_turn_id TEXT,
    parent_call_id TEXT,
    depth INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX lash_sessions_by_parent ON lash_sessions (parent_session_id, created_at);
CREATE INDEX lash_sessions_by_update ON lash_sessions (updated_at DESC, session_id);
CREATE TABLE lash_nodes (
    session_id TEXT NOT NULL REFERENCES lash_sessions (session_id),
    node_id TEXT NOT NULL,
    parent_id TEXT,
    frame_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    revision BIGINT NOT NULL,
    ord INTEGER NOT NULL,
    PRIMARY KEY (session_id, node_id)
);
CREATE INDEX lash_nodes_in_order ON lash_nodes (session_id, revision, ord);
CREATE INDEX lash_nodes_by_kind ON lash_nodes (session_id, kind, revision, ord);
CREATE TABLE lash_turns (
    session_id TEXT NOT NULL REFERENCES lash_sessions (session_id),
    turn_id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    committed_at DOUBLE PRECISION NOT NULL,
    node_ids TEXT NOT NULL,
    leaf_id TEXT,
    PRIMARY KEY (session_id, turn_id),
    UNIQUE (session_id, revision)
);
CREATE TABLE lash_maintenance (
    session_id TEXT NOT NULL REFERENCES lash_sessions (session_id),
    key TEXT NOT NULL,
    revision BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    committed_at DOUBLE PRECISION NOT NULL,
    node_ids TEXT NOT NULL,
    leaf_id TEXT,
    PRIMARY KEY (session_id, key),
    UNIQUE (session_id, revision)
);
CREATE TABLE lash_frames (
    session_id TEXT NOT NULL REFERENCES lash_sessions (session_id),
    frame_id TEXT NOT NULL,
    previous_frame_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    seed_node_ids TEXT NOT NULL,
    revision BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (session_id, frame_id),
    UNIQUE (session_id, revision)
);
CREATE INDEX lash_frames_by_previous ON lash_frames (session_id, previous_frame_id);
CREATE TABLE lash_leases (
    session_id TEXT PRIMARY KEY REFERENCES lash_sessions (session_id),
    owner TEXT NOT NULL,
    token TEXT NOT NULL,
    fencing BIGINT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE lash_pending_inputs (
    id BIGSERIAL,
    session_id TEXT NOT NULL REFERENCES lash_sessions (session_id),
    turn_id TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (session_id, turn_id)
);
CREATE TABLE lash_usage (
    session_id TEXT NOT NULL REFERENCES lash_sessions (session_id),
    source TEXT NOT NULL,
    model TEXT NOT NULL,
    served_model TEXT NOT NULL DEFAULT '',
    {", ".join(f"{b} BIGINT NOT NULL DEFAULT 0" for b in BUCKETS)},
    calls BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, source, model, served_model)
);
CREATE TABLE lash_plugin_state (
    session_id TEXT NOT NULL REFERENCES lash_sessions (session_id),
    plugin TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (session_id, plugin)
);
INSERT INTO lash_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')
"""

#: Every table keyed by session, those that reference ``lash_sessions`` first.
_SESSION_TABLES = (
    "lash_nodes", "lash_turns", "lash_maintenance", "lash_frames", "lash_leases", "lash_pending_inputs",
    "lash_usage", "lash_plugin_state", "lash_sessions",
)


# The leaf, walked back one primary-key lookup per step, stopping before another frame.
_ACTIVE_PATH_SQL = f"""
WITH RECURSIVE path ({NODE_COLUMNS}, depth) AS (
    SELECT n.node_id, n.parent_id, n.frame_id, n.turn_id, n.kind, n.payload, n.created_at, 0
    FROM lash_sessions AS s
    JOIN lash_nodes AS n ON n.session_id = s.session_id AND n.node_id = s.leaf_id
    WHERE s.session_id = %(sid)s AND n.frame_id = s.frame_id
    UNION ALL
    SELECT n.node_id, n.parent_id, n.frame_id, n.turn_id, n.kind, n.payload, n.created_at, p.depth + 1
    FROM path AS p
    JOIN lash_nodes AS n ON n.session_id = %(sid)s AND n.node_id = p.parent_id
    WHERE n.frame_id = p.frame_id
)
SELECT {NODE_COLUMNS} FROM path ORDER BY depth DESC
"""

# One statement per claim: insert a first lease, or take over a free/expired one with the next
# fencing number, or renew the live one held by the same token (same fencing). Returns nothing
# when another token holds a live lease or the session does not exist.
_CLAIM_SQL = """
INSERT INTO lash_leases AS l (session_id, owner, token, fencing, expires_at)
SELECT s.session_id, %(owner)s, %(token)s, 1, %(expires_at)s FROM lash_sessions AS s WHERE s.session_id = %(sid)s
ON CONFLICT (session_id) DO UPDATE SET
    owner = excluded.owner,
    token = excluded.token,
    fencing = CASE WHEN l.expires_at > %(now)s THEN l.fencing ELSE l.fencing + 1 END,
    expires_at = excluded.expires_at
WHERE l.expires_at <= %(now)s OR l.token = %(token)s
RETURNING owner, token, fencing, expires_at
"""

_RENEW_SQL = """
UPDATE lash_leases SET expires_at = %(expires_at)s
WHERE session_id = %(sid)s AND token = %(token)s AND fencing = %(fencing)s AND expires_at <> 0
RETURNING owner, token, fencing, expires_at
"""

_RELEASE_SQL = """
UPDATE lash_leases SET expires_at = 0
WHERE session_id = %(sid)s AND token = %(token)s AND fencing = %(fencing)s
RETURNING session_id
"""

_USAGE_UPSERT_SQL = f"""
INSERT INTO lash_usage (session_id, source, model, served_model, {", ".join(BUCKETS)}, calls)
VALUES (%s, %s, %s, %s, {", ".join("%s" for _ in BUCKETS)}, %s)
ON CONFLICT (session_id, source, model, served_model) DO UPDATE SET
    {", ".join(f"{b} = lash_usage.{b} + excluded.{b}" for b in BUCKETS)}, calls = lash_usage.calls + excluded.calls
"""

_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def _json_text(text: str) -> str:
    """JSON text made storable: each lone surrogate or NUL becomes its JSON escape, which decodes
    back to the same character. Valid text is returned as is."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _first_line(exc: BaseException) -> str:
    """The first line of a driver error (PostgreSQL appends CONTEXT / DETAIL lines)."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _payload_text(node: Node) -> str:
    payload = node.payload
    if isinstance(payload, Message):
        return _json_text(serde.dumps(payload, Message))
    return _json_text(payload) if isinstance(payload, str) else ""


def _check_id(*ids: str | None) -> None:
    """Refuse ids PostgreSQL text cannot hold (a NUL, a lone surrogate) before any SQL runs."""
    for value in ids:
        if value is not None and _UNSTORABLE.search(value) is not None:
            raise StoreError(f"id {value!r} holds a NUL or a lone surrogate, which PostgreSQL cannot store")


@final
class _SessionReads:
    """The commit rules' ``SessionReads``, inside the commit transaction (session row locked)."""

    def __init__(self, cur: psycopg.Cursor[Any], session_id: str, lease: Lease | None) -> None:
        self._cur = cur
        self._sid = session_id
        self._lease = lease
        self._rows: dict[str, tuple[RecordedTurn, str | None] | None] = {}

    def _row(self, key: str) -> tuple[RecordedTurn, str | None] | None:
        if key not in self._rows:
            row = self._cur.execute(
                "SELECT revision, content_hash, leaf_id FROM lash_turns WHERE session_id = %s AND turn_id = %s "
                "UNION ALL SELECT revision, content_hash, leaf_id FROM lash_maintenance "
                "WHERE session_id = %s AND key = %s",
                (self._sid, key, self._sid, key),
            ).fetchone()
            self._rows[key] = None if row is None else (RecordedTurn(revision=row[0], content_hash=row[1]), row[2])
        return self._rows[key]

    def recorded_turn(self, turn_id: str) -> RecordedTurn | None:
        row = self._row(turn_id)
        return None if row is None else row[0]

    def leaf_after(self, turn_id: str, revision: int) -> str | None:
        row = self._row(turn_id)
        return None if row is None else row[1]

    def existing_node_kinds(self, node_ids: tuple[str, ...]) -> Mapping[str, str]:
        rows = self._cur.execute(
            "SELECT node_id, kind FROM lash_nodes WHERE session_id = %s AND node_id = ANY(%s)",
            (self._sid, list(node_ids)),
        ).fetchall()
        return dict(rows)

    def frame_known(self, frame_id: str) -> bool:
        row = self._cur.execute(
            "SELECT 1 FROM lash_frames WHERE session_id = %s AND (frame_id = %s OR previous_frame_id = %s) LIMIT 1",
            (self._sid, frame_id, frame_id),
        ).fetchone()
        return row is not None

    def lease(self) -> Lease | None:
        return self._lease


@final
class PostgresStore:
    """The ``Store`` protocol on one PostgreSQL database holding many sessions.

    Safe to share between threads and processes: every call borrows a connection from a pool
    and runs in its own transaction. Many workers (processes, machines) may open the same
    database; the single-writer lease and the fenced commit keep one writer per session.

    Args:
        dsn: a libpq connection string or URL (``postgresql://user@host:5432/db``).
        min_size, max_size: connections the pool keeps open / may open.
        lock_timeout_s: longest wait for a row lock held by another transaction, seconds;
            then the statement fails (``CommitConflictError`` for a commit, else ``StoreError``).
        statement_timeout_s: longest any one statement may run, seconds (``StoreError``).
        connect_timeout_s: longest wait for a pooled connection, seconds (``StoreError``).
        create: create the schema in an empty database (under an advisory lock). With False an
            empty database raises ``StoreError``.

    Raises:
        StoreError: the server cannot be reached, or the database lacks the schema (create=False).
        SchemaVersionError: the database was written by a newer lash-postgres.
        ConfigError: the DSN is malformed.

    Every method raises ``StoreError`` subclasses only (see ``lash_kernel.store.base.Store``).
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        lock_timeout_s: float = 5.0,
        statement_timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        create: bool = True,
    ) -> None:
        self.dsn = dsn
        self._closed = False
        self._close_lock = threading.Lock()
        self._connect_timeout_s = connect_timeout_s
        options = f"-c lock_timeout={int(lock_timeout_s * 1000)} -c statement_timeout={int(statement_timeout_s * 1000)}"
        try:
            self._pool = ConnectionPool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                kwargs={"options": options, "autocommit": True},
                timeout=connect_timeout_s,
                open=False,
                name="lash-postgres",
            )
            self._pool.open(wait=True, timeout=connect_timeout_s)
        except (psycopg.Error, PoolTimeout) as exc:
            self._closed = True
            with contextlib.suppress(Exception):
                self._pool.close()
            raise StoreError(f"cannot connect to PostgreSQL at {self._where()}: {exc}") from exc
        except psycopg.ProgrammingError as exc:  # pragma: no cover - malformed DSN
            raise StoreError(f"bad PostgreSQL DSN {self._where()}: {exc}") from exc
        try:
            self._ensure_schema(create=create)
        except BaseException:
            self.close()
            raise

    def _where(self) -> str:
        """The DSN without its password, for messages."""
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", self.dsn)

    # -- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self, operation: str) -> Iterator[psycopg.Cursor[Any]]:
        """Borrow a connection, run one transaction and map database errors to ``StoreError``s."""
        if self._closed:
            raise StoreError(f"{operation} on a closed PostgresStore")
        try:
            with self._pool.connection(timeout=self._connect_timeout_s) as conn, conn.transaction():
                with conn.cursor() as cur:
                    yield cur
        except LashError:
            raise
        except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected) as exc:
            raise CommitConflictError(
                f"{operation}: {exc.__class__.__name__} (retryable: re-read the head and try again): {_first_line(exc)}"
            ) from exc
        except psycopg.errors.LockNotAvailable as exc:
            error = CommitConflictError if operation.startswith("commit") else StoreError
            message = f"{operation}: a row lock stayed busy past lock_timeout (retryable): {_first_line(exc)}"
            raise error(message) from exc
        except psycopg.errors.QueryCanceled as exc:
            raise StoreError(f"{operation}: cancelled by statement_timeout: {_first_line(exc)}") from exc
        except (psycopg.Error, PoolTimeout, UnicodeEncodeError) as exc:
            raise StoreError(f"{operation} on PostgreSQL {self._where()} failed: {_first_line(exc)}") from exc

    def _ensure_schema(self, *, create: bool) -> None:
        with self._tx("open") as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_KEY,))
            exists = cur.execute("SELECT to_regclass('lash_meta') IS NOT NULL").fetchone()
            if exists is None or not exists[0]:
                if not create:
                    raise StoreError(f"{self._where()} holds no lash schema (and create=False)")
                cur.execute(_SCHEMA)
                return
            row = cur.execute("SELECT value FROM lash_meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row is not None and str(row[0]).isdigit() else None
            if version is None:
                raise StoreError(f"{self._where()}: lash_meta has no usable schema_version")
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{self._where()} was written by a newer lash-postgres (schema version {version}; this one "
                    f"supports {SCHEMA_VERSION}). Upgrade lash-postgres; the database was not modified."
                )
            for step in range(version, SCHEMA_VERSION):  # in this transaction: all or nothing
                for statement in _MIGRATIONS[step]:
                    cur.execute(statement)

    @staticmethod
    def _require_session(cur: psycopg.Cursor[Any], session_id: str) -> None:
        if cur.execute("SELECT 1 FROM lash_sessions WHERE session_id = %s", (session_id,)).fetchone() is None:
            raise SessionNotFoundError(f"no session {session_id!r} in this store")

    def __repr__(self) -> str:
        return f"<PostgresStore {self._where()}{' closed' if self._closed else ''}>"

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pool's connections. Idempotent; other calls then raise ``StoreError``."""
        with self._close_lock:
            if self._closed and getattr(self, "_pool_closed", False):
                return
            self._closed = True
            self._pool_closed = True
            with contextlib.suppress(Exception):
                self._pool.close()

    # -- sessions ------------------------------------------------------------------------------

    def open_session(
        self,
        session_id: str,
        *,
        mode: str,
        frame_id: str,
        now: float,
        spec: str = "",
        parent: SessionInfo | None = None,
        parent_turn_id: str | None = None,
        parent_call_id: str | None = None,
    ) -> SessionInfo:
        """Return the session's head, creating an empty session if it does not exist (see
        ``Store.open_session``). Two processes creating the same id race safely
        (``ON CONFLICT DO NOTHING``).

        Raises:
            SessionNotFoundError: ``parent`` is not a session of this store (nothing is created).
            StoreError: a database failure, or the store is closed.
        """
        _check_id(session_id, frame_id, mode, parent_turn_id, parent_call_id)
        select = f"SELECT {SESSION_COLUMNS} FROM lash_sessions WHERE session_id = %s"
        with self._tx("open_session") as cur:
            row = cur.execute(select, (session_id,)).fetchone()
            if row is None:
                link: tuple[Any, ...] = (None, None, None, 0)
                if parent is not None:
                    found = cur.execute(
                        "SELECT depth FROM lash_sessions WHERE session_id = %s", (parent.session_id,)
                    ).fetchone()
                    if found is None:
                        raise SessionNotFoundError(f"no parent session {parent.session_id!r} in this store")
                    link = (parent.session_id, parent_turn_id, parent_call_id, found[0] + 1)
                cur.execute(
                    f"INSERT INTO lash_sessions ({SESSION_COLUMNS}) "
                    "VALUES (%s, 0, NULL, %s, %s, %s, %s, 0, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (session_id, frame_id, mode, now, now, _json_text(spec), *link),
                )
                row = cur.execute(select, (session_id,)).fetchone()
        assert row is not None
        return session_info_from_row(row)

    def get_session(self, session_id: str) -> SessionInfo:
        """The session's head: one primary-key lookup. Raises ``SessionNotFoundError``."""
        with self._tx("get_session") as cur:
            row = cur.execute(
                f"SELECT {SESSION_COLUMNS} FROM lash_sessions WHERE session_id = %s", (session_id,)
            ).fetchone()
        if row is None:
            raise SessionNotFoundError(f"no session {session_id!r} in this store")
        return session_info_from_row(row)

    def list_sessions(self) -> list[SessionInfo]:
        """All sessions, most recently updated first (ties: by session id)."""
        with self._tx("list_sessions") as cur:
            rows = cur.execute(
                f"SELECT {SESSION_COLUMNS} FROM lash_sessions ORDER BY updated_at DESC, session_id"
            ).fetchall()
        return [session_info_from_row(r) for r in rows]

    def delete_session(self, session_id: str) -> list[str]:
        """Delete the session and its child sessions, recursively, with every row stored for
        them, in one transaction (see ``Store.delete_session``).

        Returns:
            The deleted session ids, ``session_id`` first, then descendants breadth first.
        Raises:
            SessionNotFoundError: no such session.
            StoreError: a database failure, or the store is closed.
        """
        with self._tx("delete_session") as cur:
            self._require_session(cur, session_id)
            doomed, i = [session_id], 0
            while i < len(doomed):
                rows = cur.execute(
                    "SELECT session_id FROM lash_sessions WHERE parent_session_id = %s ORDER BY session_id",
                    (doomed[i],),
                ).fetchall()
                doomed += [r[0] for r in rows]
                i += 1
            for table in _SESSION_TABLES:  # children of lash_sessions first (foreign keys)
                cur.execute(f"DELETE FROM {table} WHERE session_id = ANY(%s)", (doomed,))
        return doomed

    def list_children(self, session_id: str) -> list[SessionInfo]:
        """Sessions whose parent is ``session_id``, oldest first. Raises ``SessionNotFoundError``."""
        with self._tx("list_children") as cur:
            self._require_session(cur, session_id)
            rows = cur.execute(
                f"SELECT {SESSION_COLUMNS} FROM lash_sessions WHERE parent_session_id = %s "
                "ORDER BY created_at, session_id",
                (session_id,),
            ).fetchall()
        return [session_info_from_row(r) for r in rows]

    def load_active_path(self, session_id: str) -> tuple[Node, ...]:
        """Nodes from the current frame's first node to the leaf, oldest first: a recursive
        query from the leaf, one index lookup per node (cost independent of total history).

        Raises:
            SessionNotFoundError: no such session.
            RecordDecodeError: a stored message cannot be decoded.
        """
        return tuple(node_from_row(session_id, r) for r in self._active_path_rows("load_active_path", session_id))

    def load_frame_messages(self, session_id: str) -> tuple[Message, ...]:
        """The active path's messages, oldest first, decoded in one batch (no ``Node``
        records): the optional capability the kernel loads sessions through.

        Raises:
            SessionNotFoundError: no such session.
            RecordDecodeError: a stored message cannot be decoded.
        """
        rows = self._active_path_rows("load_frame_messages", session_id)
        try:
            return tuple(serde.loads_messages([r[5] for r in rows]))
        except RecordDecodeError:  # decode one by one, so the error names the bad node
            return tuple(node_from_row(session_id, r).message for r in rows)

    def _active_path_rows(self, operation: str, session_id: str) -> list[Any]:
        with self._tx(operation) as cur:
            self._require_session(cur, session_id)
            return cur.execute(_ACTIVE_PATH_SQL, {"sid": session_id}).fetchall()

    # -- admitted input ------------------------------------------------------------------------

    def record_input(self, pending: PendingInput) -> None:
        """Durably admit a turn's user input; idempotent per turn, a no-op for a committed turn.

        Raises:
            SessionNotFoundError: no such session.
        """
        _check_id(pending.session_id, pending.turn_id)
        message = _json_text(serde.dumps(pending.message, Message))
        with self._tx("record_input") as cur:
            self._require_session(cur, pending.session_id)
            cur.execute(
                "INSERT INTO lash_pending_inputs (session_id, turn_id, message, created_at) "
                "SELECT %s, %s, %s, %s WHERE NOT EXISTS "
                "(SELECT 1 FROM lash_turns WHERE session_id = %s AND turn_id = %s) ON CONFLICT DO NOTHING",
                (pending.session_id, pending.turn_id, message, pending.created_at, pending.session_id, pending.turn_id),
            )

    def pending_inputs(self, session_id: str) -> list[PendingInput]:
        """Admitted inputs whose turn never committed, oldest first. Raises ``SessionNotFoundError``."""
        with self._tx("pending_inputs") as cur:
            self._require_session(cur, session_id)
            rows = cur.execute(
                "SELECT turn_id, message, created_at FROM lash_pending_inputs WHERE session_id = %s "
                "ORDER BY created_at, id",
                (session_id,),
            ).fetchall()
        return [
            PendingInput(
                session_id=session_id,
                turn_id=turn_id,
                message=decode_stored(text, Message, f"session {session_id!r} pending input {turn_id!r}"),
                created_at=created_at,
            )
            for turn_id, text, created_at in rows
        ]

    def discard_input(self, session_id: str, turn_id: str) -> None:
        """Drop a pending input (no-op if absent). Raises ``SessionNotFoundError``."""
        with self._tx("discard_input") as cur:
            self._require_session(cur, session_id)
            cur.execute("DELETE FROM lash_pending_inputs WHERE session_id = %s AND turn_id = %s", (session_id, turn_id))

    def sessions_with_pending_input(self, *, limit: int, now: float | None = None) -> list[str]:
        """Sessions with pending input, oldest pending input first; with ``now``, sessions
        whose lease is live at ``now`` are left out (see ``Store.sessions_with_pending_input``).

        Raises:
            StoreError: a database failure, or the store is closed.
        """
        with self._tx("sessions_with_pending_input") as cur:
            rows = cur.execute(
                "SELECT p.session_id FROM lash_pending_inputs p "
                "LEFT JOIN lash_leases l ON l.session_id = p.session_id "
                "WHERE %(now)s::double precision IS NULL OR l.session_id IS NULL OR l.expires_at <= %(now)s "
                "GROUP BY p.session_id ORDER BY MIN(p.created_at), p.session_id LIMIT %(limit)s",
                {"now": now, "limit": max(limit, 0)},
            ).fetchall()
        return [sid for (sid,) in rows]

    # -- commits -------------------------------------------------------------------------------

    def commit_turn(self, commit: TurnCommit) -> CommitResult:
        """Commit one turn in one transaction under the shared commit rules (see
        ``lash_kernel.store.base`` and ``Store.commit_turn``).

        Raises:
            SessionNotFoundError, CommitConflictError (also for a serialization failure, a
            deadlock or a lock wait past ``lock_timeout``: retry), LeaseLostError,
            SessionBusyError, StoreError. Each writes nothing.
        """
        return self._commit("commit_turn", commit)

    def commit_maintenance(self, commit: MaintenanceCommit) -> CommitResult:
        """Commit a maintenance commit under the turn-commit rules (see ``Store.commit_maintenance``).

        Raises:
            As ``commit_turn``.
        """
        return self._commit("commit_maintenance", commit)

    def _commit(self, operation: str, commit: TurnCommit | MaintenanceCommit) -> CommitResult:
        sid, key = commit.session_id, commit_key(commit)
        _check_id(sid, key, *(n.node_id for n in commit.nodes), *(n.parent_id for n in commit.nodes))
        _check_id(*(n.frame_id for n in commit.nodes), *(n.kind for n in commit.nodes))
        if commit.frame is not None:
            _check_id(commit.frame.frame_id, commit.frame.reason, commit.frame.opened_by, *commit.frame.seed_node_ids)
        digest = commit_hash(commit)
        payloads = [_payload_text(n) for n in commit.nodes]
        with self._tx(operation) as cur:
            row = cur.execute(
                "SELECT head_revision, leaf_id, frame_id, activity_seq FROM lash_sessions "
                "WHERE session_id = %s FOR UPDATE",
                (sid,),
            ).fetchone()
            if row is None:
                raise SessionNotFoundError(f"no session {sid!r} in this store")
            head = Head(revision=row[0], leaf_id=row[1], frame_id=row[2], activity_seq=row[3])
            lease_row = cur.execute(
                "SELECT owner, token, fencing, expires_at FROM lash_leases WHERE session_id = %s FOR SHARE", (sid,)
            ).fetchone()
            plan = plan_commit(commit, digest, head, _SessionReads(cur, sid, lease_from_row(sid, lease_row)))
            if not isinstance(plan, CommitPlan):
                return plan  # an identical re-commit: nothing to write
            new = plan.head
            if commit.nodes:
                cur.executemany(
                    f"INSERT INTO lash_nodes (session_id, {NODE_COLUMNS}, revision, ord) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (sid, n.node_id, n.parent_id, n.frame_id, n.turn_id, n.kind, text,
                         n.created_at, new.revision, i)
                        for i, (n, text) in enumerate(zip(commit.nodes, payloads, strict=True))
                    ],
                )
            if commit.usage.entries:
                cur.executemany(
                    _USAGE_UPSERT_SQL,
                    [
                        (sid, k.source, k.model, k.served_model, *(getattr(usage, b) for b in BUCKETS), calls)
                        for k, usage, calls in commit.usage.entries
                    ],
                )
            node_ids = serde.dumps(plan.node_ids, tuple[str, ...])
            if isinstance(commit, TurnCommit):
                cur.execute(
                    "INSERT INTO lash_turns (session_id, turn_id, revision, outcome, content_hash, committed_at, "
                    "node_ids, leaf_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        sid,
                        key,
                        new.revision,
                        _json_text(serde.dumps(commit.outcome, Outcome)),
                        digest,
                        commit.committed_at,
                        node_ids,
                        new.leaf_id,
                    ),
                )
                cur.execute("DELETE FROM lash_pending_inputs WHERE session_id = %s AND turn_id = %s", (sid, key))
                if commit.plugin_state:
                    cur.executemany(
                        "INSERT INTO lash_plugin_state (session_id, plugin, turn_id, payload) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (session_id, plugin) DO UPDATE SET turn_id = excluded.turn_id, "
                        "payload = excluded.payload",
                        [(sid, plugin, key, _json_text(text)) for plugin, text in commit.plugin_state],
                    )
            else:
                cur.execute(
                    "INSERT INTO lash_maintenance (session_id, key, revision, content_hash, committed_at, node_ids, "
                    "leaf_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (sid, key, new.revision, digest, commit.committed_at, node_ids, new.leaf_id),
                )
            frame = plan.frame
            if frame is not None:
                cur.execute(
                    "INSERT INTO lash_frames (session_id, frame_id, previous_frame_id, reason, opened_by, "
                    "seed_node_ids, revision, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        sid,
                        frame.frame_id,
                        frame.previous_frame_id,
                        frame.reason,
                        frame.opened_by,
                        serde.dumps(frame.seed_node_ids, tuple[str, ...]),
                        new.revision,
                        frame.created_at,
                    ),
                )
            cur.execute(
                "UPDATE lash_sessions SET head_revision = %s, leaf_id = %s, frame_id = %s, updated_at = %s, "
                "activity_seq = %s WHERE session_id = %s",
                (new.revision, new.leaf_id, new.frame_id, commit.committed_at, new.activity_seq, sid),
            )
        return plan.result()

    # -- leases --------------------------------------------------------------------------------

    def claim_lease(self, session_id: str, *, owner: str, token: str, ttl_s: float, now: float) -> Lease:
        """Claim (or, with the live lease's token, renew) the session's lease until ``now +
        ttl_s``: one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` statement (see
        ``Store.claim_lease``; the rule is ``plan_claim``'s).

        Raises:
            SessionBusyError: another token holds a live lease (nothing changes).
            SessionNotFoundError: no such session.
            StoreError: a database failure, or the store is closed.
        """
        _check_id(session_id, owner, token)
        params = {"sid": session_id, "owner": owner, "token": token, "expires_at": now + ttl_s, "now": now}
        with self._tx("claim_lease") as cur:
            row = cur.execute(_CLAIM_SQL, params).fetchone()
            if row is not None:
                return Lease(session_id=session_id, owner=row[0], token=row[1], fencing=row[2], expires_at=row[3])
            stored = self._read_lease(cur, session_id)
        plan_claim(session_id, stored, owner=owner, token=token, ttl_s=ttl_s, now=now)  # raises SessionBusyError
        raise SessionBusyError(f"session {session_id!r} is busy: another writer holds its lease; retry later")

    def renew_lease(self, lease: Lease, *, ttl_s: float, now: float) -> Lease:
        """Extend a held lease to ``now + ttl_s``: one ``UPDATE … RETURNING`` (see ``Store.renew_lease``).

        Raises:
            LeaseLostError: the lease has another token or fencing number now, or was released.
            SessionNotFoundError: no such session.
        """
        params = {"sid": lease.session_id, "token": lease.token, "fencing": lease.fencing, "expires_at": now + ttl_s}
        with self._tx("renew_lease") as cur:
            row = cur.execute(_RENEW_SQL, params).fetchone()
            if row is not None:
                return Lease(session_id=lease.session_id, owner=row[0], token=row[1], fencing=row[2], expires_at=row[3])
            stored = self._read_lease(cur, lease.session_id)
        plan_renew(lease, stored, ttl_s=ttl_s, now=now)  # raises LeaseLostError
        raise LeaseLostError(f"session {lease.session_id!r}: the lease (fencing {lease.fencing}) cannot be renewed")

    def release_lease(self, lease: Lease) -> None:
        """Free a held lease (``expires_at`` becomes 0, the fencing number stays): one ``UPDATE``.
        A no-op when the lease was lost meanwhile. Raises ``SessionNotFoundError``."""
        params = {"sid": lease.session_id, "token": lease.token, "fencing": lease.fencing}
        with self._tx("release_lease") as cur:
            if cur.execute(_RELEASE_SQL, params).fetchone() is None:
                self._require_session(cur, lease.session_id)

    def get_lease(self, session_id: str) -> Lease | None:
        """The session's last lease (possibly expired or released), None if never claimed.
        Raises ``SessionNotFoundError``."""
        with self._tx("get_lease") as cur:
            return self._read_lease(cur, session_id)

    @staticmethod
    def _read_lease(cur: psycopg.Cursor[Any], session_id: str) -> Lease | None:
        row = cur.execute(
            "SELECT l.owner, l.token, l.fencing, l.expires_at FROM lash_sessions AS s "
            "LEFT JOIN lash_leases AS l ON l.session_id = s.session_id WHERE s.session_id = %s",
            (session_id,),
        ).fetchone()
        if row is None:
            raise SessionNotFoundError(f"no session {session_id!r} in this store")
        return lease_from_row(session_id, row)

    # -- reads ---------------------------------------------------------------------------------

    def _turn_record(self, session_id: str, row: Sequence[Any]) -> TurnRecord:
        turn_id, revision, outcome, committed_at, node_ids = row
        what = f"session {session_id!r} turn {turn_id!r}"
        return TurnRecord(
            session_id=session_id,
            turn_id=turn_id,
            revision=revision,
            outcome=decode_stored(outcome, Outcome, what),
            committed_at=committed_at,
            node_ids=decode_stored(node_ids, tuple[str, ...], what),
        )

    def list_turns(self, session_id: str) -> list[TurnRecord]:
        """Committed turns, oldest first. Raises ``SessionNotFoundError``, ``RecordDecodeError``."""
        with self._tx("list_turns") as cur:
            self._require_session(cur, session_id)
            rows = cur.execute(
                "SELECT turn_id, revision, outcome, committed_at, node_ids FROM lash_turns "
                "WHERE session_id = %s ORDER BY revision",
                (session_id,),
            ).fetchall()
        return [self._turn_record(session_id, r) for r in rows]

    def get_turn(self, session_id: str, turn_id: str) -> TurnRecord | None:
        """The committed turn ``turn_id`` or None: a primary-key lookup. Raises ``SessionNotFoundError``."""
        with self._tx("get_turn") as cur:
            row = cur.execute(
                "SELECT turn_id, revision, outcome, committed_at, node_ids FROM lash_turns "
                "WHERE session_id = %s AND turn_id = %s",
                (session_id, turn_id),
            ).fetchone()
            if row is None:
                self._require_session(cur, session_id)
                return None
        return self._turn_record(session_id, row)

    def load_nodes(self, session_id: str, node_ids: tuple[str, ...]) -> tuple[Node, ...]:
        """The given nodes, in the order asked for (duplicates as often as asked).

        Raises:
            SessionNotFoundError: no such session.
            StoreError: a node id is not in the session.
        """
        wanted = list(dict.fromkeys(node_ids))
        with self._tx("load_nodes") as cur:
            self._require_session(cur, session_id)
            rows = cur.execute(
                f"SELECT {NODE_COLUMNS} FROM lash_nodes WHERE session_id = %s AND node_id = ANY(%s)",
                (session_id, wanted),
            ).fetchall()
        found = {r[0]: node_from_row(session_id, r) for r in rows}
        missing = [n for n in wanted if n not in found]
        if missing:
            raise StoreError(f"session {session_id!r} has no node(s) {missing!r}")
        return tuple(found[n] for n in node_ids)

    def load_nodes_of_kind(self, session_id: str, kind: str) -> tuple[Node, ...]:
        """Every node of ``kind`` in the session, in commit order. Raises ``SessionNotFoundError``."""
        with self._tx("load_nodes_of_kind") as cur:
            self._require_session(cur, session_id)
            rows = cur.execute(
                f"SELECT {NODE_COLUMNS} FROM lash_nodes WHERE session_id = %s AND kind = %s ORDER BY revision, ord",
                (session_id, kind),
            ).fetchall()
        return tuple(node_from_row(session_id, r) for r in rows)

    def load_graph(self, session_id: str) -> tuple[Node, ...]:
        """Every node of the session, in commit order. Raises ``SessionNotFoundError``."""
        with self._tx("load_graph") as cur:
            self._require_session(cur, session_id)
            rows = cur.execute(
                f"SELECT {NODE_COLUMNS} FROM lash_nodes WHERE session_id = %s ORDER BY revision, ord", (session_id,)
            ).fetchall()
        return tuple(node_from_row(session_id, r) for r in rows)

    def list_frames(self, session_id: str) -> list[Frame]:
        """The frames opened in the session, oldest first. Raises ``SessionNotFoundError``."""
        with self._tx("list_frames") as cur:
            self._require_session(cur, session_id)
            rows = cur.execute(
                "SELECT frame_id, previous_frame_id, reason, opened_by, seed_node_ids, created_at FROM lash_frames "
                "WHERE session_id = %s ORDER BY revision",
                (session_id,),
            ).fetchall()
        return [frame_from_row(session_id, row) for row in rows]

    def usage_ledger(self, session_id: str) -> UsageLedger:
        """The session's cumulative usage ledger. Raises ``SessionNotFoundError``."""
        with self._tx("usage_ledger") as cur:
            self._require_session(cur, session_id)
            rows = cur.execute(
                f"SELECT source, model, served_model, {', '.join(BUCKETS)}, calls "
                "FROM lash_usage WHERE session_id = %s",
                (session_id,),
            ).fetchall()
        return usage_ledger_from_rows(rows)

    def load_plugin_state(self, session_id: str) -> dict[str, str]:
        """Each plugin's latest committed snapshot (JSON text). Raises ``SessionNotFoundError``."""
        with self._tx("load_plugin_state") as cur:
            self._require_session(cur, session_id)
            rows = cur.execute(
                "SELECT plugin, payload FROM lash_plugin_state WHERE session_id = %s", (session_id,)
            ).fetchall()
        return dict(rows)
