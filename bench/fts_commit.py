"""Cost of the full-text index of message text (schema 4) on a SQLite turn commit, and the
time of one ``search_messages`` query.

Commits N turns of four ~1.1 KB text messages each to a fresh file (``durability="normal"``, so
the fsync does not drown the difference), once with the index's insert trigger dropped and once
with it, alternating twice; prints microseconds per commit and the search time (every message
matches the query: the worst case, all hits sorted before the limit).

Usage: python bench/fts_commit.py [--turns N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lash_kernel.messages import Message, TextPart
from lash_kernel.outcomes import Finished
from lash_kernel.store.base import Node, TurnCommit
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.usage import UsageLedger

TEXT = "lorem ipsum dolor sit amet " * 40


def run(turns: int, *, indexed: bool) -> tuple[float, float]:
    """``(microseconds per commit, search milliseconds)`` for ``turns`` commits."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db", durability="normal")
        if not indexed:
            store._db.conn.execute("DROP TRIGGER message_fts_insert")
        store.open_session("a", mode="standard", frame_id="f0", now=0)
        parent = None
        start = time.perf_counter()
        for r in range(turns):
            nodes = []
            for i in range(4):
                message = Message(role="user" if i % 2 == 0 else "assistant", parts=(TextPart(text=TEXT),))
                nodes.append(Node(node_id=f"{r}-{i}", parent_id=parent, frame_id="f0", turn_id=f"t{r}",
                                  kind="message", payload=message, created_at=0))
                parent = nodes[-1].node_id
            store.commit_turn(TurnCommit(session_id="a", turn_id=f"t{r}", expected_head_revision=r,
                                         nodes=tuple(nodes), usage=UsageLedger(), outcome=Finished(text="x"),
                                         committed_at=r))
        per_commit = (time.perf_counter() - start) / turns * 1e6
        start = time.perf_counter()
        store.search_messages("dolor sit", limit=50)
        search = (time.perf_counter() - start) * 1e3
        store.close()
    return per_commit, search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    args = parser.parse_args()
    for indexed in (False, True, False, True):
        us, ms = run(args.turns, indexed=indexed)
        label = "with the index   " if indexed else "without the index"
        extra = f", search_messages {ms:.1f} ms ({args.turns * 4} hits, limit 50)" if indexed else ""
        print(f"{label}: {us:.0f} us per commit (4 messages x 1.1 KB){extra}")


if __name__ == "__main__":
    main()
