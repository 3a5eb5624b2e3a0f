"""AnthropicProvider: recorded provider-wire replays first, then request mapping, then faults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from lash_kernel.errors import (
    ConfigError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderStreamError,
)
from lash_kernel.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.model import (
    STREAM_ALIVE,
    ModelClient,
    ModelRequest,
    ModelResponse,
    ModelStreamItem,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
)
from lash_kernel.providers.anthropic import AnthropicProvider
from lash_kernel.testing.wire import WireScript
from lash_kernel.usage import TokenUsage

EPHEMERAL = {"type": "ephemeral"}


# -- helpers ---------------------------------------------------------------------------------


def load(provider_wire_dir: Path, name: str) -> list[dict[str, Any]]:
    """The interactions of one recorded Anthropic fixture."""
    path = provider_wire_dir / "anthropic" / name
    return json.loads(path.read_text(encoding="utf-8"))["interactions"]


def provider_for(script: WireScript, **kw: Any) -> AnthropicProvider:
    """A provider whose HTTP goes to ``script``."""
    kw.setdefault("api_key", "sk-ant-test")
    return AnthropicProvider(transport=script.transport, **kw)


async def collect(
    provider: AnthropicProvider, request: ModelRequest
) -> tuple[list[ModelStreamItem], ModelResponse]:
    """Drain one stream, checking the contract: deltas, then exactly one ModelResponse last."""
    items = [item async for item in provider.stream(request)]
    assert isinstance(items[-1], ModelResponse)
    assert not any(isinstance(i, ModelResponse) for i in items[:-1])
    return items[:-1], items[-1]


def recorded_tools(interaction: dict[str, Any]) -> tuple[ToolSpec, ...]:
    """The client tools of a recorded request, as lash ToolSpecs."""
    return tuple(
        ToolSpec(name=t["name"], description=t.get("description", ""), input_schema=t["input_schema"])
        for t in interaction["request"]["body"].get("tools", ())
        if "input_schema" in t
    )


def first_user_text(interaction: dict[str, Any]) -> str:
    return interaction["request"]["body"]["messages"][0]["content"][0]["text"]


def strip_cache(obj: Any) -> Any:
    """A deep copy of a request body without any ``cache_control`` keys."""
    if isinstance(obj, dict):
        return {k: strip_cache(v) for k, v in obj.items() if k != "cache_control"}
    if isinstance(obj, list):
        return [strip_cache(v) for v in obj]
    return obj


def cache_marks(body: dict[str, Any]) -> list[str]:
    """Where the breakpoints are: ``system[i]`` / ``messages[i][j]:<type>`` paths."""
    marks = [f"system[{i}]" for i, b in enumerate(body.get("system") or ()) if "cache_control" in b]
    for i, message in enumerate(body["messages"]):
        for j, block in enumerate(message["content"]):
            if "cache_control" in block:
                assert block["cache_control"] == EPHEMERAL
                marks.append(f"messages[{i}][{j}]:{block['type']}")
    return marks


def sse(*events: dict[str, Any]) -> str:
    """An Anthropic-style SSE body: ``event: <type>`` then ``data: <json>`` per event."""
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def scripted(*responses: dict[str, Any]) -> WireScript:
    """A wire script of hand-built responses, each served to ``POST /v1/messages``."""
    return WireScript(
        [{"request": {"method": "POST", "path": "/v1/messages"}, "response": r} for r in responses],
        check_paths=True,
    )


def sse_response(body: str, status: int = 200) -> dict[str, Any]:
    return {"status": status, "headers": {"content-type": "text/event-stream"}, "body_text": body}


MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_test",
        "model": "claude-test",
        "content": [],
        "usage": {"input_tokens": 7, "output_tokens": 1},
    },
}
TEXT_BLOCK = [
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
    {"type": "content_block_stop", "index": 0},
]
MESSAGE_DELTA = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}
MESSAGE_STOP = {"type": "message_stop"}
HELLO = ModelRequest(model="claude-test", messages=(Message.user("hello"),))


# -- recorded replays ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_single_tool_use_replay(provider_wire_dir: Path) -> None:
    [turn] = load(provider_wire_dir, "haiku45_single_tool_use.json")
    script = WireScript([turn], check_paths=True)
    provider = provider_for(script)
    request = ModelRequest(
        model="claude-haiku-4-5-20251001",
        messages=(Message.user(first_user_text(turn)),),
        tools=recorded_tools(turn),
        max_output_tokens=8192,
        temperature=1.0,
    )
    deltas, response = await collect(provider, request)

    call = ToolCallPart(id="toolu_01CzN6riCPqw4pVSuTd9Dwn7", name="pelican_name_generator", arguments="{}")
    assert STREAM_ALIVE in deltas  # the recorded stream has a ping
    content = [d for d in deltas if d is not STREAM_ALIVE]
    assert content == [ToolCallDelta(index=0, id=call.id, name=call.name)]  # the "" fragment yields nothing
    assert response.message == Message(role="assistant", parts=(call,))
    assert (response.finish_reason, response.raw_finish_reason) == ("tool_calls", "tool_use")
    assert response.model == "claude-haiku-4-5-20251001"
    assert response.response_id == "msg_01BnVamfF7ccY9Qt3nZHAyaG"
    assert response.provider == "anthropic"
    assert response.usage == TokenUsage(input_tokens=543, output_tokens=40)

    sent = script.requests[0]
    assert (sent.method, sent.url.path) == ("POST", "/v1/messages")
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == turn["request"]["headers"]["anthropic-version"]
    assert script.bodies[0] == turn["request"]["body"]  # one user turn: nothing to cache
    await provider.aclose()


@pytest.mark.anyio
async def test_parallel_tool_use_roundtrip_replay(provider_wire_dir: Path) -> None:
    turns = load(provider_wire_dir, "haiku45_parallel_tool_use_roundtrip.json")
    script = WireScript(turns, check_paths=True)
    provider = provider_for(script)
    user = Message.user(first_user_text(turns[0]))
    base = ModelRequest(
        model="claude-haiku-4-5-20251001",
        messages=(user,),
        system="You name pelicans.",
        tools=recorded_tools(turns[0]),
        max_output_tokens=8192,
        temperature=1.0,
    )
    deltas, first = await collect(provider, base)

    ids = ["toolu_01LtHJmixrs9NcWQkK8hu8hj", "toolu_01N8a4jWyf116qKTMqKKmjyt"]
    assert first.message.parts == tuple(
        ToolCallPart(id=i, name="pelican_name_generator", arguments="{}") for i in ids
    )
    assert [(d.index, d.id) for d in deltas if isinstance(d, ToolCallDelta)] == [(0, ids[0]), (1, ids[1])]
    assert first.finish_reason == "tool_calls"
    system = [{"type": "text", "text": "You name pelicans.", "cache_control": EPHEMERAL}]
    assert script.bodies[0]["system"] == system
    assert cache_marks(script.bodies[0]) == ["system[0]"]

    results = Message(
        role="tool",
        parts=tuple(
            ToolResultPart(call_id=c.id, name=c.name, output=out)
            for c, out in zip(first.message.tool_calls, ["Charles", "Sammy"], strict=True)
        ),
    )
    deltas, second = await collect(provider, attrs.evolve(base, messages=(user, first.message, results)))

    body = script.bodies[1]
    recorded = turns[1]["request"]["body"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    # the recording client sent an extra " " text block; the tool_use blocks are the same
    assert strip_cache(body["messages"][1]["content"]) == recorded["messages"][1]["content"][1:]
    assert [(b["tool_use_id"], b["content"], b["is_error"]) for b in body["messages"][2]["content"]] == [
        (ids[0], "Charles", False),
        (ids[1], "Sammy", False),
    ]
    assert cache_marks(body) == ["system[0]", "messages[1][1]:tool_use"]

    text = "".join(d.text for d in deltas if isinstance(d, TextDelta))
    assert second.message.text == text
    assert text.startswith("Here are two great names") and text.endswith("feathered friend! 🦅")
    assert second.finish_reason == "stop"
    assert second.usage == TokenUsage(input_tokens=678, output_tokens=82)
    assert script.remaining == 0
    await provider.aclose()


@pytest.mark.anyio
async def test_thinking_tool_use_roundtrip_replay(provider_wire_dir: Path) -> None:
    turns = load(provider_wire_dir, "haiku45_thinking_tool_use_roundtrip.json")
    script = WireScript(turns, check_paths=True)
    provider = provider_for(script)
    user = Message.user(first_user_text(turns[0]))
    base = ModelRequest(
        model="claude-haiku-4-5-20251001",
        messages=(user,),
        tools=recorded_tools(turns[0]),
        max_output_tokens=64000,
        temperature=1.0,
        options={"thinking": turns[0]["request"]["body"]["thinking"]},
    )
    deltas, first = await collect(provider, base)

    assert script.bodies[0] == turns[0]["request"]["body"]
    replayed_thinking = turns[1]["request"]["body"]["messages"][1]["content"][0]
    reasoning, call = first.message.parts
    assert reasoning == ReasoningPart(
        text=replayed_thinking["thinking"], signature=replayed_thinking["signature"], provider="anthropic"
    )
    assert "".join(d.text for d in deltas if isinstance(d, ReasoningDelta)) == reasoning.text
    assert call == ToolCallPart(id="toolu_01825dXWLSoJwCst1qTsiWdb", name="fixed_version", arguments="{}")
    assert first.usage == TokenUsage(input_tokens=598, output_tokens=92, reasoning_output_tokens=53)

    results = Message(role="tool", parts=(ToolResultPart(call_id=call.id, name=call.name, output="0.32a0"),))
    deltas, second = await collect(provider, attrs.evolve(base, messages=(user, first.message, results)))

    body = script.bodies[1]
    recorded = turns[1]["request"]["body"]
    assert body["thinking"] == recorded["thinking"]
    assert strip_cache(body["messages"][1]) == recorded["messages"][1]  # thinking + signature, then tool_use
    assert body["messages"][2]["content"] == [{**recorded["messages"][2]["content"][0], "is_error": False}]
    assert cache_marks(body) == ["messages[1][1]:tool_use"]  # never on the thinking block
    assert second.message.text.startswith("The version is **0.32a0**.")
    assert second.usage == TokenUsage(input_tokens=707, output_tokens=89)
    assert second.finish_reason == "stop"
    await provider.aclose()


@pytest.mark.anyio
async def test_text_server_tools_and_client_tool_replay(provider_wire_dir: Path) -> None:
    turns = load(provider_wire_dir, "sonnet46_text_then_tool_use_roundtrip.json")
    script = WireScript(turns, check_paths=True)
    provider = provider_for(script)
    user = Message.user(first_user_text(turns[0]))
    recorded0 = turns[0]["request"]["body"]
    # server tools and defer_loading have no ToolSpec form: options pass them through verbatim
    base = ModelRequest(
        model="claude-sonnet-4-6",
        messages=(user,),
        options={"tools": recorded0["tools"], "tool_choice": recorded0["tool_choice"]},
    )
    deltas, first = await collect(provider, base)

    assert script.bodies[0] == recorded0
    call_id = "toolu_01EFn5wTNBYA8Reni8rbmnHT"
    text1, text2, call = first.message.parts
    assert text1.text == "Let me search for a tool that can provide current exchange rate information."
    assert text2.text == "I found the right tool! Let me fetch the current USD to EUR exchange rate for you."
    assert (call.id, call.name) == (call_id, "get_exchange_rate")
    assert json.loads(call.arguments) == {"from_currency": "USD", "to_currency": "EUR"}
    tool_deltas = [d for d in deltas if isinstance(d, ToolCallDelta)]
    assert {d.index for d in tool_deltas} == {0}  # the server_tool_use block is not a client call
    assert tool_deltas[0] == ToolCallDelta(index=0, id=call_id, name="get_exchange_rate")
    assert len(tool_deltas[1:]) == 8  # 9 recorded fragments, the first of them ""
    assert "".join(d.arguments for d in tool_deltas) == call.arguments
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == text1.text + text2.text
    assert first.finish_reason == "tool_calls"
    # message_delta's cumulative usage overrides message_start's (702 in, 1 out)
    assert first.usage == TokenUsage(input_tokens=1591, output_tokens=175)

    result = ToolResultPart(call_id=call_id, name=call.name, output="1 USD = 0.92 EUR")
    results = Message(role="tool", parts=(result,))
    deltas, second = await collect(provider, attrs.evolve(base, messages=(user, first.message, results)))

    body = script.bodies[1]
    recorded = turns[1]["request"]["body"]
    client_blocks = [b for b in recorded["messages"][1]["content"] if b["type"] in ("text", "tool_use")]
    assert strip_cache(body["messages"][1]["content"]) == client_blocks
    [result] = body["messages"][2]["content"]
    assert (result["tool_use_id"], result["is_error"]) == (call_id, False)
    assert cache_marks(body) == ["messages[1][2]:tool_use"]
    assert second.message.text.startswith("The current exchange rate is **1 USD = 0.92 EUR**.")
    assert second.usage == TokenUsage(input_tokens=1007, output_tokens=59)
    await provider.aclose()


@pytest.mark.anyio
async def test_nonstream_thinking_tool_roundtrip_replay(provider_wire_dir: Path) -> None:
    turns = load(provider_wire_dir, "sonnet4_nonstream_thinking_tool_roundtrip.json")
    script = WireScript(turns, check_paths=True)
    provider = provider_for(script)
    recorded0 = turns[0]["request"]["body"]
    user = Message.user(first_user_text(turns[0]))
    base = ModelRequest(
        model="claude-sonnet-4-0",
        messages=(user,),
        tools=recorded_tools(turns[0]),
        options={"stream": False, "thinking": recorded0["thinking"], "tool_choice": recorded0["tool_choice"]},
    )
    items = [item async for item in provider.stream(base)]

    assert len(items) == 1 and isinstance(items[0], ModelResponse)  # no deltas without streaming
    first = items[0]
    assert script.bodies[0] == recorded0
    reasoning, text, call = first.message.parts
    assert isinstance(reasoning, ReasoningPart) and reasoning.provider == "anthropic"
    assert reasoning.signature and reasoning.text.startswith("The user is asking about the largest city")
    assert text.text.startswith("I'll help you find the largest city")
    assert call == ToolCallPart(id="toolu_01YGzqpRE16Vricda3Aqcejo", name="get_user_country", arguments="{}")
    assert first.usage == TokenUsage(input_tokens=398, output_tokens=155)
    assert (first.finish_reason, first.model) == ("tool_calls", "claude-sonnet-4-20250514")

    results = Message(role="tool", parts=(ToolResultPart(call_id=call.id, name=call.name, output="Mexico"),))
    step2 = attrs.evolve(base, messages=(user, first.message, results))
    [second] = [item async for item in provider.stream(step2)]

    assert strip_cache(script.bodies[1]) == turns[1]["request"]["body"]  # the whole replay, byte for byte
    assert cache_marks(script.bodies[1]) == ["messages[1][2]:tool_use"]
    assert isinstance(second, ModelResponse) and "**Mexico City**" in second.message.text
    assert second.finish_reason == "stop"
    await provider.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_error_400_unsupported_effort_replay(provider_wire_dir: Path, stream: bool) -> None:
    [turn] = load(provider_wire_dir, "error_400_unsupported_effort.json")
    script = WireScript([turn], check_paths=True)
    provider = provider_for(script)
    request = ModelRequest(
        model="claude-opus-4-6",
        messages=(Message.user("What is 2+2?"),),
        options={"output_config": {"effort": "xhigh"}, "stream": stream},
    )
    with pytest.raises(ProviderHTTPError) as info:
        await collect(provider, request)

    assert info.value.status == 400
    assert info.value.retryable is False
    assert info.value.provider == "anthropic"
    assert "This model does not support effort level 'xhigh'." in str(info.value)
    if not stream:
        assert script.bodies[0] == turn["request"]["body"]
    await provider.aclose()


# -- request mapping -------------------------------------------------------------------------


def body_for(*messages: Message, **kw: Any) -> dict[str, Any]:
    provider = AnthropicProvider(api_key=None, prompt_caching=kw.pop("prompt_caching", True))
    return provider._build_body(ModelRequest(model="claude-test", messages=messages, **kw))


def test_defaults_and_options_merge() -> None:
    body = body_for(Message.user("hi"))
    assert body == {
        "model": "claude-test",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "stream": True,
    }
    options = {"max_tokens": 7, "top_k": 5}
    body = body_for(Message.user("hi"), max_output_tokens=100, temperature=0.2, options=options)
    assert (body["max_tokens"], body["temperature"], body["top_k"]) == (7, 0.2, 5)


def test_assistant_parts_mapping_and_alternation() -> None:
    body = body_for(
        Message.user("one"),
        Message(role="system", parts=(TextPart(text="be terse"),)),
        Message(
            role="assistant",
            parts=(
                ReasoningPart(text="mine", signature="sig", provider="anthropic"),
                ReasoningPart(text="theirs", encrypted="enc", provider="openai-responses"),
                ReasoningPart(text="unsigned", provider="anthropic"),
                ReasoningPart(encrypted="redacted-data", provider="anthropic"),
                TextPart(text=""),
                TextPart(text="calling"),
                ToolCallPart(id="t1", name="a", arguments='{"x": 1}'),
                ToolCallPart(id="t2", name="b", arguments="not json"),
                ToolCallPart(id="t3", name="c", arguments="[1, 2]"),
                ToolCallPart(id="t4", name="d", arguments=""),
            ),
        ),
        Message(role="assistant", parts=(ReasoningPart(text="foreign only", provider="openai"),)),
        Message(role="tool", parts=(ToolResultPart(call_id="t1", name="a", output="ok"),)),
        Message(
            role="tool",
            parts=tuple(
                ToolResultPart(call_id=f"t{i}", name="x", output="bad", is_error=True) for i in (2, 3, 4)
            ),
        ),
        Message.user("two"),
        prompt_caching=False,
    )
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == [{"type": "text", "text": "one"}, {"type": "text", "text": "be terse"}]
    assert messages[1]["content"] == [
        {"type": "thinking", "thinking": "mine", "signature": "sig"},
        {"type": "redacted_thinking", "data": "redacted-data"},
        {"type": "text", "text": "calling"},
        {"type": "tool_use", "id": "t1", "name": "a", "input": {"x": 1}},
        {"type": "tool_use", "id": "t2", "name": "b", "input": {}},
        {"type": "tool_use", "id": "t3", "name": "c", "input": {}},
        {"type": "tool_use", "id": "t4", "name": "d", "input": {}},
    ]
    ok = {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": False}
    assert messages[2]["content"][0] == ok
    assert [b.get("tool_use_id") for b in messages[2]["content"]] == ["t1", "t2", "t3", "t4", None]
    assert messages[2]["content"][-1] == {"type": "text", "text": "two"}
    assert "cache_control" not in json.dumps(body)


def test_cache_breakpoints_placement() -> None:
    history = (
        Message.user("q1"),
        Message(role="assistant", parts=(TextPart(text="a1"),)),
        Message.user("q2"),
        Message(
            role="assistant",
            parts=(TextPart(text="a2"), ReasoningPart(text="t", signature="s", provider="anthropic")),
        ),
        Message.user("q3"),
    )
    body = body_for(*history, system="sys")
    assert cache_marks(body) == ["system[0]", "messages[3][0]:text"]  # skips the trailing thinking block

    body = body_for(*history, system="sys", prompt_caching=False)
    assert body["system"] == "sys" and cache_marks(body) == []

    # only thinking before the newest user turn: nothing cacheable there
    body = body_for(history[0], Message(role="assistant", parts=history[3].parts[1:]), history[4])
    assert cache_marks(body) == []


@pytest.mark.parametrize(
    ("existing", "expected"), [(2, ["system[0]", "messages[1][0]:text"]), (3, ["system[0]"]), (4, [])]
)
def test_cache_breakpoints_never_exceed_four(existing: int, expected: list[str]) -> None:
    tools = [
        {"name": f"t{i}", "description": "", "input_schema": {"type": "object"}, "cache_control": EPHEMERAL}
        for i in range(existing)
    ]
    history = (Message.user("q1"), Message(role="assistant", parts=(TextPart(text="a1"),)), Message.user("q2"))
    body = body_for(*history, system="sys", options={"tools": tools})
    assert cache_marks(body) == expected
    assert len(cache_marks(body)) + existing <= 4


# -- provider surface ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_from_env_and_headers() -> None:
    with pytest.raises(ConfigError, match="set ANTHROPIC_API_KEY") as info:
        AnthropicProvider.from_env(env={})
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError):
        AnthropicProvider.from_env(env={"ANTHROPIC_API_KEY": ""})

    ok = sse_response(sse(MESSAGE_START, *TEXT_BLOCK, MESSAGE_DELTA, MESSAGE_STOP))
    script = scripted(ok, ok)
    provider = AnthropicProvider.from_env(
        env={"ANTHROPIC_API_KEY": "sk-env"},
        transport=script.transport,
        anthropic_version="2099-01-01",
        extra_headers={"anthropic-beta": "feature-x"},
    )
    assert isinstance(provider, ModelClient)
    await collect(provider, HELLO)
    headers = script.requests[0].headers
    assert (headers["x-api-key"], headers["anthropic-version"], headers["anthropic-beta"]) == (
        "sk-env",
        "2099-01-01",
        "feature-x",
    )
    await provider.aclose()
    await provider.aclose()  # idempotent

    keyless = AnthropicProvider(api_key=None, transport=script.transport)
    await collect(keyless, HELLO)
    assert "x-api-key" not in script.requests[1].headers
    await keyless.aclose()


@pytest.mark.anyio
async def test_redacted_thinking_unknown_blocks_and_events_are_tolerated() -> None:
    body = sse(
        MESSAGE_START,
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": "x"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "web_search_tool_result"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "some_future_delta"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "some_future_event", "x": 1},
        {"type": "message_delta", "delta": {"stop_reason": "pause_turn"}, "usage": {"cache_read_input_tokens": 9}},
        MESSAGE_STOP,
    )
    script = scripted(sse_response(body))
    provider = provider_for(script)
    deltas, response = await collect(provider, HELLO)
    assert deltas == [STREAM_ALIVE]  # the ping; nothing for the unknown blocks and events
    assert response.message.parts == (ReasoningPart(encrypted="x", provider="anthropic"),)
    assert (response.finish_reason, response.raw_finish_reason) == ("pause", "pause_turn")
    assert response.usage == TokenUsage(input_tokens=7, output_tokens=1, cache_read_input_tokens=9)
    await provider.aclose()


@pytest.mark.parametrize(
    ("raw", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause"),
        ("model_context_window_exceeded", "other"),
    ],
)
@pytest.mark.anyio
async def test_stop_reasons(raw: str, finish: str) -> None:
    delta = {"type": "message_delta", "delta": {"stop_reason": raw}, "usage": {"output_tokens": 3}}
    script = scripted(sse_response(sse(MESSAGE_START, *TEXT_BLOCK, delta, MESSAGE_STOP)))
    provider = provider_for(script)
    _, response = await collect(provider, HELLO)
    assert (response.finish_reason, response.raw_finish_reason) == (finish, raw)
    assert response.message.parts == (TextPart(text="hi"),)
    await provider.aclose()


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("cut", [1, 3, 4, 5], ids=["after-start", "mid-block", "after-block", "after-delta"])
async def test_stream_cut_before_message_stop(cut: int) -> None:
    events = [MESSAGE_START, *TEXT_BLOCK, MESSAGE_DELTA, MESSAGE_STOP][:cut]
    script = scripted(sse_response(sse(*events)))
    provider = provider_for(script)
    seen: list[ModelStreamItem] = []
    with pytest.raises(ProviderStreamError, match="stream ended before message_stop") as info:
        async for item in provider.stream(HELLO):
            seen.append(item)
    assert info.value.retryable is True
    assert not any(isinstance(i, ModelResponse) for i in seen)
    await provider.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("error_type", "retryable"),
    [("overloaded_error", True), ("api_error", True), ("invalid_request_error", False)],
)
async def test_error_event_mid_stream(error_type: str, retryable: bool) -> None:
    error = {"type": "error", "error": {"type": error_type, "message": "Overloaded right now"}}
    script = scripted(sse_response(sse(MESSAGE_START, *TEXT_BLOCK[:2], error)))
    provider = provider_for(script)
    seen: list[ModelStreamItem] = []
    with pytest.raises(ProviderStreamError, match=f"{error_type}: Overloaded right now") as info:
        async for item in provider.stream(HELLO):
            seen.append(item)
    assert seen == [TextDelta(text="hi")]
    assert info.value.retryable is retryable
    assert info.value.provider == "anthropic"
    await provider.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "chunk",
    [
        "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\n\n",
        "data: [1, 2]\n\n",
        'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 9, "delta": {}}\n\n',
    ],
    ids=["truncated-json", "not-an-event", "delta-without-block"],
)
async def test_malformed_chunk(chunk: str) -> None:
    body = sse(MESSAGE_START) + chunk + sse(MESSAGE_DELTA, MESSAGE_STOP)
    script = scripted(sse_response(body))
    provider = provider_for(script)
    with pytest.raises(ProviderStreamError) as info:
        await collect(provider, HELLO)
    assert "anthropic" in str(info.value)
    await provider.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("status", "error_type"), [(529, "overloaded_error"), (500, "api_error"), (429, "rate_limit_error")]
)
async def test_http_errors_are_retryable(status: int, error_type: str, stream: bool) -> None:
    body = json.dumps({"type": "error", "error": {"type": error_type, "message": f"{error_type} happened"}})
    script = scripted(
        {"status": status, "headers": {"content-type": "application/json", "retry-after": "7"}, "body_text": body},
    )
    provider = provider_for(script)
    with pytest.raises(ProviderHTTPError) as info:
        await collect(provider, attrs.evolve(HELLO, options={"stream": stream}))
    assert (info.value.status, info.value.retryable, info.value.retry_after_s) == (status, True, 7.0)
    assert f"{error_type} happened" in str(info.value)
    await provider.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [True, False])
async def test_connection_failure(stream: bool) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    provider = AnthropicProvider(api_key="k", transport=httpx.MockTransport(refuse))
    with pytest.raises(ProviderConnectionError) as info:
        await collect(provider, attrs.evolve(HELLO, options={"stream": stream}))
    assert info.value.retryable is True
    await provider.aclose()


@pytest.mark.anyio
async def test_nonstream_malformed_body() -> None:
    script = scripted({"status": 200, "headers": {"content-type": "application/json"}, "body_text": '{"oops": 1}'})
    provider = provider_for(script)
    with pytest.raises(ProviderStreamError, match="malformed response"):
        await collect(provider, attrs.evolve(HELLO, options={"stream": False}))
    await provider.aclose()

