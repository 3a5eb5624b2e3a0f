"""Shared HTTP plumbing for providers: one place that turns httpx into lash errors.

Every provider builds its client through ``make_client`` (which rejects a bad ``base_url`` with
``ConfigError`` before any request) and opens its stream through ``open_sse``, and so gets the
same behaviour: non-2xx responses raise ``ProviderHTTPError`` with the body and ``Retry-After``;
connect, read and timeout failures (also mid-stream) raise ``ProviderConnectionError``, which is
retryable; SSE framing is parsed by ``httpx-sse``.

Timeouts: the driver's stream idle timeout (no stream item for N seconds) is the primary guard
against a provider that holds the connection open and sends nothing, and the driver bounds each
attempt with ``request_timeout_s``. httpx's read timeout (``DEFAULT_TIMEOUT``: 300 s without a
single byte) is a backstop, for hosts that call ``stream`` without the driver or turn the idle
timeout off. It is measured on bytes, so SSE keep-alive comments and ``ping`` events reset it
(they yield no stream item, so they do not reset the driver's idle timeout).
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

from lash_kernel.errors import ConfigError, ProviderConnectionError, ProviderHTTPError, ProviderStreamError

__all__ = ["DEFAULT_TIMEOUT", "check_base_url", "make_client", "open_sse", "parse_retry_after", "sse_json"]

#: Default httpx timeout: 10 s to connect; 300 s for each read, write and pool wait. The read
#: timeout (no byte received for 300 s, mid-stream too) is a backstop: the driver's stream idle
#: timeout is shorter and fires first (see the module docstring). A read timeout raises a
#: retryable ``ProviderConnectionError``.
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0)


def check_base_url(base_url: str) -> str:
    """Check that ``base_url`` is an absolute ``http``/``https`` URL with a host.

    Args:
        base_url: API root as the user gave it, e.g. ``http://127.0.0.1:8080/v1``.
    Returns:
        ``base_url`` without trailing slashes.
    Raises:
        ConfigError: ``base_url: ...`` naming the value and what is wrong with it (not a URL,
            no ``http://``/``https://`` scheme, no host, whitespace, a port out of range).
    """
    shown = repr(base_url) if len(base_url) <= 200 else repr(base_url[:200]) + "..."
    example = "an absolute http(s) URL such as http://127.0.0.1:8080/v1"
    try:
        url = httpx.URL(base_url)
        port = url.port
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ConfigError(f"base_url: {shown} is not a URL ({exc}); expected {example}") from None
    if url.scheme not in ("http", "https"):
        raise ConfigError(f"base_url: {shown} has no http:// or https:// scheme; expected {example}")
    if not url.host:
        raise ConfigError(f"base_url: {shown} has no host; expected {example}")
    if any(c.isspace() for c in base_url):
        raise ConfigError(f"base_url: {shown} contains whitespace; expected {example}")
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"base_url: {shown} has port {port}, outside 1-65535")
    return base_url.rstrip("/")


def make_client(
    *,
    base_url: str,
    headers: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: httpx.Timeout | float | None = None,
) -> httpx.AsyncClient:
    """Build the provider's ``httpx.AsyncClient``, after checking ``base_url``.

    Args:
        base_url: API root, e.g. ``https://api.openai.com/v1`` (no trailing path).
        headers: default headers (auth goes here; never logged by lash).
        transport: injected transport (``httpx.MockTransport`` in tests), or None for real HTTP.
        timeout: seconds or an ``httpx.Timeout``, None for ``DEFAULT_TIMEOUT``; the read timeout
            (seconds without a byte, mid-stream too) backs up the driver's stream idle timeout.
    Returns:
        A new client; the caller owns it and closes it with ``aclose()``.
    Raises:
        ConfigError: ``base_url`` is not an absolute http(s) URL with a host (``check_base_url``).
    """
    return httpx.AsyncClient(
        base_url=check_base_url(base_url),
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
        message = f"{provider}: stream idle timeout ({type(exc).__name__})"
        raise ProviderConnectionError(message, provider=provider) from exc
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
