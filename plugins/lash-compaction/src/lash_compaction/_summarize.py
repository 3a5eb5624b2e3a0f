"""Tier 2, the pure part: where to cut, what to ask the summary model, and the summary message.

Rule: pure functions; no hooks, no I/O. ``plugin.py`` makes the model call and opens the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from lash_kernel.plugin import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart

if TYPE_CHECKING:
    from lash_kernel.plugin import ModelRequest

__all__ = [
    "SUMMARY_MARKER",
    "SUMMARY_SECTIONS",
    "SYSTEM_PROMPT",
    "Cut",
    "choose_cut",
    "previous_summary",
    "render_transcript",
    "summary_message",
    "summary_request",
]

#: First line of every summary message; how a later compaction finds the summary to update.
SUMMARY_MARKER = "[lash-compaction summary]"
_HEADER = (
    f"{SUMMARY_MARKER}\n"
    "The earlier part of this conversation was compacted into the summary below; the full "
    "history is kept in the session store. Continue from it.\n\n"
)

#: The fixed template every summary follows, section by section.
SUMMARY_SECTIONS = (
    "Goal",
    "Instructions and constraints",
    "Discoveries",
    "What was done",
    "Open items",
    "Relevant files and identifiers",
)

SYSTEM_PROMPT = (
    "You write the working memory of an AI agent. You get a conversation between a user and "
    "the agent (with tool calls and results) and write a summary the agent will continue from, "
    "instead of the conversation. Be specific and complete: keep names, paths, identifiers, "
    "numbers, decisions and the user's exact constraints; drop chit-chat and raw tool output "
    "that no longer matters. Write only the summary, in this Markdown template:\n\n"
    + "\n".join(f"## {s}" for s in SUMMARY_SECTIONS)
)

_RESULT_CHARS = 2_000


def summary_message(text: str) -> Message:
    """The user message that starts a compacted frame (``SUMMARY_MARKER``, then ``text``)."""
    return Message.user(_HEADER + text.strip())


def previous_summary(messages: Sequence[Message]) -> str | None:
    """The summary text at the start of ``messages`` (a frame this plugin opened), or None."""
    if not messages or messages[0].role != "user":
        return None
    text = messages[0].text
    if not text.startswith(SUMMARY_MARKER):
        return None
    return text[len(_HEADER) :] if text.startswith(_HEADER) else text[len(SUMMARY_MARKER) :].strip()


@attrs.frozen(kw_only=True)
class Cut:
    """Where tier 2 cuts the current frame.

    Attributes:
        start: 1 when ``messages[0]`` is a previous summary (it is updated, not re-summarised),
            else 0.
        index: the first message kept verbatim; ``messages[start:index]`` is summarised.
        previous: the previous summary's text, or None.
    """

    start: int
    index: int
    previous: str | None


def _safe_boundaries(messages: Sequence[Message], start: int) -> list[int]:
    """Indices ``i`` in ``(start, len)`` where no tool call before ``i`` waits for its result."""
    pending: set[str] = set()
    out: list[int] = []
    for i, message in enumerate(messages):
        if i > start and not pending:
            out.append(i)
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                pending.add(part.id)
            elif isinstance(part, ToolResultPart):
                pending.discard(part.call_id)
    return out


def _pick(candidates: list[int], suffix: list[int], keep_tokens: int) -> int | None:
    """The latest candidate keeping at least ``keep_tokens``, else the one keeping the most."""
    enough = [i for i in candidates if suffix[i] >= keep_tokens]
    if enough:
        return max(enough)
    return min(candidates, default=None)


def choose_cut(
    messages: Sequence[Message], sizes: Sequence[int], keep_tokens: int, limit_tokens: int | None = None
) -> Cut | None:
    """Choose where to cut: at a user message, never between a tool call and its result,
    keeping about ``keep_tokens`` of the most recent messages.

    Args:
        messages: the current frame, oldest first.
        sizes: estimated tokens of each message as it is sent (same length as ``messages``).
        keep_tokens: tokens to keep verbatim (the latest user boundary keeping at least this
            many; the earliest one when none keeps that many).
        limit_tokens: the most the kept part may hold (e.g. under the summary threshold), or
            None. When no user boundary keeps at most that (one long turn), the cut moves to
            the start of a later assistant step instead (still never inside a tool call/result
            pair). Without a limit only user boundaries are used.
    Returns:
        The cut, or None when nothing can be summarised (no boundary after the start).
    """
    previous = previous_summary(messages)
    start = 1 if previous is not None else 0
    n = len(messages)
    suffix = [0] * (n + 1)
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] + sizes[i]
    safe = _safe_boundaries(messages, start)
    index = _pick([i for i in safe if messages[i].role == "user"], suffix, keep_tokens)
    if limit_tokens is not None and (index is None or suffix[index] > limit_tokens):
        within = [i for i in safe if suffix[i] <= limit_tokens]
        fallback = _pick(within, suffix, keep_tokens)
        if fallback is not None:
            index = fallback
    if index is None:
        return None
    return Cut(start=start, index=index, previous=previous)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters omitted ...]\n{text[-half:]}"


def render_transcript(messages: Sequence[Message], *, max_chars: int) -> str:
    """The messages as plain text for the summary model; tool results are clipped to 2,000
    characters each, and the oldest messages are dropped when the whole exceeds ``max_chars``."""
    lines: list[str] = []
    for message in messages:
        for part in message.parts:
            if isinstance(part, TextPart) and part.text:
                lines.append(f"[{message.role}] {part.text}")
            elif isinstance(part, ToolCallPart):
                lines.append(f"[assistant calls {part.name} (call {part.id})] {_clip(part.arguments, _RESULT_CHARS)}")
            elif isinstance(part, ToolResultPart):
                flag = " (error)" if part.is_error else ""
                extra = "".join(f"\n{a.note()}" for a in part.attachments)
                output = _clip(part.output, _RESULT_CHARS)
                lines.append(f"[result of {part.name} (call {part.call_id}){flag}] {output}{extra}")
            elif isinstance(part, ReasoningPart) and part.text:
                lines.append(f"[assistant thinking] {_clip(part.text, _RESULT_CHARS)}")
    text = "\n\n".join(lines)
    if len(text) > max_chars:
        text = "[... earlier messages omitted ...]\n\n" + text[len(text) - max_chars :]
    return text


def summary_request(
    to_summarize: Sequence[Message],
    *,
    previous: str | None,
    instructions: str | None,
    model: str,
    max_output_tokens: int,
    max_chars: int,
) -> ModelRequest:
    """The one model call that writes (or updates) the summary.

    Args:
        to_summarize: the messages being replaced (the previous summary excluded).
        previous: the previous summary to update, or None for a first summary.
        instructions: what a person asked to focus on, or None.
        model: model id ("" for the session's).
        max_output_tokens: output cap of the call.
        max_chars: most characters of transcript to send (keeps the call inside the window).
    """
    transcript = render_transcript(to_summarize, max_chars=max_chars)
    if previous is not None:
        prompt = (
            "Here is the current summary, then the conversation that followed it. Update the "
            "summary: keep what is still true, add what is new, remove what is obsolete or done. "
            "Answer with the complete updated summary in the same template.\n\n"
            f"<summary>\n{previous}\n</summary>\n\n<conversation>\n{transcript}\n</conversation>"
        )
    else:
        prompt = f"Summarise this conversation.\n\n<conversation>\n{transcript}\n</conversation>"
    if instructions:
        prompt += f"\n\nThe user asked the summary to focus on: {instructions}"
    from lash_kernel.plugin import ModelRequest  # the model records load with the first summary

    return ModelRequest(
        model=model,
        messages=(Message.user(prompt),),
        system=SYSTEM_PROMPT,
        max_output_tokens=max_output_tokens,
    )
