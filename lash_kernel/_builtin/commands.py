"""Built-in plugin ``lash.commands``: the ``lash plugins`` and ``lash tools`` commands.

The click commands live in ``lash_kernel.cli``; they are imported when the CLI asks for
commands, so a host that never runs the CLI never loads click code through this plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lash_kernel.hookspecs import hookimpl

if TYPE_CHECKING:
    import click

__all__ = ["lash_register_commands"]


@hookimpl
def lash_register_commands(cli: click.Group) -> None:
    """Add ``plugins`` and ``tools`` to the ``lash`` group."""
    from lash_kernel.cli.plugins import plugins_command, tools_group

    cli.add_command(plugins_command)
    cli.add_command(tools_group)
