"""How a turn ended. Every committed turn records exactly one outcome.

- ``Finished``: the agent produced its answer: an assistant message, or (for a turn run with
  ``output_schema=``) a final value, the validated arguments of its ``final_result`` call.
- ``Stopped``: the turn ended early for a ``reason``; whatever the turn did up to then is still
  committed (user input, assistant messages, tool results), so nothing is lost.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeAlias

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
    "no_final_value",
]
STOP_REASONS: tuple[str, ...] = StopReason.__args__  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class Finished:
    """The turn completed.

    Attributes:
        output: what kind of output ended it: ``assistant_message`` (the model answered in
            prose), or ``final_value`` (a turn run with ``output_schema=`` ended with a
            successful call of its final-result tool).
        text: the final assistant text (for ``final_value``, the text of the assistant
            message that made the call, often "").
        value_json: for ``final_value``, the value as JSON text (the tool's validated
            arguments, unwrapped when the schema was wrapped); "" otherwise. Added in 0.2.
    """

    KIND: ClassVar[str] = "finished"
    output: Literal["assistant_message", "final_value", "tool_value"] = "assistant_message"
    text: str = ""
    value_json: str = ""


@attrs.frozen(kw_only=True)
class Stopped:
    """The turn stopped before finishing.

    Attributes:
        reason: one of ``STOP_REASONS``. ``max_output_tokens`` means the model hit the output
            cap (``finish_reason: length``); its partial text is kept. ``no_final_value``
            means a turn run with ``output_schema=`` got a prose answer, was reminded once
            to call its final-result tool, and answered in prose again (that text is kept).
        detail: a one-line human explanation (the provider's error message, ...), or "".
        text: assistant text produced before the stop ("" if none).
    """

    KIND: ClassVar[str] = "stopped"
    reason: StopReason
    detail: str = ""
    text: str = ""


Outcome: TypeAlias = Finished | Stopped


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """The CLI/JSON shape of an outcome.

    Returns:
        ``{"type": "finished", "output": ...}`` (plus ``"value"``, the decoded value, when
        ``output`` is ``final_value``), or ``{"type": "stopped", "reason": ..., "detail": ...}``.
        A ``value_json`` that is not JSON (a plugin rewrote the result) is given as its text.
    """
    if isinstance(outcome, Finished):
        if outcome.output != "final_value":
            return {"type": "finished", "output": outcome.output}
        import json  # here, not at import: the machine imports this module and loads no json

        try:
            value = json.loads(outcome.value_json)
        except ValueError:
            value = outcome.value_json
        return {"type": "finished", "output": outcome.output, "value": value}
    return {"type": "stopped", "reason": outcome.reason, "detail": outcome.detail}
