"""The store contract and the records it persists.

Rule: a store persists and returns these records and nothing else; it never calls hooks,
providers or the clock (timestamps arrive as data). Two first-party stores implement it:
``MemoryStore`` and ``SqliteStore``. ``lash_kernel.testing.conformance`` checks any store.

Commit protocol (DESIGN §5): ``commit_turn`` writes the turn's graph nodes, usage-ledger deltas,
the turn record and the new head revision in ONE transaction, guarded by compare-and-set on
``expected_head_revision``; it also removes the turn's pending input. Re-committing the same
``(session_id, turn_id)`` with the same content returns the recorded result; with different
content it raises ``CommitConflictError``. The first-party stores take these rules from
``lash_kernel.store._commit`` (written once); ``lash_kernel.testing.conformance`` checks them
on any store.

Graph rules every commit obeys (0.2): a ``message`` node's payload is a ``Message`` and its
parent (if any) a message node; any other kind holds JSON text and may hang off any node. The
last message node of a commit becomes the leaf. Without a ``Frame`` every node carries the
current frame id; with one, nodes carry the current frame id and then the new one, the frame's
``opened_by`` is the commit's turn id or key and its seeds are message nodes of the commit in
the new frame. A maintenance commit adds message nodes only as its frame's seeds. A commit
breaking a rule raises ``CommitConflictError`` and writes nothing.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import attrs

from lash_kernel.messages import Message
from lash_kernel.outcomes import Outcome
from lash_kernel.usage import UsageLedger

__all__ = [
    "MESSAGE_KIND",
    "CommitResult",
    "Frame",
    "Lease",
    "MaintenanceCommit",
    "MessageHit",
    "Node",
    "PendingInput",
    "SessionInfo",
    "Store",
    "TurnCommit",
    "TurnRecord",
]

MESSAGE_KIND = "message"
"""The node kind of conversation messages; every other kind is a plugin record's ``KIND``."""


@attrs.frozen(kw_only=True)
class Node:
    """One append-only node of a session graph.

    Attributes:
        node_id: unique within the session.
        parent_id: previous node on the path, None for the first node.
        frame_id: the agent frame (context window) the node belongs to.
        turn_id: the turn (or maintenance commit key) that created it.
        kind: ``message`` (``MESSAGE_KIND``): ``payload`` is a ``Message``. Any other kind is a
            plugin record's ``KIND``: ``payload`` is that record's JSON text as
            ``serde.encode_plugin_record`` wrote it (stores keep it as opaque text; the runtime
            decodes it with the core's record types). Plugin nodes are never on the active
            path: only message nodes become the leaf. Changed in 0.2 (plugin kinds).
        payload: the node's record.
        created_at: seconds since the epoch (float), supplied by the driver's clock.
    """

    KIND: ClassVar[str] = "node"
    node_id: str
    parent_id: str | None
    frame_id: str
    turn_id: str
    kind: str
    payload: Message | str
    created_at: float

    @property
    def message(self) -> Message:
        """The payload of a ``message`` node. Raises ``TypeError`` for a plugin node."""
        if isinstance(self.payload, Message):
            return self.payload
        raise TypeError(f"node {self.node_id!r} holds a {self.kind!r} record, not a message")


@attrs.frozen(kw_only=True)
class Frame:
    """An agent frame: one context window's worth of a session (DESIGN §4). Added in 0.2.

    A session starts in its first frame (no record). Opening a frame is committed atomically
    with a turn or a maintenance commit; from then on the active path (what a turn loads and
    sends) starts at the new frame's first node. Nothing of the earlier frames is rewritten.

    Attributes:
        frame_id: unique within the session.
        previous_frame_id: the frame that was current when this one opened.
        reason: an open label: ``compaction``, ``continue_as``, a plugin's own.
        opened_by: the turn id or maintenance key whose commit opened it.
        seed_node_ids: the message nodes the frame was seeded with (a summary, kept messages),
            in path order; the frame's first nodes.
        created_at: seconds since the epoch.
    """

    KIND: ClassVar[str] = "frame"
    frame_id: str
    previous_frame_id: str
    reason: str
    opened_by: str
    seed_node_ids: tuple[str, ...] = ()
    created_at: float


@attrs.frozen(kw_only=True)
class Lease:
    """A session's single-writer lease (DESIGN §5). Added in 0.2.

    Attributes:
        session_id: the session.
        owner: who holds it, for people (e.g. ``host:pid``); not checked.
        token: the holder's secret (a fresh random hex string per claim).
        fencing: increases by one with every claim of the session's lease; a commit carrying
            a lower fencing number than the store's is refused (``LeaseLostError``).
        expires_at: seconds since the epoch; after it any writer may claim the lease.
    """

    session_id: str
    owner: str
    token: str
    fencing: int
    expires_at: float


@attrs.frozen(kw_only=True)
class PendingInput:
    """User input admitted durably before the model was called, not yet committed in a turn."""

    KIND: ClassVar[str] = "pending_input"
    session_id: str
    turn_id: str
    message: Message
    created_at: float


@attrs.frozen(kw_only=True)
class TurnCommit:
    """Everything one turn writes, committed atomically.

    Attributes:
        session_id: the session.
        turn_id: unique turn id within the session.
        expected_head_revision: the head revision the turn started from (compare-and-set).
        nodes: new graph nodes, in path order; the last one becomes the leaf.
        usage: ledger delta (per source, model) spent by this turn.
        outcome: how the turn ended.
        committed_at: seconds since the epoch.
        last_activity_seq: the highest activity ``seq`` the turn emitted (activity numbering
            continues from here in the next turn).
        plugin_state: ``(plugin, json_text)`` snapshots written with the turn; each replaces
            that plugin's previous snapshot for the session.
        frame: a frame the turn opens, or None. Its ``previous_frame_id`` must be the current
            frame; nodes before the switch carry the current frame id, the seed and later
            nodes the new one. Added in 0.2.
        lease: the writer's lease, checked inside the commit transaction (token and fencing
            must match the store's: else ``LeaseLostError``). None: no lease; refused with
            ``SessionBusyError`` while another writer holds a live lease (at ``committed_at``).
            Not part of the content hash. Added in 0.2.
    """

    KIND: ClassVar[str] = "turn_commit"
    session_id: str
    turn_id: str
    expected_head_revision: int
    nodes: tuple[Node, ...]
    usage: UsageLedger
    outcome: Outcome
    committed_at: float
    last_activity_seq: int = 0
    plugin_state: tuple[tuple[str, str], ...] = ()
    frame: Frame | None = None
    lease: Lease | None = None


@attrs.frozen(kw_only=True)
class MaintenanceCommit:
    """A write between turns (background work, a compaction): plugin nodes, a usage delta, a
    frame switch, all in one transaction. Added in 0.2.

    Same rules as a turn commit (compare-and-set, one revision, lease check, replay): its
    ``key`` plays the turn id's part, so re-committing a key with the same content is a no-op
    that returns the recorded result, and with different content a ``CommitConflictError``.
    It has no outcome, no pending input and no activities, and ``list_turns`` does not show it.

    Attributes:
        session_id: the session.
        key: idempotency key, unique per session among turn ids and maintenance keys.
        expected_head_revision: compare-and-set on the head revision.
        nodes: plugin nodes (any parent) and, with ``frame``, the frame's seed message nodes.
        usage: ledger delta (model calls made by the work, per source and model).
        committed_at: seconds since the epoch.
        frame: a frame to open, or None.
        lease: as for ``TurnCommit``.
    """

    KIND: ClassVar[str] = "maintenance_commit"
    session_id: str
    key: str
    expected_head_revision: int
    nodes: tuple[Node, ...] = ()
    usage: UsageLedger = attrs.field(factory=UsageLedger)
    committed_at: float
    frame: Frame | None = None
    lease: Lease | None = None


@attrs.frozen(kw_only=True)
class CommitResult:
    """What a commit recorded.

    Attributes:
        head_revision: the session's revision after the commit (one per committed turn).
        leaf_id: the active leaf after the commit.
        replayed: True when this was an identical re-commit of an already committed turn.
    """

    session_id: str
    turn_id: str
    head_revision: int
    leaf_id: str | None
    replayed: bool = False


@attrs.frozen(kw_only=True)
class SessionInfo:
    """A session's head: cheap to load, independent of history length.

    Attributes:
        head_revision: number of commits so far, turns and maintenance commits (0 for a new
            session).
        leaf_id: last message node of the active path, None when empty.
        frame_id: current agent frame.
        mode: execution mode fixed at creation (``standard``).
        created_at, updated_at: seconds since the epoch.
        activity_seq: highest activity ``seq`` committed so far (0 for a new session).
        spec: the session's settings as JSON text (the runtime's ``SessionSpec``), fixed at
            creation; "" for the defaults. Added in 0.2.
        parent_session_id, parent_turn_id, parent_call_id: where a child session was opened
            (the parent session, its turn and tool call), None for a root session. Added in 0.2.
        depth: 0 for a root session, parent's depth + 1 for a child. Added in 0.2.
    """

    session_id: str
    head_revision: int
    leaf_id: str | None
    frame_id: str
    mode: str
    created_at: float
    updated_at: float
    activity_seq: int = 0
    spec: str = ""
    parent_session_id: str | None = None
    parent_turn_id: str | None = None
    parent_call_id: str | None = None
    depth: int = 0


@attrs.frozen(kw_only=True)
class MessageHit:
    """One committed message found by a store's optional ``search_messages(text, *, limit)``.

    Not part of the ``Store`` protocol: a store that offers full-text search has the method
    (``SqliteStore`` does, from schema 4); callers test for it with ``hasattr`` and scan
    ``list_sessions`` / ``list_turns`` / ``load_nodes`` otherwise. Added in 0.3.

    Attributes:
        session_id: the session holding it.
        turn_id: the turn (or maintenance commit key) that committed it.
        node_id: its node.
        message: the message.
    """

    session_id: str
    turn_id: str
    node_id: str
    message: Message


@attrs.frozen(kw_only=True)
class TurnRecord:
    """A committed turn as listed by ``Store.list_turns``."""

    session_id: str
    turn_id: str
    revision: int
    outcome: Outcome
    committed_at: float
    node_ids: tuple[str, ...]


@runtime_checkable
class Store(Protocol):
    """Durable session storage. All methods are synchronous and safe to call from the event loop.

    Every method raises ``StoreError`` subclasses only: ``SessionNotFoundError`` for an unknown
    session id, ``CommitConflictError`` for a lost compare-and-set or a conflicting re-commit.
    """

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

        ``mode``, ``frame_id``, ``spec`` and the parent link are used only when creating (an
        existing session keeps its own). With ``parent`` the new session is its child:
        ``parent_session_id = parent.session_id``, ``depth = parent.depth + 1``. Changed in 0.2
        (``spec`` and the parent link).

        Raises:
            SessionNotFoundError: ``parent`` is not a session of this store (nothing is created).
        """
        ...

    def get_session(self, session_id: str) -> SessionInfo:
        """Return the session's head. Raises ``SessionNotFoundError``."""
        ...

    def list_sessions(self) -> list[SessionInfo]:
        """All sessions, most recently updated first."""
        ...

    def delete_session(self, session_id: str) -> list[str]:
        """Delete the session, its child sessions (recursively) and everything stored for them
        (nodes, turns, pending inputs, usage, frames, plugin state, lease), in one transaction.
        Do not call it while a turn of one of them runs. Added in 0.3.

        Returns:
            The deleted session ids, ``session_id`` first.
        Raises:
            SessionNotFoundError: no such session (nothing is deleted).
        """
        ...

    def list_children(self, session_id: str) -> list[SessionInfo]:
        """The sessions whose parent is ``session_id``, oldest first (by ``created_at``, then
        id). Raises ``SessionNotFoundError``. Added in 0.2."""
        ...

    def load_active_path(self, session_id: str) -> tuple[Node, ...]:
        """Nodes on the active path of the current frame, oldest first (leaf last).

        A store may also offer ``load_frame_messages(session_id) -> tuple[Message, ...]``, the
        same path's messages without ``Node`` records (an optional capability, not part of
        this protocol): the runtime loads sessions through it when present, which saves a few
        µs a message. ``check_store`` checks that both agree.
        """
        ...

    def record_input(self, pending: PendingInput) -> None:
        """Durably admit a turn's user input before the model is called. Idempotent per turn."""
        ...

    def pending_inputs(self, session_id: str) -> list[PendingInput]:
        """Admitted inputs whose turn never committed, oldest first."""
        ...

    def discard_input(self, session_id: str, turn_id: str) -> None:
        """Drop a pending input (the host chose not to retry it). No-op if absent."""
        ...

    def sessions_with_pending_input(self, *, limit: int, now: float | None = None) -> list[str]:
        """Ids of sessions that have pending input, the session with the oldest pending input
        first (ties: by session id); what a worker polls for work. Added in 0.3.

        Args:
            limit: at most this many ids (>= 1).
            now: seconds since the epoch; when given, sessions whose lease is live at ``now``
                (``expires_at > now``: another writer is running a turn) are left out.
        Raises:
            StoreError: the store failed.
        """
        ...

    def commit_turn(self, commit: TurnCommit) -> CommitResult:
        """Commit one turn atomically (see the module docstring).

        Raises ``CommitConflictError`` (see the module docstring), ``LeaseLostError`` (the
        commit's lease was reclaimed) or ``SessionBusyError`` (no lease given while another
        writer holds a live one); each writes nothing.
        """
        ...

    def commit_maintenance(self, commit: MaintenanceCommit) -> CommitResult:
        """Commit a ``MaintenanceCommit`` atomically, under the turn-commit rules (its key in
        place of a turn id). ``CommitResult.turn_id`` is the key. Added in 0.2."""
        ...

    def claim_lease(self, session_id: str, *, owner: str, token: str, ttl_s: float, now: float) -> Lease:
        """Claim the session's single-writer lease until ``now + ttl_s`` (seconds since the epoch).

        A lease that is free (released or never claimed) or expired (``expires_at <= now``) is
        claimed with the next fencing number. Claiming again with the token that holds the live
        lease renews it (same fencing). Added in 0.2.

        Raises:
            SessionBusyError: another token holds a live lease (nothing changes).
            SessionNotFoundError: no such session.
        """
        ...

    def renew_lease(self, lease: Lease, *, ttl_s: float, now: float) -> Lease:
        """Extend a held lease to ``now + ttl_s``. An expired lease that nobody reclaimed is
        renewed too; a released one is not (a late renewal never revives it). Added in 0.2.

        Raises:
            LeaseLostError: the session's lease now has another token or fencing number, or was
                released.
            SessionNotFoundError: no such session.
        """
        ...

    def release_lease(self, lease: Lease) -> None:
        """Free a held lease at once (keeping the fencing counter). A no-op when the lease was
        lost meanwhile. Raises ``SessionNotFoundError`` for an unknown session. Added in 0.2."""
        ...

    def get_lease(self, session_id: str) -> Lease | None:
        """The session's last lease (possibly expired or released: a released lease has
        ``expires_at == 0``), or None when none was ever claimed. Added in 0.2."""
        ...

    def list_turns(self, session_id: str) -> list[TurnRecord]:
        """Committed turns, oldest first."""
        ...

    def get_turn(self, session_id: str, turn_id: str) -> TurnRecord | None:
        """The committed turn ``turn_id``, or None if the session has none by that id.

        Cheap (an indexed lookup, independent of history length): the driver asks it before
        every turn, so a committed turn id is refused before any model call. Raises
        ``SessionNotFoundError`` for an unknown session. Added in 0.2.
        """
        ...

    def load_nodes(self, session_id: str, node_ids: tuple[str, ...]) -> tuple[Node, ...]:
        """The given nodes, in the order asked for."""
        ...

    def load_nodes_of_kind(self, session_id: str, kind: str) -> tuple[Node, ...]:
        """Every node of ``kind`` in the session, in commit order (whatever their frame).
        Added in 0.2."""
        ...

    def load_graph(self, session_id: str) -> tuple[Node, ...]:
        """Every node of the session, in commit order: the whole history, every frame. Added in 0.2."""
        ...

    def list_frames(self, session_id: str) -> list[Frame]:
        """The frames opened in the session, oldest first (the first frame has no record).
        Added in 0.2."""
        ...

    def usage_ledger(self, session_id: str) -> UsageLedger:
        """The session's cumulative usage ledger."""
        ...

    def load_plugin_state(self, session_id: str) -> dict[str, str]:
        """Each plugin's latest committed snapshot (JSON text), by plugin name."""
        ...

    def close(self) -> None:
        """Release resources. Idempotent."""
        ...
