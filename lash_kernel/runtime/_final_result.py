"""Typed results: the kernel's ``final_result`` tool, and decoding the value it ends a turn with.

Rule: a turn run with ``output_schema=`` ends when the model calls the final-result tool with
arguments that pass the schema. The tool is an ordinary ``Tool`` (so its arguments are
validated like any tool's, and a violation is an error result the model can fix); it returns
the value as JSON text, which the machine copies into ``Finished(final_value).value_json``.
A schema that is not an object schema is wrapped in ``{"value": ...}`` for the model and
unwrapped here, because providers require object tool parameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lash_kernel._tool_schema import WRAPPED_KEY, output_schema
from lash_kernel.errors import RecordDecodeError, ToolError
from lash_kernel.outcomes import Finished, Outcome
from lash_kernel.serde import structure
from lash_kernel.tools import Tool

__all__ = ["FINAL_TOOL", "OutputSpec", "decode_value", "final_result_tool"]

#: The name of the kernel's final-result tool.
FINAL_TOOL = "final_result"

OutputSpec = Mapping[str, Any] | type
"""What ``Session.turn(output_schema=...)`` takes: a JSON Schema mapping or an attrs class."""

_DESCRIPTION = (
    "Give your final answer by calling this tool; calling it successfully ends your turn. "
    "Its arguments are the answer and must match its input schema exactly. Call it once, "
    "after any other tool calls you need, instead of answering in prose."
)


def final_result_tool(spec: OutputSpec, *, name: str = FINAL_TOOL) -> Tool:
    """The tool a turn with ``output_schema=spec`` ends with.

    Args:
        spec: a JSON Schema mapping (draft 2020-12) or an attrs class.
        name: the tool's name.
    Returns:
        A ``Tool`` whose input schema is ``spec``'s (wrapped when it is not an object schema)
        and whose result is the value as JSON text (unwrapped). For an attrs class, the value
        is also built into an instance first, so an attrs validator's refusal is an error
        result the model can fix.
    Raises:
        ConfigError: ``spec`` is not a valid JSON Schema or an attrs class the ``@tool``
            derivation handles (see ``_tool_schema.output_schema``).
    """
    schema, wrapped = output_schema(spec, "output_schema")
    cls = spec if isinstance(spec, type) else None

    async def final_result(**arguments: Any) -> str:
        value = arguments[WRAPPED_KEY] if wrapped else arguments
        if cls is not None:
            try:
                structure(value, cls)
            except RecordDecodeError as exc:
                reasons = "; ".join(_leaves(exc.__cause__ or exc))
                raise ToolError(f"the value does not fit {cls.__name__}: {reasons}") from exc
        return json.dumps(value, ensure_ascii=False)

    return Tool(name=name, description=_DESCRIPTION, input_schema=schema, fn=final_result)


def _leaves(exc: BaseException) -> list[str]:
    """The messages of ``exc``'s leaf exceptions (cattrs groups them), e.g. an attrs validator's."""
    if isinstance(exc, BaseExceptionGroup):
        return [m for e in exc.exceptions for m in _leaves(e)]
    return [f"{type(exc).__name__}: {exc}"]


def decode_value(outcome: Outcome, spec: OutputSpec | None) -> Any:
    """The value a turn finished with, decoded.

    Args:
        outcome: the committed outcome.
        spec: the turn's ``output_schema`` (an attrs class gets an instance), or None.
    Returns:
        None unless ``outcome`` is ``Finished(final_value)``; then the decoded JSON value,
        structured into ``spec`` when it is a class.
    Raises:
        RecordDecodeError: the value does not decode (only when a plugin's
            ``lash_after_tool_call`` rewrote the final result's output).
    """
    if not isinstance(outcome, Finished) or outcome.output != "final_value":
        return None
    try:
        value = json.loads(outcome.value_json)
    except ValueError as exc:
        raise RecordDecodeError(f"the turn's final value is not JSON: {exc}") from exc
    return structure(value, spec) if isinstance(spec, type) else value
