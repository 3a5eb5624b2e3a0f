"""lash's public test kit: script a model, replay wire recordings, check stores.

- ``ScriptedModel``: a ``ModelClient`` that answers from a queue of scripted replies (text,
  reasoning, tool calls, usage, errors) and records every ``ModelRequest`` it received.
- ``EchoModel``: a ``ModelClient`` that answers every request (after an optional delay) and
  can log each call to a file shared by several processes (workers, chaos tests, benches).
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
import os
from collections import deque
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import anyio
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

__all__ = [
    "EchoModel",
    "HookRecorder",
    "RecordedCall",
    "ScriptedModel",
    "ScriptedReply",
    "WireScript",
    "echo_model_from_env",
    "sse_body",
]


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



class EchoModel:
    """A ``ModelClient`` that answers every request with ``echo: <last user text>``, for workers
    and load tests where a queue of scripted replies cannot know which process gets which turn.
    Added in 0.3.

    Args:
        delay_s: seconds to wait before answering (a model's latency), >= 0.
        log_path: when given, every call appends one JSON line
            ``{"request_id", "turn_id", "call", "text", "pid"}`` to this file before it
            waits: ``turn_id`` and ``call`` (1-based model-call index within the turn) come from
            ``ModelRequest.request_id``; ``text`` is the last user message. Each line is one
            ``O_APPEND`` write, so several processes may share the file.
        model: the model id it reports.
        provider_name: the provider name it reports.
        usage: usage reported for each call.

    Attributes:
        calls: the number of calls this instance answered or started.
    """

    def __init__(
        self,
        *,
        delay_s: float = 0.0,
        log_path: str | Path | None = None,
        model: str = "echo",
        provider_name: str = "echo",
        usage: TokenUsage | None = None,
    ) -> None:
        self.delay_s = delay_s
        self.log_path = Path(log_path) if log_path is not None else None
        self.model = model
        self.provider_name = provider_name
        self.usage = usage if usage is not None else TokenUsage(input_tokens=10, output_tokens=5)
        self.calls = 0

    def _log(self, request: ModelRequest, text: str) -> None:
        if self.log_path is None:
            return
        turn_id, _, call = request.request_id.rpartition(":m")
        line = json.dumps(
            {
                "request_id": request.request_id,
                "turn_id": turn_id,
                "call": int(call) if call.isdigit() else call,
                "text": text,
                "pid": os.getpid(),
            }
        )
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamItem]:
        """Answer ``request`` (see ``ModelClient.stream``): log the call, wait ``delay_s``,
        stream the answer in one delta, then the response."""
        self.calls += 1
        user = next((m for m in reversed(request.messages) if m.role == "user"), None)
        text = "".join(p.text for p in user.parts if isinstance(p, TextPart)) if user is not None else ""
        self._log(request, text)
        if self.delay_s > 0:
            await anyio.sleep(self.delay_s)
        answer = f"echo: {text}"
        yield TextDelta(text=answer)
        yield ModelResponse(
            message=Message(role="assistant", parts=(TextPart(text=answer),)),
            usage=self.usage,
            finish_reason="stop",
            model=self.model,
            provider=self.provider_name,
            raw_finish_reason="stop",
        )

    async def aclose(self) -> None:
        """Nothing to release."""


def echo_model_from_env() -> EchoModel:
    """An ``EchoModel`` configured by the environment, for ``lash worker --model-client
    lash_kernel.testing:echo_model_from_env`` in tests and benches: ``LASH_ECHO_DELAY_S``
    (seconds per call, default 0) and ``LASH_ECHO_LOG`` (the call log file, default none).
    Added in 0.3.

    Raises:
        ValueError: ``LASH_ECHO_DELAY_S`` is not a number.
    """
    return EchoModel(
        delay_s=float(os.environ.get("LASH_ECHO_DELAY_S", "0") or 0),
        log_path=os.environ.get("LASH_ECHO_LOG") or None,
    )
