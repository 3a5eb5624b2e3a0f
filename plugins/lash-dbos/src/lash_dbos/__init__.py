"""lash-dbos: lash turns as DBOS workflows on PostgreSQL, finished exactly once across worker crashes.

``DbosRunner(core_factory, dsn, concurrency=N)`` is a worker; ``TurnClient(dsn)`` submits turns
from anywhere. Model calls (``JournaledModel``) and tool calls (``journal_tools``) are DBOS steps;
the commit is the kernel's fenced, turn-id-idempotent commit. See the README.

The names below are imported on first use, so loading the plugin's entry point (``lash --help``)
does not import DBOS.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lash_dbos.journal import JournaledModel, journal_tools
    from lash_dbos.leases import WorkerLeases
    from lash_dbos.runner import DEFAULT_APP_VERSION, DEFAULT_QUEUE, DbosRunner, TurnClient

__all__ = ["DEFAULT_APP_VERSION", "DEFAULT_QUEUE", "DbosRunner", "JournaledModel", "TurnClient", "WorkerLeases",
           "journal_tools"]

_HOME = {
    "JournaledModel": "journal", "journal_tools": "journal", "WorkerLeases": "leases",
    "DEFAULT_APP_VERSION": "runner", "DEFAULT_QUEUE": "runner", "DbosRunner": "runner", "TurnClient": "runner",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'lash_dbos' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lash_dbos.{module}"), name)
