"""The ``spawn_agent`` tool: one child agent per call, in a durable child session.

Rule: a child's failure never fails the parent's turn. Every way a child can end badly (a stop
reason, an error raised by its turn, an invalid request) becomes an error result for the
parent's model naming the child session; only cancellation propagates (the kernel then commits
the child's turn as ``Stopped(cancelled)``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import anyio
import attrs

from lash_kernel.plugin import (
    Finished,
    LashError,
    PluginHost,
    StashKey,
    Stopped,
    Tool,
    ToolContext,
    ToolError,
    TurnActivity,
    tool,
)
from lash_subagents._capabilities import SPAWN_TOOL, Capability, child_spec

__all__ = ["SOURCE", "Settings", "describe", "make_spawn_tool", "progress_message"]

#: The usage source of every child's model calls.
SOURCE = "subagent"

#: Per-session: the semaphore bounding that session's running spawns.
_SEMAPHORE = StashKey[anyio.Semaphore]()


@attrs.frozen(kw_only=True)
class Settings:
    """What ``spawn_agent`` runs with on one core.

    Attributes:
        capabilities: by name, in the order they are listed to the model.
        max_depth: deepest subagent depth (root = 0).
        max_concurrent: spawns of one session running at once.
    """

    capabilities: Mapping[str, Capability]
    max_depth: int = 5
    max_concurrent: int = 4


def describe(settings: Settings) -> str:
    """``spawn_agent``'s description: what it does and each capability's one line."""
    lines = [
        "Delegate a task to a subagent: a child agent with its own fresh conversation works on `task` "
        "and its final answer comes back as this tool's result (with `output_schema`, a JSON value "
        "matching that JSON Schema). The child does not see your conversation: put what it needs in "
        "`task` or `context`. Call it several times in one reply to run subagents in parallel "
        f"(at most {settings.max_concurrent} at once).",
        "Capabilities:",
    ]
    for cap in settings.capabilities.values():
        lines.append(f"- {cap.name}: {cap.description}" if cap.description else f"- {cap.name}")
    return "\n".join(lines)


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def progress_message(activity: TurnActivity) -> str | None:
    """A one-line status for a child's activity, or None for activities not worth showing
    (prose and reasoning deltas, usage: the kernel reports a child's usage itself)."""
    event = activity.event
    kind = event.KIND
    if kind == "model_request_started":
        return "thinking"
    if kind == "tool_call_started":
        return f"calling {event.name}"  # type: ignore[union-attr]
    if kind == "tool_call_completed":
        return f"{event.name} failed" if event.is_error else f"{event.name} done"  # type: ignore[union-attr]
    if kind == "tool_call_progress":
        return event.message or f"{event.name}: {event.progress:g}"  # type: ignore[union-attr]
    if kind == "retry_status":
        return f"retrying: {_short(event.reason)}"  # type: ignore[union-attr]
    if kind == "error":
        return f"{event.kind} error: {_short(event.message)}"  # type: ignore[union-attr]
    if kind == "turn_finished":
        outcome = event.outcome  # type: ignore[union-attr]
        return "finished" if isinstance(outcome, Finished) else f"stopped: {outcome.reason}"
    return None


def _prompt(task: str, context: str | None) -> str:
    if context:
        return f"Context:\n{context}\n\nTask:\n{task}"
    return task


def _stopped(capability: str, child_id: str, outcome: Stopped) -> str:
    detail = f": {outcome.detail}" if outcome.detail else ""
    return f"subagent ({capability}, child session {child_id}) stopped: {outcome.reason}{detail}"


def make_spawn_tool(host: PluginHost, settings: Settings) -> Tool:
    """Build the ``spawn_agent`` tool of one core.

    Args:
        host: the core's plugin host (session heads and specs, per-session stashes).
        settings: capabilities and limits.
    Returns:
        The tool. Its result is the child's final answer text, or its value as JSON text for a
        call with ``output_schema``; a child that stops, fails or is refused gives a
        ``ToolError`` result naming the reason (and the child session once there is one).
    """

    async def spawn_agent(
        task: str,
        ctx: ToolContext,
        capability: str = "explore",
        output_schema: dict[str, Any] | None = None,
        context: str | None = None,
    ) -> str:
        """Run a subagent.

        Args:
            task: what the subagent should do, self-contained.
            capability: which kind of subagent (see the list above).
            output_schema: a JSON Schema; the subagent then returns a JSON value matching it.
            context: background the subagent needs (it does not see your conversation).
        """
        cap = settings.capabilities.get(capability)
        if cap is None:
            raise ToolError(f"unknown capability {capability!r}; available: {', '.join(settings.capabilities)}")
        if output_schema is not None:
            import jsonschema  # on the first call, not when lash --help imports the plugin

            try:
                jsonschema.Draft202012Validator.check_schema(output_schema)
            except jsonschema.SchemaError as exc:
                raise ToolError(f"output_schema is not a valid JSON Schema: {exc.message}") from None
        parent_info = host.session_info(ctx.session_id)
        depth = parent_info.depth + 1
        if depth > settings.max_depth:
            raise ToolError(
                f"depth limit: this session is at depth {parent_info.depth} and subagents may be nested "
                f"at most {settings.max_depth} deep; do the task yourself"
            )
        parent_tools = ctx.tools or tuple(t for t in host.tools if host.session_spec(ctx.session_id).allows(t.name))
        spec = child_spec(
            host.session_spec(ctx.session_id), parent_tools, cap, depth=depth, max_depth=settings.max_depth
        )
        stash = host.session_stash(ctx.session_id)
        semaphore = stash.get(_SEMAPHORE, None)
        if semaphore is None:
            semaphore = stash[_SEMAPHORE] = anyio.Semaphore(settings.max_concurrent)
        async with semaphore:
            with ctx.open_child_session(spec, source=SOURCE) as child:
                label = f"[{cap.name} {child.id[:8]}]"
                try:
                    turn = child.turn(_prompt(task, context), output_schema=output_schema)
                    step = 0
                    async for activity in turn.stream():
                        message = progress_message(activity)
                        if message is not None:
                            step += 1
                            ctx.report_progress(step, None, f"{label} {message}")
                    result = turn.result
                except LashError as exc:
                    raise ToolError(
                        f"subagent ({cap.name}, child session {child.id}) failed: {type(exc).__name__}: {exc}"
                    ) from None
        outcome = result.outcome
        if isinstance(outcome, Stopped):
            raise ToolError(_stopped(cap.name, child.id, outcome))
        if output_schema is None:
            return result.text
        if not isinstance(outcome, Finished) or outcome.output != "final_value":
            raise ToolError(f"subagent ({cap.name}, child session {child.id}) gave no value for output_schema")
        return outcome.value_json or json.dumps(result.value)

    return tool(spawn_agent, name=SPAWN_TOOL, description=describe(settings))

