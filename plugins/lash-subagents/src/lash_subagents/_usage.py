"""A session tree's usage, exactly once per model call, also after a crash.

A child's model calls reach its parent's ledger through the parent's turn: the kernel commits
them with that turn (``TurnResult.children_usage``). When the parent's turn never commits (the
process died while a child ran) the child's committed turns are still in the child session,
which is durable and linked to its parent, but not in the parent's ledger; ``Session.usage_report()``
covers committed turns only. ``tree_ledger`` adds exactly those: a child whose parent turn
committed is already counted; any other child (its parent turn never committed, or it was
opened outside a turn) is added with its own tree.
"""

from __future__ import annotations

from typing import Any

from lash_kernel.plugin import UsageLedger

__all__ = ["tree_ledger", "tree_report"]


def tree_ledger(store: Any, session_id: str) -> UsageLedger:
    """Every token spent by ``session_id`` and all its descendants, per (source, model).

    Args:
        store: the sessions' store (``core.store``, a ``SqliteStore``, ...).
        session_id: the root of the tree.
    Returns:
        The session's own ledger plus the tree ledgers of the children whose usage the ledger
        does not hold (their parent turn never committed, or they were opened outside a turn).
        Uncommitted turns anywhere count nothing: the kernel records no partial turn.
    Raises:
        SessionNotFoundError: no such session.
    """
    ledger = store.usage_ledger(session_id)
    store.get_session(session_id)  # raises SessionNotFoundError for an unknown id
    committed: dict[str, bool] = {}
    for child in store.list_children(session_id):
        turn_id = child.parent_turn_id
        if turn_id is not None:
            if turn_id not in committed:
                committed[turn_id] = store.get_turn(session_id, turn_id) is not None
            if committed[turn_id]:
                continue
        ledger = ledger + tree_ledger(store, child.session_id)
    return ledger


def tree_report(store: Any, session_id: str) -> Any:
    """``tree_ledger(store, session_id).report()``: a ``UsageReport`` by source, model and both."""
    return tree_ledger(store, session_id).report()
