"""Turn preparation: admission, then everything settled before the machine exists.

Rule: ``admit`` is the only write before the commit (the durable pending input); ``prepare``
collects the turn's tool catalog, runs ``lash_before_turn`` and assembles the system prompt,
and returns the settled ``MachineConfig``. A failing plugin never raises from here: it becomes
the ``abort`` reason, which the driver feeds to the machine as ``TurnFailed(abort_reason)``.

A turn run with ``output_schema=`` gets the kernel's final-result tool added to its catalog
here (after the system prompt, which plugins contribute to for their own tools). A catalog
tool of the same name stops the turn with ``Stopped(runtime_error)`` naming its provider
(``Session.turn`` already refuses a static tool of that name with ``ConfigError``).
"""

from __future__ import annotations

import hashlib

import attrs

from lash_kernel.activity import ActivityEvent, ErrorReported
from lash_kernel.errors import CommitConflictError, ConfigError, PluginHookError
from lash_kernel.messages import Message
from lash_kernel.outcomes import StopReason
from lash_kernel.prompt import assemble_prompt
from lash_kernel.runtime._final_result import final_result_tool
from lash_kernel.runtime._state import TurnContext
from lash_kernel.runtime.machine import MachineConfig
from lash_kernel.store.base import PendingInput
from lash_kernel.text import valid_text
from lash_kernel.tools import ToolRegistry

__all__ = ["Prepared", "admit", "prepare"]


@attrs.frozen(kw_only=True)
class Prepared:
    """A turn ready to start.

    Attributes:
        config: the settled machine config (system prompt, tools, checkpoints).
        tools: the turn's tool catalog (static tools plus tool providers' current ones).
        notices: activities to publish first (tool providers that failed, in provider order).
        abort: why a plugin stopped the turn before its first model call, or None.
        abort_reason: the stop reason for ``abort``: ``plugin_abort``, or ``runtime_error``
            when the catalog already holds a tool named like the final-result tool.
    """

    config: MachineConfig
    tools: ToolRegistry
    notices: tuple[ActivityEvent, ...] = ()
    abort: str | None = None
    abort_reason: StopReason = "plugin_abort"


def admit(ctx: TurnContext, user_input: Message) -> None:
    """Admit the turn's input durably, unless the turn id is already committed.

    Raises:
        CommitConflictError: the session already committed a turn with this id; nothing was
            admitted and no model was called.
        StoreError: the store failed.
    """
    rt = ctx.rt
    committed = rt.store.get_turn(ctx.session_id, ctx.turn_id)
    if committed is not None:
        raise CommitConflictError(
            f"session {ctx.session_id!r}: turn {ctx.turn_id!r} is already committed "
            f"(revision {committed.revision}); start a new turn with a new turn id"
        )
    rt.store.record_input(
        PendingInput(session_id=ctx.session_id, turn_id=ctx.turn_id, message=user_input, created_at=rt.clock())
    )


async def prepare(ctx: TurnContext, user_input: Message, config: MachineConfig) -> Prepared:
    """Collect the catalog, ask ``lash_before_turn``, assemble the system prompt.

    Args:
        ctx: the turn.
        user_input: the admitted input.
        config: the turn's parameters from the session (model, limits, and in ``system`` the
            session spec's base prompt or None); the system prompt, tools (filtered by the
            spec's allow/deny lists) and checkpoints are settled here.
    Returns:
        The settled turn. A plugin that failed or stopped the turn sets ``abort``; so does a
        catalog tool named like the final-result tool (``abort_reason="runtime_error"``).
    """
    hooks = ctx.hooks
    tools, system = ctx.rt.tools, config.system
    notices: tuple[ActivityEvent, ...] = ()
    abort: str | None = None
    try:
        if ctx.rt.catalog is not None:
            tools, failures = await ctx.rt.catalog()
            notices = tuple(ErrorReported(kind="tool_provider", message=m) for m in failures)
        spec = ctx.session.spec
        if spec.tools_allow is not None or spec.tools_deny:
            tools = tools.filtered(spec.allows)
        if hooks.implemented("lash_before_turn"):
            stop = await hooks.before_turn(session_id=ctx.session_id, turn_id=ctx.turn_id, user_input=user_input)
            abort = stop.reason if stop is not None else None
        if abort is None:
            system = _system_prompt(ctx, tools, config.system)
    except PluginHookError as exc:
        abort = str(exc)
    reason: StopReason = "plugin_abort"
    if abort is None and config.final_tool is not None and config.output_schema is not None:
        name = config.final_tool
        if name in tools:
            abort, reason = _final_tool_clash(name, tools.provider_of(name)), "runtime_error"
        else:
            try:
                final = final_result_tool(config.output_schema, name=name)
            except ConfigError as exc:  # Session.turn checks it; a hand-built config may not
                abort, reason = str(exc), "runtime_error"
            else:
                tools = tools.copy()
                tools.add(final, provider="kernel")
    settled = attrs.evolve(
        config, system=system, tools=tools.specs(), checkpoints=hooks.implemented("lash_checkpoint")
    )
    return Prepared(config=settled, tools=tools, notices=notices, abort=abort, abort_reason=reason)


def _final_tool_clash(name: str, provider: str | None) -> str:
    return (
        f"a tool named {name!r} (from {provider!r}) clashes with the kernel's final-result tool "
        "of this turn with output_schema; rename that tool or run the turn without output_schema"
    )


def _system_prompt(ctx: TurnContext, tools: ToolRegistry, base: str | None) -> str | None:
    """The base prompt (the session spec's, else the host's) plus plugin contributions for this
    catalog. Raises ``PluginHookError``."""
    names = frozenset(tools.names())
    contributions = ctx.hooks.prompt_contributions(session_id=ctx.session_id, tool_names=names)
    system = assemble_prompt(base if base is not None else ctx.rt.prompt, contributions, names)
    system = valid_text(system) if system is not None else None
    if ctx.tracing:
        digest = hashlib.sha256(system.encode()).hexdigest() if system else ""
        ctx.trace("prompt.built", ctx.turn_id, None, sha256=digest, chars=len(system or ""), tool_count=len(names))
    return system
