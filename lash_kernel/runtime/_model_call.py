"""Performing ``CallModel``: the prompt view, one streamed attempt, and the retry loop around it.

Rule: an attempt never retries and never raises a ``ModelError``; it returns the response or
the error. ``call_model`` alone decides to retry (``RetryPolicy``), and turns the result into
the event the machine is fed. Deltas are published as they arrive (the hot path: one
``TurnActivity`` per delta, no hook calls).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from functools import partial
from typing import Any, TypeVar

import anyio
import attrs

from lash_kernel.activity import (
    AssistantProseDelta,
    ErrorReported,
    ModelAttemptReset,
    ModelRequestStarted,
    ReasoningProseDelta,
    RetryStatus,
)
from lash_kernel.compaction import apply_compaction
from lash_kernel.errors import (
    ModelError,
    PluginHookError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderStreamError,
)
from lash_kernel.messages import Message
from lash_kernel.model import ModelClient, ModelRequest, ModelResponse, ReasoningDelta, TextDelta
from lash_kernel.runtime._state import TurnContext, TurnRuntime
from lash_kernel.runtime.events import Event, ModelFailed, ModelResponded, TurnFailed
from lash_kernel.usage import BUCKETS, TokenUsage

__all__ = ["attempt_model", "call_model", "complete", "usage_json", "with_retries"]


async def call_model(ctx: TurnContext, request: ModelRequest) -> Event:
    """Perform one ``CallModel``: apply the prompt hooks, then attempt with retries.

    Returns:
        ``ModelResponded``; ``ModelFailed`` when the last attempt failed or the error is not
        retryable; ``TurnFailed(plugin_abort)`` when a prompt hook failed.
    Raises:
        Only cancellation.
    """
    rid, base = request.request_id, request
    try:
        request = await _prompt_view(ctx, base)
    except PluginHookError as exc:
        return TurnFailed(reason="plugin_abort", message=str(exc))

    def attempt(n: int) -> Awaitable[ModelResponse | ModelError]:
        if n > 1:
            ctx.emit(ModelRequestStarted(request_id=rid, model=request.model, attempt=n), rid)
        return attempt_model(ctx, request, n)

    def retrying(n: int, attempts: int, error: ModelError, wait_s: float) -> None:
        status = RetryStatus(request_id=rid, attempt=n, max_attempts=attempts, wait_s=wait_s, reason=str(error))
        ctx.emit(status, rid)

    result = await with_retries(ctx.rt, attempt, retrying)
    if _overflowed(ctx, result):  # compact (one new frame) and retry once
        try:
            opened = await _compact(ctx, request.messages, base, overflow=True)
            if opened:
                request = await _prompt_view(ctx, base)
        except PluginHookError as exc:
            return TurnFailed(reason="plugin_abort", message=str(exc))
        if opened:
            ctx.emit(ModelRequestStarted(request_id=rid, model=request.model, attempt=2), rid)
            result = await with_retries(ctx.rt, attempt, retrying)
    if isinstance(result, ModelResponse):
        ctx.session.last_input_tokens = result.usage.input_tokens
        return ModelResponded(request_id=rid, response=result)
    ctx.emit(ErrorReported(kind="provider", message=str(result)), rid)
    http_status = result.status if isinstance(result, ProviderHTTPError) else None
    return ModelFailed(request_id=rid, message=str(result), status=http_status)


_R = TypeVar("_R")


async def with_retries(
    rt: TurnRuntime,
    attempt: Callable[[int], Awaitable[_R | ModelError]],
    retrying: Callable[[int, int, ModelError, float], None] | None = None,
) -> _R | ModelError:
    """Run ``attempt(n)`` (n = 1, 2, ...) until it returns a result, under ``rt.retry``.

    Args:
        rt: the runtime (its retry policy, sleep and randomness).
        attempt: one attempt; returns the result or the ``ModelError`` it failed with.
        retrying: called before each backoff with ``(attempt, max_attempts, error, wait_s)``.
    Returns:
        The first result, or the last error (not retryable, or the attempts ran out).
    """
    policy = rt.retry
    attempts = max(1, policy.max_attempts)
    n = 1
    while True:
        result = await attempt(n)
        if not isinstance(result, ModelError) or not result.retryable or n == attempts:
            return result
        retry_after = result.retry_after_s if isinstance(result, ProviderHTTPError) else None
        wait_s = policy.delay_s(n, retry_after, rt.rng)
        if retrying is not None:
            retrying(n, attempts, result, wait_s)
        await rt.sleep(wait_s)
        n += 1


async def complete(rt: TurnRuntime, client: ModelClient, request: ModelRequest) -> ModelResponse:
    """One model call outside the turn's own loop (``PluginHost.complete``, ``ToolContext.complete``):
    streamed and collected, with the request deadline, the idle timeout and the retry policy.

    Publishes nothing; the caller accounts for the usage.

    Raises:
        ModelError: the last attempt failed, or the error was not retryable.
    """

    async def attempt(_: int) -> ModelResponse | ModelError:
        try:
            return await _Stream(rt, client, request).consume()
        except ModelError as exc:
            return exc

    result = await with_retries(rt, attempt)
    if isinstance(result, ModelError):
        raise result
    return result


async def attempt_model(ctx: TurnContext, request: ModelRequest, attempt: int) -> ModelResponse | ModelError:
    """One streamed model call, no retry, under the request deadline and the idle timeout.

    Deltas are published live; when the attempt fails after streaming some, a
    ``model_attempt_reset`` retracts them.
    Returns:
        The final response, or the ``ModelError`` the attempt failed with (timeouts are
        retryable ``ProviderConnectionError``s).
    Raises:
        Only cancellation.
    """
    span = f"{request.request_id}#{attempt}"
    if ctx.tracing:
        ctx.trace("model_call.started", span, ctx.turn_id, **_model_attrs(ctx, request, attempt))
    stream = _Stream(ctx.rt, ctx.client, request, partial(_publish_delta, ctx, request.request_id))
    started = time.perf_counter()
    try:
        response: ModelResponse | ModelError = await stream.consume()
    except ModelError as exc:
        response = exc
    except BaseException:
        if ctx.tracing:
            ctx.trace(
                "model_call.failed", span, ctx.turn_id, **_model_attrs(ctx, request, attempt),
                duration_s=time.perf_counter() - started, error="cancelled", error_type="cancelled",
                status=None, retryable=False,
            )
        raise
    if ctx.tracing:
        _trace_end(ctx, span, request, attempt, time.perf_counter() - started, response)
    if isinstance(response, ModelError) and stream.streamed:  # nothing of it will be committed
        rid = request.request_id
        ctx.emit(ModelAttemptReset(request_id=rid, attempt=attempt, reason=str(response)), rid)
    return response


def _publish_delta(ctx: TurnContext, rid: str, delta: TextDelta | ReasoningDelta) -> None:
    """Publish one streamed delta of a turn's model call (the hot path)."""
    if isinstance(delta, TextDelta):
        ctx.activity(AssistantProseDelta(text=delta.text), rid)
    else:
        ctx.activity(ReasoningProseDelta(text=delta.text), rid)


class _Stream:
    """Consumes one provider stream under two clocks on one cancel scope.

    The request deadline covers the whole attempt; the idle deadline moves as items arrive.
    Moving a deadline costs a timer reschedule, so it moves at most every ``idle / 8`` seconds,
    reading ``time.monotonic`` (cheap) per item: the idle check fires between ``idle`` and
    ``1.125 * idle`` seconds after the last item.

    Args:
        rt: the runtime (timeouts).
        client: the model client to call.
        request: the call.
        on_delta: called with each text or reasoning delta, or None.
    """

    __slots__ = (
        "_extend_at", "_hard", "_idle", "_offset", "_on_delta", "_scope", "_slack", "client", "request", "rt",
        "streamed",
    )

    def __init__(
        self,
        rt: TurnRuntime,
        client: ModelClient,
        request: ModelRequest,
        on_delta: Callable[[TextDelta | ReasoningDelta], None] | None = None,
    ) -> None:
        self.rt, self.client, self.request, self.streamed = rt, client, request, False
        self._on_delta = on_delta
        now = anyio.current_time()
        self._offset = now - time.monotonic()  # backend clock minus monotonic, fixed per attempt
        self._hard = now + rt.request_timeout_s if rt.request_timeout_s is not None else math.inf
        self._idle = rt.stream_idle_timeout_s
        self._slack = self._idle / 8 if self._idle is not None else 0.0
        self._extend_at = now + self._slack
        self._scope: anyio.CancelScope | None = None

    def _deadline(self, now: float) -> float:
        return self._hard if self._idle is None else min(self._hard, now + self._idle + self._slack)

    async def consume(self) -> ModelResponse:
        """Stream the request; return the final response. Raises ``ModelError``."""
        client, on_delta, response = self.client, self._on_delta, None
        with anyio.CancelScope(deadline=self._deadline(anyio.current_time())) as scope:
            self._scope = scope
            async with aclosing(client.stream(self.request)) as items:  # type: ignore[type-var]
                async for item in items:
                    if self._idle is not None:
                        self._tick()
                    if isinstance(item, (TextDelta, ReasoningDelta)):
                        self.streamed = True
                        if on_delta is not None:
                            on_delta(item)
                    elif isinstance(item, ModelResponse):
                        response = item
        if scope.cancelled_caught:
            raise self._timeout_error()
        if response is None:
            raise ProviderStreamError("provider stream ended without a final response", provider=client.provider_name)
        return response

    def _tick(self) -> None:
        """An item arrived: push the idle deadline out (lazily, see the class docstring)."""
        now = time.monotonic() + self._offset
        if now >= self._extend_at:
            assert self._scope is not None
            self._scope.deadline = self._deadline(now)
            self._extend_at = now + self._slack

    def _timeout_error(self) -> ProviderConnectionError:
        rt, name = self.rt, self.client.provider_name
        if anyio.current_time() >= self._hard:
            return ProviderConnectionError(
                f"{name}: no complete response within {rt.request_timeout_s} s", provider=name
            )
        return ProviderConnectionError(f"{name}: no data for {self._idle:g} s", provider=name)


async def _prompt_view(ctx: TurnContext, request: ModelRequest) -> ModelRequest:
    """The messages one request sends: ``lash_compact`` (may open a frame), the current frame's
    view, then ``lash_plan_compaction`` and ``lash_transform_context``. Raises ``PluginHookError``."""
    hooks, sid = ctx.hooks, ctx.session_id
    messages = request.messages
    await _compact(ctx, messages, request, overflow=False)
    switch = ctx.frame_switch
    if switch is not None:
        messages = (*switch.seed, *messages[len(ctx.session.history) + switch.at :])
    if hooks.implemented("lash_plan_compaction"):
        plan = hooks.plan_compaction(
            session_id=sid,
            messages=messages,
            context_window=ctx.rt.context_window,
            input_tokens=ctx.session.last_input_tokens,
        )
        if plan is not None:
            messages = apply_compaction(messages, plan)
    if hooks.implemented("lash_transform_context"):
        messages = hooks.transform_context(session_id=sid, turn_id=ctx.turn_id, messages=messages)
    return request if messages is request.messages else attrs.evolve(request, messages=messages)


def _overflowed(ctx: TurnContext, result: ModelResponse | ModelError) -> bool:
    """True when ``result`` is the provider refusing the request for its size and a plugin
    could still open a frame for this turn."""
    return (
        isinstance(result, ProviderHTTPError)
        and result.context_overflow
        and ctx.frame_switch is None
        and ctx.hooks.implemented("lash_compact")
    )


async def _compact(ctx: TurnContext, view: tuple[Message, ...], base: ModelRequest, *, overflow: bool) -> bool:
    """Ask ``lash_compact`` (unless the turn already opened a frame); open the frame it returns.

    Args:
        view: the messages the plugin decides on (the current frame as the model would get it).
        base: the machine's request (its messages are the turn's history plus its messages).
        overflow: the provider refused ``view`` as too large.
    Returns:
        True when a frame was opened. Raises ``PluginHookError``.
    """
    if ctx.frame_switch is not None or not ctx.hooks.implemented("lash_compact"):
        return False
    frame = await ctx.hooks.compact(
        session_id=ctx.session_id, turn_id=ctx.turn_id, messages=view, context_window=ctx.rt.context_window,
        input_tokens=ctx.session.last_input_tokens, overflow=overflow,
    )
    if frame is None:
        return False
    ctx.open_frame(frame, at=len(base.messages) - len(ctx.session.history))
    return True


def _model_attrs(ctx: TurnContext, request: ModelRequest, attempt: int) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "attempt": attempt,
        "model": request.model,
        "provider": ctx.client.provider_name,
        "message_count": len(request.messages),
        "tool_count": len(request.tools),
        "max_output_tokens": request.max_output_tokens,
        "temperature": request.temperature,
    }


def _trace_end(
    ctx: TurnContext,
    span: str,
    request: ModelRequest,
    attempt: int,
    duration_s: float,
    result: ModelResponse | ModelError,
) -> None:
    """The ``model_call.completed`` / ``model_call.failed`` trace record of one attempt."""
    attributes = _model_attrs(ctx, request, attempt)
    if isinstance(result, ModelError):
        status = result.status if isinstance(result, ProviderHTTPError) else None
        ctx.trace(
            "model_call.failed", span, ctx.turn_id, **attributes, duration_s=duration_s, error=str(result),
            error_type=type(result).__name__, status=status, retryable=result.retryable,
        )
        return
    ctx.trace(
        "model_call.completed", span, ctx.turn_id, **attributes, duration_s=duration_s,
        finish_reason=result.finish_reason, response_model=result.model, response_id=result.response_id,
        usage=usage_json(result.usage),
    )


def usage_json(usage: TokenUsage) -> dict[str, int]:
    """``usage`` as ``{bucket: tokens}`` for trace records."""
    return {b: getattr(usage, b) for b in BUCKETS}
