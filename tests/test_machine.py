"""TurnMachine: synchronous, table-driven. No async, no hooks, no I/O."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import lash_kernel.runtime.machine as machine_module
from lash_kernel.activity import ModelRequestStarted, ToolCallCompleted, ToolCallStarted, UsageReported
from lash_kernel.directives import InjectMessages
from lash_kernel.errors import MachineStateError
from lash_kernel.messages import Message, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.model import ModelResponse
from lash_kernel.outcomes import Finished, Stopped
from lash_kernel.runtime.effects import CallModel, Checkpoint, EmitActivity, FinishTurn, RunTools
from lash_kernel.runtime.events import (
    CancelRequested,
    CheckpointResolved,
    ModelFailed,
    ModelResponded,
    ToolCallFinished,
    TurnFailed,
)
from lash_kernel.runtime.machine import MachineConfig, TurnMachine, TurnState
from lash_kernel.usage import TokenUsage, UsageKey


def respond(*parts, finish="stop", usage=TokenUsage(input_tokens=10, output_tokens=2), model="m"):
    return ModelResponse(
        message=Message(role="assistant", parts=tuple(parts)),
        usage=usage,
        finish_reason=finish,
        model=model,
        provider="test",
    )


def call(i: str, name: str = "f", args: str = "{}") -> ToolCallPart:
    return ToolCallPart(id=i, name=name, arguments=args)


def result(i: str, out: str, name: str = "f", err: bool = False) -> ToolResultPart:
    return ToolResultPart(call_id=i, name=name, output=out, is_error=err)


def kinds(effects):
    return [type(e.event).__name__ if isinstance(e, EmitActivity) else type(e).__name__ for e in effects]


def new(max_turns: int = 4, history=()) -> TurnMachine:
    return TurnMachine(config=MachineConfig(turn_id="t", model="m", max_turns=max_turns), history=tuple(history))


def test_machine_imports_no_io_clock_or_randomness():
    tree = ast.parse(Path(machine_module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    forbidden = {"httpx", "anyio", "asyncio", "trio", "sqlite3", "sqlite_utils", "pluggy", "time", "random", "uuid",
                 "datetime", "os", "socket", "threading"}
    assert imported & forbidden == set()
    assert imported <= {"__future__", "attrs", "enum", "collections", "typing", "lash_kernel"}


def test_plain_answer_finishes_with_text_and_usage():
    m = new()
    effects = m.start(Message.user("hi"), now=1.0)
    assert kinds(effects) == ["ModelRequestStarted", "CallModel"]
    request = effects[1].request
    assert request.request_id == "t:m1" and request.messages == (Message.user("hi"),)
    out = m.feed(ModelResponded(request_id="t:m1", response=respond(TextPart(text="hello"))))
    assert kinds(out) == ["UsageReported", "FinishTurn"]
    finish = out[-1]
    assert finish.outcome == Finished(text="hello")
    assert [msg.role for msg in finish.messages] == ["user", "assistant"]
    assert finish.usage.get("turn", "m") == TokenUsage(input_tokens=10, output_tokens=2)
    assert m.state is TurnState.DONE


def test_two_tool_calls_results_fed_out_of_order_return_in_call_order():
    m = new()
    m.start(Message.user("go"), now=0)
    out = m.feed(ModelResponded(request_id="t:m1", response=respond(call("a"), call("b", "g"), finish="tool_calls")))
    assert kinds(out) == ["UsageReported", "ToolCallStarted", "ToolCallStarted", "RunTools"]
    assert out[-1] == RunTools(calls=(call("a"), call("b", "g")))
    assert kinds(m.feed(ToolCallFinished(result=result("b", "B", "g"), duration_s=0.1))) == ["ToolCallCompleted"]
    out = m.feed(ToolCallFinished(result=result("a", "A"), duration_s=0.2))
    assert kinds(out) == ["ToolCallCompleted", "ModelRequestStarted", "CallModel"]
    sent = out[-1].request
    assert sent.request_id == "t:m2"
    assert sent.messages[-1] == Message(role="tool", parts=(result("a", "A"), result("b", "B", "g")))
    out = m.feed(ModelResponded(request_id="t:m2", response=respond(TextPart(text="done"))))
    finish = out[-1]
    assert finish.outcome == Finished(text="done")
    assert [msg.role for msg in finish.messages] == ["user", "assistant", "tool", "assistant"]
    key = UsageKey(source="turn", model="m")
    assert finish.usage.entries == ((key, TokenUsage(input_tokens=20, output_tokens=4), 2),)
    usage_events = [e.event for e in out if isinstance(e, EmitActivity) and isinstance(e.event, UsageReported)]
    assert usage_events[0].cumulative == TokenUsage(input_tokens=20, output_tokens=4)


def test_max_turns_runs_the_last_tools_then_stops():
    m = new(max_turns=1)
    m.start(Message.user("go"), now=0)
    m.feed(ModelResponded(request_id="t:m1", response=respond(call("a"), finish="tool_calls")))
    out = m.feed(ToolCallFinished(result=result("a", "A"), duration_s=0))
    finish = out[-1]
    assert isinstance(finish, FinishTurn)
    assert finish.outcome.reason == "max_turns"
    assert finish.messages[-1].parts == (result("a", "A"),)  # history stays consistent


@pytest.mark.parametrize(("finish", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")])
def test_truncated_or_filtered_output_stops_and_answers_dangling_calls(finish, reason):
    m = new()
    m.start(Message.user("go"), now=0)
    out = m.feed(ModelResponded(request_id="t:m1", response=respond(TextPart(text="par"), call("a"), finish=finish)))
    done = out[-1]
    assert done.outcome == Stopped(reason=reason, detail=done.outcome.detail, text="par")
    tool_msg = done.messages[-1]
    assert tool_msg.role == "tool" and tool_msg.parts[0].is_error and tool_msg.parts[0].call_id == "a"


def test_provider_failure_stops_with_the_message_and_keeps_the_input():
    m = new()
    m.start(Message.user("hi"), now=0)
    out = m.feed(ModelFailed(request_id="t:m1", message="openai returned HTTP 401: bad key", status=401))
    assert out[-1].outcome == Stopped(reason="provider_error", detail="openai returned HTTP 401: bad key")
    assert out[-1].messages == (Message.user("hi"),)


def test_cancel_mid_tools_answers_every_call():
    m = new()
    m.start(Message.user("go"), now=0)
    m.feed(ModelResponded(request_id="t:m1", response=respond(call("a"), call("b"), finish="tool_calls")))
    m.feed(ToolCallFinished(result=result("a", "A"), duration_s=0))
    out = m.feed(CancelRequested(reason="user pressed stop"))
    assert out[-1].outcome == Stopped(reason="cancelled", detail="user pressed stop")
    parts = out[-1].messages[-1].parts
    assert [p.call_id for p in parts] == ["a", "b"]
    assert parts[0].output == "A" and parts[1].is_error and "cancelled" in parts[1].output


def test_turn_failed_stops_with_its_reason():
    m = new()
    m.start(Message.user("go"), now=0)
    out = m.feed(TurnFailed(reason="plugin_abort", message="plugin 'x' failed"))
    assert out[-1].outcome == Stopped(reason="plugin_abort", detail="plugin 'x' failed")


@pytest.mark.parametrize(
    "event",
    [
        ToolCallFinished(result=result("zz", "x"), duration_s=0),
        ModelResponded(request_id="t:m9", response=respond(TextPart(text="x"))),
    ],
)
def test_illegal_events_raise_and_the_machine_stays_failed(event):
    m = new()
    m.start(Message.user("go"), now=0)
    with pytest.raises(MachineStateError):
        m.feed(event)
    assert m.state is TurnState.FAILED
    with pytest.raises(MachineStateError):
        m.feed(ModelFailed(request_id="t:m1", message="x"))


def test_events_after_done_are_illegal():
    m = new()
    m.start(Message.user("go"), now=0)
    m.feed(ModelResponded(request_id="t:m1", response=respond(TextPart(text="x"))))
    with pytest.raises(MachineStateError):
        m.feed(CancelRequested())


def test_start_twice_is_illegal():
    m = new()
    m.start(Message.user("a"), now=0)
    with pytest.raises(MachineStateError):
        m.start(Message.user("b"), now=0)
    assert m.state is TurnState.FAILED


@pytest.mark.parametrize("role", ["assistant", "tool", "system"])
def test_non_user_input_finishes_at_once_with_stopped_invalid_input(role):
    m = new()
    effects = m.start(Message(role=role, parts=(TextPart(text="x"),)), now=0)
    assert kinds(effects) == ["FinishTurn"]
    finish = effects[0]
    assert finish.outcome.reason == "invalid_input" and repr(role) in finish.outcome.detail
    assert finish.messages == () and finish.usage.total() == TokenUsage()
    assert m.state is TurnState.DONE
    with pytest.raises(MachineStateError):
        m.feed(CancelRequested())


# ------------------------------------------------------------------------------- the diagram

_ARROW = re.compile(r"^\s*([A-Z_]+(?:\s*\|\s*[A-Z_]+)*)\s+--(\w+)-->\s+([A-Z_]+(?:\s*\|\s*[A-Z_]+)*)\s*$")


def _diagram_arrows() -> set[tuple[str, str, str]]:
    """Every ``SOURCES --Event--> TARGETS`` line of machine.py's docstring, one arrow per pair."""
    arrows = set()
    lines = [line for line in machine_module.__doc__.splitlines() if "-->" in line]
    assert lines, "the machine docstring lost its diagram"
    for line in lines:
        match = _ARROW.match(line)
        assert match, f"unparseable diagram line: {line!r}"
        sources, event, targets = match.groups()
        for source in sources.split("|"):
            for target in targets.split("|"):
                arrows.add((source.strip(), event, target.strip()))
    return arrows


def test_the_docstring_diagram_and_the_transition_table_agree():
    table = {
        (state.name, event.__name__, target.name)
        for (state, event), (_handler, targets) in machine_module._TABLE.items()
        for target in targets
    }
    table |= {("IDLE", "start", target.name) for target in machine_module.START_TARGETS}
    assert _diagram_arrows() == table


def test_a_handler_leaving_the_table_is_a_machine_error(monkeypatch):
    table = dict(machine_module._TABLE)
    handler, _ = table[(TurnState.AWAITING_MODEL, ModelFailed)]
    table[(TurnState.AWAITING_MODEL, ModelFailed)] = (handler, frozenset({TurnState.RUNNING_TOOLS}))
    monkeypatch.setattr(machine_module, "_TABLE", table)
    m = new()
    m.start(Message.user("go"), now=0)
    with pytest.raises(MachineStateError, match="not in the table"):
        m.feed(ModelFailed(request_id="t:m1", message="x"))


def test_history_with_orphaned_tool_call_is_repaired_before_the_first_request():
    history = (Message.user("q"), Message(role="assistant", parts=(call("x"),)))
    m = new(history=history)
    request = m.start(Message.user("again"), now=0)[1].request
    roles = [msg.role for msg in request.messages]
    assert roles == ["user", "assistant", "tool", "user"]
    assert request.messages[2].parts[0].call_id == "x" and request.messages[2].parts[0].is_error


def test_activity_correlation_ids():
    m = new()
    effects = m.start(Message.user("go"), now=0)
    assert effects[0] == EmitActivity(event=ModelRequestStarted(request_id="t:m1", model="m"), correlation_id="t:m1")
    out = m.feed(ModelResponded(request_id="t:m1", response=respond(call("a"), finish="tool_calls")))
    started = [e for e in out if isinstance(e, EmitActivity) and isinstance(e.event, ToolCallStarted)]
    assert started[0].correlation_id == "a"
    out = m.feed(ToolCallFinished(result=result("a", "A"), duration_s=0.5))
    completed = out[0]
    assert isinstance(completed.event, ToolCallCompleted) and completed.correlation_id == "a"
    assert completed.event.duration_s == 0.5
    assert isinstance(out[-1], CallModel)


# ------------------------------------------------------------------------------- typed results (final_tool)


def typed(max_turns: int = 4, checkpoints: bool = False) -> TurnMachine:
    config = MachineConfig(
        turn_id="t", model="m", max_turns=max_turns, final_tool="final_result", checkpoints=checkpoints
    )
    return TurnMachine(config=config)


def test_a_successful_final_tool_call_finishes_with_its_output_as_the_value():
    m = typed()
    m.start(Message.user("go"), now=0)
    calls = (call("a", "note"), call("b", "final_result", '{"x": 1}'))
    m.feed(ModelResponded(request_id="t:m1", response=respond(TextPart(text="here"), *calls, finish="tool_calls")))
    assert kinds(m.feed(ToolCallFinished(result=result("b", '{"x": 1}', "final_result"), duration_s=0))) == [
        "ToolCallCompleted"
    ]
    out = m.feed(ToolCallFinished(result=result("a", "noted", "note"), duration_s=0))
    assert kinds(out) == ["ToolCallCompleted", "FinishTurn"]
    finish = out[-1]
    assert finish.outcome == Finished(output="final_value", text="here", value_json='{"x": 1}')
    # the other call of the batch is committed with the final one, in call order
    assert finish.messages[-1].parts == (result("a", "noted", "note"), result("b", '{"x": 1}', "final_result"))
    assert m.state is TurnState.DONE


def test_a_failed_final_tool_call_goes_back_to_the_model():
    m = typed()
    m.start(Message.user("go"), now=0)
    m.feed(ModelResponded(request_id="t:m1", response=respond(call("a", "final_result"), finish="tool_calls")))
    out = m.feed(ToolCallFinished(result=result("a", "invalid arguments", "final_result", err=True), duration_s=0))
    assert kinds(out) == ["ToolCallCompleted", "ModelRequestStarted", "CallModel"]
    assert m.state is TurnState.AWAITING_MODEL


def test_without_final_tool_a_call_named_final_result_is_just_a_tool():
    m = new()
    m.start(Message.user("go"), now=0)
    m.feed(ModelResponded(request_id="t:m1", response=respond(call("a", "final_result"), finish="tool_calls")))
    out = m.feed(ToolCallFinished(result=result("a", "{}", "final_result"), duration_s=0))
    assert kinds(out)[-1] == "CallModel"


def test_prose_gets_one_reminder_then_stops_with_no_final_value():
    m = typed()
    m.start(Message.user("go"), now=0)
    out = m.feed(ModelResponded(request_id="t:m1", response=respond(TextPart(text="prose"))))
    assert kinds(out) == ["UsageReported", "ModelRequestStarted", "CallModel"]
    assert m.state is TurnState.AWAITING_MODEL
    reminder = out[-1].request.messages[-1]
    assert reminder.role == "user" and "final_result" in reminder.text
    out = m.feed(ModelResponded(request_id="t:m2", response=respond(TextPart(text="more prose"))))
    finish = out[-1]
    assert finish.outcome.reason == "no_final_value" and finish.outcome.text == "more prose"
    assert [msg.role for msg in finish.messages] == ["user", "assistant", "user", "assistant"]
    assert finish.usage.get("turn", "m") == TokenUsage(input_tokens=20, output_tokens=4)


def test_the_reminder_respects_max_turns():
    m = typed(max_turns=1)
    m.start(Message.user("go"), now=0)
    out = m.feed(ModelResponded(request_id="t:m1", response=respond(TextPart(text="prose"))))
    assert kinds(out) == ["UsageReported", "FinishTurn"]
    assert out[-1].outcome.reason == "max_turns" and out[-1].outcome.text == "prose"


def test_checkpoints_come_before_the_reminder_and_before_the_value():
    m = typed(checkpoints=True)
    m.start(Message.user("go"), now=0)
    out = m.feed(ModelResponded(request_id="t:m1", response=respond(TextPart(text="prose"))))
    assert out[-1] == Checkpoint(phase="before_finish", messages=tuple(m.messages))
    out = m.feed(CheckpointResolved())  # nothing to add: the reminder follows
    assert kinds(out) == ["ModelRequestStarted", "CallModel"]
    m.feed(ModelResponded(request_id="t:m2", response=respond(call("a", "final_result"), finish="tool_calls")))
    out = m.feed(ToolCallFinished(result=result("a", "[1]", "final_result"), duration_s=0))
    assert kinds(out) == ["ToolCallCompleted", "Checkpoint"] and out[-1].phase == "before_finish"
    out = m.feed(CheckpointResolved())
    assert out[-1].outcome == Finished(output="final_value", value_json="[1]")


def test_injecting_at_the_final_checkpoint_drops_the_value():
    m = typed(checkpoints=True)
    m.start(Message.user("go"), now=0)
    m.feed(ModelResponded(request_id="t:m1", response=respond(call("a", "final_result"), finish="tool_calls")))
    m.feed(ToolCallFinished(result=result("a", "[1]", "final_result"), duration_s=0))
    out = m.feed(CheckpointResolved(directive=InjectMessages(messages=(Message.user("not yet"),))))
    assert kinds(out) == ["ModelRequestStarted", "CallModel"]
    m.feed(ModelResponded(request_id="t:m2", response=respond(call("b", "final_result"), finish="tool_calls")))
    m.feed(ToolCallFinished(result=result("b", "[2]", "final_result"), duration_s=0))
    out = m.feed(CheckpointResolved())
    assert out[-1].outcome.value_json == "[2]"
