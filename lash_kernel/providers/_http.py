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

from lash_kernel.config import base_url_problem
from lash_kernel.errors import ConfigError, ProviderConnectionError, ProviderHTTPError, ProviderStreamError

__all__ = ["DEFAULT_TIMEOUT", "check_base_url", "make_client", "open_sse", "parse_retry_after", "sse_json"]

#: Default httpx timeout: 10 s to connect; 300 s for each read, write and pool wait. The read
#: timeout (no byte received for 300 s, mid-stream too) is a backstop: the driver's stream idle
#: timeout is shorter and fires first (see the module docstring). A read timeout raises a
#: retryable ``ProviderConnectionError``.
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0)


def check_base_url(base_url: str) -> str:
    """Check that ``base_url`` is an absolute ``http``/``https`` URL with a host.

    The rules are ``lash_kernel.config.base_url_problem``'s, shared with ``lash.toml`` and the
    CLI's ``--base-url``.

    Args:
        base_url: API root as the user gave it, e.g. ``http://127.0.0.1:8080/v1``.
    Returns:
        ``base_url`` without trailing slashes.
    Raises:
        ConfigError: ``base_url: '<value>' <what is wrong>; expected ...`` (empty, not an http(s)
            URL, whitespace, no host, an invalid port).
    """
    problem = base_url_problem(base_url)
    if problem is None:
        try:
            httpx.URL(base_url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            problem = f"is not a URL ({exc})"
    if problem is not None:
        shown = repr(base_url) if len(base_url) <= 200 else repr(base_url[:200]) + "..."
        example = "an absolute http(s) URL such as http://127.0.0.1:8080/v1"
        raise ConfigError(f"base_url: {shown} {problem}; expected {example}")
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

    Iterate the events inside the ``async with`` block (the response closes when it exits). An
    httpx error raised while iterating there is thrown back in at this function's ``yield`` by
    ``asynccontextmanager`` and translated below, so the events need no wrapper generator of
    their own (one async-generator hop less per event on the hot path).

    Args:
        client: the provider's client (``make_client``); ``path`` is relative to its base URL.
        path: endpoint path, e.g. ``/chat/completions``.
        body: the JSON request body.
        provider: provider name for error messages.
    Yields:
        The response's SSE events, in order.
    Raises:
        ProviderHTTPError: non-2xx status (body read and attached).
        ProviderConnectionError: connect/read failure or timeout, including mid-stream
            ("stream idle timeout" / "stream interrupted"); retryable.
        ProviderStreamError: the body cannot be decoded (corrupt ``content-encoding``).
    """
    streaming = False  # True once the events are handed out: failures from then on are mid-stream
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
            streaming = True
            yield EventSource(response).aiter_sse()
    except httpx.TimeoutException as exc:
        what = "stream idle timeout" if streaming else "timed out"
        raise ProviderConnectionError(f"{provider}: {what} ({type(exc).__name__})", provider=provider) from exc
    except httpx.TransportError as exc:
        what = "stream interrupted" if streaming else "connection failed"
        raise ProviderConnectionError(f"{provider}: {what}: {exc}", provider=provider) from exc
    except httpx.DecodingError as exc:  # a RequestError, not a TransportError: corrupt content-encoding
        what = "undecodable stream" if streaming else "undecodable response body"
        raise ProviderStreamError(f"{provider}: {what}: {exc}", provider=provider) from exc


def sse_json(event: ServerSentEvent, *, provider: str) -> Any:
    """Decode an SSE event's data as JSON. Raises ``ProviderStreamError`` on malformed data."""
    try:
        return json.loads(event.data)
    except ValueError as exc:
        raise ProviderStreamError(
            f"{provider}: malformed stream chunk: {event.data[:200]!r}", provider=provider
        ) from exc
