"""Workers: run submitted turns from a shared store, in as many processes as you like.

Rule: a worker owns no queue of its own. The store is the queue: ``LashCore.submit`` records a
turn's input as pending input (durable, with its turn id); a ``Worker`` polls
``Store.sessions_with_pending_input`` for sessions with pending input and no live lease, and
runs each one's oldest pending input as an ordinary turn with its recorded turn id. The turn
claims the session's lease first (a session another writer holds is skipped), commits with the
lease's fencing check, and releases it. So turns of one session run one at a time, in
submission order, on whichever worker claims the session; turns of different sessions run in
parallel, up to ``concurrency`` per worker.

Failure modes (docs/scale-out.md): a worker that dies mid-turn leaves its input pending and its
lease live until it expires (``lease_ttl_s`` of the worker's core; at once for a dead process
on the same machine when a claim is tried); another worker then re-runs the turn from its
recorded input, so the model calls the dead worker had made are made again (at-least-once),
while the commit happens once (the turn id: a committed turn id is never run again, and a
stale worker's late commit is refused by the fencing number).
"""

from __future__ import annotations

import logging
import math
import signal
from collections import OrderedDict
from typing import TYPE_CHECKING

import anyio
import attrs

from lash_kernel.errors import CommitConflictError, ConfigError, LashError, SessionBusyError, StoreError
from lash_kernel.runtime.session import Session, Turn

if TYPE_CHECKING:
    from lash_kernel.runtime.core import LashCore

__all__ = ["Worker", "WorkerStats"]

_log = logging.getLogger("lash")


@attrs.define
class WorkerStats:
    """What a worker did so far (counts, since it started).

    Attributes:
        committed: turns this worker ran and committed (any outcome, ``Stopped`` included).
        already_committed: pending inputs found committed by another worker when this one
            claimed the session (a race both sides survive; nothing was run).
        busy: times a session was skipped because another writer held its lease.
        failed: turns that raised (lost lease, store failure, unknown mode, ...); their input
            stays pending and is retried later, with a per-session backoff.
    """

    committed: int = 0
    already_committed: int = 0
    busy: int = 0
    failed: int = 0


class Worker:
    """Runs submitted turns (``LashCore.submit``) from ``core``'s store, ``concurrency`` at a
    time (each of a different session). Start as many workers, in as many processes, as the
    store can serve: they coordinate only through the store's leases. Added in 0.3.

    Example::

        async with LashCore(model_client=client, model="gpt-4o-mini", store=url) as core:
            await Worker(core, concurrency=8).run(handle_signals=True)

    Args:
        core: the core whose store, model, plugins and tools run the turns. Its
            ``lease_ttl_s`` is how long a dead worker's sessions stay blocked.
        concurrency: turns run at once (>= 1), each of a different session.
        poll_interval_s: pause between two polls of the store when there is nothing to start,
            seconds (> 0); also the backoff of a session found busy.
        grace_s: after ``stop()``, how long running turns may take to finish before they are
            cancelled (a cancelled turn commits ``Stopped(cancelled)``), seconds (>= 0).
        max_handles: session handles kept open between turns (an LRU; each keeps its session's
            decoded state warm).
    Raises:
        ConfigError: an argument out of range.
    """

    def __init__(
        self,
        core: LashCore,
        *,
        concurrency: int = 4,
        poll_interval_s: float = 0.5,
        grace_s: float = 30.0,
        max_handles: int = 1024,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
        if not poll_interval_s > 0:
            raise ConfigError(f"poll_interval_s must be > 0 seconds, got {poll_interval_s}")
        if not grace_s >= 0:
            raise ConfigError(f"grace_s must be >= 0 seconds, got {grace_s}")
        self.core = core
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self.grace_s = grace_s
        self.max_handles = max(1, max_handles)
        self.stats = WorkerStats()
        self._running: dict[str, Turn | None] = {}  # session id -> its turn (None while preparing)
        self._handles: OrderedDict[str, Session] = OrderedDict()
        self._backoff: dict[str, tuple[int, float]] = {}  # session id -> (failures, retry after)
        self._wake: anyio.Event | None = None  # created in run(), inside the event loop
        self._stopping = False
        self._cancelling: str | None = None
        self._started = False

    # ---------------------------------------------------------------- control
    def stop(self, *, cancel_running: bool = False) -> None:
        """Ask the worker to stop: it starts no new turn, lets running ones finish (up to
        ``grace_s``), then ``run()`` returns. Idempotent; safe from any task of the loop.

        Args:
            cancel_running: cancel the running turns now instead of waiting (each commits
                ``Stopped(cancelled)``, a result its submitter sees).
        """
        self._stopping = True
        if cancel_running:
            self._cancel_running("the worker is stopping")
        if self._wake is not None:
            self._wake.set()

    @property
    def running(self) -> tuple[str, ...]:
        """Ids of the sessions whose turn this worker is running now."""
        return tuple(self._running)

    async def run(
        self,
        *,
        handle_signals: bool = False,
        until_idle: bool = False,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve submitted turns until ``stop()`` (or a signal) ends it.

        With ``await task_group.start(worker.run)`` the caller resumes once the worker is
        ready: signal handlers installed, about to poll for the first time.

        Args:
            handle_signals: treat SIGTERM and SIGINT as ``stop()``; a second one cancels the
                running turns at once. Main thread only.
            until_idle: return once no session has pending input (this worker's or another
                writer's) and nothing runs here (for batch jobs and tests).
        Raises:
            LashError: the worker was already started.
        """
        if self._started:
            raise LashError("this Worker was already started")
        self._started = True
        self._wake = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                watcher = anyio.CancelScope()
                if handle_signals:
                    await tg.start(self._watch_signals, watcher)
                task_status.started()
                try:
                    await self._poll(tg, until_idle=until_idle)
                    with anyio.move_on_after(self.grace_s):
                        while self._running:
                            await self._wait_wake(math.inf)
                    self._cancel_running("the worker is stopping (grace period over)")
                finally:
                    watcher.cancel()
        finally:
            for session in self._handles.values():
                session.close()
            self._handles.clear()

    # ---------------------------------------------------------------- internals
    async def _watch_signals(
        self, scope: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with scope, anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                if self._stopping:
                    _log.warning("worker: signal %s again: cancelling running turns", signum)
                    self.stop(cancel_running=True)
                else:
                    _log.warning("worker: signal %s: finishing running turns, starting no new one", signum)
                    self.stop()

    def _cancel_running(self, reason: str) -> None:
        self._cancelling = reason
        for turn in self._running.values():
            if turn is not None:
                turn.cancel(reason)

    async def _wait_wake(self, timeout: float) -> None:
        assert self._wake is not None
        with anyio.move_on_after(timeout):
            await self._wake.wait()
        self._wake = anyio.Event()

    async def _poll(self, tg: anyio.abc.TaskGroup, *, until_idle: bool) -> None:
        store, clock = self.core.store, self.core.services.rt.clock
        while not self._stopping:
            free = self.concurrency - len(self._running)
            started, found = 0, True
            if free > 0:
                mono = anyio.current_time()
                self._backoff = {s: b for s, b in self._backoff.items() if b[1] > mono or b[0] > 0}
                waiting = sum(1 for _, until in self._backoff.values() if until > mono)
                try:
                    candidates = store.sessions_with_pending_input(limit=free + waiting + self.concurrency, now=clock())
                except StoreError as exc:
                    _log.error("worker: polling the store failed: %s", exc)
                    candidates = []
                found = bool(candidates)
                for sid in candidates:
                    if sid in self._running or self._backoff.get(sid, (0, 0.0))[1] > mono:
                        continue
                    self._running[sid] = None
                    tg.start_soon(self._serve, sid)
                    started += 1
                    if started == free:
                        break
            if until_idle and not found and not self._running and not self._pending_anywhere():
                return
            if started:
                await anyio.sleep(0)
            else:
                await self._wait_wake(self.poll_interval_s)

    def _pending_anywhere(self) -> bool:
        """Whether any session has pending input, leased or not (a store failure says yes)."""
        try:
            return bool(self.core.store.sessions_with_pending_input(limit=1))
        except StoreError:
            return True

    def _handle(self, session_id: str) -> Session:
        session = self._handles.pop(session_id, None)
        if session is None:
            session = self.core.session(session_id)
        self._handles[session_id] = session
        while len(self._handles) > self.max_handles:
            sid, old = next(iter(self._handles.items()))
            if sid in self._running:
                break
            del self._handles[sid]
            old.close()
        return session

    def _back_off(self, session_id: str, *, failed: bool) -> None:
        failures = self._backoff.get(session_id, (0, 0.0))[0] + (1 if failed else 0)
        pause = min(self.poll_interval_s * 2 ** failures, 60.0) if failed else self.poll_interval_s
        self._backoff[session_id] = (failures, anyio.current_time() + pause)

    async def _serve(self, session_id: str) -> None:
        """Run the oldest pending input of ``session_id`` as its turn, if the lease is free."""
        store, turn_id = self.core.store, None
        try:
            pending = store.pending_inputs(session_id)
            if not pending:
                return
            first = pending[0]
            turn_id = first.turn_id
            turn = self._handle(session_id).turn(first.message, turn_id=turn_id)
            self._running[session_id] = turn
            if self._cancelling is not None:
                turn.cancel(self._cancelling)
            result = await turn.run()
            self.stats.committed += 1
            self._backoff.pop(session_id, None)
            _log.info("worker: session %s turn %s committed: %s", session_id, turn_id, result.outcome)
        except SessionBusyError:
            self.stats.busy += 1
            self._back_off(session_id, failed=False)
        except CommitConflictError as exc:
            if turn_id is not None and _committed(self.core, session_id, turn_id):
                self.stats.already_committed += 1
            else:  # another writer committed first: the handle reloaded; try again soon
                self.stats.failed += 1
                self._back_off(session_id, failed=False)
                _log.warning("worker: session %s turn %s: %s", session_id, turn_id, exc)
        except LashError as exc:
            self.stats.failed += 1
            self._back_off(session_id, failed=True)
            _log.warning("worker: session %s turn %s failed (input stays pending): %s", session_id, turn_id, exc)
        except Exception:  # a bug in a plugin or a tool must not stop the other turns
            self.stats.failed += 1
            self._back_off(session_id, failed=True)
            _log.exception("worker: session %s turn %s failed (input stays pending)", session_id, turn_id)
        finally:
            self._running.pop(session_id, None)
            if self._wake is not None:
                self._wake.set()


def _committed(core: LashCore, session_id: str, turn_id: str) -> bool:
    try:
        return core.store.get_turn(session_id, turn_id) is not None
    except StoreError:
        return False
