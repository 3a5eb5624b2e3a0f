"""Per-worker heartbeat leases in PostgreSQL: who is alive, and who recovers the dead.

One row per worker process in ``lash_dbos_workers`` (worker id = its DBOS executor id, the
application version it runs, its last heartbeat). Every live worker beats every
``heartbeat_s`` seconds and then looks for rows whose heartbeat is older than ``dead_after_s``.
A dead worker's row is *claimed* by one statement (``UPDATE … WHERE heartbeat stale AND (not
claimed OR claim stale) RETURNING``), so exactly one live worker recovers it at a time; the
claimant re-enqueues the dead executor's pending workflows (DBOS makes that idempotent: a
workflow already picked up by a live executor is not touched) and then deletes the row. A
claimant that dies itself leaves a claim that goes stale and is taken over.

Times are the database server's clock (``now()``), so workers on machines with skewed clocks
agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg

__all__ = ["WorkerLeases"]

_log = logging.getLogger("lash.dbos")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lash_dbos_workers (
    worker_id text PRIMARY KEY,
    app_version text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    claimed_by text,
    claimed_at timestamptz
)
"""


class WorkerLeases:
    """The heartbeat table, as one worker sees it.

    Args:
        dsn: ``postgresql://`` URL (psycopg / libpq syntax).
        worker_id: this worker's id (also its DBOS ``executor_id``).
        app_version: the pinned application version; only workers of the same version recover
            each other (DBOS replays a workflow only on the version that started it).
        dead_after_s: a heartbeat older than this (seconds) means the worker is dead; keep it
            several heartbeats long.
    Raises:
        psycopg.Error: the database is unreachable (on ``create``/``beat``).
    """

    def __init__(self, dsn: str, *, worker_id: str, app_version: str, dead_after_s: float) -> None:
        self.dsn, self.worker_id, self.app_version, self.dead_after_s = dsn, worker_id, app_version, dead_after_s
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        return self._conn

    def create(self) -> None:
        """Create the table (if missing; concurrent creators serialised by an advisory lock)."""
        conn = self._connection()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('lash_dbos_workers'))")
            conn.execute(_SCHEMA)

    def beat(self) -> None:
        """Record that this worker is alive now (inserting its row the first time)."""
        self._connection().execute(
            "INSERT INTO lash_dbos_workers (worker_id, app_version) VALUES (%s, %s) "
            "ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = now()",
            (self.worker_id, self.app_version),
        )

    def claim_dead(self) -> list[str]:
        """Claim the rows of dead workers of this version that nobody (alive) is recovering.

        Returns:
            Their worker ids (= DBOS executor ids), to recover and then ``forget``.
        """
        rows = self._connection().execute(
            "UPDATE lash_dbos_workers SET claimed_by = %s, claimed_at = now() "
            "WHERE worker_id <> %s AND app_version = %s "
            "AND heartbeat_at < now() - make_interval(secs => %s) "
            "AND (claimed_by IS NULL OR claimed_at < now() - make_interval(secs => %s)) "
            "RETURNING worker_id",
            (self.worker_id, self.worker_id, self.app_version, self.dead_after_s, self.dead_after_s),
        ).fetchall()
        return [r[0] for r in rows]

    def forget(self, worker_id: str) -> None:
        """Delete a recovered worker's row (only while this worker's claim on it stands)."""
        self._connection().execute(
            "DELETE FROM lash_dbos_workers WHERE worker_id = %s AND claimed_by = %s", (worker_id, self.worker_id)
        )

    def leave(self) -> None:
        """Delete this worker's own row (a clean shutdown) and close the connection."""
        try:
            self._connection().execute("DELETE FROM lash_dbos_workers WHERE worker_id = %s", (self.worker_id,))
        finally:
            self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def tick(self, recover: Callable[[list[str]], object]) -> list[str]:
        """One heartbeat: beat, claim the dead, ``recover(ids)``, forget them.

        Returns:
            The worker ids recovered in this tick.
        """
        self.beat()
        dead = self.claim_dead()
        if dead:
            _log.warning("worker %s: recovering the workflows of dead workers %s", self.worker_id, dead)
            recover(dead)
            for worker_id in dead:
                self.forget(worker_id)
        return dead

    def alive(self) -> list[str]:
        """Ids of workers whose heartbeat is fresh, sorted."""
        rows = self._connection().execute(
            "SELECT worker_id FROM lash_dbos_workers WHERE heartbeat_at >= now() - make_interval(secs => %s) "
            "ORDER BY worker_id",
            (self.dead_after_s,),
        ).fetchall()
        return [r[0] for r in rows]
