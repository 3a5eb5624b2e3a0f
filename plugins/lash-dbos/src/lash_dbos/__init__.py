"""lash-dbos: lash turns as DBOS workflows on PostgreSQL, finished exactly once across worker crashes.

``DbosRunner(core_factory, dsn, concurrency=N)`` is a worker; ``TurnClient(dsn)`` submits turns
from anywhere. Model calls (``JournaledModel``) and tool calls (``journal_tools``) are DBOS steps;
the commit is the kernel's fenced, turn-id-idempotent commit. See the README.
"""

from __future__ import annotations

from lash_dbos.journal import JournaledModel, journal_tools
from lash_dbos.leases import WorkerLeases
from lash_dbos.runner import DEFAULT_APP_VERSION, DEFAULT_QUEUE, DbosRunner, TurnClient

__all__ = ["DEFAULT_APP_VERSION", "DEFAULT_QUEUE", "DbosRunner", "JournaledModel", "TurnClient", "WorkerLeases",
           "journal_tools"]
