"""lash-observational-memory: an observer and a reflector that turn a long conversation into a
dense, cache-stable observation log, in the background, durably.

Install it and every ``LashCore`` loads it (entry point ``observational_memory``); configure it
in ``[plugins.observational_memory]`` (``ObservationalMemoryConfig``). The prompt each model
call gets: the system prompt, one observation block (reflections, then observations, oldest
first), then the messages not yet observed. See the package README for the thresholds.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lash_observational_memory._logic import estimate_tokens, messages_digest, render_block
    from lash_observational_memory._memory import CONFIG, MEMORY, SessionMemory, observation_block
    from lash_observational_memory._records import (
        Activation,
        Observation,
        ObservationalMemoryConfig,
        ObservationFinished,
        ObservationLine,
        ObservationStarted,
        Reflection,
        ReflectionFinished,
    )

#: Each public name and its module, imported on first use: the entry point imports this
#: package, and ``lash --help`` imports every installed plugin's entry point.
_EXPORTS = {
    "Activation": "lash_observational_memory._records",
    "CONFIG": "lash_observational_memory._memory",
    "MEMORY": "lash_observational_memory._memory",
    "Observation": "lash_observational_memory._records",
    "ObservationFinished": "lash_observational_memory._records",
    "ObservationLine": "lash_observational_memory._records",
    "ObservationStarted": "lash_observational_memory._records",
    "ObservationalMemoryConfig": "lash_observational_memory._records",
    "Reflection": "lash_observational_memory._records",
    "ReflectionFinished": "lash_observational_memory._records",
    "SessionMemory": "lash_observational_memory._memory",
    "estimate_tokens": "lash_observational_memory._logic",
    "messages_digest": "lash_observational_memory._logic",
    "observation_block": "lash_observational_memory._memory",
    "render_block": "lash_observational_memory._logic",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lash_observational_memory' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
