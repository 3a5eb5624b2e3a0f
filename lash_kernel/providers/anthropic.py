"""Anthropic Messages provider: ``POST /v1/messages``, streamed as server-sent events.

Follows the Anthropic API reference:
- request shape: https://docs.anthropic.com/en/api/messages
- stream events: https://docs.anthropic.com/en/docs/build-with-claude/streaming
- thinking replay: https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
- prompt caching: https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching
- errors: https://docs.anthropic.com/en/api/errors

Rule: lash ``Message``s go in, lash deltas and one ``ModelResponse`` come out; nothing
Anthropic-shaped leaks past this module. A stream is only a success once ``message_stop`` arrives.
Both the streamed and the non-streamed (``options={"stream": False}``) answers are turned into
the same content-block dicts first, so one function (``_response``) maps blocks to parts.
Streamed text is made valid Unicode as it arrives (``lash_kernel.text``): a surrogate pair split
across two deltas is joined (one ``SurrogateJoiner`` per content block), a lone surrogate becomes
U+FFFD, and each final block holds exactly the concatenation of its deltas.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from lash_kernel.config import env_var
from lash_kernel.errors import (
    ConfigError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderStreamError,
)
from lash_kernel.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.model import (
    STREAM_ALIVE,
    ModelRequest,
    ModelResponse,
    ModelStreamItem,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
)
from lash_kernel.providers._http import make_client, open_sse, parse_retry_after, sse_json
from lash_kernel.text import SurrogateJoiner, valid_message, valid_text
from lash_kernel.usage import TokenUsage

__all__ = ["AnthropicProvider"]

_PATH = "/v1/messages"
_MAX_CACHE_BREAKPOINTS = 4  # Anthropic rejects a request with more than four
_EPHEMERAL = {"type": "ephemeral"}
_RETRYABLE_STREAM_ERRORS = ("overloaded_error", "api_error")
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
    "pause_turn": "pause",
}


class AnthropicProvider:
    """A ``ModelClient`` for the Anthropic Messages API (https://docs.anthropic.com/en/api/messages).

    Args:
        api_key: sent as ``x-api-key``; None sends no key (a proxy that adds it, or tests).
        base_url: API root without ``/v1``, e.g. ``https://api.anthropic.com``.
        anthropic_version: the ``anthropic-version`` header (API version date).
        provider_name: name used in errors, usage ledgers and ``ReasoningPart.provider``.
        transport: injected ``httpx.AsyncBaseTransport`` (``httpx.MockTransport`` in tests), or None.
        timeout: seconds or an ``httpx.Timeout``; None uses ``_http.DEFAULT_TIMEOUT``. The read
            timeout (seconds without a byte) backs up the driver's stream idle timeout.
        extra_headers: more default headers (e.g. ``anthropic-beta``); they override the above.
        default_max_tokens: output-token cap when ``request.max_output_tokens`` is None (the API
            requires ``max_tokens`` on every request).
        prompt_caching: place ``cache_control`` breakpoints on the system prompt and on the last
            stable history block.

    Attributes:
        provider_name: as given.

    Raises:
        ConfigError: ``base_url`` is not an absolute http(s) URL with a host.

    Added in 0.1.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = "https://api.anthropic.com",
        anthropic_version: str = "2023-06-01",
        provider_name: str = "anthropic",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float | None = None,
        extra_headers: Mapping[str, str] | None = None,
        default_max_tokens: int = 4096,
        prompt_caching: bool = True,
    ) -> None:
        self.provider_name = provider_name
        self.default_max_tokens = default_max_tokens
        self.prompt_caching = prompt_caching
        headers = {"anthropic-version": anthropic_version}
        if api_key:
            headers["x-api-key"] = api_key
        headers.update(extra_headers or {})
        self._client = make_client(base_url=base_url, headers=headers, transport=transport, timeout=timeout)

    @classmethod
    def from_env(cls, *, env: Mapping[str, str] | None = None, **kw: Any) -> AnthropicProvider:
        """Build a provider whose key comes from ``ANTHROPIC_API_KEY``.

        Args:
            env: the environment to read; None means ``os.environ``.
            **kw: any other ``__init__`` keyword argument except ``api_key``.
        Returns:
            A new provider.
        Raises:
            ConfigError: ``ANTHROPIC_API_KEY`` is missing or empty.
        """
        key = (os.environ if env is None else env).get(env_var("ANTHROPIC_API_KEY"))
        if not key:
            raise ConfigError("ANTHROPIC_API_KEY is not set: set ANTHROPIC_API_KEY to your Anthropic API key")
        return cls(api_key=key, **kw)

    async def aclose(self) -> None:
        """Close the HTTP client this provider owns. Idempotent."""
        await self._client.aclose()

    def _build_body(self, request: ModelRequest) -> dict[str, Any]:
        """Translate a lash request into a Messages API request body.

        Args:
            request: the call; ``request.options`` is merged into the body last (this is how
                ``thinking``, ``tool_choice`` or ``stream: False`` are passed).
        Returns:
            The JSON body as a fresh dict. Cache breakpoints are placed after the merge.
        """
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_output_tokens or self.default_max_tokens,
        }
        if request.system:
            body["system"] = request.system
        body["messages"] = _wire_messages(request.messages, self.provider_name)
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": dict(t.input_schema)}
                for t in request.tools
            ]
        body["stream"] = True
        if request.temperature is not None:
            body["temperature"] = request.temperature
        body.update(request.options)
        if self.prompt_caching:
            _place_cache_breakpoints(body)
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamItem]:
        """Call the model and stream its answer (Messages streaming, see module docstring).

        Args:
            request: the call to make. ``options={"stream": False}`` makes one non-streaming
                call and yields only the ``ModelResponse``.
        Yields:
            ``TextDelta``, ``ReasoningDelta`` and ``ToolCallDelta`` in arrival order (client
            ``tool_use`` blocks only; server-side tool blocks yield nothing), then exactly one
            ``ModelResponse``. All text is valid Unicode (see the module docstring).
        Raises:
            ProviderHTTPError: non-2xx status; ``retryable`` for 408/409/429/5xx (529 overloaded).
            ProviderConnectionError: connect/read failure or timeout.
            ProviderStreamError: malformed chunk, an ``error`` event (retryable for
                ``overloaded_error``/``api_error``), or no ``message_stop`` before the stream ended.
        """
        body = self._build_body(request)
        if body.get("stream") is False:
            yield _response(await self._post_json(body), request.model, self.provider_name)
            return
        name = self.provider_name
        acc = _StreamAccumulator(name)
        async with open_sse(self._client, _PATH, body, provider=name) as events:
            async for event in events:
                delta = acc.feed_checked(sse_json(event, provider=name))
                if delta is not None:
                    yield delta
                if acc.done:
                    break
        if not acc.done:
            raise ProviderStreamError(f"{name}: stream ended before message_stop", provider=name)
        for delta in acc.flush():
            yield delta
        yield _response(acc.message, request.model, name)

    async def _post_json(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a non-streaming request and return the decoded message object."""
        name = self.provider_name
        try:
            response = await self._client.post(_PATH, json=body)
        except httpx.TimeoutException as exc:
            raise ProviderConnectionError(f"{name}: timed out ({type(exc).__name__})", provider=name) from exc
        except httpx.TransportError as exc:
            raise ProviderConnectionError(f"{name}: connection failed: {exc}", provider=name) from exc
        if response.status_code >= 300:
            raise ProviderHTTPError(
                response.status_code,
                response.text,
                provider=name,
                retry_after_s=parse_retry_after(response.headers.get("retry-after")),
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise ProviderStreamError(f"{name}: malformed response: {response.text[:200]!r}", provider=name)
        return data


# -- request mapping ---------------------------------------------------------------------------


def _wire_messages(messages: tuple[Message, ...], provider: str) -> list[dict[str, Any]]:
    """Map lash messages to alternating Anthropic ``user``/``assistant`` messages.

    Tool messages become user messages of ``tool_result`` blocks; ``system`` messages inside the
    history become user text (the API has no system role there); consecutive same-role messages
    are merged and messages left with no blocks are dropped.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        content = [b for part in message.parts if (b := _block(part, role, provider)) is not None]
        if not content:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(content)
        else:
            out.append({"role": role, "content": content})
    return out


#: Image media types the Messages API accepts in content blocks.
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def _block(part: Any, role: str, provider: str) -> dict[str, Any] | None:
    """One lash part as a content block, or None when it has no Anthropic form here."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ToolResultPart):
        content: Any = part.output
        if part.attachments:  # images go inside the tool_result; other types as a text note
            content = [{"type": "text", "text": part.output}] if part.output else []
            for a in part.attachments:
                if a.media_type in _IMAGE_TYPES:
                    source = {"type": "base64", "media_type": a.media_type, "data": a.data}
                    content.append({"type": "image", "source": source})
                else:
                    content.append({"type": "text", "text": a.note()})
        return {
            "type": "tool_result",
            "tool_use_id": part.call_id,
            "content": content,
            "is_error": part.is_error,
        }
    if role != "assistant":
        return None
    if isinstance(part, ToolCallPart):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": _json_object(part.arguments)}
    if isinstance(part, ReasoningPart) and part.provider == provider:
        if part.signature:
            return {"type": "thinking", "thinking": part.text, "signature": part.signature}
        if part.encrypted:
            return {"type": "redacted_thinking", "data": part.encrypted}
    return None  # reasoning from another provider cannot be verified by Anthropic: dropped


def _json_object(text: str) -> dict[str, Any]:
    """Parse tool arguments; anything but a JSON object (empty, malformed, a list) becomes ``{}``."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _place_cache_breakpoints(body: dict[str, Any]) -> None:
    """Mark the system prompt and the last stable history block ``cache_control: ephemeral``.

    The last stable block is the last cacheable block of the message just before the newest user
    message. Breakpoints already present (passed through ``options``) count toward the API's
    limit of four; ours are dropped, history first, rather than exceed it.
    """
    targets: list[dict[str, Any]] = []
    if isinstance(body.get("system"), str):
        body["system"] = [{"type": "text", "text": body["system"]}]
        targets.append(body["system"][-1])
    messages = body.get("messages") or []
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if users and users[-1] > 0:
        cacheable = [
            b for b in messages[users[-1] - 1].get("content") or ()
            if isinstance(b, dict) and b.get("type") not in ("thinking", "redacted_thinking")
        ]
        if cacheable:
            targets.append(cacheable[-1])
    room = _MAX_CACHE_BREAKPOINTS - _count_breakpoints(body)
    for block in targets[: max(room, 0)]:
        block["cache_control"] = dict(_EPHEMERAL)


def _count_breakpoints(body: Mapping[str, Any]) -> int:
    """Count ``cache_control`` markers already on system, tool and message content blocks."""
    system = body.get("system")
    blocks: list[Any] = [*(system if isinstance(system, list) else ()), *(body.get("tools") or ())]
    for message in body.get("messages") or ():
        content = message.get("content")
        blocks.extend(content if isinstance(content, list) else ())
    return sum(1 for b in blocks if isinstance(b, dict) and "cache_control" in b)


# -- response mapping --------------------------------------------------------------------------


class _StreamAccumulator:
    """Fold Messages stream events into one message object, the shape a non-streamed call returns.

    Sans-IO: ``feed`` takes one decoded event and returns the lash delta to yield, if any.
    Event reference: https://docs.anthropic.com/en/docs/build-with-claude/streaming
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.message: dict[str, Any] = {"usage": {}}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.tool_index: dict[int, int] = {}  # content-block index -> client tool-call index
        self.joiners: dict[int, SurrogateJoiner] = {}  # content-block index -> its stream's joiner
        self.done = False  # message_stop seen: the only evidence the answer is complete

    def feed_checked(self, data: Any) -> ModelStreamItem | None:
        """``feed``, with valid JSON of the wrong shape (``"delta": "text"``) as a stream error."""
        try:
            return self.feed(data)
        except (AttributeError, TypeError, ValueError) as exc:
            raise self._error(f"malformed stream chunk: {exc}: {data!r:.200}") from exc

    def feed(self, data: Any) -> ModelStreamItem | None:
        """Apply one event; raise ``ProviderStreamError`` for ``error`` events and junk."""
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "message_start":
            self.message.update(data.get("message") or {})
            self.message["usage"] = dict(self.message.get("usage") or {})
        elif kind == "content_block_start":
            return self._start(data.get("index", len(self.blocks)), dict(data.get("content_block") or {}))
        elif kind == "content_block_delta":
            index = data.get("index")
            if index not in self.blocks:
                raise self._error(f"delta for content block {index!r}, which never started")
            return self._delta(index, data.get("delta") or {})
        elif kind == "message_delta":
            self.message.update(_present(data.get("delta")))
            self.message["usage"].update(_present(data.get("usage")))  # cumulative counts
        elif kind == "content_block_stop":
            index = data.get("index")
            return self._flush(index) if index in self.joiners else None
        elif kind == "message_stop":
            self.message["content"] = [self.blocks[i] for i in sorted(self.blocks)]
            self.done = True
        elif kind == "error":
            error = data.get("error") or {}
            exc = self._error(f"{error.get('type', 'error')}: {error.get('message') or '(no message)'}")
            exc.retryable = error.get("type") in _RETRYABLE_STREAM_ERRORS
            raise exc
        elif kind == "ping":
            return STREAM_ALIVE  # the model is working: the driver's idle timeout restarts
        elif kind is None:
            raise self._error(f"malformed stream chunk: {json.dumps(data)[:200]}")
        return None  # event types added later need no action

    def flush(self) -> list[ModelStreamItem]:
        """Publish what every block's joiner still holds (blocks that never got ``content_block_stop``)."""
        return [d for i in sorted(self.joiners) if (d := self._flush(i)) is not None]

    def _start(self, index: int, block: dict[str, Any]) -> ModelStreamItem | None:
        self.blocks[index] = block
        kind = block.get("type")
        if kind == "tool_use":  # server_tool_use and *_tool_result blocks are not client calls
            self.tool_index[index] = len(self.tool_index)
            call_id, name = block.get("id"), block.get("name")
            return ToolCallDelta(
                index=self.tool_index[index],
                id=valid_text(call_id) if isinstance(call_id, str) else None,
                name=valid_text(name) if isinstance(name, str) else None,
            )
        if kind == "text" and isinstance(block.get("text"), str):
            block["text"] = text = self._new_joiner(index).push(block["text"])
            return TextDelta(text=text) if text else None
        if kind == "thinking" and isinstance(block.get("thinking"), str):
            block["thinking"] = text = self._new_joiner(index).push(block["thinking"])
            return ReasoningDelta(text=text) if text else None
        return None

    def _delta(self, index: int, delta: Mapping[str, Any]) -> ModelStreamItem | None:
        block = self.blocks[index]
        kind = delta.get("type")
        joiner = self.joiners.get(index) or self._new_joiner(index)
        if kind == "text_delta":
            text = joiner.push(delta.get("text", ""))
            block["text"] = block.get("text", "") + text
            return TextDelta(text=text) if text else None
        if kind == "thinking_delta":
            text = joiner.push(delta.get("thinking", ""))
            block["thinking"] = block.get("thinking", "") + text
            return ReasoningDelta(text=text) if text else None
        if kind == "signature_delta":
            block["signature"] = block.get("signature", "") + delta.get("signature", "")
        elif kind == "input_json_delta":  # server_tool_use blocks stream their input too
            fragment = joiner.push(delta.get("partial_json", ""))
            block["partial_json"] = block.get("partial_json", "") + fragment
            if index in self.tool_index and fragment:
                return ToolCallDelta(index=self.tool_index[index], arguments=fragment)
        return None  # citations_delta and delta types added later: nothing to yield

    def _new_joiner(self, index: int) -> SurrogateJoiner:
        """A new joiner for block ``index``'s text, thinking or tool input."""
        joiner = self.joiners[index] = SurrogateJoiner()
        return joiner

    def _flush(self, index: int) -> ModelStreamItem | None:
        """Append what block ``index``'s joiner holds to the block; the delta to yield, if any."""
        text = self.joiners[index].flush()
        if not text:
            return None
        block = self.blocks[index]
        kind = block.get("type")
        if kind == "text":
            block["text"] = block.get("text", "") + text
            return TextDelta(text=text)
        if kind == "thinking":
            block["thinking"] = block.get("thinking", "") + text
            return ReasoningDelta(text=text)
        block["partial_json"] = block.get("partial_json", "") + text
        return ToolCallDelta(index=self.tool_index[index], arguments=text) if index in self.tool_index else None

    def _error(self, text: str) -> ProviderStreamError:
        return ProviderStreamError(f"{self.provider}: {text}", provider=self.provider)


def _present(fields: Any) -> dict[str, Any]:
    """The non-null entries of a mapping (``message_delta`` repeats absent values as null)."""
    return {k: v for k, v in fields.items() if v is not None} if isinstance(fields, dict) else {}


def _response(message: Mapping[str, Any], requested_model: str, provider: str) -> ModelResponse:
    """Build the ``ModelResponse`` from a complete message object (streamed or not)."""
    parts: list[Any] = []
    for block in message.get("content") or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append(TextPart(text=block.get("text", "")))
        elif kind == "thinking":
            signature = block.get("signature") or None
            text = block.get("thinking", "")
            parts.append(ReasoningPart(text=text, signature=signature, provider=provider))
        elif kind == "redacted_thinking":
            parts.append(ReasoningPart(encrypted=block.get("data"), provider=provider))
        elif kind == "tool_use":
            # raw characters, as streamed partial_json has them; a lone surrogate stays visible to
            # valid_message (an ASCII \udXXX escape would reach the tool as a lone surrogate again)
            arguments = block.get("partial_json") or json.dumps(block.get("input") or {}, ensure_ascii=False)
            call = ToolCallPart(id=block.get("id", ""), name=block.get("name", ""), arguments=arguments)
            parts.append(call)
        # server_tool_use and *_tool_result blocks ran on Anthropic's side: not client tool calls
    raw = message.get("stop_reason")
    response_id = message.get("id")
    return ModelResponse(
        message=valid_message(Message(role="assistant", parts=tuple(parts))),
        usage=_usage(message.get("usage") or {}),
        finish_reason=_FINISH.get(raw, "other") if isinstance(raw, str) else "other",
        model=valid_text(str(message.get("model") or requested_model)),
        provider=provider,
        raw_finish_reason=valid_text(raw) if isinstance(raw, str) else None,
        response_id=valid_text(response_id) if isinstance(response_id, str) else None,
    )


def _usage(usage: Mapping[str, Any]) -> TokenUsage:
    """Map Anthropic usage (``input_tokens`` already excludes cached input) to the five buckets."""
    details = usage.get("output_tokens_details") or {}
    return TokenUsage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        cache_read_input_tokens=usage.get("cache_read_input_tokens") or 0,
        cache_write_input_tokens=usage.get("cache_creation_input_tokens") or 0,
        reasoning_output_tokens=details.get("thinking_tokens") or 0,
    )

