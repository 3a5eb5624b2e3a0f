"""lash's public test kit: script a model, replay wire recordings, check stores.

- ``ScriptedModel``: a ``ModelClient`` that answers from a queue of scripted replies (text,
  reasoning, tool calls, usage, errors) and records every ``ModelRequest`` it received.
- ``WireScript`` / ``sse_body``: replay recorded HTTP exchanges through the real provider code
  with ``httpx.MockTransport``.
- ``HookRecorder``: record every hook implementation call of a core (``calls(name)``,
  ``pop(name)``), built on ``KernelHooks.monitor``.
- ``lash_kernel.testing.conformance``: the store conformance suite.
- ``lash_kernel.testing.llamacpp.llamacpp_server``: a real llama.cpp server for end-to-end tests.
- The pytest plugin (``-p lash``, on by default once installed) provides the fixtures
  ``scripted_model``, ``tmp_store``, ``lash_core_factory`` and ``hook_recorder``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs

from lash_kernel.errors import LashError, ModelError
from lash_kernel.messages import Message, ReasoningPart, TextPart, ToolCallPart
from lash_kernel.model import (
    ModelRequest,
    ModelResponse,
    ModelStreamItem,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
)
from lash_kernel.testing.hooks import HookRecorder, RecordedCall
from lash_kernel.testing.wire import WireScript, sse_body
from lash_kernel.usage import TokenUsage

__all__ = ["HookRecorder", "RecordedCall", "ScriptedModel", "ScriptedReply", "WireScript", "sse_body"]


@attrs.frozen(kw_only=True)
class ScriptedReply:
    """One scripted model answer.

    Attributes:
        text: assistant text, streamed in ``chunk_size``-character deltas.
        reasoning: reasoning text streamed before the answer ("" for none).
        tool_calls: ``((name, arguments), ...)``; arguments are a dict (JSON-encoded) or raw
            JSON text (to script malformed arguments). Call ids are ``call_<n>``.
        usage: usage reported for the call.
        finish_reason: None derives it (``tool_calls`` when there are calls, else ``stop``).
        error: raise this instead of answering (after streaming ``text``, if any).
        chunk_size: characters per text delta.
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[tuple[str, Mapping[str, Any] | str], ...] = ()
    usage: TokenUsage = TokenUsage()
    finish_reason: str | None = None
    error: LashError | None = None
    chunk_size: int = 8


class ScriptedModel:
    """A ``ModelClient`` driven by a queue of ``ScriptedReply``.

    Args:
        model: the model id it reports.
        provider_name: the provider name it reports.

    Attributes:
        requests: every ``ModelRequest`` received, in order.
    """

    def __init__(self, *, model: str = "scripted", provider_name: str = "scripted") -> None:
        self.model = model
        self.provider_name = provider_name
        self.requests: list[ModelRequest] = []
        self._queue: deque[ScriptedReply] = deque()
        self._calls = 0

    # ---------------------------------------------------------------- scripting
    def enqueue(self, *replies: ScriptedReply) -> ScriptedModel:
        """Queue replies, answered in order. Returns self for chaining."""
        self._queue.extend(replies)
        return self

    def enqueue_text(self, text: str, *, usage: TokenUsage | None = None, **kw: Any) -> ScriptedModel:
        """Queue a plain text answer."""
        return self.enqueue(ScriptedReply(text=text, usage=usage or TokenUsage(), **kw))

    def enqueue_tool_calls(
        self, *calls: tuple[str, Mapping[str, Any] | str], text: str = "", usage: TokenUsage | None = None, **kw: Any
    ) -> ScriptedModel:
        """Queue an answer that asks for ``calls`` (``(name, arguments)`` pairs) at once."""
        return self.enqueue(ScriptedReply(text=text, tool_calls=tuple(calls), usage=usage or TokenUsage(), **kw))

    def enqueue_error(self, error: LashError) -> ScriptedModel:
        """Queue a failure: the call raises ``error``."""
        return self.enqueue(ScriptedReply(error=error))

    @property
    def pending(self) -> int:
        """Replies not consumed yet."""
        return len(self._queue)

    # ---------------------------------------------------------------- ModelClient
    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamItem]:
        """Answer ``request`` with the next scripted reply (see ``ModelClient.stream``).

        Raises:
            ModelError: no reply is queued (not retryable), or the scripted ``error``.
        """
        self.requests.append(request)
        if not self._queue:
            raise ModelError("ScriptedModel: no scripted reply left", provider=self.provider_name)
        reply = self._queue.popleft()
        parts: list[Any] = []
        if reply.reasoning:
            yield ReasoningDelta(text=reply.reasoning)
            parts.append(ReasoningPart(text=reply.reasoning, provider=self.provider_name))
        size = max(1, reply.chunk_size)
        for i in range(0, len(reply.text), size):
            yield TextDelta(text=reply.text[i : i + size])
        if reply.error is not None:
            raise reply.error
        if reply.text:
            parts.append(TextPart(text=reply.text))
        for index, (name, args) in enumerate(reply.tool_calls):
            self._calls += 1
            arguments = args if isinstance(args, str) else json.dumps(dict(args))
            call = ToolCallPart(id=f"call_{self._calls}", name=name, arguments=arguments)
            yield ToolCallDelta(index=index, id=call.id, name=name, arguments=arguments)
            parts.append(call)
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        yield ModelResponse(
            message=Message(role="assistant", parts=tuple(parts)),
            usage=reply.usage,
            finish_reason=finish,
            model=self.model,
            provider=self.provider_name,
            raw_finish_reason=finish,
        )

    async def aclose(self) -> None:
        """Nothing to release."""

