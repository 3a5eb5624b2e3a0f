"""Recipe: a researcher that fans out two read-only subagents and merges their typed findings.

Needs lash-subagents next to the kernel (``pip install lash-kernel lash-subagents``). The
researcher's model calls ``spawn_agent`` twice in one reply (the two children run at once), each
with ``capability="explore"`` (read-only tools, no further spawning) and an ``output_schema``, so
each child's result comes back as JSON matching ``FINDINGS``. The researcher's own turn is typed
too: it ends with a ``REPORT`` value. Every child runs in a durable child session of the
researcher's, and its tokens are in the researcher's usage report under the source ``subagent``.

    OPENAI_API_KEY=sk-... python cookbook/researcher.py "How do lighthouses and tides relate?"
    python cookbook/researcher.py --base-url http://127.0.0.1:8080/v1 --model local "..."
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio

from lash_kernel import LashCore, ModelClient, SqliteStore, TurnResult, tool

#: What each explore child returns.
FINDINGS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "topic": {"type": "string"},
        "facts": {"type": "array", "items": {"type": "string"}},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["topic", "facts", "confidence"],
    "additionalProperties": False,
}

#: What the researcher's turn ends with.
REPORT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "facts": {"type": "array", "items": {"type": "string"}},
        "children": {"type": "integer", "minimum": 0},
    },
    "required": ["answer", "facts", "children"],
    "additionalProperties": False,
}

NOTES = {
    "lighthouse": "Lighthouses mark hazards; their lights are kept at a fixed height above high water.",
    "tide": "Tides are driven by the moon and sun; spring tides follow new and full moons.",
    "harbour": "Harbour entrances are often dredged so ships can pass at low tide.",
}


@tool(read_only=True)
def search_notes(query: str) -> list[str]:
    """Search the research notes (read-only).

    Args:
        query: words to look for.
    """
    words = query.lower().split()
    return [text for key, text in NOTES.items() if any(w.startswith(key) or key.startswith(w) for w in words)]


@tool
def save_note(key: str, text: str) -> str:
    """Add a note (changes state, so explore subagents never get this tool).

    Args:
        key: the note's key.
        text: the note.
    """
    NOTES[key] = text
    return "saved"


PROMPT = (
    "You are a research lead. Split the question into two independent sub-questions and call "
    "spawn_agent twice in ONE reply, each with capability='explore' and output_schema set to "
    f"{json.dumps(FINDINGS)}. Then merge the two findings into your final answer."
)


def build_core(model_client: ModelClient, model: str, db: str) -> LashCore:
    """The researcher: notes tools, a lead prompt, a durable store; lash-subagents is loaded
    from its entry point (``allow`` keeps other installed plugins out of this recipe)."""
    return LashCore(
        model_client=model_client,
        model=model,
        store=SqliteStore(db),
        tools=[search_notes, save_note],
        prompt=PROMPT,
        max_turns=8,
        allow=["subagents"],
    )


async def research(core: LashCore, session_id: str, question: str, out=sys.stdout) -> TurnResult:
    """Run the researcher's typed turn, printing each subagent step as it happens."""
    turn = core.session(session_id).turn(question, output_schema=REPORT)
    async for activity in turn.stream():
        event = activity.event
        if activity.kind == "tool_call_started" and event.name == "spawn_agent":
            out.write(f"spawning: {json.loads(event.arguments)['task']}\n")
        elif activity.kind == "tool_call_progress":
            out.write(f"  {event.message}\n")
        elif activity.kind == "tool_call_completed" and event.name == "spawn_agent":
            out.write(f"  -> {event.output}\n")
    return turn.result


def main() -> None:
    from lash_kernel.providers.openai_chat import OpenAIChatProvider

    parser = argparse.ArgumentParser(description="A researcher with two explore subagents.")
    parser.add_argument("question")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--db", default="researcher.db")
    parser.add_argument("--session", default="research")
    args = parser.parse_args()

    async def run() -> None:
        provider = OpenAIChatProvider.from_env(base_url=args.base_url)
        try:
            with build_core(provider, args.model, args.db) as core:
                result = await research(core, args.session, args.question)
                print(json.dumps(result.value, indent=2))
                report = core.session(args.session).usage_report()
                print({source: usage.total_tokens for source, usage in report.by_source.items()})
        finally:
            await provider.aclose()

    anyio.run(run)


if __name__ == "__main__":
    main()
