"""The kernel's cost of a subagent: one ``spawn_agent`` call (child session opened, one scripted
child turn, its commit, the result back), and ten concurrent ones, on a SQLite file.

Each measured parent turn: a scripted model call asking for N spawns -> N child sessions, each
one scripted model call and a durable commit -> a scripted final answer -> the parent's commit.
The same parent turn with a trivial tool instead of ``spawn_agent`` is the baseline; the
difference is what the spawns cost. No network: ``ScriptedModel`` answers instantly, so every
microsecond here is runtime overhead (SQLite commits included).

Prints median and p95 microseconds per parent turn for each case and the median cost per
spawn. Usage: python plugins/lash-subagents/bench/spawn_overhead.py [--turns N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from lash_kernel import LashCore, SqliteStore, tool
from lash_kernel.testing import ScriptedModel


@tool(read_only=True)
def noop(task: str) -> str:
    """Do nothing (the baseline's tool)."""
    return "done"


def _script(model: ScriptedModel, name: str, spawns: int) -> None:
    """One parent turn: ``spawns`` calls of ``name``, each child answers, the parent answers."""
    model.enqueue_tool_calls(*((name, {"task": f"t{i}"}) for i in range(spawns)))
    if name == "spawn_agent":
        for i in range(spawns):
            model.enqueue_text(f"child {i}")
    model.enqueue_text("merged")


async def _measure(db: Path, name: str, spawns: int, turns: int, warmup: int) -> list[float]:
    model = ScriptedModel()
    times: list[float] = []
    allow = ["subagents"]
    with LashCore(model_client=model, model="m", store=SqliteStore(db), allow=allow, tools=[noop]) as core:
        for i in range(warmup + turns):
            _script(model, name, spawns)
            session = core.session(f"{name}-{spawns}-{i}")
            start = time.perf_counter()
            result = await session.turn("go").run()
            elapsed = time.perf_counter() - start
            assert not any(r.is_error for _, r in result.tool_calls), result.tool_calls
            if i >= warmup:
                times.append(elapsed * 1e6)
    return times


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_us": statistics.median(ordered), "p95_us": ordered[int(0.95 * (len(ordered) - 1))]}


async def main(turns: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spawns in (1, 10):
            base = await _measure(Path(tmp) / f"base{spawns}.db", "noop", spawns, turns, warmup=5)
            spawn = await _measure(Path(tmp) / f"spawn{spawns}.db", "spawn_agent", spawns, turns, warmup=5)
            b, s = _stats(base), _stats(spawn)
            out[f"{spawns}_spawn"] = {
                "baseline": b,
                "with_spawns": s,
                "spawn_cost_us": (s["median_us"] - b["median_us"]) / spawns,
            }
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100, help="measured parent turns per case")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    figures = anyio.run(main, args.turns)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for case, f in figures.items():
            n = case.split("_")[0]
            print(f"{n} spawn(s) per parent turn, median of {args.turns} turns (SQLite file):")
            print(f"  baseline ({n} x noop tool)   median {f['baseline']['median_us']:9.0f} µs   "
                  f"p95 {f['baseline']['p95_us']:9.0f} µs")
            print(f"  with {n} x spawn_agent       median {f['with_spawns']['median_us']:9.0f} µs   "
                  f"p95 {f['with_spawns']['p95_us']:9.0f} µs")
            print(f"  => per spawn: {f['spawn_cost_us']:.0f} µs")
