"""Recipe: a durable tool-using agent with live streaming.

Run it against any OpenAI-compatible server:

    OPENAI_API_KEY=sk-... python cookbook/tool_agent.py "What's 17 * 23, and the weather in Oslo?"
    python cookbook/tool_agent.py --base-url http://127.0.0.1:8080/v1 --model local "Hi"

Run it twice with the same ``--session``: the second run continues the first conversation from
the SQLite file, even if the first process was killed mid-turn.
"""

from __future__ import annotations

import argparse
import sys

import anyio

from lash_kernel import LashCore, ModelClient, SqliteStore, TurnResult, tool


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers.

    Args:
        a: First factor.
        b: Second factor.
    """
    return a * b


@tool
async def weather(city: str) -> dict[str, str]:
    """Current weather for a city (a stand-in for a real API).

    Args:
        city: City name, e.g. "Oslo".
    """
    return {"city": city, "sky": "clear", "temperature_c": "4"}


def build_core(model_client: ModelClient, model: str, db: str) -> LashCore:
    """The agent: two tools, a short system prompt, a durable store."""
    return LashCore(
        model_client=model_client,
        model=model,
        store=SqliteStore(db),
        tools=[multiply, weather],
        prompt="You are a concise assistant. Use tools for arithmetic and weather.",
        max_turns=6,
    )


async def ask(core: LashCore, session_id: str, question: str, out=sys.stdout) -> TurnResult:
    """Run one turn, printing prose as it streams and tool calls as they happen."""
    turn = core.session(session_id).turn(question)
    async for activity in turn.stream():
        event = activity.event
        if activity.kind == "assistant_prose_delta":
            out.write(event.text)
            out.flush()
        elif activity.kind == "tool_call_started":
            out.write(f"\n[calling {event.name}({event.arguments})]\n")
        elif activity.kind == "tool_call_completed":
            out.write(f"[{event.name} -> {event.output}]\n")
    out.write("\n")
    return turn.result


def main() -> None:
    from lash_kernel.providers.openai_chat import OpenAIChatProvider

    parser = argparse.ArgumentParser(description="A durable tool-using agent.")
    parser.add_argument("question")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--db", default="tool_agent.db")
    parser.add_argument("--session", default="cookbook")
    args = parser.parse_args()

    async def run() -> None:
        provider = OpenAIChatProvider.from_env(base_url=args.base_url)
        try:
            with build_core(provider, args.model, args.db) as core:
                result = await ask(core, args.session, args.question)
                print(f"outcome: {result.outcome}; tokens: {result.usage.total_tokens}")
        finally:
            await provider.aclose()

    anyio.run(run)


if __name__ == "__main__":
    main()
