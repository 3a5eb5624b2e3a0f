"""Journaling a turn's model calls and tool calls as DBOS steps.

Inside a DBOS workflow (a turn run by ``DbosRunner``) every model-call attempt is one step named
``lash.model``: its whole result (every stream item, the final ``ModelResponse`` last, or the
error it failed with) is recorded in DBOS's journal before the kernel sees it, so when the turn
is recovered on another worker a journaled call is replayed from the journal and never made
again. Each tool call is one step named ``lash.tool:<name>``: a journaled result is replayed;
a call that was running when its worker died runs again (at-least-once: make side-effecting
tools idempotent, e.g. keyed by the tool call id).

Outside a workflow both wrappers are transparent: the inner client or function is called as is.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import attrs
from dbos import DBOS

from lash_kernel import ModelError, ProviderConnectionError, ProviderHTTPError, ProviderStreamError
from lash_kernel.plugin import ModelClient, ModelRequest, Tool, ToolRegistry

__all__ = ["MODEL_STEP", "TOOL_STEP_PREFIX", "JournaledModel", "journal_tools"]

MODEL_STEP = "lash.model"
TOOL_STEP_PREFIX = "lash.tool:"


def _in_workflow() -> bool:
    return DBOS.workflow_id is not None


def _error_record(exc: ModelError) -> dict[str, Any]:
    """A model error as plain data (the journal must replay it without the exception class's
    constructor arguments)."""
    if isinstance(exc, ProviderHTTPError):
        return {"type": "http", "status": exc.status, "body": exc.body, "provider": exc.provider,
                "retry_after_s": exc.retry_after_s}
    kind = "connection" if isinstance(exc, ProviderConnectionError) else (
        "stream" if isinstance(exc, ProviderStreamError) else "model")
    return {"type": kind, "message": str(exc), "provider": exc.provider, "retryable": exc.retryable}


def _error_from(record: dict[str, Any]) -> ModelError:
    """The ``ModelError`` a journaled failure replays as (same class family, message, status,
    retryability, so the kernel's retry loop decides as it did the first time)."""
    if record["type"] == "http":
        return ProviderHTTPError(record["status"], record["body"], provider=record["provider"],
                                 retry_after_s=record["retry_after_s"])
    cls: type[ModelError] = {"connection": ProviderConnectionError, "stream": ProviderStreamError}.get(
        record["type"], ModelError)
    error = cls(record["message"], provider=record["provider"])
    error.retryable = record["retryable"]
    return error


class JournaledModel:
    """A ``ModelClient`` whose calls are DBOS steps when made inside a turn workflow.

    Give it to ``LashCore(model_client=JournaledModel(provider), ...)`` in the core factory of a
    ``DbosRunner`` (the runner refuses a core whose client is not one). Wrap any named
    ``model_clients=`` too, or their calls are not journaled.

    Inside a workflow the inner stream is consumed to its end inside the step (deltas are then
    re-yielded at once, so a host sees them after the call rather than live), and the recorded
    result is what the kernel gets, the first time and on every replay. A call cut off before
    its step was recorded (the worker died mid-stream, or the kernel's timeout cancelled it) is
    not in the journal and is made again on recovery.

    Args:
        inner: the real provider.
    Attributes:
        provider_name: the inner client's.
    """

    def __init__(self, inner: ModelClient) -> None:
        self.inner = inner
        self.provider_name = inner.provider_name

    async def _call(self, request: ModelRequest) -> tuple[str, Any]:
        items: list[Any] = []
        try:
            async for item in self.inner.stream(request):
                items.append(item)
        except ModelError as exc:
            return ("error", _error_record(exc))
        return ("ok", items)

    async def stream(self, request: ModelRequest) -> AsyncIterator[Any]:
        """Stream ``request`` (see ``ModelClient.stream``); journaled inside a workflow.

        Raises:
            ModelError: the call failed (or its journaled failure is replayed).
        """
        if not _in_workflow():
            async for item in self.inner.stream(request):
                yield item
            return
        status, payload = await DBOS.run_step_async({"name": MODEL_STEP}, self._call, request)
        if status == "error":
            raise _error_from(payload)
        for item in payload:
            yield item

    async def aclose(self) -> None:
        """Close the inner client."""
        await self.inner.aclose()


def _journaled_fn(tool: Tool) -> Callable[..., Any]:
    inner = tool.fn
    is_async = _is_async(inner)
    name = TOOL_STEP_PREFIX + tool.name

    async def body(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if is_async:
            return await inner(*args, **kwargs)
        return await anyio.to_thread.run_sync(functools.partial(inner, *args, **kwargs))

    @functools.wraps(inner)
    async def call(*args: Any, **kwargs: Any) -> Any:
        if not _in_workflow():
            return await body(args, kwargs)
        return await DBOS.run_step_async({"name": name}, body, args, kwargs)

    return call


def _is_async(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


def journal_tools(tools: ToolRegistry) -> int:
    """Make every tool in ``tools`` (a core's static catalog, ``LashCore.tools``) run as a DBOS
    step inside a turn workflow, in place. Tools a ``ToolProvider`` lists per turn (MCP servers)
    are not wrapped: they run again when a turn is recovered.

    A tool's return value is recorded by DBOS's serializer (pickle): return plain data or a
    ``ToolOutput``. Tools of one batch start their steps in call order; DBOS checks on replay
    that each step has the name it was recorded with.

    Returns:
        How many tools were wrapped (already wrapped ones are left alone).
    """
    wrapped = 0
    for item in list(tools):
        if getattr(item.fn, "__lash_dbos_journaled__", False):
            continue
        fn = _journaled_fn(item)
        fn.__lash_dbos_journaled__ = True  # type: ignore[attr-defined]
        tools.add(attrs.evolve(item, fn=fn), provider=tools.provider_of(item.name) or "host", replace=True)
        wrapped += 1
    return wrapped
