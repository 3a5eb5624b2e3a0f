"""Events: past-tense facts the driver feeds into the turn machine.

Rule: everything the outside world (provider, tools, the host's cancel button, hooks) decides
enters the machine as one of these, so the sequence of events is a complete replay record.
"""

from __future__ import annotations

from typing import ClassVar, TypeAlias

import attrs

from lash_kernel.directives import CheckpointDirective
from lash_kernel.messages import ToolResultPart
from lash_kernel.model import ModelResponse

__all__ = [
    "CancelRequested",
    "CheckpointResolved",
    "Event",
    "ModelFailed",
    "ModelResponded",
    "ToolCallFinished",
    "TurnFailed",
]


@attrs.frozen(kw_only=True)
class ModelResponded:
    """The model call ``request_id`` completed with ``response``."""

    KIND: ClassVar[str] = "model.responded"
    request_id: str
    response: ModelResponse


@attrs.frozen(kw_only=True)
class ModelFailed:
    """The model call ``request_id`` failed for good (after any retries).

    Attributes:
        message: one-line reason, including the provider's own message.
        status: HTTP status when the provider answered with one, else None.
    """

    KIND: ClassVar[str] = "model.failed"
    request_id: str
    message: str
    status: int | None = None


@attrs.frozen(kw_only=True)
class ToolCallFinished:
    """One tool call of the current batch returned (results arrive in completion order).

    Attributes:
        result: the result the model will see (errors included, ``is_error``).
        duration_s: wall time in seconds.
    """

    KIND: ClassVar[str] = "tool.call_finished"
    result: ToolResultPart
    duration_s: float


@attrs.frozen(kw_only=True)
class CancelRequested:
    """The host cancelled the turn. In-flight tool calls get "interrupted" results."""

    KIND: ClassVar[str] = "turn.cancel_requested"
    reason: str = "cancelled by host"


@attrs.frozen(kw_only=True)
class TurnFailed:
    """The runtime hit an unexpected error (a bug or a failing hook); the turn stops cleanly."""

    KIND: ClassVar[str] = "turn.failed"
    reason: str
    message: str


@attrs.frozen(kw_only=True)
class CheckpointResolved:
    """Plugins answered a ``Checkpoint``: go on (None), inject messages, or abort."""

    KIND: ClassVar[str] = "turn.checkpoint_resolved"
    directive: CheckpointDirective | None = None


Event: TypeAlias = ModelResponded | ModelFailed | ToolCallFinished | CancelRequested | TurnFailed | CheckpointResolved
