"""``lash memory show SESSION``: the observation block and the coverage of a session.

Rule: imported only when the ``lash`` CLI registers commands. It reads the SQLite file given
by ``--db`` (``LASH_DB``) through a model-less core that loads only this plugin, so it never
writes and never starts background work (no event loop runs).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import click

from lash_kernel.plugin import LashError


@click.group("memory")
def memory_group() -> None:
    """Observational memory (lash-observational-memory)."""


class _NoModel:
    """A model client that refuses every call (``lash memory show`` never calls a model)."""

    provider_name = "none"

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        raise LashError("lash memory show calls no model")
        yield  # pragma: no cover

    async def aclose(self) -> None:
        """Nothing to release."""


@memory_group.command("show")
@click.argument("session_id")
@click.option(
    "--db", type=click.Path(exists=True, dir_okay=False, path_type=Path), envvar="LASH_DB", required=True,
    help="SQLite database file [env LASH_DB].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show(session_id: str, db: Path, as_json: bool) -> None:
    """Show SESSION_ID's observation block and what it covers."""
    from lash_kernel import LashCore, SqliteStore  # the runtime only when the command runs

    from ._logic import messages_tokens, render_block
    from ._memory import load_records

    core = LashCore(model_client=_NoModel(), model="none", store=SqliteStore(db), allow=["observational_memory"])
    with core:
        host = core.plugin_host
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
