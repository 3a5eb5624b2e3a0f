"""Recipe: a long-running chat that never overflows its context window (lash-compaction).

With ``lash-compaction`` installed, every session of a core is kept inside the model's window:
old tool results are stubbed in the prompt view first, then a summary opens a new agent frame.
This recipe shows the host's side: the window, a cheaper client for summaries, watching the
``compaction_*`` activities, compacting by hand, and reading the frames back.

    pip install lash-kernel lash-compaction
    OPENAI_API_KEY=sk-... python cookbook/compaction_agent.py --window 16000 "Tell me about Oslo"
    python cookbook/compaction_agent.py --base-url http://127.0.0.1:8080/v1 --model local --window 2048 "Hi"
    python cookbook/compaction_agent.py --compact "keep the city names"

Run it again with the same ``--session`` to continue; ``--compact`` summarises the session now.
"""

from __future__ import annotations

import argparse
import sys

import anyio

from lash_kernel import LashCore, ModelClient, Session, SqliteStore, TurnResult


def build_core(
    model_client: ModelClient,
    model: str,
    db: str,
    *,
    window: int,
    summarizer: ModelClient | None = None,
) -> LashCore:
    """A core whose sessions lash-compaction keeps inside ``window`` tokens; summaries go to
    ``summarizer`` (e.g. a cheaper model) when given, else to the session's own model."""
    config: dict[str, object] = {"clear_at": 0.6, "summarize_at": 0.8, "keep_recent_tokens": 8_000}
    clients = {}
    if summarizer is not None:
        clients["summaries"] = summarizer
        config["client"] = "summaries"
    return LashCore(
        model_client=model_client,
        model=model,
        store=SqliteStore(db),
        context_window=window,
        model_clients=clients,
        plugin_config={"compaction": config},
        prompt="You are a concise assistant.",
    )


async def ask(core: LashCore, session_id: str, text: str, out=sys.stdout) -> TurnResult:
    """One turn, streamed; compaction activities are printed as they happen."""
    turn = core.session(session_id).turn(text)
    async for activity in turn.stream():
        event = activity.event
        if activity.kind == "assistant_prose_delta":
            out.write(event.text)
        elif activity.kind == "compaction_finished":
            if event.error:
                out.write(f"\n[compaction failed: {event.error}]\n")
            else:
                tokens = f"~{event.tokens_before} -> ~{event.tokens_after} tokens"
                what = f"cleared {event.cleared} old tool results" if event.tier == "clear" else (
                    f"summarised into frame {event.frame_id}"
                )
                out.write(f"\n[{what}: {tokens}]\n")
    out.write("\n")
    return turn.result


def describe(session: Session) -> str:
    """The session's frames and what each summary said (the full history stays stored)."""
    lines = [f"session {session.id}: {len(session.frames())} compaction frame(s)"]
    for record in session.nodes("compaction"):
        tokens = f"~{record.tokens_before} -> ~{record.tokens_after} tokens"
        lines.append(f"- frame {record.frame_id} ({record.trigger}, {tokens})")
        lines.extend(f"    {line}" for line in record.summary.splitlines())
    usage = session.usage_report().by_source.get("compaction")
    lines.append(f"tokens spent on summaries: {usage.total_tokens if usage else 0}")
    return "\n".join(lines)


def main() -> None:
    from lash_kernel.providers.openai_chat import OpenAIChatProvider

    parser = argparse.ArgumentParser(description="A chat kept inside its context window.")
    parser.add_argument("text", nargs="?")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--window", type=int, default=128_000, help="the model's context window, tokens")
    parser.add_argument("--db", default="compaction_agent.db")
    parser.add_argument("--session", default="cookbook")
    parser.add_argument("--compact", metavar="FOCUS", nargs="?", const="", default=None,
                        help="compact the session now (optionally focused on FOCUS)")  # fmt: skip
    args = parser.parse_args()

    async def run() -> None:
        provider = OpenAIChatProvider.from_env(base_url=args.base_url)
        try:
            with build_core(provider, args.model, args.db, window=args.window) as core:
                if args.text:
                    await ask(core, args.session, args.text)
                if args.compact is not None:
                    opened = await core.session(args.session).compact(args.compact or None)
                    print("compacted" if opened else "nothing to compact")
                print(describe(core.session(args.session)))
        finally:
            await provider.aclose()

    anyio.run(run)


if __name__ == "__main__":
    main()
