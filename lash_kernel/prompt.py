"""System-prompt assembly from the host's base prompt plus plugin contributions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal

import attrs

from lash_kernel.errors import ConfigError

__all__ = ["SLOTS", "PromptContribution", "assemble_prompt"]

#: Prompt slots, in the order they appear in the system prompt.
SLOTS = ("identity", "instructions", "tools", "context", "memory", "footer")


def _check_slot(instance: object, attribute: object, value: object) -> None:
    if value not in SLOTS:
        raise ConfigError(f"PromptContribution slot must be one of {', '.join(SLOTS)}; got {value!r}")


def _check_type(kind: type | tuple[type, ...], label: str) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ConfigError(f"PromptContribution {attribute.name} must be {label}; got {value!r}")

    return check


@attrs.frozen(kw_only=True)
class PromptContribution:
    """One section a plugin adds to the system prompt.

    The system prompt is the host's base prompt, then the sections ordered by slot, then by
    priority (higher first), then by plugin call order. The slots, in prompt order:

    - ``identity``: who the agent is (a persona, a role);
    - ``instructions`` (the default): how to work, rules to follow;
    - ``tools``: how to use particular tools (pair with ``tool_gate``);
    - ``context``: facts about the environment (project, date, user);
    - ``memory``: what earlier sessions or observations left behind;
    - ``footer``: last words (output format reminders).

    Attributes:
        slot: where it goes; one of ``SLOTS`` (above).
        title: a short heading (rendered as ``## title``); "" for none.
        content: the section text.
        priority: higher comes first within a slot.
        tool_gate: include only when a tool of this name is in the catalog; None for always.
    Raises:
        ConfigError: (a ``ValueError``) when built with an unknown slot or a field of the
            wrong type, so a plugin's mistake surfaces in its own hook (the turn then stops
            with ``Stopped(plugin_abort)`` naming the plugin).
    """

    KIND: ClassVar[str] = "prompt_contribution"
    slot: Literal["identity", "instructions", "tools", "context", "memory", "footer"] = attrs.field(
        default="instructions", validator=_check_slot
    )
    title: str = attrs.field(default="", validator=_check_type(str, "a string"))
    content: str = attrs.field(validator=_check_type(str, "a string"))
    priority: int = attrs.field(default=0, validator=_check_type(int, "an integer"))
    tool_gate: str | None = attrs.field(default=None, validator=_check_type((str, type(None)), "a string or None"))


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
