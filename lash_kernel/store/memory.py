"""An in-memory ``Store``: the SQLite store's semantics without a file.

Rule: same observable behaviour as ``SqliteStore`` (the conformance suite in
``lash_kernel.testing.conformance`` runs against both); every commit is validated completely
before anything is mutated, so a failed commit writes nothing. Used for tests and ephemeral
sessions; everything is lost when the process exits.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType
from typing import final

import attrs

from lash_kernel.errors import SessionNotFoundError, StoreError
from lash_kernel.store._commit import (
    AnyCommit,
    CommitPlan,
    Head,
    RecordedTurn,
    commit_hash,
    plan_claim,
    plan_commit,
    plan_renew,
    releases,
)
from lash_kernel.store.base import (
    CommitResult,
    Frame,
    Lease,
    MaintenanceCommit,
    Node,
    PendingInput,
    SessionInfo,
    TurnCommit,
    TurnRecord,
)
from lash_kernel.usage import TokenUsage, UsageKey, UsageLedger

__all__ = ["MemoryStore"]


@attrs.define
class _Session:
    """Mutable state of one session (private to ``MemoryStore``); answers the commit rules'
    ``SessionReads``."""

    info: SessionInfo
    nodes: dict[str, Node] = attrs.Factory(dict)  # in commit order
    by_kind: dict[str, list[Node]] = attrs.Factory(dict)  # each in commit order
    commits: dict[str, tuple[RecordedTurn, str | None]] = attrs.Factory(dict)  # turns and maintenance: leaf after
    turns: dict[str, TurnRecord] = attrs.Factory(dict)  # in revision order
    frames: list[Frame] = attrs.Factory(list)
    frame_ids: set[str] = attrs.Factory(set)  # every frame record's id and previous frame id
    pending: dict[str, PendingInput] = attrs.Factory(dict)
    usage: dict[UsageKey, tuple[TokenUsage, int]] = attrs.Factory(dict)
    plugin_state: dict[str, str] = attrs.Factory(dict)
    lease_row: Lease | None = None

    def recorded_turn(self, turn_id: str) -> RecordedTurn | None:
        """The committed turn or maintenance commit ``turn_id``, or None (``SessionReads``)."""
        recorded = self.commits.get(turn_id)
        return recorded[0] if recorded is not None else None

    def leaf_after(self, turn_id: str, revision: int) -> str | None:
        """The leaf right after the committed ``turn_id`` (``SessionReads``)."""
        return self.commits[turn_id][1]

    def existing_node_kinds(self, node_ids: tuple[str, ...]) -> Mapping[str, str]:
        """The kinds of those of ``node_ids`` in the session (``SessionReads``)."""
        return {n: self.nodes[n].kind for n in node_ids if n in self.nodes}

    def frame_known(self, frame_id: str) -> bool:
        """Whether a frame record names ``frame_id`` (``SessionReads``)."""
        return frame_id in self.frame_ids

    def lease(self) -> Lease | None:
        """The session's lease row (``SessionReads``)."""
        return self.lease_row


@final
class MemoryStore:
    """The ``Store`` protocol held in process memory.

    Thread-safe (one lock around every call). Records are immutable, so they are stored and
    returned as is, never copied.

    Example:
        >>> store = MemoryStore()
        >>> store.open_session("s1", mode="standard", frame_id="f0", now=0.0).head_revision
        0
    """

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.RLock()
        self._closed = False

    def __repr__(self) -> str:
        return f"<MemoryStore sessions={len(self._sessions)}{' closed' if self._closed else ''}>"

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------------------

    def _session(self, session_id: str) -> _Session:
        if self._closed:
            raise StoreError("the MemoryStore is closed")
        state = self._sessions.get(session_id)
        if state is None:
            raise SessionNotFoundError(f"no session {session_id!r} in this store")
        return state

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
            StoreError: the store is closed.
        """
        with self._lock:
            if self._closed:
                raise StoreError("the MemoryStore is closed")
            state = self._sessions.get(session_id)
            if state is None:
                depth = self._session(parent.session_id).info.depth + 1 if parent is not None else 0
                info = SessionInfo(
                    session_id=session_id,
                    head_revision=0,
                    leaf_id=None,
                    frame_id=frame_id,
                    mode=mode,
                    created_at=now,
                    updated_at=now,
                    spec=spec,
                    parent_session_id=parent.session_id if parent is not None else None,
                    parent_turn_id=parent_turn_id if parent is not None else None,
                    parent_call_id=parent_call_id if parent is not None else None,
                    depth=depth,
                )
                state = self._sessions[session_id] = _Session(info=info)
            return state.info

    def get_session(self, session_id: str) -> SessionInfo:
        """Return the session's head, in O(1).

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            return self._session(session_id).info

    def list_sessions(self) -> list[SessionInfo]:
        """All sessions, most recently updated first (ties: by session id).

        Raises:
            StoreError: the store is closed.
        """
        with self._lock:
            if self._closed:
                raise StoreError("the MemoryStore is closed")
            infos = [s.info for s in self._sessions.values()]
        return sorted(infos, key=lambda i: (-i.updated_at, i.session_id))

    def delete_session(self, session_id: str) -> list[str]:
        """Delete the session and its child sessions, recursively (see ``Store.delete_session``).

        Returns:
            The deleted session ids, ``session_id`` first.
        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            self._session(session_id)
            doomed, i = [session_id], 0
            while i < len(doomed):
                doomed += sorted(k for k, v in self._sessions.items() if v.info.parent_session_id == doomed[i])
                i += 1
            for sid in doomed:
                del self._sessions[sid]
        return doomed

    def list_children(self, session_id: str) -> list[SessionInfo]:
        """The sessions opened with ``session_id`` as parent, oldest first (by ``created_at``,
        then session id).

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            self._session(session_id)
            infos = [s.info for s in self._sessions.values() if s.info.parent_session_id == session_id]
        return sorted(infos, key=lambda i: (i.created_at, i.session_id))

    def load_active_path(self, session_id: str) -> tuple[Node, ...]:
        """Nodes from the current frame's first node to the leaf, oldest first (leaf last).

        The walk follows ``parent_id`` from the leaf and stops before the first node of another
        frame, so its cost depends on the path length only.

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            state = self._session(session_id)
            frame = state.info.frame_id
            path: list[Node] = []
            node_id = state.info.leaf_id
            while node_id is not None:
                node = state.nodes[node_id]
                if node.frame_id != frame:
                    break
                path.append(node)
                node_id = node.parent_id
        path.reverse()
        return tuple(path)

    # -- admitted input ------------------------------------------------------------------------

    def record_input(self, pending: PendingInput) -> None:
        """Durably admit a turn's user input. Idempotent per (session, turn).

        A second call for the same turn keeps the first record; a call for a turn that is already
        committed does nothing.

        Raises:
            SessionNotFoundError: ``pending.session_id`` does not exist.
            StoreError: the store is closed.
        """
        with self._lock:
            state = self._session(pending.session_id)
            if pending.turn_id in state.turns:
                return
            state.pending.setdefault(pending.turn_id, pending)

    def pending_inputs(self, session_id: str) -> list[PendingInput]:
        """Admitted inputs whose turn never committed, oldest first (by ``created_at``).

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            items = list(self._session(session_id).pending.values())
        return sorted(items, key=lambda p: p.created_at)  # stable: ties keep admission order

    def discard_input(self, session_id: str, turn_id: str) -> None:
        """Drop a pending input. No-op when the turn has no pending input.

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            self._session(session_id).pending.pop(turn_id, None)

    def sessions_with_pending_input(self, *, limit: int, now: float | None = None) -> list[str]:
        """Sessions with pending input, oldest pending input first; with ``now``, sessions
        whose lease is live at ``now`` are left out (see ``Store.sessions_with_pending_input``).

        Raises:
            StoreError: the store is closed.
        """
        with self._lock:
            if self._closed:
                raise StoreError("the MemoryStore is closed")
            found = [
                (min(p.created_at for p in state.pending.values()), sid)
                for sid, state in self._sessions.items()
                if state.pending
                and (now is None or state.lease_row is None or state.lease_row.expires_at <= now)
            ]
        return [sid for _, sid in sorted(found)[: max(limit, 0)]]

    # -- commits -------------------------------------------------------------------------------

    def commit_turn(self, commit: TurnCommit) -> CommitResult:
        """Commit one turn atomically (see ``lash_kernel.store.base`` and ``store._commit``).

        Args:
            commit: the turn's nodes (path order), usage delta and outcome, and optionally the
                frame it opens and the writer's lease.

        Returns:
            The new head: ``head_revision`` = old + 1, ``leaf_id`` = last message node (unchanged
            when the turn has none). For an identical re-commit, the recorded result with
            ``replayed=True``.

        Raises:
            SessionNotFoundError: the session does not exist.
            CommitConflictError: ``expected_head_revision`` is not the session's head revision,
                the turn id was already committed with different content, or a node or the
                frame breaks the commit rules. Nothing is written.
            LeaseLostError: the commit's lease is not the session's lease any more.
            SessionBusyError: no lease given while another writer holds a live one.
            StoreError: the store is closed.
        """
        return self._commit(commit)

    def commit_maintenance(self, commit: MaintenanceCommit) -> CommitResult:
        """Commit a maintenance commit atomically, under the turn-commit rules (its key in place
        of a turn id; see ``Store.commit_maintenance``).

        Returns:
            As ``commit_turn``; ``turn_id`` is the key.

        Raises:
            The errors of ``commit_turn``, for the same causes.
        """
        return self._commit(commit)

    def _commit(self, commit: AnyCommit) -> CommitResult:
        digest = commit_hash(commit)
        with self._lock:
            state = self._session(commit.session_id)
            info = state.info
            head = Head(
                revision=info.head_revision,
                leaf_id=info.leaf_id,
                frame_id=info.frame_id,
                activity_seq=info.activity_seq,
            )
            plan = plan_commit(commit, digest, head, state)
            if not isinstance(plan, CommitPlan):
                return plan  # an identical re-commit: nothing to write
            # validated: from here on nothing can fail
            for node in commit.nodes:
                state.nodes[node.node_id] = node
                state.by_kind.setdefault(node.kind, []).append(node)
            for key, usage, calls in commit.usage.entries:
                prev_usage, prev_calls = state.usage.get(key, (TokenUsage(), 0))
                state.usage[key] = (prev_usage + usage, prev_calls + calls)
            new = plan.head
            state.info = attrs.evolve(
                info,
                head_revision=new.revision,
                leaf_id=new.leaf_id,
                frame_id=new.frame_id,
                updated_at=commit.committed_at,
                activity_seq=new.activity_seq,
            )
            recorded = RecordedTurn(revision=new.revision, content_hash=plan.content_hash)
            state.commits[plan.key] = (recorded, new.leaf_id)
            if plan.frame is not None:
                state.frames.append(plan.frame)
                state.frame_ids.update((plan.frame.frame_id, plan.frame.previous_frame_id))
            if plan.record is not None and isinstance(commit, TurnCommit):
                state.turns[plan.key] = plan.record
                state.pending.pop(plan.key, None)
                state.plugin_state.update(commit.plugin_state)
            return plan.result()

    # -- leases --------------------------------------------------------------------------------

    def claim_lease(self, session_id: str, *, owner: str, token: str, ttl_s: float, now: float) -> Lease:
        """Claim (or, with the live lease's token, renew) the session's single-writer lease until
        ``now + ttl_s`` (see ``Store.claim_lease``).

        Raises:
            SessionBusyError: another token holds a live lease (nothing changes).
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            state = self._session(session_id)
            state.lease_row = plan_claim(session_id, state.lease_row, owner=owner, token=token, ttl_s=ttl_s, now=now)
            return state.lease_row

    def renew_lease(self, lease: Lease, *, ttl_s: float, now: float) -> Lease:
        """Extend a held lease to ``now + ttl_s`` (an expired one nobody reclaimed too).

        Raises:
            LeaseLostError: the session's lease has another token or fencing number, or was
                released.
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            state = self._session(lease.session_id)
            state.lease_row = plan_renew(lease, state.lease_row, ttl_s=ttl_s, now=now)
            return state.lease_row

    def release_lease(self, lease: Lease) -> None:
        """Free a held lease (``expires_at`` becomes 0, the fencing number stays). A no-op when
        the lease was lost meanwhile.

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            state = self._session(lease.session_id)
            stored = state.lease_row
            if stored is not None and releases(lease, stored):
                state.lease_row = attrs.evolve(stored, expires_at=0.0)

    def get_lease(self, session_id: str) -> Lease | None:
        """The session's last lease (possibly expired or released), None if never claimed.

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            return self._session(session_id).lease_row

    def list_turns(self, session_id: str) -> list[TurnRecord]:
        """Committed turns, oldest first (by revision).

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            return list(self._session(session_id).turns.values())

    def get_turn(self, session_id: str, turn_id: str) -> TurnRecord | None:
        """The committed turn ``turn_id``, or None (see ``Store.get_turn``).

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            return self._session(session_id).turns.get(turn_id)

    def load_nodes(self, session_id: str, node_ids: tuple[str, ...]) -> tuple[Node, ...]:
        """The given nodes, in the order asked for.

        Args:
            session_id: the session.
            node_ids: node ids of that session; duplicates are returned as often as asked.

        Raises:
            SessionNotFoundError: no such session.
            StoreError: a node id is not in the session, or the store is closed.
        """
        with self._lock:
            nodes = self._session(session_id).nodes
            missing = [n for n in node_ids if n not in nodes]
            if missing:
                raise StoreError(f"session {session_id!r} has no node(s) {missing!r}")
            return tuple(nodes[n] for n in node_ids)

    def load_nodes_of_kind(self, session_id: str, kind: str) -> tuple[Node, ...]:
        """Every node of ``kind`` in the session, in commit order (whatever their frame).

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            return tuple(self._session(session_id).by_kind.get(kind, ()))

    def load_graph(self, session_id: str) -> tuple[Node, ...]:
        """Every node of the session, in commit order (every frame, every kind).

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            return tuple(self._session(session_id).nodes.values())

    def list_frames(self, session_id: str) -> list[Frame]:
        """The frames opened in the session, oldest first (the first frame has no record).

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            return list(self._session(session_id).frames)

    def usage_ledger(self, session_id: str) -> UsageLedger:
        """The session's cumulative usage, one entry per (source, model).

        Raises:
            SessionNotFoundError: no such session.
            StoreError: the store is closed.
        """
        with self._lock:
            usage = self._session(session_id).usage
            return UsageLedger.of((k, u, c) for k, (u, c) in usage.items())

    def close(self) -> None:
        """Drop all sessions. Idempotent; later calls other than ``close`` raise ``StoreError``."""
        with self._lock:
            self._closed = True
            self._sessions.clear()

    def load_plugin_state(self, session_id: str) -> dict[str, str]:
        """Each plugin's latest committed snapshot (JSON text), by plugin name.

        Raises:
            SessionNotFoundError: unknown session. StoreError: the store is closed.
        """
        with self._lock:
            return dict(self._session(session_id).plugin_state)
