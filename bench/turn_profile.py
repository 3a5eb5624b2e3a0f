"""Where one turn's time goes: stateless-handler turns, timed phase by phase.

Each measured turn is served as a stateless web handler serves a request, by default in the
fresh-process pattern (the costliest; ``--pattern handler`` keeps one core): a new
``SqliteStore`` and ``LashCore``, then ``with core.session(sid) as s: await
s.turn(prompt).run()``, on a session that already holds ``--history`` turns (each: a user
prompt, one tool call, its result, a final answer). The model is ``ScriptedModel``, so model
time is next to nothing; the store is a real SQLite file at the default durability (FULL).

The phases are timed by wrapping the functions that do them with ``perf_counter`` (no
profiler, so the figures are wall time; the wrappers add well under a µs per call). Prints,
for the median turn: opening the store and core, the lease (claim + release), loading the
session (SQL, JSON parse + message decoding, history repair + size estimate), admitting the
input, the tool call, the commit, and the rest (turn machine, driver, events, hooks, model
calls).

Usage: python bench/turn_profile.py [--history N] [--turns N] [--pattern fresh|handler]
"""

from __future__ import annotations

import argparse
import functools
import inspect
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from lash_kernel import serde
from lash_kernel.runtime import _tool_batch, core, driver, session
from lash_kernel.runtime.core import LashCore
from lash_kernel.store import sqlite
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import ScriptedModel
from lash_kernel.tools import tool
from lash_kernel.usage import TokenUsage

SPENT: dict[str, float] = defaultdict(float)


@tool
async def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


def script(model: ScriptedModel, turns: int) -> None:
    usage = TokenUsage(input_tokens=120, output_tokens=12)
    for i in range(turns):
        model.enqueue_tool_calls(("lookup", {"key": f"k{i}"}), usage=usage)
        model.enqueue_text(f"The value of k{i} is known now, and this answer is long enough to count.", usage=usage)


def new_core(db: Path, model: ScriptedModel) -> LashCore:
    return LashCore(model_client=model, model="scripted", store=SqliteStore(db), tools=[lookup], entry_points=False)


def timed(phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` adding its wall time to ``SPENT[phase]``."""
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                SPENT[phase] += time.perf_counter() - t0
        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[phase] += time.perf_counter() - t0
    return run


# (phase, owner, attribute): the phases do not nest, except the decode inside the load's SQL
# call, which is subtracted below.
PHASES = (
    ("open store + core", SqliteStore, "__init__"),
    ("open store + core", core.LashCore, "__init__"),
    ("lease claim + release", session, "claim"),
    ("lease claim + release", session, "release"),
    ("load: SQL", sqlite.SqliteStore, "load_frame_messages"),
    ("load: JSON parse + decode", serde, "loads_messages"),
    ("load: repair + size estimate", session, "repair_history"),
    ("load: repair + size estimate", session, "message_bytes"),
    ("admit input", driver, "admit"),
    ("tool call", _tool_batch, "execute_tool_call"),
    ("commit", sqlite.SqliteStore, "commit_turn"),
)


def instrument() -> None:
    for phase, owner, name in PHASES:
        setattr(owner, name, timed(phase, getattr(owner, name)))


async def main(history: int, turns: int, pattern: str) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "profile.db"
        model = ScriptedModel()
        script(model, history + turns + 1)
        lash = new_core(db, model)
        handle = lash.session("s")
        for i in range(history):
            await handle.turn(f"What is k{i}?").run()
            model.requests.clear()
        handle.close()
        instrument()
        for i in range(turns):
            SPENT.clear()
            t0 = time.perf_counter()
            if pattern == "fresh":
                lash.store.close()
                lash = new_core(db, model)
            with lash.session("s") as handle:
                await handle.turn(f"What is k{history + i}?").run()
            total = time.perf_counter() - t0
            model.requests.clear()
            row = dict(SPENT)
            row["load: SQL"] = row.get("load: SQL", 0.0) - row.get("load: JSON parse + decode", 0.0)
            row["total"] = total
            rows.append(row)
        lash.store.close()
    phases = list(dict.fromkeys(p for p, _, _ in PHASES))
    median = {key: statistics.median(r.get(key, 0.0) for r in rows) for key in [*phases, "total"]}
    total = median["total"]
    print(f"one turn, {pattern} pattern, {history} turns of history: median of {turns} turns")
    print(f"{'phase':<34}{'µs':>9}{'share':>8}")
    for phase in phases:
        print(f"{phase:<34}{median[phase] * 1e6:>9.0f}{median[phase] / total:>8.1%}")
    rest = total - sum(median[p] for p in phases)
    print(f"{'rest (machine, driver, events)':<34}{rest * 1e6:>9.0f}{rest / total:>8.1%}")
    print(f"{'total':<34}{total * 1e6:>9.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", type=int, default=1000, help="turns already in the session")
    parser.add_argument("--turns", type=int, default=15, help="turns profiled")
    parser.add_argument("--pattern", choices=("fresh", "handler"), default="fresh")
    args = parser.parse_args()
    anyio.run(main, args.history, args.turns, args.pattern)
