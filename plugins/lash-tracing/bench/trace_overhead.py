"""Per-turn cost of lash-tracing: the same scripted turn with tracing off, JSONL, JSONL + OTel.

Each turn: model call (scripted, no network) -> one tool call -> model call -> final answer ->
commit (in-memory store by default, so the store does not drown the tracing cost; ``--store
sqlite`` uses a SQLite file like ``bench/turn_overhead.py``). Configurations:

- ``off``: no tracing plugin (the kernel builds no trace records at all);
- ``records``: a no-op ``lash_on_trace_record`` observer: the kernel's own cost of building
  and dispatching the records, without any sink;
- ``jsonl``: ``TracingPlugin(jsonl=...)``: 11 records per turn, one append per turn;
- ``jsonl+otel``: plus OTel spans (4 per turn) through a ``SimpleSpanProcessor`` into an
  ``InMemorySpanExporter`` (cleared every round).

The configurations run in interleaved rounds (``--rounds`` of ``--turns`` turns each, after a
warm-up) so drift hits them equally. Prints median and p95 microseconds per turn and the
median overhead against ``off``.

Usage: python plugins/lash-tracing/bench/trace_overhead.py [--turns N] [--rounds R] [--store memory|sqlite] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lash_kernel import hookimpl
from lash_kernel.runtime.core import LashCore
from lash_kernel.store.memory import MemoryStore
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import ScriptedModel
from lash_kernel.tools import tool
from lash_kernel.usage import TokenUsage
from lash_tracing import TracingPlugin


@tool
async def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


USAGE = TokenUsage(input_tokens=120, output_tokens=12, cache_read_input_tokens=40)


def script(model: ScriptedModel, turns: int) -> None:
    model.requests.clear()
    for i in range(turns):
        model.enqueue_tool_calls(("lookup", {"key": f"k{i}"}), usage=USAGE)
        model.enqueue_text(f"The value of k{i} is known now.", usage=USAGE)


class NoopObserver:
    """Receives every trace record and drops it."""

    otel = None

    @hookimpl
    def lash_on_trace_record(self, record: Any) -> None:
        """Drop ``record``."""


class Config:
    """One benchmark configuration: a core (and its plugin) built once, reused every round."""

    def __init__(self, name: str, tmp: Path, store: str, plugin_factory: Callable[[], Any]) -> None:
        self.name = name
        self.model = ScriptedModel()
        self.exporter: InMemorySpanExporter | None = None
        self.plugin = plugin_factory()
        if isinstance(self.plugin, TracingPlugin) and self.plugin.otel is not None:
            self.exporter = getattr(self.plugin, "_bench_exporter", None)
        db = SqliteStore(tmp / f"{name}.db") if store == "sqlite" else MemoryStore()
        self.core = LashCore(
            model_client=self.model, model="scripted", store=db, tools=[lookup], entry_points=False,
            plugins=[self.plugin] if self.plugin is not None else [],
        )
        self.session = self.core.session(f"bench-{name}")
        self.times: list[float] = []

    async def run(self, turns: int, *, record: bool) -> None:
        script(self.model, turns)
        for i in range(turns):
            t0 = time.perf_counter()
            await self.session.turn(f"What is k{i}?").run()
            if record:
                self.times.append(time.perf_counter() - t0)
        if self.exporter is not None:
            self.exporter.clear()

    def close(self) -> None:
        self.session.close()
        self.core.close()


def otel_plugin(path: Path) -> TracingPlugin:
    exporter = InMemorySpanExporter()
    plugin = TracingPlugin(jsonl=path, span_exporter=exporter)
    plugin._bench_exporter = exporter  # type: ignore[attr-defined]
    return plugin


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(turns: int, rounds: int, store: str, tmp: Path) -> dict[str, Any]:
    configs = [
        Config("off", tmp, store, lambda: None),
        Config("records", tmp, store, NoopObserver),
        Config("jsonl", tmp, store, lambda: TracingPlugin(jsonl=tmp / "jsonl.jsonl")),
        Config("jsonl+otel", tmp, store, lambda: otel_plugin(tmp / "otel.jsonl")),
    ]
    try:
        for c in configs:  # warm-up
            await c.run(max(10, turns // 5), record=False)
        for _ in range(rounds):
            for c in configs:
                await c.run(turns, record=True)
    finally:
        for c in configs:
            c.close()
    base = statistics.median(configs[0].times) * 1e6
    out: dict[str, Any] = {"turns_per_config": turns * rounds, "store": store, "configs": {}}
    for c in configs:
        median = statistics.median(c.times) * 1e6
        out["configs"][c.name] = {
            "median_us": round(median, 1),
            "p95_us": round(percentile(c.times, 0.95) * 1e6, 1),
            "overhead_us": round(median - base, 1),
        }
    lines = sum(1 for _ in (tmp / "jsonl.jsonl").open(encoding="utf-8"))
    out["jsonl_bytes_per_turn"] = round((tmp / "jsonl.jsonl").stat().st_size / lines * 11) if lines else 0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=200, help="turns per configuration per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = anyio.run(bench, args.turns, args.rounds, args.store, Path(tmp))
    if args.json:
        json.dump(result, sys.stdout)
        print()
        return
    print(f"lash-tracing per-turn overhead ({result['turns_per_config']} turns per config, {result['store']} store)")
    print(f"{'config':<12} {'median us':>10} {'p95 us':>10} {'overhead us':>12}")
    for name, r in result["configs"].items():
        print(f"{name:<12} {r['median_us']:>10.1f} {r['p95_us']:>10.1f} {r['overhead_us']:>+12.1f}")
    print(f"JSONL bytes per turn: ~{result['jsonl_bytes_per_turn']}")


if __name__ == "__main__":
    main()
