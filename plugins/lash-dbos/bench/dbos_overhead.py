"""Per-turn overhead of running a lash turn under DBOS vs directly on PostgresStore.

Usage: python bench/dbos_overhead.py [TURNS]   (default 60 per variant)

Starts a throwaway PostgreSQL 15 cluster (fsync on), then runs the same turns, sequentially in
one process, with an instant in-process model (no model latency, so the figures are pure
runtime + database cost):

- direct: ``session.turn(...).run()`` on a ``LashCore`` over ``PostgresStore``;
- dbos: ``TurnClient.submit`` + ``result`` through a ``DbosRunner`` in the same process (queue
  polled every 10 ms): the turn is a DBOS workflow, each model call and tool call a step.

Two turn shapes: ``text`` (one model call) and ``tool`` (model call, tool call, model call).
Prints median and p90 ms per turn and the median overhead of DBOS.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio

from lash_dbos import DbosRunner, JournaledModel
from lash_kernel import LashCore
from lash_kernel.plugin import Message, ModelRequest, ModelResponse, TextPart, TokenUsage, ToolCallPart
from lash_postgres import PostgresStore
from lash_postgres.cluster import throwaway_cluster


class InstantModel:
    """Answers at once: a prompt starting with ``tool`` gets one ``echo`` call, then text."""

    provider_name = "instant"

    async def stream(self, request: ModelRequest) -> AsyncIterator[Any]:
        last = request.messages[-1]
        if last.role == "user" and last.text.startswith("tool"):
            part: Any = ToolCallPart(id=f"c{len(request.messages)}", name="echo", arguments=json.dumps({"text": "x"}))
        else:
            part = TextPart(text="ok")
        yield ModelResponse(message=Message(role="assistant", parts=(part,)), usage=TokenUsage(output_tokens=1),
                            finish_reason="stop", model="instant", provider="instant")

    async def aclose(self) -> None:
        pass


def echo(text: str) -> str:
    """Echo."""
    return text


def make_core(dsn: str, journaled: bool) -> LashCore:
    model: Any = JournaledModel(InstantModel()) if journaled else InstantModel()
    return LashCore(model_client=model, model="instant", store=PostgresStore(dsn), tools=[echo], entry_points=False)


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.9 * (len(ordered) - 1))] * 1000


def bench_direct(dsn: str, turns: int, prompt: str) -> list[float]:
    core = make_core(dsn, journaled=False)

    async def run() -> list[float]:
        out = []
        session = core.session(f"direct-{prompt}")
        for _ in range(turns):
            t0 = time.perf_counter()
            await session.turn(prompt).run()
            out.append(time.perf_counter() - t0)
        return out

    try:
        return anyio.run(run)
    finally:
        core.close()


def bench_dbos(runner: DbosRunner, turns: int, prompt: str) -> list[float]:
    out = []
    for _ in range(turns):
        t0 = time.perf_counter()
        runner.result(runner.submit(f"dbos-{prompt}", prompt), timeout_s=60)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    turns = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    with throwaway_cluster() as dsn:
        direct = {p: bench_direct(dsn, turns, p) for p in ("text", "tool")}
        runner = DbosRunner(lambda: make_core(dsn, journaled=True), dsn, concurrency=4, polling_interval_s=0.01)
        runner.launch()
        try:
            bench_dbos(runner, 5, "text")  # warm up
            dbos = {p: bench_dbos(runner, turns, p) for p in ("text", "tool")}
        finally:
            runner.close()
    print(f"lash turn on PostgreSQL 15 (local, fsync on), instant model, {turns} sequential turns per row")
    print(f"{'turn':<6} {'direct median/p90 ms':>22} {'dbos median/p90 ms':>20} {'overhead ms':>12}")
    for p in ("text", "tool"):
        (dm, d90), (bm, b90) = stats(direct[p]), stats(dbos[p])
        print(f"{p:<6} {dm:>10.1f} / {d90:<9.1f} {bm:>8.1f} / {b90:<9.1f} {bm - dm:>10.1f}")


if __name__ == "__main__":
    main()
