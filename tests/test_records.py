"""Records and pure helpers: wire format (golden), repair, usage ledger, prompt assembly."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from lash_kernel.errors import ProviderHTTPError, RecordDecodeError
from lash_kernel.messages import Attachment, Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart, repair_history
from lash_kernel.outcomes import Finished, Outcome, Stopped, outcome_json
from lash_kernel.prompt import PromptContribution, assemble_prompt
from lash_kernel.serde import dumps, loads, loads_messages
from lash_kernel.usage import TokenUsage, UsageKey, UsageLedger, diff_ledgers, usage_key

GOLDEN = Path(__file__).parent / "data" / "records"

ASSISTANT = Message(
    role="assistant",
    parts=(
        ReasoningPart(text="think", signature="sig", provider="anthropic"),
        TextPart(text="Checking."),
        ToolCallPart(id="c1", name="get_weather", arguments='{"city":"Paris"}'),
    ),
)
CASES = {
    "message_assistant": (ASSISTANT, Message),
    "message_tool": (Message(role="tool", parts=(ToolResultPart(call_id="c1", name="get_weather", output="sunny", is_error=False),)), Message),
    "outcome_finished": (Finished(text="done"), Outcome),
    "outcome_stopped": (Stopped(reason="provider_error", detail="HTTP 401"), Outcome),
    "usage_ledger": (UsageLedger.of([(UsageKey(source="turn", model="m"), TokenUsage(input_tokens=3, output_tokens=2), 1)]), UsageLedger),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_wire_format_is_pinned_by_golden_files(name):
    obj, type_ = CASES[name]
    golden = GOLDEN / f"{name}.json"
    assert json.loads(dumps(obj, type_)) == json.loads(golden.read_text())
    assert loads(golden.read_text(), type_) == obj


def test_reading_is_lenient_about_unknown_keys_and_strict_about_unknown_kinds():
    data = {"role": "user", "parts": [{"kind": "text", "text": "hi", "added_in_v9": True}], "extra": 1}
    assert loads(json.dumps(data), Message) == Message.user("hi")
    with pytest.raises(RecordDecodeError, match="unknown message part kind 'video'"):
        loads('{"role": "user", "parts": [{"kind": "video"}]}', Message)
    with pytest.raises(RecordDecodeError, match="invalid JSON"):
        loads("{not json", Message)


def test_batch_decoder_matches_the_record_classes_field_for_field():
    """``loads_messages`` fills records without calling ``__init__``: the result must be equal,
    hash alike and default every optional field exactly as the classes do."""
    image = Attachment(media_type="image/png", data="iVBORw0KGgo=", name="plot")
    messages = [
        ASSISTANT,
        Message(role="assistant", parts=(ReasoningPart(encrypted="e", item_id="rs_1"),)),
        Message(role="tool", parts=(ToolResultPart(call_id="c1", name="f", output="o", is_error=True, attachments=(image,)),)),
        Message(role="tool", parts=(ToolResultPart(call_id="c2", name="f", output="o"),)),
        Message(role="system", parts=()),
        Message.user("ünïcode ✓"),
    ]
    decoded = loads_messages([dumps(m, Message) for m in messages])
    assert decoded == messages
    assert [hash(m) for m in decoded] == [hash(m) for m in messages]
    assert [repr(m) for m in decoded] == [repr(m) for m in messages]


def test_batch_decoder_leaves_the_garbage_collector_as_it_found_it():
    """Decoding pauses the cyclic GC (the records are acyclic) and restores its state, also
    after a failure, and never turns on a collector the host had turned off."""
    texts = [dumps(Message.user("q"), Message)]
    assert gc.isenabled()
    loads_messages(texts)
    assert gc.isenabled()
    with pytest.raises(RecordDecodeError):
        loads_messages(["{not json"])
    assert gc.isenabled()
    gc.disable()
    try:
        loads_messages(texts)
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"role": "user", "parts": [{"kind": "tool_call", "name": "f"}]}', "cannot decode message 1"),  # no id
        ('{"role": "robot", "parts": []}', "unknown message role"),
        ('{"role": "user", "parts": [{"kind": "video"}]}', "unknown message part kind"),
        ("{not json", "invalid JSON"),
    ],
)
def test_batch_decoder_refuses_bad_messages(text, error):
    with pytest.raises(RecordDecodeError, match=error):
        loads_messages([dumps(Message.user("fine"), Message), text])


def test_repair_adds_interrupted_results_and_drops_strays():
    history = (
        Message.user("q"),
        Message(role="tool", parts=(ToolResultPart(call_id="ghost", name="x", output="?"),)),  # stray
        Message(role="assistant", parts=(ToolCallPart(id="a", name="f"), ToolCallPart(id="b", name="g"))),
        Message(role="tool", parts=(ToolResultPart(call_id="b", name="g", output="B"),)),
        Message.user("next"),
    )
    repaired = repair_history(history)
    assert [m.role for m in repaired] == ["user", "assistant", "tool", "user"]
    a, b = repaired[2].parts
    assert (a.call_id, a.is_error) == ("a", True) and "interrupted" in a.output
    assert (b.call_id, b.output) == ("b", "B")


def test_repair_returns_a_consistent_history_unchanged():
    history = (Message.user("q"), Message(role="assistant", parts=(TextPart(text="a"),)))
    assert repair_history(history) is history
    calls = Message(role="assistant", parts=(ToolCallPart(id="a", name="f"), ToolCallPart(id="b", name="g")))
    answered = Message(role="tool", parts=(ToolResultPart(call_id="a", name="f", output="A"), ToolResultPart(call_id="b", name="g", output="B")))
    history = (Message.user("q"), calls, answered, Message(role="assistant", parts=(TextPart(text="done"),)))
    assert repair_history(history) is history


def test_repair_puts_results_spread_or_out_of_order_into_call_order():
    calls = Message(role="assistant", parts=(ToolCallPart(id="a", name="f"), ToolCallPart(id="b", name="g")))
    result_a = ToolResultPart(call_id="a", name="f", output="A")
    result_b = ToolResultPart(call_id="b", name="g", output="B")
    for answers in (
        (Message(role="tool", parts=(result_b, result_a)),),
        (Message(role="tool", parts=(result_b,)), Message(role="tool", parts=(result_a,))),
    ):
        repaired = repair_history((Message.user("q"), calls, *answers))
        assert repaired == (Message.user("q"), calls, Message(role="tool", parts=(result_a, result_b)))


def test_usage_is_keyed_by_the_requested_model_with_served_models_as_detail():
    assert usage_key("turn", "gpt-4o", "gpt-4o-2024-08-06") == UsageKey(source="turn", model="gpt-4o", served_model="gpt-4o-2024-08-06")
    assert usage_key("turn", "gpt-4o", "gpt-4o") == UsageKey(source="turn", model="gpt-4o")
    assert usage_key("turn", "", "served-only") == UsageKey(source="turn", model="served-only")
    assert usage_key("turn", "asked", "") == UsageKey(source="turn", model="asked")
    ledger = UsageLedger.of(
        [
            (usage_key("turn", "auto", "model-b"), TokenUsage(input_tokens=2), 1),
            (usage_key("turn", "auto", "model-a"), TokenUsage(input_tokens=3), 2),
            (usage_key("turn", "auto", "auto"), TokenUsage(input_tokens=5), 1),
        ]
    )
    report = ledger.report()
    assert report.by_source_model == {("turn", "auto"): TokenUsage(input_tokens=10)}
    assert report.calls == {("turn", "auto"): 4}
    assert report.served == {("turn", "auto"): ("model-a", "model-b")}
    assert ledger.get("turn", "auto") == TokenUsage(input_tokens=10)
    assert report.to_json()["by_source_model"][0]["served_models"] == ["model-a", "model-b"]
    # a key without a served model serialises as before, so earlier commits' hashes still match
    assert json.loads(dumps(UsageKey(source="turn", model="m"), UsageKey)) == {"source": "turn", "model": "m"}


def test_usage_arithmetic_and_reports():
    a = TokenUsage(input_tokens=10, output_tokens=5, cache_read_input_tokens=2, cache_write_input_tokens=1, reasoning_output_tokens=3)
    assert a.total_tokens == 18  # reasoning is inside output
    ledger = UsageLedger.of(
        [
            (UsageKey(source="turn", model="m1"), a, 1),
            (UsageKey(source="turn", model="m1"), a, 1),
            (UsageKey(source="compaction", model="m2"), TokenUsage(input_tokens=7), 1),
        ]
    )
    report = ledger.report()
    assert report.by_source["turn"] == a + a
    assert report.by_model["m2"] == TokenUsage(input_tokens=7)
    assert report.calls[("turn", "m1")] == 2
    assert report.total == a + a + TokenUsage(input_tokens=7)
    as_json = report.to_json()
    assert as_json["by_source_model"][0]["source"] == "compaction"
    before = UsageLedger.of([(UsageKey(source="turn", model="m1"), a, 1)])
    assert diff_ledgers(ledger, before).total() == a + TokenUsage(input_tokens=7)


def test_prompt_assembly_orders_by_slot_then_priority_and_gates_on_tools():
    contributions = [
        PromptContribution(slot="memory", content="remembered"),
        PromptContribution(slot="instructions", content="low", priority=0),
        PromptContribution(slot="instructions", title="Rules", content="high", priority=5),
        PromptContribution(content="needs search", tool_gate="search"),
        PromptContribution(content="   "),
    ]
    prompt = assemble_prompt("Base.", contributions, frozenset({"calc"}))
    assert prompt == "Base.\n\n## Rules\n\nhigh\n\nlow\n\nremembered"
    assert assemble_prompt(None, [], frozenset()) is None


def test_outcome_json_shapes():
    assert outcome_json(Finished(text="x")) == {"type": "finished", "output": "assistant_message"}
    assert outcome_json(Stopped(reason="max_turns", detail="d")) == {"type": "stopped", "reason": "max_turns", "detail": "d"}


def test_provider_http_error_extracts_the_providers_message():
    err = ProviderHTTPError(400, '{"error": {"message": "Unsupported value: developer"}}', provider="openai")
    assert str(err) == "openai returned HTTP 400: Unsupported value: developer"
    assert not err.retryable
    assert ProviderHTTPError(503, "<html>busy</html>").retryable
