"""Shared HTTP plumbing for providers: one place that turns httpx into lash errors.

Every provider opens its stream through ``open_sse`` and so gets the same behaviour:
non-2xx responses raise ``ProviderHTTPError`` with the body and ``Retry-After``; connect, read and
timeout failures raise ``ProviderConnectionError``; SSE framing is parsed by ``httpx-sse``.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent

from lash_kernel.errors import ProviderConnectionError, ProviderHTTPError, ProviderStreamError

__all__ = ["DEFAULT_TIMEOUT", "make_client", "open_sse", "parse_retry_after", "sse_json"]

#: Default request timeout: 10 s to connect, 300 s between bytes (per-chunk idle timeout).
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0)


def make_client(
    *,
    base_url: str,
    headers: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: httpx.Timeout | float | None = None,
) -> httpx.AsyncClient:
    """Build the provider's ``httpx.AsyncClient``.

    Args:
        base_url: API root, e.g. ``https://api.openai.com/v1`` (no trailing path).
        headers: default headers (auth goes here; never logged by lash).
        transport: injected transport (``httpx.MockTransport`` in tests), or None for real HTTP.
        timeout: seconds or an ``httpx.Timeout``; the read timeout is the per-chunk idle timeout.
    """
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers=dict(headers),
        transport=transport,
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header (delta-seconds or an HTTP date) into seconds, or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@asynccontextmanager
async def open_sse(
    client: httpx.AsyncClient,
    path: str,
    body: Mapping[str, Any],
    *,
    provider: str,
) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    """POST ``body`` as JSON to ``path`` and yield an async iterator of SSE events.

    Raises:
        ProviderHTTPError: non-2xx status (body read and attached).
        ProviderConnectionError: connect/read failure or timeout, including mid-stream.
        ProviderStreamError: the body cannot be decoded (corrupt ``content-encoding``).
    """
    try:
        async with client.stream(
            "POST", path, json=body, headers={"accept": "text/event-stream"}
        ) as response:
            if response.status_code >= 300:
                raw = await response.aread()
                raise ProviderHTTPError(
                    response.status_code,
                    raw.decode("utf-8", "replace"),
                    provider=provider,
                    retry_after_s=parse_retry_after(response.headers.get("retry-after")),
                )
            yield _guarded(EventSource(response).aiter_sse(), provider)
    except httpx.TimeoutException as exc:
        raise ProviderConnectionError(f"{provider}: timed out ({type(exc).__name__})", provider=provider) from exc
    except httpx.TransportError as exc:
        raise ProviderConnectionError(f"{provider}: connection failed: {exc}", provider=provider) from exc
    except httpx.DecodingError as exc:  # a RequestError, not a TransportError: corrupt content-encoding
        raise ProviderStreamError(f"{provider}: undecodable response body: {exc}", provider=provider) from exc


async def _guarded(events: AsyncIterator[ServerSentEvent], provider: str) -> AsyncIterator[ServerSentEvent]:
    try:
        async for event in events:
            yield event
    except httpx.TimeoutException as exc:
        raise ProviderConnectionError(f"{provider}: stream idle timeout ({type(exc).__name__})", provider=provider) from exc
    except httpx.TransportError as exc:
        raise ProviderConnectionError(f"{provider}: stream interrupted: {exc}", provider=provider) from exc
    except httpx.DecodingError as exc:
        raise ProviderStreamError(f"{provider}: undecodable stream: {exc}", provider=provider) from exc


def sse_json(event: ServerSentEvent, *, provider: str) -> Any:
    """Decode an SSE event's data as JSON. Raises ``ProviderStreamError`` on malformed data."""
    try:
        return json.loads(event.data)
    except ValueError as exc:
        raise ProviderStreamError(
            f"{provider}: malformed stream chunk: {event.data[:200]!r}", provider=provider
        ) from exc
