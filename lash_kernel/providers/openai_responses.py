"""OpenAI Responses provider: ``POST {base_url}/responses`` with ``stream: true``.

Rule: httpx only, always streaming. Lash messages become Responses *input items*; the typed SSE
events (``{"type": "response.…", …}``) become lash deltas and one final ``ModelResponse`` whose
parts follow the response's output-item order.

Follows the OpenAI API reference, "Create a model response" and "Streaming events"
(https://platform.openai.com/docs/api-reference/responses and
https://platform.openai.com/docs/api-reference/responses-streaming), and the reasoning guide's
"Encrypted reasoning items" (https://platform.openai.com/docs/guides/reasoning).

Choices worth knowing:

- **Terminal evidence.** Only ``response.completed``, ``response.incomplete`` or
  ``response.failed`` ends a call. A stream that stops before one of them raises
  ``ProviderStreamError``.
- **Usage.** Every recording has ``total_tokens == input_tokens + output_tokens``, so the
  ``input_tokens_details`` counts (``cached_tokens``, ``cache_write_tokens``) are breakdowns
  *of* ``input_tokens``. Both are subtracted to get lash's uncached ``input_tokens`` (clamped at
  0), matching the Chat Completions provider. The recordings only have ``cache_write_tokens: 0``,
  so the subtraction of cache writes rests on that total, not on a non-zero sample.
- **Reasoning replay.** A ``ReasoningPart`` from this provider is sent back as a ``reasoning``
  item in its original position, so it stays immediately before the item that followed it.
  With ``encrypted`` it is sent as ``{type, encrypted_content, summary}`` *without* its
  ``rs_`` id, as OpenAI's Codex client does: with ``store: false`` ids cannot be looked up, and
  an id invites the server's "required following item" check against message and call ids lash
  does not keep. Without ``encrypted`` it can only be an id reference to a stored item, so it is
  sent only when ``store=True``. A reasoning item that would end an assistant message (nothing
  followed it, e.g. a response cut off by ``max_output_tokens``) is dropped, because the API
  can reject such an item with HTTP 400 ("... provided without its required following item").
  Reasoning from other providers is dropped.
- **Valid text.** Streamed deltas are made valid Unicode as they arrive (``lash_kernel.text``):
  a surrogate pair split across two events is joined, one ``SurrogateJoiner`` per output item,
  and a lone surrogate becomes U+FFFD, in deltas and in the final message alike.
- **Tools** are sent with ``strict: false``. When ``strict`` is omitted, Responses normalises the
  schema to strict mode and makes optional fields required. Lash tools use ordinary JSON Schema,
  so strict mode is turned off. ``request.options`` can still override any body field.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, final

import attrs
import httpx

from lash_kernel.config import env_var
from lash_kernel.errors import ConfigError, ModelError, ProviderStreamError
from lash_kernel.messages import Message, Part, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.model import (
    ModelRequest,
    ModelResponse,
    ModelStreamItem,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
)
from lash_kernel.providers._http import make_client, open_sse, sse_json
from lash_kernel.text import SurrogateJoiner, valid_message, valid_text
from lash_kernel.usage import TokenUsage

__all__ = ["OpenAIResponsesProvider", "parse_response"]

_OPENAI_BASE_URL = "https://api.openai.com/v1"
_TERMINAL = ("response.completed", "response.incomplete", "response.failed")
#: ``response.failed`` / ``error`` codes worth retrying; every other code is a request problem.
_RETRYABLE_CODES = frozenset({"server_error", "rate_limit_exceeded"})
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


@final
class OpenAIResponsesProvider:
    """A ``ModelClient`` for the OpenAI Responses API (``POST /responses``, streamed).

    Args:
        api_key: bearer token, or None to send no ``Authorization`` header (proxies, local servers).
        base_url: API root without the endpoint, e.g. ``https://api.openai.com/v1``.
        provider_name: name used in errors, usage ledgers and ``ReasoningPart.provider``; only
            reasoning carrying this name is replayed.
        transport: injected httpx transport (``httpx.MockTransport`` in tests), or None for real HTTP.
        timeout: seconds (float) or an ``httpx.Timeout``; None uses ``_http.DEFAULT_TIMEOUT``.
            The read timeout (seconds without a byte) backs up the driver's stream idle timeout.
        extra_headers: more default headers (e.g. ``OpenAI-Organization``), or None.
        store: the body's ``store`` flag: False (default) asks OpenAI not to keep the response,
            so reasoning can only be replayed through its encrypted content.
        include_encrypted_reasoning: ask for ``reasoning.encrypted_content`` so reasoning can be
            replayed on later calls without ``store``.

    Attributes:
        provider_name: as passed in.
        base_url: as passed in.
        store: as passed in.

    Raises:
        ConfigError: ``base_url`` is not an absolute http(s) URL with a host.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = _OPENAI_BASE_URL,
        provider_name: str = "openai-responses",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout | None = None,
        extra_headers: Mapping[str, str] | None = None,
        store: bool = False,
        include_encrypted_reasoning: bool = True,
    ) -> None:
        self.provider_name = provider_name
        self.base_url = base_url
        self.store = store
        self._include_encrypted = include_encrypted_reasoning
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        headers.update(extra_headers or {})
        self._client = make_client(base_url=base_url, headers=headers, transport=transport, timeout=timeout)

    @classmethod
    def from_env(
        cls, *, env: Mapping[str, str] | None = None, base_url: str | None = None, **kw: Any
    ) -> OpenAIResponsesProvider:
        """Build a provider keyed from ``OPENAI_API_KEY``.

        Args:
            env: environment to read, or None for ``os.environ``.
            base_url: API root, or None for the official OpenAI API. For any other root the key
                is optional and, when set, is sent to that server.
            **kw: further ``__init__`` arguments (not ``api_key``).
        Returns:
            The provider.
        Raises:
            ConfigError: the official API was chosen and ``OPENAI_API_KEY`` is unset or empty.
        """
        env = os.environ if env is None else env
        api_key = env.get(env_var("OPENAI_API_KEY")) or None
        url = base_url or _OPENAI_BASE_URL
        if api_key is None and url.rstrip("/") == _OPENAI_BASE_URL:
            raise ConfigError("set OPENAI_API_KEY to use the OpenAI Responses API")
        return cls(api_key=api_key, base_url=url, **kw)

    async def aclose(self) -> None:
        """Close the HTTP client (and the transport it owns). Idempotent."""
        await self._client.aclose()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamItem]:
        """Call ``/responses`` and stream the answer.

        Args:
            request: the call; ``messages`` oldest first, already repaired (every tool call
                has a result). ``system`` becomes ``instructions``.
        Yields:
            ``TextDelta`` (output text), ``ReasoningDelta`` (reasoning summary or reasoning text)
            and ``ToolCallDelta`` (``index`` counts function calls in this response from 0; the
            first delta of a call carries its id and name) in arrival order, then exactly one
            ``ModelResponse`` whose parts follow the output-item order. All text is valid
            Unicode (see the module docstring).
        Raises:
            ProviderHTTPError: non-2xx status (``status``, ``body``, ``retry_after_s`` attached).
            ProviderConnectionError: connect/read failure or timeout, including mid-stream.
            ProviderStreamError: a malformed event, an ``error`` event (``retryable`` only for
                ``server_error`` / ``rate_limit_exceeded``), or a stream that ended without
                ``response.completed``, ``response.incomplete`` or ``response.failed``.
            ModelError: ``response.failed``; the message is the provider's error message and
                ``retryable`` is True only for ``server_error`` / ``rate_limit_exceeded``.
        """
        state = _StreamState(provider=self.provider_name, model=request.model)
        body = self.build_body(request)
        async with open_sse(self._client, "/responses", body, provider=self.provider_name) as events:
            async for event in events:
                data = event.data.strip()
                if not data or data == "[DONE]":
                    continue
                for item in state.feed(sse_json(event, provider=self.provider_name)):
                    yield item
                if state.result is not None:
                    break
        if state.result is None:
            raise ProviderStreamError(
                f"{self.provider_name}: stream ended without response.completed, "
                "response.incomplete or response.failed",
                provider=self.provider_name,
            )
        yield state.result

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """Build the JSON body for ``POST /responses``.

        Args:
            request: the call to encode.
        Returns:
            ``{model, instructions?, input, tools?, stream: true, store, include?,
            max_output_tokens?, temperature?}`` with ``request.options`` merged in last.
        """
        body: dict[str, Any] = {"model": request.model}
        if request.system:
            body["instructions"] = request.system
        body["input"] = _input_items(request.messages, provider=self.provider_name, store=self.store)
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": dict(t.input_schema),
                    "strict": False,
                }
                for t in request.tools
            ]
        body["stream"] = True
        body["store"] = self.store
        if self._include_encrypted:
            body["include"] = ["reasoning.encrypted_content"]
        if request.max_output_tokens is not None:
            body["max_output_tokens"] = request.max_output_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        body.update(request.options)
        return body


def _input_items(messages: tuple[Message, ...], *, provider: str, store: bool = False) -> list[dict[str, Any]]:
    """Map lash messages onto Responses input items, keeping part order.

    Args:
        messages: conversation, oldest first, already repaired.
        provider: this provider's name; only ``ReasoningPart`` with this ``provider`` is replayed.
        store: whether responses are stored server-side (allows id-only reasoning references).
    Returns:
        Input items: user/system text as ``{"role", "content": [{"type": "input_text", ...}]}``,
        assistant parts as ``reasoning`` / ``message`` (``output_text``) / ``function_call``
        items, and tool results as ``function_call_output`` items. See the module docstring for
        which reasoning is replayed.
    """
    items: list[dict[str, Any]] = []
    for msg in messages:
        if msg.role in ("user", "system"):
            content = [{"type": "input_text", "text": p.text} for p in msg.parts if isinstance(p, TextPart)]
            if content:
                items.append({"role": msg.role, "content": content})
        own: list[dict[str, Any]] = []
        for part in msg.parts:
            if isinstance(part, ToolResultPart):
                output: Any = part.output
                if part.attachments:
                    output = [{"type": "input_text", "text": part.output}] + [
                        {"type": "input_image", "image_url": a.data_url} if a.is_image
                        else {"type": "input_text", "text": a.note()}
                        for a in part.attachments
                    ]
                own.append({"type": "function_call_output", "call_id": part.call_id, "output": output})
            elif msg.role != "assistant":
                continue
            elif isinstance(part, TextPart) and part.text:
                own.append(
                    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": part.text}]}
                )
            elif isinstance(part, ToolCallPart):
                arguments = part.arguments or "{}"
                own.append({"type": "function_call", "call_id": part.id, "name": part.name, "arguments": arguments})
            elif isinstance(part, ReasoningPart) and part.provider == provider:
                summary = [{"type": "summary_text", "text": part.text}] if part.text else []
                if part.encrypted:
                    own.append({"type": "reasoning", "encrypted_content": part.encrypted, "summary": summary})
                elif part.item_id and store:
                    own.append({"type": "reasoning", "id": part.item_id, "summary": summary})
        if own and own[-1]["type"] == "reasoning":  # nothing followed it: the API would reject it
            own.pop()
        items.extend(own)
    return items


def parse_response(data: Mapping[str, Any], *, provider: str, model: str = "") -> ModelResponse:
    """Turn a complete Response object (a non-streaming body) into a ``ModelResponse``.

    Args:
        data: the decoded JSON of ``POST /responses`` with ``stream: false`` (or the ``response``
            of a terminal stream event).
        provider: provider name for the result and its reasoning parts.
        model: requested model id, used when ``data`` names none.
    Returns:
        The response; parts follow ``data["output"]`` order.
    Raises:
        ModelError: ``status`` is ``failed`` (or ``cancelled``); the provider's message is kept.
    """
    items = [(i, "") for i in data.get("output") or () if isinstance(i, dict)]
    return _finish(data, str(data.get("status") or ""), items, provider=provider, model=model)


@attrs.define
class _StreamState:
    """Accumulates one response's events; ``result`` is set by the terminal event."""

    provider: str
    model: str
    items: dict[int, dict[str, Any]] = attrs.Factory(dict)  # output_index -> latest item
    streamed: dict[int, _Streamed] = attrs.Factory(dict)  # output_index -> text/reasoning/argument deltas
    calls: dict[int, int] = attrs.Factory(dict)  # output_index -> function-call ordinal
    result: ModelResponse | None = None

    def feed(self, event: Any) -> list[ModelStreamItem]:
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            message = f"{self.provider}: unexpected stream event: {event!r:.200}"
            raise ProviderStreamError(message, provider=self.provider)
        kind: str = event["type"]
        index = event.get("output_index")
        index = index if isinstance(index, int) else -1
        delta: str = event["delta"] if isinstance(event.get("delta"), str) else ""
        if kind in ("response.output_item.added", "response.output_item.done") and isinstance(event.get("item"), dict):
            self.items[index] = event["item"]
            if kind.endswith("added") and event["item"].get("type") == "function_call":
                return [self._call_delta(index, "")]
            if index in self.streamed:  # the item is complete: publish what its joiner holds
                return self._flush(index)
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            return self._push(index, delta, _TEXT) if delta else []
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return self._push(index, delta, _REASONING) if delta else []
        elif kind == "response.reasoning_summary_part.added" and event.get("summary_index", 0):
            return self._push(index, "\n\n", _REASONING)
        elif kind == "response.function_call_arguments.delta":
            return self._push(index, delta, _ARGUMENTS) if delta else []
        elif kind == "response.function_call_arguments.done" and isinstance(event.get("arguments"), str):
            if index in self.items:
                self.items[index] = {**self.items[index], "arguments": event["arguments"]}
        elif kind == "error":
            err = event.get("error") if isinstance(event.get("error"), dict) else event
            raise _failure(ProviderStreamError, self.provider, "error in stream", err)
        elif kind in _TERMINAL:
            tail = [d for i in sorted(self.streamed) for d in self._flush(i)]
            response: dict[str, Any] = event["response"] if isinstance(event.get("response"), dict) else {}
            items = [(item, self._streamed_text(i)) for i, item in sorted(self.items.items())]
            if not items:  # nothing streamed item by item: fall back to the final output list
                items = [(i, "") for i in response.get("output") or () if isinstance(i, dict)]
            status = kind.removeprefix("response.")
            self.result = _finish(response, status, items, provider=self.provider, model=self.model)
            return tail
        return []

    def _push(self, index: int, delta: str, what: int) -> list[ModelStreamItem]:
        """Join ``delta`` onto output item ``index``'s stream; the delta to yield, if any."""
        streamed = self.streamed.get(index)
        if streamed is None:
            streamed = self.streamed[index] = _Streamed(what)
        else:
            streamed.kind = what
        text = streamed.joiner.push(delta)
        if not text:
            return []
        streamed.pieces.append(text)
        if what == _TEXT:  # the hot path, inlined
            return [TextDelta(text=text)]
        return [self._delta(index, text, what)]

    def _flush(self, index: int) -> list[ModelStreamItem]:
        """Publish what output item ``index``'s joiner holds back (a lone high surrogate)."""
        streamed = self.streamed[index]
        text = streamed.joiner.flush()
        if not text:
            return []
        streamed.pieces.append(text)
        return [self._delta(index, text, streamed.kind)]

    def _streamed_text(self, index: int) -> str:
        streamed = self.streamed.get(index)
        return "".join(streamed.pieces) if streamed is not None else ""

    def _delta(self, index: int, text: str, kind: int) -> ModelStreamItem:
        if kind == _TEXT:
            return TextDelta(text=text)
        if kind == _REASONING:
            return ReasoningDelta(text=text)
        return self._call_delta(index, text)

    def _call_delta(self, index: int, arguments: str) -> ToolCallDelta:
        item = self.items.get(index, {})
        ordinal = self.calls.setdefault(index, len(self.calls))
        call_id, name = item.get("call_id"), item.get("name")
        return ToolCallDelta(
            index=ordinal,
            id=valid_text(call_id) if isinstance(call_id, str) else None,
            name=valid_text(name) if isinstance(name, str) else None,
            arguments=arguments,
        )


_TEXT, _REASONING, _ARGUMENTS = 0, 1, 2  # what an output item streams


@attrs.define
class _Streamed:
    """One output item's streamed deltas: valid pieces as yielded, and the joiner between them."""

    kind: int  # what the last delta was: _TEXT, _REASONING or _ARGUMENTS
    pieces: list[str] = attrs.Factory(list)
    joiner: SurrogateJoiner = attrs.Factory(SurrogateJoiner)


def _finish(
    response: Mapping[str, Any],
    status: str,
    items: list[tuple[dict[str, Any], str]],
    *,
    provider: str,
    model: str,
) -> ModelResponse:
    """Build the final ``ModelResponse`` from a terminal Response object and its output items.

    ``items`` pairs each output item with the text streamed for it, which stands in for the
    item's own text when it never completed (``response.incomplete``).
    """
    if status not in ("completed", "incomplete"):
        raise _failure(ModelError, provider, f"response {status or 'ended without a status'}", response.get("error"))
    parts = tuple(p for item, streamed in items for p in _item_parts(item, streamed, provider))
    if status == "completed":
        raw: str | None = "completed"
        finish = "tool_calls" if any(isinstance(p, ToolCallPart) for p in parts) else "stop"
    else:
        details = response.get("incomplete_details")
        raw = details.get("reason") if isinstance(details, dict) else None
        finish = _INCOMPLETE_REASONS.get(raw or "", "other")
    response_id = response.get("id")
    return ModelResponse(
        message=valid_message(Message(role="assistant", parts=parts)),
        usage=_usage(response.get("usage")),
        finish_reason=finish,
        model=valid_text(str(response.get("model") or model)),
        provider=provider,
        raw_finish_reason=valid_text(raw) if isinstance(raw, str) else None,
        response_id=valid_text(response_id) if isinstance(response_id, str) else None,
    )


def _item_parts(item: Mapping[str, Any], streamed: str, provider: str) -> list[Part]:
    """Lash parts for one output item; unknown item types (built-in tool calls) give none."""
    kind = item.get("type")
    if kind == "reasoning":
        summary = "\n\n".join(_texts(item.get("summary"))) or "".join(_texts(item.get("content")))
        return [
            ReasoningPart(
                text=summary or streamed,
                encrypted=item.get("encrypted_content") or None,
                item_id=item.get("id") or None,
                provider=provider,
            )
        ]
    if kind == "message":  # any phase ("commentary", "final_answer") is assistant text
        text = "".join(_texts(item.get("content"))) or streamed
        return [TextPart(text=text)] if text else []
    if kind == "function_call":
        call_id = item.get("call_id") or item.get("id") or ""
        return [ToolCallPart(id=call_id, name=item.get("name") or "", arguments=item.get("arguments") or streamed)]
    return []


def _texts(content: Any) -> list[str]:
    """Texts of ``summary_text`` / ``output_text`` / ``reasoning_text`` / ``refusal`` entries."""
    out: list[str] = []
    for c in content if isinstance(content, list) else ():
        value = c.get("text", c.get("refusal")) if isinstance(c, dict) else None
        if isinstance(value, str):
            out.append(value)
    return out


def _failure(cls: type[ModelError], provider: str, what: str, error: Any) -> ModelError:
    """A ``ModelError`` (subclass) carrying the provider's ``{code, message}``."""
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = error.get("message") or "no error message"
    exc = cls(f"{provider}: {what}: {message}" + (f" ({code})" if code else ""), provider=provider)
    exc.retryable = code in _RETRYABLE_CODES
    return exc


def _usage(raw: Any) -> TokenUsage:
    """Map a Responses ``usage`` object onto the five lash buckets (missing fields are 0)."""

    def num(obj: Any, key: str) -> int:
        value = obj.get(key) if isinstance(obj, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    if not isinstance(raw, dict):
        return TokenUsage()
    details = raw.get("input_tokens_details")
    cached = num(details, "cached_tokens")
    written = num(details, "cache_write_tokens")
    return TokenUsage(
        input_tokens=max(0, num(raw, "input_tokens") - cached - written),
        output_tokens=num(raw, "output_tokens"),
        cache_read_input_tokens=cached,
        cache_write_input_tokens=written,
        reasoning_output_tokens=num(raw.get("output_tokens_details"), "reasoning_tokens"),
    )
