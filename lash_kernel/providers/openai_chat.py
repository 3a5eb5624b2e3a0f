"""OpenAI Chat Completions provider, also for compatible servers (OpenRouter, llama.cpp, vLLM, Ollama).

Rule: httpx only, always streaming. The request goes out as ``POST {base_url}/chat/completions``
with ``stream: true`` and ``stream_options.include_usage``; the SSE chunks are normalised into
lash deltas and one final ``ModelResponse``. Streamed text is made valid Unicode as it arrives
(``lash_kernel.text``): a surrogate pair split across two chunks is joined, a lone surrogate
becomes U+FFFD, and the final message holds exactly the concatenated deltas.

Follows the OpenAI API reference, "Create chat completion" and "The chat completion chunk object"
(https://platform.openai.com/docs/api-reference/chat), plus OpenRouter's streaming notes
(https://openrouter.ai/docs/api-reference/streaming): ``:`` comment keep-alives, ``reasoning`` /
``reasoning_details`` deltas, and ``error`` objects sent mid-stream.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, final

import attrs
import httpx

from lash_kernel.config import env_var
from lash_kernel.errors import ConfigError, ProviderStreamError
from lash_kernel.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.model import (
    ModelRequest,
    ModelResponse,
    ModelStreamItem,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
)
from lash_kernel.providers._http import make_client, open_sse, sse_json
from lash_kernel.text import SurrogateJoiner, valid_text
from lash_kernel.usage import TokenUsage

__all__ = ["OPENAI_BASE_URL", "OPENROUTER_BASE_URL", "OpenAIChatProvider"]

#: The official OpenAI API root.
OPENAI_BASE_URL = "https://api.openai.com/v1"
#: OpenRouter's OpenAI-compatible API root.
OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"

_FINISH_REASONS = {
    "stop": "stop",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # legacy functions API
    "length": "length",
    "content_filter": "content_filter",
}


@final
class OpenAIChatProvider:
    """A ``ModelClient`` for the Chat Completions API and servers that copy it.

    Follows the OpenAI "Create chat completion" reference with ``stream: true`` (see the module
    docstring for links). The httpx client is built here and owned until ``aclose()``.

    Args:
        api_key: bearer token, or None to send no ``Authorization`` header (local servers such
            as llama.cpp need none).
        base_url: API root without the endpoint, e.g. ``https://api.openai.com/v1``.
        provider_name: name used in errors, usage ledgers and ``ReasoningPart.provider``.
        transport: injected httpx transport (``httpx.MockTransport`` in tests), or None for real HTTP.
        timeout: seconds (float) or an ``httpx.Timeout``; None uses ``_http.DEFAULT_TIMEOUT``.
            The read timeout (seconds without a byte) backs up the driver's stream idle timeout.
        extra_headers: more default headers (e.g. OpenRouter's ``HTTP-Referer``), or None.
        max_tokens_field: body field that carries ``ModelRequest.max_output_tokens``:
            ``max_tokens`` (most compatible servers) or ``max_completion_tokens`` (OpenAI o-series).

    Attributes:
        provider_name: as passed in.
        base_url: as passed in.

    Raises:
        ConfigError: ``base_url`` is not an absolute http(s) URL with a host.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = OPENAI_BASE_URL,
        provider_name: str = "openai",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout | None = None,
        extra_headers: Mapping[str, str] | None = None,
        max_tokens_field: str = "max_tokens",
    ) -> None:
        self.provider_name = provider_name
        self.base_url = base_url
        self._max_tokens_field = max_tokens_field
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        headers.update(extra_headers or {})
        self._client = make_client(base_url=base_url, headers=headers, transport=transport, timeout=timeout)

    @classmethod
    def from_env(
        cls, *, base_url: str | None = None, env: Mapping[str, str] | None = None, **kw: Any
    ) -> OpenAIChatProvider:
        """Build a provider keyed from ``OPENAI_API_KEY``.

        Args:
            base_url: API root, or None for the official OpenAI API. For any other root the key is
                optional and, when set, is sent to that server.
            env: environment to read, or None for ``os.environ``.
            **kw: further ``__init__`` arguments (not ``api_key``).
        Returns:
            The provider.
        Raises:
            ConfigError: the official API was chosen and ``OPENAI_API_KEY`` is unset or empty.
        """
        env = os.environ if env is None else env
        api_key = env.get(env_var("OPENAI_API_KEY")) or None
        url = base_url or OPENAI_BASE_URL
        if api_key is None and url.rstrip("/") == OPENAI_BASE_URL:
            raise ConfigError(
                "set OPENAI_API_KEY to use the OpenAI API (or pass base_url= for a local compatible server)"
            )
        return cls(api_key=api_key, base_url=url, **kw)

    @classmethod
    def openrouter(
        cls, *, api_key: str | None = None, env: Mapping[str, str] | None = None, **kw: Any
    ) -> OpenAIChatProvider:
        """Build a provider for OpenRouter (``https://openrouter.ai/api/v1``, name ``openrouter``).

        Args:
            api_key: OpenRouter key, or None to read ``OPENROUTER_API_KEY`` from ``env``.
            env: environment to read, or None for ``os.environ``.
            **kw: further ``__init__`` arguments; ``base_url`` and ``provider_name`` may override
                the preset.
        Returns:
            The provider.
        Raises:
            ConfigError: no key was passed and ``OPENROUTER_API_KEY`` is unset or empty.
        """
        env = os.environ if env is None else env
        api_key = api_key or env.get(env_var("OPENROUTER_API_KEY")) or None
        if api_key is None:
            raise ConfigError("set OPENROUTER_API_KEY (or pass api_key=) to use OpenRouter")
        kw.setdefault("base_url", OPENROUTER_BASE_URL)
        kw.setdefault("provider_name", "openrouter")
        return cls(api_key=api_key, **kw)

    async def aclose(self) -> None:
        """Close the HTTP client (and the transport it owns). Idempotent."""
        await self._client.aclose()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamItem]:
        """Call ``/chat/completions`` and stream the answer.

        Args:
            request: the call; ``messages`` oldest first, already repaired.
        Yields:
            ``TextDelta``, ``ReasoningDelta`` and ``ToolCallDelta`` in arrival order, then exactly
            one ``ModelResponse`` whose message holds reasoning, text, then tool calls. All text
            is valid Unicode; the message's text, reasoning and call arguments equal the
            concatenation of their deltas.
        Raises:
            ProviderHTTPError: non-2xx status (``status``, ``body``, ``retry_after_s`` attached).
            ProviderConnectionError: connect/read failure or timeout, including mid-stream.
            ProviderStreamError: a malformed chunk, an ``error`` object in the stream, or a stream
                that ended with neither a ``finish_reason`` nor ``data: [DONE]``.
        """
        state = _StreamState(provider=self.provider_name, model=request.model)
        async with open_sse(
            self._client, "/chat/completions", self._body(request), provider=self.provider_name
        ) as events:
            async for event in events:
                data = event.data.strip()
                if data == "[DONE]":
                    state.done = True
                    break
                if data:
                    for item in state.feed_checked(sse_json(event, provider=self.provider_name)):
                        yield item
        for item in state.finish():
            yield item

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": _wire_messages(request.system, request.messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": dict(t.input_schema),
                    },
                }
                for t in request.tools
            ]
        if request.max_output_tokens is not None:
            body[self._max_tokens_field] = request.max_output_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        body.update(request.options)
        return body


def _wire_messages(system: str | None, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Map lash messages onto Chat Completions messages (reasoning parts are not sent)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for msg in messages:
        if msg.role == "tool":
            results = [p for p in msg.parts if isinstance(p, ToolResultPart)]
            images: list[dict[str, Any]] = []
            for p in results:
                notes = [a.note() for a in p.attachments if not a.is_image]
                content = "\n".join([p.output, *notes]) if notes else p.output
                out.append({"role": "tool", "tool_call_id": p.call_id, "content": content})
                images.extend(
                    {"type": "image_url", "image_url": {"url": a.data_url}} for a in p.attachments if a.is_image
                )
            if images:  # tool messages carry text only: images follow in one user message
                text = {"type": "text", "text": "Images returned by the tool calls above:"}
                out.append({"role": "user", "content": [text, *images]})
        elif msg.role == "assistant":
            calls = msg.tool_calls
            wire: dict[str, Any] = {"role": "assistant", "content": msg.text or (None if calls else "")}
            if calls:
                wire["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments or "{}"},
                    }
                    for c in calls
                ]
            out.append(wire)
        else:
            out.append({"role": msg.role, "content": msg.text})
    return out


@attrs.define
class _Call:
    id: str | None = None
    name: str = ""
    arguments: list[str] = attrs.Factory(list)  # valid fragments, as yielded
    joiner: SurrogateJoiner = attrs.Factory(SurrogateJoiner)


@attrs.define
class _StreamState:
    """Accumulates one response's chunks; ``finish()`` checks the terminal evidence."""

    provider: str
    model: str
    done: bool = False
    raw_finish: str | None = None
    response_id: str | None = None
    usage: TokenUsage = attrs.Factory(TokenUsage)
    text: list[str] = attrs.Factory(list)  # valid deltas, as yielded
    reasoning: list[str] = attrs.Factory(list)  # valid deltas, as yielded
    calls: dict[int, _Call] = attrs.Factory(dict)
    _model_seen: bool = False
    _text_joiner: SurrogateJoiner = attrs.Factory(SurrogateJoiner)
    _reasoning_joiner: SurrogateJoiner = attrs.Factory(SurrogateJoiner)

    def feed_checked(self, chunk: Any) -> list[ModelStreamItem]:
        """``feed``, with valid JSON of the wrong shape (``"delta": "text"``) as a stream error."""
        try:
            return self.feed(chunk)
        except (AttributeError, TypeError, ValueError) as exc:
            raise ProviderStreamError(
                f"{self.provider}: malformed stream chunk: {exc}: {chunk!r:.200}", provider=self.provider
            ) from exc

    def feed(self, chunk: Any) -> list[ModelStreamItem]:
        if not isinstance(chunk, dict):
            shown = f"{chunk!r:.200}"
            raise ProviderStreamError(f"{self.provider}: unexpected stream chunk: {shown}", provider=self.provider)
        if chunk.get("error"):
            err = chunk["error"]
            message = err.get("message") if isinstance(err, dict) else None
            raise ProviderStreamError(f"{self.provider}: error in stream: {message or err}", provider=self.provider)
        if isinstance(chunk.get("model"), str) and chunk["model"] and not self._model_seen:
            self.model, self._model_seen = chunk["model"], True
        if isinstance(chunk.get("id"), str) and self.response_id is None:
            self.response_id = valid_text(chunk["id"])
        if isinstance(chunk.get("usage"), dict):
            self.usage = _usage(chunk["usage"])
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return []
        choice = choices[0]
        out = self._delta(choice.get("delta") or {})
        if isinstance(choice.get("finish_reason"), str):
            self.raw_finish = valid_text(choice["finish_reason"])
        return out

    def _delta(self, delta: dict[str, Any]) -> list[ModelStreamItem]:
        out: list[ModelStreamItem] = []
        if (thought := _reasoning_text(delta)) and (thought := self._reasoning_joiner.push(thought)):
            self.reasoning.append(thought)
            out.append(ReasoningDelta(text=thought))
        content = delta.get("content")
        if isinstance(content, str) and content and (content := self._text_joiner.push(content)):
            self.text.append(content)
            out.append(TextDelta(text=content))
        for position, tc in enumerate(delta.get("tool_calls") or ()):
            if not isinstance(tc, dict):
                continue
            index = tc["index"] if isinstance(tc.get("index"), int) else position
            call = self.calls.setdefault(index, _Call())
            fn: dict[str, Any] = tc["function"] if isinstance(tc.get("function"), dict) else {}
            learned = False
            if tc.get("id") and call.id is None:
                call.id, learned = valid_text(str(tc["id"])), True
            if fn.get("name") and not call.name:
                call.name, learned = valid_text(str(fn["name"])), True
            args = fn.get("arguments")
            args = call.joiner.push(args) if isinstance(args, str) and args else ""
            call.arguments.append(args)
            if learned or args:
                out.append(ToolCallDelta(index=index, id=call.id, name=call.name or None, arguments=args))
        return out

    def finish(self) -> list[ModelStreamItem]:
        """Check the terminal evidence; return the last deltas (held-back text) and the response."""
        if self.raw_finish is None and not self.done:
            raise ProviderStreamError(
                f"{self.provider}: stream ended without a finish_reason or [DONE]", provider=self.provider
            )
        out: list[ModelStreamItem] = []
        if thought := self._reasoning_joiner.flush():
            self.reasoning.append(thought)
            out.append(ReasoningDelta(text=thought))
        if content := self._text_joiner.flush():
            self.text.append(content)
            out.append(TextDelta(text=content))
        for index, call in sorted(self.calls.items()):
            if args := call.joiner.flush():
                call.arguments.append(args)
                out.append(ToolCallDelta(index=index, id=call.id, name=call.name or None, arguments=args))
        if self.raw_finish is None:
            finish = "tool_calls" if self.calls else "stop"
        else:
            finish = _FINISH_REASONS.get(self.raw_finish, "other")
        parts: list[Any] = []
        if self.reasoning:
            parts.append(ReasoningPart(text="".join(self.reasoning), provider=self.provider))
        if self.text:
            parts.append(TextPart(text="".join(self.text)))
        parts.extend(
            ToolCallPart(id=c.id or f"call_{i}", name=c.name, arguments="".join(c.arguments) or "{}")
            for i, c in sorted(self.calls.items())
        )
        response = ModelResponse(
            message=Message(role="assistant", parts=tuple(parts)),
            usage=self.usage,
            finish_reason=finish,
            model=valid_text(self.model),
            provider=self.provider,
            raw_finish_reason=self.raw_finish,
            response_id=self.response_id,
        )
        out.append(response)
        return out


def _reasoning_text(delta: dict[str, Any]) -> str:
    """Reasoning text of one delta. OpenRouter sends ``reasoning`` and ``reasoning_details``
    with the same text, so the first non-empty source wins."""
    for key in ("reasoning", "reasoning_content"):
        if isinstance(delta.get(key), str) and delta[key]:
            return str(delta[key])
    details = delta.get("reasoning_details")
    if not isinstance(details, list):
        return ""
    texts = (d.get("text") or d.get("summary") for d in details if isinstance(d, dict))
    return "".join(t for t in texts if isinstance(t, str))


def _usage(raw: dict[str, Any]) -> TokenUsage:
    """Map a Chat Completions ``usage`` object onto the five lash buckets (missing fields are 0)."""

    def num(obj: Any, key: str) -> int:
        value = obj.get(key) if isinstance(obj, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    prompt = raw.get("prompt_tokens_details")
    cached = num(prompt, "cached_tokens")
    written = num(prompt, "cache_write_tokens")
    return TokenUsage(
        input_tokens=max(0, num(raw, "prompt_tokens") - cached - written),
        output_tokens=num(raw, "completion_tokens"),
        cache_read_input_tokens=cached,
        cache_write_input_tokens=written,
        reasoning_output_tokens=num(raw.get("completion_tokens_details"), "reasoning_tokens"),
    )
