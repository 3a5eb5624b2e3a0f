"""The commit and lease rules, written once for every first-party store.

Rule: decisions only, no storage. A store reads what the rules ask for (the session head, the
recorded commit, which node ids exist, the lease row) through ``SessionReads``, calls
``plan_commit``, and then either returns the replayed result it gets or writes the
``CommitPlan`` in one atomic step. The lease methods work the same way through ``plan_claim``,
``plan_renew`` and ``releases``. So ``MemoryStore`` and ``SqliteStore`` decide every commit and
every lease identically and differ only in storage.

Turn commits (``TurnCommit``) and maintenance commits (``MaintenanceCommit``) follow the same
rules; a maintenance commit's ``key`` plays the turn id's part, and turn ids and maintenance
keys share one namespace per session. The rules (DESIGN §5), in the order ``plan_commit``
applies them:

1. The commit's content is identified by ``commit_hash``: the sha256 of its nodes, usage delta,
   outcome, plugin state and frame (a maintenance commit: of its nodes, usage and frame, under
   its own tag). Ids, ``committed_at``, ``expected_head_revision``, ``last_activity_seq`` and
   the lease are not part of it, so a retry of the same commit hashes the same.
2. A key that is already committed is never written again: the same content returns the
   recorded result with ``replayed=True`` (even when the head has moved on since, and whatever
   the lease); different content raises ``CommitConflictError``.
3. Lease: with ``commit.lease``, the session's lease must have that token and fencing number
   (an expired lease nobody reclaimed still commits), else ``LeaseLostError``; without one, a
   live lease (``expires_at > committed_at``) held by anyone raises ``SessionBusyError``.
4. Compare-and-set: ``expected_head_revision`` must be the session's head revision.
5. Nodes: a ``message`` node holds a ``Message``, any other kind JSON text; every node id is new
   in the session (and within the commit); every parent is a node already in the session or an
   earlier node of the same commit, so the graph stays acyclic; a message node's parent is a
   message node (so plugin nodes never get on the active path); a maintenance commit's message
   nodes are its frame's seeds.
6. Frames: without ``commit.frame`` every node carries the current frame id. With one, the frame
   follows the current frame, its id is new in the session, it is opened by this commit's key,
   its seeds are message nodes of this commit in the new frame, and the nodes carry the current
   frame id, then the new one (never back).
7. The new head: revision + 1; the last message node becomes the leaf (plugin nodes never move
   it; a commit without message nodes keeps it); the frame is the new frame, if any;
   ``activity_seq`` never decreases.

Names here are private to ``lash_kernel.store`` (the module is), but public within it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Protocol

import attrs

from lash_kernel import serde
from lash_kernel.errors import CommitConflictError, LeaseLostError, SessionBusyError
from lash_kernel.messages import Message
from lash_kernel.outcomes import Outcome
from lash_kernel.store.base import (
    MESSAGE_KIND,
    CommitResult,
    Frame,
    Lease,
    MaintenanceCommit,
    Node,
    TurnCommit,
    TurnRecord,
)
from lash_kernel.usage import UsageLedger

# What every turn commit writes, built at import (see ``serde.prebuild``).
serde.prebuild(Node, tuple[Node, ...], Frame)

__all__ = [
    "AnyCommit",
    "CommitPlan",
    "Head",
    "RecordedTurn",
    "SessionReads",
    "commit_hash",
    "commit_key",
    "plan_claim",
    "plan_commit",
    "plan_renew",
    "releases",
]

AnyCommit = TurnCommit | MaintenanceCommit
"""Either kind of commit; both go through ``plan_commit``."""

# Tags that open a hash part no turn part can start with: node lists start with "[", and a
# plugin state part with the plugin's (entry-point) name, which never holds a NUL.
_FRAME_TAG = "\x00frame\n"
_MAINTENANCE_TAG = "\x00maintenance"


@attrs.frozen(kw_only=True)
class Head:
    """The part of a session's head a commit reads and replaces.

    Attributes:
        revision: number of commits so far, turns and maintenance commits (0 for a new session).
        leaf_id: last message node of the active path, None when the session has none.
        frame_id: the current agent frame.
        activity_seq: highest activity ``seq`` committed so far.
    """

    revision: int
    leaf_id: str | None
    frame_id: str
    activity_seq: int


@attrs.frozen(kw_only=True)
class RecordedTurn:
    """What a store remembers of a committed turn (or maintenance commit) to answer a re-commit.

    Attributes:
        revision: the head revision the commit produced.
        content_hash: ``commit_hash`` of the commit (hex sha256).
    """

    revision: int
    content_hash: str


class SessionReads(Protocol):
    """Reads of one session that ``plan_commit`` needs; the store answers from its storage.

    Called inside the store's write lock or transaction, so the answers cannot change before
    the plan is written.
    """

    def recorded_turn(self, turn_id: str) -> RecordedTurn | None:
        """The committed turn or maintenance commit ``turn_id`` (a key) of this session, or None."""
        ...

    def leaf_after(self, turn_id: str, revision: int) -> str | None:
        """The session's leaf right after the committed ``turn_id`` (at ``revision``)."""
        ...

    def existing_node_kinds(self, node_ids: tuple[str, ...]) -> Mapping[str, str]:
        """The kind of each of ``node_ids`` that is already in the session, by node id (a
        mapping with more entries will do: only the asked ids are looked up)."""
        ...

    def frame_known(self, frame_id: str) -> bool:
        """Whether a frame record of the session has ``frame_id`` as its id or its previous frame
        (so the id was a frame of the session once)."""
        ...

    def lease(self) -> Lease | None:
        """The session's lease row (possibly expired or released), None if never claimed."""
        ...


@attrs.frozen(kw_only=True)
class CommitPlan:
    """A validated commit: what the store must write, atomically, and nothing else can fail.

    Attributes:
        session_id: the session.
        content_hash: ``commit_hash`` of the commit; store it with the commit.
        head: the session's head after the commit.
        key: the turn id or maintenance key.
        node_ids: the commit's node ids, in commit order.
        record: the turn record to store (its ``revision`` is ``head.revision``); None for a
            maintenance commit.
        frame: the frame the commit opens, or None.
    """

    session_id: str
    content_hash: str
    head: Head
    key: str
    node_ids: tuple[str, ...]
    record: TurnRecord | None
    frame: Frame | None

    def result(self) -> CommitResult:
        """The ``CommitResult`` the store returns once the plan is written."""
        return CommitResult(
            session_id=self.session_id,
            turn_id=self.key,
            head_revision=self.head.revision,
            leaf_id=self.head.leaf_id,
        )


def commit_key(commit: AnyCommit) -> str:
    """The commit's idempotency key: a turn's ``turn_id`` or a maintenance commit's ``key``."""
    return commit.turn_id if isinstance(commit, TurnCommit) else commit.key


def commit_hash(commit: AnyCommit) -> str:
    """The content hash of a commit: sha256 (64 hex digits) over its parts.

    A turn's parts: its nodes, usage, outcome, each plugin state entry (``plugin\\ntext``) and,
    only when it opens a frame, the frame (after a NUL-led tag). A maintenance commit's parts:
    a tag of its own, each node's kind and payload (not its id, parent or time), its usage and,
    with one, the frame's reason; so it never hashes like a turn, and the same work redone
    hashes the same.
    Each part is ``serde.dumps`` JSON text (a plugin node's payload is its JSON text, as is),
    encoded as UTF-8 and length-prefixed (8 bytes, big-endian). Text that is not valid Unicode
    (a lone surrogate) is encoded with ``surrogatepass``: losslessly, so it never raises and two
    different texts never hash the same; for valid text the bytes are plain UTF-8, so hashes
    recorded by earlier versions (message-only turns without a frame) still match.

    Args:
        commit: the turn or maintenance commit.

    Returns:
        The hex digest. Never raises for any text.
    """
    parts: list[str] = []
    if isinstance(commit, TurnCommit):
        parts += (
            serde.dumps(commit.nodes, tuple[Node, ...]),
            serde.dumps(commit.usage, UsageLedger),
            serde.dumps(commit.outcome, Outcome),
            *(f"{plugin}\n{text}" for plugin, text in commit.plugin_state),
        )
        if commit.frame is not None:
            parts.append(_FRAME_TAG + serde.dumps(commit.frame, Frame))
    else:
        # What the work wrote, not where or when: a redo of the same work (after a crash, or
        # against a head that moved) gets new node ids and timestamps but hashes the same.
        parts += (
            _MAINTENANCE_TAG,
            *(f"{n.kind}\n{n.payload if isinstance(n.payload, str) else serde.dumps(n.payload)}" for n in commit.nodes),
            serde.dumps(commit.usage, UsageLedger),
        )
        if commit.frame is not None:
            parts.append(_FRAME_TAG + commit.frame.reason)
    digest = hashlib.sha256()
    for text in parts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def plan_commit(commit: AnyCommit, content_hash: str, head: Head, reads: SessionReads) -> CommitResult | CommitPlan:
    """Apply the commit rules (see the module docstring) to one turn or maintenance commit.

    Args:
        commit: the commit.
        content_hash: ``commit_hash(commit)``, computed by the caller (outside its lock).
        head: the session's current head, read inside the store's lock or transaction.
        reads: the session's storage, read inside the same lock or transaction.

    Returns:
        A ``CommitResult`` with ``replayed=True`` when the key is already committed with this
        content (write nothing and return it), else the ``CommitPlan`` to write.

    Raises:
        CommitConflictError: the key was already committed with different content (or is the
            other kind's), ``expected_head_revision`` is not ``head.revision``, or a node or the
            frame breaks rule 5 or 6.
        LeaseLostError: the commit's lease is not the session's lease any more.
        SessionBusyError: no lease given, and another writer holds a live one.
    """
    sid, key = commit.session_id, commit_key(commit)
    what = f"session {sid!r}: {'turn' if isinstance(commit, TurnCommit) else 'maintenance commit'} {key!r}"
    recorded = reads.recorded_turn(key)
    if recorded is not None:
        if recorded.content_hash != content_hash:
            raise CommitConflictError(f"{what} was already committed with different content")
        return CommitResult(
            session_id=sid,
            turn_id=key,
            head_revision=recorded.revision,
            leaf_id=reads.leaf_after(key, recorded.revision),
            replayed=True,
        )
    _check_lease(commit, what, reads.lease())
    if head.revision != commit.expected_head_revision:
        raise CommitConflictError(
            f"{what} expected head revision {commit.expected_head_revision}, actual {head.revision}"
        )
    _check_frames(commit, what, head, reads)
    _check_new_nodes(commit, what, reads)
    leaf = head.leaf_id
    for node in commit.nodes:
        if node.kind == MESSAGE_KIND:
            leaf = node.node_id
    new_head = Head(
        revision=head.revision + 1,
        leaf_id=leaf,
        frame_id=commit.frame.frame_id if commit.frame is not None else head.frame_id,
        activity_seq=max(head.activity_seq, commit.last_activity_seq)
        if isinstance(commit, TurnCommit)
        else head.activity_seq,
    )
    node_ids = tuple(n.node_id for n in commit.nodes)
    record = (
        TurnRecord(
            session_id=sid,
            turn_id=key,
            revision=new_head.revision,
            outcome=commit.outcome,
            committed_at=commit.committed_at,
            node_ids=node_ids,
        )
        if isinstance(commit, TurnCommit)
        else None
    )
    return CommitPlan(
        content_hash=content_hash,
        head=new_head,
        key=key,
        node_ids=node_ids,
        record=record,
        frame=commit.frame,
        session_id=sid,
    )


def _check_lease(commit: AnyCommit, what: str, stored: Lease | None) -> None:
    """Rule 3: raise ``LeaseLostError`` or ``SessionBusyError`` unless the writer may commit."""
    lease = commit.lease
    if lease is not None:
        if stored is None or (lease.session_id, lease.token, lease.fencing) != (
            commit.session_id,
            stored.token,
            stored.fencing,
        ):
            now = f"fencing {stored.fencing}, held by {stored.owner!r}" if stored is not None else "no lease"
            raise LeaseLostError(
                f"{what}: the lease (fencing {lease.fencing}) was lost, the session's lease is now {now}; "
                "nothing was committed"
            )
    elif stored is not None and stored.expires_at > commit.committed_at:
        raise SessionBusyError(
            f"{what}: the session is busy: {stored.owner!r} holds its lease (fencing {stored.fencing}) "
            f"until {stored.expires_at}; commit with that lease or retry later"
        )


def _check_frames(commit: AnyCommit, what: str, head: Head, reads: SessionReads) -> None:
    """Rule 6 (and the maintenance part of rule 5): raise ``CommitConflictError`` unless every
    node is in the right frame and the frame record fits."""
    frame = commit.frame
    if frame is None:
        for node in commit.nodes:
            if node.frame_id != head.frame_id:
                raise CommitConflictError(
                    f"{what} adds node {node.node_id!r} in frame {node.frame_id!r}, but the current frame is "
                    f"{head.frame_id!r} and the commit opens no frame"
                )
        seeds: set[str] = set()
    else:
        new = frame.frame_id
        if frame.previous_frame_id != head.frame_id:
            raise CommitConflictError(
                f"{what} opens frame {new!r} after frame {frame.previous_frame_id!r}, "
                f"but the current frame is {head.frame_id!r}"
            )
        if new == head.frame_id or reads.frame_known(new):
            raise CommitConflictError(f"{what} opens frame {new!r}, but that frame id was already used in the session")
        if frame.opened_by != commit_key(commit):
            raise CommitConflictError(f"{what} opens frame {new!r} recorded as opened by {frame.opened_by!r}")
        in_new = False
        for node in commit.nodes:
            if node.frame_id == new:
                in_new = True
            elif node.frame_id != head.frame_id or in_new:
                raise CommitConflictError(
                    f"{what} adds node {node.node_id!r} in frame {node.frame_id!r}: its nodes must be in the "
                    f"current frame {head.frame_id!r}, then in the new frame {new!r}"
                )
        by_id = {n.node_id: n for n in commit.nodes}
        seeds = set(frame.seed_node_ids)
        for seed in frame.seed_node_ids:
            seed_node = by_id.get(seed)
            if seed_node is None or seed_node.frame_id != new or seed_node.kind != MESSAGE_KIND:
                raise CommitConflictError(
                    f"{what} seeds frame {new!r} with {seed!r}, which is not a message node of the commit in that frame"
                )
        if len(seeds) != len(frame.seed_node_ids):
            raise CommitConflictError(f"{what} names a seed of frame {new!r} twice")
    if isinstance(commit, MaintenanceCommit):
        for node in commit.nodes:
            if node.kind == MESSAGE_KIND and node.node_id not in seeds:
                raise CommitConflictError(
                    f"{what} adds message node {node.node_id!r}, but a maintenance commit adds messages only "
                    "as the seeds of the frame it opens"
                )


def _check_new_nodes(commit: AnyCommit, what: str, reads: SessionReads) -> None:
    """Rule 5: raise ``CommitConflictError`` unless every payload fits its kind, every node id
    is new and every parent known (a message's parent being a message)."""
    if not commit.nodes:
        return
    for node in commit.nodes:
        if isinstance(node.payload, Message) != (node.kind == MESSAGE_KIND) or not isinstance(
            node.payload, Message | str
        ):
            raise CommitConflictError(
                f"{what} adds node {node.node_id!r} of kind {node.kind!r} holding a {type(node.payload).__name__}: "
                f"a {MESSAGE_KIND!r} node holds a Message, any other kind its record's JSON text"
            )
    ids = [n.node_id for n in commit.nodes]
    ids.extend(n.parent_id for n in commit.nodes if n.parent_id is not None)
    existing = reads.existing_node_kinds(tuple(dict.fromkeys(ids)))
    seen: dict[str, str] = {}
    for node in commit.nodes:
        if node.node_id in seen or node.node_id in existing:
            raise CommitConflictError(
                f"{what} adds node {node.node_id!r}, but that node id already exists in the session"
            )
        parent = node.parent_id
        if parent is not None:
            parent_kind = seen.get(parent) or existing.get(parent)
            if parent_kind is None:
                raise CommitConflictError(
                    f"{what} adds node {node.node_id!r} whose parent {parent!r} is not in the session"
                )
            if node.kind == MESSAGE_KIND and parent_kind != MESSAGE_KIND:
                raise CommitConflictError(
                    f"{what} adds message node {node.node_id!r} whose parent {parent!r} is a {parent_kind!r} "
                    "node: a message's parent is a message (plugin nodes are never on the active path)"
                )
        seen[node.node_id] = node.kind


def plan_claim(session_id: str, stored: Lease | None, *, owner: str, token: str, ttl_s: float, now: float) -> Lease:
    """The lease ``claim_lease`` stores (see ``Store.claim_lease``).

    Args:
        session_id: the session.
        stored: the session's lease row, None if never claimed.
        owner, token: the claimant.
        ttl_s: seconds the lease lives; ``now``: seconds since the epoch.

    Returns:
        A renewal (same fencing) when ``token`` holds the live lease; a new lease with the next
        fencing number when the lease is free or expired.

    Raises:
        SessionBusyError: another token holds a live lease (``expires_at > now``).
    """
    expires_at = now + ttl_s
    if stored is None:
        return Lease(session_id=session_id, owner=owner, token=token, fencing=1, expires_at=expires_at)
    if stored.expires_at > now:
        if stored.token != token:
            raise SessionBusyError(
                f"session {session_id!r} is busy: {stored.owner!r} holds its lease (fencing {stored.fencing}) "
                f"until {stored.expires_at}; retry later"
            )
        return attrs.evolve(stored, owner=owner, expires_at=expires_at)
    return Lease(session_id=session_id, owner=owner, token=token, fencing=stored.fencing + 1, expires_at=expires_at)


def plan_renew(lease: Lease, stored: Lease | None, *, ttl_s: float, now: float) -> Lease:
    """The lease ``renew_lease`` stores: ``stored`` extended to ``now + ttl_s``.

    An expired lease nobody reclaimed is renewed; a released one (``expires_at == 0``) is not,
    so a late renewal never revives a lease its holder gave up.

    Raises:
        LeaseLostError: ``stored`` has another token or fencing number, or was released.
    """
    if stored is None or (stored.token, stored.fencing) != (lease.token, lease.fencing) or stored.expires_at == 0:
        state = "was released" if stored is not None and stored.token == lease.token else "was reclaimed"
        raise LeaseLostError(
            f"session {lease.session_id!r}: the lease (fencing {lease.fencing}) {state} and cannot be renewed"
        )
    return attrs.evolve(stored, expires_at=now + ttl_s)


def releases(lease: Lease, stored: Lease | None) -> bool:
    """Whether ``release_lease(lease)`` frees ``stored`` (it is the same lease); else a no-op."""
    return stored is not None and (stored.token, stored.fencing) == (lease.token, lease.fencing)
