"""The single-writer lease on real SQLite files: two OS processes racing for one session, and the
conformance suite catching a store that ignores leases."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from lash_kernel.errors import SessionBusyError
from lash_kernel.store.base import Lease, MaintenanceCommit, TurnCommit
from lash_kernel.store.memory import MemoryStore
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing.conformance import check_store

WINS_PER_PROCESS = 25
BUSY_TIMEOUT_S = 5.0

# One racer: claim the session's lease until it has won WINS times; with each won lease commit
# one turn (expected revision = the head it read), then release. Every claim attempt is logged.
_RACER = textwrap.dedent(
    """
    import json, os, random, sys, time, uuid
    from lash_kernel.errors import SessionBusyError
    from lash_kernel.messages import Message
    from lash_kernel.outcomes import Finished
    from lash_kernel.store.base import Node, TurnCommit
    from lash_kernel.store.sqlite import SqliteStore
    from lash_kernel.usage import UsageLedger

    path, name, go = sys.argv[1], sys.argv[2], sys.argv[5]
    wins_wanted, busy_timeout = int(sys.argv[3]), float(sys.argv[4])
    wins, busy, claim_s = [], 0, []
    with SqliteStore(path, create=False, busy_timeout_s=busy_timeout) as store:
        print("ready", flush=True)
        while not os.path.exists(go):
            time.sleep(0.001)
        deadline = time.monotonic() + 120
        while len(wins) < wins_wanted and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                lease = store.claim_lease("s1", owner=f"{name}:{os.getpid()}", token=uuid.uuid4().hex,
                                          ttl_s=60, now=time.time())
            except SessionBusyError:
                claim_s.append(time.monotonic() - started)
                busy += 1
                time.sleep(random.random() / 1000)
                continue
            claim_s.append(time.monotonic() - started)
            held_from = time.monotonic_ns()
            head = store.get_session("s1")
            k = len(wins)
            node = Node(node_id=f"{name}-{k}", parent_id=head.leaf_id, frame_id="f0", turn_id=f"{name}-t{k}",
                        kind="message", payload=Message.user(f"{name} {k}"), created_at=time.time())
            result = store.commit_turn(TurnCommit(session_id="s1", turn_id=f"{name}-t{k}",
                expected_head_revision=head.head_revision, nodes=(node,), usage=UsageLedger(),
                outcome=Finished(), committed_at=time.time(), lease=lease))
            time.sleep(0.002)  # hold it a moment, so the other racer meets a live lease
            held_to = time.monotonic_ns()
            store.release_lease(lease)
            wins.append({"fencing": lease.fencing, "from": held_from, "to": held_to,
                         "revision": result.head_revision, "turn": result.turn_id, "replayed": result.replayed})
    print(json.dumps({"wins": wins, "busy": busy, "max_claim_s": max(claim_s)}), flush=True)
    """
)


def test_two_processes_race_for_one_lease(tmp_path: Path) -> None:
    db = tmp_path / "race.db"
    go = tmp_path / "go"
    with SqliteStore(db) as store:
        store.open_session("s1", mode="standard", frame_id="f0", now=time.time())
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(db), name, str(WINS_PER_PROCESS), str(BUSY_TIMEOUT_S), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    try:
        for racer in racers:  # both have opened the file before either starts claiming
            assert racer.stdout is not None
            assert racer.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [racer.communicate(timeout=300) for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    reports: list[dict[str, Any]] = []
    for racer, (out, err) in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, err  # a claim that raised anything but SessionBusyError fails here
        reports.append(json.loads(out))
    wins = sorted((w for r in reports for w in r["wins"]), key=lambda w: w["from"])
    total = 2 * WINS_PER_PROCESS
    assert [len(r["wins"]) for r in reports] == [WINS_PER_PROCESS, WINS_PER_PROCESS]
    # at most one holder at any instant: the holding intervals never overlap
    for earlier, later in itertools.pairwise(wins):
        assert earlier["to"] < later["from"], (earlier, later)
    # every claim got the next fencing number, and every commit the next revision, exactly once
    assert [w["fencing"] for w in wins] == list(range(1, total + 1))
    assert [w["revision"] for w in wins] == list(range(1, total + 1))
    assert not any(w["replayed"] for w in wins)
    # the losers were refused at once (SessionBusyError), never blocked past the busy timeout
    assert sum(r["busy"] for r in reports) > 0
    assert max(r["max_claim_s"] for r in reports) < 2 * BUSY_TIMEOUT_S
    with SqliteStore(db) as store:
        turns = store.list_turns("s1")
        assert [(t.turn_id, t.revision) for t in turns] == [(w["turn"], w["revision"]) for w in wins]
        assert len(store.load_active_path("s1")) == total
        lease = store.get_lease("s1")
        assert lease is not None
        assert (lease.fencing, lease.expires_at) == (total, 0.0)


def test_a_claim_is_one_write_transaction_across_connections(tmp_path: Path) -> None:
    """Two stores on one file: the second sees the first's lease at once, and a commit through
    the second store with the first store's lease is accepted (the lease lives in the file)."""
    db = tmp_path / "two.db"
    with SqliteStore(db) as first, SqliteStore(db) as second:
        first.open_session("s1", mode="standard", frame_id="f0", now=1.0)
        lease = first.claim_lease("s1", owner="one", token="t-one", ttl_s=30, now=10.0)
        assert second.get_lease("s1") == lease
        with pytest.raises(SessionBusyError, match="'one' holds its lease"):
            second.claim_lease("s1", owner="two", token="t-two", ttl_s=30, now=20.0)
        taken = second.claim_lease("s1", owner="two", token="t-two", ttl_s=30, now=40.0)
        assert taken.fencing == 2
        assert first.get_lease("s1") == taken


class _IgnoresLeases:
    """A MemoryStore that drops the lease from every commit (so it never fences a stale writer)."""

    def __init__(self) -> None:
        self._inner = MemoryStore()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def commit_turn(self, commit: TurnCommit) -> Any:
        return self._inner.commit_turn(attrs.evolve(commit, lease=None))

    def commit_maintenance(self, commit: MaintenanceCommit) -> Any:
        return self._inner.commit_maintenance(attrs.evolve(commit, lease=None))


class _NoFencingBump:
    """A MemoryStore whose reclaimed leases keep the old fencing number."""

    def __init__(self) -> None:
        self._inner = MemoryStore()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def claim_lease(self, session_id: str, **kwargs: Any) -> Lease:
        lease = self._inner.claim_lease(session_id, **kwargs)
        fixed = attrs.evolve(lease, fencing=1)
        self._inner._sessions[session_id].lease_row = fixed
        return fixed


@pytest.mark.parametrize(
    ("make", "check"),
    [(_IgnoresLeases, "check_lease_expiry_reclaim"), (_NoFencingBump, "check_lease_claim_renew_release")],
)
def test_conformance_catches_broken_leases(make: Any, check: str) -> None:
    with pytest.raises(AssertionError, match=check):
        check_store(make)
