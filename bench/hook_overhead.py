"""Cost of plugins on the turn path, and ``lash --help`` start-up time.

Part 1 runs the same turn as ``bench/turn_overhead.py`` (one tool call, two scripted model
calls, a durable SQLite commit) with 0, 5 and 20 plugins registered. Each plugin implements
the hooks a typical plugin uses on every turn: ``lash_prompt_contributions``,
``lash_before_turn`` (async), ``lash_before_tool_call``, ``lash_after_tool_call``,
``lash_checkpoint``, ``lash_transform_context``, ``lash_on_activity``,
``lash_turn_committed`` (async) and ``lash_snapshot_state``. It prints the median and p95
microseconds per turn and the extra cost per plugin.

Part 2 times ``python -m lash_kernel --help`` in fresh processes (median of N runs) with the
plugins installed in this environment (install ``plugins/lash-tracing`` and
``plugins/lash-mcp`` first to measure "all first-party plugins"), and reports which are loaded.

Usage: python bench/hook_overhead.py [--turns N] [--help-runs N]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

import anyio
import attrs

from lash_kernel import PromptContribution, hookimpl
from lash_kernel.runtime.core import LashCore
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import ScriptedModel
from lash_kernel.tools import tool
from lash_kernel.usage import TokenUsage


@tool
async def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


@attrs.frozen
class Seen:
    KIND: ClassVar[str] = "bench.seen"
    turns: int


class BusyPlugin:
    """A plugin that touches every per-turn hook and does a little work in each."""

    def __init__(self, index: int) -> None:
        self.lash_plugin_name = f"busy{index}"
        self.index = index
        self.activities = 0
        self.turns = 0

    @hookimpl
    def lash_register_record_types(self, registry):
        if self.index == 0:
            registry.add(Seen)

    @hookimpl
    def lash_prompt_contributions(self):
        return [PromptContribution(slot="context", content=f"plugin {self.index} is here")]

    @hookimpl
    async def lash_before_turn(self, user_input):
        return None

    @hookimpl
    def lash_before_tool_call(self, call):
        return None

    @hookimpl
    async def lash_after_tool_call(self, result):
        return None

    @hookimpl
    def lash_checkpoint(self, phase):
        return None

    @hookimpl
    def lash_transform_context(self, messages):
        return None

    @hookimpl
    def lash_on_activity(self, activity):
        self.activities += 1

    @hookimpl
    async def lash_turn_committed(self, turn_id):
        self.turns += 1

    @hookimpl
    def lash_snapshot_state(self):
        return Seen(turns=self.turns) if self.index == 0 else None


async def per_turn_us(n_plugins: int, turns: int, tmp: Path) -> tuple[float, float]:
    model = ScriptedModel()
    usage = TokenUsage(input_tokens=120, output_tokens=12)
    for i in range(turns + 30):
        model.enqueue_tool_calls(("lookup", {"key": f"k{i}"}), usage=usage)
        model.enqueue_text("known", usage=usage)
    core = LashCore(
        model_client=model, model="scripted", store=SqliteStore(tmp / f"p{n_plugins}.db"), tools=[lookup],
        plugins=[BusyPlugin(i) for i in range(n_plugins)], entry_points=False,
    )
    session = core.session("bench")
    times = []
    for i in range(turns + 30):
        t0 = time.perf_counter()
        await session.turn(f"k{i}?").run()
        if i >= 30:
            times.append(time.perf_counter() - t0)
        model.requests.clear()
    core.close()
    times.sort()
    return statistics.median(times) * 1e6, times[int(0.95 * len(times))] * 1e6


def help_ms(runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lash_kernel", "--help"], check=True, capture_output=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--help-runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [(n, *anyio.run(per_turn_us, n, args.turns, Path(tmp))) for n in (0, 5, 20)]
    base = rows[0][1]
    print(f"per-turn overhead, {args.turns} turns (1 tool call, 2 model calls, SQLite commit):")
    for n, median, p95 in rows:
        extra = f"  (+{(median - base) / n:.0f} us per plugin)" if n else ""
        print(f"  {n:>2} plugins: median {median:7.0f} us   p95 {p95:7.0f} us{extra}")
    installed = sorted(ep.name for ep in importlib.metadata.entry_points(group="lash.plugins"))
    print(f"lash --help start-up, median of {args.help_runs} runs, installed plugins {installed or 'none'}: "
          f"{help_ms(args.help_runs):.0f} ms")


if __name__ == "__main__":
    main()
