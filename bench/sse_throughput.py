"""SSE parsing throughput of each provider, on recorded streaming bodies.

For each provider shape, the recorded ``text/event-stream`` responses in
``tests/fixtures/provider-wire`` are replicated to a few MB and served, one request after
another, by an ``httpx.MockTransport``. Each request goes through the provider's real
``stream()``: request body building, httpx, SSE framing (httpx-sse), JSON decoding and
normalisation into lash deltas plus one ``ModelResponse``. No network, no driver, no store.

Shapes and their recordings:
- ``openai``: ``openai/*.json`` with ``OpenAIChatProvider``;
- ``openrouter``: ``openrouter/*.json`` with ``OpenAIChatProvider.openrouter``;
- ``anthropic``: ``anthropic/*.json`` with ``AnthropicProvider``;
- ``openai-responses``: ``openai-responses/*.json`` with ``OpenAIResponsesProvider``.

Prints, per shape (median of ``--rounds`` rounds): MB/s of recorded stream bytes turned into
events, SSE ``data`` events/s, lash stream items/s (deltas and final responses), and requests/s.

Fixtures: ``<repo>/tests/fixtures/provider-wire``, or ``$LASH_FIXTURES_DIR/provider-wire``
(the same override the test suite uses).

Usage: python bench/sse_throughput.py [--mb MB] [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

from lash_kernel.messages import Message
from lash_kernel.model import ModelRequest
from lash_kernel.providers.anthropic import AnthropicProvider
from lash_kernel.providers.openai_chat import OpenAIChatProvider
from lash_kernel.providers.openai_responses import OpenAIResponsesProvider


def fixtures_dir() -> Path:
    """``tests/fixtures/provider-wire`` in the repo, or under ``$LASH_FIXTURES_DIR``."""
    override = os.environ.get("LASH_FIXTURES_DIR")
    if override:
        return Path(override) / "provider-wire"
    return Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "provider-wire"


SHAPES: dict[str, Callable[[httpx.AsyncBaseTransport], Any]] = {
    "openai": lambda t: OpenAIChatProvider(api_key="sk-bench", transport=t),
    "openrouter": lambda t: OpenAIChatProvider.openrouter(api_key="sk-or-bench", transport=t),
    "anthropic": lambda t: AnthropicProvider(api_key="sk-ant-bench", transport=t),
    "openai-responses": lambda t: OpenAIResponsesProvider(api_key="sk-bench", transport=t),
}


def recorded_streams(directory: Path) -> list[str]:
    """Every 200 ``text/event-stream`` response body recorded in ``directory``."""
    bodies = []
    for path in sorted(directory.glob("*.json")):
        for interaction in json.loads(path.read_text(encoding="utf-8"))["interactions"]:
            response = interaction["response"]
            content_type = (response.get("headers") or {}).get("content-type", "")
            if response.get("status", 200) == 200 and content_type.startswith("text/event-stream"):
                bodies.append(response["body_text"])
    return bodies


def data_events(body: str) -> int:
    """SSE ``data`` events in a body (what the parser must frame and decode)."""
    return sum(1 for line in body.splitlines() if line.lstrip().startswith("data:"))


async def one_round(make: Callable[[httpx.AsyncBaseTransport], Any], bodies: list[bytes]) -> tuple[float, int]:
    """Stream every body once through the provider; returns (seconds, lash stream items)."""
    served = iter(bodies)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=next(served))

    provider = make(httpx.MockTransport(handler))
    request = ModelRequest(model="bench", messages=(Message.user("hi"),))
    items = 0
    try:
        started = time.perf_counter()
        for _ in bodies:
            async for _item in provider.stream(request):
                items += 1
        elapsed = time.perf_counter() - started
    finally:
        await provider.aclose()
    return elapsed, items


async def measure(name: str, directory: Path, target_mb: float, rounds: int) -> dict[str, Any]:
    recorded = recorded_streams(directory)
    if not recorded:
        raise SystemExit(f"no recorded SSE responses in {directory}")
    one_pass = sum(len(b.encode()) for b in recorded)
    copies = max(1, round(target_mb * 1e6 / one_pass))
    bodies = [b.encode() for b in recorded] * copies
    total_bytes = one_pass * copies
    sse_events = sum(data_events(b) for b in recorded) * copies
    make = SHAPES[name]
    await one_round(make, [b.encode() for b in recorded])  # warm-up; also fails fast on a bad body
    times, items = [], 0
    for _ in range(rounds):
        seconds, items = await one_round(make, bodies)
        times.append(seconds)
    seconds = statistics.median(times)
    return {
        "shape": name,
        "recordings": len(recorded),
        "requests": len(bodies),
        "mb": total_bytes / 1e6,
        "seconds": seconds,
        "mb_per_s": total_bytes / 1e6 / seconds,
        "sse_events_per_s": sse_events / seconds,
        "items_per_s": items / seconds,
        "requests_per_s": len(bodies) / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=4.0, help="recorded bytes per shape, in MB (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per shape; the median is shown")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    base = fixtures_dir()
    if not base.is_dir():
        raise SystemExit(f"recorded provider fixtures not found at {base}; set LASH_FIXTURES_DIR")

    results = [anyio.run(measure, name, base / name, args.mb, args.rounds) for name in SHAPES]
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    print(f"fixtures: {base}")
    print(f"python {sys.version.split()[0]}, httpx {httpx.__version__}, median of {args.rounds} rounds\n")
    header = f"{'shape':<17}{'recs':>5}{'requests':>9}{'MB':>7}{'MB/s':>8}{'SSE ev/s':>11}{'items/s':>10}{'req/s':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['shape']:<17}{r['recordings']:>5}{r['requests']:>9}{r['mb']:>7.2f}{r['mb_per_s']:>8.2f}"
            f"{r['sse_events_per_s']:>11,.0f}{r['items_per_s']:>10,.0f}{r['requests_per_s']:>9,.0f}"
        )


if __name__ == "__main__":
    main()
