"""System-prompt assembly from the host's base prompt plus plugin contributions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal

import attrs

__all__ = ["SLOTS", "PromptContribution", "assemble_prompt"]

#: Prompt slots, in the order they appear in the system prompt.
SLOTS = ("identity", "instructions", "tools", "context", "memory", "footer")


@attrs.frozen(kw_only=True)
class PromptContribution:
    """One section a plugin adds to the system prompt.

    Attributes:
        slot: where it goes; one of ``SLOTS``.
        title: a short heading (rendered as ``## title``); "" for none.
        content: the section text.
        priority: higher comes first within a slot.
        tool_gate: include only when a tool of this name is in the catalog; None for always.
    """

    KIND: ClassVar[str] = "prompt_contribution"
    slot: Literal["identity", "instructions", "tools", "context", "memory", "footer"] = "instructions"
    title: str = ""
    content: str
    priority: int = 0
    tool_gate: str | None = None


def assemble_prompt(
    base: str | None, contributions: Iterable[PromptContribution], tool_names: frozenset[str]
) -> str | None:
    """Render the system prompt.

    Args:
        base: the host's prompt, placed first; None or "" for none.
        contributions: plugin sections in plugin call order.
        tool_names: the catalog's tool names, for ``tool_gate``.
    Returns:
        The prompt text, or None when there is nothing to say.
    """
    kept = [
        (SLOTS.index(c.slot), -c.priority, i, c)
        for i, c in enumerate(contributions)
        if c.content.strip() and (c.tool_gate is None or c.tool_gate in tool_names)
    ]
    sections = [base.strip()] if base and base.strip() else []
    for *_, c in sorted(kept, key=lambda row: row[:3]):
        sections.append(f"## {c.title}\n\n{c.content.strip()}" if c.title else c.content.strip())
    return "\n\n".join(sections) or None
