"""How a turn ended. Every committed turn records exactly one outcome.

- ``Finished``: the agent produced its answer (an assistant message, in standard mode).
- ``Stopped``: the turn ended early for a ``reason``; whatever the turn did up to then is still
  committed (user input, assistant messages, tool results), so nothing is lost.
"""

from __future__ import annotations

from typing import ClassVar, Literal, TypeAlias

import attrs

__all__ = ["STOP_REASONS", "Finished", "Outcome", "StopReason", "Stopped", "outcome_json"]

StopReason: TypeAlias = Literal[
    "cancelled",
    "max_turns",
    "max_output_tokens",
    "content_filter",
    "provider_error",
    "tool_failure",
    "plugin_abort",
    "invalid_input",
    "runtime_error",
]
STOP_REASONS: tuple[str, ...] = StopReason.__args__  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class Finished:
    """The turn completed.

    Attributes:
        output: what kind of output ended it; ``assistant_message`` in standard mode.
        text: the final assistant text.
    """

    KIND: ClassVar[str] = "finished"
    output: Literal["assistant_message", "final_value", "tool_value"] = "assistant_message"
    text: str = ""


@attrs.frozen(kw_only=True)
class Stopped:
    """The turn stopped before finishing.

    Attributes:
        reason: one of ``STOP_REASONS``. ``max_output_tokens`` means the model hit the output
            cap (``finish_reason: length``); its partial text is kept.
        detail: a one-line human explanation (the provider's error message, ...), or "".
        text: assistant text produced before the stop ("" if none).
    """

    KIND: ClassVar[str] = "stopped"
    reason: StopReason
    detail: str = ""
    text: str = ""


Outcome: TypeAlias = Finished | Stopped


def outcome_json(outcome: Outcome) -> dict[str, str]:
    """The CLI/JSON shape of an outcome.

    Returns:
        ``{"type": "finished", "output": ...}`` or ``{"type": "stopped", "reason": ..., "detail": ...}``.
    """
    if isinstance(outcome, Finished):
        return {"type": "finished", "output": outcome.output}
    return {"type": "stopped", "reason": outcome.reason, "detail": outcome.detail}
