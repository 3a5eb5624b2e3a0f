"""The per-turn commit rules, written once for every first-party store.

Rule: decisions only, no storage. A store reads what the rules ask for (the session head, the
recorded turn, which node ids exist) through ``SessionReads``, calls ``plan_commit``, and then
either returns the replayed result it gets or writes the ``CommitPlan`` in one atomic step. So
``MemoryStore`` and ``SqliteStore`` decide every commit identically and differ only in storage.

The rules (DESIGN §5), in the order ``plan_commit`` applies them:

1. The commit's content is identified by ``commit_hash``: the sha256 of its nodes, usage delta,
   outcome and plugin state. Ids, ``committed_at``, ``expected_head_revision`` and
   ``last_activity_seq`` are not part of it, so a retry of the same turn hashes the same.
2. A turn id that is already committed is never written again: the same content returns the
   recorded result with ``replayed=True`` (even when the head has moved on since); different
   content raises ``CommitConflictError``.
3. Compare-and-set: ``expected_head_revision`` must be the session's head revision.
4. Every node id is new in the session (and within the commit), and every parent is a node
   already in the session or an earlier node of the same commit, so the graph stays acyclic.
5. The new head: revision + 1; the last node becomes the leaf and sets the frame (a turn without
   nodes keeps both); ``activity_seq`` never decreases.

Names here are private to ``lash_kernel.store`` (the module is), but public within it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Protocol

import attrs

from lash_kernel import serde
from lash_kernel.errors import CommitConflictError
from lash_kernel.outcomes import Outcome
from lash_kernel.store.base import CommitResult, Node, TurnCommit, TurnRecord
from lash_kernel.usage import UsageLedger

__all__ = ["CommitPlan", "Head", "RecordedTurn", "SessionReads", "commit_hash", "plan_commit"]


@attrs.frozen(kw_only=True)
class Head:
    """The part of a session's head a commit reads and replaces.

    Attributes:
        revision: number of committed turns (0 for a new session).
        leaf_id: last node of the active path, None when the session has no nodes.
        frame_id: the current agent frame.
        activity_seq: highest activity ``seq`` committed so far.
    """

    revision: int
    leaf_id: str | None
    frame_id: str
    activity_seq: int


@attrs.frozen(kw_only=True)
class RecordedTurn:
    """What a store remembers of a committed turn to answer a re-commit.

    Attributes:
        revision: the head revision the turn's commit produced.
        content_hash: ``commit_hash`` of the turn's commit (hex sha256).
    """

    revision: int
    content_hash: str


class SessionReads(Protocol):
    """Reads of one session that ``plan_commit`` needs; the store answers from its storage.

    Called inside the store's write lock or transaction, so the answers cannot change before
    the plan is written.
    """

    def recorded_turn(self, turn_id: str) -> RecordedTurn | None:
        """The committed turn ``turn_id`` of this session, or None if it was never committed."""
        ...

    def leaf_after(self, turn_id: str, revision: int) -> str | None:
        """The session's leaf right after the committed turn ``turn_id`` (at ``revision``)."""
        ...

    def existing_node_ids(self, node_ids: tuple[str, ...]) -> Collection[str]:
        """Those of ``node_ids`` that are already in the session (any superset of them will do:
        only membership of ``node_ids`` is tested)."""
        ...


@attrs.frozen(kw_only=True)
class CommitPlan:
    """A validated commit: what the store must write, atomically, and nothing else can fail.

    Attributes:
        content_hash: ``commit_hash`` of the commit; store it with the turn.
        head: the session's head after the commit.
        record: the turn record to store (its ``revision`` is ``head.revision``).
    """

    content_hash: str
    head: Head
    record: TurnRecord

    def result(self) -> CommitResult:
        """The ``CommitResult`` the store returns once the plan is written."""
        return CommitResult(
            session_id=self.record.session_id,
            turn_id=self.record.turn_id,
            head_revision=self.head.revision,
            leaf_id=self.head.leaf_id,
        )


def commit_hash(commit: TurnCommit) -> str:
    """The content hash of a commit: sha256 (64 hex digits) of its nodes, usage, outcome and
    plugin state.

    Each part is its ``serde.dumps`` JSON text (plugin state as ``plugin\\ntext``), encoded as
    UTF-8 and length-prefixed (8 bytes, big-endian). Text that is not valid Unicode (a lone
    surrogate) is encoded with ``surrogatepass``: losslessly, so it never raises and two
    different texts never hash the same; for valid text the bytes are plain UTF-8, so hashes
    recorded by earlier versions still match.

    Args:
        commit: the turn commit.

    Returns:
        The hex digest. Never raises for any text.
    """
    digest = hashlib.sha256()
    for text in (
        serde.dumps(commit.nodes, tuple[Node, ...]),
        serde.dumps(commit.usage, UsageLedger),
        serde.dumps(commit.outcome, Outcome),
        *(f"{plugin}\n{text}" for plugin, text in commit.plugin_state),
    ):
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def plan_commit(commit: TurnCommit, content_hash: str, head: Head, reads: SessionReads) -> CommitResult | CommitPlan:
    """Apply the commit rules (see the module docstring) to one commit.

    Args:
        commit: the turn to commit.
        content_hash: ``commit_hash(commit)``, computed by the caller (outside its lock).
        head: the session's current head, read inside the store's lock or transaction.
        reads: the session's storage, read inside the same lock or transaction.

    Returns:
        A ``CommitResult`` with ``replayed=True`` when the turn is already committed with this
        content (write nothing and return it), else the ``CommitPlan`` to write.

    Raises:
        CommitConflictError: the turn id was already committed with different content,
            ``expected_head_revision`` is not ``head.revision``, a node id already exists in
            the session or twice in the commit, or a node's parent is unknown.
    """
    sid, tid = commit.session_id, commit.turn_id
    recorded = reads.recorded_turn(tid)
    if recorded is not None:
        if recorded.content_hash != content_hash:
            raise CommitConflictError(f"session {sid!r}: turn {tid!r} was already committed with different content")
        return CommitResult(
            session_id=sid,
            turn_id=tid,
            head_revision=recorded.revision,
            leaf_id=reads.leaf_after(tid, recorded.revision),
            replayed=True,
        )
    if head.revision != commit.expected_head_revision:
        raise CommitConflictError(
            f"session {sid!r}: turn {tid!r} expected head revision {commit.expected_head_revision}, "
            f"actual {head.revision}"
        )
    _check_new_nodes(commit, reads)
    last = commit.nodes[-1] if commit.nodes else None
    new_head = Head(
        revision=head.revision + 1,
        leaf_id=last.node_id if last is not None else head.leaf_id,
        frame_id=last.frame_id if last is not None else head.frame_id,
        activity_seq=max(head.activity_seq, commit.last_activity_seq),
    )
    record = TurnRecord(
        session_id=sid,
        turn_id=tid,
        revision=new_head.revision,
        outcome=commit.outcome,
        committed_at=commit.committed_at,
        node_ids=tuple(n.node_id for n in commit.nodes),
    )
    return CommitPlan(content_hash=content_hash, head=new_head, record=record)


def _check_new_nodes(commit: TurnCommit, reads: SessionReads) -> None:
    """Rule 4: raise ``CommitConflictError`` unless every node id is new and every parent known."""
    if not commit.nodes:
        return
    ids = [n.node_id for n in commit.nodes]
    ids.extend(n.parent_id for n in commit.nodes if n.parent_id is not None)
    existing = reads.existing_node_ids(tuple(dict.fromkeys(ids)))
    seen: set[str] = set()
    for node in commit.nodes:
        if node.node_id in seen or node.node_id in existing:
            raise CommitConflictError(
                f"session {commit.session_id!r}: turn {commit.turn_id!r} adds node {node.node_id!r}, "
                "but that node id already exists in the session"
            )
        if node.parent_id is not None and node.parent_id not in seen and node.parent_id not in existing:
            raise CommitConflictError(
                f"session {commit.session_id!r}: turn {commit.turn_id!r} adds node {node.node_id!r} "
                f"whose parent {node.parent_id!r} is not in the session"
            )
        seen.add(node.node_id)
