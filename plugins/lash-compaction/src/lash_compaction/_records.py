"""What the plugin persists and publishes: one ``CompactionRecord`` node per summary, and the
``compaction_started`` / ``compaction_finished`` activities (not persisted).

Rule: frozen attrs records with stable ``KIND`` tags; nothing else.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import attrs

__all__ = ["CompactionFinished", "CompactionRecord", "CompactionStarted", "Tier", "Trigger"]

Tier = Literal["clear", "summary"]
"""``clear``: tier 1, tool results replaced by stubs in the prompt view; ``summary``: tier 2,
a summary opened a new agent frame."""

Trigger = Literal["threshold", "overflow", "manual"]
"""Why it ran: the estimate crossed a threshold, the provider refused the request for its
size, or a person asked (``Session.compact``, ``lash sessions compact``)."""


@attrs.frozen(kw_only=True)
class CompactionRecord:
    """One summary compaction, stored as a node of the session's graph (kind ``compaction``).

    Attributes:
        frame_id: the frame the compaction opened.
        previous_frame_id: the frame it summarised ("" for the session's first frame).
        trigger: ``threshold``, ``overflow`` or ``manual``.
        tokens_before: estimated tokens of the request before compacting.
        tokens_after: estimated tokens of the new frame's seed (summary and kept messages).
        summarized_messages: how many messages the summary replaced (the previous summary
            included).
        kept_messages: how many messages were kept verbatim.
        incremental: True when a previous summary was updated rather than written afresh.
        summary: the summary text.
        model: the model that wrote it.
        instructions: what a person asked the summary to focus on, or None.
    """

    KIND: ClassVar[str] = "compaction"
    frame_id: str
    previous_frame_id: str = ""
    trigger: str = "threshold"
    tokens_before: int = 0
    tokens_after: int = 0
    summarized_messages: int = 0
    kept_messages: int = 0
    incremental: bool = False
    summary: str = ""
    model: str = ""
    instructions: str | None = None


@attrs.frozen(kw_only=True)
class CompactionStarted:
    """Activity ``compaction_started``: a tier is about to run.

    Attributes:
        tier: ``clear`` or ``summary``.
        trigger: ``threshold``, ``overflow`` or ``manual``.
        tokens_before: estimated tokens of the next request, before it runs.
        context_window: the window it was measured against, tokens (0 when unknown).
    """

    KIND: ClassVar[str] = "compaction_started"
    tier: str
    trigger: str
    tokens_before: int
    context_window: int = 0


@attrs.frozen(kw_only=True)
class CompactionFinished:
    """Activity ``compaction_finished``: a tier ran (or its summary call failed).

    Attributes:
        tier: ``clear`` or ``summary``.
        trigger: ``threshold``, ``overflow`` or ``manual``.
        tokens_before: estimated tokens before, as in ``compaction_started``.
        tokens_after: estimated tokens after (equal to ``tokens_before`` when it failed).
        frame_id: the frame a summary opened; None for tier 1 and for a failure.
        cleared: tool results stubbed by this tier-1 step (0 for a summary).
        error: why the summary failed, or None.
    """

    KIND: ClassVar[str] = "compaction_finished"
    tier: str
    trigger: str
    tokens_before: int
    tokens_after: int
    frame_id: str | None = None
    cleared: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True unless the summary call failed."""
        return self.error is None
