"""The plugin's persisted records (graph nodes), its activities and its config table.

Rule: frozen attrs, ``kw_only``, tuples not lists, a stable ``KIND`` per record. Records are
persisted through the kernel's converter (``lash_register_record_types``); activities are not
persisted (``PluginHost.emit_activity``). No I/O here.

Coverage is keyed by **position in the current agent frame**: ``start``/``end`` index the
frame's messages (as ``PluginHost.history`` returns them, the same order the prompt view has),
and ``covered_sha256`` is a digest of those messages, checked before a range is ever dropped
from the view. A range whose digest does not match (another plugin opened a frame, a history
was repaired differently) is never dropped: the messages stay in the view.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import attrs

__all__ = [
    "Activation",
    "ObservationFinished",
    "ObservationLine",
    "ObservationStarted",
    "ObservationalMemoryConfig",
    "Observation",
    "Priority",
    "Reflection",
    "ReflectionFinished",
]

Priority = Literal["high", "medium", "low"]


@attrs.frozen(kw_only=True)
class ObservationLine:
    """One dated observation.

    Attributes:
        priority: ``high``, ``medium`` or ``low``.
        observed_on: the date it was observed, ``YYYY-MM-DD``.
        refers_to: the date the conversation says it is about (``YYYY-MM-DD``), or None.
        text: the observation itself, one line.
    """

    priority: Priority = "medium"
    observed_on: str
    refers_to: str | None = None
    text: str


@attrs.frozen(kw_only=True)
class Observation:
    """What one observer run made of a chunk of the conversation.

    Attributes:
        frame_id: the agent frame whose messages it covers.
        start, end: the covered messages, ``[start, end)``, positions in that frame.
        covered_sha256: hex sha256 of the covered messages (see ``messages_digest``).
        lines: the observations, in the order the observer wrote them.
        message_tokens: estimated tokens of the covered messages.
        tokens: estimated tokens of ``lines`` as rendered in the block.
        observed_at: when the observer ran, seconds since the epoch.
        synchronous: True when a turn observed it before its model call (the background
            observer was behind), False when the background observer did.
    """

    KIND: ClassVar[str] = "om_observation"
    frame_id: str
    start: int
    end: int
    covered_sha256: str
    lines: tuple[ObservationLine, ...] = ()
    message_tokens: int = 0
    tokens: int = 0
    observed_at: float = 0.0
    synchronous: bool = False


@attrs.frozen(kw_only=True)
class Reflection:
    """What the reflector made of the observation block: it replaces every observation (and
    earlier reflection) covering messages before ``through``, once activated.

    Attributes:
        frame_id: the agent frame.
        through: message position: observations with ``end <= through`` are replaced.
        lines: the condensed observations.
        replaced_tokens: estimated tokens of the block it condensed.
        tokens: estimated tokens of ``lines`` as rendered.
        reflected_at: when the reflector ran, seconds since the epoch.
        synchronous: True when a turn reflected before its model call.
    """

    KIND: ClassVar[str] = "om_reflection"
    frame_id: str
    through: int
    lines: tuple[ObservationLine, ...] = ()
    replaced_tokens: int = 0
    tokens: int = 0
    reflected_at: float = 0.0
    synchronous: bool = False


@attrs.frozen(kw_only=True)
class Activation:
    """The prompt view from now on (the latest one wins); committed with the turn that made it.

    Attributes:
        frame_id: the agent frame.
        through: messages ``[0, through)`` of the frame leave the view; their observations
            are in the block.
        reflection_through: the ``through`` of the reflection heading the block, or None
            (no reflection active).
    """

    KIND: ClassVar[str] = "om_activation"
    frame_id: str
    through: int
    reflection_through: int | None = None


# ------------------------------------------------------------------------------------ activities
@attrs.frozen(kw_only=True)
class ObservationStarted:
    """The observer started on a chunk (published only inside a turn: the synchronous path).

    Attributes:
        start, end: message positions of the chunk in the current frame.
        message_tokens: estimated tokens of the chunk.
    """

    KIND: ClassVar[str] = "observation_started"
    start: int
    end: int
    message_tokens: int


@attrs.frozen(kw_only=True)
class ObservationFinished:
    """An observation was stored (background ones are reported at the next turn's start).

    Attributes:
        start, end: message positions covered.
        message_tokens: estimated tokens of the covered messages.
        observation_tokens: estimated tokens of the observation lines.
        synchronous: True when the turn waited for it.
    """

    KIND: ClassVar[str] = "observation_finished"
    start: int
    end: int
    message_tokens: int
    observation_tokens: int
    synchronous: bool


@attrs.frozen(kw_only=True)
class ReflectionFinished:
    """A reflection was stored (background ones are reported at the next turn's start).

    Attributes:
        through: message position it covers up to.
        replaced_tokens: estimated tokens of the block it condensed.
        reflection_tokens: estimated tokens of the reflection.
        synchronous: True when the turn waited for it.
    """

    KIND: ClassVar[str] = "reflection_finished"
    through: int
    replaced_tokens: int
    reflection_tokens: int
    synchronous: bool


# ------------------------------------------------------------------------------------ config
def _positive(instance: object, attribute: attrs.Attribute, value: int) -> None:  # type: ignore[type-arg]
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1 token, got {value}")


@attrs.frozen(kw_only=True)
class ObservationalMemoryConfig:
    """``[plugins.observational_memory]``. Token counts are estimates (see ``estimate_tokens``).

    Attributes:
        buffer_tokens: every this many unobserved message tokens, the observer runs in the
            background after the turn's commit.
        max_tokens_per_batch: largest chunk of messages one observer call gets.
        previous_observer_tokens: how much of the latest observations the observer sees as
            context.
        observe_at_tokens: when the messages in the view (not yet activated) reach this, the
            buffered observations are activated (their messages leave the view).
        block_at_tokens: past this, a turn observes synchronously before its model call.
        reflect_at_tokens: when the observation block passes this, a buffered reflection is
            activated (the reflector buffers one from half of it).
        reflect_block_at_tokens: past this, a turn reflects synchronously.
        observer_model / observer_client: model id and named model client (``LashCore(
            model_clients=...)``) of the observer; None means the session's.
        reflector_model / reflector_client: the same for the reflector.
        observer_max_output_tokens / reflector_max_output_tokens: output caps per call.
        fallback: ``"compaction"`` to allow ``lash-compaction`` on the same core (it then acts
            as the fallback, e.g. on a context overflow); None refuses the pair.
    Raises:
        ValueError: a threshold below 1, or thresholds out of order
            (``observe_at <= block_at``, ``reflect_at <= reflect_block_at``).
    """

    buffer_tokens: int = attrs.field(default=6_000, validator=_positive)
    max_tokens_per_batch: int = attrs.field(default=10_000, validator=_positive)
    previous_observer_tokens: int = attrs.field(default=2_000, validator=attrs.validators.ge(0))
    observe_at_tokens: int = attrs.field(default=30_000, validator=_positive)
    block_at_tokens: int = attrs.field(default=36_000, validator=_positive)
    reflect_at_tokens: int = attrs.field(default=40_000, validator=_positive)
    reflect_block_at_tokens: int = attrs.field(default=48_000, validator=_positive)
    observer_model: str | None = None
    observer_client: str | None = None
    reflector_model: str | None = None
    reflector_client: str | None = None
    observer_max_output_tokens: int | None = None
    reflector_max_output_tokens: int | None = None
    fallback: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.block_at_tokens < self.observe_at_tokens:
            raise ValueError(
                f"block_at_tokens ({self.block_at_tokens}) must be >= observe_at_tokens ({self.observe_at_tokens})"
            )
        if self.reflect_block_at_tokens < self.reflect_at_tokens:
            raise ValueError(
                f"reflect_block_at_tokens ({self.reflect_block_at_tokens}) must be >= "
                f"reflect_at_tokens ({self.reflect_at_tokens})"
            )
        if self.fallback not in (None, "compaction"):
            raise ValueError(f"fallback must be 'compaction' or unset, got {self.fallback!r}")
