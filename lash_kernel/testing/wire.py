"""Wire scripts: replay recorded (or hand-built) HTTP exchanges through the real provider code.

A wire script is a list of interactions, each ``{"request": {"method", "path", ...},
"response": {"status", "headers", "body_text"}}`` — the format of
``shared/fixtures/provider-wire/*.json``. ``WireScript.transport`` is an ``httpx.MockTransport``
that serves the responses in order and records every request it received.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

__all__ = ["WireScript", "sse_body"]


class WireScript:
    """Serve scripted HTTP responses in order.

    Args:
        interactions: recorded interactions (see module docstring).
        check_paths: assert that each request hits the recorded path.

    Attributes:
        requests: every ``httpx.Request`` received, in order.
        bodies: the JSON bodies of those requests (None when not JSON).
    """

    def __init__(self, interactions: Sequence[Mapping[str, Any]], *, check_paths: bool = True) -> None:
        self.interactions = list(interactions)
        self.check_paths = check_paths
        self.requests: list[httpx.Request] = []
        self.bodies: list[Any] = []
        self.transport = httpx.MockTransport(self._handle)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> WireScript:
        """Load a fixture file in the provider-wire format."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(data["interactions"], **kwargs)

    @property
    def remaining(self) -> int:
        """Number of scripted responses not served yet."""
        return len(self.interactions) - len(self.requests)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        index = len(self.requests)
        self.requests.append(request)
        try:
            self.bodies.append(json.loads(request.content) if request.content else None)
        except ValueError:
            self.bodies.append(None)
        if index >= len(self.interactions):
            raise AssertionError(f"wire script exhausted: unexpected request #{index} to {request.url.path}")
        it = self.interactions[index]
        want = it.get("request", {}).get("path")
        if self.check_paths and want and not request.url.path.endswith(want.removeprefix("/api")):
            raise AssertionError(f"request #{index} went to {request.url.path}, script expected {want}")
        r = it["response"]
        return httpx.Response(
            r.get("status", 200),
            headers=r.get("headers", {}),
            content=r.get("body_text", "").encode("utf-8"),
        )


def sse_body(*payloads: Any, done: bool = True) -> str:
    """Build an SSE body: one ``data:`` event per payload, then ``data: [DONE]`` unless ``done=False``.

    Args:
        *payloads: a ``str`` is sent as the event data verbatim; anything else is JSON-encoded
            with ASCII escapes, so a lone surrogate in a string travels as ``\\udXXX`` exactly
            as a provider that split a surrogate pair across two events sends it.
        done: end with the OpenAI-style ``data: [DONE]`` terminator.
    Returns:
        The body text (``\\n\\n`` after each event).
    """
    lines = []
    for payload in payloads:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        lines.append(f"data: {data}\n\n")
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines)
