"""lash-observational-memory: an observer and a reflector that turn a long conversation into a
dense, cache-stable observation log, in the background, durably.

Install it and every ``LashCore`` loads it (entry point ``observational_memory``); configure it
in ``[plugins.observational_memory]`` (``ObservationalMemoryConfig``). The prompt each model
call gets: the system prompt, one observation block (reflections, then observations, oldest
first), then the messages not yet observed. See the package README for the thresholds.
"""

from __future__ import annotations

from ._logic import estimate_tokens, messages_digest, render_block
from ._memory import CONFIG, MEMORY, SessionMemory, observation_block
from ._records import (
    Activation,
    Observation,
    ObservationalMemoryConfig,
    ObservationFinished,
    ObservationLine,
    ObservationStarted,
    Reflection,
    ReflectionFinished,
)

__all__ = [
    "CONFIG",
    "MEMORY",
    "Activation",
    "Observation",
    "ObservationFinished",
    "ObservationLine",
    "ObservationStarted",
    "ObservationalMemoryConfig",
    "Reflection",
    "ReflectionFinished",
    "SessionMemory",
    "estimate_tokens",
    "messages_digest",
    "observation_block",
    "render_block",
]
