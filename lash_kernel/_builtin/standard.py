"""Built-in plugin ``lash.standard``: the ``standard`` execution mode and the ``turn`` usage source.

The standard mode uses the provider's native tool calling: ``TurnMachine``. Registered through
the ordinary hooks, so ``lash plugins`` shows where the kernel's defaults come from.
"""

from __future__ import annotations

from lash_kernel.hookspecs import hookimpl
from lash_kernel.messages import Message
from lash_kernel.plugin import ModeRegistrar, UsageSourceRegistrar
from lash_kernel.runtime.machine import MachineConfig, TurnMachine

__all__ = ["lash_register_modes", "lash_register_usage_sources", "standard_machine"]


def standard_machine(config: MachineConfig, history: tuple[Message, ...]) -> TurnMachine:
    """The ``standard`` mode's machine factory.

    Args:
        config: the turn's settled parameters (system prompt and tools included).
        history: the session's committed messages, already repaired when the session loaded.
    Returns:
        A ``TurnMachine`` that does not repair ``history`` again (per-turn cost stays
        independent of history length).
    """
    return TurnMachine(config=config, history=history, repair=False)


@hookimpl
def lash_register_modes(registry: ModeRegistrar) -> None:
    """Register ``standard``."""
    registry.add("standard", standard_machine, description="native tool calling")


@hookimpl
def lash_register_usage_sources(registry: UsageSourceRegistrar) -> None:
    """Declare ``turn``: the session's own model calls."""
    registry.add("turn", "the session's own model calls")
