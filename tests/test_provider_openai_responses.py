"""OpenAI Responses provider: replays of real recordings plus hand-built faults.

The recordings are in ``tests/fixtures/provider-wire/openai-responses`` (see its README). They
are served through ``WireScript``, so the provider's real HTTP, SSE and parsing code runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lash_kernel.errors import ConfigError, ModelError, ProviderHTTPError, ProviderStreamError
from lash_kernel.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.model import (
    ModelClient,
    ModelRequest,
    ModelResponse,
    ModelStreamItem,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
)
from lash_kernel.providers.openai_responses import OpenAIResponsesProvider, _usage, parse_response
from lash_kernel.testing.wire import WireScript, sse_body

NAME = "openai-responses"


def _fixture(provider_wire_dir: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((provider_wire_dir / "openai-responses" / name).read_text(encoding="utf-8"))
    return data


def _provider(script: WireScript, **kw: Any) -> OpenAIResponsesProvider:
    return OpenAIResponsesProvider(api_key="sk-test", transport=script.transport, **kw)


async def _collect(provider: OpenAIResponsesProvider, request: ModelRequest) -> list[ModelStreamItem]:
    return [item async for item in provider.stream(request)]


def _final(items: list[ModelStreamItem]) -> ModelResponse:
    assert isinstance(items[-1], ModelResponse)
    assert not any(isinstance(i, ModelResponse) for i in items[:-1])
    return items[-1]


def _sse(*events: dict[str, Any], status: int = 200) -> dict[str, Any]:
    """One hand-built interaction serving ``events`` as a Responses SSE stream."""
    return {
        "request": {"method": "POST", "path": "/v1/responses"},
        "response": {
            "status": status,
            "headers": {"content-type": "text/event-stream"},
            "body_text": sse_body(*events, done=False),
        },
    }


def _item(kind: str, index: int, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": f"response.output_item.{kind}", "output_index": index, "item": item}


def _terminal(kind: str, **response: Any) -> dict[str, Any]:
    return {"type": f"response.{kind}", "response": {"id": "resp_1", "model": "gpt-test", **response}}


MULTIPLY = ToolSpec(
    name="multiply",
    description="Multiply two numbers.",
    input_schema={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)
CAPITAL = ToolSpec(
    name="get_capital",
    description="",
    input_schema={"type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"]},
)

# --------------------------------------------------------------------------- recorded round trips


@pytest.mark.anyio
async def test_function_call_stream_roundtrip(provider_wire_dir: Path) -> None:
    script = WireScript(_fixture(provider_wire_dir, "gpt55_function_call_stream_roundtrip.json")["interactions"])
    provider = _provider(script)
    user = Message.user("What is 1231 * 2331? Use the multiply tool.")
    first = await _collect(provider, ModelRequest(model="gpt-5.5", messages=(user,), tools=(MULTIPLY,)))

    body = script.bodies[0]
    assert body["model"] == "gpt-5.5"
    assert body["stream"] is True and body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"]
    assert "instructions" not in body
    assert body["input"] == [
        {"role": "user", "content": [{"type": "input_text", "text": "What is 1231 * 2331? Use the multiply tool."}]}
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "name": "multiply",
            "description": "Multiply two numbers.",
            "parameters": dict(MULTIPLY.input_schema),
            "strict": False,
        }
    ]
    assert script.requests[0].headers["authorization"] == "Bearer sk-test"

    calls = [d for d in first if isinstance(d, ToolCallDelta)]
    assert {d.index for d in calls} == {0}
    assert (calls[0].id, calls[0].name) == ("call_sVidsfFJ6zlzRpelrPkTPlpd", "multiply")
    fragments = [d.arguments for d in calls if d.arguments]
    assert len(fragments) == 11
    assert "".join(fragments) == '{"a":1231,"b":2331}'

    response = _final(first)
    call = ToolCallPart(id="call_sVidsfFJ6zlzRpelrPkTPlpd", name="multiply", arguments='{"a":1231,"b":2331}')
    assert response.message.parts == (call,)
    assert response.finish_reason == "tool_calls"
    assert response.raw_finish_reason == "completed"
    assert response.model == "gpt-5.5-2026-04-23"
    assert response.provider == NAME
    assert response.response_id == "resp_00d64fa806f333310169fab1be69d081a08f8285661855594c"
    assert response.usage.as_dict() == {
        "input_tokens": 58,
        "output_tokens": 23,
        "cache_read_input_tokens": 0,
        "cache_write_input_tokens": 0,
        "reasoning_output_tokens": 0,
    }

    result = Message(role="tool", parts=(ToolResultPart(call_id=call.id, name="multiply", output="2869461"),))
    second = await _collect(
        provider, ModelRequest(model="gpt-5.5", messages=(user, response.message, result), tools=(MULTIPLY,))
    )
    step2 = script.bodies[1]["input"]
    assert [i.get("type") for i in step2] == [None, "function_call", "function_call_output"]
    assert step2[1] == {
        "type": "function_call",
        "call_id": "call_sVidsfFJ6zlzRpelrPkTPlpd",
        "name": "multiply",
        "arguments": '{"a":1231,"b":2331}',
    }
    assert step2[2] == {"type": "function_call_output", "call_id": step2[1]["call_id"], "output": "2869461"}

    final = _final(second)
    assert final.message.parts == (TextPart(text="1231 × 2331 = **2,869,461**"),)
    assert "".join(d.text for d in second if isinstance(d, TextDelta)) == "1231 × 2331 = **2,869,461**"
    assert final.finish_reason == "stop"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (94, 18)
    assert script.remaining == 0
    await provider.aclose()


@pytest.mark.anyio
async def test_reasoning_commentary_function_call_roundtrip(provider_wire_dir: Path) -> None:
    fixture = _fixture(provider_wire_dir, "gpt55_reasoning_commentary_function_call_roundtrip.json")
    recorded_step2 = fixture["interactions"][1]["request"]["body"]["input"]
    script = WireScript(fixture["interactions"])
    provider = _provider(script)
    system = "Briefly narrate what you are about to do before calling each tool."
    user = Message.user("What is the capital of PotatoLand?")
    first = await _collect(
        provider, ModelRequest(model="gpt-5.5", system=system, messages=(user,), tools=(CAPITAL,))
    )
    assert script.bodies[0]["instructions"] == system

    response = _final(first)
    reasoning, commentary, call = response.message.parts
    assert isinstance(reasoning, ReasoningPart)
    assert reasoning.item_id == "rs_0fabc13af1ee0049006a691dfe60b081a1baa444d3cf19afba"
    assert reasoning.encrypted == recorded_step2[1]["encrypted_content"]
    assert (reasoning.text, reasoning.provider) == ("", NAME)
    assert commentary == TextPart(text="I’ll check the capital lookup tool for “PotatoLand.”")
    assert call == ToolCallPart(
        id="call_LabG58Uhrq9kZvR52BYKjToD", name="get_capital", arguments='{"country":"PotatoLand"}'
    )
    assert not any(isinstance(d, ReasoningDelta) for d in first)  # the item had no summary deltas
    assert "".join(d.text for d in first if isinstance(d, TextDelta)) == commentary.text
    calls = [d for d in first if isinstance(d, ToolCallDelta)]
    assert {d.index for d in calls} == {0}  # the first call, although it is output item 2
    assert len([d for d in calls if d.arguments]) == 7
    assert response.finish_reason == "tool_calls"
    assert response.usage.as_dict() == {
        "input_tokens": 63,
        "output_tokens": 69,
        "cache_read_input_tokens": 0,
        "cache_write_input_tokens": 0,
        "reasoning_output_tokens": 26,
    }

    result = Message(role="tool", parts=(ToolResultPart(call_id=call.id, name=call.name, output="Potato City"),))
    second = await _collect(
        provider,
        ModelRequest(model="gpt-5.5", system=system, messages=(user, response.message, result), tools=(CAPITAL,)),
    )
    sent = script.bodies[1]["input"]
    assert [i.get("type") for i in sent] == [None, "reasoning", "message", "function_call", "function_call_output"]
    assert [i.get("type") for i in sent] == [i.get("type") for i in recorded_step2]
    assert sent[1] == {"type": "reasoning", "encrypted_content": reasoning.encrypted, "summary": []}
    assert sent[2] == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "I’ll check the capital lookup tool for “PotatoLand.”"}],
    }
    assert sent[3]["call_id"] == sent[4]["call_id"] == recorded_step2[3]["call_id"]
    assert sent[4]["output"] == "Potato City"

    final = _final(second)
    assert final.message.text == "The capital of PotatoLand is **Potato City**."
    assert final.finish_reason == "stop"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (147, 16)
    await provider.aclose()


@pytest.mark.anyio
async def test_reasoning_replay_400_is_not_retryable(provider_wire_dir: Path) -> None:
    fixture = _fixture(provider_wire_dir, "gpt5_reasoning_replay_400_then_retry.json")
    script = WireScript(fixture["interactions"][1:2])
    provider = _provider(script)
    with pytest.raises(ProviderHTTPError) as info:
        await _collect(provider, ModelRequest(model="gpt-5", messages=(Message.user("Anything to add?"),)))
    err = info.value
    assert err.status == 400
    assert err.retryable is False
    assert err.provider == NAME
    assert "was provided without its required following item" in str(err)
    await provider.aclose()


def test_parse_non_streaming_response(provider_wire_dir: Path) -> None:
    fixture = _fixture(provider_wire_dir, "gpt5_reasoning_replay_400_then_retry.json")
    data = json.loads(fixture["interactions"][0]["response"]["body_text"])
    response = parse_response(data, provider=NAME, model="gpt-5")
    reasoning, text = response.message.parts
    assert isinstance(reasoning, ReasoningPart)
    assert reasoning.text.startswith("**Considering perspectives on meaning**")
    assert reasoning.item_id == "rs_68c42de022c881948db7ed1cc2529f2e0202c9ad459e0d23"
    assert reasoning.encrypted and reasoning.encrypted.startswith("gAAAA")
    assert isinstance(text, TextPart) and text.text.startswith("A single, final answer doesn’t exist")
    assert response.finish_reason == "stop"
    assert response.model == "gpt-5-2025-08-07"
    assert response.usage.output_tokens == data["usage"]["output_tokens"]


# --------------------------------------------------------------------------- hand-built faults


@pytest.mark.anyio
async def test_stream_without_terminal_event_raises() -> None:
    script = WireScript(
        [
            _sse(
                _item("added", 0, {"type": "message", "id": "msg_1", "content": []}),
                {"type": "response.output_text.delta", "output_index": 0, "delta": "Hel"},
            )
        ]
    )
    provider = _provider(script)
    seen: list[ModelStreamItem] = []
    with pytest.raises(ProviderStreamError, match="without response.completed") as info:
        async for item in provider.stream(ModelRequest(model="m", messages=(Message.user("hi"),))):
            seen.append(item)
    assert seen == [TextDelta(text="Hel")]
    assert info.value.retryable is True
    await provider.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(("code", "retryable"), [("server_error", True), ("invalid_prompt", False)])
async def test_response_failed_raises_with_provider_message(code: str, retryable: bool) -> None:
    error = {"code": code, "message": "The model produced invalid content."}
    script = WireScript([_sse(_terminal("failed", status="failed", error=error))])
    provider = _provider(script)
    with pytest.raises(ModelError, match="The model produced invalid content") as info:
        await _collect(provider, ModelRequest(model="m", messages=(Message.user("hi"),)))
    assert info.value.retryable is retryable
    assert info.value.provider == NAME
    await provider.aclose()


@pytest.mark.anyio
async def test_error_event_raises_stream_error() -> None:
    event = {"type": "error", "code": "context_length_exceeded", "message": "Your input exceeds the context window."}
    provider = _provider(WireScript([_sse(event)]))
    with pytest.raises(ProviderStreamError, match="exceeds the context window") as info:
        await _collect(provider, ModelRequest(model="m", messages=(Message.user("hi"),)))
    assert info.value.retryable is False
    await provider.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reason", "finish"),
    [("max_output_tokens", "length"), ("content_filter", "content_filter"), ("something_new", "other")],
)
async def test_incomplete_maps_reason_and_keeps_partial_text(reason: str, finish: str) -> None:
    usage = {"input_tokens": 10, "output_tokens": 16, "output_tokens_details": {"reasoning_tokens": 8}}
    script = WireScript(
        [
            _sse(
                _item("added", 0, {"type": "reasoning", "id": "rs_1", "summary": []}),
                {"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "Think"},
                {"type": "response.reasoning_summary_part.added", "output_index": 0, "summary_index": 1},
                {"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "More"},
                _item("done", 0, {"type": "reasoning", "id": "rs_1", "encrypted_content": "enc",
                                  "summary": [{"type": "summary_text", "text": "Think"},
                                              {"type": "summary_text", "text": "More"}]}),
                _item("added", 1, {"type": "message", "id": "msg_1", "content": [], "role": "assistant"}),
                {"type": "response.output_text.delta", "output_index": 1, "delta": "Once upon"},
                {"type": "response.output_text.delta", "output_index": 1, "delta": " a time"},
                _terminal("incomplete", status="incomplete", incomplete_details={"reason": reason}, usage=usage),
            )
        ]
    )
    provider = _provider(script)
    items = await _collect(provider, ModelRequest(model="m", messages=(Message.user("story"),), max_output_tokens=16))
    assert script.bodies[0]["max_output_tokens"] == 16
    assert [i for i in items if isinstance(i, ReasoningDelta)] == [
        ReasoningDelta(text="Think"), ReasoningDelta(text="\n\n"), ReasoningDelta(text="More")
    ]
    response = _final(items)
    assert response.finish_reason == finish
    assert response.raw_finish_reason == reason
    assert response.message.parts == (
        ReasoningPart(text="Think\n\nMore", encrypted="enc", item_id="rs_1", provider=NAME),
        TextPart(text="Once upon a time"),
    )
    assert response.usage.reasoning_output_tokens == 8
    assert response.model == "gpt-test"
    await provider.aclose()


@pytest.mark.anyio
async def test_malformed_chunk_raises_stream_error() -> None:
    interaction = _sse()
    interaction["response"]["body_text"] = 'event: response.created\ndata: {"type": "response.cre\n\n'
    provider = _provider(WireScript([interaction]))
    with pytest.raises(ProviderStreamError, match="malformed stream chunk"):
        await _collect(provider, ModelRequest(model="m", messages=(Message.user("hi"),)))
    await provider.aclose()


@pytest.mark.anyio
async def test_event_without_type_raises_stream_error() -> None:
    provider = _provider(WireScript([_sse({"delta": "x"})]))
    with pytest.raises(ProviderStreamError, match="unexpected stream event"):
        await _collect(provider, ModelRequest(model="m", messages=(Message.user("hi"),)))
    await provider.aclose()


@pytest.mark.anyio
async def test_http_500_is_retryable() -> None:
    interaction = {
        "request": {"path": "/v1/responses"},
        "response": {
            "status": 500,
            "headers": {"content-type": "application/json", "retry-after": "3"},
            "body_text": json.dumps({"error": {"message": "The server had an error.", "type": "server_error"}}),
        },
    }
    provider = _provider(WireScript([interaction]))
    with pytest.raises(ProviderHTTPError, match="The server had an error") as info:
        await _collect(provider, ModelRequest(model="m", messages=(Message.user("hi"),)))
    assert (info.value.status, info.value.retryable, info.value.retry_after_s) == (500, True, 3.0)
    await provider.aclose()


@pytest.mark.anyio
async def test_final_output_used_when_no_items_streamed() -> None:
    output = [{"type": "message", "content": [{"type": "output_text", "text": "hello"}]}]
    provider = _provider(WireScript([_sse(_terminal("completed", status="completed", output=output))]))
    response = _final(await _collect(provider, ModelRequest(model="m", messages=(Message.user("hi"),))))
    assert response.message.parts == (TextPart(text="hello"),)
    assert (response.finish_reason, response.usage.is_zero()) == ("stop", True)
    await provider.aclose()


# --------------------------------------------------------------------------- request mapping


def _body(messages: tuple[Message, ...], **kw: Any) -> dict[str, Any]:
    provider = OpenAIResponsesProvider(api_key=None, **kw)
    return provider.build_body(ModelRequest(model="m", messages=messages))


def test_reasoning_replay_rules() -> None:
    user = Message.user("q")
    tool = Message(role="tool", parts=(ToolResultPart(call_id="c1", name="t", output="ok"),))
    assistant = Message(
        role="assistant",
        parts=(
            ReasoningPart(text="other", signature="sig", provider="anthropic"),  # another provider: dropped
            ReasoningPart(text="summary", encrypted="enc", item_id="rs_1", provider=NAME),
            TextPart(text="looking"),
            ReasoningPart(item_id="rs_2", provider=NAME),  # id only, store=False: dropped
            ToolCallPart(id="c1", name="t"),
            ReasoningPart(encrypted="enc-last", provider=NAME),  # nothing follows it: dropped
        ),
    )
    items = _body((user, assistant, tool))["input"]
    assert items[1:] == [
        {"type": "reasoning", "encrypted_content": "enc", "summary": [{"type": "summary_text", "text": "summary"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "looking"}]},
        {"type": "function_call", "call_id": "c1", "name": "t", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ]
    stored = _body((user, assistant, tool), store=True)
    assert stored["store"] is True
    assert {"type": "reasoning", "id": "rs_2", "summary": []} in stored["input"]


def test_body_options_and_flags() -> None:
    provider = OpenAIResponsesProvider(api_key=None, include_encrypted_reasoning=False)
    body = provider.build_body(
        ModelRequest(
            model="m",
            messages=(Message.user("hi"),),
            temperature=0.2,
            options={"reasoning": {"effort": "low"}, "store": True},
        )
    )
    assert "include" not in body and "tools" not in body
    assert body["temperature"] == 0.2
    assert body["reasoning"] == {"effort": "low"}
    assert body["store"] is True  # options are merged last


def test_usage_subtracts_cache_read_and_write_from_input() -> None:
    raw = {
        "input_tokens": 1000,
        "input_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 100},
        "output_tokens": 50,
        "output_tokens_details": {"reasoning_tokens": 20},
        "total_tokens": 1050,
    }
    usage = _usage(raw)
    assert usage.as_dict() == {
        "input_tokens": 300,
        "output_tokens": 50,
        "cache_read_input_tokens": 600,
        "cache_write_input_tokens": 100,
        "reasoning_output_tokens": 20,
    }
    assert usage.total_tokens == raw["total_tokens"]
    assert _usage({"input_tokens": 5, "input_tokens_details": {"cached_tokens": 9}}).input_tokens == 0
    assert _usage(None).is_zero()


# --------------------------------------------------------------------------- construction


@pytest.mark.anyio
async def test_from_env_and_protocol() -> None:
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        OpenAIResponsesProvider.from_env(env={})
    keyed = OpenAIResponsesProvider.from_env(env={"OPENAI_API_KEY": "sk-env"})
    assert isinstance(keyed, ModelClient)
    assert keyed.provider_name == NAME
    assert keyed._client.headers["authorization"] == "Bearer sk-env"
    local = OpenAIResponsesProvider.from_env(env={}, base_url="http://127.0.0.1:8080/v1", provider_name="local")
    assert "authorization" not in local._client.headers
    assert local.provider_name == "local"
    for provider in (keyed, local):
        await provider.aclose()
        await provider.aclose()  # idempotent
