"""Effects: imperative requests the turn machine hands to the driver.

Rule: the driver performs effects in order and feeds results back as events; effects carry
plain data only.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import attrs

from lash_kernel.activity import ActivityEvent
from lash_kernel.messages import Message, ToolCallPart
from lash_kernel.model import ModelRequest
from lash_kernel.outcomes import Outcome
from lash_kernel.usage import UsageLedger

__all__ = ["CallModel", "Checkpoint", "Effect", "EmitActivity", "FinishTurn", "RunTools"]


@attrs.frozen(kw_only=True)
class CallModel:
    """Call the model with ``request``; answer with ``ModelResponded`` or ``ModelFailed``."""

    request: ModelRequest


@attrs.frozen(kw_only=True)
class RunTools:
    """Run ``calls`` concurrently; answer with one ``ToolCallFinished`` per call."""

    calls: tuple[ToolCallPart, ...]


@attrs.frozen(kw_only=True)
class Checkpoint:
    """Ask plugins whether to steer the turn; answer with ``CheckpointResolved``.

    Attributes:
        phase: ``after_tools`` (a tool batch is answered) or ``before_finish`` (the model gave
            its final answer).
        messages: the turn's messages so far, user input first.
    """

    phase: Literal["after_tools", "before_finish"]
    messages: tuple[Message, ...]


@attrs.frozen(kw_only=True)
class EmitActivity:
    """Publish ``event`` on the activity stream under ``correlation_id``."""

    event: ActivityEvent
    correlation_id: str


@attrs.frozen(kw_only=True)
class FinishTurn:
    """The turn is over: commit ``messages`` (input first) with ``usage``, then report ``outcome``."""

    outcome: Outcome
    messages: tuple[Message, ...]
    usage: UsageLedger


Effect: TypeAlias = CallModel | RunTools | Checkpoint | EmitActivity | FinishTurn
