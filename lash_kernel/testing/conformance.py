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

from lash_kernel.errors import (
    CommitConflictError,
    LeaseError,
    LeaseLostError,
    SessionBusyError,
    SessionNotFoundError,
    StoreError,
)
from lash_kernel.messages import Message, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Finished, Outcome, Stopped
from lash_kernel.store.base import (
    MESSAGE_KIND,
    CommitResult,
    Frame,
    Lease,
    MaintenanceCommit,
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
    "check_active_path_follows_a_branch",
    "check_active_path_stops_at_frame_boundary",
    "check_activity_seq_never_decreases",
    "check_commit_cas_conflict",
    "check_commit_clears_pending_input",
    "check_conflicting_recommit",
    "check_delete_session",
    "check_frame_switch_in_maintenance",
    "check_frame_switch_in_turn",
    "check_get_turn",
    "check_invalid_commit_writes_nothing",
    "check_lease_claim_renew_release",
    "check_lease_expiry_reclaim",
    "check_list_sessions_order",
    "check_maintenance_commit",
    "check_open_and_get_session",
    "check_pending_inputs",
    "check_plugin_nodes",
    "check_plugin_state",
    "check_replayed_commit",
    "check_session_not_found",
    "check_session_spec_and_children",
    "check_sessions_isolated",
    "check_sessions_with_pending_input",
    "check_store",
    "check_text_that_is_not_valid_unicode",
    "check_unleased_commit_while_leased",
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


def _pnode(
    key: str,
    node_id: str,
    parent_id: str | None,
    *,
    kind: str = "conf.note",
    data: Any = None,
    frame_id: str = "frame-0",
    at: float = _T0,
) -> Node:
    """A plugin node: its payload is JSON text (``{"kind": kind, "data": data}``)."""
    payload = json.dumps({"kind": kind, "data": data if data is not None else {"id": node_id}}, ensure_ascii=False)
    return Node(
        node_id=node_id, parent_id=parent_id, frame_id=frame_id, turn_id=key, kind=kind, payload=payload, created_at=at
    )


def _maintenance(
    session_id: str,
    key: str,
    expected: int,
    nodes: tuple[Node, ...] = (),
    *,
    usage: UsageLedger | None = None,
    frame: Frame | None = None,
    lease: Lease | None = None,
    at: float = _T0,
) -> MaintenanceCommit:
    return MaintenanceCommit(
        session_id=session_id,
        key=key,
        expected_head_revision=expected,
        nodes=nodes,
        usage=usage if usage is not None else UsageLedger(),
        committed_at=at,
        frame=frame,
        lease=lease,
    )


def _frame(frame_id: str, previous: str, opened_by: str, *seeds: str, reason: str = "compaction") -> Frame:
    return Frame(
        frame_id=frame_id,
        previous_frame_id=previous,
        reason=reason,
        opened_by=opened_by,
        seed_node_ids=seeds,
        created_at=_T0,
    )


def _token() -> str:
    return uuid.uuid4().hex


def _snapshot(store: Store, session_id: str) -> tuple[Any, ...]:
    """Everything observable about one session, for "nothing was written" comparisons."""
    return (
        store.get_session(session_id),
        store.load_active_path(session_id),
        store.list_turns(session_id),
        store.usage_ledger(session_id),
        store.pending_inputs(session_id),
        store.load_graph(session_id),
        store.list_frames(session_id),
        store.load_plugin_state(session_id),
        store.get_lease(session_id),
    )


def _expect_frame_messages(store: Store, session_id: str, what: str) -> None:
    """A store with the optional ``load_frame_messages`` gives the active path's messages."""
    load = getattr(store, "load_frame_messages", None)
    if load is not None:
        path = store.load_active_path(session_id)
        _expect_equal(load(session_id), tuple(n.message for n in path if n.kind == MESSAGE_KIND), what)


def _expect_unchanged(store: Store, session_id: str, before: tuple[Any, ...], what: str) -> None:
    after = _snapshot(store, session_id)
    names = (
        "session head",
        "active path",
        "turns",
        "usage ledger",
        "pending inputs",
        "graph",
        "frames",
        "plugin state",
        "lease",
    )
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
        "commit_maintenance": lambda: store.commit_maintenance(_maintenance(sid, "m1", 0)),
        "list_children": lambda: store.list_children(sid),
        "load_nodes_of_kind": lambda: store.load_nodes_of_kind(sid, MESSAGE_KIND),
        "load_graph": lambda: store.load_graph(sid),
        "list_frames": lambda: store.list_frames(sid),
        "get_lease": lambda: store.get_lease(sid),
        "claim_lease": lambda: store.claim_lease(sid, owner="me", token=_token(), ttl_s=30, now=_T0),
        "renew_lease": lambda: store.renew_lease(
            Lease(session_id=sid, owner="me", token="x", fencing=1, expires_at=_T0), ttl_s=30, now=_T0
        ),
        "release_lease": lambda: store.release_lease(
            Lease(session_id=sid, owner="me", token="x", fencing=1, expires_at=_T0)
        ),
        "open_session with an unknown parent": lambda: store.open_session(
            _sid("orphan"),
            mode="standard",
            frame_id="frame-0",
            now=_T0,
            parent=SessionInfo(
                session_id=sid, head_revision=0, leaf_id=None, frame_id="f", mode="standard", created_at=0, updated_at=0
            ),
        ),
    }
    for name, call in calls.items():
        exc = _expect_raises(SessionNotFoundError, call, f"{name} on an unknown session")
        _expect(isinstance(exc, KeyError), f"{name}: SessionNotFoundError must be a KeyError")
    _expect(
        all(s.session_id != sid and s.parent_session_id != sid for s in store.list_sessions()),
        "a failed call on an unknown session created it (or a child of it)",
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

    Covers a pending input, a commit with the surrogate in a user message, a tool result,
    the assistant's answer, the outcome and plugin state, and a plugin node's JSON payload
    (read back as equal JSON). When the store accepts them, they
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
    note = _pnode("m1", "m1-p0", None, data={"note": bad})
    maintenance = _maintenance(sid, "m1", 1, (note,), at=_T0 + 1)
    before = _snapshot(store, sid)
    try:
        store.commit_maintenance(maintenance)
    except StoreError:
        _expect_unchanged(store, sid, before, "a refused plugin node with a lone surrogate")
        return
    except Exception as exc:
        raise AssertionError(f"a plugin node with a lone surrogate raised {type(exc).__name__}: {exc}") from exc
    (stored,) = store.load_nodes_of_kind(sid, note.kind)
    _expect_equal(json.loads(str(stored.payload)), {"kind": note.kind, "data": {"note": bad}}, "plugin node JSON")
    _expect_equal(store.commit_maintenance(maintenance).replayed, True, "replay of a plugin node with a lone surrogate")


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


def check_active_path_follows_a_branch(store: Store) -> None:
    """A turn chained from an earlier node than the leaf (a branch) makes the active path follow
    the branch: the nodes it left behind stay in the session but are not on the path.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("branch")
    _open(store, sid)
    first = _turn(sid, "t0", 0, None)
    store.commit_turn(first)
    second = _turn(sid, "t1", 1, first.nodes[0].node_id, at=_T0 + 1)  # from the user input, not the leaf
    store.commit_turn(second)
    path = store.load_active_path(sid)
    _expect_equal(
        [n.node_id for n in path], [first.nodes[0].node_id, *(n.node_id for n in second.nodes)],
        "active path after a branch",
    )
    _expect_frame_messages(store, sid, "load_frame_messages after a branch")


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
    _expect_frame_messages(store, sid, "load_frame_messages across turns")
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
    """Once a turn opens a new frame, the active path holds only that frame's nodes.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("frame")
    _open(store, sid, frame_id="frame-0")
    first = store.commit_turn(_turn(sid, "t1", 0, None))
    second = attrs.evolve(
        _turn(sid, "t2", 1, first.leaf_id, frame_id="frame-1", at=_T0 + 1),
        frame=_frame("frame-1", "frame-0", "t2", "t2-n0"),
    )
    store.commit_turn(second)
    _expect_equal(store.get_session(sid).frame_id, "frame-1", "current frame after a frame switch")
    _expect_equal(store.load_active_path(sid), second.nodes, "active path after a frame switch")
    _expect_frame_messages(store, sid, "load_frame_messages after a frame switch")
    third = _turn(sid, "t3", 2, second.nodes[-1].node_id, frame_id="frame-1", at=_T0 + 2)
    store.commit_turn(third)
    _expect_equal(store.load_active_path(sid), second.nodes + third.nodes, "active path in the new frame")


def check_usage_ledger_accumulates(store: Store) -> None:
    """The usage ledger adds every commit's delta per (source, model, served model), calls included.

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
                    (UsageKey(source="turn", model="m2", served_model="m2-2026"), TokenUsage(output_tokens=6), 1),
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
            (UsageKey(source="turn", model="m2", served_model="m2-2026"), TokenUsage(output_tokens=6), 1),
        ]
    )
    _expect_equal(store.usage_ledger(sid), expected, "cumulative usage ledger (served models kept apart)")


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
            store.load_nodes(sid, ("t1-n0",))[0].message.text,
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


def check_sessions_with_pending_input(store: Store) -> None:
    """``sessions_with_pending_input`` lists sessions with pending input, the oldest pending
    input first, honours ``limit``, and with ``now`` leaves out sessions whose lease is live.

    The inputs are dated long before ``_T0`` so that they come first even in a store that
    already holds pending inputs; the check discards them at the end.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    old = _T0 - 10_000_000.0
    a, b, c = _sid("work-a"), _sid("work-b"), _sid("work-c")
    for sid in (a, b, c):
        _open(store, sid)
    inputs = [
        PendingInput(session_id=b, turn_id="b1", message=Message.user("b1"), created_at=old + 2),
        PendingInput(session_id=a, turn_id="a1", message=Message.user("a1"), created_at=old + 1),
        PendingInput(session_id=a, turn_id="a2", message=Message.user("a2"), created_at=old + 3),
    ]
    for pending in inputs:
        store.record_input(pending)
    try:
        _expect_equal(store.sessions_with_pending_input(limit=2), [a, b], "oldest pending input first")
        _expect_equal(store.sessions_with_pending_input(limit=1), [a], "limit=1")
        lease = store.claim_lease(a, owner="w", token=_token(), ttl_s=10.0, now=_T0)
        found = store.sessions_with_pending_input(limit=2, now=_T0 + 1)
        _expect(a not in found, f"a session with a live lease is listed with now= ({found!r})")
        _expect_equal(found[:1], [b], "first session with pending input and no live lease")
        _expect_equal(
            store.sessions_with_pending_input(limit=2)[:2], [a, b], "without now=, leases are not looked at"
        )
        _expect_equal(
            store.sessions_with_pending_input(limit=2, now=_T0 + 10)[:2], [a, b], "an expired lease is no obstacle"
        )
        store.release_lease(lease)
        _expect_equal(
            store.sessions_with_pending_input(limit=2, now=_T0 + 1)[:2], [a, b], "a released lease is no obstacle"
        )
        store.commit_turn(_turn(a, "a1", 0, None, at=_T0 + 2))
        _expect_equal(
            store.sessions_with_pending_input(limit=2)[:2], [b, a], "after committing a1, b's input is the oldest"
        )
        store.discard_input(a, "a2")
        found = store.sessions_with_pending_input(limit=2)
        _expect(a not in found and c not in found, f"sessions without pending input are listed: {found!r}")
        _expect_equal(found[:1], [b], "the remaining session with pending input")
    finally:
        for pending in inputs:
            store.discard_input(pending.session_id, pending.turn_id)


def check_session_spec_and_children(store: Store) -> None:
    """A session keeps the ``spec`` it was created with; a child session records its parent
    link and depth; ``list_children`` lists a session's children oldest first.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    root, child_a, child_b, grandchild = _sid("root"), _sid("child-a"), _sid("child-b"), _sid("grandchild")
    spec = '{"model":"m1","system_prompt":"be brief ✓","max_turns":3}'
    info = store.open_session(root, mode="standard", frame_id="frame-0", now=_T0, spec=spec)
    _expect_equal((info.spec, info.parent_session_id, info.depth), (spec, None, 0), "a root session's spec and link")
    _expect_equal(store.get_session(root).spec, spec, "spec read back")
    again = store.open_session(root, mode="standard", frame_id="frame-0", now=_T0 + 9, spec='{"other":1}')
    _expect_equal(again.spec, spec, "spec of an existing session (must not change)")
    _expect_equal(store.list_children(root), [], "children of a new session")
    # the second child is created first but with a later created_at: the order is by created_at
    b = store.open_session(
        child_b, mode="standard", frame_id="frame-0", now=_T0 + 2, spec="{}", parent=info,
        parent_turn_id="t1", parent_call_id="call-2",
    )
    a = store.open_session(
        child_a, mode="standard", frame_id="frame-0", now=_T0 + 1, parent=info,
        parent_turn_id="t1", parent_call_id="call-1",
    )
    expected_a = SessionInfo(
        session_id=child_a, head_revision=0, leaf_id=None, frame_id="frame-0", mode="standard",
        created_at=_T0 + 1, updated_at=_T0 + 1, parent_session_id=root, parent_turn_id="t1",
        parent_call_id="call-1", depth=1,
    )
    _expect_equal(a, expected_a, "a child session's head")
    _expect_equal(store.get_session(child_a), expected_a, "a child session read back")
    _expect_equal((b.spec, b.parent_call_id), ("{}", "call-2"), "the other child's spec and call id")
    g = store.open_session(grandchild, mode="standard", frame_id="frame-0", now=_T0 + 3, parent=b, parent_turn_id="u1")
    _expect_equal((g.parent_session_id, g.depth, g.parent_call_id), (child_b, 2, None), "a grandchild's link")
    _expect_equal([c.session_id for c in store.list_children(root)], [child_a, child_b], "list_children order")
    _expect_equal(store.list_children(root)[0], expected_a, "list_children entry")
    _expect_equal([c.session_id for c in store.list_children(child_b)], [grandchild], "children of a child")
    _expect_equal(store.list_children(grandchild), [], "children of a leaf session")
    listed = {s.session_id: s for s in store.list_sessions()}
    _expect_equal(listed.get(grandchild), g, "list_sessions holds child sessions with their link")


def check_delete_session(store: Store) -> None:
    """``delete_session`` removes a session with its turns, pending inputs, usage and child
    sessions (recursively), returns their ids, leaves other sessions alone, and raises
    ``SessionNotFoundError`` for an unknown id. Added in 0.3.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    root, child, other = _sid("del-root"), _sid("del-child"), _sid("del-other")
    info = _open(store, root)
    store.open_session(child, mode="standard", frame_id="frame-0", now=_T0 + 1, parent=info)
    _open(store, other)
    store.record_input(PendingInput(session_id=root, turn_id="t2", message=Message.user("later"), created_at=_T0))
    store.commit_turn(_turn(root, "t1", 0, None))
    store.commit_turn(_turn(other, "t1", 0, None))
    _expect_equal(store.delete_session(root), [root, child], "delete_session's deleted ids")
    for sid in (root, child):
        _expect_raises(SessionNotFoundError, functools.partial(store.get_session, sid), "get_session after delete")
    listed = {s.session_id for s in store.list_sessions()}
    _expect(root not in listed and child not in listed and other in listed, "list_sessions after delete")
    _expect_equal(len(store.list_turns(other)), 1, "another session's turns after a delete")
    _expect_raises(SessionNotFoundError, lambda: store.delete_session(root), "delete_session twice")
    again = _open(store, root)  # the id is free again, with nothing left behind
    _expect_equal((again.head_revision, store.pending_inputs(root), store.list_turns(root)), (0, [], []),
                  "a session re-created under a deleted id")


def check_lease_claim_renew_release(store: Store) -> None:
    """``claim_lease`` claims a free lease (fencing 1), renews it for its holder, refuses another
    writer while it is live (``SessionBusyError``, nothing changes); ``renew_lease`` extends it;
    ``release_lease`` frees it (``expires_at == 0``, the fencing number stays), after which
    another writer claims it with the next fencing number and the old holder can neither
    renew it nor release the new one.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("lease")
    _open(store, sid)
    _expect_equal(store.get_lease(sid), None, "lease of a new session")
    mine, theirs = _token(), _token()
    lease = store.claim_lease(sid, owner="host-a:1", token=mine, ttl_s=30, now=_T0)
    _expect_equal(
        lease, Lease(session_id=sid, owner="host-a:1", token=mine, fencing=1, expires_at=_T0 + 30), "a first claim"
    )
    _expect_equal(store.get_lease(sid), lease, "get_lease after a claim")
    again = store.claim_lease(sid, owner="host-a:1", token=mine, ttl_s=30, now=_T0 + 10)
    _expect_equal((again.fencing, again.expires_at), (1, _T0 + 40), "a claim by the live lease's holder (a renewal)")
    exc = _expect_raises(
        SessionBusyError,
        lambda: store.claim_lease(sid, owner="host-b:2", token=theirs, ttl_s=30, now=_T0 + 39),
        "a claim by another writer while the lease is live",
    )
    _expect(isinstance(exc, LeaseError), "SessionBusyError must be a LeaseError")
    _expect_equal(store.get_lease(sid), again, "the lease after a refused claim")
    renewed = store.renew_lease(again, ttl_s=60, now=_T0 + 20)
    _expect_equal((renewed.token, renewed.fencing, renewed.expires_at), (mine, 1, _T0 + 80), "renew_lease")
    _expect_equal(store.get_lease(sid), renewed, "get_lease after renew_lease")
    store.release_lease(renewed)
    released = store.get_lease(sid)
    _expect(released is not None, "get_lease after release_lease returned None")
    assert released is not None
    _expect_equal((released.fencing, released.expires_at), (1, 0.0), "a released lease (fencing kept, expires_at 0)")
    _expect_raises(
        LeaseLostError, lambda: store.renew_lease(renewed, ttl_s=30, now=_T0 + 21), "renewing a released lease"
    )
    other = store.claim_lease(sid, owner="host-b:2", token=theirs, ttl_s=30, now=_T0 + 21)
    _expect_equal((other.token, other.fencing, other.expires_at), (theirs, 2, _T0 + 51), "a claim after a release")
    store.release_lease(renewed)  # the lost lease: a no-op
    _expect_equal(store.get_lease(sid), other, "the lease after releasing a lost lease")
    _expect_raises(LeaseLostError, lambda: store.renew_lease(renewed, ttl_s=30, now=_T0 + 22), "renewing a lost lease")
    _expect_equal(store.get_lease(sid), other, "the lease after a refused renewal")
    # leases are per session
    other_sid = _sid("lease-other")
    _open(store, other_sid)
    first = store.claim_lease(other_sid, owner="host-a:1", token=mine, ttl_s=30, now=_T0 + 22)
    _expect_equal(first.fencing, 1, "fencing number of another session's first claim")


def check_lease_expiry_reclaim(store: Store) -> None:
    """An expired lease is reclaimed by another writer with a higher fencing number; the stale
    holder's commit then raises ``LeaseLostError`` and writes nothing, and its renewal fails.
    An expired lease that nobody reclaimed still commits and renews (standard fencing).

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("reclaim")
    _open(store, sid)
    old = store.claim_lease(sid, owner="dead:1", token=_token(), ttl_s=30, now=_T0)
    late = store.commit_turn(attrs.evolve(_turn(sid, "t1", 0, None, at=_T0 + 45), lease=old))
    _expect_equal(late.head_revision, 1, "a commit with an expired lease nobody reclaimed")
    old = store.renew_lease(old, ttl_s=30, now=_T0 + 46)
    _expect_equal((old.fencing, old.expires_at), (1, _T0 + 76), "renewing an expired lease nobody reclaimed")
    _expect_raises(
        SessionBusyError,
        lambda: store.claim_lease(sid, owner="new:2", token=_token(), ttl_s=30, now=_T0 + 75),
        "a claim one second before the lease expires",
    )
    new = store.claim_lease(sid, owner="new:2", token=_token(), ttl_s=30, now=_T0 + 76)
    _expect_equal(new.fencing, 2, "fencing number of a reclaimed lease")
    again = store.claim_lease(sid, owner="newer:3", token=_token(), ttl_s=30, now=_T0 + 200)
    _expect_equal(again.fencing, 3, "fencing number of a lease reclaimed again")
    store.record_input(PendingInput(session_id=sid, turn_id="t2", message=Message.user("q"), created_at=_T0 + 50))
    before = _snapshot(store, sid)
    for stale, what in ((old, "the first"), (new, "the second")):
        stale_turn = attrs.evolve(_turn(sid, "t2", 1, late.leaf_id, at=_T0 + 201), lease=stale)
        commit_stale = functools.partial(store.commit_turn, stale_turn)
        exc = _expect_raises(LeaseLostError, commit_stale, f"{what} holder's commit")
        _expect(isinstance(exc, LeaseError), "LeaseLostError must be a LeaseError")
        _expect_unchanged(store, sid, before, f"{what} stale holder's turn commit")
        stale_maintenance = _maintenance(sid, "m1", 1, (_pnode("m1", "m1-p0", None),), lease=stale, at=_T0 + 201)
        maintain_stale = functools.partial(store.commit_maintenance, stale_maintenance)
        _expect_raises(LeaseLostError, maintain_stale, f"{what} holder's maintenance")
        _expect_unchanged(store, sid, before, f"{what} stale holder's maintenance commit")
        renew_stale = functools.partial(store.renew_lease, stale, ttl_s=30, now=_T0 + 201)
        _expect_raises(LeaseLostError, renew_stale, f"{what} holder's renewal")
        _expect_unchanged(store, sid, before, f"{what} stale holder's renewal")
    forged = attrs.evolve(again, fencing=2)
    _expect_raises(
        LeaseLostError,
        lambda: store.commit_turn(attrs.evolve(_turn(sid, "t2", 1, late.leaf_id, at=_T0 + 201), lease=forged)),
        "a commit with the holder's token but an older fencing number",
    )
    won = store.commit_turn(attrs.evolve(_turn(sid, "t2", 1, late.leaf_id, at=_T0 + 201), lease=again))
    _expect_equal(won.head_revision, 2, "the new holder's commit")
    _expect_equal(store.pending_inputs(sid), [], "pending inputs after the new holder's commit")


def check_unleased_commit_while_leased(store: Store) -> None:
    """A commit without a lease while another writer holds a live lease raises
    ``SessionBusyError`` and writes nothing; once the lease has expired or was released it
    commits. An identical re-commit of a committed turn replays whatever the lease.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("busy")
    _open(store, sid)
    first = store.commit_turn(_turn(sid, "t1", 0, None))
    lease = store.claim_lease(sid, owner="holder", token=_token(), ttl_s=30, now=_T0 + 1)
    before = _snapshot(store, sid)
    _expect_raises(
        SessionBusyError,
        lambda: store.commit_turn(_turn(sid, "t2", 1, first.leaf_id, at=_T0 + 2)),
        "an unleased turn commit while a lease is live",
    )
    _expect_unchanged(store, sid, before, "a refused unleased turn commit")
    _expect_raises(
        SessionBusyError,
        lambda: store.commit_maintenance(_maintenance(sid, "m1", 1, (_pnode("m1", "m1-p0", None),), at=_T0 + 2)),
        "an unleased maintenance commit while a lease is live",
    )
    _expect_unchanged(store, sid, before, "a refused unleased maintenance commit")
    replay = store.commit_turn(_turn(sid, "t1", 0, None))
    _expect_equal(replay.replayed, True, "an unleased identical re-commit while a lease is live")
    stale = Lease(session_id=sid, owner="ghost", token=_token(), fencing=99, expires_at=_T0 + 99)
    replay = store.commit_turn(attrs.evolve(_turn(sid, "t1", 0, None), lease=stale))
    _expect_equal(replay.replayed, True, "an identical re-commit carrying a lost lease")
    _expect_unchanged(store, sid, before, "identical re-commits")
    after_expiry = store.commit_turn(_turn(sid, "t2", 1, first.leaf_id, at=_T0 + 31))
    _expect_equal(after_expiry.head_revision, 2, "an unleased commit once the lease expired")
    lease = store.claim_lease(sid, owner="holder", token=_token(), ttl_s=30, now=_T0 + 40)
    store.release_lease(lease)
    released = store.commit_maintenance(_maintenance(sid, "m1", 2, (_pnode("m1", "m1-p0", None),), at=_T0 + 41))
    _expect_equal(released.head_revision, 3, "an unleased commit once the lease was released")


def check_maintenance_commit(store: Store) -> None:
    """Maintenance commits: one revision each, shared with turns; compare-and-set; idempotent per
    key (an identical re-commit replays, different content conflicts); keys and turn ids share
    one namespace; usage adds to the ledger; plugin nodes keep the leaf; ``list_turns`` and
    ``get_turn`` do not show them; a message node that is not a frame seed is refused.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("maint")
    _open(store, sid)
    t1 = store.commit_turn(_turn(sid, "t1", 0, None, usage=_ledger(("turn", "m", 10, 5, 1))))
    notes = (_pnode("m1", "m1-p0", t1.leaf_id, at=_T0 + 1), _pnode("m1", "m1-p1", "m1-p0", kind="conf.other"))
    m1 = _maintenance(sid, "m1", 1, notes, usage=_ledger(("observer", "m-small", 7, 2, 1)), at=_T0 + 1)
    result = store.commit_maintenance(m1)
    _expect_equal(
        result, CommitResult(session_id=sid, turn_id="m1", head_revision=2, leaf_id=t1.leaf_id), "a maintenance commit"
    )
    head = store.get_session(sid)
    _expect_equal((head.head_revision, head.leaf_id, head.updated_at), (2, t1.leaf_id, _T0 + 1), "head after it")
    _expect_equal(
        store.usage_ledger(sid),
        _ledger(("observer", "m-small", 7, 2, 1), ("turn", "m", 10, 5, 1)),
        "usage ledger after a maintenance commit",
    )
    before = _snapshot(store, sid)
    _expect_equal(store.commit_maintenance(m1), attrs.evolve(result, replayed=True), "an identical re-commit")
    late = attrs.evolve(m1, expected_head_revision=7, committed_at=_T0 + 50)
    _expect_equal(store.commit_maintenance(late), attrs.evolve(result, replayed=True), "a late identical re-commit")
    variants = {
        "different nodes": attrs.evolve(m1, nodes=notes[:1]),
        "different usage": attrs.evolve(m1, usage=UsageLedger()),
        "a frame": attrs.evolve(m1, frame=_frame("frame-9", "frame-0", "m1")),
    }
    for what, variant in variants.items():
        _expect_raises(
            CommitConflictError, functools.partial(store.commit_maintenance, variant), f"re-commit of a key with {what}"
        )
    _expect_raises(
        CommitConflictError,
        lambda: store.commit_maintenance(_maintenance(sid, "t1", 2, (_pnode("t1", "x-p0", None),))),
        "a maintenance commit whose key is a committed turn id",
    )
    _expect_raises(
        CommitConflictError,
        lambda: store.commit_turn(_turn(sid, "m1", 2, t1.leaf_id)),
        "a turn whose id is a committed maintenance key",
    )
    _expect_raises(
        CommitConflictError,
        lambda: store.commit_maintenance(_maintenance(sid, "m2", 1, (_pnode("m2", "m2-p0", None),))),
        "a maintenance commit with a stale expected head revision",
    )
    message = _node("m2", "m2-n0", t1.leaf_id, Message.user("not a seed"))
    _expect_raises(
        CommitConflictError,
        lambda: store.commit_maintenance(_maintenance(sid, "m2", 2, (message,))),
        "a maintenance commit adding a message node that is not a frame seed",
    )
    _expect_unchanged(store, sid, before, "refused and replayed maintenance commits")
    _expect_equal(store.get_turn(sid, "m1"), None, "get_turn of a maintenance key")
    t2 = store.commit_turn(_turn(sid, "t2", 2, t1.leaf_id, at=_T0 + 2))
    _expect_equal(t2.head_revision, 3, "a turn after a maintenance commit (revisions are shared)")
    empty = store.commit_maintenance(_maintenance(sid, "m3", 3, at=_T0 + 3))
    _expect_equal((empty.head_revision, empty.leaf_id), (4, t2.leaf_id), "an empty maintenance commit")
    _expect_equal([(t.turn_id, t.revision) for t in store.list_turns(sid)], [("t1", 1), ("t2", 3)], "list_turns")
    _expect_equal(
        store.commit_maintenance(m1), attrs.evolve(result, replayed=True), "a re-commit after the head moved on"
    )


def check_plugin_nodes(store: Store) -> None:
    """Plugin nodes (any kind but ``message``; payload JSON text) commit with turns and
    maintenance commits, never become the leaf nor appear on the active path, and read back
    through ``load_nodes``, ``load_nodes_of_kind`` and ``load_graph`` (commit order). A message
    whose parent is a plugin node, and a payload that does not fit its kind, are refused.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("plugin-nodes")
    _open(store, sid)
    turn = _turn(sid, "t1", 0, None, with_tool=True)
    first_note = _pnode("t1", "t1-p0", "t1-n0", data={"seen": "question ✓", "n": 1})
    last_note = _pnode("t1", "t1-p1", turn.nodes[-1].node_id, data={"n": 2})
    nodes = (turn.nodes[0], first_note, *turn.nodes[1:], last_note)
    r1 = store.commit_turn(attrs.evolve(turn, nodes=nodes))
    _expect_equal(r1.leaf_id, turn.nodes[-1].node_id, "leaf of a turn whose last node is a plugin node")
    _expect_equal(store.load_active_path(sid), turn.nodes, "active path of a turn with plugin nodes")
    _expect_frame_messages(store, sid, "load_frame_messages of a turn with plugin nodes")
    _expect_equal(store.load_nodes(sid, ("t1-p1", "t1-p0")), (last_note, first_note), "load_nodes of plugin nodes")
    only_notes = attrs.evolve(
        _turn(sid, "t2", 1, None, at=_T0 + 1),
        nodes=(_pnode("t2", "t2-p0", None, kind="conf.other", at=_T0 + 1),),
    )
    r2 = store.commit_turn(only_notes)
    _expect_equal(r2.leaf_id, r1.leaf_id, "leaf after a turn with plugin nodes only")
    _expect_equal(store.commit_turn(only_notes).leaf_id, r1.leaf_id, "leaf of its replay")
    m1 = _maintenance(sid, "m1", 2, (_pnode("m1", "m1-p0", "t2-p0", at=_T0 + 2),), at=_T0 + 2)
    store.commit_maintenance(m1)
    r3 = store.commit_turn(_turn(sid, "t3", 3, r1.leaf_id, at=_T0 + 3))
    _expect_equal(
        [n.node_id for n in store.load_active_path(sid)],
        [n.node_id for n in turn.nodes] + ["t3-n0", "t3-n1"],
        "active path after plugin-node commits",
    )
    _expect_equal(r3.leaf_id, "t3-n1", "leaf after a later turn")
    _expect_equal(
        store.load_nodes_of_kind(sid, "conf.note"), (first_note, last_note, m1.nodes[0]), "load_nodes_of_kind"
    )
    _expect_equal(store.load_nodes_of_kind(sid, "conf.other"), only_notes.nodes, "load_nodes_of_kind, other kind")
    _expect_equal(store.load_nodes_of_kind(sid, "conf.none"), (), "load_nodes_of_kind of an unused kind")
    _expect_equal(
        [n.node_id for n in store.load_nodes_of_kind(sid, MESSAGE_KIND)],
        [n.node_id for n in turn.nodes] + ["t3-n0", "t3-n1"],
        "load_nodes_of_kind of messages",
    )
    graph = store.load_graph(sid)
    _expect_equal(
        [n.node_id for n in graph],
        [n.node_id for n in nodes] + ["t2-p0", "m1-p0", "t3-n0", "t3-n1"],
        "load_graph (commit order)",
    )
    _expect_equal(graph[: len(nodes)], nodes, "load_graph nodes (payloads round-trip)")
    _expect_equal(json.loads(str(first_note.payload))["data"]["seen"], "question ✓", "plugin payload JSON")
    before = _snapshot(store, sid)
    on_note = _node("t4", "t4-n0", "t1-p1", Message.user("under a note"), at=_T0 + 4)
    bad_parent = TurnCommit(**{**_fields(_turn(sid, "t4", 4, r3.leaf_id)), "nodes": (on_note,)})
    _expect_raises(
        CommitConflictError, lambda: store.commit_turn(bad_parent), "a message whose parent is a plugin node"
    )
    wrong = [
        Node(**{**_node_fields(on_note), "parent_id": r3.leaf_id, "kind": "conf.note"}),
        Node(**{**_node_fields(last_note), "node_id": "t4-p9", "kind": MESSAGE_KIND}),
    ]
    for node in wrong:
        bad = TurnCommit(**{**_fields(_turn(sid, "t4", 4, r3.leaf_id)), "nodes": (node,)})
        commit_bad = functools.partial(store.commit_turn, bad)
        _expect_raises(CommitConflictError, commit_bad, f"a {node.kind!r} node holding the other payload")
    _expect_unchanged(store, sid, before, "refused commits with plugin nodes")


def check_frame_switch_in_turn(store: Store) -> None:
    """A turn that opens a frame: its nodes before the switch stay in the old frame, the active
    path becomes the new frame's seeds and what follows; ``list_frames`` records the frame;
    nothing of the earlier frame is lost from the graph. Frames that do not fit are refused and
    write nothing: a previous frame that is not the current one, a frame id used before, nodes
    in a third frame or back in the old frame after the switch, a seed that is not a message of
    the commit in the new frame, and (without a frame) a node in another frame.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("frame-turn")
    _open(store, sid, frame_id="frame-0")
    r1 = store.commit_turn(_turn(sid, "t1", 0, None))
    old = _turn(sid, "t2", 1, r1.leaf_id, at=_T0 + 1)
    summary = _node("t2", "t2-s0", None, Message.user("summary of t1 and t2"), frame_id="frame-1", at=_T0 + 1)
    kept = _node("t2", "t2-s1", "t2-s0", old.nodes[-1].payload, frame_id="frame-1", at=_T0 + 1)  # type: ignore[arg-type]
    note = _pnode("t2", "t2-p0", "t2-s0", frame_id="frame-1")
    frame = _frame("frame-1", "frame-0", "t2", "t2-s0", "t2-s1")
    switch = attrs.evolve(old, nodes=(*old.nodes, summary, kept, note), frame=frame)
    store.record_input(PendingInput(session_id=sid, turn_id="t2", message=Message.user("q"), created_at=_T0))
    before = _snapshot(store, sid)
    refused = {
        "a previous frame that is not the current one": attrs.evolve(
            switch, frame=attrs.evolve(frame, previous_frame_id="frame-x")
        ),
        "the current frame's id": attrs.evolve(
            switch, frame=attrs.evolve(frame, frame_id="frame-0"), nodes=old.nodes
        ),
        "a seed outside the commit": attrs.evolve(switch, frame=attrs.evolve(frame, seed_node_ids=("t1-n0",))),
        "a seed in the old frame": attrs.evolve(
            switch, frame=attrs.evolve(frame, seed_node_ids=(old.nodes[0].node_id,))
        ),
        "a plugin node as seed": attrs.evolve(switch, frame=attrs.evolve(frame, seed_node_ids=("t2-p0",))),
        "a node in a third frame": attrs.evolve(
            switch, nodes=(*old.nodes, summary, Node(**{**_node_fields(kept), "frame_id": "frame-2"}))
        ),
        "an old-frame node after a new-frame node": attrs.evolve(
            switch, nodes=(*old.nodes[:-1], summary, old.nodes[-1]), frame=attrs.evolve(frame, seed_node_ids=("t2-s0",))
        ),
        "another key as opener": attrs.evolve(switch, frame=attrs.evolve(frame, opened_by="t9")),
        "no frame record": attrs.evolve(switch, frame=None),
    }
    for what, commit in refused.items():
        _expect_raises(CommitConflictError, functools.partial(store.commit_turn, commit), f"a frame switch with {what}")
        _expect_unchanged(store, sid, before, f"a refused frame switch with {what}")
    result = store.commit_turn(switch)
    _expect_equal((result.head_revision, result.leaf_id), (2, "t2-s1"), "result of a turn that opens a frame")
    _expect_equal(store.get_session(sid).frame_id, "frame-1", "current frame after the switch")
    _expect_equal(store.load_active_path(sid), (summary, kept), "active path after the switch (its seeds)")
    _expect_equal(store.list_frames(sid), [frame], "list_frames after the switch")
    _expect_equal(store.pending_inputs(sid), [], "pending inputs after the switch")
    _expect_equal(store.commit_turn(switch), attrs.evolve(result, replayed=True), "replay of the switching turn")
    graph = store.load_graph(sid)
    _expect_equal(len(graph), 2 + 2 + 3, "graph after the switch (nothing of the old frame is lost)")
    r3 = store.commit_turn(_turn(sid, "t3", 2, "t2-s1", frame_id="frame-1", at=_T0 + 2))
    _expect_equal(
        [n.node_id for n in store.load_active_path(sid)], ["t2-s0", "t2-s1", "t3-n0", "t3-n1"], "path in the new frame"
    )
    reuse = attrs.evolve(
        _turn(sid, "t4", 3, r3.leaf_id, frame_id="frame-0", at=_T0 + 3),
        frame=_frame("frame-0", "frame-1", "t4", "t4-n0"),
    )
    _expect_raises(CommitConflictError, lambda: store.commit_turn(reuse), "reopening the first frame's id")
    reuse1 = attrs.evolve(reuse, nodes=(), frame=_frame("frame-1", "frame-1", "t4"))
    _expect_raises(CommitConflictError, lambda: store.commit_turn(reuse1), "reopening the current frame's id")
    old_frame_turn = _turn(sid, "t4", 3, r3.leaf_id, frame_id="frame-0", at=_T0 + 3)
    _expect_raises(CommitConflictError, lambda: store.commit_turn(old_frame_turn), "a turn back in an old frame")
    next_frame = attrs.evolve(
        _turn(sid, "t4", 3, r3.leaf_id, frame_id="frame-2", at=_T0 + 4),
        frame=_frame("frame-2", "frame-1", "t4", "t4-n0"),
    )
    store.commit_turn(next_frame)
    _expect_equal(store.list_frames(sid), [frame, next_frame.frame], "list_frames, oldest first")
    _expect_equal(store.load_active_path(sid), next_frame.nodes, "active path after a second switch")


def check_frame_switch_in_maintenance(store: Store) -> None:
    """A maintenance commit (a compaction between turns) opens a frame seeded with a summary:
    the next turn's active path is the seeds and what follows. A frame switch without message
    nodes keeps the leaf and leaves the new frame's active path empty.

    Raises:
        AssertionError: the store deviates from the protocol.
    """
    sid = _sid("frame-maint")
    _open(store, sid, frame_id="frame-0")
    leaf: str | None = None
    for i in range(3):
        leaf = store.commit_turn(_turn(sid, f"t{i}", i, leaf, at=_T0 + i)).leaf_id
    summary = _node("c1", "c1-s0", None, Message.user("summary of t0..t2"), frame_id="frame-1", at=_T0 + 5)
    record = _pnode("c1", "c1-p0", leaf, kind="conf.compaction", data={"replaced": 6}, frame_id="frame-1")
    compaction = _maintenance(
        sid,
        "c1",
        3,
        (summary, record),
        usage=_ledger(("compaction", "m-small", 300, 40, 1)),
        frame=_frame("frame-1", "frame-0", "c1", "c1-s0"),
        at=_T0 + 5,
    )
    result = store.commit_maintenance(compaction)
    _expect_equal(
        result,
        CommitResult(session_id=sid, turn_id="c1", head_revision=4, leaf_id="c1-s0"),
        "result of a compaction opening a frame",
    )
    _expect_equal(store.get_session(sid).frame_id, "frame-1", "frame after the compaction")
    _expect_equal(store.load_active_path(sid), (summary,), "active path after the compaction (its seed)")
    _expect_equal(store.list_frames(sid), [compaction.frame], "list_frames after the compaction")
    _expect_equal(store.load_nodes_of_kind(sid, "conf.compaction"), (record,), "the compaction's own record")
    store.commit_turn(_turn(sid, "t3", 4, "c1-s0", frame_id="frame-1", at=_T0 + 6))
    _expect_equal(
        [n.node_id for n in store.load_active_path(sid)], ["c1-s0", "t3-n0", "t3-n1"], "path of the turn after it"
    )
    _expect_equal(store.commit_maintenance(compaction), attrs.evolve(result, replayed=True), "replay of the compaction")
    bare = _maintenance(sid, "c2", 5, frame=_frame("frame-2", "frame-1", "c2", reason="continue_as"), at=_T0 + 7)
    bare_result = store.commit_maintenance(bare)
    _expect_equal((bare_result.head_revision, bare_result.leaf_id), (6, "t3-n1"), "a frame switch without messages")
    head = store.get_session(sid)
    _expect_equal((head.frame_id, head.leaf_id), ("frame-2", "t3-n1"), "head after a frame switch without messages")
    _expect_equal(store.load_active_path(sid), (), "active path of a frame without messages")
    first = store.commit_turn(_turn(sid, "t4", 6, "t3-n1", frame_id="frame-2", at=_T0 + 8))
    _expect_equal(store.load_active_path(sid), store.load_nodes(sid, ("t4-n0", "t4-n1")), "path of its first turn")
    _expect_equal(first.leaf_id, "t4-n1", "leaf of its first turn")
    _expect_equal(len(store.list_frames(sid)), 2, "frames after two switches")


CHECKS: tuple[Callable[[Store], None], ...] = (
    check_open_and_get_session,
    check_delete_session,
    check_list_sessions_order,
    check_session_not_found,
    check_pending_inputs,
    check_commit_clears_pending_input,
    check_commit_cas_conflict,
    check_replayed_commit,
    check_conflicting_recommit,
    check_get_turn,
    check_sessions_with_pending_input,
    check_invalid_commit_writes_nothing,
    check_active_path,
    check_active_path_follows_a_branch,
    check_active_path_stops_at_frame_boundary,
    check_usage_ledger_accumulates,
    check_activity_seq_never_decreases,
    check_text_that_is_not_valid_unicode,
    check_sessions_isolated,
    check_plugin_state,
    check_session_spec_and_children,
    check_lease_claim_renew_release,
    check_lease_expiry_reclaim,
    check_unleased_commit_while_leased,
    check_maintenance_commit,
    check_plugin_nodes,
    check_frame_switch_in_turn,
    check_frame_switch_in_maintenance,
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
