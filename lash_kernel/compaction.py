"""Applying a ``CompactionPlan`` to a prompt view (the kernel's part of compaction).

Rule: pure functions over message tuples; nothing here is persisted. Plugins decide *when* and
*what* (``lash_plan_compaction``); the kernel only cuts the view safely.
"""

from __future__ import annotations

from lash_kernel.directives import CompactionPlan
from lash_kernel.messages import Message

__all__ = ["apply_compaction"]


def apply_compaction(messages: tuple[Message, ...], plan: CompactionPlan) -> tuple[Message, ...]:
    """Replace all but the last ``plan.keep_last`` messages with one summary message.

    The cut moves earlier while it would start the kept part with a tool message (whose call
    would then be missing), so tool calls and their results stay together.

    Args:
        messages: the prompt view, oldest first.
        plan: how many messages to keep and the summary text.
    Returns:
        ``(summary user message, *kept)``, or ``messages`` unchanged when nothing would be cut.
    """
    cut = max(len(messages) - plan.keep_last, 0)
    while 0 < cut < len(messages) and messages[cut].role == "tool":
        cut -= 1
    if cut == 0:
        return messages
    summary = Message.user(f"[Summary of the earlier conversation]\n{plan.summary}")
    return (summary, *messages[cut:])
