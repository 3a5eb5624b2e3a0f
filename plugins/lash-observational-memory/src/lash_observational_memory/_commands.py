"""``lash memory show SESSION``: the observation block and the coverage of a session.

Rule: imported only when the ``lash`` CLI registers commands; reads through
``command_host()`` (the core ``lash run`` would build from ``lash.toml``), never the store.
"""

from __future__ import annotations

import json

import click

from lash_kernel.plugin import command_host

from ._logic import messages_tokens, render_block
from ._memory import load_records


@click.group("memory")
def memory_group() -> None:
    """Observational memory (lash-observational-memory)."""


@memory_group.command("show")
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show(session_id: str, as_json: bool) -> None:
    """Show SESSION_ID's observation block and what it covers."""
    with command_host() as host:
        history = host.history(session_id)
        recs = load_records(host, session_id)
        view = recs.view(history)
        block = render_block(view)
        covered = messages_tokens(history[: view.through])
        stats = {
            "session_id": session_id,
            "frame_id": recs.frame_id,
            "messages": len(history),
            "observed_through": view.through,
            "buffered_through": view.chain_end,
            "observations": len(recs.observations),
            "reflections": len(recs.reflections),
            "covered_message_tokens": covered,
            "block_tokens": view.block_tokens,
            "block": block,
        }
    if as_json:
        click.echo(json.dumps(stats))
        return
    click.echo(
        f"session {session_id}: {view.through} of {len(history)} messages observed "
        f"({covered} tokens -> {view.block_tokens} block tokens), buffered through {view.chain_end}; "
        f"{len(recs.observations)} observations, {len(recs.reflections)} reflections"
    )
    click.echo(block if block is not None else "(no observation block yet)")
