"""Turns as DBOS workflows on the lash store's PostgreSQL: ``DbosRunner`` and ``TurnClient``.

A submitted turn is a DBOS workflow (``lash.turn``) whose id is the turn id, enqueued on one
partitioned queue with the session id as partition key and a partition concurrency of 1: turns
of one session run one at a time, in submission order, on whichever worker dequeues them;
different sessions run in parallel (up to ``concurrency`` per worker).

The workflow runs an ordinary kernel turn (``session.turn(prompt, turn_id=<workflow id>)``) on
the worker's ``LashCore``, whose model client is a ``JournaledModel`` and whose tools are
journaled (``journal_tools``): model calls and tool calls are DBOS steps. The commit is the
kernel's own: one fenced store transaction under the session's lease, refused for a turn id the
session already committed. So a recovered workflow whose turn had committed before its worker
died finds the turn committed (the kernel's ``CommitConflictError`` at admission, before any
model call) and returns the recorded turn: the commit happens exactly once without a DBOS
transaction step (which would need the commit to run on DBOS's own connection).

Dead workers are found by heartbeat leases (``WorkerLeases``) and their pending workflows are
re-enqueued with DBOS's recovery on a live worker of the same pinned ``app_version``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio
from dbos import DBOS, DBOSClient, DBOSConfig

from lash_dbos.journal import JournaledModel, journal_tools
from lash_dbos.leases import WorkerLeases
from lash_kernel import CommitConflictError, ConfigError, LashCore, LashError, SessionBusyError

__all__ = ["APP_NAME", "DEFAULT_APP_VERSION", "DEFAULT_QUEUE", "WORKFLOW_NAME", "DbosRunner", "TurnClient"]

_log = logging.getLogger("lash.dbos")

APP_NAME = "lash"
WORKFLOW_NAME = "lash.turn"
DEFAULT_QUEUE = "lash_turns"
DEFAULT_APP_VERSION = "lash-dbos-1"

_DONE = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})
_runner: DbosRunner | None = None  # the one runner of this process (DBOS is a process singleton)


def _sqlalchemy_url(dsn: str) -> str:
    """DBOS takes a SQLAlchemy URL: ``postgresql://`` → ``postgresql+psycopg://`` (psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix):]
    return dsn


def _summary(session_id: str, turn_id: str, revision: int, outcome: Any, text: str | None) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "turn_id": turn_id,
        "revision": revision,
        "outcome": getattr(outcome, "KIND", type(outcome).__name__),
        "text": text,
    }


@DBOS.workflow(name=WORKFLOW_NAME)
async def turn_workflow(session_id: str, prompt: str) -> dict[str, Any]:
    """The DBOS workflow of one turn (id = turn id). Runs on the process's ``DbosRunner``."""
    if _runner is None:
        raise LashError("no DbosRunner is running in this process")
    turn_id = DBOS.workflow_id
    assert turn_id is not None
    return await _runner.run_turn(session_id, prompt, turn_id)


class TurnClient:
    """Submit turns and read their results from any process (no worker, no workflow code).

    Args:
        dsn: the PostgreSQL URL the workers use (``postgresql://…``).
        app_version: the workers' pinned application version (only workers of that version
            dequeue the turn).
        queue: the queue name the workers listen on.
    Raises:
        Exception: from DBOS when the database is unreachable.

    Creating one creates DBOS's schema (``dbos``) when no worker has yet.
    """

    def __init__(self, dsn: str, *, app_version: str = DEFAULT_APP_VERSION, queue: str = DEFAULT_QUEUE) -> None:
        self.app_version, self.queue = app_version, queue
        DBOS.migrate(_sqlalchemy_url(dsn))  # DBOS's schema, if no worker created it yet (idempotent)
        self._client = DBOSClient(system_database_url=_sqlalchemy_url(dsn), application_name=APP_NAME)

    def submit(self, session_id: str, prompt: str, *, turn_id: str | None = None) -> str:
        """Enqueue a turn of ``session_id`` (created on first use) with user text ``prompt``.

        Args:
            turn_id: the turn id (= workflow id); default a fresh one. Submitting an id again
                attaches to the existing turn instead of running a second one.
        Returns:
            The turn id.
        """
        turn_id = turn_id or uuid.uuid4().hex
        self._client.enqueue(
            {
                "workflow_name": WORKFLOW_NAME,
                "queue_name": self.queue,
                "workflow_id": turn_id,
                "queue_partition_key": session_id,
                "app_version": self.app_version,
            },
            session_id,
            prompt,
        )
        return turn_id

    def result(self, turn_id: str, *, timeout_s: float | None = None) -> dict[str, Any]:
        """Wait for the turn and return ``{session_id, turn_id, revision, outcome, text}``.

        Args:
            timeout_s: longest wait in seconds (None: no limit).
        Raises:
            TimeoutError: not finished within ``timeout_s``.
            Exception: the workflow failed (its error, as DBOS recorded it).
        """
        handle = self._client.retrieve_workflow(turn_id)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while handle.get_status().status not in _DONE:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"turn {turn_id} not finished after {timeout_s} s")
            time.sleep(0.05)
        return handle.get_result()  # type: ignore[no-any-return]

    def status(self, turn_id: str) -> str:
        """The workflow's DBOS status (``ENQUEUED``, ``PENDING``, ``SUCCESS``, ``ERROR``, ...)."""
        return str(self._client.retrieve_workflow(turn_id).get_status().status)

    def close(self) -> None:
        """Release the client's connections."""
        self._client.destroy()


class DbosRunner:
    """A worker: runs submitted turns as DBOS workflows, and recovers those of dead workers.

    One per process (DBOS is a process-wide singleton). ``launch()`` builds the core, starts
    DBOS (which creates its schema in the database on first use) and the heartbeat thread.

    Args:
        core_factory: builds this worker's ``LashCore`` (called once, in ``launch``): its
            ``model_client`` must be a ``JournaledModel`` and its store the PostgreSQL database
            ``dsn`` names (e.g. ``store=dsn``). Its static tools are journaled in place.
        dsn: ``postgresql://`` URL of the database holding both lash's tables and DBOS's
            ``dbos`` schema.
        concurrency: turns this worker runs at once (> 0); one session never runs two.
        worker_id: this worker's id and DBOS executor id; default ``host:pid:random``, fresh
            per process so a restarted worker never inherits a dead one's identity.
        app_version: pinned DBOS application version: bump it when turn code changes in a way
            that would replay differently; workers recover only workflows of their version.
        heartbeat_s: seconds between heartbeats (> 0).
        dead_after_s: heartbeat age (seconds) after which a worker counts as dead; default
            ``5 * heartbeat_s``.
        queue: the queue name.
        polling_interval_s: how often the worker polls the queue (seconds).
        busy_retry_s: wait before retrying a turn whose session lease is still held (a dead
            worker's lease on another machine expires after the core's ``lease_ttl_s``).
    Raises:
        ConfigError: invalid arguments (at construction) or a core without a ``JournaledModel``
            (at ``launch``).
    """

    def __init__(
        self,
        core_factory: Callable[[], LashCore],
        dsn: str,
        *,
        concurrency: int = 4,
        worker_id: str | None = None,
        app_version: str = DEFAULT_APP_VERSION,
        heartbeat_s: float = 1.0,
        dead_after_s: float | None = None,
        queue: str = DEFAULT_QUEUE,
        polling_interval_s: float = 0.2,
        busy_retry_s: float = 0.2,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
        if not heartbeat_s > 0:
            raise ConfigError(f"heartbeat_s must be > 0 seconds, got {heartbeat_s}")
        self.core_factory, self.dsn, self.concurrency = core_factory, dsn, concurrency
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.app_version, self.queue = app_version, queue
        self.heartbeat_s = heartbeat_s
        self.dead_after_s = dead_after_s if dead_after_s is not None else 5 * heartbeat_s
        self.polling_interval_s, self.busy_retry_s = polling_interval_s, busy_retry_s
        self.core: LashCore | None = None
        self.leases = WorkerLeases(
            dsn, worker_id=self.worker_id, app_version=app_version, dead_after_s=self.dead_after_s
        )
        self.recovered: list[str] = []  # worker ids this runner recovered
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: TurnClient | None = None

    # ------------------------------------------------------------------ lifecycle
    def launch(self) -> None:
        """Build the core, start DBOS (listening on the turn queue) and the heartbeat thread.

        Raises:
            ConfigError: the core's model client is not a ``JournaledModel``, or a runner is
                already running in this process.
        """
        global _runner
        if _runner is not None:
            raise ConfigError("a DbosRunner is already running in this process (DBOS is one per process)")
        core = self.core_factory()
        if not isinstance(core.model_client, JournaledModel):
            core.close()
            raise ConfigError(
                "the core's model_client must be a JournaledModel (LashCore(model_client=JournaledModel(...)))"
            )
        journal_tools(core.tools)
        self.core = core
        _runner = self
        try:
            self.leases.create()
            self.leases.beat()  # before DBOS can hand this worker anything
            config: DBOSConfig = {
                "name": APP_NAME,
                "system_database_url": _sqlalchemy_url(self.dsn),
                "application_version": self.app_version,
                "executor_id": self.worker_id,
                "log_level": os.environ.get("LASH_DBOS_LOG_LEVEL", "WARNING"),
            }
            DBOS(config=config)
            DBOS.launch()
            # Queues live in the database (registered after launch; the worker then listens).
            DBOS.register_queue(
                self.queue,
                worker_concurrency=self.concurrency,
                partition_concurrency=1,
                polling_interval_sec=self.polling_interval_s,
                on_conflict="always_update",
            )
        except BaseException:
            _runner = None
            core.close()
            raise
        self._thread = threading.Thread(target=self._heartbeat, name="lash-dbos-heartbeat", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop heartbeats, shut DBOS down (running turns stay pending and are recovered by
        another worker once this one's heartbeat row is gone) and close the core."""
        global _runner
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._client is not None:
            self._client.close()
        DBOS.destroy(destroy_registry=False)
        try:
            self.leases.leave()
        except Exception as exc:  # the row then goes stale and is recovered like a crash
            _log.error("worker %s: could not remove its heartbeat row: %s", self.worker_id, exc)
        if self.core is not None:
            self.core.close()
        _runner = None

    def __enter__(self) -> DbosRunner:
        self.launch()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                dead = self.leases.tick(self._recover)
                self.recovered.extend(dead)
            except Exception as exc:  # keep beating; a missed beat or two is harmless
                _log.error("worker %s: heartbeat failed: %s", self.worker_id, exc)
                self.leases.close()

    def _recover(self, executor_ids: list[str]) -> None:
        DBOS._recover_pending_workflows(executor_ids)

    # ------------------------------------------------------------------ turns
    def submit(self, session_id: str, prompt: str, *, turn_id: str | None = None) -> str:
        """Enqueue a turn (see ``TurnClient.submit``); any worker may run it. Returns the turn id."""
        return self._turn_client().submit(session_id, prompt, turn_id=turn_id)

    def result(self, turn_id: str, *, timeout_s: float | None = None) -> dict[str, Any]:
        """Wait for a submitted turn (see ``TurnClient.result``)."""
        return self._turn_client().result(turn_id, timeout_s=timeout_s)

    def _turn_client(self) -> TurnClient:
        if self._client is None:
            self._client = TurnClient(self.dsn, app_version=self.app_version, queue=self.queue)
        return self._client

    async def run_turn(self, session_id: str, prompt: str, turn_id: str) -> dict[str, Any]:
        """The body of the turn workflow: run (or, when already committed, look up) the turn.

        Returns:
            ``{session_id, turn_id, revision, outcome, text}`` (``text`` None when the turn had
            been committed by an earlier, crashed run of the workflow).
        Raises:
            LashError: the turn failed (e.g. ``LeaseLostError``, ``StoreError``).
        """
        core = self.core
        assert core is not None
        while True:
            session = core.session(session_id)
            try:
                result = await session.turn(prompt, turn_id=turn_id).run()
            except CommitConflictError:
                record = core.store.get_turn(session_id, turn_id)
                if record is None:
                    raise
                return _summary(session_id, turn_id, record.revision, record.outcome, None)
            except SessionBusyError:  # a dead worker's lease not yet expired (other machine)
                await anyio.sleep(self.busy_retry_s)
                continue
            return _summary(session_id, turn_id, result.head_revision, result.outcome, result.text)
