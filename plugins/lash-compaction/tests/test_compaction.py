"""lash-compaction through its entry point, with ScriptedModel and real SQLite files: tier 1
stubs, tier 2 summaries (cut points, incremental updates), context overflow, failing summary
calls, compaction by hand, and resuming a compacted session in a new process."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest

from lash_compaction import SUMMARY_MARKER, CompactionConfig, CompactionRecord, previous_summary
from lash_compaction._summarize import choose_cut
from lash_compaction._view import message_tokens
from lash_kernel import (
    ConfigError,
    Finished,
    LashError,
    Message,
    ModelError,
    ProviderHTTPError,
    SessionSpec,
    Stopped,
    TokenUsage,
)
from lash_kernel.plugin import OpenFrame, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.testing import ScriptedModel

pytestmark = pytest.mark.anyio

RESULT_BYTES = 1_000  # what conftest's ``read`` tool returns
PAD = "y" * 800  # ~200 tokens by the bytes/4 estimate
OVERFLOW = '{"error": {"message": "maximum context length exceeded", "code": "context_length_exceeded"}}'


def _texts(messages) -> list[str]:
    return [m.text for m in messages]


def _stubbed(message: Message) -> bool:
    return any(isinstance(p, ToolResultPart) and p.output.startswith("[cleared to save context") for p in message.parts)


# ------------------------------------------------------------------------------ plugin loading
def test_the_entry_point_loads_and_declares_its_source_and_record(make_core, tmp_path):
    with make_core(tmp_path, ScriptedModel()) as core:
        assert "compaction" in core.plugin_host.plugin_names()
        assert core.plugin_host.usage_sources["compaction"][0] == "compaction"
        assert core.record_types["compaction"][1] is CompactionRecord


def test_bad_config_values_are_config_errors(make_core, tmp_path):
    with pytest.raises(ConfigError, match="clear_at"):
        make_core(tmp_path, ScriptedModel(), config={"clear_at": 1.5})
    with pytest.raises(ConfigError, match="no_such_key"):
        make_core(tmp_path, ScriptedModel(), config={"no_such_key": 1})


# ------------------------------------------------------------------------------ tier 1
async def test_tier1_stubs_old_tool_results_in_the_view_and_the_store_keeps_them(make_core, tmp_path):
    model = ScriptedModel()
    for i in range(8):
        model.enqueue_tool_calls(("read", {"path": f"f{i}"}))
    model.enqueue_text("done")
    config = {"context_window": 2_000, "clear_at": 0.6, "summarize_at": 1.0}
    with make_core(tmp_path, model, config=config) as core:
        session = core.session("s")
        result = await session.turn("read them all").run()
        assert result.outcome == Finished(text="done")

        last = model.requests[-1].messages
        results = [p for m in last for p in m.parts if isinstance(p, ToolResultPart)]
        assert len(results) == 8
        assert all(p.output.startswith("[cleared to save context") for p in results[:-3])
        assert "read" in results[0].output and results[0].call_id in results[0].output
        assert f"{RESULT_BYTES} bytes" in results[0].output
        assert all(len(p.output) == RESULT_BYTES for p in results[-3:])  # the last 3 verbatim

        stored = [p for m in session.history() for p in m.parts if isinstance(p, ToolResultPart)]
        assert [len(p.output) for p in stored] == [RESULT_BYTES] * 8  # history never rewritten

        # steps: between two requests the prompt is either extended (same prefix) or a step ran
        steps = [a.event for a in result.activities if a.kind == "compaction_finished"]
        assert steps and all(e.tier == "clear" and e.tokens_after < e.tokens_before for e in steps)
        changed = 0
        for before, after in zip(model.requests, model.requests[1:], strict=False):
            if after.messages[: len(before.messages)] != before.messages:
                changed += 1
        assert changed == len(steps) < len(model.requests) - 1
        assert [a.kind for a in result.activities].count("compaction_started") == len(steps)


async def test_tier1_is_off_below_clear_at(make_core, tmp_path):
    model = ScriptedModel().enqueue_tool_calls(("read", {"path": "a"})).enqueue_text("ok")
    with make_core(tmp_path, model, config={"context_window": 100_000}) as core:
        await core.session("s").turn("q").run()
    assert not any(_stubbed(m) for r in model.requests for m in r.messages)


# ------------------------------------------------------------------------------ tier 2: cut points
def _sizes(messages):
    return [message_tokens(m) for m in messages]


def _call(i: int) -> Message:
    return Message(role="assistant", parts=(ToolCallPart(id=f"c{i}", name="read", arguments="{}"),))


def _result(i: int, size: int = 400) -> Message:
    return Message(role="tool", parts=(ToolResultPart(call_id=f"c{i}", name="read", output="r" * size),))


def _answer(text: str) -> Message:
    return Message(role="assistant", parts=(TextPart(text=text),))


def test_cut_is_at_a_user_message_and_keeps_about_keep_tokens():
    msgs = (Message.user("u1" + PAD), _call(1), _result(1), _answer("a1" + PAD),
            Message.user("u2" + PAD), _call(2), _result(2), _answer("a2" + PAD),
            Message.user("u3" + PAD), _answer("a3" + PAD))  # fmt: skip
    sizes = _sizes(msgs)
    cut = choose_cut(msgs, sizes, keep_tokens=sum(sizes[8:]) + 1)
    assert cut is not None and cut.start == 0 and cut.previous is None
    assert msgs[cut.index].text.startswith("u2")  # the latest user boundary keeping >= keep
    cut = choose_cut(msgs, sizes, keep_tokens=10)
    assert msgs[cut.index].text.startswith("u3")
    cut = choose_cut(msgs, sizes, keep_tokens=10**6)  # nothing keeps that much: keep the most
    assert msgs[cut.index].text.startswith("u2")
    assert choose_cut(msgs[:4], _sizes(msgs[:4]), keep_tokens=10) is None  # one exchange: no user boundary
    cut = choose_cut(msgs[:4], _sizes(msgs[:4]), keep_tokens=10, limit_tokens=300)  # must shrink: a step
    assert cut is not None and msgs[cut.index].role == "assistant"


def test_cut_never_separates_a_tool_call_from_its_result_in_a_long_turn():
    # one turn: user, then six call/result pairs and an answer; the kept part must stay small
    msgs = [Message.user("u1")]
    for i in range(6):
        msgs += [_call(i), _result(i, 2_000)]
    msgs.append(_answer("a"))
    msgs = tuple(msgs)
    sizes = _sizes(msgs)
    cut = choose_cut(msgs, sizes, keep_tokens=600, limit_tokens=1_200)
    assert cut is not None and cut.index > 0
    assert msgs[cut.index].role == "assistant" and msgs[cut.index].tool_calls  # the start of a step
    kept_calls = {c.id for m in msgs[cut.index :] for c in m.tool_calls}
    kept_results = {p.call_id for m in msgs[cut.index :] for p in m.parts if isinstance(p, ToolResultPart)}
    assert kept_calls == kept_results  # no orphan either way
    OpenFrame(reason="compaction", seed=(Message.user("s"), *msgs[cut.index :]))  # valid seed
    assert sum(sizes[cut.index :]) <= 1_200


def test_a_previous_summary_is_found_and_updated_not_resummarised():
    from lash_compaction._summarize import summary_message

    msgs = (summary_message("the old summary"), Message.user("u1"), _answer("a1"), Message.user("u2"), _answer("a2"))
    assert previous_summary(msgs) == "the old summary"
    cut = choose_cut(msgs, _sizes(msgs), keep_tokens=1)
    assert cut.start == 1 and cut.previous == "the old summary" and cut.index == 3
    assert previous_summary((Message.user("hello"),)) is None


# ------------------------------------------------------------------------------ tier 2: in turns
def _chat_model(turns: int) -> ScriptedModel:
    model = ScriptedModel()
    for i in range(turns):
        model.enqueue_text(f"a{i}" + PAD)
    return model


async def test_tier2_opens_a_frame_then_updates_its_summary_incrementally(make_core, tmp_path):
    model = _chat_model(20)
    summarizer = ScriptedModel(model="small").enqueue_text("S1", usage=TokenUsage(input_tokens=300, output_tokens=20))
    summarizer.enqueue_text("S2", usage=TokenUsage(input_tokens=200, output_tokens=20))
    config = {"context_window": 4_000, "summarize_at": 0.8, "clear_at": 1.0, "model": "cheap"}
    with make_core(tmp_path, model, summarizer=summarizer, config=config) as core:
        session = core.session("s")
        finished = []
        turns = 0
        while len(session.frames()) < 2 and turns < 20:
            result = await session.turn(f"q{turns}" + PAD).run()
            assert isinstance(result.outcome, Finished)
            finished += [a.event for a in result.activities if a.kind == "compaction_finished"]
            turns += 1
        frames = session.frames()
        assert len(frames) == 2 and summarizer.pending == 0
        assert [f.reason for f in frames] == ["compaction", "compaction"]
        assert [e.frame_id for e in finished] == [f.frame_id for f in frames]  # the activity names the frame
        assert all(e.tier == "summary" and e.tokens_after < e.tokens_before for e in finished)

        first, second = summarizer.requests
        assert "q0" in first.messages[0].text and "<summary>" not in first.messages[0].text
        prompt = second.messages[0].text
        assert "<summary>\nS1\n</summary>" in prompt  # the previous summary, to update
        assert "q0" not in prompt  # not the messages it already covers
        assert first.model == second.model == "cheap"  # [plugins.compaction] model

        history = session.history()
        assert previous_summary(history) == "S2"
        assert history[-1].text.startswith(f"a{turns - 1}")  # the turn's answer follows the seed
        records = session.nodes("compaction")
        assert [r.incremental for r in records] == [False, True]
        assert [r.model for r in records] == ["small", "small"]  # what served the summary
        assert [r.frame_id for r in records] == [f.frame_id for f in frames]
        assert records[1].previous_frame_id == frames[0].frame_id
        # what the model got right after the switch: the summary first, then kept messages
        after = next(r for r in model.requests if previous_summary(r.messages) == "S1")
        assert after.messages[-1].role == "user" and after.messages[-1].text.startswith("q")

        report = session.usage_report()
        assert report.by_source["compaction"].input_tokens == 500
        assert len(session.graph().nodes) > len(history)  # the old frames are still stored


async def test_a_context_overflow_compacts_and_retries_once(make_core, tmp_path):
    model = _chat_model(1)
    model.enqueue_error(ProviderHTTPError(400, OVERFLOW, provider="scripted")).enqueue_text("fits now")
    summarizer = ScriptedModel().enqueue_text("S", usage=TokenUsage(input_tokens=30, output_tokens=3))
    with make_core(tmp_path, model, summarizer=summarizer, config={"context_window": 100_000}) as core:
        session = core.session("s")
        await session.turn("q0" + PAD).run()
        result = await session.turn("q1").run()
        assert result.outcome == Finished(text="fits now")
        assert model.pending == 0 and summarizer.pending == 0  # one summary, one retry
        retried = model.requests[-1].messages
        assert previous_summary(retried) == "S" and _texts(retried)[1:] == ["q1"]
        [event] = [a.event for a in result.activities if a.kind == "compaction_finished"]
        assert event.trigger == "overflow" and event.frame_id == session.frames()[-1].frame_id
        assert session.usage_report().by_source["compaction"].total_tokens == 33


async def test_a_failing_summary_goes_on_uncompacted_and_the_next_turn_tries_again(make_core, tmp_path, caplog):
    model = _chat_model(6)
    summarizer = ScriptedModel().enqueue_error(ModelError("summary model down", provider="scripted"))
    summarizer.enqueue_text("S")
    config = {"context_window": 2_000, "summarize_at": 0.5, "clear_at": 1.0}
    with make_core(tmp_path, model, summarizer=summarizer, config=config) as core:
        session = core.session("s")
        failed = None
        for i in range(6):
            with caplog.at_level(logging.WARNING, logger="lash.compaction"):
                result = await session.turn(f"q{i}" + PAD).run()
            assert isinstance(result.outcome, Finished)
            events = [a.event for a in result.activities if a.kind == "compaction_finished"]
            if events and failed is None:
                [failed] = events
                assert failed.error and "summary model down" in failed.error and failed.frame_id is None
                assert session.frames() == []  # nothing half-opened
                assert "summary model down" in caplog.text
            elif events:
                assert events[0].error is None and len(session.frames()) == 1
                break
        assert failed is not None and summarizer.pending == 0


async def test_a_failing_summary_on_overflow_stops_the_turn_with_a_clear_reason(make_core, tmp_path):
    model = _chat_model(1).enqueue_error(ProviderHTTPError(400, OVERFLOW, provider="scripted"))
    summarizer = ScriptedModel().enqueue_error(ModelError("summary model down", provider="scripted"))
    with make_core(tmp_path, model, summarizer=summarizer, config={"context_window": 100_000}) as core:
        session = core.session("s")
        await session.turn("q0" + PAD).run()
        result = await session.turn("q1").run()
        assert isinstance(result.outcome, Stopped) and result.outcome.reason == "plugin_abort"
        assert "compaction failed" in result.outcome.detail and "summary model down" in result.outcome.detail
        assert session.frames() == []
        assert _texts(session.history())[:2] == ["q0" + PAD, "a0" + PAD]


async def test_disabled_for_a_session_by_its_options(make_core, tmp_path):
    model = _chat_model(2)
    summarizer = ScriptedModel()
    config = {"context_window": 300, "summarize_at": 0.5}
    with make_core(tmp_path, model, summarizer=summarizer, config=config) as core:
        spec = SessionSpec(plugin_options={"compaction": {"enabled": False}})
        session = core.session("s", spec=spec)
        for i in range(2):
            assert isinstance((await session.turn(f"q{i}" + PAD).run()).outcome, Finished)
        assert session.frames() == [] and summarizer.requests == []


async def test_an_unknown_window_leaves_turns_alone_with_one_warning(make_core, tmp_path, caplog):
    model = _chat_model(3)
    with make_core(tmp_path, model) as core:  # model id "scripted": not in DEFAULT_WINDOWS
        session = core.session("s")
        with caplog.at_level(logging.WARNING, logger="lash.compaction"):
            for i in range(3):
                assert isinstance((await session.turn(f"q{i}" + PAD).run()).outcome, Finished)
        assert caplog.text.count("no context window known for model 'scripted'") == 1
        assert session.frames() == []


# ------------------------------------------------------------------------------ by hand
async def test_compact_by_hand_summarises_all_but_the_last_exchange(make_core, tmp_path):
    model = _chat_model(3)
    summarizer = ScriptedModel().enqueue_text("S", usage=TokenUsage(input_tokens=40, output_tokens=4))
    with make_core(tmp_path, model, summarizer=summarizer, config={"context_window": 100_000}) as core:
        session = core.session("s")
        for i in range(3):
            await session.turn(f"q{i}").run()
        assert await session.compact("keep the file names") is True
        history = session.history()
        assert previous_summary(history) == "S" and _texts(history)[1:] == ["q2", "a2" + PAD]
        prompt = summarizer.requests[0].messages[0].text
        assert "keep the file names" in prompt and "q0" in prompt and "q2" not in prompt
        [record] = session.nodes("compaction")
        assert record.trigger == "manual" and record.instructions == "keep the file names"
        assert record.frame_id == session.frames()[-1].frame_id
        assert session.usage_report().by_source["compaction"].total_tokens == 44
        assert await session.compact() is False  # one exchange left: nothing to compact


async def test_compact_by_hand_failure_commits_no_frame(make_core, tmp_path):
    model = _chat_model(2)
    summarizer = ScriptedModel().enqueue_error(ModelError("down", provider="scripted"))
    with make_core(tmp_path, model, summarizer=summarizer, config={"context_window": 100_000}) as core:
        session = core.session("s")
        for i in range(2):
            await session.turn(f"q{i}").run()
        with pytest.raises(LashError, match="down"):
            await session.compact()
        assert session.frames() == [] and len(session.history()) == 4


# ------------------------------------------------------------------------------ resume
RESUME = """
import json, sys
from lash_kernel import LashCore, SqliteStore
from lash_kernel.testing import ScriptedModel

model = ScriptedModel().enqueue_text("resumed")
with LashCore(model_client=model, model="scripted", store=SqliteStore(sys.argv[1]), allow=["compaction"],
              plugin_config={"compaction": {"context_window": 100000}}) as core:
    result = core.session("s").run_sync("after restart")
    print(json.dumps({"outcome": result.text, "sent": [m.text for m in model.requests[0].messages]}))
"""


async def test_a_compacted_session_resumed_in_a_new_process_sends_only_its_current_frame(make_core, tmp_path):
    model = _chat_model(4)
    summarizer = ScriptedModel().enqueue_text("S")
    config = {"context_window": 100_000}
    with make_core(tmp_path, model, summarizer=summarizer, config=config) as core:
        session = core.session("s")
        for i in range(3):
            await session.turn(f"q{i}").run()
        assert await session.compact() is True
    script = tmp_path / "resume.py"
    script.write_text(textwrap.dedent(RESUME))
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "lash.db")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["outcome"] == "resumed"
    assert out["sent"][0].startswith(SUMMARY_MARKER)
    assert out["sent"][1:] == ["q2", "a2" + PAD, "after restart"]


def test_session_options_override_the_config():
    config = CompactionConfig(context_window=1_000)
    assert config.for_session({"summarize_at": 0.5}).summarize_at == 0.5
    with pytest.raises(ValueError, match="nope"):
        config.for_session({"nope": 1})


def test_windows_come_from_config_core_table_or_defaults_in_that_order():
    from lash_compaction import window_for

    config = CompactionConfig(windows={"local-": 4_096})
    assert window_for(config, "gpt-4o-2024-08-06", None) == 128_000  # DEFAULT_WINDOWS, by prefix
    assert window_for(config, "openai/gpt-4o-mini", None) == 128_000  # an OpenRouter id
    assert window_for(config, "local-gemma", None) == 4_096  # [plugins.compaction] windows
    assert window_for(config, "local-gemma", 8_000) == 8_000  # LashCore(context_window=...)
    assert window_for(CompactionConfig(context_window=1_000), "gpt-4o", 8_000) == 1_000
    assert window_for(config, "unknown", None) is None


def test_an_open_frame_id_must_not_be_empty():
    with pytest.raises(ValueError, match="frame_id"):
        OpenFrame(reason="compaction", seed=(), frame_id="")


async def test_disabled_in_the_config_the_plugin_is_inert_but_compacts_by_hand(make_core, tmp_path):
    model = _chat_model(3)
    summarizer = ScriptedModel().enqueue_text("S")
    config = {"enabled": False, "context_window": 300, "summarize_at": 0.5, "clear_at": 0.1}
    with make_core(tmp_path, model, summarizer=summarizer, config=config) as core:
        session = core.session("s")
        for i in range(3):
            result = await session.turn(f"q{i}" + PAD).run()
            assert isinstance(result.outcome, Finished)
            assert not [a for a in result.activities if a.kind.startswith("compaction_")]
        assert session.frames() == [] and summarizer.requests == []
        assert await session.compact() is True
