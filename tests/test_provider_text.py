"""Every provider streams valid Unicode: split surrogate pairs are joined, lone ones become U+FFFD.

A provider may escape the two UTF-16 halves of one emoji into two stream events (``"\\ud83d"``
in one delta, ``"\\ude00"`` in the next); decoded separately each half is a lone surrogate that
no UTF-8 encoder (terminal, store, commit hash) accepts. These tests drive the real provider
code over ``httpx.MockTransport`` with such streams, built with ``json.dumps`` so the halves
travel as JSON escapes exactly as on the wire. Also: a bad ``base_url`` is refused at
construction, and an httpx read timeout mid-stream is a retryable ``ProviderConnectionError``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from click.testing import CliRunner

from lash_kernel.activity import AssistantProseDelta
from lash_kernel.cli import cli
from lash_kernel.errors import ConfigError, ModelError, ProviderConnectionError, ProviderStreamError
from lash_kernel.messages import Message, ReasoningPart, TextPart, ToolCallPart
from lash_kernel.model import ModelRequest, ModelResponse, ModelStreamItem, ReasoningDelta, TextDelta, ToolCallDelta
from lash_kernel.providers.anthropic import AnthropicProvider
from lash_kernel.providers.openai_chat import OpenAIChatProvider
from lash_kernel.providers.openai_responses import OpenAIResponsesProvider
from lash_kernel.runtime.core import LashCore
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing.wire import WireScript, sse_body

pytestmark = pytest.mark.anyio

EMOJI = "\U0001f600"
HIGH, LOW = "\ud83d", "\ude00"
FFFD = "\ufffd"
REQUEST = ModelRequest(model="m", messages=(Message.user("hi"),))


# -- helpers ---------------------------------------------------------------------------------


def sse_response(body: str, status: int = 200) -> dict[str, Any]:
    return {"response": {"status": status, "headers": {"content-type": "text/event-stream"}, "body_text": body}}


def json_response(body: str, status: int = 200) -> dict[str, Any]:
    return {"response": {"status": status, "headers": {"content-type": "application/json"}, "body_text": body}}


async def collect(provider: Any, request: ModelRequest = REQUEST) -> list[ModelStreamItem]:
    try:
        items = [item async for item in provider.stream(request)]
    finally:
        await provider.aclose()
    assert isinstance(items[-1], ModelResponse)
    assert not any(isinstance(i, ModelResponse) for i in items[:-1])
    return items


def strings(value: Any) -> list[str]:
    """Every string inside a stream item (attrs records, tuples, mappings)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (tuple, list)):
        return [s for v in value for s in strings(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(k) + strings(v)]
    if attrs.has(type(value)):
        return [s for f in attrs.fields(type(value)) for s in strings(getattr(value, f.name))]
    return []


def check_valid(items: list[ModelStreamItem]) -> ModelResponse:
    """Every string encodes as UTF-8; the final message holds exactly the concatenated deltas."""
    for s in strings(items):
        s.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate
    response = items[-1]
    assert isinstance(response, ModelResponse)
    text = "".join(i.text for i in items if isinstance(i, TextDelta))
    reasoning = "".join(i.text for i in items if isinstance(i, ReasoningDelta))
    assert response.message.text == text
    parts = response.message.parts
    assert "".join(p.text for p in parts if isinstance(p, ReasoningPart)) == reasoning
    streamed_args: dict[int, str] = {}
    for i in items:
        if isinstance(i, ToolCallDelta):
            streamed_args[i.index] = streamed_args.get(i.index, "") + i.arguments
    calls = response.message.tool_calls
    assert [c.arguments for c in calls] == [streamed_args.get(n, "") for n in range(len(calls))]
    return response


def deltas(items: list[ModelStreamItem], kind: type[TextDelta] | type[ReasoningDelta]) -> list[str]:
    return [i.text for i in items if isinstance(i, kind)]


# -- OpenAI Chat Completions -----------------------------------------------------------------


def chat_chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "model": "m",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
    }


def chat(*chunks: dict[str, Any]) -> OpenAIChatProvider:
    script = WireScript([sse_response(sse_body(*chunks))])
    return OpenAIChatProvider(api_key="k", base_url="http://test/v1", transport=script.transport)


async def test_chat_joins_an_emoji_split_across_text_chunks() -> None:
    chunks = [chat_chunk({"content": f"hi {HIGH}"}), chat_chunk({"content": f"{LOW}!"}), chat_chunk(finish="stop")]
    body = sse_body(*chunks)
    assert '"hi \\ud83d"' in body and '"\\ude00!"' in body  # the halves travel as JSON escapes
    items = await collect(chat(*chunks))
    assert deltas(items, TextDelta) == ["hi ", f"{EMOJI}!"]
    assert check_valid(items).message.text == f"hi {EMOJI}!"


async def test_chat_joins_split_reasoning_and_tool_arguments() -> None:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "echo", "arguments": '{"s": "'}}
    items = await collect(chat(
        chat_chunk({"reasoning": f"think {HIGH}"}),
        chat_chunk({"reasoning": f"{LOW} done"}),
        chat_chunk({"tool_calls": [call]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": HIGH}}]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": f'{LOW}"}}'}}]}),
        chat_chunk(finish="tool_calls"),
    ))
    response = check_valid(items)
    assert deltas(items, ReasoningDelta) == ["think ", f"{EMOJI} done"]
    assert response.message.parts[0] == ReasoningPart(text=f"think {EMOJI} done", provider="openai")
    assert response.message.tool_calls == (ToolCallPart(id="call_1", name="echo", arguments=f'{{"s": "{EMOJI}"}}'),)
    assert json.loads(response.message.tool_calls[0].arguments) == {"s": EMOJI}


async def test_chat_lone_surrogates_become_replacement_characters() -> None:
    call = {"index": 0, "id": f"call{LOW}", "function": {"name": f"to{HIGH}ol", "arguments": f'{{"x": "{LOW}"}}'}}
    items = await collect(chat(
        chat_chunk({"content": f"a{HIGH}"}),
        chat_chunk({"content": "b"}),  # not the low half: the held high is lone
        chat_chunk({"content": f"{LOW}c"}),  # a low half with nothing before it
        chat_chunk({"tool_calls": [call]}),
        chat_chunk({"content": f"end{HIGH}"}, finish="tool_calls"),  # lone high at the very end
    ))
    response = check_valid(items)
    assert deltas(items, TextDelta) == ["a", f"{FFFD}b", f"{FFFD}c", "end", FFFD]
    assert response.message.text == f"a{FFFD}b{FFFD}cend{FFFD}"
    assert response.message.tool_calls == (
        ToolCallPart(id=f"call{FFFD}", name=f"to{FFFD}ol", arguments=f'{{"x": "{FFFD}"}}'),
    )


async def test_chat_error_message_with_a_lone_surrogate_is_valid() -> None:
    provider = chat(chat_chunk({"content": "a"}), {"error": {"message": f"overloaded {HIGH}"}})
    with pytest.raises(ProviderStreamError) as info:
        await collect(provider)
    assert str(info.value).endswith(f"overloaded {FFFD}")


# -- OpenAI Responses ------------------------------------------------------------------------


def responses(*events: dict[str, Any]) -> OpenAIResponsesProvider:
    script = WireScript([sse_response(sse_body(*events, done=False))])
    return OpenAIResponsesProvider(api_key="k", base_url="http://test/v1", transport=script.transport)


def item(kind: str, index: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": f"response.output_item.{kind}", "output_index": index, "item": body}


def text_delta(index: int, text: str) -> dict[str, Any]:
    return {"type": "response.output_text.delta", "output_index": index, "content_index": 0, "delta": text}


def message_item(text: str | None = None) -> dict[str, Any]:
    content = [] if text is None else [{"type": "output_text", "text": text}]
    return {"type": "message", "id": "msg_1", "role": "assistant", "content": content}


def terminal(kind: str = "completed", **response: Any) -> dict[str, Any]:
    return {"type": f"response.{kind}", "response": {"id": "resp_1", "model": "m", **response}}


async def test_responses_joins_an_emoji_split_across_text_deltas() -> None:
    items = await collect(responses(
        item("added", 0, message_item()),
        text_delta(0, f"hi {HIGH}"),
        text_delta(0, f"{LOW}!"),
        item("done", 0, message_item(f"hi {EMOJI}!")),  # the whole text: the pair arrives in one string
        terminal(),
    ))
    assert deltas(items, TextDelta) == ["hi ", f"{EMOJI}!"]
    assert check_valid(items).message.text == f"hi {EMOJI}!"


async def test_responses_incomplete_keeps_the_joined_streamed_text() -> None:
    """No ``output_item.done``: the final text is the streamed text, joined and flushed."""
    items = await collect(responses(
        item("added", 0, message_item()),
        text_delta(0, f"hi {HIGH}"),
        text_delta(0, f"{LOW} and {HIGH}"),  # cut off after a high half
        terminal("incomplete", incomplete_details={"reason": "max_output_tokens"}),
    ))
    assert deltas(items, TextDelta) == ["hi ", f"{EMOJI} and ", FFFD]
    response = check_valid(items)
    assert response.message.text == f"hi {EMOJI} and {FFFD}" and response.finish_reason == "length"


async def test_responses_joins_split_reasoning_and_tool_arguments() -> None:
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "echo", "arguments": ""}
    args = '{"s": "' + EMOJI + '"}'
    items = await collect(responses(
        item("added", 0, reasoning),
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": f"think {HIGH}"},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": f"{LOW}"},
        item("done", 0, {**reasoning, "summary": [{"type": "summary_text", "text": f"think {EMOJI}"}]}),
        item("added", 1, call),
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": '{"s": "' + HIGH},
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": LOW + '"}'},
        item("done", 1, {**call, "arguments": args}),
        terminal(),
    ))
    response = check_valid(items)
    assert deltas(items, ReasoningDelta) == ["think ", EMOJI]
    assert response.message.parts[0].text == f"think {EMOJI}"  # type: ignore[union-attr]
    assert [i.arguments for i in items if isinstance(i, ToolCallDelta)] == ["", '{"s": "', EMOJI + '"}']
    assert response.message.tool_calls == (ToolCallPart(id="call_1", name="echo", arguments=args),)


async def test_responses_lone_surrogates_become_replacement_characters() -> None:
    call = {"type": "function_call", "id": "fc_1", "call_id": f"call{LOW}", "name": f"to{HIGH}ol", "arguments": ""}
    items = await collect(responses(
        item("added", 0, message_item()),
        text_delta(0, f"a{HIGH}"),
        text_delta(0, f"b{LOW}"),
        item("done", 0, message_item(f"a{HIGH}b{LOW}")),  # the provider really sent lone halves
        item("added", 1, call),
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": f'{{"x": "{LOW}"}}'},
        item("done", 1, {**call, "arguments": f'{{"x": "{LOW}"}}'}),
        terminal(),
    ))
    response = check_valid(items)
    assert deltas(items, TextDelta) == ["a", f"{FFFD}b{FFFD}"]
    assert response.message.text == f"a{FFFD}b{FFFD}"
    assert response.message.tool_calls == (
        ToolCallPart(id=f"call{FFFD}", name=f"to{FFFD}ol", arguments=f'{{"x": "{FFFD}"}}'),
    )
    first_call_delta = next(i for i in items if isinstance(i, ToolCallDelta))
    assert (first_call_delta.id, first_call_delta.name) == (f"call{FFFD}", f"to{FFFD}ol")


async def test_responses_failed_message_with_a_lone_surrogate_is_valid() -> None:
    provider = responses(terminal("failed", status="failed", error={"code": "server_error", "message": f"oops {HIGH}"}))
    with pytest.raises(ModelError) as info:
        await collect(provider)
    assert f"oops {FFFD}" in str(info.value) and info.value.retryable


# -- Anthropic Messages ----------------------------------------------------------------------


def anthropic_sse(*events: dict[str, Any]) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


MESSAGE_START = {"type": "message_start", "message": {"id": "msg_1", "model": "m", "content": [], "usage": {}}}
MESSAGE_END: list[dict[str, Any]] = [
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
    {"type": "message_stop"},
]


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def anthropic(*events: dict[str, Any]) -> AnthropicProvider:
    script = WireScript([sse_response(anthropic_sse(MESSAGE_START, *events, *MESSAGE_END))])
    return AnthropicProvider(api_key="k", base_url="http://test", transport=script.transport)


async def test_anthropic_joins_an_emoji_split_across_text_deltas() -> None:
    items = await collect(anthropic(
        block_start(0, {"type": "text", "text": ""}),
        block_delta(0, {"type": "text_delta", "text": f"hi {HIGH}"}),
        block_delta(0, {"type": "text_delta", "text": f"{LOW}!"}),
        block_stop(0),
    ))
    assert deltas(items, TextDelta) == ["hi ", f"{EMOJI}!"]
    assert check_valid(items).message.text == f"hi {EMOJI}!"


async def test_anthropic_joins_split_thinking_and_tool_input() -> None:
    items = await collect(anthropic(
        block_start(0, {"type": "thinking", "thinking": ""}),
        block_delta(0, {"type": "thinking_delta", "thinking": f"think {HIGH}"}),
        block_delta(0, {"type": "thinking_delta", "thinking": LOW}),
        block_delta(0, {"type": "signature_delta", "signature": "sig"}),
        block_stop(0),
        block_start(1, {"type": "tool_use", "id": "toolu_1", "name": "echo", "input": {}}),
        block_delta(1, {"type": "input_json_delta", "partial_json": '{"s": "' + HIGH}),
        block_delta(1, {"type": "input_json_delta", "partial_json": LOW + '"}'}),
        block_stop(1),
    ))
    response = check_valid(items)
    assert deltas(items, ReasoningDelta) == ["think ", EMOJI]
    assert response.message.parts[0] == ReasoningPart(text=f"think {EMOJI}", signature="sig", provider="anthropic")
    assert response.message.tool_calls == (ToolCallPart(id="toolu_1", name="echo", arguments='{"s": "' + EMOJI + '"}'),)


async def test_anthropic_lone_surrogates_become_replacement_characters() -> None:
    items = await collect(anthropic(
        block_start(0, {"type": "text", "text": f"x{LOW}"}),  # lone low already in the block start
        block_delta(0, {"type": "text_delta", "text": f"a{HIGH}"}),
        block_stop(0),  # the block ends on a high half: flushed as U+FFFD
        block_start(1, {"type": "tool_use", "id": f"toolu{HIGH}", "name": f"to{LOW}ol", "input": {}}),
        block_delta(1, {"type": "input_json_delta", "partial_json": f'{{"x": "{HIGH}"}}'}),
        block_stop(1),
        block_start(2, {"type": "text", "text": ""}),
        block_delta(2, {"type": "text_delta", "text": f"tail{HIGH}"}),  # no content_block_stop at all
    ))
    response = check_valid(items)
    assert deltas(items, TextDelta) == [f"x{FFFD}", "a", FFFD, "tail", FFFD]
    assert response.message.parts[0] == TextPart(text=f"x{FFFD}a{FFFD}")
    assert response.message.parts[2] == TextPart(text=f"tail{FFFD}")
    assert response.message.tool_calls == (
        ToolCallPart(id=f"toolu{FFFD}", name=f"to{FFFD}ol", arguments=f'{{"x": "{FFFD}"}}'),
    )
    first_call_delta = next(i for i in items if isinstance(i, ToolCallDelta))
    assert (first_call_delta.id, first_call_delta.name) == (f"toolu{FFFD}", f"to{FFFD}ol")


async def test_anthropic_non_streaming_lone_surrogates_become_replacement_characters() -> None:
    message = {
        "id": "msg_1",
        "model": "m",
        "stop_reason": "tool_use",
        "usage": {},
        "content": [
            {"type": "thinking", "thinking": f"hm{HIGH}", "signature": "sig"},
            {"type": "text", "text": f"a{HIGH}{LOW}b{LOW}"},
            {"type": "tool_use", "id": "toolu_1", "name": f"to{HIGH}ol", "input": {"x": f"{LOW}"}},
        ],
    }
    body = json.dumps(message)
    script = WireScript([json_response(body)])
    provider = AnthropicProvider(api_key="k", base_url="http://test", transport=script.transport)
    items = await collect(provider, attrs.evolve(REQUEST, options={"stream": False}))
    assert len(items) == 1
    response = items[0]
    assert isinstance(response, ModelResponse)
    for s in strings(response):
        s.encode("utf-8")
    assert response.message.text == f"a{EMOJI}b{FFFD}"
    assert response.message.parts[0] == ReasoningPart(text=f"hm{FFFD}", signature="sig", provider="anthropic")
    assert response.message.tool_calls[0].name == f"to{FFFD}ol"
    assert json.loads(response.message.tool_calls[0].arguments) == {"x": FFFD}


async def test_anthropic_error_event_with_a_lone_surrogate_is_valid() -> None:
    provider = anthropic({"type": "error", "error": {"type": "overloaded_error", "message": f"busy {HIGH}"}})
    with pytest.raises(ProviderStreamError) as info:
        await collect(provider)
    assert str(info.value).endswith(f"busy {FFFD}") and info.value.retryable


async def test_http_error_body_with_a_lone_surrogate_is_valid() -> None:
    body = json.dumps({"error": {"type": "invalid_request_error", "message": f"bad {HIGH}"}})
    script = WireScript([json_response(body, 400)])
    provider = AnthropicProvider(api_key="k", base_url="http://test", transport=script.transport)
    with pytest.raises(ModelError) as info:
        await collect(provider)
    assert str(info.value).endswith(f"bad {FFFD}")


# -- base_url is checked at construction -----------------------------------------------------

PROVIDERS: list[Callable[[str], Any]] = [
    lambda url: OpenAIChatProvider(api_key="k", base_url=url),
    lambda url: OpenAIResponsesProvider(api_key="k", base_url=url),
    lambda url: AnthropicProvider(api_key="k", base_url=url),
]
PROVIDER_IDS = ["openai-chat", "openai-responses", "anthropic"]


@pytest.mark.parametrize("make", PROVIDERS, ids=PROVIDER_IDS)
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("not a url", "is not an http(s) URL (it contains whitespace)"),
        ("", "is empty"),
        ("localhost:8080/v1", "is not an http(s) URL"),
        ("ftp://example.com/v1", "is not an http(s) URL"),
        ("http://", "has no host"),
        ("https:///v1", "has no host"),
        ("http://exa mple.com/v1", "whitespace"),
        ("http://example.com:abc/v1", "has an invalid port or address"),
        ("http://example.com:99999/v1", "has an invalid port or address"),
    ],
)
async def test_bad_base_url_is_a_config_error_at_construction(make: Callable[[str], Any], url: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        make(url)
    message = str(info.value)
    assert message.startswith("base_url: ") and repr(url) in message and why in message


@pytest.mark.parametrize("make", PROVIDERS, ids=PROVIDER_IDS)
@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/v1", "https://api.example.com/v1/", "HTTP://LOCALHOST:11434", "http://[::1]:8080"])
async def test_good_base_url_is_accepted(make: Callable[[str], Any], url: str) -> None:
    provider = make(url)
    await provider.aclose()


async def test_from_env_checks_base_url_too() -> None:
    with pytest.raises(ConfigError, match="base_url: "):
        OpenAIChatProvider.from_env(base_url="not a url", env={})
    with pytest.raises(ConfigError, match="base_url: "):
        AnthropicProvider.from_env(base_url="nope", env={"ANTHROPIC_API_KEY": "k"})


# -- a read timeout mid-stream is a retryable connection error -------------------------------


def stalls_mid_stream(first: str) -> httpx.MockTransport:
    """Serve ``first`` as the start of an SSE body, then raise httpx.ReadTimeout."""

    class Body(httpx.AsyncByteStream):
        def __init__(self, request: httpx.Request) -> None:
            self.request = request

        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield first.encode()
            raise httpx.ReadTimeout("timed out", request=self.request)

    return httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Body(r))
    )


TIMEOUT_CASES = [
    pytest.param(
        lambda t: OpenAIChatProvider(api_key="k", base_url="http://test/v1", transport=t),
        sse_body(chat_chunk({"content": "partial"}), done=False),
        id="openai-chat",
    ),
    pytest.param(
        lambda t: OpenAIResponsesProvider(api_key="k", base_url="http://test/v1", transport=t),
        sse_body(item("added", 0, message_item()), text_delta(0, "partial"), done=False),
        id="openai-responses",
    ),
    pytest.param(
        lambda t: AnthropicProvider(api_key="k", base_url="http://test", transport=t),
        anthropic_sse(MESSAGE_START, block_start(0, {"type": "text", "text": ""}),
                      block_delta(0, {"type": "text_delta", "text": "partial"})),
        id="anthropic",
    ),
]


@pytest.mark.parametrize(("make", "first"), TIMEOUT_CASES)
async def test_read_timeout_mid_stream_is_a_retryable_connection_error(make: Any, first: str) -> None:
    provider = make(stalls_mid_stream(first))
    seen: list[ModelStreamItem] = []
    with pytest.raises(ProviderConnectionError) as info:
        try:
            async for event in provider.stream(REQUEST):
                seen.append(event)
        finally:
            await provider.aclose()
    assert deltas(seen, TextDelta) == ["partial"]  # the timeout came after the first delta
    assert info.value.retryable and "idle timeout" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


# -- end to end: the joined text reaches the store and the terminal --------------------------


async def test_split_emoji_turn_commits_and_reopens(tmp_path: Path) -> None:
    """Through LashCore and a SQLite file: the answer is committed whole, nothing is left pending."""
    provider = chat(
        chat_chunk({"content": f"smile {HIGH}"}),
        chat_chunk({"content": f"{LOW} and {HIGH}"}),  # the second high half is never completed
        chat_chunk(finish="stop"),
    )
    db = tmp_path / "text.db"
    core = LashCore(model_client=provider, model="m", store=SqliteStore(db), entry_points=False)
    try:
        result = await core.session("s").turn("hi").run()
    finally:
        await provider.aclose()
        core.close()
    answer = f"smile {EMOJI} and {FFFD}"
    assert result.messages[-1].text == answer
    streamed = "".join(a.event.text for a in result.activities if isinstance(a.event, AssistantProseDelta))
    assert streamed == answer
    with SqliteStore(db) as store:
        assert [n.payload for n in store.load_active_path("s")][-1].text == answer
        assert store.pending_inputs("s") == []


class _SSEServer:
    """A local HTTP server answering every POST with one fixed SSE body (for the real CLI)."""

    def __init__(self, body: str) -> None:
        data = body.encode("utf-8")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> _SSEServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _cli_env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_DATA_HOME": str(tmp_path / "xdg"), "OPENAI_API_KEY": "", "OPENROUTER_API_KEY": "",
            "LASH_CONFIG": "", "LASH_PLUGINS": "", "LASH_DB": ""}


def test_cli_run_prints_an_emoji_split_across_chunks(tmp_path: Path) -> None:
    chunks = [chat_chunk({"content": f"smile {HIGH}"}), chat_chunk({"content": f"{LOW}!"}), chat_chunk(finish="stop")]
    with _SSEServer(sse_body(*chunks)) as server:
        args = ["run", "--base-url", server.url, "--model", "m", "--db", str(tmp_path / "cli.db"), "hi"]
        result = CliRunner().invoke(cli, args, env=_cli_env(tmp_path), prog_name="lash")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, result.stderr
    assert f"smile {EMOJI}!" in result.stdout


def test_cli_run_rejects_a_bad_base_url_in_one_line(tmp_path: Path) -> None:
    args = ["run", "--base-url", "not a url", "--model", "m", "--db", str(tmp_path / "cli.db"), "hi"]
    result = CliRunner().invoke(cli, args, env=_cli_env(tmp_path), prog_name="lash")
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--base-url: 'not a url' is not an http(s) URL" in lines[0], result.stderr
