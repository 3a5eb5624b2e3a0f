"""``lash sessions compact ID``: summarise a stored session's current frame into a new frame.

Rule: imports nothing of the kernel but what plugins may. A compaction needs the session's
store and a model; ``lash_kernel.plugin.command_host()`` builds a core with neither, so this
command runs ``lash chat --session ID`` in a child process and types ``/compact`` into it:
the provider, model, database and ``lash.toml`` are resolved exactly as ``lash chat`` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

__all__ = ["compact_command"]


@click.command("compact")
@click.argument("session_id", metavar="ID")
@click.option("--instructions", "-i", default=None, metavar="TEXT", help="What the summary should focus on.")
@click.option("--provider", default=None, help="Model provider, as for lash chat.")
@click.option("--base-url", default=None, metavar="URL", help="API root of a compatible server, as for lash chat.")
@click.option("--model", default=None, help="Model id, as for lash chat [env LASH_MODEL].")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="SQLite database file, as for lash chat [env LASH_DB].")  # fmt: skip
@click.pass_context
def compact_command(
    ctx: click.Context,
    session_id: str,
    instructions: str | None,
    provider: str | None,
    base_url: str | None,
    model: str | None,
    db: Path | None,
) -> None:
    """Compact session ID now with lash-compaction: summarise its current frame (all but the
    last exchange) into a new agent frame. The full history stays in the store; the summary
    call's tokens are billed to the session under the `compaction` source.

    Exit code 0 when a frame was opened or there was nothing to compact, 1 otherwise.

    \b
    Examples:
      lash sessions compact 3f2a9c --instructions "keep the file names"
      lash sessions compact my-task --base-url http://127.0.0.1:8080/v1
    """
    if "\n" in session_id or (instructions and "\n" in instructions):
        raise click.BadParameter("must be one line", param_hint="ID / --instructions")
    args = [sys.executable, "-m", "lash_kernel"]
    config = ctx.find_root().params.get("config")
    if config:
        args += ["--config", str(config)]
    args += ["chat", "--session", session_id]
    for flag, value in (("--provider", provider), ("--base-url", base_url), ("--model", model), ("--db", db)):
        if value is not None:
            args += [flag, str(value)]
    line = "/compact" + (f" {instructions}" if instructions else "")
    proc = subprocess.run(args, input=f"{line}\n/exit\n", capture_output=True, text=True, env=dict(os.environ))
    lines = [x.removeprefix("> ").strip() for x in proc.stderr.splitlines()]  # "> " is chat's prompt
    lines = [x for x in lines if x and x != ">" and not x.startswith("lash chat ")]
    for text in lines:
        click.echo(text, err=True)
    if proc.returncode != 0:
        raise SystemExit(proc.returncode)
    if not any(x in ("compacted into a new frame", "nothing to compact") for x in lines):
        raise SystemExit(1)
