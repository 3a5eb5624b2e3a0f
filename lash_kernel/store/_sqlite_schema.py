"""The SQLite store's schema: the tables of the current version, and the migrations that bring
an older file up to it (``sqlite.py`` describes the tables; this module holds their DDL).

Rule: a migration is a list of statements (or functions of the connection) run in one
transaction with the version bump, so a file is at one version or the next, never between.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from lash_kernel import serde
from lash_kernel.errors import RecordDecodeError
from lash_kernel.usage import BUCKETS

__all__ = ["MESSAGE_FTS", "MIGRATIONS", "SCHEMA", "SCHEMA_VERSION", "SESSION_TABLES", "TABLES"]

SCHEMA_VERSION = 4
"""The schema version this lash-kernel writes and reads (``lash_meta.schema_version``).

History: 1 = first release; 2 adds ``plugin_state``; 3 (0.2) adds session specs and parent
links, plugin nodes, ``maintenance``, ``frames``, ``leases`` and each commit's leaf; 4 adds the
full-text index of message text (``message_fts`` and its triggers, back-filled on migration).
Older files are migrated on open.
"""

TABLES = (
    "lash_meta",
    "sessions",
    "nodes",
    "turns",
    "pending_inputs",
    "usage",
    "plugin_state",
    "maintenance",
    "frames",
    "leases",
    "message_fts",
)

_PLUGIN_STATE_TABLE = """
CREATE TABLE plugin_state (
    session_id TEXT NOT NULL REFERENCES sessions (session_id),
    plugin TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (session_id, plugin)
) WITHOUT ROWID
"""

_MAINTENANCE_TABLE = """
CREATE TABLE maintenance (
    session_id TEXT NOT NULL REFERENCES sessions (session_id),
    key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    committed_at REAL NOT NULL,
    node_ids TEXT NOT NULL,
    leaf_id TEXT,
    PRIMARY KEY (session_id, key),
    UNIQUE (session_id, revision)
)
"""

_FRAMES_TABLE = """
CREATE TABLE frames (
    session_id TEXT NOT NULL REFERENCES sessions (session_id),
    frame_id TEXT NOT NULL,
    previous_frame_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    seed_node_ids TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (session_id, frame_id),
    UNIQUE (session_id, revision)
) WITHOUT ROWID
"""

_LEASES_TABLE = """
CREATE TABLE leases (
    session_id TEXT NOT NULL PRIMARY KEY REFERENCES sessions (session_id),
    owner TEXT NOT NULL,
    token TEXT NOT NULL,
    fencing INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID
"""

#: Every table keyed by session id, children before ``sessions`` (``delete_session``).
SESSION_TABLES = (
    "plugin_state", "maintenance", "frames", "leases", "nodes", "turns", "pending_inputs", "usage", "sessions",
)
_SESSIONS_BY_PARENT = "CREATE INDEX sessions_by_parent ON sessions (parent_session_id, created_at)"
# Two partial indexes, so each node is in one: plugin nodes by kind (load_nodes_of_kind), and
# message nodes by frame, in commit order (an index entry ends with its rowid): the fast path
# of load_active_path. A query uses a partial index only when its WHERE repeats the index's
# condition literally.
_NODES_BY_KIND = "CREATE INDEX nodes_by_kind ON nodes (session_id, kind) WHERE kind != 'message'"
_NODES_BY_FRAME = "CREATE INDEX nodes_by_frame ON nodes (session_id, frame_id) WHERE kind = 'message'"


# Full-text search over message text (schema 4). The index is contentless (it keeps no copy of
# the text): each message node's text parts, joined by spaces, are indexed under the node's
# rowid by a trigger, in the transaction that inserts the node, and removed the same way (a
# contentless FTS5 delete must repeat the indexed text: nodes are never updated, so the trigger
# recomputes it from the payload). It keeps its per-row size table (``columnsize=0`` would save
# about 40 bytes a turn, but a contentless table without it refuses ``SELECT COUNT(*)`` and any
# scan, which breaks generic database tools).
def _message_text_sql(payload: str) -> str:
    return (
        f"(SELECT group_concat(json_extract(p.value, '$.text'), ' ') FROM json_each({payload}, '$.parts') AS p "
        "WHERE json_extract(p.value, '$.kind') = 'text')"
    )


MESSAGE_FTS = (
    "CREATE VIRTUAL TABLE message_fts USING fts5("
    "body, content='', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER message_fts_insert AFTER INSERT ON nodes WHEN new.kind = 'message' BEGIN "
    f"INSERT INTO message_fts (rowid, body) VALUES (new.rowid, {_message_text_sql('new.payload')}); END",
    "CREATE TRIGGER message_fts_delete AFTER DELETE ON nodes WHEN old.kind = 'message' BEGIN "
    "INSERT INTO message_fts (message_fts, rowid, body) "
    f"VALUES ('delete', old.rowid, {_message_text_sql('old.payload')}); END",
)
_FILL_MESSAGE_FTS = (
    f"INSERT INTO message_fts (rowid, body) SELECT rowid, {_message_text_sql('payload')} FROM nodes "
    "WHERE kind = 'message'"
)


def _fill_turn_leaves(conn: sqlite3.Connection) -> None:
    """Migration 2 -> 3: record each turn's leaf (before 3 every node was a message, so the leaf
    after a turn is the last node of the latest turn so far that added nodes)."""
    leaves: list[tuple[str | None, str, str]] = []
    session, leaf = None, None
    rows = conn.execute("SELECT session_id, turn_id, node_ids FROM turns ORDER BY session_id, revision")
    for sid, tid, node_ids in rows:
        if sid != session:
            session, leaf = sid, None
        try:
            ids = serde.loads(node_ids, tuple[str, ...])
        except RecordDecodeError as exc:
            raise RecordDecodeError(f"session {sid!r} turn {tid!r} node ids: {exc}") from exc
        leaf = ids[-1] if ids else leaf
        leaves.append((leaf, sid, tid))
    conn.executemany("UPDATE turns SET leaf_id = ? WHERE session_id = ? AND turn_id = ?", leaves)


_Migration = str | Callable[[sqlite3.Connection], None]

# Usage per (source, requested model, served model): schema 4 added ``served_model`` to the key.
_USAGE_TABLE = f"""CREATE TABLE {{name}} (
    session_id TEXT NOT NULL REFERENCES sessions (session_id),
    source TEXT NOT NULL,
    model TEXT NOT NULL,
    served_model TEXT NOT NULL DEFAULT '',
    {", ".join(f"{b} INTEGER NOT NULL DEFAULT 0" for b in BUCKETS)},
    calls INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, source, model, served_model)
) WITHOUT ROWID"""
_REKEY_USAGE = (  # the key grew a column: rebuild the table (SQLite cannot alter a primary key)
    _USAGE_TABLE.format(name="usage_v4"),
    f"INSERT INTO usage_v4 (session_id, source, model, {', '.join(BUCKETS)}, calls) "
    f"SELECT session_id, source, model, {', '.join(BUCKETS)}, calls FROM usage",
    "DROP TABLE usage",
    "ALTER TABLE usage_v4 RENAME TO usage",
)

#: Steps (SQL statements, or functions run in the same transaction) that bring a file from
#: version ``n`` to ``n + 1``.
MIGRATIONS: dict[int, tuple[_Migration, ...]] = {
    1: (_PLUGIN_STATE_TABLE, "UPDATE lash_meta SET value = '2' WHERE key = 'schema_version'"),
    2: (
        "ALTER TABLE sessions ADD COLUMN spec TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sessions ADD COLUMN parent_session_id TEXT",
        "ALTER TABLE sessions ADD COLUMN parent_turn_id TEXT",
        "ALTER TABLE sessions ADD COLUMN parent_call_id TEXT",
        "ALTER TABLE sessions ADD COLUMN depth INTEGER NOT NULL DEFAULT 0",
        _SESSIONS_BY_PARENT,
        "ALTER TABLE turns ADD COLUMN leaf_id TEXT",
        _fill_turn_leaves,
        _NODES_BY_KIND,
        _NODES_BY_FRAME,
        _MAINTENANCE_TABLE,
        _FRAMES_TABLE,
        _LEASES_TABLE,
        "UPDATE lash_meta SET value = '3' WHERE key = 'schema_version'",
    ),
    3: (
        *MESSAGE_FTS,
        _FILL_MESSAGE_FTS,
        *_REKEY_USAGE,
        "UPDATE lash_meta SET value = '4' WHERE key = 'schema_version'",
    ),
}

SCHEMA = f"""
CREATE TABLE lash_meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE sessions (
    session_id TEXT NOT NULL PRIMARY KEY,
    head_revision INTEGER NOT NULL,
    leaf_id TEXT,
    frame_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    activity_seq INTEGER NOT NULL DEFAULT 0,
    spec TEXT NOT NULL DEFAULT '',
    parent_session_id TEXT,
    parent_turn_id TEXT,
    parent_call_id TEXT,
    depth INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
{_SESSIONS_BY_PARENT};
CREATE TABLE nodes (
    session_id TEXT NOT NULL REFERENCES sessions (session_id),
    node_id TEXT NOT NULL,
    parent_id TEXT,
    frame_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (session_id, node_id)
);
{_NODES_BY_KIND};
{_NODES_BY_FRAME};
CREATE TABLE turns (
    session_id TEXT NOT NULL REFERENCES sessions (session_id),
    turn_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    committed_at REAL NOT NULL,
    node_ids TEXT NOT NULL,
    leaf_id TEXT,
    PRIMARY KEY (session_id, turn_id),
    UNIQUE (session_id, revision)
);
CREATE TABLE pending_inputs (
    session_id TEXT NOT NULL REFERENCES sessions (session_id),
    turn_id TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (session_id, turn_id)
);
{_USAGE_TABLE.format(name="usage")};
{_PLUGIN_STATE_TABLE};
{_MAINTENANCE_TABLE};
{_FRAMES_TABLE};
{_LEASES_TABLE};
INSERT INTO lash_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
"""
