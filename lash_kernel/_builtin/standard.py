"""Built-in plugin ``lash.standard``: the ``standard`` execution mode and the ``turn`` usage source.

The standard mode uses the provider's native tool calling: ``TurnMachine``. Registered through
the ordinary hooks, so ``lash plugins`` shows where the kernel's defaults come from. It also
checks that every usage-ledger source a turn spent tokens under was declared
(``lash_after_turn``), and declares the kernel's store URL schemes, ``sqlite`` and ``memory``
(``lash_register_stores``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lash_kernel.hookspecs import hookimpl
from lash_kernel.plugin import StashKey

if TYPE_CHECKING:  # the machine loads with the first turn, not when the CLI lists commands
    from lash_kernel.messages import Message
    from lash_kernel.plugin import ModeRegistrar, PluginHost, Store, StoreRegistrar, UsageSourceRegistrar
    from lash_kernel.runtime.machine import MachineConfig, TurnMachine
    from lash_kernel.usage import UsageLedger

__all__ = [
    "lash_after_turn",
    "lash_register_modes",
    "lash_register_stores",
    "lash_register_usage_sources",
    "standard_machine",
]

_log = logging.getLogger("lash")

#: Undeclared sources already warned about on a core (one warning per core and source).
_WARNED = StashKey[set[str]]()


def standard_machine(config: MachineConfig, history: tuple[Message, ...]) -> TurnMachine:
    """The ``standard`` mode's machine factory.

    Args:
        config: the turn's settled parameters (system prompt and tools included).
        history: the session's committed messages, already repaired when the session loaded.
    Returns:
        A ``TurnMachine`` that does not repair ``history`` again (per-turn cost stays
        independent of history length).
    """
    from lash_kernel.runtime.machine import TurnMachine

    return TurnMachine(config=config, history=history, repair=False)


@hookimpl
def lash_register_modes(registry: ModeRegistrar) -> None:
    """Register ``standard``."""
    registry.add("standard", standard_machine, description="native tool calling")


@hookimpl
def lash_register_usage_sources(registry: UsageSourceRegistrar) -> None:
    """Declare ``turn`` (the session's own model calls) and ``child`` (child sessions' default)."""
    registry.add("turn", "the session's own model calls")
    registry.add("child", "model calls of child sessions opened without a source of their own")


def _open_sqlite(url: str) -> Store:
    """``sqlite:///abs/path.db`` (or ``sqlite:rel.db``, ``sqlite://:memory:``): a ``SqliteStore``."""
    from pathlib import Path

    from lash_kernel.runtime.stores import sqlite_path
    from lash_kernel.store.sqlite import SqliteStore

    path = sqlite_path(url)
    return SqliteStore(path if path == ":memory:" else Path(path).expanduser())


def _open_memory(url: str) -> Store:
    """``memory://``: a fresh ``MemoryStore`` (nothing is durable)."""
    from lash_kernel.store.memory import MemoryStore

    return MemoryStore()


@hookimpl
def lash_register_stores(registry: StoreRegistrar) -> None:
    """Declare ``sqlite`` (a ``SqliteStore`` file) and ``memory`` (a ``MemoryStore``)."""
    registry.add("sqlite", _open_sqlite, "SQLite file: sqlite:///absolute/path.db or sqlite:relative.db")
    registry.add("memory", _open_memory, "in-process MemoryStore, not durable: memory://")


@hookimpl
def lash_after_turn(host: PluginHost, usage: UsageLedger) -> None:
    """Warn (logger ``lash``, once per core and source) about ledger rows whose source no
    plugin declared with ``lash_register_usage_sources``."""
    declared = host.usage_sources
    for key, _, _ in usage.entries:
        if key.source in declared:
            continue
        warned = host.stash.setdefault(_WARNED, set())
        if key.source in warned:
            continue
        warned.add(key.source)
        _log.warning(
            "usage source %r (model %r) was not declared by any plugin; declare it in "
            "lash_register_usage_sources (declared: %s)",
            key.source, key.model, ", ".join(sorted(declared)) or "none",
        )
