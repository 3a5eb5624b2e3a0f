"""A 500-turn scripted session (about 1,000 tokens a turn, a 32,000-token window), run with and
without lash-compaction on a real SQLite file. Prints, for each run: prompt tokens per turn
(max, and the median of the last 50 turns), summary calls, tokens spent on compaction, how often
the prompt prefix changed between model calls (and the prompt tokens after the prefix a call
shares with the one before, which a prompt cache cannot serve), and resume-plus-one-turn time
at the end.

Each turn: a ~100-token question, a tool call whose result is ~700 tokens, then a ~200-token
answer (two model calls). The scripted models report input tokens as UTF-8 bytes / 4 of what
they were sent (system prompt included), as a provider would count them.

    python plugins/lash-compaction/bench/long_session.py [--turns 500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from lash_kernel import LashCore, Message, ModelRequest, ModelResponse, SqliteStore, TokenUsage, tool
from lash_kernel.plugin import TextPart, ToolCallPart

WINDOW = 32_000


def _tokens(request: ModelRequest) -> int:
    size = len((request.system or "").encode())
    for m in request.messages:
        for p in m.parts:
            for attr in ("text", "output", "arguments", "name"):
                value = getattr(p, attr, None)
                if isinstance(value, str):
                    size += len(value.encode())
    return size // 4


class BenchModel:
    """The session's model: a tool call after each question, an answer after each result."""

    provider_name = "bench"

    def __init__(self) -> None:
        self.prompts: list[int] = []  # input tokens of every call
        self.turn_prompts: list[int] = []  # input tokens of each turn's last call
        self.prefix_changes = 0
        self.fresh_tokens = 0  # tokens after the prefix shared with the previous call (a cache miss)
        self._last: tuple[Message, ...] = ()
        self._n = 0

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelResponse]:
        tokens = _tokens(request)
        self.prompts.append(tokens)
        shared = 0
        for a, b in zip(self._last, request.messages, strict=False):
            if a != b:
                break
            shared += 1
        if self._last and shared < len(self._last):
            self.prefix_changes += 1
        self.fresh_tokens += _tokens(ModelRequest(model="", messages=request.messages[shared:]))
        self._last = request.messages
        last = request.messages[-1]
        self._n += 1
        if last.role == "user":
            part: object = ToolCallPart(id=f"c{self._n}", name="lookup", arguments=f'{{"topic": "t{self._n}"}}')
        else:
            self.turn_prompts.append(tokens)
            part = TextPart(text=f"answer {self._n}: " + "the finding is as follows. " * 28)
        yield ModelResponse(
            message=Message(role="assistant", parts=(part,)),  # type: ignore[arg-type]
            usage=TokenUsage(input_tokens=tokens, output_tokens=200),
            finish_reason="tool_calls" if isinstance(part, ToolCallPart) else "stop",
            model="bench",
            provider="bench",
        )

    async def aclose(self) -> None:
        return None


class SummaryModel:
    """The summary model: a fixed ~300-token summary."""

    provider_name = "bench"

    def __init__(self) -> None:
        self.calls = 0

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelResponse]:
        self.calls += 1
        text = "## Goal\nanswer the questions\n## What was done\n" + f"summary {self.calls}. " * 120
        yield ModelResponse(
            message=Message(role="assistant", parts=(TextPart(text=text),)),
            usage=TokenUsage(input_tokens=_tokens(request), output_tokens=300),
            finish_reason="stop",
            model="bench-small",
            provider="bench",
        )

    async def aclose(self) -> None:
        return None


@tool
def lookup(topic: str) -> str:
    """Look a topic up.

    Args:
        topic: what to look up.
    """
    return f"{topic}: " + "a line of reference text about it. " * 80  # ~700 tokens


def _core(db: Path, model: BenchModel, summarizer: SummaryModel, plugin: bool) -> LashCore:
    return LashCore(
        model_client=model,
        model="bench",
        store=SqliteStore(db),
        tools=[lookup],
        context_window=WINDOW,
        allow=["compaction"] if plugin else [],
        model_clients={"small": summarizer},
        plugin_config={"compaction": {"client": "small"}} if plugin else None,
    )


async def _run(turns: int, plugin: bool, db: Path) -> dict[str, float]:
    model, summarizer = BenchModel(), SummaryModel()
    question = "please look into this: " + "some details of the question. " * 12  # ~100 tokens
    with _core(db, model, summarizer, plugin) as core:
        session = core.session("bench")
        for i in range(turns):
            result = await session.turn(f"q{i} {question}").run()
            assert result.text, result.outcome
        report = session.usage_report()
        frames = len(session.frames())
    spent = report.by_source.get("compaction")
    started = time.perf_counter()
    with _core(db, model, summarizer, plugin) as core:  # a new core: resume from the store
        await core.session("bench").turn("one more").run()
    resume_s = time.perf_counter() - started
    last = model.turn_prompts[-51:-1]
    return {
        "max": max(model.turn_prompts[:turns]),
        "median_last50": statistics.median(last),
        "summaries": summarizer.calls,
        "frames": frames,
        "compaction_tokens": spent.total_tokens if spent is not None else 0,
        "prefix_changes": model.prefix_changes,
        "model_calls": len(model.prompts),
        "fresh_tokens": model.fresh_tokens,
        "prompt_tokens": sum(model.prompts),
        "resume_ms": resume_s * 1000,
    }


def main() -> None:
    """Run both configurations and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=500)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for plugin in (False, True):
            rows["with" if plugin else "without"] = anyio.run(_run, args.turns, plugin, Path(tmp) / f"{plugin}.db")
    print(f"{args.turns} turns, window {WINDOW} tokens")
    print(f"{'':28}{'without':>14}{'with':>14}")
    labels = [
        ("prompt tokens/turn, max", "max"),
        ("  median of last 50 turns", "median_last50"),
        ("summary calls", "summaries"),
        ("frames opened", "frames"),
        ("tokens spent on compaction", "compaction_tokens"),
        ("prompt prefix changes", "prefix_changes"),
        ("  of model calls", "model_calls"),
        ("prompt tokens, all calls", "prompt_tokens"),
        ("  not in a shared prefix", "fresh_tokens"),
        ("resume + 1 turn (ms)", "resume_ms"),
    ]
    for label, key in labels:
        a, b = rows["without"][key], rows["with"][key]
        fmt = "{:>14.1f}" if key == "resume_ms" else "{:>14,.0f}"
        print(f"{label:28}" + fmt.format(a) + fmt.format(b))


if __name__ == "__main__":
    main()
