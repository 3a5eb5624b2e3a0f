"""The provider contract: what the driver sends a model and what streams back.

Rule: providers speak httpx only (no vendor SDKs), stream by default, accept an injected
``httpx.AsyncClient`` / transport for tests, and normalise everything into these types.

A provider implements ``ModelClient.stream(request)``: an async iterator that yields zero or
more deltas (``TextDelta``, ``ReasoningDelta``, ``ToolCallDelta``) and ends with exactly one
``ModelResponse``. Any failure raises a ``ModelError`` subclass; a stream that ends without the
provider's terminal evidence raises ``ProviderStreamError`` (never a silent success).

Every string a provider yields is valid Unicode (encodes as UTF-8): a surrogate pair the wire
split across two chunks is joined (``lash_kernel.text.SurrogateJoiner``) and a lone surrogate
becomes U+FFFD, so the final message's text equals the concatenation of its deltas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Protocol, TypeAlias, runtime_checkable

import attrs

from lash_kernel.messages import Message
from lash_kernel.usage import TokenUsage

__all__ = [
    "FINISH_REASONS",
    "ModelClient",
    "ModelRequest",
    "ModelResponse",
    "ModelStreamItem",
    "ReasoningDelta",
    "STREAM_ALIVE",
    "StreamAlive",
    "TextDelta",
    "ToolCallDelta",
    "ToolSpec",
]

#: Normalised finish reasons. Providers map their own values onto these:
#: ``stop`` (natural end), ``tool_calls``, ``length`` (output-token cap), ``content_filter``
#: (refusal / filtered), ``pause`` (provider paused a long turn), ``other``.
FINISH_REASONS = ("stop", "tool_calls", "length", "content_filter", "pause", "other")


@attrs.frozen(kw_only=True)
class ToolSpec:
    """A tool as the model sees it.

    Attributes:
        name: tool name (``^[a-zA-Z0-9_-]{1,64}$`` is what every provider accepts).
        description: what the tool does, for the model.
        input_schema: JSON Schema (draft 2020-12) object for the arguments; a plain dict.
    """

    name: str
    description: str
    input_schema: Mapping[str, Any]


@attrs.frozen(kw_only=True)
class ModelRequest:
    """One model call.

    Attributes:
        model: provider model id, e.g. ``gpt-4o-mini``.
        messages: conversation, oldest first, already repaired (every tool call has a result).
        system: the system prompt, or None.
        tools: tools offered to the model, in catalog order.
        max_output_tokens: output-token cap for this call, or None for the provider default.
        temperature: sampling temperature, or None for the provider default.
        request_id: id the driver uses to correlate events (``<turn_id>:m<n>``).
        options: extra provider-specific body fields, merged into the request body last.
    """

    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    max_output_tokens: int | None = None
    temperature: float | None = None
    request_id: str = ""
    options: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class TextDelta:
    """A chunk of assistant prose as it streams."""

    KIND: ClassVar[str] = "model_text_delta"
    text: str


@attrs.frozen(kw_only=True)
class ReasoningDelta:
    """A chunk of model reasoning (or reasoning summary) as it streams."""

    KIND: ClassVar[str] = "model_reasoning_delta"
    text: str


@attrs.frozen(kw_only=True)
class ToolCallDelta:
    """A fragment of a tool call as it streams.

    Attributes:
        index: position of the call within this response (0-based).
        id: call id once known, else None.
        name: tool name once known, else None.
        arguments: the next fragment of the arguments' JSON text ("" if none in this chunk).
    """

    KIND: ClassVar[str] = "model_tool_call_delta"
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@attrs.frozen(kw_only=True)
class ModelResponse:
    """The complete result of one model call; always the last item of a stream.

    Attributes:
        message: the assistant message (text, reasoning and tool-call parts, in stream order).
        usage: normalised usage for this call (zeros when the provider reported none).
        finish_reason: one of ``FINISH_REASONS``.
        model: the model id the provider reports having used (falls back to the requested one).
        provider: provider name, e.g. ``openai``.
        raw_finish_reason: the provider's own value, e.g. ``end_turn``, or None.
        response_id: the provider's response id, or None.
    """

    KIND: ClassVar[str] = "model_response"
    message: Message
    usage: TokenUsage
    finish_reason: str
    model: str
    provider: str
    raw_finish_reason: str | None = None
    response_id: str | None = None


@attrs.frozen
class StreamAlive:
    """The provider sent an event that carries no content but shows the stream is alive (e.g.
    Anthropic's ``ping``, sent while the model works). Consumers ignore it; the driver's stream
    idle timeout (``stream_idle_timeout_s``) counts it, so a model that thinks silently behind
    keep-alives is not cut off.
    """

    KIND: ClassVar[str] = "model_stream_alive"


#: The one ``StreamAlive`` value adapters yield (it carries no data).
STREAM_ALIVE = StreamAlive()

ModelStreamItem: TypeAlias = TextDelta | ReasoningDelta | ToolCallDelta | StreamAlive | ModelResponse


@runtime_checkable
class ModelClient(Protocol):
    """What the driver needs from a model provider.

    Attributes:
        provider_name: short name used in usage ledgers and errors (``openai``, ``anthropic``...).
    """

    provider_name: str

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamItem]:
        """Call the model and stream its answer.

        Args:
            request: the call to make.
        Yields:
            Deltas in arrival order, then exactly one ``ModelResponse``; all text valid Unicode.
            ``STREAM_ALIVE`` may come between them when the provider signals it is still
            working without content (it keeps the driver's stream idle timeout off).
        Raises:
            ProviderHTTPError: non-2xx status (``status``, ``body`` attached).
            ProviderConnectionError: connect/read failure or timeout, mid-stream too (retryable).
            ProviderStreamError: malformed stream, or no terminal event before the stream ended.
        """
        ...

    async def aclose(self) -> None:
        """Release the HTTP client if the provider owns it. Idempotent."""
        ...
