"""``lash sessions compact ID``: summarise a stored session's current frame into a new frame.

Rule: imports only ``lash_kernel.plugin`` (and click) from the kernel side, like any plugin;
the core comes from ``command_host`` built from the running command's ``lash.toml``.
"""

from __future__ import annotations

import click

__all__ = ["compact_command"]


@click.command("compact")
@click.argument("session_id", metavar="ID")
@click.option("--instructions", "-i", default=None, metavar="TEXT", help="What the summary should focus on.")
def compact_command(session_id: str, instructions: str | None) -> None:
    """Compact session ID now: summarise its current frame (but the last exchange) into a new
    agent frame with lash-compaction. The full history stays in the store.

    \b
    Examples:
      lash sessions compact 3f2a... --instructions "keep the file names"
    """
    raise click.ClickException("not implemented yet")
