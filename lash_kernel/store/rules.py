"""The shared commit and lease rules, public for store authors (re-exported by
``lash_kernel.plugin``). Added in 0.3.

A store reads what the rules ask for inside its own transaction, asks ``plan_commit`` /
``plan_claim`` / ``plan_renew`` / ``releases`` what to do, and writes the answer atomically; so
every store decides every commit and every lease exactly as ``MemoryStore`` and ``SqliteStore``
do, and differs only in storage. The rules themselves are documented in
``lash_kernel.store._commit`` (where they are written once); this module only names them.
"""

from __future__ import annotations

from lash_kernel.store._commit import (
    AnyCommit,
    CommitPlan,
    Head,
    RecordedTurn,
    SessionReads,
    commit_hash,
    commit_key,
    plan_claim,
    plan_commit,
    plan_renew,
    releases,
)

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
