"""Performing ``RunTools``: one batch of tool calls, concurrently, with the tool-call hooks.

Rule: every call ends in exactly one ``ToolCallFinished`` handed to ``feed`` as it completes
(the machine puts results back in call order). A tool problem or a failing hook becomes an
error result for the model; only cancellation propagates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import attrs

from lash_kernel.activity import ToolCallProgress
from lash_kernel.directives import BlockToolCall
from lash_kernel.errors import PluginHookError
from lash_kernel.messages import ToolCallPart, ToolResultPart
from lash_kernel.model import ModelRequest, ModelResponse
from lash_kernel.runtime._state import TurnContext
from lash_kernel.runtime.events import ToolCallFinished
from lash_kernel.tools import ToolContext, execute_tool_call

__all__ = ["run_tool_batch"]


async def run_tool_batch(
    ctx: TurnContext, calls: tuple[ToolCallPart, ...], feed: Callable[[ToolCallFinished], object]
) -> None:
    """Run ``calls`` concurrently (one alone needs no task group); ``feed`` each result.

    Raises:
        Only cancellation, or a bug (e.g. ``MachineStateError`` from ``feed``), bare.
    """
    if len(calls) == 1:
        await _run_one(ctx, calls[0], feed)
        return
    try:
        async with anyio.create_task_group() as tg:
            for call in calls:
                tg.start_soon(_run_one, ctx, call, feed)
    except BaseExceptionGroup as group:  # never a tool's own failure: surface the bug bare
        _, rest = group.split(anyio.get_cancelled_exc_class())
        raise _first(rest or group) from None


@attrs.frozen
class _CallServices:
    """``ToolServices`` for one tool call: the core's services, bound to the call's turn."""

    ctx: TurnContext
    call_id: str

    async def complete(
        self, request: ModelRequest | str, *, source: str, model: str | None, client: str | None
    ) -> ModelResponse:
        services = self.ctx.rt.services
        assert services is not None
        return await services.complete(request, source=source, model=model, client=client, turn=self.ctx)

    def open_child_session(self, spec: Any, *, source: str) -> Any:
        services = self.ctx.rt.services
        assert services is not None
        return services.open_child_session(
            spec, source=source, parent_session_id=self.ctx.session_id, parent_turn=self.ctx, call_id=self.call_id
        )


def _first(group: BaseExceptionGroup) -> BaseException:
    """The first leaf exception of a (nested) group."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def _run_one(ctx: TurnContext, call: ToolCallPart, feed: Callable[[ToolCallFinished], object]) -> None:
    """One call: hooks around the tool, traces, progress activities, then ``feed``."""
    span = f"{ctx.turn_id}:t:{call.id}"

    def progress(done: float, total: float | None, message: str | None) -> None:
        event = ToolCallProgress(call_id=call.id, name=call.name, progress=done, total=total, message=message)
        ctx.emit(event, call.id)

    tool_ctx = ToolContext(
        session_id=ctx.session_id, turn_id=ctx.turn_id, call_id=call.id, tool_name=call.name, on_progress=progress,
        services=_CallServices(ctx, call.id) if ctx.rt.services is not None else None, tools=tuple(ctx.tools),
    )
    if ctx.tracing:
        ctx.trace("tool_call.started", span, ctx.turn_id, tool=call.name, call_id=call.id, arguments=call.arguments)
    started = time.perf_counter()
    result = await _tool_result(ctx, call, tool_ctx)
    duration_s = time.perf_counter() - started
    if ctx.hooks.implemented("lash_after_tool_call"):
        try:
            result = await ctx.hooks.after_tool_call(
                session_id=ctx.session_id, turn_id=ctx.turn_id, call=call, result=result, duration_s=duration_s
            )
        except PluginHookError as exc:
            result = ToolResultPart(call_id=call.id, name=call.name, output=str(exc), is_error=True)
    if ctx.tracing:
        ctx.trace(
            "tool_call.completed", span, ctx.turn_id, tool=call.name, call_id=call.id,
            duration_s=duration_s, is_error=result.is_error, output=result.output,
        )
    feed(ToolCallFinished(result=result, duration_s=duration_s))


async def _tool_result(ctx: TurnContext, call: ToolCallPart, tool_ctx: ToolContext) -> ToolResultPart:
    """Run ``lash_before_tool_call``, then the tool (a blocked or failed hook is an error result)."""
    run = call
    if ctx.hooks.implemented("lash_before_tool_call"):
        try:
            decision = await ctx.hooks.before_tool_call(session_id=ctx.session_id, turn_id=ctx.turn_id, call=call)
        except PluginHookError as exc:
            return ToolResultPart(call_id=call.id, name=call.name, output=str(exc), is_error=True)
        if isinstance(decision, BlockToolCall):
            return ToolResultPart(call_id=call.id, name=call.name, output=decision.reason, is_error=True)
        run = decision
    tools = ctx.tools
    result = await execute_tool_call(
        tools.get(run.name), run, tool_ctx, default_timeout_s=ctx.rt.tool_timeout_s, available=tools.names()
    )
    return result if run.name == call.name else attrs.evolve(result, name=call.name)
