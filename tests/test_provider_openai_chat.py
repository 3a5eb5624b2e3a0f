"""OpenAIChatProvider: recorded provider-wire replays first, then hand-built faults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    ModelClient,
    ModelRequest,
    ModelResponse,
    ModelStreamItem,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
)
from lash_kernel.providers.openai_chat import OPENROUTER_BASE_URL, OpenAIChatProvider
from lash_kernel.testing.wire import WireScript, sse_body
from lash_kernel.usage import TokenUsage

pytestmark = pytest.mark.anyio


# -- helpers ---------------------------------------------------------------------------------


async def collect(provider: OpenAIChatProvider, request: ModelRequest) -> list[ModelStreamItem]:
    """Drain one stream, checking the contract: deltas, then exactly one ModelResponse last."""
    items = [item async for item in provider.stream(request)]
    assert isinstance(items[-1], ModelResponse)
    assert not any(isinstance(i, ModelResponse) for i in items[:-1])
    return items


def recorded_tools(interaction: dict[str, Any]) -> tuple[ToolSpec, ...]:
    """The function tools of a recorded request, as lash ToolSpecs."""
    return tuple(
        ToolSpec(
            name=t["function"]["name"],
            description=t["function"].get("description", ""),
            input_schema=t["function"]["parameters"],
        )
        for t in interaction["request"]["body"].get("tools", ())
        if t.get("type") == "function"
    )


def recorded_usage(interaction: dict[str, Any]) -> dict[str, Any]:
    """The last ``usage`` object in a recorded SSE body."""
    found: dict[str, Any] = {}
    for line in interaction["response"]["body_text"].splitlines():
        line = line.strip()
        if line.startswith("data: {"):
            chunk = json.loads(line[len("data: ") :])
            found = chunk.get("usage") or found
    return found


async def replay_conversation(
    path: Path, **provider_kw: Any
) -> tuple[list[list[ModelStreamItem]], list[Any], dict[str, Any]]:
    """Drive every recorded step through the provider, building each request from lash Messages.

    After a step that asked for tools, the tool outputs are taken from the next recorded request's
    ``role: tool`` messages (in order) and attached to the ids *our* stream produced.

    Returns:
        (stream items per step, outgoing request bodies per step, the fixture).
    """
    fixture = json.loads(path.read_text(encoding="utf-8"))
    interactions = fixture["interactions"]
    script = WireScript(interactions)
    provider = OpenAIChatProvider(api_key="sk-test", transport=script.transport, **provider_kw)
    first = interactions[0]["request"]["body"]
    history: list[Message] = [Message.user(first["messages"][0]["content"])]
    steps: list[list[ModelStreamItem]] = []
    for n, interaction in enumerate(interactions):
        request = ModelRequest(
            model=first["model"], messages=tuple(history), tools=recorded_tools(interaction)
        )
        items = await collect(provider, request)
        steps.append(items)
        reply = items[-1].message  # type: ignore[union-attr]
        history.append(reply)
        if reply.tool_calls and n + 1 < len(interactions):
            outputs = [
                m["content"]
                for m in interactions[n + 1]["request"]["body"]["messages"]
                if m["role"] == "tool"
            ][-len(reply.tool_calls) :]
            history.append(
                Message(
                    role="tool",
                    parts=tuple(
                        ToolResultPart(call_id=c.id, name=c.name, output=out)
                        for c, out in zip(reply.tool_calls, outputs, strict=True)
                    ),
                )
            )
    await provider.aclose()
    assert script.remaining == 0
    for body in script.bodies:
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
    return steps, script.bodies, fixture


def response(items: list[ModelStreamItem]) -> ModelResponse:
    last = items[-1]
    assert isinstance(last, ModelResponse)
    return last


def mock_provider(handler: Any, **kw: Any) -> OpenAIChatProvider:
    kw.setdefault("api_key", "sk-test")
    return OpenAIChatProvider(transport=httpx.MockTransport(handler), **kw)


def sse_response(body: str) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "model": "m-1",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }


REQ = ModelRequest(model="m", messages=(Message.user("hi"),))


# -- recorded replays: llm variants (OpenRouter responses) -------------------------------------


@pytest.mark.parametrize("variant", ["a", "b", "c", "d"])
async def test_llm_tools_streaming_variants(provider_wire_dir: Path, variant: str) -> None:
    steps, bodies, fixture = await replay_conversation(
        provider_wire_dir / "openai" / f"llm_tools_streaming_variant_{variant}.json"
    )
    first, second = response(steps[0]), response(steps[1])
    call_id = "llm_version:0" if variant == "c" else "0"

    # Step 0: exactly one no-argument call, never duplicated, arguments normalised to "{}".
    assert first.message.parts == (ToolCallPart(id=call_id, name="llm_version", arguments="{}"),)
    assert first.finish_reason == "tool_calls"
    # a, b: no finish_reason at all, inferred from [DONE] plus assembled calls.
    assert first.raw_finish_reason == (None if variant in "ab" else "tool_calls")
    assert first.model == ("muse-spark-1.1" if variant == "d" else "moonshotai/kimi-k2")
    raw = recorded_usage(fixture["interactions"][0])
    assert first.usage == TokenUsage(input_tokens=raw["prompt_tokens"], output_tokens=raw["completion_tokens"])
    assert first.usage.total_tokens == raw["total_tokens"]
    deltas = [i for i in steps[0] if isinstance(i, ToolCallDelta)]
    assert deltas and {d.index for d in deltas} == {0}
    assert "".join(d.arguments for d in deltas) == ("" if variant == "d" else "{}")
    assert deltas[0].id == call_id and deltas[0].name == "llm_version"

    # Step 1: the follow-up carries the call and its result, ids echoed.
    messages = bodies[1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["content"] is None
    assert messages[1]["tool_calls"] == [
        {"id": call_id, "type": "function", "function": {"name": "llm_version", "arguments": "{}"}}
    ]
    assert messages[2] == {"role": "tool", "tool_call_id": call_id, "content": "0.fixed-version"}
    assert bodies[1]["tools"][0]["function"]["name"] == "llm_version"

    assert second.finish_reason == "stop" and second.raw_finish_reason == "stop"
    assert second.message.parts == (TextPart(text=second.message.text),)
    assert "0.fixed-version" in second.message.text
    assert "".join(i.text for i in steps[1] if isinstance(i, TextDelta)) == second.message.text


async def test_variant_c_ignores_event_with_leading_space(provider_wire_dir: Path) -> None:
    # The body starts with " data:" (an unknown field): that role-only event must not break parsing.
    path = provider_wire_dir / "openai" / "llm_tools_streaming_variant_c.json"
    assert json.loads(path.read_text())["interactions"][0]["response"]["body_text"].startswith(" data:")
    steps, _, _ = await replay_conversation(path)
    assert response(steps[0]).response_id == "gen-1753248108-FGOxpkEzFEwhNKSPpI4a"


# -- recorded replays: native OpenAI parallel tools ------------------------------------------


async def test_gpt4o_parallel_tools_three_steps(provider_wire_dir: Path) -> None:
    steps, bodies, fixture = await replay_conversation(
        provider_wire_dir / "openai" / "gpt4o_parallel_tools_three_steps.json"
    )
    recorded = [it["request"]["body"] for it in fixture["interactions"]]
    r0, r1, r2 = (response(s) for s in steps)

    # Step 0: two parallel calls, ids and names as sent.
    assert r0.message.parts == (
        ToolCallPart(id="call_q2UyBRP7eXNTzAoR8lEhjc9Z", name="get_country", arguments="{}"),
        ToolCallPart(id="call_b51ijcpFkDiTQG1bQzsrmtW5", name="get_product_name", arguments="{}"),
    )
    assert (r0.finish_reason, r0.raw_finish_reason) == ("tool_calls", "tool_calls")
    assert r0.model == "gpt-4o-2024-08-06"
    assert r0.response_id == "chatcmpl-C2QD1kGWsTW5OWiqAtOSFEAOfPfQH"
    assert {d.index for d in steps[0] if isinstance(d, ToolCallDelta)} == {0, 1}

    # Step 1 request: both results present, ids echoed; same shape the recording client sent.
    assert len(bodies[1]["tools"]) == 19
    assert bodies[1]["messages"][1]["tool_calls"] == recorded[1]["messages"][1]["tool_calls"]
    assert bodies[1]["messages"][2:] == recorded[1]["messages"][2:]
    # Step 1 response: arguments over 6 chunks.
    arg_deltas = [d.arguments for d in steps[1] if isinstance(d, ToolCallDelta) and d.arguments]
    assert len(arg_deltas) == 6
    (weather,) = r1.message.tool_calls
    assert json.loads(weather.arguments) == {"city": "Mexico City"}

    # Step 2 request: the whole conversation so far, same as recorded.
    assert bodies[2]["messages"][4]["tool_calls"] == recorded[2]["messages"][4]["tool_calls"]
    assert bodies[2]["messages"][5] == recorded[2]["messages"][5]
    # Step 2 response: arguments over 53 chunks, parsing as JSON.
    arg_deltas = [d.arguments for d in steps[2] if isinstance(d, ToolCallDelta) and d.arguments]
    assert len(arg_deltas) == 53
    (final,) = r2.message.tool_calls
    assert final.name == "final_result"
    assert isinstance(json.loads(final.arguments)["answers"], list)

    # Usage: the chunk with "choices": [], mapped from the fixture's own numbers.
    for step, interaction in zip(steps, fixture["interactions"], strict=True):
        raw = recorded_usage(interaction)
        cached = raw["prompt_tokens_details"]["cached_tokens"]
        assert response(step).usage == TokenUsage(
            input_tokens=raw["prompt_tokens"] - cached,
            output_tokens=raw["completion_tokens"],
            cache_read_input_tokens=cached,
            reasoning_output_tokens=raw["completion_tokens_details"]["reasoning_tokens"],
        )
    assert r0.usage.total_tokens == 404


# -- recorded replays: OpenRouter keep-alives ---------------------------------------------------


async def test_openrouter_keepalive_comments_and_double_finish(provider_wire_dir: Path) -> None:
    path = provider_wire_dir / "openrouter" / "gpt41mini_keepalive_comments_server_tool.json"
    script = WireScript.from_file(path)
    provider = OpenAIChatProvider.openrouter(api_key="or-test", env={}, transport=script.transport)
    request = ModelRequest(
        model="openai/gpt-4.1-mini",
        messages=(Message.user("Use web search to find Pydantic AI's GitHub repository."),),
        options={"tools": [{"type": "openrouter:web_search", "parameters": {"max_uses": 1}}]},
    )
    items = await collect(provider, request)
    await provider.aclose()
    final = response(items)
    assert script.requests[0].url == httpx.URL(OPENROUTER_BASE_URL + "/chat/completions")
    assert script.bodies[0]["tools"] == [{"type": "openrouter:web_search", "parameters": {"max_uses": 1}}]
    assert final.provider == "openrouter"
    assert final.message.text == "https://github.com/pydantic/pydantic-ai "
    assert final.message.parts == (TextPart(text=final.message.text),)
    assert (final.finish_reason, final.raw_finish_reason) == ("stop", "stop")
    assert final.usage == TokenUsage(input_tokens=8174, output_tokens=30)
    assert final.usage.total_tokens == 8204


# -- recorded replays: HTTP error ------------------------------------------------------------


async def test_error_400_developer_role(provider_wire_dir: Path) -> None:
    script = WireScript.from_file(provider_wire_dir / "openai" / "error_400_o1mini_developer_role.json")
    provider = OpenAIChatProvider(api_key="sk-test", transport=script.transport)
    with pytest.raises(ProviderHTTPError) as info:
        await collect(provider, ModelRequest(model="o1-mini", messages=(Message.user("Hello"),)))
    await provider.aclose()
    err = info.value
    assert err.status == 400
    assert err.retryable is False
    assert err.provider == "openai"
    assert "does not support 'developer' with this model" in str(err)
    assert "unsupported_value" in err.body


# -- request mapping -----------------------------------------------------------------------------


async def test_request_body_mapping() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return sse_response(sse_body(chunk({"content": "ok"}, "stop")))

    provider = mock_provider(handler, max_tokens_field="max_completion_tokens")
    request = ModelRequest(
        model="gpt-x",
        system="be brief",
        messages=(
            Message.user("q"),
            Message(
                role="assistant",
                parts=(
                    ReasoningPart(text="secret thoughts", provider="openai"),
                    TextPart(text="calling"),
                    ToolCallPart(id="c1", name="a", arguments=""),
                    ToolCallPart(id="c2", name="b", arguments='{"x":1}'),
                ),
            ),
            Message(
                role="tool",
                parts=(
                    ToolResultPart(call_id="c1", name="a", output="A"),
                    ToolResultPart(call_id="c2", name="b", output="boom", is_error=True),
                ),
            ),
            Message(role="assistant", parts=(ReasoningPart(text="only thinking"),)),
        ),
        tools=(ToolSpec(name="a", description="does a", input_schema={"type": "object"}),),
        max_output_tokens=99,
        temperature=0.2,
        options={"temperature": 0.7, "seed": 1},
    )
    await collect(provider, request)
    await provider.aclose()
    (body,) = seen
    assert body["model"] == "gpt-x"
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": "calling",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "b", "arguments": '{"x":1}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "A"},
        {"role": "tool", "tool_call_id": "c2", "content": "boom"},
        {"role": "assistant", "content": ""},
    ]
    assert "secret thoughts" not in json.dumps(body)
    assert body["tools"] == [
        {"type": "function", "function": {"name": "a", "description": "does a", "parameters": {"type": "object"}}}
    ]
    assert body["max_completion_tokens"] == 99 and "max_tokens" not in body
    assert body["temperature"] == 0.7  # options merged last
    assert body["seed"] == 1
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_request_body_omits_unset_fields() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        assert request.url.path == "/v1/chat/completions"
        return sse_response(sse_body(chunk({"content": "ok"}, "stop")))

    provider = mock_provider(handler, base_url="http://127.0.0.1:8080/v1/")
    await collect(provider, REQ)
    await provider.aclose()
    assert set(seen[0]) == {"model", "messages", "stream", "stream_options"}


@pytest.mark.parametrize(("api_key", "expected"), [("sk-abc", "Bearer sk-abc"), (None, None), ("", None)])
async def test_auth_header_only_with_key(api_key: str | None, expected: str | None) -> None:
    headers: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers)
        return sse_response(sse_body(chunk({"content": "ok"}, "stop")))

    provider = mock_provider(handler, api_key=api_key, extra_headers={"X-Title": "lash"})
    await collect(provider, REQ)
    await provider.aclose()
    assert headers[0].get("authorization") == expected
    assert headers[0]["x-title"] == "lash"


# -- stream parsing (hand-built) -----------------------------------------------------------------


async def test_reasoning_fields_become_reasoning_part_first() -> None:
    body = sse_body(
        chunk({"reasoning_content": "think "}),  # llama.cpp / DeepSeek
        # OpenRouter sends the same text twice, as `reasoning` and in `reasoning_details`.
        chunk({"reasoning": "more", "reasoning_details": [{"type": "reasoning.text", "text": "more"}]}),
        chunk({"reasoning_details": [{"type": "reasoning.summary", "summary": "!"}]}),
        chunk({"content": "answer"}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "t", "arguments": None}}]}),
        chunk({}, "function_call"),
    )
    provider = mock_provider(lambda r: sse_response(body), provider_name="local")
    items = await collect(provider, REQ)
    await provider.aclose()
    assert [i.text for i in items if isinstance(i, ReasoningDelta)] == ["think ", "more", "!"]
    final = response(items)
    assert final.message.parts == (
        ReasoningPart(text="think more!", provider="local"),
        TextPart(text="answer"),
        ToolCallPart(id="call_0", name="t", arguments="{}"),  # id synthesised
    )
    assert (final.finish_reason, final.raw_finish_reason) == ("tool_calls", "function_call")
    assert final.usage == TokenUsage()


@pytest.mark.parametrize(
    ("raw", "mapped"),
    [("stop", "stop"), ("length", "length"), ("content_filter", "content_filter"), ("eos", "other")],
)
async def test_finish_reason_mapping(raw: str, mapped: str) -> None:
    body = sse_body(chunk({"content": "x"}, raw), done=False)  # finish_reason alone is terminal
    provider = mock_provider(lambda r: sse_response(body))
    final = response(await collect(provider, REQ))
    await provider.aclose()
    assert (final.finish_reason, final.raw_finish_reason) == (mapped, raw)


async def test_done_without_finish_reason_and_no_calls_is_stop() -> None:
    provider = mock_provider(lambda r: sse_response(sse_body(chunk({"content": "hi"}))))
    final = response(await collect(provider, REQ))
    await provider.aclose()
    assert (final.finish_reason, final.raw_finish_reason) == ("stop", None)
    assert final.model == "m-1"


async def test_usage_with_cache_fields_in_finish_chunk() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 30},
        "completion_tokens_details": {"reasoning_tokens": 5},
    }
    body = sse_body(chunk({"content": "x"}), chunk({}, "stop", usage=usage))
    provider = mock_provider(lambda r: sse_response(body))
    final = response(await collect(provider, REQ))
    await provider.aclose()
    assert final.usage == TokenUsage(
        input_tokens=10,
        output_tokens=20,
        cache_read_input_tokens=60,
        cache_write_input_tokens=30,
        reasoning_output_tokens=5,
    )


async def test_usage_input_is_clamped_at_zero() -> None:
    usage = {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 9}}
    body = sse_body(chunk({}, "stop"), {"choices": [], "usage": usage})
    provider = mock_provider(lambda r: sse_response(body))
    final = response(await collect(provider, REQ))
    await provider.aclose()
    assert final.usage == TokenUsage(input_tokens=0, cache_read_input_tokens=9)


async def test_tool_call_split_args_and_missing_ids() -> None:
    body = sse_body(
        chunk({"tool_calls": [{"index": 1, "function": {"name": "b", "arguments": '{"y"'}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "z", "function": {"name": "a", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": ":2}"}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "z", "function": {"name": "a"}}]}),  # repeat: no-op
        chunk({}, "tool_calls"),
    )
    provider = mock_provider(lambda r: sse_response(body))
    items = await collect(provider, REQ)
    await provider.aclose()
    assert [i for i in items if isinstance(i, ToolCallDelta)] == [
        ToolCallDelta(index=1, id=None, name="b", arguments='{"y"'),
        ToolCallDelta(index=0, id="z", name="a", arguments=""),
        ToolCallDelta(index=1, id=None, name="b", arguments=":2}"),
    ]
    assert response(items).message.tool_calls == (
        ToolCallPart(id="z", name="a", arguments="{}"),
        ToolCallPart(id="call_1", name="b", arguments='{"y":2}'),
    )


# -- faults ---------------------------------------------------------------------------------------


async def test_stream_without_terminal_evidence_is_an_error() -> None:
    body = sse_body(chunk({"content": "partial"}), done=False)
    provider = mock_provider(lambda r: sse_response(body))
    seen: list[ModelStreamItem] = []
    with pytest.raises(ProviderStreamError, match="without a finish_reason"):
        async for item in provider.stream(REQ):
            seen.append(item)
    await provider.aclose()
    assert seen == [TextDelta(text="partial")]


async def test_empty_stream_is_an_error() -> None:
    provider = mock_provider(lambda r: sse_response(""))
    with pytest.raises(ProviderStreamError) as info:
        await collect(provider, REQ)
    await provider.aclose()
    assert info.value.retryable is True


async def test_malformed_chunk_is_an_error() -> None:
    body = sse_body(chunk({"content": "a"}), '{"choices": [', chunk({}, "stop"))
    provider = mock_provider(lambda r: sse_response(body))
    with pytest.raises(ProviderStreamError, match="malformed stream chunk"):
        await collect(provider, REQ)
    await provider.aclose()


async def test_error_object_mid_stream() -> None:
    body = sse_body(
        chunk({"content": "a"}),
        {"id": "gen-1", "error": {"code": 502, "message": "Upstream provider overloaded"}, "choices": []},
    )
    provider = mock_provider(lambda r: sse_response(body), provider_name="openrouter")
    with pytest.raises(ProviderStreamError, match="Upstream provider overloaded") as info:
        await collect(provider, REQ)
    await provider.aclose()
    assert info.value.provider == "openrouter"


async def test_http_500_is_retryable() -> None:
    provider = mock_provider(lambda r: httpx.Response(500, json={"error": {"message": "server fell over"}}))
    with pytest.raises(ProviderHTTPError, match="server fell over") as info:
        await collect(provider, REQ)
    await provider.aclose()
    assert info.value.status == 500
    assert info.value.retryable is True


async def test_http_429_retry_after() -> None:
    provider = mock_provider(
        lambda r: httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"message": "slow down"}})
    )
    with pytest.raises(ProviderHTTPError) as info:
        await collect(provider, REQ)
    await provider.aclose()
    assert info.value.status == 429
    assert info.value.retry_after_s == 7
    assert info.value.retryable is True


async def test_connect_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    provider = mock_provider(handler)
    with pytest.raises(ProviderConnectionError, match="connection refused") as info:
        await collect(provider, REQ)
    await provider.aclose()
    assert info.value.retryable is True


# -- construction ---------------------------------------------------------------------------------


async def test_is_a_model_client_and_aclose_is_idempotent() -> None:
    provider = OpenAIChatProvider(api_key=None, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert isinstance(provider, ModelClient)
    assert provider.provider_name == "openai"
    await provider.aclose()
    await provider.aclose()


async def test_from_env() -> None:
    provider = OpenAIChatProvider.from_env(env={"OPENAI_API_KEY": "sk-env"})
    assert provider.base_url == "https://api.openai.com/v1"
    await provider.aclose()
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY") as info:
        OpenAIChatProvider.from_env(env={})
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        OpenAIChatProvider.from_env(base_url="https://api.openai.com/v1/", env={"OPENAI_API_KEY": ""})
    # A local compatible server needs no key.
    local = OpenAIChatProvider.from_env(base_url="http://127.0.0.1:8080/v1", env={}, provider_name="llamacpp")
    assert local.provider_name == "llamacpp"
    await local.aclose()


async def test_openrouter_preset() -> None:
    provider = OpenAIChatProvider.openrouter(env={"OPENROUTER_API_KEY": "or-env"})
    assert (provider.provider_name, provider.base_url) == ("openrouter", OPENROUTER_BASE_URL)
    await provider.aclose()
    with pytest.raises(ConfigError, match="set OPENROUTER_API_KEY") as info:
        OpenAIChatProvider.openrouter(env={"OPENAI_API_KEY": "sk-not-this-one"})
    assert "\n" not in str(info.value)
