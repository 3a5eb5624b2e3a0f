"""``SqliteStore``: many sessions in one SQLite database file (the standard ``sqlite3`` module, WAL).

Rule: one transaction per write; a turn commit is a single ``BEGIN IMMEDIATE`` transaction that
either writes everything (nodes, usage, turn row, head) or nothing. Records are (de)serialised
with ``lash_kernel.serde`` only, and persisted JSON is read leniently. The store never calls the
clock: timestamps arrive as data.

Schema (version ``SCHEMA_VERSION``, recorded in ``lash_meta``)::

    lash_meta      (key PK, value)
    sessions       (session_id PK, head_revision, leaf_id, frame_id, mode, created_at, updated_at,
                    activity_seq, spec, parent_session_id, parent_turn_id, parent_call_id, depth)
                   INDEX (parent_session_id, created_at)
    nodes          (session_id, node_id, parent_id, frame_id, turn_id, kind, payload, created_at)
                   PK (session_id, node_id), INDEX (session_id, kind); rowid = commit order
    turns          (session_id, turn_id, revision, outcome, content_hash, committed_at, node_ids,
                    leaf_id)  PK (session_id, turn_id), UNIQUE (session_id, revision)
    maintenance    (session_id, key, revision, content_hash, committed_at, node_ids, leaf_id)
                   PK (session_id, key), UNIQUE (session_id, revision)
    frames         (session_id, frame_id, previous_frame_id, reason, opened_by, seed_node_ids,
                    revision, created_at)  PK (session_id, frame_id), UNIQUE (session_id, revision)
    leases         (session_id PK, owner, token, fencing, expires_at)
    pending_inputs (session_id, turn_id, message, created_at)  PK (session_id, turn_id)
    usage          (session_id, source, model, served_model, <five buckets>, calls)
                   PK (session_id, source, model, served_model)
    plugin_state   (session_id, plugin, turn_id, payload)  PK (session_id, plugin)
    message_fts    FTS5 (body), contentless; rowid = the message node's rowid, body = its text
                   parts. Two triggers on ``nodes`` keep it in step inside every write
                   transaction (``search_messages``).

Turns and maintenance commits share the session's revisions (each commit is one revision) and
its key namespace; each row records the leaf right after it (``leaf_id``), so a replay answers
with one lookup. A plugin node's payload is its record's JSON text, stored as given.

Each message payload is stored once, as compact JSON text; a turn outcome whose ``text`` repeats
the turn's last message stores ``"text_ref": "last_node"`` instead of a second copy. ``sessions``
and ``usage`` have small rows and are ``WITHOUT ROWID``; the tables holding payloads keep a rowid because SQLite spills
rows larger than ~1 KB of a ``WITHOUT ROWID`` table onto mostly-empty overflow pages.
Every read is keyed by ``session_id``, so its cost never depends on the number of sessions.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, final

import attrs

from lash_kernel import serde
from lash_kernel.errors import (
    ConfigError,
    CorruptStoreError,
    LashError,
    RecordDecodeError,
    SchemaVersionError,
    SessionNotFoundError,
    StoreError,
)
from lash_kernel.messages import Message
from lash_kernel.outcomes import Outcome
from lash_kernel.store._commit import (
    AnyCommit,
    CommitPlan,
    Head,
    RecordedTurn,
    commit_hash,
    commit_key,
    plan_claim,
    plan_commit,
    plan_renew,
    releases,
)
from lash_kernel.store._sqlite_errors import SQLITE_BUSY, SQLITE_LOCKED, store_error
from lash_kernel.store._sqlite_schema import (
    MESSAGE_FTS,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    SESSION_TABLES,
    TABLES,
)
from lash_kernel.store.base import (
    MESSAGE_KIND,
    CommitResult,
    Frame,
    Lease,
    MaintenanceCommit,
    MessageHit,
    Node,
    PendingInput,
    SessionInfo,
    TurnCommit,
    TurnRecord,
)
from lash_kernel.store.rows import (
    NODE_COLUMNS,
    SESSION_COLUMNS,
    decode_stored,
    frame_from_row,
    lease_from_row,
    node_from_row,
    session_info_from_row,
    usage_ledger_from_rows,
)
from lash_kernel.usage import BUCKETS, UsageLedger

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

def fts_query(text: str) -> str:
    """An FTS5 query matching ``text`` as a phrase whose last word may be a prefix
    (``rate lim`` finds "Rate limited"); case and diacritics are ignored. Never a syntax error.

    Args:
        text: what the user typed.
    Returns:
        The MATCH expression, or "" when ``text`` has no word characters.
    """
    words = re.findall(r"\w+", text)
    if not words:
        return ""
    return '"' + " ".join(words) + '" *'



# Walk from the leaf towards the root, one primary-key lookup per step, and stop before the
# first node of another frame.
_ACTIVE_PATH_SQL = f"""
WITH RECURSIVE path ({NODE_COLUMNS}, depth) AS (
    SELECT n.node_id, n.parent_id, n.frame_id, n.turn_id, n.kind, n.payload, n.created_at, 0
    FROM sessions AS s
    JOIN nodes AS n ON n.session_id = s.session_id AND n.node_id = s.leaf_id
    WHERE s.session_id = :sid AND n.frame_id = s.frame_id
    UNION ALL
    SELECT n.node_id, n.parent_id, n.frame_id, n.turn_id, n.kind, n.payload, n.created_at,
           p.depth + 1
    FROM path AS p
    JOIN nodes AS n ON n.session_id = :sid AND n.node_id = p.parent_id
    WHERE n.frame_id = p.frame_id
)
SELECT {NODE_COLUMNS} FROM path ORDER BY depth DESC
"""

_FRAME_MESSAGES_SQL = f"""
SELECT {NODE_COLUMNS} FROM nodes INDEXED BY nodes_by_frame
WHERE session_id = ? AND kind = 'message' AND frame_id = ? ORDER BY rowid
"""

# The same rows, only what loading a session's messages needs (the link check and the payload).
_FRAME_PAYLOADS_SQL = """
SELECT node_id, parent_id, payload FROM nodes INDEXED BY nodes_by_frame
WHERE session_id = ? AND kind = 'message' AND frame_id = ? ORDER BY rowid
"""


def _is_chain(rows: Sequence[Sequence[Any]], leaf_id: str | None) -> bool:
    """True when ``rows`` (node rows: id first, parent second) link each to the one before and
    end at ``leaf_id``: then they are the active path (an empty frame has no rows and its leaf
    lies in an earlier frame)."""
    if not rows:
        return True
    if rows[-1][0] != leaf_id:
        return False
    return all(rows[i][1] == rows[i - 1][0] for i in range(1, len(rows)))


# The session's head, the lease row and, if it was committed already, the committing turn or
# maintenance commit: one lookup each.
_COMMIT_HEAD_SQL = """
SELECT s.head_revision, s.leaf_id, s.frame_id, s.activity_seq,
       COALESCE(t.revision, m.revision), COALESCE(t.content_hash, m.content_hash),
       CASE WHEN t.revision IS NOT NULL THEN t.leaf_id ELSE m.leaf_id END,
       l.owner, l.token, l.fencing, l.expires_at
FROM sessions AS s
LEFT JOIN turns AS t ON t.session_id = s.session_id AND t.turn_id = :key
LEFT JOIN maintenance AS m ON m.session_id = s.session_id AND m.key = :key
LEFT JOIN leases AS l ON l.session_id = s.session_id
WHERE s.session_id = :sid
"""

_LEASE_SQL = """
SELECT s.session_id, l.owner, l.token, l.fencing, l.expires_at
FROM sessions AS s LEFT JOIN leases AS l ON l.session_id = s.session_id
WHERE s.session_id = ?
"""

_LEASE_UPSERT_SQL = """
INSERT INTO leases (session_id, owner, token, fencing, expires_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (session_id) DO UPDATE SET
    owner = excluded.owner, token = excluded.token, fencing = excluded.fencing, expires_at = excluded.expires_at
"""

_NODE_INSERT_SQL = f"INSERT INTO nodes (session_id, {NODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"

_USAGE_UPSERT_SQL = f"""
INSERT INTO usage (session_id, source, model, served_model, {", ".join(BUCKETS)}, calls)
VALUES (?, ?, ?, ?, {", ".join("?" for _ in BUCKETS)}, ?)
ON CONFLICT (session_id, source, model, served_model) DO UPDATE SET
    {", ".join(f"{b} = {b} + excluded.{b}" for b in BUCKETS)}, calls = calls + excluded.calls
"""

_CHUNK = 500  # bound on host parameters per IN (...) query

# An outcome's ``text`` usually repeats the turn's last message; it is then stored as this marker
# instead of a second copy of the text, and restored from the last node when read.
_TEXT_REF_KEY = "text_ref"
_TEXT_REF_LAST_NODE = "last_node"

_SURROGATE = re.compile("[\ud800-\udfff]")


def _structure(raw: Any, type_: Any, what: str) -> Any:
    """``serde.structure`` with the offending row named in the error."""
    try:
        return serde.structure(raw, type_)
    except RecordDecodeError as exc:
        raise RecordDecodeError(f"{what}: {exc}") from exc


def _json_text(text: str) -> str:
    """JSON text made storable: each lone surrogate (text that is not valid Unicode, which SQLite
    cannot hold as UTF-8) becomes its JSON escape ``\\udXXX``, which decodes back to the same
    code point. Valid text is returned as is (the check is O(1) for ASCII text)."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _outcome_json(commit: TurnCommit) -> str:
    """The stored form of ``commit.outcome``: its JSON, with ``text`` replaced by a reference
    to the last node when that node's text is the same (so the text is stored once)."""
    outcome = commit.outcome
    last = commit.nodes[-1].payload if commit.nodes else None
    if outcome.text and isinstance(last, Message) and last.text == outcome.text:
        raw = serde.unstructure(outcome, Outcome)
        del raw["text"]
        raw[_TEXT_REF_KEY] = _TEXT_REF_LAST_NODE
        return _json_text(serde.dumps(raw))
    return _json_text(serde.dumps(outcome, Outcome))


def _nodes(session_id: str, rows: Sequence[Sequence[Any]]) -> tuple[Node, ...]:
    """Rows as nodes, decoding every message payload in one batch (``serde.loads_messages``);
    when the batch fails, row by row, so the error names the bad node."""
    texts = [row[5] for row in rows if row[4] == MESSAGE_KIND]
    try:
        messages = iter(serde.loads_messages(texts))
    except RecordDecodeError:
        return tuple(node_from_row(session_id, row) for row in rows)
    return tuple(
        Node(
            node_id=row[0], parent_id=row[1], frame_id=row[2], turn_id=row[3], kind=row[4],
            payload=next(messages) if row[4] == MESSAGE_KIND else row[5], created_at=row[6],
        )
        for row in rows
    )


def _payload_text(node: Node) -> str:
    """A node's stored payload: a message's JSON, or a plugin record's JSON text as given (any
    other payload is refused by the commit rules before anything is written)."""
    payload = node.payload
    if isinstance(payload, Message):
        return _json_text(serde.dumps(payload, Message))
    return _json_text(payload) if isinstance(payload, str) else ""


@final
class _SessionReads:
    """The commit rules' ``SessionReads`` for one session, inside the commit's transaction.

    The committing key's row (with its leaf) and the lease row are already read with the head
    (fewer queries on every commit).
    """

    __slots__ = ("_conn", "_key", "_lease", "_recorded", "_sid")

    def __init__(
        self,
        conn: sqlite3.Connection,
        session_id: str,
        key: str,
        recorded: tuple[RecordedTurn, str | None] | None,
        lease: Lease | None,
    ) -> None:
        self._conn = conn
        self._sid = session_id
        self._key = key
        self._recorded = recorded
        self._lease = lease

    def _row(self, key: str) -> tuple[RecordedTurn, str | None] | None:
        if key == self._key:
            return self._recorded
        row = self._conn.execute(
            "SELECT revision, content_hash, leaf_id FROM turns WHERE session_id = ? AND turn_id = ? "
            "UNION ALL SELECT revision, content_hash, leaf_id FROM maintenance WHERE session_id = ? AND key = ?",
            (self._sid, key, self._sid, key),
        ).fetchone()
        return None if row is None else (RecordedTurn(revision=row[0], content_hash=row[1]), row[2])

    def recorded_turn(self, turn_id: str) -> RecordedTurn | None:
        row = self._row(turn_id)
        return None if row is None else row[0]

    def leaf_after(self, turn_id: str, revision: int) -> str | None:
        row = self._row(turn_id)
        return None if row is None else row[1]

    def existing_node_kinds(self, node_ids: tuple[str, ...]) -> Mapping[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(node_ids), _CHUNK):
            chunk = node_ids[start : start + _CHUNK]
            found.update(self._conn.execute(_nodes_in_sql(len(chunk)), (self._sid, *chunk)).fetchall())
        return found

    def frame_known(self, frame_id: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM frames WHERE session_id = ? AND (frame_id = ? OR previous_frame_id = ?) LIMIT 1",
            (self._sid, frame_id, frame_id),
        ).fetchone()
        return row is not None

    def lease(self) -> Lease | None:
        return self._lease


@functools.lru_cache(maxsize=64)
def _nodes_in_sql(count: int) -> str:
    """``SELECT node_id, kind`` of the session's nodes among ``count`` ids (the SQL, built once per count)."""
    return f"SELECT node_id, kind FROM nodes WHERE session_id = ? AND node_id IN ({', '.join('?' * count)})"


@final
class SqliteStore:
    """The ``Store`` protocol on one SQLite database file holding many sessions.

    The connection uses WAL journaling, ``foreign_keys=ON`` and a busy timeout, so several
    processes can share the file (one writer at a time, readers never blocked). Calls are
    serialised by a lock, so one store may be shared between threads.

    Args:
        path: the database file (``str`` or path-like). ``":memory:"`` gives a private
            in-memory database (no WAL).
        create: create the file and the schema if they do not exist. With False, a missing
            file or an empty database raises instead.
        busy_timeout_s: seconds to wait for another connection's write lock before failing.
        durability: ``"full"`` (the default: SQLite ``synchronous=FULL``, the WAL is synced
            to disk at every commit, so a committed turn survives a power loss or an OS crash)
            or ``"normal"`` (``synchronous=NORMAL``: a committed turn survives a crash of the
            process, but the last commits may be lost with the machine's power; cheaper per
            commit, see ``docs/performance.md``). Added in 0.2 (0.1 ran ``normal``).

    Attributes:
        path: the database file as a ``pathlib.Path``.
        durability: the ``durability`` it was opened with.

    Raises:
        CorruptStoreError: the file is not a SQLite database, or is a SQLite database that is
            not a lash database (other tables, no ``lash_meta``).
        SchemaVersionError: the file was written by a newer lash (its schema version is higher
            than ``SCHEMA_VERSION``). The file is left untouched.
        StorePermissionError: the file, its ``-wal``/``-shm`` files or its directory cannot be
            written (the message names which); a read-only file can still be opened and read,
            and then every write raises this.
        StoreFullError: the disk is full.
        StoreError: the file cannot be opened otherwise (missing with ``create=False``, a
            missing directory).

    Every method raises the same error types for the same causes, and ``StoreError`` (never a
    raw ``UnicodeEncodeError``) for an id holding a lone surrogate, which SQLite cannot store
    as UTF-8. Message, plugin-state, plugin-node and spec JSON text with lone surrogates is stored
    exactly, as JSON ``\\udXXX`` escapes (equal JSON when read back).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        busy_timeout_s: float = 5.0,
        durability: Literal["full", "normal"] = "full",
    ) -> None:
        if durability not in ("full", "normal"):
            raise ConfigError(f"durability must be 'full' or 'normal', got {durability!r}")
        self.durability = durability
        self.path = Path(os.fspath(path))
        self._lock = threading.RLock()
        self._closed = False
        name = os.fspath(path)
        memory = name == ":memory:"
        try:
            missing = not create and not memory and not self.path.exists()
        except OSError as exc:
            raise store_error(exc, self.path, "open") from exc
        if missing:
            raise StoreError(f"no lash database at {name} (and create=False)")
        try:
            if memory or create:
                conn = sqlite3.connect(
                    name, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
                )
            else:
                conn = sqlite3.connect(
                    self.path.absolute().as_uri() + "?mode=rw",
                    uri=True,
                    timeout=busy_timeout_s,
                    isolation_level=None,
                    check_same_thread=False,
                )
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise store_error(exc, self.path, "open", memory=memory) from exc
        self._memory = memory
        try:
            self._conn = conn
            self._open(create=create, memory=memory, busy_timeout_s=busy_timeout_s)
        except BaseException:
            conn.close()
            self._closed = True
            raise

    # -- opening -------------------------------------------------------------------------------

    def _open(self, *, create: bool, memory: bool, busy_timeout_s: float) -> None:
        """Check the file is a lash database we can read, create the schema, set pragmas.

        Nothing is written to the file before its schema version is known to be supported.
        """
        conn = self._conn
        name = str(self.path)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA synchronous = {self.durability.upper()}")
            objects = self._schema_objects()
        except sqlite3.Error as exc:
            raise store_error(exc, self.path, "open", memory=memory) from exc
        if "lash_meta" not in objects:
            if objects:
                raise CorruptStoreError(
                    f"{name} is not a lash database: it holds other tables "
                    f"({', '.join(sorted(objects)[:5])}) and no lash_meta table"
                )
            if not create:
                raise CorruptStoreError(f"{name} is not a lash database: it is empty (and create=False)")
        else:
            version = self._check_version()
            if version < SCHEMA_VERSION:
                self._migrate()
        with self._errors("open"):
            if not memory and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            if "lash_meta" not in objects:
                with self._transaction(immediate=True):
                    objects = self._schema_objects()  # another process may have won the race
                    if "lash_meta" in objects:
                        self._check_version()
                    elif objects:
                        raise CorruptStoreError(f"{name} is not a lash database")
                    else:
                        for statement in SCHEMA.split(";"):
                            if statement.strip():
                                conn.execute(statement)
                        for statement in MESSAGE_FTS:  # trigger bodies hold ";": one by one
                            conn.execute(statement)
            missing = [t for t in TABLES if t not in self._schema_objects()]
            if missing:
                raise CorruptStoreError(f"{name} is a damaged lash database: missing tables {missing}")

    def _schema_objects(self) -> set[str]:
        rows = self._conn.execute(
            "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchall()
        return {r[0] for r in rows}

    def _migrate(self) -> None:
        """Upgrade an older file to ``SCHEMA_VERSION``, one version per step, in one transaction."""
        with self._errors("migrate"), self._transaction(immediate=True):
            version = self._check_version()  # re-read: another process may have migrated it
            while version < SCHEMA_VERSION:
                for step in MIGRATIONS[version]:
                    if isinstance(step, str):
                        self._conn.execute(step)
                    else:
                        step(self._conn)
                version += 1

    def _check_version(self) -> int:
        name = str(self.path)
        try:
            row = self._conn.execute("SELECT value FROM lash_meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.Error as exc:
            error = store_error(exc, self.path, "open", memory=self._memory)
            if type(error) is StoreError and (exc.sqlite_errorcode or 0) & 0xFF not in (SQLITE_BUSY, SQLITE_LOCKED):
                error = CorruptStoreError(f"{name}: cannot read lash_meta: {exc}")
            raise error from exc
        try:
            version = int(row[0]) if row is not None else None
        except (TypeError, ValueError):
            version = None
        if version is None or version < 1:
            raise CorruptStoreError(f"{name} is not a valid lash database: lash_meta has no usable schema_version")
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{name} was written by a newer lash (schema version {version}; this lash-kernel "
                f"supports schema version {SCHEMA_VERSION}). Upgrade lash-kernel to open it; "
                "the file was not modified."
            )
        return version

    # -- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        """Turn sqlite3 failures into ``StoreError``s; lash errors pass through."""
        try:
            yield
        except LashError:
            raise
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise store_error(exc, self.path, operation, memory=self._memory) from exc

    @contextlib.contextmanager
    def _transaction(self, *, immediate: bool) -> Iterator[None]:
        """``BEGIN [IMMEDIATE]`` … ``COMMIT``; any exception rolls everything back."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _call(
        self, operation: str, *, write: bool = False, tx: bool = True, sync: bool = True
    ) -> Iterator[sqlite3.Connection]:
        """Lock, map errors and (optionally) wrap one public call in a transaction.

        ``sync=False`` commits that transaction without syncing the WAL even at
        ``durability="full"``: for writes whose loss on a power cut is harmless because the next
        synced commit makes them durable with it (the WAL is written in order), or because
        losing them only delays something (a lease release: the lease then expires).
        """
        with self._lock:
            if self._closed:
                raise StoreError(f"{self.path}: {operation} on a closed SqliteStore")
            with self._errors(operation):
                relax = not sync and self.durability == "full"
                if relax:
                    self._conn.execute("PRAGMA synchronous = NORMAL")
                try:
                    if tx:
                        with self._transaction(immediate=write):
                            yield self._conn
                    else:
                        yield self._conn
                finally:
                    if relax:
                        self._conn.execute("PRAGMA synchronous = FULL")

    @staticmethod
    def _require_session(conn: sqlite3.Connection, session_id: str) -> None:
        if conn.execute("SELECT 1 FROM sessions WHERE session_id = ?", (session_id,)).fetchone() is None:
            raise SessionNotFoundError(f"no session {session_id!r} in this store")

    def __repr__(self) -> str:
        return f"<SqliteStore path={str(self.path)!r}{' closed' if self._closed else ''}>"

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection. Idempotent; other calls then raise ``StoreError``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()

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
        """Return the session's head, creating an empty session if it does not exist.

        Args:
            session_id: the session id (any non-empty string).
            mode: execution mode (``standard``); used only when creating, fixed afterwards.
            frame_id: the first agent frame; used only when creating.
            now: seconds since the epoch (float); becomes ``created_at``/``updated_at`` on creation.
            spec: the session's settings as JSON text; used only when creating.
            parent: the parent session's head, for a child session; used only when creating
                (the child's ``depth`` is the stored parent's depth + 1).
            parent_turn_id, parent_call_id: the parent's turn and tool call that open the child.

        Returns:
            The session's ``SessionInfo`` (the existing one, unchanged, if it already existed).

        Raises:
            SessionNotFoundError: ``parent`` is not a session of this store (nothing is created).
            StoreError: a database failure, or the store is closed.
        """
        select = f"SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = ?"
        with self._call("open_session", tx=False) as conn:
            row = conn.execute(select, (session_id,)).fetchone()
            if row is None:
                with self._transaction(immediate=True):
                    link: tuple[Any, ...] = (None, None, None, 0)
                    if parent is not None:
                        found = conn.execute(
                            "SELECT depth FROM sessions WHERE session_id = ?", (parent.session_id,)
                        ).fetchone()
                        if found is None:
                            raise SessionNotFoundError(f"no parent session {parent.session_id!r} in this store")
                        link = (parent.session_id, parent_turn_id, parent_call_id, found[0] + 1)
                    conn.execute(
                        f"INSERT OR IGNORE INTO sessions ({SESSION_COLUMNS}) "
                        "VALUES (?, 0, NULL, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
                        (session_id, frame_id, mode, now, now, _json_text(spec), *link),
                    )
                    row = conn.execute(select, (session_id,)).fetchone()
        return session_info_from_row(row)

    def get_session(self, session_id: str) -> SessionInfo:
        """Return the session's head: one primary-key lookup, independent of history length.

        Raises:
            SessionNotFoundError: no such session.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("get_session", tx=False) as conn:
            row = conn.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
        if row is None:
            raise SessionNotFoundError(f"no session {session_id!r} in this store")
        return session_info_from_row(row)

    def list_sessions(self) -> list[SessionInfo]:
        """All sessions, most recently updated first (ties: by session id).

        Raises:
            StoreError: a database failure, or the store is closed.
        """
        with self._call("list_sessions", tx=False) as conn:
            rows = conn.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions ORDER BY updated_at DESC, session_id"
            ).fetchall()
        return [session_info_from_row(r) for r in rows]

    def delete_session(self, session_id: str) -> list[str]:
        """Delete the session and its child sessions, recursively, with every row stored for
        them, in one transaction (see ``Store.delete_session``).

        Returns:
            The deleted session ids, ``session_id`` first.
        Raises:
            SessionNotFoundError: no such session.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("delete_session", write=True) as conn:
            self._require_session(conn, session_id)
            doomed, i = [session_id], 0
            while i < len(doomed):
                rows = conn.execute(
                    "SELECT session_id FROM sessions WHERE parent_session_id = ? ORDER BY session_id", (doomed[i],)
                ).fetchall()
                doomed += [r[0] for r in rows]
                i += 1
            for sid in doomed:
                for table in SESSION_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (sid,))
        return doomed

    def list_children(self, session_id: str) -> list[SessionInfo]:
        """The sessions opened with ``session_id`` as parent, oldest first (by ``created_at``,
        then session id): an index search on the parent link.

        Raises:
            SessionNotFoundError: no such session.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("list_children") as conn:
            self._require_session(conn, session_id)
            rows = conn.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE parent_session_id = ? ORDER BY created_at, session_id",
                (session_id,),
            ).fetchall()
        return [session_info_from_row(r) for r in rows]

    def load_active_path(self, session_id: str) -> tuple[Node, ...]:
        """Nodes from the current frame's first node to the leaf, oldest first (leaf last).

        A recursive query walks ``parent_id`` from the leaf, one primary-key lookup per node, and
        stops before the first node of another frame: the cost depends on the path length only.

        Raises:
            SessionNotFoundError: no such session.
            RecordDecodeError: a stored node payload cannot be decoded.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("load_active_path") as conn:
            head = conn.execute("SELECT frame_id, leaf_id FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
            if head is None:
                raise SessionNotFoundError(f"no session {session_id!r} in this store")
            # Fast path: commits append a frame's messages as one chain, so its message nodes
            # in commit order are the path; checked link by link, else the recursive walk.
            rows = conn.execute(_FRAME_MESSAGES_SQL, (session_id, head[0])).fetchall()
            if not _is_chain(rows, head[1]):
                rows = conn.execute(_ACTIVE_PATH_SQL, {"sid": session_id}).fetchall()
        return _nodes(session_id, rows)

    def load_frame_messages(self, session_id: str) -> tuple[Message, ...]:
        """The messages of the current frame's active path, oldest first: what
        ``load_active_path`` gives, without building ``Node`` records. The runtime loads a
        session through this when a store has it (an optional capability, see ``Store``).
        Added in 0.2.

        Raises:
            SessionNotFoundError: no such session.
            RecordDecodeError: a stored message cannot be decoded.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("load_frame_messages") as conn:
            head = conn.execute("SELECT frame_id, leaf_id FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
            if head is None:
                raise SessionNotFoundError(f"no session {session_id!r} in this store")
            rows = conn.execute(_FRAME_PAYLOADS_SQL, (session_id, head[0])).fetchall()
            if not _is_chain(rows, head[1]):
                nodes = _nodes(session_id, conn.execute(_ACTIVE_PATH_SQL, {"sid": session_id}).fetchall())
                return tuple(n.message for n in nodes if n.kind == MESSAGE_KIND)
        try:
            return tuple(serde.loads_messages([row[2] for row in rows]))
        except RecordDecodeError:  # decode one by one, so the error names the bad node
            return tuple(decode_stored(r[2], Message, f"session {session_id!r} node {r[0]!r}") for r in rows)

    # -- admitted input ------------------------------------------------------------------------

    def record_input(self, pending: PendingInput) -> None:
        """Durably admit a turn's user input. Idempotent per (session, turn).

        A second call for the same turn keeps the first record; a call for a turn that is already
        committed does nothing.

        Raises:
            SessionNotFoundError: ``pending.session_id`` does not exist.
            StoreError: a database failure, or the store is closed.
        """
        message = _json_text(serde.dumps(pending.message, Message))
        with self._call("record_input", write=True) as conn:
            self._require_session(conn, pending.session_id)
            conn.execute(
                "INSERT OR IGNORE INTO pending_inputs (session_id, turn_id, message, created_at) "
                "SELECT ?, ?, ?, ? WHERE NOT EXISTS "
                "(SELECT 1 FROM turns WHERE session_id = ? AND turn_id = ?)",
                (
                    pending.session_id,
                    pending.turn_id,
                    message,
                    pending.created_at,
                    pending.session_id,
                    pending.turn_id,
                ),
            )

    def pending_inputs(self, session_id: str) -> list[PendingInput]:
        """Admitted inputs whose turn never committed, oldest first (by ``created_at``).

        Raises:
            SessionNotFoundError: no such session.
            RecordDecodeError: a stored message cannot be decoded.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("pending_inputs") as conn:
            self._require_session(conn, session_id)
            rows = conn.execute(
                "SELECT turn_id, message, created_at FROM pending_inputs WHERE session_id = ? "
                "ORDER BY created_at, rowid",
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
        """Drop a pending input. No-op when the turn has no pending input.

        Raises:
            SessionNotFoundError: no such session.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("discard_input", write=True) as conn:
            self._require_session(conn, session_id)
            conn.execute(
                "DELETE FROM pending_inputs WHERE session_id = ? AND turn_id = ?", (session_id, turn_id)
            )

    def sessions_with_pending_input(self, *, limit: int, now: float | None = None) -> list[str]:
        """Sessions with pending input, oldest pending input first; with ``now``, sessions
        whose lease is live at ``now`` are left out (see ``Store.sessions_with_pending_input``).

        Raises:
            StoreError: a database failure, or the store is closed.
        """
        with self._call("sessions_with_pending_input", tx=False) as conn:
            rows = conn.execute(
                "SELECT p.session_id FROM pending_inputs p LEFT JOIN leases l ON l.session_id = p.session_id "
                "WHERE ? IS NULL OR l.session_id IS NULL OR l.expires_at <= ? "
                "GROUP BY p.session_id ORDER BY MIN(p.created_at), p.session_id LIMIT ?",
                (now, now, max(limit, 0)),
            ).fetchall()
        return [sid for (sid,) in rows]

    # -- commits -------------------------------------------------------------------------------

    def commit_turn(self, commit: TurnCommit) -> CommitResult:
        """Commit one turn in one ``BEGIN IMMEDIATE`` transaction (see ``lash_kernel.store.base``
        and the rules in ``store._commit``).

        Args:
            commit: the turn's nodes (path order), usage delta and outcome, and optionally the
                frame it opens and the writer's lease.

        Returns:
            The new head: ``head_revision`` = old + 1, ``leaf_id`` = last message node (unchanged
            when the turn has none). For an identical re-commit (same content hash), the
            recorded result with ``replayed=True``; nothing is written.

        Raises:
            SessionNotFoundError: the session does not exist.
            CommitConflictError: ``expected_head_revision`` is not the session's head revision,
                the turn id was already committed with different content, or a node or the
                frame breaks the commit rules. Nothing is written.
            LeaseLostError: the commit's lease is not the session's lease any more.
            SessionBusyError: no lease given while another writer holds a live one.
            StoreError: a database failure (rolled back, nothing written), or the store is closed.
        """
        return self._commit("commit_turn", commit)

    def commit_maintenance(self, commit: MaintenanceCommit) -> CommitResult:
        """Commit a maintenance commit in one ``BEGIN IMMEDIATE`` transaction, under the
        turn-commit rules (its key in place of a turn id; see ``Store.commit_maintenance``).

        Returns:
            As ``commit_turn``; ``turn_id`` is the key.

        Raises:
            The errors of ``commit_turn``, for the same causes.
        """
        return self._commit("commit_maintenance", commit)

    def _commit(self, operation: str, commit: AnyCommit) -> CommitResult:
        sid, key = commit.session_id, commit_key(commit)
        digest = commit_hash(commit)
        node_rows = [
            (sid, n.node_id, n.parent_id, n.frame_id, n.turn_id, n.kind, _payload_text(n), n.created_at)
            for n in commit.nodes
        ]
        with self._call(operation, write=True) as conn:
            row = conn.execute(_COMMIT_HEAD_SQL, {"sid": sid, "key": key}).fetchone()
            if row is None:
                raise SessionNotFoundError(f"no session {sid!r} in this store")
            head = Head(revision=row[0], leaf_id=row[1], frame_id=row[2], activity_seq=row[3])
            recorded = None if row[4] is None else (RecordedTurn(revision=row[4], content_hash=row[5]), row[6])
            reads = _SessionReads(conn, sid, key, recorded, lease_from_row(sid, row[7:11]))
            plan = plan_commit(commit, digest, head, reads)
            if not isinstance(plan, CommitPlan):
                return plan  # an identical re-commit: nothing to write
            new = plan.head
            conn.executemany(_NODE_INSERT_SQL, node_rows)
            conn.executemany(
                _USAGE_UPSERT_SQL,
                [
                    (sid, k.source, k.model, k.served_model, *(getattr(usage, b) for b in BUCKETS), calls)
                    for k, usage, calls in commit.usage.entries
                ],
            )
            node_ids = _json_text(serde.dumps(plan.node_ids, tuple[str, ...]))
            if isinstance(commit, TurnCommit):
                conn.execute(
                    "INSERT INTO turns (session_id, turn_id, revision, outcome, content_hash, committed_at, "
                    "node_ids, leaf_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (sid, key, new.revision, _outcome_json(commit), digest, commit.committed_at, node_ids, new.leaf_id),
                )
                conn.execute("DELETE FROM pending_inputs WHERE session_id = ? AND turn_id = ?", (sid, key))
                if commit.plugin_state:
                    conn.executemany(
                        "INSERT INTO plugin_state (session_id, plugin, turn_id, payload) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (session_id, plugin) "
                        "DO UPDATE SET turn_id = excluded.turn_id, payload = excluded.payload",
                        [(sid, plugin, key, _json_text(text)) for plugin, text in commit.plugin_state],
                    )
            else:
                conn.execute(
                    "INSERT INTO maintenance (session_id, key, revision, content_hash, committed_at, node_ids, "
                    "leaf_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (sid, key, new.revision, digest, commit.committed_at, node_ids, new.leaf_id),
                )
            frame = plan.frame
            if frame is not None:
                conn.execute(
                    "INSERT INTO frames (session_id, frame_id, previous_frame_id, reason, opened_by, seed_node_ids, "
                    "revision, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        sid,
                        frame.frame_id,
                        frame.previous_frame_id,
                        frame.reason,
                        frame.opened_by,
                        _json_text(serde.dumps(frame.seed_node_ids, tuple[str, ...])),
                        new.revision,
                        frame.created_at,
                    ),
                )
            conn.execute(
                "UPDATE sessions SET head_revision = ?, leaf_id = ?, frame_id = ?, updated_at = ?, "
                "activity_seq = ? WHERE session_id = ?",
                (new.revision, new.leaf_id, new.frame_id, commit.committed_at, new.activity_seq, sid),
            )
        return plan.result()

    # -- leases --------------------------------------------------------------------------------

    def claim_lease(self, session_id: str, *, owner: str, token: str, ttl_s: float, now: float) -> Lease:
        """Claim (or, with the live lease's token, renew) the session's single-writer lease until
        ``now + ttl_s`` (see ``Store.claim_lease``).

        One ``BEGIN IMMEDIATE`` transaction of one read and at most one write, so two processes
        racing on one file never both win, and a claim waits at most the busy timeout for
        another connection's write.

        Raises:
            SessionBusyError: another token holds a live lease (nothing changes).
            SessionNotFoundError: no such session.
            StoreError: a database failure (e.g. the write lock stayed busy past the busy
                timeout), or the store is closed.
        """
        with self._call("claim_lease", write=True, sync=False) as conn:  # made durable by the turn's commit
            stored = self._read_lease(conn, session_id)
            lease = plan_claim(session_id, stored, owner=owner, token=token, ttl_s=ttl_s, now=now)
            self._write_lease(conn, lease)
        return lease

    def renew_lease(self, lease: Lease, *, ttl_s: float, now: float) -> Lease:
        """Extend a held lease to ``now + ttl_s`` (an expired one nobody reclaimed too), in one
        ``BEGIN IMMEDIATE`` transaction.

        Raises:
            LeaseLostError: the session's lease has another token or fencing number, or was
                released.
            SessionNotFoundError: no such session.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("renew_lease", write=True, sync=False) as conn:
            renewed = plan_renew(lease, self._read_lease(conn, lease.session_id), ttl_s=ttl_s, now=now)
            self._write_lease(conn, renewed)
        return renewed

    def release_lease(self, lease: Lease) -> None:
        """Free a held lease (``expires_at`` becomes 0, the fencing number stays). A no-op when
        the lease was lost meanwhile.

        Raises:
            SessionNotFoundError: no such session.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("release_lease", write=True, sync=False) as conn:
            stored = self._read_lease(conn, lease.session_id)
            if stored is not None and releases(lease, stored):
                self._write_lease(conn, attrs.evolve(stored, expires_at=0.0))

    def get_lease(self, session_id: str) -> Lease | None:
        """The session's last lease (possibly expired or released), None if never claimed.

        Raises:
            SessionNotFoundError: no such session.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("get_lease", tx=False) as conn:
            return self._read_lease(conn, session_id)

    @staticmethod
    def _read_lease(conn: sqlite3.Connection, session_id: str) -> Lease | None:
        row = conn.execute(_LEASE_SQL, (session_id,)).fetchone()
        if row is None:
            raise SessionNotFoundError(f"no session {session_id!r} in this store")
        return lease_from_row(session_id, row[1:])

    @staticmethod
    def _write_lease(conn: sqlite3.Connection, lease: Lease) -> None:
        conn.execute(
            _LEASE_UPSERT_SQL, (lease.session_id, lease.owner, lease.token, lease.fencing, lease.expires_at)
        )

    def list_turns(self, session_id: str) -> list[TurnRecord]:
        """Committed turns, oldest first (by revision).

        Raises:
            SessionNotFoundError: no such session.
            RecordDecodeError: a stored outcome cannot be decoded.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("list_turns") as conn:
            self._require_session(conn, session_id)
            rows = conn.execute(
                "SELECT turn_id, revision, outcome, committed_at, node_ids FROM turns "
                "WHERE session_id = ? ORDER BY revision",
                (session_id,),
            ).fetchall()
        decoded = []
        for turn_id, revision, outcome, committed_at, node_ids in rows:
            what = f"session {session_id!r} turn {turn_id!r}"
            raw: dict[str, Any] = decode_stored(outcome, dict[str, Any], what)
            ids: tuple[str, ...] = decode_stored(node_ids, tuple[str, ...], what)
            decoded.append((turn_id, revision, raw, committed_at, ids, what))
        # restore outcome texts stored as a reference to the turn's last node
        wanted = tuple(
            ids[-1] for _, _, raw, _, ids, _ in decoded if ids and raw.get(_TEXT_REF_KEY) == _TEXT_REF_LAST_NODE
        )
        last_nodes = {n.node_id: n for n in self.load_nodes(session_id, wanted)} if wanted else {}
        out = []
        for turn_id, revision, raw, committed_at, ids, what in decoded:
            if raw.pop(_TEXT_REF_KEY, None) == _TEXT_REF_LAST_NODE and ids:
                raw["text"] = last_nodes[ids[-1]].message.text
            out.append(
                TurnRecord(
                    session_id=session_id,
                    turn_id=turn_id,
                    revision=revision,
                    outcome=_structure(raw, Outcome, what),
                    committed_at=committed_at,
                    node_ids=ids,
                )
            )
        return out

    def get_turn(self, session_id: str, turn_id: str) -> TurnRecord | None:
        """The committed turn ``turn_id``, or None (see ``Store.get_turn``): a primary-key lookup.

        Raises:
            SessionNotFoundError: no such session.
            RecordDecodeError: the stored outcome cannot be decoded.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("get_turn", tx=False) as conn:
            row = conn.execute(
                "SELECT revision, outcome, committed_at, node_ids FROM turns WHERE session_id = ? AND turn_id = ?",
                (session_id, turn_id),
            ).fetchone()
            if row is None:
                self._require_session(conn, session_id)
                return None
        revision, outcome, committed_at, node_ids = row
        what = f"session {session_id!r} turn {turn_id!r}"
        raw: dict[str, Any] = decode_stored(outcome, dict[str, Any], what)
        ids: tuple[str, ...] = decode_stored(node_ids, tuple[str, ...], what)
        if raw.pop(_TEXT_REF_KEY, None) == _TEXT_REF_LAST_NODE and ids:
            raw["text"] = self.load_nodes(session_id, ids[-1:])[0].message.text
        return TurnRecord(
            session_id=session_id,
            turn_id=turn_id,
            revision=revision,
            outcome=_structure(raw, Outcome, what),
            committed_at=committed_at,
            node_ids=ids,
        )

    def load_nodes(self, session_id: str, node_ids: tuple[str, ...]) -> tuple[Node, ...]:
        """The given nodes, in the order asked for.

        Args:
            session_id: the session.
            node_ids: node ids of that session; duplicates are returned as often as asked.

        Raises:
            SessionNotFoundError: no such session.
            RecordDecodeError: a stored node payload cannot be decoded.
            StoreError: a node id is not in the session, a database failure, or the store is closed.
        """
        wanted = list(dict.fromkeys(node_ids))
        found: dict[str, Node] = {}
        with self._call("load_nodes") as conn:
            self._require_session(conn, session_id)
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                rows = conn.execute(
                    f"SELECT {NODE_COLUMNS} FROM nodes WHERE session_id = ? "
                    f"AND node_id IN ({', '.join('?' for _ in chunk)})",
                    (session_id, *chunk),
                ).fetchall()
                for row in rows:
                    found[row[0]] = node_from_row(session_id, row)
        missing = [n for n in wanted if n not in found]
        if missing:
            raise StoreError(f"session {session_id!r} has no node(s) {missing!r}")
        return tuple(found[n] for n in node_ids)

    def load_nodes_of_kind(self, session_id: str, kind: str) -> tuple[Node, ...]:
        """Every node of ``kind`` in the session, in commit order (whatever their frame): an index
        search on (session, kind).

        Raises:
            SessionNotFoundError: no such session.
            RecordDecodeError: a stored message payload cannot be decoded.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("load_nodes_of_kind") as conn:
            self._require_session(conn, session_id)
            if kind == MESSAGE_KIND:  # every message of every frame: the primary key's session range
                sql = f"SELECT {NODE_COLUMNS} FROM nodes WHERE session_id = ? AND kind = ? ORDER BY rowid"
            else:
                sql = (
                    f"SELECT {NODE_COLUMNS} FROM nodes INDEXED BY nodes_by_kind "
                    "WHERE session_id = ? AND kind = ? AND kind != 'message' ORDER BY rowid"
                )
            rows = conn.execute(sql, (session_id, kind)).fetchall()
        return _nodes(session_id, rows)

    def load_graph(self, session_id: str) -> tuple[Node, ...]:
        """Every node of the session, in commit order (every frame, every kind).

        Raises:
            SessionNotFoundError: no such session.
            RecordDecodeError: a stored message payload cannot be decoded.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("load_graph") as conn:
            self._require_session(conn, session_id)
            rows = conn.execute(
                f"SELECT {NODE_COLUMNS} FROM nodes WHERE session_id = ? ORDER BY rowid", (session_id,)
            ).fetchall()
        return _nodes(session_id, rows)

    def list_frames(self, session_id: str) -> list[Frame]:
        """The frames opened in the session, oldest first (the first frame has no record).

        Raises:
            SessionNotFoundError: no such session.
            RecordDecodeError: a stored seed list cannot be decoded.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("list_frames") as conn:
            self._require_session(conn, session_id)
            rows = conn.execute(
                "SELECT frame_id, previous_frame_id, reason, opened_by, seed_node_ids, created_at FROM frames "
                "WHERE session_id = ? ORDER BY revision",
                (session_id,),
            ).fetchall()
        return [frame_from_row(session_id, row) for row in rows]

    def usage_ledger(self, session_id: str) -> UsageLedger:
        """The session's cumulative usage, one entry per (source, model).

        Raises:
            SessionNotFoundError: no such session.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("usage_ledger") as conn:
            self._require_session(conn, session_id)
            rows = conn.execute(
                f"SELECT source, model, served_model, {', '.join(BUCKETS)}, calls FROM usage WHERE session_id = ?",
                (session_id,),
            ).fetchall()
        return usage_ledger_from_rows(rows)

    def load_plugin_state(self, session_id: str) -> dict[str, str]:
        """Each plugin's latest committed snapshot (JSON text), by plugin name.

        Raises:
            SessionNotFoundError: no such session.
            StoreError: a database failure, or the store is closed.
        """
        with self._call("load_plugin_state") as conn:
            self._require_session(conn, session_id)
            rows = conn.execute(
                "SELECT plugin, payload FROM plugin_state WHERE session_id = ?", (session_id,)
            ).fetchall()
        return {plugin: payload for plugin, payload in rows}

    # -- search --------------------------------------------------------------------------------

    def search_messages(self, text: str, *, limit: int = 100) -> list[MessageHit]:
        """Committed messages whose text parts contain ``text``, through the FTS5 index.

        Words match whole, case- and diacritic-insensitively, in order as a phrase; the last
        word may be a prefix (``fjord mus`` finds "Fjord museum"). Tool calls and results are
        not indexed.

        Args:
            text: what to find; punctuation is ignored.
            limit: at most this many hits.
        Returns:
            Hits, most recently updated session first, then in commit order; ``[]`` when ``text``
            has no word characters.
        Raises:
            StoreError: a database failure, or the store is closed.
        """
        query = fts_query(text)
        if not query or limit < 1:
            return []
        with self._call("search_messages", tx=False) as conn:
            rows = conn.execute(
                "SELECT n.session_id, n.turn_id, n.node_id, n.payload FROM message_fts AS f "
                "JOIN nodes AS n ON n.rowid = f.rowid JOIN sessions AS s ON s.session_id = n.session_id "
                "WHERE message_fts MATCH ? ORDER BY s.updated_at DESC, s.session_id, n.rowid LIMIT ?",
                (query, limit),
            ).fetchall()
        return [
            MessageHit(
                session_id=sid, turn_id=tid, node_id=nid,
                message=decode_stored(payload, Message, f"session {sid!r} node {nid!r}"),
            )
            for sid, tid, nid, payload in rows
        ]
