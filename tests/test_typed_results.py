"""Typed results: ``session.turn(input, output_schema=...)`` through the public API, with a
ScriptedModel and real SQLite files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import attrs
import pytest

from lash_kernel import LashCore
from lash_kernel.directives import InjectMessages
from lash_kernel.errors import ConfigError
from lash_kernel.hookspecs import hookimpl
from lash_kernel.messages import Message
from lash_kernel.outcomes import Finished, Stopped, outcome_json
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import ScriptedModel
from lash_kernel.tools import Tool, ToolProvider, tool

pytestmark = pytest.mark.anyio

CITY = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "population": {"type": "integer", "minimum": 0}},
    "required": ["name", "population"],
    "additionalProperties": False,
}


@attrs.frozen(kw_only=True)
class Verdict:
    """A yes/no verdict.

    Attributes:
        answer: the verdict.
        reasons: why, most important first.
        confidence: from 0 to 1.
    """

    answer: Literal["yes", "no"]
    reasons: tuple[str, ...]
    confidence: float = attrs.field(default=0.5, validator=attrs.validators.le(1.0))


def make_core(model: ScriptedModel, tmp_path, **kw) -> LashCore:
    kw.setdefault("store", SqliteStore(tmp_path / "lash.db"))
    return LashCore(model_client=model, model="scripted", entry_points=False, **kw)


def final_spec(model: ScriptedModel, index: int = 0):
    (spec,) = [t for t in model.requests[index].tools if t.name == "final_result"]
    return spec


async def test_dict_schema_gives_the_validated_arguments_as_the_value(tmp_path):
    model = ScriptedModel().enqueue_tool_calls(("final_result", {"name": "Oslo", "population": 709000}))
    with make_core(model, tmp_path) as core:
        result = await core.session("s").turn("biggest Norwegian city?", output_schema=CITY).run()
    assert result.outcome == Finished(output="final_value", value_json='{"name": "Oslo", "population": 709000}')
    assert result.value == {"name": "Oslo", "population": 709000}
    spec = final_spec(model)
    assert spec.input_schema == CITY
    assert "final answer" in spec.description
    assert len(model.requests) == 1  # the successful call ended the turn: no further model call


def test_attrs_class_gives_an_instance_through_run_sync(tmp_path):
    args = {"answer": "yes", "reasons": ["it is sunny", "it is warm"], "confidence": 0.9}
    model = ScriptedModel().enqueue_tool_calls(("final_result", args))
    with make_core(model, tmp_path) as core:
        result = core.session("s").run_sync("picnic today?", output_schema=Verdict)
    assert result.value == Verdict(answer="yes", reasons=("it is sunny", "it is warm"), confidence=0.9)
    schema = final_spec(model).input_schema
    assert schema["required"] == ["answer", "reasons"]
    assert schema["properties"]["answer"]["enum"] == ["yes", "no"]
    assert schema["properties"]["reasons"]["description"] == "why, most important first."


async def test_attrs_validator_refusal_is_an_error_the_model_fixes(tmp_path):
    model = ScriptedModel().enqueue_tool_calls(("final_result", {"answer": "no", "reasons": [], "confidence": 7}))
    model.enqueue_tool_calls(("final_result", {"answer": "no", "reasons": [], "confidence": 0.7}))
    with make_core(model, tmp_path) as core:
        result = await core.session("s").turn("picnic?", output_schema=Verdict).run()
    (_, bad), (_, good) = result.tool_calls
    assert bad.is_error and "Verdict" in bad.output and "confidence" in bad.output
    assert not good.is_error
    assert result.value == Verdict(answer="no", reasons=(), confidence=0.7)


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "integer"}, 42),
        ({"type": "array", "items": {"type": "string"}}, ["a", "b"]),
        ({"type": "string", "enum": ["red", "green"]}, "green"),
        ({"type": "null"}, None),
    ],
)
async def test_a_non_object_schema_is_wrapped_for_the_model_and_unwrapped(tmp_path, schema, value):
    model = ScriptedModel().enqueue_tool_calls(("final_result", {"value": value}))
    with make_core(model, tmp_path) as core:
        result = await core.session("s").turn("answer", output_schema=schema).run()
    assert final_spec(model).input_schema == {
        "type": "object", "properties": {"value": schema}, "required": ["value"], "additionalProperties": False
    }
    assert result.outcome.output == "final_value"
    assert json.loads(result.outcome.value_json) == value
    assert result.value == value


async def test_wrapping_keeps_refs_to_top_level_defs_resolvable(tmp_path):
    schema = {"$defs": {"colour": {"enum": ["red", "green"]}}, "type": "array", "items": {"$ref": "#/$defs/colour"}}
    model = ScriptedModel().enqueue_tool_calls(("final_result", {"value": ["red", "blue"]}))
    model.enqueue_tool_calls(("final_result", {"value": ["red", "green"]}))
    with make_core(model, tmp_path) as core:
        result = await core.session("s").turn("colours", output_schema=schema).run()
    sent = final_spec(model).input_schema
    assert sent["$defs"] == schema["$defs"] and "$defs" not in sent["properties"]["value"]
    (_, bad), (_, good) = result.tool_calls
    assert bad.is_error and "blue" in bad.output  # the $ref resolved: "blue" is not a colour
    assert not good.is_error
    assert result.value == ["red", "green"]


async def test_invalid_arguments_are_an_error_result_and_the_model_fixes_them(tmp_path):
    model = ScriptedModel()
    model.enqueue_tool_calls(("final_result", {"name": "Oslo", "population": "many"}))
    model.enqueue_tool_calls(("final_result", {"name": "Oslo", "population": 709000}))
    with make_core(model, tmp_path) as core:
        session = core.session("s")
        result = await session.turn("city?", output_schema=CITY).run()
    (_, bad), (_, good) = result.tool_calls
    assert bad.is_error and "population" in bad.output and "integer" in bad.output
    assert not good.is_error
    assert result.value == {"name": "Oslo", "population": 709000}
    # the second model call saw the error result
    last = model.requests[1].messages[-1]
    assert last.role == "tool" and last.parts[0].is_error
    assert [m.role for m in result.messages] == ["user", "assistant", "tool", "assistant", "tool"]


async def test_other_calls_in_the_final_batch_still_run_and_are_committed(tmp_path):
    ran: list[str] = []

    @tool
    def note(text: str) -> str:
        """Write a note."""
        ran.append(text)
        return "noted"

    model = ScriptedModel().enqueue_tool_calls(
        ("note", {"text": "remember Oslo"}), ("final_result", {"name": "Oslo", "population": 1})
    )
    with make_core(model, tmp_path, tools=[note]) as core:
        result = await core.session("s").turn("city?", output_schema=CITY).run()
    assert ran == ["remember Oslo"]
    assert [(c.name, r.is_error) for c, r in result.tool_calls] == [("note", False), ("final_result", False)]
    assert result.tool_calls[0][1].output == "noted"
    assert result.value == {"name": "Oslo", "population": 1}


async def test_a_prose_answer_gets_one_reminder_then_the_value(tmp_path):
    model = ScriptedModel().enqueue_text("Oslo, about 700k people.")
    model.enqueue_tool_calls(("final_result", {"name": "Oslo", "population": 709000}))
    with make_core(model, tmp_path) as core:
        result = await core.session("s").turn("city?", output_schema=CITY).run()
    assert result.value == {"name": "Oslo", "population": 709000}
    reminder = result.messages[2]
    assert reminder.role == "user" and "final_result" in reminder.text
    assert model.requests[1].messages[-1] == reminder
    assert [m.role for m in result.messages] == ["user", "assistant", "user", "assistant", "tool"]


async def test_two_prose_answers_stop_with_no_final_value(tmp_path):
    model = ScriptedModel().enqueue_text("Oslo.").enqueue_text("I said Oslo.")
    with make_core(model, tmp_path) as core:
        result = await core.session("s").turn("city?", output_schema=CITY).run()
    assert isinstance(result.outcome, Stopped)
    assert result.outcome.reason == "no_final_value"
    assert result.outcome.text == "I said Oslo." and "final_result" in result.outcome.detail
    assert result.value is None
    assert len(model.requests) == 2


async def test_the_reminder_counts_against_max_turns(tmp_path):
    model = ScriptedModel().enqueue_text("Oslo.")
    with make_core(model, tmp_path) as core:
        result = await core.session("s").turn("city?", output_schema=CITY, max_turns=1).run()
    assert result.outcome.reason == "max_turns"
    assert len(model.requests) == 1


async def test_the_value_survives_a_reopen(tmp_path):
    model = ScriptedModel().enqueue_tool_calls(("final_result", {"value": ["x", "y"]}))
    with make_core(model, tmp_path) as core:
        result = await core.session("s").turn("letters", output_schema={"type": "array"}).run()
    assert result.value == ["x", "y"]
    with make_core(ScriptedModel(), tmp_path) as core:  # a new core on the same SQLite file
        outcome = core.session("s").turns()[-1].outcome
    assert isinstance(outcome, Finished) and outcome.output == "final_value"
    assert json.loads(outcome.value_json) == ["x", "y"]
    assert outcome_json(outcome) == {"type": "finished", "output": "final_value", "value": ["x", "y"]}


async def test_a_turn_without_output_schema_offers_no_final_tool(tmp_path):
    model = ScriptedModel().enqueue_text("hi")
    with make_core(model, tmp_path) as core:
        result = await core.session("s").turn("hello").run()
    assert result.value is None and result.outcome == Finished(text="hi")
    assert [t.name for t in model.requests[0].tools] == []


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "strng"}, "not a valid JSON Schema"),
        ({"type": "object", "required": "name"}, "not a valid JSON Schema"),
        ({"type": "object", "default": object()}, "not JSON-serialisable"),
        (int, "not an attrs class"),
        ("a string", "expected a JSON Schema"),
    ],
)
async def test_an_invalid_schema_is_refused_before_anything_runs(tmp_path, schema, words):
    model = ScriptedModel()
    with make_core(model, tmp_path) as core:
        session = core.session("s")
        with pytest.raises(ConfigError, match=words):
            session.turn("x", output_schema=schema)
        assert session.pending_inputs() == [] and session.turns() == []
    assert model.requests == []


async def test_an_attrs_class_the_derivation_cannot_handle_is_refused(tmp_path):
    @attrs.frozen
    class Opaque:
        handle: object

    with make_core(ScriptedModel(), tmp_path) as core, pytest.raises(ConfigError, match="Opaque"):
        core.session("s").turn("x", output_schema=Opaque)


async def test_a_static_tool_named_final_result_is_refused_in_turn(tmp_path):
    @tool
    def final_result(x: int) -> int:
        """Mine."""
        return x

    with make_core(ScriptedModel(), tmp_path, tools=[final_result]) as core:
        with pytest.raises(ConfigError, match="final_result"):
            core.session("s").turn("x", output_schema=CITY)
        # without output_schema the host's own tool is fine
        assert core.session("s2").turn("x") is not None


async def test_a_provider_tool_named_final_result_stops_the_turn_with_runtime_error(tmp_path):
    async def impostor(**_: object) -> str:
        return "{}"

    class Provider:
        name = "remote"

        async def list_tools(self):
            return [Tool(name="final_result", fn=impostor)]

        def close(self) -> None:
            pass

    assert isinstance(Provider(), ToolProvider)

    class Plugin:
        @hookimpl
        def lash_register_tools(self, registry):
            registry.add_provider(Provider())

    model = ScriptedModel()
    with make_core(model, tmp_path, plugins=[Plugin()]) as core:
        result = await core.session("s").turn("x", output_schema=CITY).run()
    assert result.outcome.reason == "runtime_error"
    assert "final_result" in result.outcome.detail and "remote" in result.outcome.detail
    assert model.requests == []


async def test_before_finish_checkpoint_sees_the_value_and_can_send_the_model_back(tmp_path):
    seen: list[str] = []

    class Reviewer:
        @hookimpl
        def lash_checkpoint(self, phase, messages):
            seen.append(phase)
            if phase == "before_finish" and seen.count("before_finish") == 1:
                return InjectMessages(messages=(Message.user("Population must be exact."),))
            return None

    model = ScriptedModel().enqueue_tool_calls(("final_result", {"name": "Oslo", "population": 700000}))
    model.enqueue_text("Sorry.")  # prose after the injection: reminded once ...
    model.enqueue_tool_calls(("final_result", {"name": "Oslo", "population": 709037}))  # ... then the value
    with make_core(model, tmp_path, plugins=[Reviewer()]) as core:
        result = await core.session("s").turn("city?", output_schema=CITY).run()
    assert result.value == {"name": "Oslo", "population": 709037}
    assert seen == ["before_finish", "before_finish", "before_finish"]
    texts = [m.text for m in result.messages if m.role == "user"]
    assert texts[1] == "Population must be exact." and "final_result" in texts[2]


def test_the_quickstart_example_runs(tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parents[1] / "docs" / "quickstart.md").read_text(encoding="utf-8")
    section = text.split("## Typed results", 1)[1]
    (block,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    monkeypatch.chdir(tmp_path)
    code = compile(block, "docs/quickstart.md (Typed results)", "exec", dont_inherit=True)  # no __future__
    exec(code, {"__name__": "quickstart"})
    assert (tmp_path / "typed.db").exists()
