"""One conversation, four provider wire shapes, identical committed history.

Each shape gets a hand-built wire script in its API's real SSE format (modelled on the recordings
in ``tests/fixtures/provider-wire``) for the same conversation: the model streams reasoning and
a short preamble, asks for ``get_weather`` in Paris and in Oslo, the host runs both tools, and the
model answers. The real provider code parses the bytes, the real driver runs the real tools, and
a real SQLite file receives the commit. Whatever the wire looked like, what lash commits must be
the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from lash_kernel.activity import ReasoningProseDelta, ToolCallCompleted, UsageReported
from lash_kernel.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Finished
from lash_kernel.providers.anthropic import AnthropicProvider
from lash_kernel.providers.openai_chat import OpenAIChatProvider
from lash_kernel.providers.openai_responses import OpenAIResponsesProvider
from lash_kernel.runtime.core import LashCore
from lash_kernel.runtime.driver import RetryPolicy
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import WireScript
from lash_kernel.tools import Tool, tool
from lash_kernel.usage import TokenUsage

pytestmark = pytest.mark.anyio

# ---------------------------------------------------------------------------------------------
# The conversation (the same for every shape)
# ---------------------------------------------------------------------------------------------

SYSTEM = "You are a concise weather assistant."
USER = "What's the weather in Paris and in Oslo right now?"
REASONING = ["The user wants current weather for two cities. ", "I'll call get_weather once per city."]
PREAMBLE = ["Let me check ", "both cities."]
CITIES = ("Paris", "Oslo")
# argument JSON split the way servers split it (across the key, the value and the brace)
ARG_PIECES = {city: ['{"ci', 'ty": "', city[:2], city[2:] + '"}'] for city in CITIES}
WEATHER = {"Paris": "Paris: 18°C, clear sky", "Oslo": "Oslo: 7°C, light rain"}
FINAL = ["Paris is 18°C under a clear sky; ", "Oslo is 7°C with light rain — bring an umbrella."]

# Five buckets per call, chosen so every API's own usage rules land on the same numbers.
# (Plain OpenAI Chat Completions has no cache-write field, so cache writes stay 0 everywhere.)
CALL_USAGE = (
    TokenUsage(input_tokens=120, output_tokens=60, cache_read_input_tokens=40, reasoning_output_tokens=25),
    TokenUsage(input_tokens=210, output_tokens=22, cache_read_input_tokens=160),
)
EXPECTED_USAGE = TokenUsage(
    input_tokens=330, output_tokens=82, cache_read_input_tokens=200, reasoning_output_tokens=25
)

# What every shape must commit, provider ids and reasoning left out (checked separately).
EXPECTED_HISTORY = [
    ("user", [("text", USER)]),
    (
        "assistant",
        [
            ("text", "".join(PREAMBLE)),
            ("tool_call", "get_weather", {"city": "Paris"}),
            ("tool_call", "get_weather", {"city": "Oslo"}),
        ],
    ),
    (
        "tool",
        [
            ("tool_result", "get_weather", WEATHER["Paris"], False),
            ("tool_result", "get_weather", WEATHER["Oslo"], False),
        ],
    ),
    ("assistant", [("text", "".join(FINAL))]),
]


def semantics(messages: tuple[Message, ...]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The provider-independent meaning of a history: ids and reasoning dropped, JSON parsed."""
    out = []
    for message in messages:
        parts: list[tuple[Any, ...]] = []
        for part in message.parts:
            if isinstance(part, TextPart):
                parts.append(("text", part.text))
            elif isinstance(part, ToolCallPart):
                parts.append(("tool_call", part.name, json.loads(part.arguments)))
            elif isinstance(part, ToolResultPart):
                parts.append(("tool_result", part.name, part.output, part.is_error))
        out.append((message.role, parts))
    return out


def _u(index: int) -> TokenUsage:
    return CALL_USAGE[index]


# ---------------------------------------------------------------------------------------------
# Wire scripts, one builder per API
# ---------------------------------------------------------------------------------------------


def _sse(events: list[tuple[str | None, Any]]) -> str:
    """SSE text: ``(event_name_or_None, payload)``; dict payloads are JSON, strings go verbatim."""
    out = []
    for name, payload in events:
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        out.append((f"event: {name}\n" if name else "") + f"data: {data}\n\n")
    return "".join(out)


def _interaction(path: str, body: str) -> dict[str, Any]:
    return {
        "request": {"method": "POST", "path": path},
        "response": {"status": 200, "headers": {"content-type": "text/event-stream; charset=utf-8"}, "body_text": body},
    }


def _chat_usage(u: TokenUsage, *, openrouter: bool) -> dict[str, Any]:
    """Chat Completions usage: ``prompt_tokens`` includes the cached part."""
    prompt = u.input_tokens + u.cache_read_input_tokens
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
    }
    if openrouter:
        usage |= {
            "cost": 0.00123,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": u.cache_read_input_tokens, "cache_write_tokens": 0, "audio_tokens": 0},
            "cost_details": {"upstream_inference_cost": 0.00123},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_output_tokens, "image_tokens": 0},
        }
    else:
        usage |= {
            "prompt_tokens_details": {"cached_tokens": u.cache_read_input_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": u.reasoning_output_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
    return usage


def chat_script(*, openrouter: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """OpenAI Chat Completions (or OpenRouter) chunks; returns (interactions, call ids)."""
    ids = ["call_7kQmW2pZ", "call_9xRtY4bN"] if not openrouter else ["toolu_vrtx_01Pa", "toolu_vrtx_01Os"]
    model = "anthropic/claude-sonnet-4.5" if openrouter else "gpt-4o-2024-08-06"

    def chunk(n: int, delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) -> dict[str, Any]:
        if openrouter:
            c: dict[str, Any] = {
                "id": f"gen-1786465029-Wx{n}",
                "object": "chat.completion.chunk",
                "created": 1786465029,
                "model": model,
                "provider": "Anthropic",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish}],
            }
            if usage is not None:
                c["usage"] = usage
            return c
        return {
            "id": f"chatcmpl-BqX{n}",
            "object": "chat.completion.chunk",
            "created": 1786465029,
            "model": model,
            "system_fingerprint": "fp_07871e2ad8",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": usage,
        }

    first: list[dict[str, Any]] = [chunk(1, {"role": "assistant", "content": ""})]
    if openrouter:
        for piece in REASONING:  # OpenRouter repeats the text in reasoning_details: counted once
            first.append(
                chunk(
                    1,
                    {
                        "role": "assistant",
                        "content": "",
                        "reasoning": piece,
                        "reasoning_details": [
                            {"type": "reasoning.text", "text": piece, "format": "anthropic-claude-v1", "index": 0}
                        ],
                    },
                )
            )
    first += [chunk(1, {"content": piece}) for piece in PREAMBLE]
    for index, (city, call_id) in enumerate(zip(CITIES, ids)):
        first.append(
            chunk(
                1,
                {"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": ""}}]},
            )
        )
        first += [
            chunk(1, {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}) for piece in ARG_PIECES[city]
        ]
    if openrouter:  # finish_reason and usage in one chunk, as OpenRouter sends them
        first.append(chunk(1, {"role": "assistant", "content": ""}, "tool_calls", _chat_usage(_u(0), openrouter=True)))
    else:
        first.append(chunk(1, {}, "tool_calls"))
        first.append({**chunk(1, {}), "choices": [], "usage": _chat_usage(_u(0), openrouter=False)})

    second: list[dict[str, Any]] = [chunk(2, {"role": "assistant", "content": ""})]
    second += [chunk(2, {"content": piece}) for piece in FINAL]
    if openrouter:
        second.append(chunk(2, {"role": "assistant", "content": ""}, "stop", _chat_usage(_u(1), openrouter=True)))
    else:
        second.append(chunk(2, {}, "stop"))
        second.append({**chunk(2, {}), "choices": [], "usage": _chat_usage(_u(1), openrouter=False)})

    def body(chunks: list[dict[str, Any]]) -> str:
        prefix = ": OPENROUTER PROCESSING\n\n" * 3 if openrouter else ""
        events: list[tuple[str | None, Any]] = [(None, c) for c in chunks] + [(None, "[DONE]")]
        return prefix + _sse(events)

    path = "/api/v1/chat/completions" if openrouter else "/v1/chat/completions"
    return [_interaction(path, body(first)), _interaction(path, body(second))], ids


def anthropic_script() -> tuple[list[dict[str, Any]], list[str]]:
    """Anthropic Messages events with ``event:`` lines, pings and the server's padding."""
    ids = ["toolu_01Paris8kQmW2pZ", "toolu_01Oslo9xRtY4bN"]
    model = "claude-sonnet-4-5-20250929"

    def start(msg_id: str, u: TokenUsage) -> tuple[str, dict[str, Any]]:
        usage = {
            "input_tokens": u.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": u.cache_read_input_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 1,
            "service_tier": "standard",
        }
        message = {
            "model": model,
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return ("message_start", {"type": "message_start", "message": message})

    def end(stop: str, u: TokenUsage) -> list[tuple[str, Any]]:
        usage: dict[str, Any] = {
            "input_tokens": u.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": u.cache_read_input_tokens,
            "output_tokens": u.output_tokens,
        }
        if u.reasoning_output_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": u.reasoning_output_tokens}
        return [
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage}),
            ("message_stop", '{"type":"message_stop"       }'),
        ]

    def block(index: int, content_block: dict[str, Any], deltas: list[dict[str, Any]]) -> list[tuple[str, Any]]:
        events: list[tuple[str, Any]] = [
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": content_block})
        ]
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
        events.append(("content_block_stop", f'{{"type":"content_block_stop","index":{index}   }}'))
        return events

    first = [start("msg_01WeatherFirst", _u(0)), ("ping", {"type": "ping"})]
    first += block(
        0,
        {"type": "thinking", "thinking": "", "signature": ""},
        [{"type": "thinking_delta", "thinking": p} for p in REASONING]
        + [{"type": "signature_delta", "signature": "EqQBCkgIBhABGAIiQL2sig=="}],
    )
    first += block(1, {"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in PREAMBLE])
    for offset, (city, call_id) in enumerate(zip(CITIES, ids)):
        first += block(
            2 + offset,
            {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {}, "caller": {"type": "direct"}},
            [{"type": "input_json_delta", "partial_json": ""}]
            + [{"type": "input_json_delta", "partial_json": p} for p in ARG_PIECES[city]],
        )
    first += end("tool_use", _u(0))

    second = [start("msg_01WeatherSecond", _u(1))]
    second += block(0, {"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in FINAL])
    second += end("end_turn", _u(1))
    return [_interaction("/v1/messages", _sse(first)), _interaction("/v1/messages", _sse(second))], ids


def responses_script() -> tuple[list[dict[str, Any]], list[str]]:
    """OpenAI Responses typed events, reasoning summary plus encrypted content."""
    ids = ["call_Pa7kQmW2pZ", "call_Os9xRtY4bN"]
    model = "gpt-5.5-2026-04-23"
    seq = iter(range(10_000))

    def ev(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        return (kind, {"type": kind, **fields, "sequence_number": next(seq)})

    def usage(u: TokenUsage) -> dict[str, Any]:
        total_in = u.input_tokens + u.cache_read_input_tokens
        return {
            "input_tokens": total_in,
            "input_tokens_details": {"cached_tokens": u.cache_read_input_tokens},
            "output_tokens": u.output_tokens,
            "output_tokens_details": {"reasoning_tokens": u.reasoning_output_tokens},
            "total_tokens": total_in + u.output_tokens,
        }

    def response(resp_id: str, status: str, output: list[dict[str, Any]], u: TokenUsage | None) -> dict[str, Any]:
        return {
            "id": resp_id,
            "object": "response",
            "created_at": 1785273853,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": SYSTEM,
            "model": model,
            "output": output,
            "parallel_tool_calls": True,
            "store": False,
            "usage": usage(u) if u is not None else None,
        }

    def message_item(index: int, item_id: str, pieces: list[str]) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
        text = "".join(pieces)
        done = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
            "role": "assistant",
        }
        events = [
            ev("response.output_item.added", item={**done, "status": "in_progress", "content": []}, output_index=index),
            ev(
                "response.content_part.added",
                item_id=item_id,
                output_index=index,
                content_index=0,
                part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
            ),
        ]
        events += [
            ev("response.output_text.delta", item_id=item_id, output_index=index, content_index=0, delta=p, logprobs=[])
            for p in pieces
        ]
        events += [
            ev("response.output_text.done", item_id=item_id, output_index=index, content_index=0, text=text, logprobs=[]),
            ev("response.content_part.done", item_id=item_id, output_index=index, content_index=0, part=done["content"][0]),
            ev("response.output_item.done", item=done, output_index=index),
        ]
        return events, done

    r1 = "resp_0fabc13af1ee0049006a691dfdab8881"
    first = [
        ev("response.created", response=response(r1, "in_progress", [], None)),
        ev("response.in_progress", response=response(r1, "in_progress", [], None)),
    ]
    reasoning_done = {
        "id": "rs_0fabc13af1ee004900reasoning",
        "type": "reasoning",
        "encrypted_content": "gAAAAABqaR3-encrypted-reasoning==",
        "summary": [{"type": "summary_text", "text": "".join(REASONING)}],
    }
    first += [
        ev(
            "response.output_item.added",
            item={**reasoning_done, "summary": [], "encrypted_content": "gAAAAABqaR3-partial=="},
            output_index=0,
        ),
        ev(
            "response.reasoning_summary_part.added",
            item_id=reasoning_done["id"],
            output_index=0,
            summary_index=0,
            part={"type": "summary_text", "text": ""},
        ),
    ]
    first += [
        ev("response.reasoning_summary_text.delta", item_id=reasoning_done["id"], output_index=0, summary_index=0, delta=p)
        for p in REASONING
    ]
    first += [
        ev(
            "response.reasoning_summary_text.done",
            item_id=reasoning_done["id"],
            output_index=0,
            summary_index=0,
            text="".join(REASONING),
        ),
        ev(
            "response.reasoning_summary_part.done",
            item_id=reasoning_done["id"],
            output_index=0,
            summary_index=0,
            part=reasoning_done["summary"][0],
        ),
        ev("response.output_item.done", item=reasoning_done, output_index=0),
    ]
    events, preamble_done = message_item(1, "msg_0fabc13af1ee0049preamble", PREAMBLE)
    first += events
    output: list[dict[str, Any]] = [reasoning_done, preamble_done]
    for offset, (city, call_id) in enumerate(zip(CITIES, ids)):
        index = 2 + offset
        item_id = f"fc_0fabc13af1ee0049{city.lower()}"
        args = "".join(ARG_PIECES[city])
        done = {
            "id": item_id,
            "type": "function_call",
            "status": "completed",
            "arguments": args,
            "call_id": call_id,
            "name": "get_weather",
        }
        first.append(ev("response.output_item.added", item={**done, "status": "in_progress", "arguments": ""}, output_index=index))
        first += [
            ev("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=p)
            for p in ARG_PIECES[city]
        ]
        first += [
            ev("response.function_call_arguments.done", item_id=item_id, output_index=index, arguments=args),
            ev("response.output_item.done", item=done, output_index=index),
        ]
        output.append(done)
    first.append(ev("response.completed", response=response(r1, "completed", output, _u(0))))

    r2 = "resp_0fabc13af1ee0049006a691dfdab8882"
    second = [
        ev("response.created", response=response(r2, "in_progress", [], None)),
        ev("response.in_progress", response=response(r2, "in_progress", [], None)),
    ]
    events, final_done = message_item(0, "msg_0fabc13af1ee0049final", FINAL)
    second += events
    second.append(ev("response.completed", response=response(r2, "completed", [final_done], _u(1))))
    return [_interaction("/v1/responses", _sse(first)), _interaction("/v1/responses", _sse(second))], ids


# ---------------------------------------------------------------------------------------------
# Per-shape checks of the second request (the tool results, in each API's own format)
# ---------------------------------------------------------------------------------------------


def check_chat_followup(body: dict[str, Any], ids: list[str]) -> None:
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": SYSTEM}
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool"]
    assistant = messages[2]
    assert assistant["content"] == "".join(PREAMBLE)
    assert [c["id"] for c in assistant["tool_calls"]] == ids
    assert [json.loads(c["function"]["arguments"]) for c in assistant["tool_calls"]] == [{"city": c} for c in CITIES]
    assert messages[3:] == [
        {"role": "tool", "tool_call_id": ids[0], "content": WEATHER["Paris"]},
        {"role": "tool", "tool_call_id": ids[1], "content": WEATHER["Oslo"]},
    ]
    assert "reasoning" not in json.dumps(messages)  # chat reasoning is never sent back


def check_anthropic_followup(body: dict[str, Any], ids: list[str]) -> None:
    assert body["system"][0]["text"] == SYSTEM
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    thinking, text, *calls = messages[1]["content"]
    assert thinking == {"type": "thinking", "thinking": "".join(REASONING), "signature": "EqQBCkgIBhABGAIiQL2sig=="}
    assert text == {"type": "text", "text": "".join(PREAMBLE)}
    assert [(c["type"], c["id"], c["input"]) for c in calls] == [
        ("tool_use", ids[0], {"city": "Paris"}),
        ("tool_use", ids[1], {"city": "Oslo"}),
    ]
    results = [{k: b[k] for k in ("type", "tool_use_id", "content", "is_error")} for b in messages[2]["content"]]
    assert results == [
        {"type": "tool_result", "tool_use_id": ids[0], "content": WEATHER["Paris"], "is_error": False},
        {"type": "tool_result", "tool_use_id": ids[1], "content": WEATHER["Oslo"], "is_error": False},
    ]


def check_responses_followup(body: dict[str, Any], ids: list[str]) -> None:
    assert body["instructions"] == SYSTEM
    items = body["input"]
    kinds = [i.get("type", i.get("role")) for i in items]
    assert kinds == ["user", "reasoning", "message", "function_call", "function_call", "function_call_output", "function_call_output"]
    assert items[1]["encrypted_content"] == "gAAAAABqaR3-encrypted-reasoning=="
    assert "id" not in items[1]  # store=False: encrypted replay only
    assert [(i["call_id"], i["name"], json.loads(i["arguments"])) for i in items[3:5]] == [
        (ids[0], "get_weather", {"city": "Paris"}),
        (ids[1], "get_weather", {"city": "Oslo"}),
    ]
    assert items[5:] == [
        {"type": "function_call_output", "call_id": ids[0], "output": WEATHER["Paris"]},
        {"type": "function_call_output", "call_id": ids[1], "output": WEATHER["Oslo"]},
    ]


@attrs.frozen
class Shape:
    name: str
    model: str
    script: Callable[[], tuple[list[dict[str, Any]], list[str]]]
    provider: Callable[[Any], Any]
    check_followup: Callable[[dict[str, Any], list[str]], None]
    streams_reasoning: bool
    reasoning_check: Callable[[ReasoningPart], bool] = lambda part: True


SHAPES = [
    Shape(
        "openai-chat",
        "gpt-4o",
        lambda: chat_script(openrouter=False),
        lambda transport: OpenAIChatProvider(api_key="sk-test", transport=transport),
        check_chat_followup,
        streams_reasoning=False,  # Chat Completions never streams OpenAI reasoning
    ),
    Shape(
        "openrouter",
        "anthropic/claude-sonnet-4.5",
        lambda: chat_script(openrouter=True),
        lambda transport: OpenAIChatProvider.openrouter(api_key="sk-or-test", transport=transport),
        check_chat_followup,
        streams_reasoning=True,
        reasoning_check=lambda p: p.provider == "openrouter" and p.signature is None and p.encrypted is None,
    ),
    Shape(
        "anthropic",
        "claude-sonnet-4-5",
        anthropic_script,
        lambda transport: AnthropicProvider(api_key="sk-ant-test", transport=transport),
        check_anthropic_followup,
        streams_reasoning=True,
        reasoning_check=lambda p: p.provider == "anthropic" and p.signature == "EqQBCkgIBhABGAIiQL2sig==",
    ),
    Shape(
        "openai-responses",
        "gpt-5.5",
        responses_script,
        lambda transport: OpenAIResponsesProvider(api_key="sk-test", transport=transport),
        check_responses_followup,
        streams_reasoning=True,
        reasoning_check=lambda p: (
            p.provider == "openai-responses"
            and p.encrypted == "gAAAAABqaR3-encrypted-reasoning=="
            and p.item_id == "rs_0fabc13af1ee004900reasoning"
        ),
    ),
]


def weather_tool() -> Tool:
    """A real ``@tool``. Paris waits for Oslo, so results complete out of call order."""
    oslo_done = anyio.Event()

    @tool
    async def get_weather(city: str) -> str:
        """Current weather for a city.

        Args:
            city: city name, e.g. "Paris".
        """
        if city == "Paris":
            with anyio.fail_after(10):  # deadlocks (and fails) unless both calls run concurrently
                await oslo_done.wait()
        else:
            oslo_done.set()
        return WEATHER[city]

    return get_weather


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
async def test_same_conversation_commits_the_same_history(shape: Shape, tmp_path: Path) -> None:
    interactions, ids = shape.script()
    wire = WireScript(interactions)
    provider = shape.provider(wire.transport)
    db = tmp_path / f"{shape.name}.db"
    core = LashCore(
        model_client=provider,
        model=shape.model,
        store=SqliteStore(db),
        tools=[weather_tool()],
        prompt=SYSTEM,
        retry=RetryPolicy(max_attempts=1),
        entry_points=False,
    )
    try:
        result = await core.session("weather").turn(USER).run()
    finally:
        await provider.aclose()
        core.close()

    # outcome and the committed history, identical for every shape
    assert result.outcome == Finished(text="".join(FINAL))
    assert result.text == "".join(FINAL)
    assert [m.role for m in result.messages] == ["user", "assistant", "tool", "assistant"]
    assert semantics(result.messages) == EXPECTED_HISTORY
    calls = result.messages[1].tool_calls
    assert [c.id for c in calls] == ids
    assert [p.call_id for p in result.messages[2].parts] == ids
    assert [(c.name, r.output) for c, r in result.tool_calls] == [("get_weather", WEATHER[c]) for c in CITIES]

    # tools ran concurrently: Oslo completed first, yet the results are in call order
    completed = [a for a in result.activities if isinstance(a.event, ToolCallCompleted)]
    assert [a.correlation_id for a in completed] == [ids[1], ids[0]]

    # reasoning: streamed as reasoning_delta and kept as a ReasoningPart (first in the message)
    reasoning_deltas = [a.event.text for a in result.activities if isinstance(a.event, ReasoningProseDelta)]
    reasoning_parts = [p for p in result.messages[1].parts if isinstance(p, ReasoningPart)]
    if shape.streams_reasoning:
        assert "".join(reasoning_deltas) == "".join(REASONING)
        assert len(reasoning_parts) == 1 and reasoning_parts[0].text == "".join(REASONING)
        assert isinstance(result.messages[1].parts[0], ReasoningPart)
        assert shape.reasoning_check(reasoning_parts[0])
    else:
        assert reasoning_deltas == [] and reasoning_parts == []

    prose = "".join(a.event.text for a in result.activities if a.kind == "assistant_prose_delta")
    assert prose == "".join(PREAMBLE) + "".join(FINAL)

    # usage: each API's own accounting rules land on the same five buckets
    per_call = [a.event.usage for a in result.activities if isinstance(a.event, UsageReported)]
    assert per_call == list(CALL_USAGE)
    assert result.usage == EXPECTED_USAGE

    # the wire: two requests; the second carries the tool results in the API's own format
    assert len(wire.requests) == 2 and wire.remaining == 0
    assert all(b["stream"] is True for b in wire.bodies)
    shape.check_followup(wire.bodies[1], ids)

    # a fresh store on the same file sees exactly this committed turn
    with SqliteStore(db) as store:
        turns = store.list_turns("weather")
        assert [t.outcome for t in turns] == [result.outcome]
        assert tuple(n.payload for n in store.load_active_path("weather")) == result.messages
        assert store.usage_ledger("weather").total() == EXPECTED_USAGE
        assert store.pending_inputs("weather") == []


# ------------------------------------------------------------------------------- attachments


def _image_history():
    from lash_kernel.messages import Attachment, Message, ToolCallPart, ToolResultPart

    png = Attachment(media_type="image/png", data="iVBORw0KGgo=", name="shot")
    pdf = Attachment(media_type="application/pdf", data="JVBERi0=")
    return (
        Message.user("look"),
        Message(role="assistant", parts=(ToolCallPart(id="c1", name="screenshot", arguments="{}"),)),
        Message(role="tool", parts=(ToolResultPart(call_id="c1", name="screenshot", output="done", attachments=(png, pdf)),)),
    )


def test_tool_result_images_reach_every_wire_shape():
    from lash_kernel.providers import anthropic, openai_chat, openai_responses

    chat = openai_chat._wire_messages(None, _image_history())
    assert chat[2] == {"role": "tool", "tool_call_id": "c1", "content": "done\n[attachment: application/pdf, 6 bytes, not shown]"}
    assert chat[3]["role"] == "user"
    assert chat[3]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}

    claude = anthropic._wire_messages(_image_history(), "anthropic")
    (block,) = claude[-1]["content"]
    assert block["type"] == "tool_result" and block["content"][0] == {"type": "text", "text": "done"}
    assert block["content"][1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    assert block["content"][2]["text"].startswith("[attachment: application/pdf")

    items = openai_responses._input_items(_image_history(), provider="openai-responses")
    output = [i for i in items if i.get("type") == "function_call_output"][0]["output"]
    assert output[0] == {"type": "input_text", "text": "done"}
    assert output[1] == {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}
