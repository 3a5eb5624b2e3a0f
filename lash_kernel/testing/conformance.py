"""A conformance suite for ``Store`` implementations (public, like trio's ``check_two_way_stream``).

Rule: every check talks to the store only through the ``Store`` protocol, uses fresh random
session ids (so a store that already holds data, e.g. a shared PostgreSQL database, still
passes), and raises ``AssertionError`` with a readable message on the first deviation.

Usage, in a third-party store's test suite::

    from lash_kernel.testing.conformance import check_store

    def test_my_store_conforms(tmp_path):
        check_store(lambda: MyStore(tmp_path / f"{uuid.uuid4().hex}.db"))

Each check is also exported on its own (``check_commit_cas_conflict(store)``, ...), so a failing
behaviour can be run and debugged alone. ``check_store`` runs all of ``CHECKS``, each on a fresh
store from ``make_store``, and closes every store it opened (twice, to check idempotence).
"""

from __future__ import annotations

import functools
import itertools
import json
import uuid
from collections.abc import Callable
from typing import Any

import attrs

from lash_kernel.errors import CommitConflictError, SessionNotFoundError, StoreError
from lash_kernel.messages import Message, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Finished, Outcome, Stopped
from lash_kernel.store.base import (
    CommitResult,
    Node,
    PendingInput,
    SessionInfo,
    Store,
    TurnCommit,
)
from lash_kernel.usage import TokenUsage, UsageKey, UsageLedger

__all__ = [
    "CHECKS",
    "check_active_path",
    "check_active_path_stops_at_frame_boundary",
    "check_activity_seq_never_decreases",
    "check_commit_cas_conflict",
    "check_commit_clears_pending_input",
    "check_conflicting_recommit",
    "check_get_turn",
    "check_invalid_commit_writes_nothing",
    "check_list_sessions_order",
    "check_open_and_get_session",
    "check_pending_inputs",
    "check_plugin_state",
    "check_replayed_commit",
    "check_session_not_found",
    "check_sessions_isolated",
    "check_store",
    "check_text_that_is_not_valid_unicode",
    "check_usage_ledger_accumulates",
]

_T0 = 1_700_000_000.0  # an arbitrary fixed "now", seconds since the epoch


# -- helpers -----------------------------------------------------------------------------------


def _expect(condition: bool, message: str) -> None:
    """``assert`` that survives ``python -O``."""
    if not condition:
        raise AssertionError(message)


def _expect_equal(actual: Any, expected: Any, what: str) -> None:
    _expect(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


def _expect_raises(exc_type: type[BaseException], fn: Callable[[], Any], what: str) -> BaseException:
    try:
        fn()
    except exc_type as exc:
        return exc
    except BaseException as exc:
        raise AssertionError(
            f"{what}: expected {exc_type.__name__}, got {type(exc).__name__}: {exc}"
        ) from exc
    raise AssertionError(f"{what}: expected {exc_type.__name__}, nothing was raised")


def _sid(label: str) -> str:
    return f"conf-{label}-{uuid.uuid4().hex[:12]}"


def _open(store: Store, session_id: str, *, now: float = _T0, frame_id: str = "frame-0") -> SessionInfo:
    return store.open_session(session_id, mode="standard", frame_id=frame_id, now=now)


def _node(
    turn_id: str,
    node_id: str,
    parent_id: str | None,
    message: Message,
    *,
    frame_id: str = "frame-0",
    at: float = _T0,
) -> Node:
    return Node(
        node_id=node_id,
        parent_id=parent_id,
        frame_id=frame_id,
        turn_id=turn_id,
        kind="message",
        payload=message,
        created_at=at,
    )


def _ledger(*rows: tuple[str, str, int, int, int]) -> UsageLedger:
    """Rows of (source, model, input tokens, output tokens, calls)."""
    return UsageLedger.of(
        (UsageKey(source=s, model=m), TokenUsage(input_tokens=i, output_tokens=o), c) for s, m, i, o, c in rows
    )


def _turn(
    session_id: str,
    turn_id: str,
    expected: int,
    parent_id: str | None,
    *,
    text: str = "",
    usage: UsageLedger | None = None,
    outcome: Outcome | None = None,
    at: float = _T0,
    frame_id: str = "frame-0",
    with_tool: bool = False,
) -> TurnCommit:
    """A typical turn: user message, optional tool call + result, assistant answer."""
    text = text or f"question {turn_id}"
    messages = [Message.user(text)]
    if with_tool:
        messages.append(
            Message(role="assistant", parts=(ToolCallPart(id=f"call-{turn_id}", name="lookup", arguments='{"q":1}'),))
        )
        messages.append(
            Message(role="tool", parts=(ToolResultPart(call_id=f"call-{turn_id}", name="lookup", output="42"),))
        )
    messages.append(Message(role="assistant", parts=(TextPart(text=f"answer to {text}"),)))
    nodes = []
    parent = parent_id
    for i, message in enumerate(messages):
        node = _node(turn_id, f"{turn_id}-n{i}", parent, message, frame_id=frame_id, at=at)
        nodes.append(node)
        parent = node.node_id
    return TurnCommit(
        session_id=session_id,
        turn_id=turn_id,
        expected_head_revision=expected,
        nodes=tuple(nodes),
        usage=usage if usage is not None else _ledger(("turn", "model-a", 10, 5, 1)),
        outcome=outcome if outcome is not None else Finished(text=f"answer to {text}"),
        committed_at=at,
    )


def _snapshot(store: Store, session_id: str) -> tuple[Any, ...]:
    """Everything observable about one session, for "nothing was written" comparisons."""
    return (
        store.get_session(session_id),
        store.load_active_path(session_id),
        store.list_turns(session_id),
        store.usage_ledger(session_id),
        store.pending_inputs(session_id),
    )


def _expect_unchanged(store: Store, session_id: str, before: tuple[Any, ...], what: str) -> None:
    after = _snapshot(store, session_id)
    names = ("session head", "active path", "turns", "usage ledger", "pending inputs")
    for name, old, new in zip(names, before, after, strict=True):
        _expect(old == new, f"{what} changed the {name}: before {old!r}, after {new!r}")


# -- checks ------------------------------------------------------------------------------------


def check_open_and_get_session(store: Store) -> None:
    """``open_session`` creates an empty session once; later opens and ``get_session`` return it.

    Args:
        store: the store under test (may already hold other sessions).

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("open")
    info = _open(store, sid, now=_T0, frame_id="frame-a")
    expected = SessionInfo(
        session_id=sid,
        head_revision=0,
        leaf_id=None,
        frame_id="frame-a",
        mode="standard",
        created_at=_T0,
        updated_at=_T0,
    )
    _expect_equal(info, expected, "open_session on a new id")
    again = store.open_session(sid, mode="standard", frame_id="frame-b", now=_T0 + 50)
    _expect_equal(again, expected, "open_session on an existing id (must not reset or modify it)")
    _expect_equal(store.get_session(sid), expected, "get_session")
    listed = [s for s in store.list_sessions() if s.session_id == sid]
    _expect_equal(listed, [expected], "list_sessions entries for the new session")
    _expect_equal(store.load_active_path(sid), (), "active path of a new session")
    _expect_equal(store.list_turns(sid), [], "turns of a new session")
    _expect_equal(store.usage_ledger(sid), UsageLedger(), "usage ledger of a new session")
    _expect_equal(store.pending_inputs(sid), [], "pending inputs of a new session")


def check_list_sessions_order(store: Store) -> None:
    """``list_sessions`` returns the most recently updated session first.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    a, b, c = _sid("list-a"), _sid("list-b"), _sid("list-c")
    _open(store, a, now=_T0 + 1)
    _open(store, b, now=_T0 + 2)
    _open(store, c, now=_T0 + 3)
    store.commit_turn(_turn(a, "t1", 0, None, at=_T0 + 10))  # a becomes the most recent
    mine = [s.session_id for s in store.list_sessions() if s.session_id in (a, b, c)]
    _expect_equal(mine, [a, c, b], "list_sessions order (most recently updated first)")
    _expect_equal(store.get_session(a).updated_at, _T0 + 10, "updated_at after a commit")


def check_session_not_found(store: Store) -> None:
    """Every call naming an unknown session raises ``SessionNotFoundError`` (a ``KeyError``).

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("missing")
    calls: dict[str, Callable[[], Any]] = {
        "get_session": lambda: store.get_session(sid),
        "load_active_path": lambda: store.load_active_path(sid),
        "list_turns": lambda: store.list_turns(sid),
        "usage_ledger": lambda: store.usage_ledger(sid),
        "pending_inputs": lambda: store.pending_inputs(sid),
        "record_input": lambda: store.record_input(
            PendingInput(session_id=sid, turn_id="t1", message=Message.user("hi"), created_at=_T0)
        ),
        "commit_turn": lambda: store.commit_turn(_turn(sid, "t1", 0, None)),
    }
    for name, call in calls.items():
        exc = _expect_raises(SessionNotFoundError, call, f"{name} on an unknown session")
        _expect(isinstance(exc, KeyError), f"{name}: SessionNotFoundError must be a KeyError")
    _expect(
        all(s.session_id != sid for s in store.list_sessions()),
        "a failed call on an unknown session created it",
    )


def check_pending_inputs(store: Store) -> None:
    """``record_input`` is durable and idempotent per turn; ``discard_input`` drops it.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("pending")
    _open(store, sid)
    first = PendingInput(session_id=sid, turn_id="t1", message=Message.user("first"), created_at=_T0 + 1)
    second = PendingInput(session_id=sid, turn_id="t2", message=Message.user("second"), created_at=_T0 + 2)
    store.record_input(second)
    store.record_input(first)
    store.record_input(first)  # idempotent
    _expect_equal(store.pending_inputs(sid), [first, second], "pending inputs (oldest first, no duplicates)")
    store.discard_input(sid, "t1")
    _expect_equal(store.pending_inputs(sid), [second], "pending inputs after discard_input")
    store.discard_input(sid, "t1")  # absent: no-op
    store.discard_input(sid, "never-recorded")
    _expect_equal(store.pending_inputs(sid), [second], "pending inputs after discarding absent inputs")


def check_commit_clears_pending_input(store: Store) -> None:
    """Committing a turn removes that turn's pending input (and only that one).

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("admit")
    _open(store, sid)
    mine = PendingInput(session_id=sid, turn_id="t1", message=Message.user("question t1"), created_at=_T0)
    other = PendingInput(session_id=sid, turn_id="t2", message=Message.user("later"), created_at=_T0 + 1)
    store.record_input(mine)
    store.record_input(other)
    result = store.commit_turn(_turn(sid, "t1", 0, None, at=_T0 + 2))
    _expect_equal(
        result,
        CommitResult(session_id=sid, turn_id="t1", head_revision=1, leaf_id="t1-n1"),
        "commit result",
    )
    _expect_equal(store.pending_inputs(sid), [other], "pending inputs after committing t1")
    store.record_input(mine)  # admitting an already committed turn again must not resurrect it
    _expect_equal(store.pending_inputs(sid), [other], "pending inputs after re-admitting a committed turn")


def check_commit_cas_conflict(store: Store) -> None:
    """A commit whose ``expected_head_revision`` is stale raises and writes nothing.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("cas")
    _open(store, sid)
    store.commit_turn(_turn(sid, "t1", 0, None))
    store.record_input(PendingInput(session_id=sid, turn_id="t2", message=Message.user("q"), created_at=_T0))
    before = _snapshot(store, sid)
    for stale in (0, 2):
        exc = _expect_raises(
            CommitConflictError,
            lambda stale=stale: store.commit_turn(  # type: ignore[misc]
                _turn(sid, "t2", stale, "t1-n1", usage=_ledger(("turn", "model-b", 7, 7, 1)), at=_T0 + 5)
            ),
            f"commit with expected_head_revision={stale} while the head is 1",
        )
        _expect(isinstance(exc, StoreError), "CommitConflictError must be a StoreError")
        _expect_unchanged(store, sid, before, f"a rejected commit (expected revision {stale})")
    result = store.commit_turn(_turn(sid, "t2", 1, "t1-n1"))
    _expect_equal(result.head_revision, 2, "head revision after the retried commit")


def check_replayed_commit(store: Store) -> None:
    """Re-committing an identical turn returns the recorded result and writes nothing.

    Also when the head has moved on since (the retry's expected revision is stale then), and when
    only ``committed_at`` differs.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("replay")
    _open(store, sid)
    commit = _turn(sid, "t1", 0, None, with_tool=True)
    first = store.commit_turn(commit)
    _expect_equal(first.replayed, False, "replayed flag of a first commit")
    before = _snapshot(store, sid)
    again = store.commit_turn(commit)
    _expect_equal(
        again,
        CommitResult(session_id=sid, turn_id="t1", head_revision=1, leaf_id=first.leaf_id, replayed=True),
        "result of an identical re-commit",
    )
    _expect_unchanged(store, sid, before, "an identical re-commit")
    # an empty turn (no nodes) keeps the leaf; its replay reports that leaf
    empty = TurnCommit(
        session_id=sid,
        turn_id="t2",
        expected_head_revision=1,
        nodes=(),
        usage=UsageLedger(),
        outcome=Stopped(reason="cancelled"),
        committed_at=_T0 + 1,
    )
    store.commit_turn(empty)
    store.commit_turn(_turn(sid, "t3", 2, first.leaf_id, at=_T0 + 2))
    before = _snapshot(store, sid)
    late = store.commit_turn(TurnCommit(**{**_fields(commit), "committed_at": _T0 + 99}))
    _expect_equal(
        late,
        CommitResult(session_id=sid, turn_id="t1", head_revision=1, leaf_id=first.leaf_id, replayed=True),
        "re-commit of turn 1 after the head moved on (committed_at differs)",
    )
    late_empty = store.commit_turn(empty)
    _expect_equal(
        late_empty,
        CommitResult(session_id=sid, turn_id="t2", head_revision=2, leaf_id=first.leaf_id, replayed=True),
        "re-commit of an empty turn",
    )
    _expect_unchanged(store, sid, before, "late identical re-commits")


def _fields(commit: TurnCommit) -> dict[str, Any]:
    return {
        "session_id": commit.session_id,
        "turn_id": commit.turn_id,
        "expected_head_revision": commit.expected_head_revision,
        "nodes": commit.nodes,
        "usage": commit.usage,
        "outcome": commit.outcome,
        "committed_at": commit.committed_at,
    }


def check_conflicting_recommit(store: Store) -> None:
    """Re-committing a turn id with different nodes, usage, outcome or plugin state raises and
    writes nothing.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("conflict")
    _open(store, sid)
    commit = _turn(sid, "t1", 0, None)
    store.commit_turn(commit)
    before = _snapshot(store, sid)
    variants = {
        "different nodes": _turn(sid, "t1", 0, None, text="another question"),
        "different usage": _turn(sid, "t1", 0, None, usage=_ledger(("turn", "model-a", 11, 5, 1))),
        "different outcome": _turn(sid, "t1", 0, None, outcome=Stopped(reason="max_turns")),
        "different plugin state": attrs.evolve(commit, plugin_state=(("memo", '{"n":1}'),)),
    }
    for what, variant in variants.items():
        recommit = functools.partial(store.commit_turn, variant)
        exc = _expect_raises(CommitConflictError, recommit, f"re-commit with {what}")
        _expect(sid in str(exc) and "t1" in str(exc), f"conflict message should name session and turn: {exc}")
        _expect_unchanged(store, sid, before, f"a re-commit with {what}")


def check_activity_seq_never_decreases(store: Store) -> None:
    """The head's ``activity_seq`` is the highest ``last_activity_seq`` committed so far.

    A later commit with a lower value (or none) leaves it unchanged, and a rejected commit or an
    identical re-commit does not move it.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("seq")
    _open(store, sid)
    _expect_equal(store.get_session(sid).activity_seq, 0, "activity_seq of a new session")
    t1 = attrs.evolve(_turn(sid, "t1", 0, None), last_activity_seq=7)
    store.commit_turn(t1)
    _expect_equal(store.get_session(sid).activity_seq, 7, "activity_seq after a commit with last_activity_seq=7")
    store.commit_turn(attrs.evolve(_turn(sid, "t2", 1, "t1-n1", at=_T0 + 1), last_activity_seq=3))
    _expect_equal(store.get_session(sid).activity_seq, 7, "activity_seq after a lower last_activity_seq")
    stale = attrs.evolve(_turn(sid, "t3", 1, "t2-n1", at=_T0 + 2), last_activity_seq=50)
    _expect_raises(CommitConflictError, lambda: store.commit_turn(stale), "a stale commit")
    _expect_equal(store.get_session(sid).activity_seq, 7, "activity_seq after a rejected commit")
    store.commit_turn(attrs.evolve(_turn(sid, "t3", 2, "t2-n1", at=_T0 + 2), last_activity_seq=12))
    _expect_equal(store.get_session(sid).activity_seq, 12, "activity_seq after a higher last_activity_seq")
    store.commit_turn(t1)  # identical re-commit of an old turn
    _expect_equal(store.get_session(sid).activity_seq, 12, "activity_seq after an identical re-commit")


def check_text_that_is_not_valid_unicode(store: Store) -> None:
    """Text holding a lone surrogate (e.g. ``"\\ud83d"`` from a provider that split an emoji) is
    either stored exactly or refused with a ``StoreError``; it never raises anything else.

    Covers a pending input, and a commit with the surrogate in a user message, a tool result,
    the assistant's answer, the outcome and plugin state. When the store accepts them, they
    read back equal, an identical re-commit replays, and a different re-commit conflicts. When
    it refuses, nothing is written.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("surrogate")
    _open(store, sid)
    bad = "half an emoji \ud83d and a stray \udc80 low half"
    pending = PendingInput(session_id=sid, turn_id="t1", message=Message.user(bad), created_at=_T0)
    before = _snapshot(store, sid)
    try:
        store.record_input(pending)
    except StoreError:
        _expect_unchanged(store, sid, before, "a refused pending input with a lone surrogate")
    except Exception as exc:
        raise AssertionError(f"record_input with a lone surrogate raised {type(exc).__name__}: {exc}") from exc
    else:
        _expect_equal(store.pending_inputs(sid), [pending], "pending input with a lone surrogate")
    commit = _turn(sid, "t1", 0, None, text=bad, with_tool=True)
    tool_result = Message(role="tool", parts=(ToolResultPart(call_id="call-t1", name="lookup", output=bad),))
    nodes = list(commit.nodes)
    nodes[2] = Node(**{**_node_fields(nodes[2]), "payload": tool_result})
    commit = attrs.evolve(
        commit,
        nodes=tuple(nodes),
        outcome=Finished(text=f"the answer: {bad}"),
        plugin_state=(("memo", '{"note":"' + bad + '"}'),),
    )
    before = _snapshot(store, sid)
    try:
        result = store.commit_turn(commit)
    except StoreError:
        _expect_unchanged(store, sid, before, "a refused commit with a lone surrogate")
        return
    except Exception as exc:
        raise AssertionError(f"commit_turn with a lone surrogate raised {type(exc).__name__}: {exc}") from exc
    _expect_equal(result.head_revision, 1, "head revision after a commit with a lone surrogate")
    _expect_equal(store.load_active_path(sid), commit.nodes, "active path holding lone surrogates")
    _expect_equal([t.outcome for t in store.list_turns(sid)], [commit.outcome], "outcome holding a lone surrogate")
    _expect_equal(store.pending_inputs(sid), [], "pending inputs after the commit")
    state = store.load_plugin_state(sid)["memo"]
    _expect_equal(json.loads(state), {"note": bad}, "plugin state holding a lone surrogate (as JSON)")
    again = store.commit_turn(commit)
    _expect_equal(again.replayed, True, "identical re-commit of a turn holding lone surrogates")
    other = attrs.evolve(commit, outcome=Finished(text="the answer: half an emoji \ud83e and a stray \udc80 low half"))
    _expect_raises(CommitConflictError, lambda: store.commit_turn(other), "re-commit differing in a lone surrogate")


def check_invalid_commit_writes_nothing(store: Store) -> None:
    """A commit that fails part-way (reused node id, unknown parent) leaves no trace.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("atomic")
    _open(store, sid)
    store.commit_turn(_turn(sid, "t1", 0, None))
    store.record_input(PendingInput(session_id=sid, turn_id="t2", message=Message.user("q"), created_at=_T0))
    before = _snapshot(store, sid)
    good = _turn(sid, "t2", 1, "t1-n1", usage=_ledger(("turn", "model-z", 3, 3, 1)), with_tool=True)
    reused = Node(**{**_node_fields(good.nodes[-1]), "node_id": "t1-n0"})
    bad_reuse = TurnCommit(**{**_fields(good), "nodes": (*good.nodes[:-1], reused)})
    _expect_raises(CommitConflictError, lambda: store.commit_turn(bad_reuse), "commit reusing an existing node id")
    _expect_unchanged(store, sid, before, "a commit reusing a node id")
    dup = TurnCommit(**{**_fields(good), "nodes": (*good.nodes, good.nodes[0])})
    _expect_raises(CommitConflictError, lambda: store.commit_turn(dup), "commit with a node id twice")
    _expect_unchanged(store, sid, before, "a commit with a duplicate node id")
    orphan = _node("t2", "t2-orphan", "no-such-node", Message.user("x"))
    bad_parent = TurnCommit(**{**_fields(good), "nodes": (*good.nodes, orphan)})
    _expect_raises(CommitConflictError, lambda: store.commit_turn(bad_parent), "commit with an unknown parent")
    _expect_unchanged(store, sid, before, "a commit with an unknown parent")
    _expect_equal(store.commit_turn(good).head_revision, 2, "the valid commit after failed ones")


def _node_fields(node: Node) -> dict[str, Any]:
    return {
        "node_id": node.node_id,
        "parent_id": node.parent_id,
        "frame_id": node.frame_id,
        "turn_id": node.turn_id,
        "kind": node.kind,
        "payload": node.payload,
        "created_at": node.created_at,
    }


def check_active_path(store: Store) -> None:
    """Across several turns the active path is oldest first, linked by parent ids, leaf last.

    Also checks ``list_turns`` (revision order, node ids, outcomes) and ``load_nodes`` order.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("path")
    _open(store, sid)
    commits = []
    parent: str | None = None
    for i in range(4):
        commit = _turn(sid, f"t{i}", i, parent, at=_T0 + i, with_tool=i % 2 == 1)
        result = store.commit_turn(commit)
        _expect_equal(result.head_revision, i + 1, f"head revision after turn {i}")
        _expect_equal(result.leaf_id, commit.nodes[-1].node_id, f"leaf after turn {i}")
        parent = result.leaf_id
        commits.append(commit)
    expected = tuple(n for c in commits for n in c.nodes)
    path = store.load_active_path(sid)
    _expect_equal([n.node_id for n in path], [n.node_id for n in expected], "active path node ids (oldest first)")
    _expect_equal(path, expected, "active path nodes (payloads round-trip)")
    _expect(path[0].parent_id is None, "the first node of the path has no parent")
    for prev, node in itertools.pairwise(path):
        _expect_equal(node.parent_id, prev.node_id, f"parent of {node.node_id}")
    head = store.get_session(sid)
    _expect_equal((head.head_revision, head.leaf_id), (4, path[-1].node_id), "session head")
    turns = store.list_turns(sid)
    _expect_equal([t.turn_id for t in turns], ["t0", "t1", "t2", "t3"], "list_turns order")
    _expect_equal([t.revision for t in turns], [1, 2, 3, 4], "turn revisions")
    _expect_equal([t.node_ids for t in turns], [tuple(n.node_id for n in c.nodes) for c in commits], "turn node ids")
    _expect_equal([t.outcome for t in turns], [c.outcome for c in commits], "turn outcomes")
    _expect_equal([t.committed_at for t in turns], [c.committed_at for c in commits], "turn committed_at")
    asked = tuple(n.node_id for n in reversed(expected[:5]))
    _expect_equal(store.load_nodes(sid, asked), tuple(reversed(expected[:5])), "load_nodes order")


def check_active_path_stops_at_frame_boundary(store: Store) -> None:
    """Once a turn adds nodes in a new frame, the active path holds only that frame's nodes.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("frame")
    _open(store, sid, frame_id="frame-0")
    first = store.commit_turn(_turn(sid, "t1", 0, None))
    second = _turn(sid, "t2", 1, first.leaf_id, frame_id="frame-1", at=_T0 + 1)
    store.commit_turn(second)
    _expect_equal(store.get_session(sid).frame_id, "frame-1", "current frame after a frame switch")
    _expect_equal(store.load_active_path(sid), second.nodes, "active path after a frame switch")
    third = _turn(sid, "t3", 2, second.nodes[-1].node_id, frame_id="frame-1", at=_T0 + 2)
    store.commit_turn(third)
    _expect_equal(store.load_active_path(sid), second.nodes + third.nodes, "active path in the new frame")


def check_usage_ledger_accumulates(store: Store) -> None:
    """The usage ledger adds every commit's delta per (source, model), calls included.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("usage")
    _open(store, sid)
    store.commit_turn(_turn(sid, "t1", 0, None, usage=_ledger(("turn", "m1", 100, 20, 1), ("observer", "m2", 5, 1, 1))))
    store.commit_turn(
        _turn(
            sid,
            "t2",
            1,
            "t1-n1",
            usage=UsageLedger.of(
                [
                    (
                        UsageKey(source="turn", model="m1"),
                        TokenUsage(
                            input_tokens=50,
                            output_tokens=30,
                            cache_read_input_tokens=7,
                            cache_write_input_tokens=3,
                            reasoning_output_tokens=11,
                        ),
                        2,
                    ),
                    (UsageKey(source="turn", model="m2"), TokenUsage(output_tokens=4), 1),
                ]
            ),
        )
    )
    store.commit_turn(_turn(sid, "t3", 2, "t2-n1", usage=UsageLedger()))
    expected = UsageLedger.of(
        [
            (UsageKey(source="observer", model="m2"), TokenUsage(input_tokens=5, output_tokens=1), 1),
            (
                UsageKey(source="turn", model="m1"),
                TokenUsage(
                    input_tokens=150,
                    output_tokens=50,
                    cache_read_input_tokens=7,
                    cache_write_input_tokens=3,
                    reasoning_output_tokens=11,
                ),
                3,
            ),
            (UsageKey(source="turn", model="m2"), TokenUsage(output_tokens=4), 1),
        ]
    )
    _expect_equal(store.usage_ledger(sid), expected, "cumulative usage ledger")


def check_sessions_isolated(store: Store) -> None:
    """Many sessions in one store, with the same turn and node ids, never see each other's data.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sids = [_sid(f"iso{i}") for i in range(3)]
    for sid in sids:
        _open(store, sid)
    leaves: dict[str, str | None] = dict.fromkeys(sids)
    commits: dict[str, list[TurnCommit]] = {sid: [] for sid in sids}
    for round_ in range(3):  # interleave commits across sessions
        for i, sid in enumerate(sids):
            commit = _turn(
                sid,
                f"t{round_}",  # the same turn and node ids in every session
                round_,
                leaves[sid],
                text=f"session {i} round {round_}",
                usage=_ledger(("turn", "m", i + 1, 1, 1)),
                at=_T0 + round_ * 10 + i,
            )
            leaves[sid] = store.commit_turn(commit).leaf_id
            commits[sid].append(commit)
    store.record_input(PendingInput(session_id=sids[0], turn_id="t9", message=Message.user("p"), created_at=_T0))
    for i, sid in enumerate(sids):
        expected = tuple(n for c in commits[sid] for n in c.nodes)
        _expect_equal(store.load_active_path(sid), expected, f"active path of session {i}")
        _expect_equal(len(store.list_turns(sid)), 3, f"number of turns of session {i}")
        _expect_equal(store.usage_ledger(sid), _ledger(("turn", "m", 3 * (i + 1), 3, 3)), f"usage of session {i}")
        _expect_equal(store.get_session(sid).head_revision, 3, f"head revision of session {i}")
        _expect_equal(len(store.pending_inputs(sid)), 1 if i == 0 else 0, f"pending inputs of session {i}")
        _expect_equal(
            store.load_nodes(sid, ("t1-n0",))[0].payload.text,
            f"session {i} round 1",
            f"load_nodes in session {i}",
        )


def check_plugin_state(store: Store) -> None:
    """Snapshots commit with the turn; the latest per plugin wins; sessions do not share them."""
    sid, other = _sid("state"), _sid("state-other")
    _open(store, sid)
    _open(store, other)
    _expect_equal(store.load_plugin_state(sid), {}, "plugin state of a new session")
    t1 = attrs.evolve(_turn(sid, "t1", 0, None), plugin_state=(("memo", '{"n":1}'), ("trace", '"a"')))
    r1 = store.commit_turn(t1)
    t2 = attrs.evolve(_turn(sid, "t2", 1, r1.leaf_id), plugin_state=(("memo", '{"n":2}'),))
    store.commit_turn(t2)
    _expect_equal(store.load_plugin_state(sid), {"memo": '{"n":2}', "trace": '"a"'}, "plugin state after two turns")
    _expect_equal(store.load_plugin_state(other), {}, "plugin state of another session")
    stale = attrs.evolve(_turn(sid, "t3", 1, r1.leaf_id), plugin_state=(("memo", '{"n":99}'),))
    _expect_raises(CommitConflictError, lambda: store.commit_turn(stale), "a stale commit with plugin state")
    _expect_equal(store.load_plugin_state(sid)["memo"], '{"n":2}', "plugin state after a rejected commit")


def check_get_turn(store: Store) -> None:
    """``get_turn`` finds a committed turn by id (as ``list_turns`` lists it), None otherwise."""
    sid = _sid("get-turn")
    _open(store, sid)
    _expect_equal(store.get_turn(sid, "t1"), None, "get_turn before any commit")
    store.record_input(PendingInput(session_id=sid, turn_id="t1", message=Message.user("q"), created_at=_T0))
    _expect_equal(store.get_turn(sid, "t1"), None, "get_turn of a turn whose input is only pending")
    store.commit_turn(_turn(sid, "t1", 0, None))
    found = store.get_turn(sid, "t1")
    _expect(found is not None, "get_turn did not find a committed turn")
    _expect_equal(found, store.list_turns(sid)[0], "get_turn vs list_turns")
    _expect_equal(store.get_turn(sid, "t2"), None, "get_turn of another turn id")
    _expect_raises(SessionNotFoundError, lambda: store.get_turn(_sid("missing"), "t1"), "get_turn, unknown session")


CHECKS: tuple[Callable[[Store], None], ...] = (
    check_open_and_get_session,
    check_list_sessions_order,
    check_session_not_found,
    check_pending_inputs,
    check_commit_clears_pending_input,
    check_commit_cas_conflict,
    check_replayed_commit,
    check_conflicting_recommit,
    check_get_turn,
    check_invalid_commit_writes_nothing,
    check_active_path,
    check_active_path_stops_at_frame_boundary,
    check_usage_ledger_accumulates,
    check_activity_seq_never_decreases,
    check_text_that_is_not_valid_unicode,
    check_sessions_isolated,
    check_plugin_state,
)
"""Every check ``check_store`` runs, in order. Each takes one open store."""


def check_store(make_store: Callable[[], Store]) -> None:
    """Run the whole conformance suite against a ``Store`` implementation.

    Args:
        make_store: returns a new, open store each time it is called (one per check; the store
            may share data with earlier ones, e.g. the same database, since checks use fresh
            random session ids). ``check_store`` closes every store it obtained, twice, to check
            that ``close`` is idempotent.

    Raises:
        AssertionError: a check failed; the message starts with the check's name.
    """
    for check in CHECKS:
        store = make_store()
        try:
            _expect(isinstance(store, Store), f"{store!r} does not implement the Store protocol")
            try:
                check(store)
            except AssertionError as exc:
                raise AssertionError(f"{check.__name__}: {exc}") from exc
        finally:
            store.close()
        try:
            store.close()
        except Exception as exc:
            raise AssertionError(f"close() is not idempotent: the second call raised {exc!r}") from exc
