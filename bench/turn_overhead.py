"""Runtime overhead of one lash turn, measured with a scripted model and a durable SQLite store.

Each turn: user input admitted -> model call (scripted, no network) -> one tool call -> model
call -> final answer -> one atomic commit to a SQLite file (WAL). The scripted model costs next
to nothing, so the times are lash's own overhead (machine, driver, tools, events, commit).

Prints:
- median and p95 microseconds per turn, for three ways a host serves turns: one session
  handle kept across turns; the stateless request-handler pattern (a new handle per turn from
  one core: ``with core.session(sid) as s: ...``); and the fresh-process pattern (a new store,
  core and handle per turn, nothing kept in the process);
- resume-and-run-one-turn time (new store + core + session, then one turn) at 10, 100 and
  1,000 turns of history, and with a current frame of 10 turns after 1,000 turns in an
  earlier frame (a compacted session: only the current frame is loaded);
- database bytes per turn vs the JSON size of the turn's messages;
- peak RSS.

Usage: python bench/turn_overhead.py [--turns N] [--json] [--durability full|normal]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

from lash_kernel.directives import OpenFrame
from lash_kernel.messages import Message
from lash_kernel.runtime.core import LashCore
from lash_kernel.serde import dumps
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import ScriptedModel
from lash_kernel.tools import tool
from lash_kernel.usage import TokenUsage


@tool
async def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


def script(model: ScriptedModel, turns: int) -> None:
    usage = TokenUsage(input_tokens=120, output_tokens=12, cache_read_input_tokens=40)
    for i in range(turns):
        model.enqueue_tool_calls(("lookup", {"key": f"k{i}"}), usage=usage)
        model.enqueue_text(f"The value of k{i} is known now.", usage=usage)


DURABILITY = "full"


def new_core(db: Path, model: ScriptedModel) -> LashCore:
    store = SqliteStore(db, durability=DURABILITY)  # type: ignore[arg-type]
    return LashCore(model_client=model, model="scripted", store=store, tools=[lookup], entry_points=False)


async def run_turns(core: LashCore, session_id: str, n: int) -> list[float]:
    session = core.session(session_id)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        await session.turn(f"What is k{i}?").run()
        times.append(time.perf_counter() - t0)
        core.model_client.requests.clear()  # the scripted model's request log is not lash's memory
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(turns: int, tmp: Path, pattern_turns: int = 500) -> dict[str, object]:
    # 1. steady-state overhead per turn
    model = ScriptedModel()
    script(model, turns + 50)
    db = tmp / "steady.db"
    core = new_core(db, model)
    await run_turns(core, "warmup", 50)
    times = await run_turns(core, "steady", turns)
    messages_json = sum(
        len(dumps(n.payload).encode()) for n in core.store.load_active_path("steady")
    )
    core.store.close()  # the last connection's close folds the WAL into the file
    total_turns = turns + 50
    db_bytes = db.stat().st_size

    # 1b. the stateless-handler and fresh-process patterns, on a history that grows
    patterns: dict[str, dict[str, float]] = {}
    for pattern in ("handler", "fresh"):
        path = tmp / f"{pattern}.db"
        model = ScriptedModel()
        script(model, pattern_turns)
        core = new_core(path, model)
        samples = []
        for i in range(pattern_turns):
            t0 = time.perf_counter()
            if pattern == "fresh":
                core.store.close()
                core = new_core(path, model)
            with core.session("s") as session:
                await session.turn(f"What is k{i}?").run()
            samples.append(time.perf_counter() - t0)
            model.requests.clear()
        core.store.close()
        first, last = samples[: pattern_turns // 10], samples[-pattern_turns // 10 :]
        patterns[pattern] = {
            "median_us": statistics.median(samples) * 1e6,
            "first_tenth_median_us": statistics.median(first) * 1e6,
            "last_tenth_median_us": statistics.median(last) * 1e6,
        }

    # 2. resume cost vs history length, and for a short current frame after a long history
    resume: dict[str, float] = {}
    cases = (("10", 10, 0), ("100", 100, 0), ("1000", 1000, 0), ("1000+frame(10)", 1000, 10))
    for label, history, frame_turns in cases:
        path = tmp / f"resume-{label}.db"
        model = ScriptedModel()
        script(model, history + frame_turns)
        core = new_core(path, model)
        await run_turns(core, "s", history)
        if frame_turns:
            seed = OpenFrame(reason="compaction", seed=(Message.user("summary of the first 1000 turns"),))
            await core.plugin_host.commit_maintenance("s", frame=seed)
            await run_turns(core, "s", frame_turns)
        core.store.close()
        samples = []
        for _ in range(15):
            model = ScriptedModel()
            script(model, 1)
            t0 = time.perf_counter()
            core = new_core(path, model)
            await core.session("s").turn("one more").run()
            samples.append(time.perf_counter() - t0)
            core.store.close()
        resume[label] = statistics.median(samples)

    return {
        "turns": turns,
        "median_us_per_turn": statistics.median(times) * 1e6,
        "p95_us_per_turn": percentile(times, 0.95) * 1e6,
        "patterns": patterns,
        "resume_ms": {k: v * 1e3 for k, v in resume.items()},
        "db_bytes_per_turn": db_bytes / total_turns,
        "messages_json_bytes_per_turn": messages_json / turns,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=2000, help="turns to time (default 2000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--durability", choices=("full", "normal"), default="full", help="SqliteStore durability (default full)"
    )
    args = parser.parse_args()
    global DURABILITY
    DURABILITY = args.durability
    with tempfile.TemporaryDirectory() as tmp:
        result = anyio.run(bench, args.turns, Path(tmp))
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    print(f"turn overhead ({result['turns']} turns, 1 tool call each, SQLite WAL commit, durability={DURABILITY}):")
    print(f"  median {result['median_us_per_turn']:.0f} us/turn, p95 {result['p95_us_per_turn']:.0f} us/turn")
    for name, label in (("handler", "new session handle per turn"), ("fresh", "new store + core + handle per turn")):
        figures = result["patterns"][name]  # type: ignore[index]
        print(
            f"  {label}: median {figures['median_us']:.0f} us/turn "
            f"(first tenth {figures['first_tenth_median_us']:.0f}, last tenth {figures['last_tenth_median_us']:.0f})"
        )
    print("resume + one turn (new store, core and session):")
    for history, ms in result["resume_ms"].items():  # type: ignore[union-attr]
        print(f"  {history:>15} turns of history: {ms:.2f} ms")
    ratio = result["db_bytes_per_turn"] / result["messages_json_bytes_per_turn"]  # type: ignore[operator]
    print(
        f"storage: {result['db_bytes_per_turn']:.0f} database bytes/turn vs "
        f"{result['messages_json_bytes_per_turn']:.0f} bytes of message JSON ({ratio:.2f}x)"
    )
    print(f"peak RSS: {result['peak_rss_mib']:.1f} MiB")


if __name__ == "__main__":
    main()
