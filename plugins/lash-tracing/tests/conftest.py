"""Shared fixtures: a hand-built trace of one turn (records shaped as ``lash_kernel.trace`` documents).

Times are multiples of 1/64 s so seconds -> nanoseconds is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lash_kernel.trace import TraceRecord

TICK = 1 / 64  # seconds; exact in binary


def usage(i: int = 0, o: int = 0, cr: int = 0, cw: int = 0, r: int = 0) -> dict[str, int]:
    """Token buckets with the names ``lash_kernel.trace`` documents."""
    return {
        "input_tokens": i, "output_tokens": o, "cache_read_input_tokens": cr, "cache_write_input_tokens": cw, "reasoning_output_tokens": r,
    }


def build_turn(
    session_id: str = "s1", turn_id: str = "t1", t0: float = 1000.0, *, secret: str = "sk-live-123"
) -> list[TraceRecord]:
    """One session with one turn: a tool call, then a model call that fails once (429) and succeeds.

    Offsets from ``t0`` (ticks of 1/64 s): turn 1..21; chat m1#1 2..8; tool 9..12;
    chat m2#1 13..14 (429); chat m2#2 15..19; turn.finished 21.
    """

    def at(k: int) -> float:
        return t0 + k * TICK

    def rec(
        kind: str, k: int, span: str, parent: str | None = None, turn: str | None = turn_id, **attributes: Any
    ) -> TraceRecord:
        return TraceRecord(
            kind=kind, time_s=at(k), session_id=session_id, turn_id=turn, span_id=span,
            parent_span_id=parent, attributes=attributes,
        )

    def model_attrs(n: int, attempt: int) -> dict[str, Any]:
        return {
            "request_id": f"{turn_id}:m{n}", "attempt": attempt, "model": "m", "provider": "scripted",
            "message_count": 2 * n - 1, "tool_count": 1, "max_output_tokens": 256, "temperature": 0.5,
        }

    m1, m2a, m2b, tool = f"{turn_id}:m1#1", f"{turn_id}:m2#1", f"{turn_id}:m2#2", f"{turn_id}:t:call_1"
    total = usage(240, 28, 50, 5, 3)
    return [
        rec("session.opened", 0, session_id, turn=None, mode="standard", head_revision=0, created=True),
        rec("turn.started", 1, turn_id, model="m", provider="scripted", max_turns=16),
        rec("prompt.built", 1, turn_id, sha256="ab" * 32, chars=10, tool_count=1),
        rec("model_call.started", 2, m1, turn_id, **model_attrs(1, 1)),
        rec(
            "model_call.completed", 8, m1, turn_id, **model_attrs(1, 1), duration_s=6 * TICK,
            finish_reason="tool_calls", response_model="m-2024", response_id="resp_1", usage=usage(100, 20, 50, 5, 3),
        ),
        rec("tool_call.started", 9, tool, turn_id, tool="lookup", call_id="call_1",
            arguments=f'{{"q": "x", "api_key": "{secret}"}}'),
        rec("tool_call.completed", 12, tool, turn_id, tool="lookup", call_id="call_1", duration_s=3 * TICK,
            is_error=False, output="found x"),
        rec("model_call.started", 13, m2a, turn_id, **model_attrs(2, 1)),
        rec("model_call.failed", 14, m2a, turn_id, **model_attrs(2, 1), duration_s=TICK, error="rate limited",
            status=429, retryable=True),
        rec("model_call.started", 15, m2b, turn_id, **model_attrs(2, 2)),
        rec(
            "model_call.completed", 19, m2b, turn_id, **model_attrs(2, 2), duration_s=4 * TICK,
            finish_reason="stop", response_model="m-2024", response_id="resp_2", usage=usage(140, 8),
        ),
        rec("usage", 20, turn_id, source="turn", model="m", usage=total),
        rec("turn.finished", 21, turn_id, outcome={"type": "finished", "output": "assistant_message"},
            duration_s=20 * TICK, head_revision=1, usage=total),
        rec("session.closed", 22, session_id, turn=None, head_revision=1),
    ]


@pytest.fixture
def turn_records() -> list[TraceRecord]:
    """``build_turn()`` with its defaults."""
    return build_turn()


@pytest.fixture
def make_turn() -> Callable[..., list[TraceRecord]]:
    """``build_turn`` itself, for tests that need several sessions/turns."""
    return build_turn
