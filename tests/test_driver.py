"""The driver end to end: ScriptedModel or real provider code over MockTransport, real SQLite."""

from __future__ import annotations

import json
import threading

import anyio
import pytest

from lash_kernel.activity import (
    AssistantProseDelta,
    ModelAttemptReset,
    RetryStatus,
    ToolCallCompleted,
    ToolCallStarted,
    TurnFinished,
)
from lash_kernel.errors import ProviderConnectionError, ProviderHTTPError
from lash_kernel.hookspecs import hookimpl
from lash_kernel.outcomes import Finished, Stopped
from lash_kernel.prompt import PromptContribution
from lash_kernel.providers.openai_chat import OpenAIChatProvider
from lash_kernel.runtime.core import LashCore
from lash_kernel.runtime.driver import RetryPolicy
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import ScriptedModel, ScriptedReply, WireScript, sse_body
from lash_kernel.tools import ToolContext, tool
from lash_kernel.usage import TokenUsage

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.0, jitter=0.0)


def make_core(model, tmp_path, **kw) -> LashCore:
    kw.setdefault("store", SqliteStore(tmp_path / "lash.db"))
    kw.setdefault("retry", FAST_RETRY)
    return LashCore(model_client=model, model="scripted", entry_points=False, **kw)


async def test_two_concurrent_tool_calls_stream_and_commit_to_sqlite(tmp_path):
    both_started = threading.Barrier(2, timeout=5)

    @tool
    def city_weather(city: str) -> str:
        """Weather for a city."""
        both_started.wait()  # deadlocks unless both calls run at the same time
        return f"sunny in {city}"

    model = ScriptedModel()
    model.enqueue_tool_calls(
        ("city_weather", {"city": "Paris"}),
        ("city_weather", {"city": "Oslo"}),
        usage=TokenUsage(input_tokens=100, output_tokens=20, cache_read_input_tokens=50),
    )
    model.enqueue_text("Paris and Oslo are sunny.", usage=TokenUsage(input_tokens=140, output_tokens=8))
    core = make_core(model, tmp_path, tools=[city_weather])
    session = core.session("s1")
    turn = session.turn("weather?")
    kinds = [a.kind async for a in turn.stream()]
    result = turn.result

    assert result.outcome == Finished(text="Paris and Oslo are sunny.")
    assert kinds[0] == "model_request_started" and kinds[-1] == "turn_finished"
    assert kinds.count("tool_call_started") == 2 and kinds.count("tool_call_completed") == 2
    assert "assistant_prose_delta" in kinds
    assert [a.seq for a in result.activities] == list(range(1, len(kinds) + 1))
    # results go back to the model in call order
    tool_message = model.requests[1].messages[-1]
    assert [p.output for p in tool_message.parts] == ["sunny in Paris", "sunny in Oslo"]
    assert result.usage == TokenUsage(input_tokens=240, output_tokens=28, cache_read_input_tokens=50)
    assert [(c.name, r.output) for c, r in result.tool_calls] == [
        ("city_weather", "sunny in Paris"),
        ("city_weather", "sunny in Oslo"),
    ]
    core.store.close()

    # a fresh store on the same file sees exactly the committed turn
    with SqliteStore(tmp_path / "lash.db") as store:
        turns = store.list_turns("s1")
        assert [t.outcome for t in turns] == [result.outcome]
        roles = [n.payload.role for n in store.load_active_path("s1")]
        assert roles == ["user", "assistant", "tool", "assistant"]
        assert store.usage_ledger("s1").total() == result.usage
        assert store.pending_inputs("s1") == []


async def test_tool_call_events_share_the_call_id_as_correlation_id(tmp_path):
    model = ScriptedModel().enqueue_tool_calls(("echo", {"text": "x"})).enqueue_text("ok")
    core = make_core(model, tmp_path, tools=[echo])
    result = await core.session().turn("go").run()
    started = [a for a in result.activities if isinstance(a.event, ToolCallStarted)]
    completed = [a for a in result.activities if isinstance(a.event, ToolCallCompleted)]
    assert started[0].correlation_id == completed[0].correlation_id == "call_1"
    assert completed[0].event.output == "x" and completed[0].event.duration_s >= 0


@tool
def echo(text: str) -> str:
    """Echo text back."""
    return text


async def test_resume_in_a_new_core_continues_history_and_activity_seq(tmp_path):
    model = ScriptedModel().enqueue_text("first answer")
    core = make_core(model, tmp_path)
    first = await core.session("s").turn("one").run()
    core.store.close()

    model2 = ScriptedModel().enqueue_text("second answer")
    core2 = make_core(model2, tmp_path)
    session = core2.session("s")
    second = await session.turn("two").run()
    assert [m.text for m in model2.requests[0].messages] == ["one", "first answer", "two"]
    assert second.activities[0].seq == first.activities[-1].seq + 1
    assert second.head_revision == 2
    core2.store.close()


async def test_provider_4xx_stops_the_turn_and_keeps_the_input(tmp_path):
    model = ScriptedModel().enqueue_error(ProviderHTTPError(401, '{"error":{"message":"bad key"}}', provider="openai"))
    core = make_core(model, tmp_path)
    session = core.session("s")
    result = await session.turn("hello").run()
    assert isinstance(result.outcome, Stopped) and result.outcome.reason == "provider_error"
    assert "HTTP 401" in result.outcome.detail and "bad key" in result.outcome.detail
    assert len(model.requests) == 1  # 401 is not retried
    assert [m.text for m in session.history()] == ["hello"]
    assert session.turns()[0].outcome == result.outcome
    assert "error" in [a.kind for a in result.activities]
    core.store.close()


async def test_retryable_failure_after_streaming_resets_deltas_then_succeeds(tmp_path):
    model = ScriptedModel()
    model.enqueue(ScriptedReply(text="partial", error=ProviderConnectionError("reset by peer")))
    model.enqueue(ScriptedReply(error=ProviderHTTPError(429, "slow down", retry_after_s=0.0)))
    model.enqueue_text("whole answer")
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    core = make_core(model, tmp_path)
    core._runtime.sleep = fake_sleep
    result = await core.session().turn("hi").run()
    kinds = [a.kind for a in result.activities]
    assert result.outcome == Finished(text="whole answer")
    assert kinds.count("model_attempt_reset") == 1 and kinds.count("retry_status") == 2
    assert kinds.index("model_attempt_reset") < kinds.index("retry_status")
    retries = [a.event for a in result.activities if isinstance(a.event, RetryStatus)]
    assert [r.attempt for r in retries] == [1, 2]
    assert slept == [0.0, 0.0]
    reset = next(a.event for a in result.activities if isinstance(a.event, ModelAttemptReset))
    assert reset.attempt == 1
    assert len(model.requests) == 3
    core.store.close()


async def test_retry_after_is_honoured_and_capped():
    policy = RetryPolicy(max_retry_after_s=5.0)
    import random

    assert policy.delay_s(1, 3.0, random.Random(0)) == 3.0
    assert policy.delay_s(1, 120.0, random.Random(0)) == 5.0
    no_jitter = RetryPolicy(base_delay_s=1.0, jitter=0.0, max_delay_s=3.0)
    assert [no_jitter.delay_s(a, None, random.Random(0)) for a in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 3.0]


async def test_retries_exhausted_stop_with_provider_error(tmp_path):
    model = ScriptedModel()
    for _ in range(3):
        model.enqueue_error(ProviderHTTPError(503, "overloaded"))
    core = make_core(model, tmp_path)
    result = await core.session().turn("hi").run()
    assert result.outcome.reason == "provider_error" and "503" in result.outcome.detail
    assert len(model.requests) == 3
    core.store.close()


async def test_max_turns_bounds_model_calls(tmp_path):
    model = ScriptedModel()
    for _ in range(3):
        model.enqueue_tool_calls(("echo", {"text": "again"}))
    core = make_core(model, tmp_path, tools=[echo], max_turns=2)
    result = await core.session().turn("loop").run()
    assert result.outcome.reason == "max_turns"
    assert len(model.requests) == 2
    assert result.messages[-1].role == "tool"  # the last tool calls were answered
    core.store.close()


async def test_cancel_during_a_tool_commits_stopped_cancelled(tmp_path):
    entered = anyio.Event()

    @tool
    async def slow(ctx: ToolContext) -> str:
        """Never returns on its own."""
        entered.set()
        await anyio.sleep(60)
        return "unreachable"

    model = ScriptedModel().enqueue_tool_calls(("slow", {}), ("echo", {"text": "fast"}))
    core = make_core(model, tmp_path, tools=[slow, echo])
    session = core.session("s")
    turn = session.turn("go")
    with anyio.fail_after(10):
        async for activity in turn.stream():
            if activity.kind == "tool_call_completed":  # echo is done, slow is still running
                assert entered.is_set()
                turn.cancel("user pressed stop")
                await anyio.sleep(0.01)  # the turn's cancellation must not leak into the consumer
    result = turn.result
    assert result.outcome == Stopped(reason="cancelled", detail="user pressed stop")
    tool_parts = result.messages[-1].parts
    outputs = {p.name: p for p in tool_parts}
    assert outputs["echo"].output == "fast"
    assert outputs["slow"].is_error
    assert session.turns()[-1].outcome == result.outcome
    assert session.pending_inputs() == []
    core.store.close()


async def test_host_task_cancellation_still_commits(tmp_path):
    model = ScriptedModel().enqueue_tool_calls(("forever", {}))

    @tool
    async def forever() -> str:
        """Sleeps."""
        await anyio.sleep(60)
        return ""

    core = make_core(model, tmp_path, tools=[forever])
    session = core.session("s")
    with anyio.move_on_after(0.3):
        await session.turn("go").run()
    turns = session.turns()
    assert len(turns) == 1 and turns[0].outcome.reason == "cancelled"
    assert session.pending_inputs() == []
    core.store.close()


async def test_closing_the_stream_early_commits_cancelled(tmp_path):
    from contextlib import aclosing

    model = ScriptedModel().enqueue_tool_calls(("echo", {"text": "x"})).enqueue_text("unused")
    core = make_core(model, tmp_path, tools=[echo])
    session = core.session("s")
    async with aclosing(session.turn("go").stream()) as stream:
        async for activity in stream:
            if activity.kind == "tool_call_started":
                break
    assert session.turns()[0].outcome.reason == "cancelled"
    # the session accepts the next turn
    model2_reply = await session.turn("again").run()
    assert model2_reply.outcome == Finished(text="unused")
    core.store.close()


async def test_hooks_prompt_contributions_tools_and_activity_observer(tmp_path):
    seen: list[str] = []

    class Plugin:
        lash_plugin_name = "demo"

        @hookimpl
        def lash_register_tools(self, registry):
            registry.add(echo)

        @hookimpl
        def lash_prompt_contributions(self, tool_names):
            return [
                PromptContribution(slot="context", title="Facts", content="The sky is green."),
                PromptContribution(content="Use echo.", tool_gate="echo"),
                PromptContribution(content="Never shown.", tool_gate="missing"),
            ]

        @hookimpl
        def lash_on_activity(self, activity):
            seen.append(activity.kind)

    model = ScriptedModel().enqueue_text("ok")
    core = make_core(model, tmp_path, plugins=[Plugin()], prompt="You are terse.")
    assert core.tools.provider_of("echo") == "demo"
    result = await core.session().turn("hi").run()
    system = model.requests[0].system
    assert system == "You are terse.\n\nUse echo.\n\n## Facts\n\nThe sky is green."
    assert [t.name for t in model.requests[0].tools] == ["echo"]
    assert "assistant_prose_delta" not in seen  # deltas never go through hooks
    assert seen == [a.kind for a in result.activities if not isinstance(a.event, AssistantProseDelta)]
    core.store.close()


async def test_failing_prompt_hook_stops_with_plugin_abort_naming_the_plugin(tmp_path):
    class Broken:
        lash_plugin_name = "broken"

        @hookimpl
        def lash_prompt_contributions(self):
            raise RuntimeError("boom")

    model = ScriptedModel()
    core = make_core(model, tmp_path, plugins=[Broken()])
    result = await core.session().turn("hi").run()
    assert result.outcome.reason == "plugin_abort"
    assert "broken" in result.outcome.detail and "boom" in result.outcome.detail
    assert model.requests == []
    core.store.close()


async def test_failing_activity_observer_is_reported_not_fatal(tmp_path):
    class Noisy:
        lash_plugin_name = "noisy"

        @hookimpl
        def lash_on_activity(self, activity):
            raise ValueError("observer bug")

    core = make_core(ScriptedModel().enqueue_text("fine"), tmp_path, plugins=[Noisy()])
    result = await core.session().turn("hi").run()
    assert result.outcome == Finished(text="fine")
    errors = [a.event for a in result.activities if a.kind == "error"]
    assert errors and all("noisy" in e.message for e in errors)
    core.store.close()


async def test_turn_finished_is_last_and_carries_head_revision(tmp_path):
    core = make_core(ScriptedModel().enqueue_text("a").enqueue_text("b"), tmp_path)
    session = core.session()
    await session.turn("1").run()
    second = await session.turn("2").run()
    last = second.activities[-1].event
    assert isinstance(last, TurnFinished) and last.head_revision == 2 == second.head_revision
    core.store.close()


async def test_real_openai_provider_code_through_the_driver(tmp_path):
    """The whole stack with real HTTP parsing: MockTransport serves OpenAI SSE bodies."""
    first_call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "echo", "arguments": '{"text":'}}
    tool_call = {"choices": [{"index": 0, "delta": {"tool_calls": [first_call]}}]}
    rest = {"index": 0, "function": {"arguments": '"hi"}'}}
    tool_call_rest = {"choices": [{"index": 0, "delta": {"tool_calls": [rest]}}]}
    finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
    usage = {
        "choices": [],
        "usage": {"prompt_tokens": 30, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 10}},
    }
    answer = {"choices": [{"index": 0, "delta": {"content": "said hi"}, "finish_reason": "stop"}]}
    sse = {"status": 200, "headers": {"content-type": "text/event-stream"}}
    wire = WireScript(
        [
            {
                "request": {"path": "/v1/chat/completions"},
                "response": {**sse, "body_text": sse_body(tool_call, tool_call_rest, finish, usage)},
            },
            {"request": {"path": "/v1/chat/completions"}, "response": {**sse, "body_text": sse_body(answer, usage)}},
        ]
    )
    provider = OpenAIChatProvider(api_key="sk-test", transport=wire.transport)
    core = make_core(provider, tmp_path, tools=[echo])
    result = await core.session().turn("say hi").run()
    await provider.aclose()
    assert result.outcome == Finished(text="said hi")
    assert result.usage == TokenUsage(input_tokens=40, output_tokens=10, cache_read_input_tokens=20)
    second_body = wire.bodies[1]
    assert second_body["messages"][-1] == {"role": "tool", "tool_call_id": "c1", "content": "hi"}
    assert json.loads(second_body["messages"][-2]["tool_calls"][0]["function"]["arguments"]) == {"text": "hi"}
    core.store.close()


async def test_one_turn_at_a_time_per_session(tmp_path):
    from lash_kernel.errors import LashError

    core = make_core(ScriptedModel().enqueue_text("a"), tmp_path)
    session = core.session()
    stream = session.turn("1").stream()
    await stream.__anext__()
    with pytest.raises(LashError, match="already has a turn running"):
        await session.turn("2").run()
    await stream.aclose()
    core.store.close()


def test_sync_convenience(tmp_path):
    core = make_core(ScriptedModel().enqueue_text("sync ok"), tmp_path)
    result = core.run_sync("hi")
    assert result.text == "sync ok"
    core.store.close()


class HangsOnce(ScriptedModel):
    """First attempt never finishes streaming; later attempts answer from the script."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def stream(self, request):
        self.attempts += 1
        if self.attempts == 1:
            from lash_kernel.model import TextDelta as Delta

            yield Delta(text="stalled ")
            await anyio.sleep(30)
        async for item in super().stream(request):
            yield item


async def test_request_deadline_retries_a_stalled_stream(tmp_path):
    model = HangsOnce()
    model.enqueue_text("recovered")
    core = make_core(model, tmp_path, request_timeout_s=0.2)
    with anyio.fail_after(10):
        result = await core.session().turn("hi").run()
    kinds = [a.kind for a in result.activities]
    assert result.outcome == Finished(text="recovered")
    assert kinds.index("model_attempt_reset") < kinds.index("retry_status")
    reason = next(a.event.reason for a in result.activities if a.kind == "retry_status")
    assert "no complete response within 0.2 s" in reason
    core.close()
