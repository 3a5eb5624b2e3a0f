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
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import attrs

from lash_kernel.messages import Message
from lash_kernel.outcomes import Outcome
from lash_kernel.usage import UsageLedger

__all__ = [
    "CommitResult",
    "Node",
    "PendingInput",
    "SessionInfo",
    "Store",
    "TurnCommit",
    "TurnRecord",
]


@attrs.frozen(kw_only=True)
class Node:
    """One append-only node of a session graph.

    Attributes:
        node_id: unique within the session.
        parent_id: previous node on the path, None for the first node.
        frame_id: the agent frame (context window) the node belongs to.
        turn_id: the turn that created it.
        kind: node kind; ``message`` nodes hold a ``Message`` payload.
        payload: the node's record.
        created_at: seconds since the epoch (float), supplied by the driver's clock.
    """

    KIND: ClassVar[str] = "node"
    node_id: str
    parent_id: str | None
    frame_id: str
    turn_id: str
    kind: str
    payload: Message
    created_at: float


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
        head_revision: number of committed turns so far (0 for a new session).
        leaf_id: last node of the active path, None when empty.
        frame_id: current agent frame.
        mode: execution mode fixed at creation (``standard``).
        created_at, updated_at: seconds since the epoch.
        activity_seq: highest activity ``seq`` committed so far (0 for a new session).
    """

    session_id: str
    head_revision: int
    leaf_id: str | None
    frame_id: str
    mode: str
    created_at: float
    updated_at: float
    activity_seq: int = 0


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

    def open_session(self, session_id: str, *, mode: str, frame_id: str, now: float) -> SessionInfo:
        """Return the session's head, creating an empty session if it does not exist."""
        ...

    def get_session(self, session_id: str) -> SessionInfo:
        """Return the session's head. Raises ``SessionNotFoundError``."""
        ...

    def list_sessions(self) -> list[SessionInfo]:
        """All sessions, most recently updated first."""
        ...

    def load_active_path(self, session_id: str) -> tuple[Node, ...]:
        """Nodes on the active path of the current frame, oldest first (leaf last)."""
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

    def commit_turn(self, commit: TurnCommit) -> CommitResult:
        """Commit one turn atomically (see the module docstring)."""
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

    def usage_ledger(self, session_id: str) -> UsageLedger:
        """The session's cumulative usage ledger."""
        ...

    def load_plugin_state(self, session_id: str) -> dict[str, str]:
        """Each plugin's latest committed snapshot (JSON text), by plugin name."""
        ...

    def close(self) -> None:
        """Release resources. Idempotent."""
        ...
