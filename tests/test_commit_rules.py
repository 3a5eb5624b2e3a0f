"""The commit rules of ``lash_kernel.store._commit``, tested without any store."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import pytest

from lash_kernel.errors import CommitConflictError, LeaseLostError, SessionBusyError
from lash_kernel.messages import Message, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Finished, Stopped
from lash_kernel.store._commit import (
    CommitPlan,
    Head,
    RecordedTurn,
    commit_hash,
    plan_claim,
    plan_commit,
    plan_renew,
    releases,
)
from lash_kernel.store.base import CommitResult, Frame, Lease, MaintenanceCommit, Node, TurnCommit
from lash_kernel.usage import TokenUsage, UsageKey, UsageLedger


def _commit(*texts: str, parent: str | None = None, turn_id: str = "t1", expected: int = 0) -> TurnCommit:
    messages = [
        Message.user(texts[0] if texts else "What is k1? ünïcode ✓ 😀"),
        Message(role="assistant", parts=(ToolCallPart(id="c1", name="lookup", arguments='{"key":"k1"}'),)),
        Message(role="tool", parts=(ToolResultPart(call_id="c1", name="lookup", output="value of k1"),)),
        Message(role="assistant", parts=(TextPart(text=texts[1] if len(texts) > 1 else "k1 is known."),)),
    ]
    nodes = []
    for i, message in enumerate(messages):
        node_id = f"{turn_id}-n{i}"
        nodes.append(
            Node(node_id=node_id, parent_id=parent, frame_id="f0", turn_id=turn_id, kind="message",
                 payload=message, created_at=1.5)
        )
        parent = node_id
    return TurnCommit(
        session_id="s1",
        turn_id=turn_id,
        expected_head_revision=expected,
        nodes=tuple(nodes),
        usage=UsageLedger.of(
            [(UsageKey(source="turn", model="m"), TokenUsage(input_tokens=120, output_tokens=12,
                                                             cache_read_input_tokens=40), 2)]
        ),
        outcome=Finished(text="k1 is known."),
        committed_at=2.5,
        last_activity_seq=9,
        plugin_state=(("memo", '{"n":1}'),),
    )


@attrs.define
class _Reads:
    """A fake ``SessionReads`` that records what the rules asked."""

    recorded: dict[str, tuple[RecordedTurn, str | None]] = attrs.Factory(dict)
    nodes: set[str] = attrs.Factory(set)
    asked: list[tuple[str, ...]] = attrs.Factory(list)
    kinds: dict[str, str] = attrs.Factory(dict)  # node kinds other than "message"
    frames: set[str] = attrs.Factory(set)
    stored_lease: Lease | None = None

    def recorded_turn(self, turn_id: str) -> RecordedTurn | None:
        entry = self.recorded.get(turn_id)
        return entry[0] if entry else None

    def leaf_after(self, turn_id: str, revision: int) -> str | None:
        return self.recorded[turn_id][1]

    def existing_node_kinds(self, node_ids: tuple[str, ...]) -> Mapping[str, str]:
        self.asked.append(node_ids)
        return {n: self.kinds.get(n, "message") for n in self.nodes}

    def frame_known(self, frame_id: str) -> bool:
        return frame_id in self.frames

    def lease(self) -> Lease | None:
        return self.stored_lease


HEAD0 = Head(revision=0, leaf_id=None, frame_id="f0", activity_seq=0)


# -- the content hash --------------------------------------------------------------------------


def test_commit_hash_is_pinned() -> None:
    # Computed by the 0.1 stores (memory._commit_hash). A change here breaks idempotent
    # re-commits of turns recorded by earlier versions: every such retry would conflict.
    assert commit_hash(_commit()) == "edf1e63f5616c06846b8839dd9910f8b48a69b121053c2984501874639fe44f2"


def test_commit_hash_ignores_ids_time_revision_and_activity_seq() -> None:
    commit = _commit()
    moved = attrs.evolve(commit, session_id="other", expected_head_revision=7, committed_at=99.0,
                         last_activity_seq=1)
    assert commit_hash(moved) == commit_hash(commit)
    assert commit_hash(attrs.evolve(commit, outcome=Stopped(reason="cancelled"))) != commit_hash(commit)
    assert commit_hash(attrs.evolve(commit, plugin_state=())) != commit_hash(commit)
    assert commit_hash(attrs.evolve(commit, usage=UsageLedger())) != commit_hash(commit)


def test_commit_hash_never_raises_on_lone_surrogates_and_stays_lossless() -> None:
    high = _commit("half an emoji \ud83d", "and \udc80")
    other_high = _commit("half an emoji \ud83e", "and \udc80")
    replaced = _commit("half an emoji \ufffd", "and \ufffd")
    digests = {commit_hash(high), commit_hash(other_high), commit_hash(replaced)}
    assert len(digests) == 3  # never confused with each other or with U+FFFD
    assert all(len(d) == 64 for d in digests)
    state = attrs.evolve(high, plugin_state=(("memo\ud800", '"\udfff"'),))
    assert commit_hash(state) != commit_hash(high)


# -- plan_commit -------------------------------------------------------------------------------


def test_plan_of_a_new_turn() -> None:
    commit = _commit()
    reads = _Reads()
    plan = plan_commit(commit, commit_hash(commit), HEAD0, reads)
    assert isinstance(plan, CommitPlan)
    assert plan.head == Head(revision=1, leaf_id="t1-n3", frame_id="f0", activity_seq=9)
    assert plan.content_hash == commit_hash(commit)
    assert (plan.record.revision, plan.record.node_ids) == (1, ("t1-n0", "t1-n1", "t1-n2", "t1-n3"))
    assert (plan.record.outcome, plan.record.committed_at) == (commit.outcome, 2.5)
    assert plan.result() == CommitResult(session_id="s1", turn_id="t1", head_revision=1, leaf_id="t1-n3")
    # one question to the storage, about every node id and parent id, each once
    assert reads.asked == [("t1-n0", "t1-n1", "t1-n2", "t1-n3")]


def test_plan_asks_about_an_outside_parent_and_requires_it() -> None:
    commit = _commit(parent="t0-n3", turn_id="t2", expected=1)
    head = Head(revision=1, leaf_id="t0-n3", frame_id="f0", activity_seq=20)
    reads = _Reads(nodes={"t0-n3"})
    plan = plan_commit(commit, commit_hash(commit), head, reads)
    assert isinstance(plan, CommitPlan)
    assert reads.asked == [("t2-n0", "t2-n1", "t2-n2", "t2-n3", "t0-n3")]
    assert plan.head.activity_seq == 20  # never decreases
    with pytest.raises(CommitConflictError, match="parent 't0-n3' is not in the session"):
        plan_commit(commit, commit_hash(commit), head, _Reads())


def test_plan_of_an_empty_turn_keeps_leaf_and_frame() -> None:
    head = Head(revision=3, leaf_id="x", frame_id="f2", activity_seq=4)
    commit = attrs.evolve(_commit(), nodes=(), expected_head_revision=3, last_activity_seq=0)
    reads = _Reads()
    plan = plan_commit(commit, commit_hash(commit), head, reads)
    assert isinstance(plan, CommitPlan)
    assert plan.head == Head(revision=4, leaf_id="x", frame_id="f2", activity_seq=4)
    assert reads.asked == []  # nothing to check


def test_recorded_turn_is_checked_before_the_head() -> None:
    commit = _commit()
    digest = commit_hash(commit)
    moved_on = Head(revision=5, leaf_id="z", frame_id="f9", activity_seq=0)
    reads = _Reads(recorded={"t1": (RecordedTurn(revision=1, content_hash=digest), "t1-n3")})
    replay = plan_commit(commit, digest, moved_on, reads)
    assert replay == CommitResult(session_id="s1", turn_id="t1", head_revision=1, leaf_id="t1-n3", replayed=True)
    assert reads.asked == []  # a replay writes nothing, so checks nothing
    with pytest.raises(CommitConflictError, match="'t1' was already committed with different content"):
        plan_commit(commit, "0" * 64, moved_on, reads)


def test_stale_head_is_a_conflict() -> None:
    commit = _commit()
    with pytest.raises(CommitConflictError, match="expected head revision 0, actual 2"):
        plan_commit(commit, commit_hash(commit), attrs.evolve(HEAD0, revision=2), _Reads())


def test_reused_node_id_is_a_conflict() -> None:
    commit = _commit()
    with pytest.raises(CommitConflictError, match="adds node 't1-n2', but that node id already exists"):
        plan_commit(commit, commit_hash(commit), HEAD0, _Reads(nodes={"t1-n2"}))


def test_duplicate_and_forward_references_within_a_commit_are_conflicts() -> None:
    commit = _commit()
    dup = attrs.evolve(commit, nodes=(*commit.nodes, commit.nodes[0]))
    with pytest.raises(CommitConflictError, match="'t1-n0', but that node id already exists"):
        plan_commit(dup, commit_hash(dup), HEAD0, _Reads())
    first = attrs.evolve(commit.nodes[0], parent_id="t1-n3")  # a parent that comes later: a cycle
    forward = attrs.evolve(commit, nodes=(first, *commit.nodes[1:]))
    with pytest.raises(CommitConflictError, match="parent 't1-n3' is not in the session"):
        plan_commit(forward, commit_hash(forward), HEAD0, _Reads())


# -- 0.2: frames, leases, maintenance commits ----------------------------------------------------


def test_commit_hash_covers_the_frame_not_the_lease_and_tells_maintenance_from_turns() -> None:
    commit = _commit()
    frame = Frame(frame_id="f1", previous_frame_id="f0", reason="compaction", opened_by="t1", created_at=1.0)
    lease = Lease(session_id="s1", owner="me", token="tok", fencing=3, expires_at=9.0)
    assert commit_hash(attrs.evolve(commit, lease=lease)) == commit_hash(commit)
    assert commit_hash(attrs.evolve(commit, frame=frame)) != commit_hash(commit)
    maintenance = MaintenanceCommit(
        session_id="s1", key="t1", expected_head_revision=0, nodes=commit.nodes, usage=commit.usage, committed_at=2.5
    )
    assert commit_hash(maintenance) != commit_hash(attrs.evolve(commit, plugin_state=()))
    assert commit_hash(attrs.evolve(maintenance, frame=frame)) != commit_hash(maintenance)


def test_lease_is_checked_after_replay_and_before_the_head() -> None:
    commit = _commit()
    digest = commit_hash(commit)
    live = Lease(session_id="s1", owner="other", token="theirs", fencing=2, expires_at=100.0)
    replayed = _Reads(recorded={"t1": (RecordedTurn(revision=1, content_hash=digest), "t1-n3")}, stored_lease=live)
    assert plan_commit(commit, digest, HEAD0, replayed) == CommitResult(
        session_id="s1", turn_id="t1", head_revision=1, leaf_id="t1-n3", replayed=True
    )
    stale_head = attrs.evolve(HEAD0, revision=5)
    with pytest.raises(SessionBusyError, match="'other' holds its lease"):
        plan_commit(commit, digest, stale_head, _Reads(stored_lease=live))
    mine = attrs.evolve(live, token="mine", fencing=1)
    with pytest.raises(LeaseLostError, match="fencing 1"):
        plan_commit(attrs.evolve(commit, lease=mine), digest, stale_head, _Reads(stored_lease=live))
    expired = attrs.evolve(live, expires_at=2.5)  # expires_at == committed_at: no longer live
    assert isinstance(plan_commit(commit, digest, HEAD0, _Reads(stored_lease=expired)), CommitPlan)
    leased = attrs.evolve(commit, lease=live)
    assert isinstance(plan_commit(leased, digest, HEAD0, _Reads(stored_lease=expired)), CommitPlan)


def test_plugin_nodes_never_move_the_leaf() -> None:
    commit = _commit()
    note = Node(node_id="t1-p0", parent_id="t1-n3", frame_id="f0", turn_id="t1", kind="probe.note",
                payload='{"kind":"probe.note","data":{}}', created_at=1.5)
    with_note = attrs.evolve(commit, nodes=(*commit.nodes, note))
    plan = plan_commit(with_note, commit_hash(with_note), HEAD0, _Reads())
    assert isinstance(plan, CommitPlan)
    assert (plan.head.leaf_id, plan.node_ids[-1]) == ("t1-n3", "t1-p0")
    only = attrs.evolve(commit, nodes=(attrs.evolve(note, parent_id="x"),), expected_head_revision=1)
    head = Head(revision=1, leaf_id="x", frame_id="f0", activity_seq=0)
    plan = plan_commit(only, commit_hash(only), head, _Reads(nodes={"x"}))
    assert isinstance(plan, CommitPlan) and plan.head.leaf_id == "x"
    under_note = attrs.evolve(commit.nodes[0], node_id="t1-m", parent_id="x")
    bad = attrs.evolve(commit, nodes=(under_note,), expected_head_revision=1)
    with pytest.raises(CommitConflictError, match=r"whose parent 'x' is a 'probe\.note' node"):
        plan_commit(bad, commit_hash(bad), head, _Reads(nodes={"x"}, kinds={"x": "probe.note"}))


def test_claim_renew_release_rules() -> None:
    first = plan_claim("s1", None, owner="a", token="ta", ttl_s=30, now=100.0)
    assert first == Lease(session_id="s1", owner="a", token="ta", fencing=1, expires_at=130.0)
    assert plan_claim("s1", first, owner="a", token="ta", ttl_s=30, now=110.0).fencing == 1
    with pytest.raises(SessionBusyError):
        plan_claim("s1", first, owner="b", token="tb", ttl_s=30, now=129.9)
    assert plan_claim("s1", first, owner="b", token="tb", ttl_s=30, now=130.0).fencing == 2
    assert plan_renew(first, first, ttl_s=60, now=200.0).expires_at == 260.0  # expired, nobody reclaimed
    released = attrs.evolve(first, expires_at=0.0)
    with pytest.raises(LeaseLostError, match="released"):
        plan_renew(first, released, ttl_s=60, now=200.0)
    assert releases(first, first) and not releases(attrs.evolve(first, fencing=2), first)
