"""Every lash hookspec. Plugin authors: this file is the reference.

Rules for all hooks:
- Implement them with ``@lash_kernel.hookimpl`` and accept only the arguments you use; never
  give an implementation's parameters defaults (pluggy never fills them).
- Hooks are synchronous unless the docstring says "May be async"; those are awaited by the
  driver in pluggy's call order.
- Call order: kernel built-ins first registered (they run last), then entry-point plugins
  sorted by name, then plugins the host passes (they run first).
- An exception from an implementation is wrapped in ``PluginHookError(plugin, hook)``; what
  happens next is stated per hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from lash_kernel.activity import TurnActivity
    from lash_kernel.outcomes import Outcome
    from lash_kernel.prompt import PromptContribution
    from lash_kernel.plugins import ToolRegistrar

PROJECT = "lash"
_hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl"]


# ------------------------------------------------------------------------------------- build
@_hookspec
def lash_register_tools(registry: ToolRegistrar) -> None:
    """Add tools to the core's catalog.

    Called by: ``LashCore`` once, while it builds its tool catalog (after plugins load). Sync.
    Args:
        registry: a registrar bound to the calling plugin; ``registry.add(tool)`` takes a
            ``Tool`` or a plain function (wrapped with ``@tool``). Names must be unique across
            the catalog.
    Returns:
        Nothing; register through ``registry``.
    Raises:
        A duplicate tool name raises ``ConfigError`` naming both plugins. Any exception fails
        ``LashCore`` construction with ``PluginHookError``.
    Added in 0.1.
    """


# ------------------------------------------------------------------------------------- prompt
@_hookspec
def lash_prompt_contributions(session_id: str, tool_names: frozenset[str]) -> list[PromptContribution] | None:  # type: ignore[empty-body]
    """Contribute sections to the system prompt of the next model call.

    Called by: the driver, once per turn, before the first model call. Sync; do no I/O.
    Args:
        session_id: the session the turn belongs to.
        tool_names: names of the tools in the catalog (a contribution may gate on one).
    Returns:
        A list of ``PromptContribution`` (slot, title, priority, content, optional tool gate),
        or None for nothing. Sections are ordered by slot, then priority (higher first), then
        plugin call order.
    Raises:
        Any exception stops the turn as ``Stopped(plugin_abort)`` with the plugin named.
    Added in 0.1.
    """


# ------------------------------------------------------------------------------------- observation
@_hookspec
def lash_on_activity(activity: TurnActivity) -> None:
    """Observe one semantic event of a turn (never the per-token deltas: those are too hot).

    Called by: the driver, for every activity except ``assistant_prose_delta`` and
    ``reasoning_delta``, in stream order. Sync and on the hot path: do no I/O here; buffer and
    flush in ``lash_turn_committed``.
    Args:
        activity: the ``TurnActivity`` (id, correlation_id, seq, event).
    Returns:
        Nothing.
    Raises:
        Exceptions are reported as an ``error`` activity and otherwise ignored; an observer
        never breaks a turn.
    Added in 0.1.
    """


# ------------------------------------------------------------------------------------- lifecycle
@_hookspec
def lash_turn_committed(session_id: str, turn_id: str, outcome: Outcome, head_revision: int) -> None:
    """A turn was committed durably.

    Called by: the driver, once per turn, right after the store commit succeeded. May be async.
    Args:
        session_id: the session.
        turn_id: the committed turn.
        outcome: how the turn ended (``Finished`` or ``Stopped``).
        head_revision: the session's head revision after the commit.
    Returns:
        Nothing.
    Raises:
        Exceptions are reported as an ``error`` activity; the commit stands.
    Added in 0.1.
    """
