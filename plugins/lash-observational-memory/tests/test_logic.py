"""The pure parts: token estimates, safe cut points, chunking, parsing, the block's bytes, config."""

from __future__ import annotations

import itertools

import pytest

from lash_kernel.plugin import Message, TextPart, ToolCallPart, ToolResultPart
from lash_observational_memory import Activation, Observation, ObservationalMemoryConfig, ObservationLine
from lash_observational_memory._logic import (
    MemoryRecords,
    chunk_ranges,
    estimate_tokens,
    messages_digest,
    parse_lines,
    render_block,
    safe_cut,
)


def user(text: str) -> Message:
    return Message.user(text)


def assistant(text: str = "", calls: tuple[str, ...] = ()) -> Message:
    parts = [TextPart(text=text)] if text else []
    parts += [ToolCallPart(id=c, name="t", arguments="{}") for c in calls]
    return Message(role="assistant", parts=tuple(parts))


def results(*ids: str) -> Message:
    return Message(role="tool", parts=tuple(ToolResultPart(call_id=i, name="t", output="x" * 400) for i in ids))


CONVO = (
    user("a" * 400), assistant(calls=("c1",)), results("c1"), assistant("done " * 80),
    user("b" * 400), assistant("ok " * 100),
)


def test_estimate_is_characters_over_four_plus_framing():
    assert estimate_tokens(user("x" * 400)) == 104
    assert estimate_tokens(user("x")) == 5


def test_a_cut_never_separates_a_tool_call_from_its_result():
    assert [i for i in range(len(CONVO) + 1) if safe_cut(CONVO, i)] == [0, 1, 3, 4, 5, 6]
    assert not safe_cut(CONVO[:2], 2)  # the call is still waiting for its result


def test_chunks_are_contiguous_capped_and_cut_safely():
    chunks = chunk_ranges(CONVO, 0, len(CONVO), 250)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(CONVO)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
    assert all(safe_cut(CONVO, e) for _, e in chunks)
    assert (1, 2) not in chunks and (2, 3) not in chunks  # call and result stay together
    assert chunk_ranges(CONVO, 0, 2, 10_000) == [(0, 1)]  # the pending call is left out


def test_observer_answers_are_read_leniently():
    text = """# Observations
- [high] 2025-01-02 (about 2025-01-09): user flies to Oslo
* [LOW]: likes tea
plain line without markers
- medium 2025-01-03: decided on SQLite (refers to 2025-02-01)
<observations>
"""
    lines = parse_lines(text, today="2025-01-05")
    assert lines == (
        ObservationLine(priority="high", observed_on="2025-01-02", refers_to="2025-01-09", text="user flies to Oslo"),
        ObservationLine(priority="low", observed_on="2025-01-05", text="likes tea"),
        ObservationLine(priority="medium", observed_on="2025-01-05", text="plain line without markers"),
        ObservationLine(priority="medium", observed_on="2025-01-03", refers_to="2025-02-01", text="decided on SQLite"),
    )


def test_the_block_is_the_same_bytes_for_the_same_records_and_drops_nothing_unverified():
    line = ObservationLine(priority="high", observed_on="2025-01-01", text="fact")
    obs = Observation(frame_id="f0", start=0, end=4, covered_sha256=messages_digest(CONVO[:4]), lines=(line,), tokens=3)
    recs = MemoryRecords(frame_id="f0", observations=[obs], activation=Activation(frame_id="f0", through=4))
    view = recs.view(CONVO)
    assert view.through == 4
    assert render_block(view) == render_block(MemoryRecords.of("f0", [obs], [], [recs.activation]).view(CONVO))
    assert render_block(view).endswith("## Observations\n- [high] 2025-01-01: fact\n</observations>")
    changed = (user("edited"), *CONVO[1:])  # the covered messages are not what was observed
    assert recs.view(changed).through == 0 and recs.view(changed).chain == ()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"observe_at_tokens": 100, "block_at_tokens": 50}, "block_at_tokens"),
        ({"reflect_at_tokens": 100, "reflect_block_at_tokens": 50}, "reflect_block_at_tokens"),
        ({"buffer_tokens": 0}, "buffer_tokens"),
        ({"fallback": "tracing"}, "fallback"),
    ],
)
def test_bad_thresholds_are_refused(table, message):
    with pytest.raises(ValueError, match=message):
        ObservationalMemoryConfig(**table)
