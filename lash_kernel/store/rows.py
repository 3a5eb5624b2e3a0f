"""Rows to records, for SQL stores: the column orders the first-party stores select in, and
the functions that turn such rows into the store records (re-exported by
``lash_kernel.plugin`` for out-of-tree stores). Added in 0.3.

Rule: a store selects ``SESSION_COLUMNS`` / ``NODE_COLUMNS`` (and the column lists named in
each function) in this order; every stored JSON text is decoded through ``decode``, so a bad
row is a ``RecordDecodeError`` naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from lash_kernel import serde
from lash_kernel.errors import RecordDecodeError
from lash_kernel.messages import Message
from lash_kernel.store.base import MESSAGE_KIND, Frame, Lease, Node, SessionInfo
from lash_kernel.usage import BUCKETS, TokenUsage, UsageKey, UsageLedger

__all__ = [
    "NODE_COLUMNS",
    "SESSION_COLUMNS",
    "decode_stored",
    "frame_from_row",
    "lease_from_row",
    "node_from_row",
    "session_info_from_row",
    "usage_ledger_from_rows",
]

SESSION_COLUMNS = (
    "session_id, head_revision, leaf_id, frame_id, mode, created_at, updated_at, activity_seq, "
    "spec, parent_session_id, parent_turn_id, parent_call_id, depth"
)
"""The session columns, in the order ``session_info_from_row`` reads them."""

NODE_COLUMNS = "node_id, parent_id, frame_id, turn_id, kind, payload, created_at"
"""The node columns, in the order ``node_from_row`` reads them."""


def decode_stored(text: str, type_: Any, what: str) -> Any:
    """``serde.loads(text, type_)`` with the offending row named in the error.

    Args:
        text: stored JSON text.
        type_: the record type to build.
        what: the row, for the error (e.g. ``"session 's1' node 'n3'"``).
    Raises:
        RecordDecodeError: ``text`` is not a valid ``type_``.
    """
    try:
        return serde.loads(text, type_)
    except RecordDecodeError as exc:
        raise RecordDecodeError(f"{what}: {exc}") from exc


def session_info_from_row(row: Sequence[Any]) -> SessionInfo:
    """A ``SessionInfo`` from a row of ``SESSION_COLUMNS``."""
    return SessionInfo(
        session_id=row[0],
        head_revision=row[1],
        leaf_id=row[2],
        frame_id=row[3],
        mode=row[4],
        created_at=row[5],
        updated_at=row[6],
        activity_seq=row[7],
        spec=row[8],
        parent_session_id=row[9],
        parent_turn_id=row[10],
        parent_call_id=row[11],
        depth=row[12],
    )


def node_from_row(session_id: str, row: Sequence[Any]) -> Node:
    """A ``Node`` from a row of ``NODE_COLUMNS``: a message payload decoded, a plugin record's
    JSON text kept as text. Raises ``RecordDecodeError`` for a bad message."""
    kind, payload = row[4], row[5]
    if kind == MESSAGE_KIND:
        payload = decode_stored(payload, Message, f"session {session_id!r} node {row[0]!r}")
    return Node(
        node_id=row[0], parent_id=row[1], frame_id=row[2], turn_id=row[3], kind=kind, payload=payload,
        created_at=row[6],
    )


def lease_from_row(session_id: str, row: Sequence[Any] | None) -> Lease | None:
    """A ``Lease`` from ``(owner, token, fencing, expires_at)``; None for no row or an all-NULL
    one (an outer join that found no lease)."""
    if row is None or row[0] is None:
        return None
    return Lease(session_id=session_id, owner=row[0], token=row[1], fencing=row[2], expires_at=row[3])


def frame_from_row(session_id: str, row: Sequence[Any]) -> Frame:
    """A ``Frame`` from ``(frame_id, previous_frame_id, reason, opened_by, seed_node_ids JSON,
    created_at)``. Raises ``RecordDecodeError`` for bad seed ids."""
    frame_id, previous, reason, opened_by, seeds, created_at = row
    return Frame(
        frame_id=frame_id,
        previous_frame_id=previous,
        reason=reason,
        opened_by=opened_by,
        seed_node_ids=decode_stored(seeds, tuple[str, ...], f"session {session_id!r} frame {frame_id!r}"),
        created_at=created_at,
    )


def usage_ledger_from_rows(rows: Iterable[Sequence[Any]]) -> UsageLedger:
    """A ``UsageLedger`` from rows of ``(source, model, served_model, <BUCKETS>, calls)``."""
    return UsageLedger.of(
        (
            UsageKey(source=r[0], model=r[1], served_model=r[2]),
            TokenUsage(**dict(zip(BUCKETS, r[3 : 3 + len(BUCKETS)], strict=True))),
            r[-1],
        )
        for r in rows
    )
