"""What turn and context hooks may return to steer a turn.

Rule: hooks never mutate kernel state; they return one of these values and the driver feeds it
to the machine (or to the request it is building). All are frozen attrs records.
"""

from __future__ import annotations

from typing import TypeAlias

import attrs

from lash_kernel.messages import Message

__all__ = ["AbortTurn", "BlockToolCall", "CheckpointDirective", "CompactionPlan", "InjectMessages", "OpenFrame"]


@attrs.frozen(kw_only=True)
class InjectMessages:
    """From ``lash_checkpoint``: add messages to the conversation and call the model again.

    Attributes:
        messages: messages appended after the current point (usually role ``user``); they are
            committed with the turn. Injecting at ``before_finish`` costs one more model call,
            which counts against ``max_turns``.
    """

    messages: tuple[Message, ...]

    def __attrs_post_init__(self) -> None:
        if not self.messages:
            raise ValueError("InjectMessages needs at least one message")
        for m in self.messages:
            if m.role not in ("user", "assistant") or m.tool_calls:
                raise ValueError("injected messages must be user or assistant messages without tool calls")


@attrs.frozen(kw_only=True)
class AbortTurn:
    """From ``lash_checkpoint`` (or raised as an exception by ``lash_before_turn``): stop now.

    Attributes:
        reason: shown to the host in ``Stopped(plugin_abort, detail=reason)``.
    """

    reason: str


@attrs.frozen(kw_only=True)
class OpenFrame:
    """Open a new agent frame: from here on the session's context is ``seed`` and what follows.

    Returned by ``lash_compact`` (before a model call) or ``lash_checkpoint``, or passed to
    ``PluginHost.commit_maintenance(frame=...)`` between turns. The switch is committed atomically with the turn
    (or as a maintenance commit); nothing of the old frame is rewritten, and
    ``Session.graph()`` still returns it. Added in 0.2.

    Attributes:
        reason: an open label stored with the frame: ``compaction``, ``continue_as``, ...
        seed: the messages the new frame starts with (e.g. a summary as a user message, then
            the most recent messages kept verbatim). Tool results must follow their calls
            (else ``ValueError``); a call without its result is answered with an
            "interrupted" error result, as on resume.
        frame_id: the new frame's id (unique within the session), or None for a fresh one
            from the core. A plugin that reports the frame it opened (e.g. in an activity)
            picks its own. Added in 0.2.
    """

    reason: str
    seed: tuple[Message, ...]
    frame_id: str | None = None

    def __attrs_post_init__(self) -> None:
        if not self.reason:
            raise ValueError("OpenFrame needs a reason label")
        if self.frame_id is not None and not self.frame_id:
            raise ValueError("OpenFrame.frame_id must be None or a non-empty id")
        called: set[str] = set()
        for message in self.seed:
            called.update(c.id for c in message.tool_calls)
            for part in message.parts:
                call_id = getattr(part, "call_id", None)
                if call_id is not None and call_id not in called:
                    raise ValueError(f"OpenFrame seed has a tool result for call {call_id!r} without its call")


CheckpointDirective: TypeAlias = InjectMessages | AbortTurn | OpenFrame


@attrs.frozen(kw_only=True)
class BlockToolCall:
    """From ``lash_before_tool_call``: do not run the tool; the model sees an error result.

    Attributes:
        reason: the error text the model sees as the tool's result.
    """

    reason: str


@attrs.frozen(kw_only=True)
class CompactionPlan:
    """From ``lash_plan_compaction``: replace older messages in the prompt view with a summary.

    Attributes:
        keep_last: number of most recent messages kept verbatim (>= 0); the kernel moves the
            cut earlier if it would separate a tool call from its result.
        summary: text standing in for everything before the kept messages; sent as a user
            message at the start of the view.
    """

    keep_last: int
    summary: str

    def __attrs_post_init__(self) -> None:
        if self.keep_last < 0:
            raise ValueError(f"keep_last must be >= 0, got {self.keep_last}")
