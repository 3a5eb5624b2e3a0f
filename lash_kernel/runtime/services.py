"""What plugins and tools may do beyond hooks: open sessions (children too), call a model with
the usage ledger kept exact, write between turns (maintenance commits), run background work.

Rule: one ``Services`` per core, built by ``LashCore``; ``CoreHost`` (plugins) and each tool
call's ``ToolContext`` reach it, never the core. Every token spent through it lands in a
session's usage ledger exactly once: inside a turn in that turn's commit, outside a turn in a
maintenance commit. Every write to a session's head is made under its lease (``_lease``).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs

from lash_kernel.directives import OpenFrame
from lash_kernel.errors import CommitConflictError, ConfigError, LashError, SessionNotFoundError
from lash_kernel.messages import Message, repair_history
from lash_kernel.model import ModelRequest, ModelResponse
from lash_kernel.runtime._lease import claim_waiting, release
from lash_kernel.runtime._model_call import complete
from lash_kernel.runtime._state import CURRENT_TURN, TurnContext
from lash_kernel.runtime.session import Session, SessionServices
from lash_kernel.serde import encode_plugin_record
from lash_kernel.spec import SessionSpec
from lash_kernel.store.base import MESSAGE_KIND, CommitResult, Frame, MaintenanceCommit, Node, SessionInfo
from lash_kernel.text import valid_message, valid_text
from lash_kernel.usage import UsageLedger, usage_key

__all__ = ["Background", "Services"]

_log = logging.getLogger("lash")


class Background:
    """Background work a core owns (``PluginHost.spawn``): started at once on the running
    asyncio loop, awaited by ``drain()``, cancelled by ``cancel()``.

    A failure in one piece of work is logged with its name; it never reaches a turn.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, work: Callable[[], Awaitable[Any]], *, name: str) -> None:
        """Start ``work()`` in the background.

        Args:
            work: an async function taking no arguments (bind them with ``functools.partial``).
            name: what it is, for logs (``"observer: session 1f3a…"``).
        Raises:
            LashError: the core is closed, or no asyncio event loop is running (the work would
                have nowhere to run).
        """
        if self._closed:
            raise LashError(f"cannot start background work {name!r}: the core is closed")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise LashError(f"background work {name!r} needs a running asyncio event loop") from None
        token = CURRENT_TURN.set(None)  # the work belongs to no turn, even if started from one
        try:
            task = loop.create_task(self._run(work, name), name=f"lash: {name}")
        finally:
            CURRENT_TURN.reset(token)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run(work: Callable[[], Awaitable[Any]], name: str) -> None:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("background work %r failed", name)

    @property
    def pending(self) -> int:
        """How many pieces of work are still running."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait until every piece of work, including work started meanwhile, has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def cancel(self) -> None:
        """Cancel every running piece of work and refuse new work. Idempotent."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()


class Services:
    """Sessions, model calls, maintenance commits and background work for one core.

    Args:
        services: what sessions need from the core.
        on_opened: called with every session handle opened (the core fires
            ``lash_session_opened`` and tracks the handle).
    """

    def __init__(self, services: SessionServices, on_opened: Callable[[Session, bool], None]) -> None:
        self.session_services = services
        self.rt = services.runtime
        self.background = Background()
        self._on_opened = on_opened
        self._handles: weakref.WeakSet[Session] = weakref.WeakSet()

    async def drain(self) -> None:
        """Wait for the core's background work (``Background.drain``)."""
        await self.background.drain()

    # ---------------------------------------------------------------- sessions
    def open_session(
        self,
        session_id: str,
        *,
        mode: str,
        spec: SessionSpec | None = None,
        parent: SessionInfo | None = None,
        parent_turn: TurnContext | None = None,
        call_id: str | None = None,
        observed: bool = True,
    ) -> Session:
        """Open (creating if needed) a session handle. See ``LashCore.session``.

        Args:
            session_id: the id (valid Unicode).
            mode: the mode of a new session.
            spec: the settings of a new session (an existing one keeps its own).
            parent: the parent session's head, for a new child.
            parent_turn: the parent's running turn, for a child opened from a tool.
            call_id: the parent's tool call that opened the child.
            observed: tell ``on_opened`` whether the session was created (costs one read).
        """
        rt = self.rt
        created = False
        if observed:
            try:
                rt.store.get_session(session_id)
            except SessionNotFoundError:
                created = True
        info = rt.store.open_session(
            session_id, mode=mode, frame_id="f0", now=rt.clock(), spec=spec.to_json() if spec is not None else "",
            parent=parent, parent_turn_id=parent_turn.turn_id if parent_turn is not None else None,
            parent_call_id=call_id,
        )
        session = Session(self.session_services, info, parent_turn=parent_turn)
        self._handles.add(session)
        self._on_opened(session, created)
        return session

    def open_child_session(
        self,
        spec: SessionSpec | None,
        *,
        source: str,
        parent_session_id: str,
        parent_turn: TurnContext | None = None,
        call_id: str | None = None,
    ) -> Session:
        """A new durable child session of ``parent_session_id`` (see ``ToolContext.open_child_session``).

        Its spec is ``spec`` (default: inherited from the parent's); its own model calls are
        attributed to ``spec.usage_source``, else ``source``.

        Raises:
            ConfigError: ``source`` was not declared, or ``spec`` is not a ``SessionSpec``.
            SessionNotFoundError: no such parent session.
        """
        self.rt.check_source(source)
        parent = self.rt.store.get_session(parent_session_id)
        if spec is None:
            spec = SessionSpec.inherit(SessionSpec.from_json(parent.spec))
        elif not isinstance(spec, SessionSpec):
            raise ConfigError(f"open_child_session: spec must be a SessionSpec, got {type(spec).__name__}")
        if spec.usage_source is None:
            spec = attrs.evolve(spec, usage_source=source)
        else:
            self.rt.check_source(spec.usage_source)
        return self.open_session(
            self.rt.new_id(), mode=parent.mode, spec=spec, parent=parent, parent_turn=parent_turn, call_id=call_id,
        )

    def session_spec(self, session_id: str) -> SessionSpec:
        """The stored spec of ``session_id``. Raises ``SessionNotFoundError``."""
        return SessionSpec.from_json(self.rt.store.get_session(session_id).spec)

    def handles(self) -> list[Session]:
        """Every session handle opened through this core that is still referenced."""
        return list(self._handles)

    def _after_maintenance(
        self, session_id: str, result: CommitResult, fencing: int, frame_id: str | None, seed: tuple[Message, ...]
    ) -> None:
        """A maintenance commit moved ``session_id``'s head: advance this core's cached state
        (no reload), and make open handles holding another state reload on next use."""
        cache = self.session_services.cache
        hit = cache.get(session_id)
        state = hit[0] if hit is not None and hit[0].info.head_revision == result.head_revision - 1 else None
        if state is not None:
            state.apply_maintenance(result, self.rt.clock(), frame_id, seed)
            cache.put(session_id, state, fencing)
        else:
            cache.drop(session_id)
        for handle in list(self._handles):
            if handle.id == session_id:
                if state is not None and handle._state is state:
                    handle._fencing = fencing
                else:
                    handle._invalidate(drop_cached=False)

    # ---------------------------------------------------------------- model calls
    async def complete(
        self,
        request: ModelRequest | str,
        *,
        source: str,
        model: str | None = None,
        client: str | None = None,
        session_id: str | None = None,
        turn: TurnContext | None = None,
    ) -> ModelResponse:
        """One model call whose usage lands in a session's ledger (``PluginHost.complete``).

        Inside a turn of the session (``turn``, or the turn running in this task), the usage
        is committed with that turn; otherwise ``session_id`` is required and the usage is
        committed at once in a maintenance commit.

        Raises:
            ConfigError: an undeclared source, an unknown client, or no session to bill.
            ModelError: the provider failed after retries (nothing is recorded).
            SessionNotFoundError: no such session.
        """
        rt = self.rt
        rt.check_source(source)
        turn = _live_turn(turn or CURRENT_TURN.get(), session_id)
        if turn is None and session_id is None:
            raise ConfigError("complete() outside a turn needs session_id= (the session whose ledger pays)")
        spec = turn.session.spec if turn is not None else self.session_spec(session_id or "")
        if isinstance(request, str):
            request = ModelRequest(model="", messages=(Message.user(valid_text(request)),))
        model_id = model or request.model or spec.model or self.session_services.model
        if model_id != request.model:
            request = attrs.evolve(request, model=model_id)
        response = await complete(rt, rt.client_named(client if client is not None else spec.client), request)
        key = usage_key(source, model_id, response.model)
        if turn is not None:
            turn.spent(key, response.usage)
        else:
            ledger = UsageLedger.of([(key, response.usage, 1)])
            await self.maintenance_commit(session_id or "", usage=ledger)
        return response

    # ---------------------------------------------------------------- plugin records
    def append_records(self, session_id: str, records: Iterable[object]) -> None:
        """Store plugin records as nodes of ``session_id``, committed with its running turn.

        Raises:
            LashError: no turn of that session is running in this task, or a record is not a
                registered record type (nothing is stored).
        """
        turn = _live_turn(CURRENT_TURN.get(), session_id)
        if turn is None:
            raise LashError(
                f"append_nodes: no turn of session {session_id!r} is running here; "
                "between turns use commit_maintenance(records=...)"
            )
        rt = self.rt
        encoded = [(type(r).KIND, encode_plugin_record(r, rt.record_types)) for r in records]  # type: ignore[attr-defined]
        turn.plugin_nodes.extend(encoded)

    # ---------------------------------------------------------------- writes between turns
    async def maintenance_commit(
        self,
        session_id: str,
        *,
        key: str | None = None,
        records: Iterable[object] = (),
        frame: OpenFrame | None = None,
        usage: UsageLedger | None = None,
        expected_revision: int | None = None,
    ) -> CommitResult:
        """Commit plugin records, a usage delta and/or a frame switch between turns.

        Waits while a turn holds the session's lease, then commits under it (compare-and-set
        on the head revision, retried against the new head when nothing pins it). This core's
        cached state of the session and its open handles advance in place (no reload).

        Args:
            session_id: the session.
            key: idempotency key (default: a fresh id). Committing a key again with the same
                content returns the recorded result; with other content it raises.
            records: plugin records (registered record types) to store as nodes.
            frame: a frame to open, seeded with ``frame.seed``.
            usage: a usage delta to add to the session's ledger.
            expected_revision: the head revision the work was based on; a frame switch built
                from an older head then fails instead of being applied to a newer one.
        Returns:
            The store's result (``turn_id`` is the key).
        Raises:
            CommitConflictError: ``expected_revision`` is not the head, or ``key`` was
                committed with other content.
            SessionBusyError: a turn held the lease for longer than twice its lifetime.
            LashError: a record is not a registered record type.
        """
        rt = self.rt
        key = valid_text(key) if key else rt.new_id()
        payloads = [(type(r).KIND, encode_plugin_record(r, rt.record_types)) for r in records]  # type: ignore[attr-defined]
        seed = repair_history(valid_message(frame.seed)) if frame is not None else ()
        node_ids = [rt.new_id() for _ in range(len(seed) + len(payloads))]
        frame_id = (frame.frame_id if frame is not None else None) or rt.new_id()
        lease = await claim_waiting(rt, session_id)
        try:
            for attempt in range(3):
                info = rt.store.get_session(session_id)
                now = rt.clock()
                nodes, frame_record = _maintenance_nodes(
                    info, key, seed, payloads, node_ids, frame_id if frame is not None else None,
                    frame.reason if frame is not None else "", now,
                )
                commit = MaintenanceCommit(
                    session_id=session_id, key=key,
                    expected_head_revision=expected_revision if expected_revision is not None else info.head_revision,
                    nodes=nodes, usage=usage or UsageLedger(), committed_at=now, frame=frame_record, lease=lease,
                )
                try:
                    result = rt.store.commit_maintenance(commit)
                    break
                except CommitConflictError:
                    if expected_revision is not None or attempt == 2:
                        raise
        finally:
            release(rt, lease)
        if not result.replayed:  # a replay changed nothing
            opened = frame_record.frame_id if frame_record is not None else None
            self._after_maintenance(session_id, result, lease.fencing, opened, seed)
        return result


def _live_turn(turn: TurnContext | None, session_id: str | None) -> TurnContext | None:
    """``turn`` if it is a turn of ``session_id`` (any session when None) that has not been
    committed yet, else None: work after the commit belongs to no turn."""
    if turn is None or turn.control.commit is not None:
        return None
    if session_id is not None and turn.session_id != session_id:
        return None
    return turn


def _maintenance_nodes(
    info: SessionInfo,
    key: str,
    seed: tuple[Message, ...],
    payloads: list[tuple[str, str]],
    node_ids: list[str],
    frame_id: str | None,
    reason: str,
    now: float,
) -> tuple[tuple[Node, ...], Frame | None]:
    """A maintenance commit's nodes: the frame's seed chained from the leaf, then the plugin
    records (no parent: they hang off no path, so a retry against a newer head hashes the same)."""
    ids = iter(node_ids)
    current = frame_id or info.frame_id
    nodes: list[Node] = []
    parent = info.leaf_id
    for message in seed:
        node = Node(
            node_id=next(ids), parent_id=parent, frame_id=current, turn_id=key, kind=MESSAGE_KIND,
            payload=message, created_at=now,
        )
        nodes.append(node)
        parent = node.node_id
    for kind, text in payloads:
        node = Node(
            node_id=next(ids), parent_id=None, frame_id=current, turn_id=key, kind=kind, payload=text, created_at=now
        )
        nodes.append(node)
    frame = None
    if frame_id is not None:
        frame = Frame(
            frame_id=frame_id, previous_frame_id=info.frame_id, reason=reason, opened_by=key,
            seed_node_ids=tuple(n.node_id for n in nodes[: len(seed)]), created_at=now,
        )
    return tuple(nodes), frame
