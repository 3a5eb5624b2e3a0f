"""lash-compaction: long sessions that never overflow the context window.

Tier 1 replaces old tool results by stubs in the prompt view (never in the store); tier 2
summarises the start of the current agent frame with one model call (usage source
``compaction``) and opens a new frame seeded with the summary and the most recent messages.
The full history stays in the store. Installed, it is on for every core (``[plugins.compaction]``
configures it); ``Session.compact()`` and ``lash sessions compact ID`` compact by hand.
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lash_compaction._config import DEFAULT_WINDOWS, CompactionConfig, window_for
    from lash_compaction._records import CompactionFinished, CompactionRecord, CompactionStarted
    from lash_compaction._summarize import SUMMARY_MARKER, SUMMARY_SECTIONS, previous_summary

#: Each public name and its module, imported on first use: the entry point imports this
#: package, and ``lash --help`` imports every installed plugin's entry point.
_EXPORTS = {
    "CompactionConfig": "lash_compaction._config",
    "CompactionFinished": "lash_compaction._records",
    "CompactionRecord": "lash_compaction._records",
    "CompactionStarted": "lash_compaction._records",
    "DEFAULT_WINDOWS": "lash_compaction._config",
    "SUMMARY_MARKER": "lash_compaction._summarize",
    "SUMMARY_SECTIONS": "lash_compaction._summarize",
    "previous_summary": "lash_compaction._summarize",
    "window_for": "lash_compaction._config",
}

__all__ = [
    "DEFAULT_WINDOWS",
    "SUMMARY_MARKER",
    "SUMMARY_SECTIONS",
    "CompactionConfig",
    "CompactionFinished",
    "CompactionRecord",
    "CompactionStarted",
    "__version__",
    "previous_summary",
    "window_for",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lash_compaction' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
