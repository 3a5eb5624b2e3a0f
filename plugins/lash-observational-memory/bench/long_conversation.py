"""Bench: a 500-turn scripted conversation (about 1,000 tokens a turn) with and without
lash-observational-memory, on a real SQLite file.

Prints, for each run: prompt tokens per turn (max, median of the last 50), compression
(message tokens covered / observation tokens), the share of turns whose prompt prefix
(system prompt + observation block) is byte-identical to the previous turn's, observer and
reflector tokens spent, and the p50 / p95 foreground time the plugin's hooks add to a turn
(measured with ``HookRecorder``; background runs are drained between turns, untimed).

The observer and the reflector are deterministic stand-ins (no network): the observer writes
one ~70-character line per message it is shown, the reflector keeps every other line, and
both report usage as the plugin's token estimate of what they read and wrote. Token counts
are the plugin's estimate (characters / 4 + 4 per message).

    python plugins/lash-observational-memory/bench/long_conversation.py [--turns 500]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from lash_kernel import LashCore, SqliteStore
from lash_kernel.plugin import Message, ModelRequest, ModelResponse, TextPart, TokenUsage
from lash_kernel.testing import HookRecorder, ScriptedModel
from lash_observational_memory import Observation, Reflection
from lash_observational_memory._logic import estimate_tokens, messages_tokens

SYSTEM = "You are a helpful assistant working on a long project with the user."
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()


def text(turn: int, role: str, chars: int) -> str:
    """About ``chars`` characters of varied text naming the turn."""
    out, i, size = [f"{role} turn {turn}:"], turn, 0
    while size < chars:
        out.append(WORDS[i % len(WORDS)] + str(i % 97))
        size += len(out[-1]) + 1
        i = i * 31 % 1009 + 7
    return " ".join(out)


class StandIn:
    """A deterministic observer or reflector."""

    provider_name = "bench"

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.model = f"{kind}-standin"

    async def stream(self, request: ModelRequest) -> AsyncIterator[Any]:
        body = request.messages[-1].text
        if self.kind == "observer":
            shown = body.split("New messages:\n", 1)[-1].splitlines()
            lines = [f"- [medium] 2025-01-01: {line[:60]}" for line in shown if line.startswith("[")]
        else:
            shown = [line for line in body.splitlines() if line.startswith("- [")]
            lines = shown[::2]
        answer = "\n".join(lines)
        usage = TokenUsage(
            input_tokens=messages_tokens(request.messages) + len(request.system or "") // 4,
            output_tokens=estimate_tokens(Message.user(answer)),
        )
        yield ModelResponse(
            message=Message(role="assistant", parts=(TextPart(text=answer),)), usage=usage, finish_reason="stop",
            model=self.model, provider=self.provider_name, raw_finish_reason="stop",
        )

    async def aclose(self) -> None:
        """Nothing to release."""


CLIENTS = {"observer_client": "observer", "reflector_client": "reflector"}


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def run(turns: int, with_plugin: bool, db: Path, **config: Any) -> dict[str, Any]:
    main = ScriptedModel(model="main")
    for k in range(turns):
        main.enqueue_text(text(k, "assistant", 2_000))
    core = LashCore(
        model_client=main, model="main", store=SqliteStore(db), prompt=SYSTEM,
        allow=["observational_memory"] if with_plugin else [],
        model_clients={"observer": StandIn("observer"), "reflector": StandIn("reflector")},
        plugin_config={"observational_memory": {**CLIENTS, **config}} if with_plugin else None,
    )
    with core:
        recorder = HookRecorder(core)
        session = core.session("bench")
        overhead, wall = [], []
        for k in range(turns):
            question = text(k, "user", 2_000)
            t0 = time.perf_counter()
            await session.turn(question).run()
            wall.append(time.perf_counter() - t0)
            calls = recorder.calls()
            overhead.append(sum(c.duration_s for c in calls if c.plugin == "observational_memory"))
            recorder.clear()
            await core.drain()
        recorder.close()
        prompts = [estimate_tokens(Message.user(r.system or "")) + messages_tokens(r.messages) for r in main.requests]
        prefixes = [(r.system, r.messages[0].text if r.messages[0].text.startswith("<observations>") else None)
                    for r in main.requests]
        same = sum(1 for a, b in itertools.pairwise(prefixes) if a == b) / max(1, len(prefixes) - 1)
        report = session.usage_report().by_source
        obs = session.nodes(Observation.KIND)
        refl = session.nodes(Reflection.KIND)
        covered = sum(o.message_tokens for o in obs)
        written = sum(o.tokens for o in obs)
        return {
            "prompt_max": max(prompts),
            "prompt_median_last50": statistics.median(prompts[-50:]),
            "compression": covered / written if written else None,
            "prefix_same": same,
            "observer": report.get("observer", TokenUsage()),
            "reflector": report.get("reflector", TokenUsage()),
            "observations": len(obs),
            "reflections": len(refl),
            "overhead_p50_ms": pct(overhead, 0.5) * 1e3,
            "overhead_p95_ms": pct(overhead, 0.95) * 1e3,
            "turn_p50_ms": pct(wall, 0.5) * 1e3,
            "turn_p95_ms": pct(wall, 0.95) * 1e3,
        }


def show(name: str, r: dict[str, Any]) -> None:
    def tok(u: TokenUsage) -> str:
        return f"{u.input_tokens + u.output_tokens:,} (in {u.input_tokens:,}, out {u.output_tokens:,})"

    print(f"== {name}")
    print(f"  prompt tokens per turn: max {r['prompt_max']:,}, median of the last 50 {r['prompt_median_last50']:,.0f}")
    if r["compression"] is not None:
        print(f"  compression (message tokens covered / observation tokens): {r['compression']:.1f}x")
    print(f"  turns whose prefix (system + block) equals the previous turn's: {r['prefix_same']:.1%}")
    print(f"  observer tokens: {tok(r['observer'])}; reflector tokens: {tok(r['reflector'])}")
    print(f"  observations: {r['observations']}, reflections: {r['reflections']}")
    print(f"  plugin foreground time per turn: p50 {r['overhead_p50_ms']:.2f} ms, p95 {r['overhead_p95_ms']:.2f} ms")
    print(f"  whole turn (scripted model, SQLite commit): p50 {r['turn_p50_ms']:.2f} ms, p95 {r['turn_p95_ms']:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = anyio.run(run, args.turns, False, Path(tmp) / "base.db")
        with_om = anyio.run(run, args.turns, True, Path(tmp) / "om.db")
        small = {"reflect_at_tokens": 8_000, "reflect_block_at_tokens": 12_000}
        reflecting = anyio.run(partial(run, args.turns, True, Path(tmp) / "om-reflect.db", **small))
    print(f"{args.turns} turns, about 1,000 tokens each (estimated tokens)")
    show("without the plugin", base)
    show("with lash-observational-memory (default thresholds)", with_om)
    show("with lash-observational-memory, reflect_at_tokens 8,000 (to exercise the reflector)", reflecting)


if __name__ == "__main__":
    main()
