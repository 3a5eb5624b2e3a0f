"""Performing ``FinishTurn``'s write: one atomic store commit of the whole turn.

Rule: the turn's messages, usage, outcome and plugin snapshots go to the store in one
``commit_turn``; only after it succeeds do the session head and the host's ``TurnControl``
change. Text is made valid Unicode here as a last guard (a lone surrogate would break the
commit hash and the store).
"""

from __future__ import annotations

import logging
import time

import attrs

from lash_kernel.errors import LashError
from lash_kernel.messages import Message
from lash_kernel.outcomes import outcome_json
from lash_kernel.runtime._model_call import usage_json
from lash_kernel.runtime._state import TurnContext
from lash_kernel.runtime.effects import FinishTurn
from lash_kernel.serde import encode_plugin_record
from lash_kernel.store.base import MESSAGE_KIND, CommitResult, Frame, Node, TurnCommit
from lash_kernel.text import valid_message, valid_text

__all__ = ["commit_turn", "valid_finish"]

_log = logging.getLogger("lash")


def valid_finish(effect: FinishTurn) -> FinishTurn:
    """``effect`` with every string in its messages and outcome made valid Unicode.

    Cost: one ``encode`` per non-ASCII text field of this turn's messages (never the history).
    """
    messages = valid_message(effect.messages)  # walks the tuple and every record in it
    outcome = valid_message(effect.outcome)
    if messages is effect.messages and outcome is effect.outcome:
        return effect
    return attrs.evolve(effect, messages=messages, outcome=outcome)


def commit_turn(ctx: TurnContext, effect: FinishTurn, *, started_perf: float) -> CommitResult:
    """Run ``lash_after_turn``, commit the turn, advance the session and fill ``ctx.control``.

    Args:
        ctx: the turn.
        effect: the machine's ``FinishTurn``, already made valid (``valid_finish``).
        started_perf: ``time.perf_counter()`` when the turn started (for the trace).
    Returns:
        The store's commit result.
    Raises:
        CommitConflictError: another writer committed to the session first; nothing of this
            turn was written and its input stays pending.
        LeaseLostError: the turn's lease was reclaimed; nothing was written.
        StoreError: the store failed.
    """
    session = ctx.session
    errors = ctx.hooks.after_turn(
        session_id=ctx.session_id, turn_id=ctx.turn_id, outcome=effect.outcome, messages=effect.messages,
        usage=effect.usage,
    )
    ctx.log_errors(errors, "after turn")
    now = ctx.rt.clock()
    commit = _turn_commit(ctx, effect, now)
    result = ctx.rt.store.commit_turn(commit)
    session.apply(result, effect.messages, now, ctx.frame_switch)
    control = ctx.control
    control.outcome, control.commit = effect.outcome, result
    control.messages, control.usage = effect.messages, effect.usage
    control.children_usage = ctx.others_ledger()
    if ctx.tracing:
        for key, usage, _calls in commit.usage.entries:
            ctx.trace("usage", ctx.turn_id, None, source=key.source, model=key.model, usage=usage_json(usage))
        ctx.trace(
            "turn.finished", ctx.turn_id, None,
            outcome=outcome_json(effect.outcome), duration_s=time.perf_counter() - started_perf,
            head_revision=result.head_revision, usage=usage_json(effect.usage.total()),
        )
    return result


def _turn_commit(ctx: TurnContext, effect: FinishTurn, now: float) -> TurnCommit:
    """The store record of the turn: its messages as nodes chained from the session's leaf (and
    the frame it opened, its plugin nodes, everyone's usage)."""
    nodes, frame = _nodes(ctx, effect.messages, now)
    return TurnCommit(
        session_id=ctx.session_id,
        turn_id=ctx.turn_id,
        expected_head_revision=ctx.session.info.head_revision,
        nodes=nodes,
        usage=effect.usage + ctx.others_ledger() if ctx.others else effect.usage,
        outcome=effect.outcome,
        committed_at=now,
        last_activity_seq=ctx.session.activity_seq,
        plugin_state=_plugin_state(ctx),
        frame=frame,
        lease=ctx.lease,
    )


def _nodes(ctx: TurnContext, messages: tuple[Message, ...], now: float) -> tuple[tuple[Node, ...], Frame | None]:
    """The turn's nodes in path order, and the frame it opened (or None).

    Without a frame switch: every message in the current frame. With one: the messages before
    the switch in the current frame, then the seed and the later messages in the new frame.
    Plugin nodes come last, hanging off the last message node (never on the active path).
    """
    info, new_id, tid = ctx.session.info, ctx.rt.new_id, ctx.turn_id
    nodes: list[Node] = []
    parent = info.leaf_id

    def add(payload: Message | str, frame_id: str, kind: str = MESSAGE_KIND) -> Node:
        nonlocal parent
        node = Node(
            node_id=new_id(), parent_id=parent, frame_id=frame_id, turn_id=tid, kind=kind, payload=payload,
            created_at=now,
        )
        nodes.append(node)
        if kind == MESSAGE_KIND:
            parent = node.node_id
        return node

    switch, frame = ctx.frame_switch, None
    cut = switch.at if switch is not None else len(messages)
    for message in messages[:cut]:
        add(message, info.frame_id)
    frame_id = info.frame_id
    if switch is not None:
        frame_id = switch.frame_id
        seed = tuple(add(message, frame_id).node_id for message in switch.seed)
        for message in messages[cut:]:
            add(message, frame_id)
        frame = Frame(
            frame_id=frame_id, previous_frame_id=info.frame_id, reason=switch.reason, opened_by=tid,
            seed_node_ids=seed, created_at=now,
        )
    for kind, text in ctx.plugin_nodes:
        add(text, frame_id, kind)
    return tuple(nodes), frame


def _plugin_state(ctx: TurnContext) -> tuple[tuple[str, str], ...]:
    """Collect ``lash_snapshot_state`` and encode each record (bad ones are logged and dropped)."""
    if not ctx.hooks.implemented("lash_snapshot_state"):
        return ()
    snapshots, errors = ctx.hooks.snapshot_state(session_id=ctx.session_id, turn_id=ctx.turn_id)
    ctx.log_errors(errors, "state snapshot")
    out = []
    for plugin, record in snapshots:
        try:
            out.append((plugin, valid_text(encode_plugin_record(record, ctx.rt.record_types))))
        except LashError as exc:
            _log.error("plugin %r: %s (its state was not committed)", plugin, exc)
    return tuple(out)
