"""Token estimates and tier 1: tool results cleared in the prompt view (never in the store).

Rule: pure functions over message tuples; no hooks, no I/O, no clock.

Estimates are UTF-8 bytes / 4 per text (plus a few tokens per message and part), an image
attachment counts ``IMAGE_TOKENS``. The plugin corrects them with what the provider reported
for the previous request (see ``plugin.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from lash_kernel.plugin import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart

__all__ = [
    "IMAGE_TOKENS",
    "Clearing",
    "apply_clearing",
    "estimate",
    "message_tokens",
    "next_clearing",
    "stub_text",
]

#: Tokens one image attachment is counted as (providers bill roughly 1,000 for a mid-size image).
IMAGE_TOKENS = 1_000
_PER_MESSAGE = 4
_PER_PART = 2


def _text_tokens(text: str) -> int:
    return (len(text.encode("utf-8", "surrogatepass")) + 3) // 4


def _attachment_tokens(result: ToolResultPart) -> int:
    total = 0
    for a in result.attachments:
        total += IMAGE_TOKENS if a.is_image else (len(a.data) * 3 // 4 + 3) // 4
    return total


def part_tokens(part: object) -> int:
    """Estimated tokens of one message part."""
    if isinstance(part, TextPart):
        return _PER_PART + _text_tokens(part.text)
    if isinstance(part, ToolResultPart):
        return _PER_PART + _text_tokens(part.output) + _attachment_tokens(part)
    if isinstance(part, ToolCallPart):
        return _PER_PART + _text_tokens(part.name) + _text_tokens(part.arguments)
    if isinstance(part, ReasoningPart):
        return _PER_PART + _text_tokens(part.text)
    return _PER_PART


def message_tokens(message: Message) -> int:
    """Estimated tokens of one message (bytes / 4 per text, plus small per-message overhead)."""
    return _PER_MESSAGE + sum(part_tokens(p) for p in message.parts)


def estimate(messages: Iterable[Message]) -> int:
    """Estimated tokens of ``messages`` (the system prompt and tool specs are not in it)."""
    return sum(message_tokens(m) for m in messages)


def stub_text(result: ToolResultPart) -> str:
    """The stand-in for a cleared tool result: names the tool, the call and the size."""
    size = len(result.output.encode("utf-8", "surrogatepass"))
    extra = f" and {len(result.attachments)} attachment(s)" if result.attachments else ""
    return (
        f"[cleared to save context: result of {result.name} (call {result.call_id}), {size} bytes{extra}; "
        "call the tool again if you need it]"
    )


@attrs.frozen(kw_only=True)
class Clearing:
    """Which tool results the prompt view stubs (tier 1). Grows in steps, never shrinks, so
    the view's prefix stays byte-identical between steps (prompt caching).

    Attributes:
        cleared: call ids whose result is replaced by ``stub_text``.
        stripped: call ids whose attachments are replaced by a one-line note (results of
            earlier turns that are not cleared).
    """

    cleared: frozenset[str] = frozenset()
    stripped: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.cleared or self.stripped)


def _rewrite(part: object, clearing: Clearing) -> object:
    if not isinstance(part, ToolResultPart):
        return part
    if part.call_id in clearing.cleared:
        return attrs.evolve(part, output=stub_text(part), attachments=())
    if part.call_id in clearing.stripped and part.attachments:
        notes = "\n".join(a.note() for a in part.attachments)
        return attrs.evolve(part, output=f"{part.output}\n{notes}" if part.output else notes, attachments=())
    return part


def apply_clearing(messages: tuple[Message, ...], clearing: Clearing) -> tuple[Message, ...]:
    """``messages`` with the results ``clearing`` names stubbed; the same tuple when none is."""
    if not clearing:
        return messages
    out: list[Message] = []
    changed = False
    for message in messages:
        if message.role == "tool" or any(isinstance(p, ToolResultPart) for p in message.parts):
            parts = tuple(_rewrite(p, clearing) for p in message.parts)
            if any(a is not b for a, b in zip(parts, message.parts, strict=True)):
                message = attrs.evolve(message, parts=parts)  # type: ignore[arg-type]
                changed = True
        out.append(message)
    return tuple(out) if changed else messages


def _last_user_index(messages: tuple[Message, ...]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            return i
    return 0


def next_clearing(messages: tuple[Message, ...], current: Clearing, keep_tool_results: int) -> tuple[Clearing, int]:
    """The next tier-1 step: every tool result but the last ``keep_tool_results`` cleared, and
    attachments of earlier turns' results stripped.

    Args:
        messages: the prompt view, oldest first.
        current: what is cleared already (kept: steps only add).
        keep_tool_results: how many most recent results stay verbatim.
    Returns:
        ``(clearing, freed)``: the new step and the estimated tokens it frees beyond
        ``current`` (0 when it adds nothing).
    """
    results: list[tuple[int, ToolResultPart]] = [
        (i, p) for i, m in enumerate(messages) for p in m.parts if isinstance(p, ToolResultPart)
    ]
    old = results[: max(0, len(results) - keep_tool_results)]
    boundary = _last_user_index(messages)
    cleared = set(current.cleared)
    stripped = set(current.stripped)
    freed = 0
    for _, part in old:
        if part.call_id not in cleared:
            saving = part_tokens(_rewrite(part, current)) - part_tokens(
                _rewrite(part, Clearing(cleared=frozenset({part.call_id})))
            )
            if saving > 0:  # a result shorter than its stub stays (always: its size never changes)
                cleared.add(part.call_id)
                freed += saving
    for index, part in results:
        if index < boundary and part.attachments and part.call_id not in cleared and part.call_id not in stripped:
            stripped.add(part.call_id)
            freed += part_tokens(part) - part_tokens(_rewrite(part, Clearing(stripped=frozenset({part.call_id}))))
    if freed <= 0:
        return current, 0
    return Clearing(cleared=frozenset(cleared), stripped=frozenset(stripped)), freed
