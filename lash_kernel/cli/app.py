"""The ``lash`` command line (click + rich): the root group, its commands, and ``main``.

Modules of this package, by role (none imports another's private names; no import cycle):

- ``app``: the root group (loads plugin commands through ``lash_register_commands``) and ``main``;
- ``context``: the running command's ``lash.toml``, ``context_core``, the error-reporting
  group class and the shared options;
- ``turns``: ``lash run`` and ``lash chat``; ``sessions``: ``lash sessions``, ``lash usage``;
- ``plugins``: ``lash plugins`` and ``lash tools`` (added by the built-in ``lash.commands`` plugin);
- ``output``: what is printed; ``errors``: exception to one ``error: ...`` line;
  ``providers``: the provider table and the store.

Output contract:

- stdout carries data only: streamed assistant prose, tables, or exactly one JSON object with
  ``--json``. Tool calls, retries, warnings and the one-line summary go to stderr.
- Exit codes: 0 when the model answered (``Finished``, or ``Stopped`` with reason
  ``max_output_tokens``); 1 for any other outcome and for runtime errors; 2 for configuration
  errors (no key, unknown provider, no model, bad ``lash.toml``, bad ``--base-url``), with a
  message saying what to set. Every error is one line, ``error: ...``, never a traceback
  (``LASH_DEBUG=1`` adds one).
- API keys are read from the environment and never printed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from lash_kernel.cli.context import CliState, LashGroup, core_options, warn_once
from lash_kernel.cli.errors import report_error
from lash_kernel.cli.output import err_console
from lash_kernel.cli.sessions import sessions, usage
from lash_kernel.cli.turns import chat, run
from lash_kernel.cli.worker import submit, worker
from lash_kernel.config import LashConfig, env_var, load_config
from lash_kernel.errors import ConfigError, LashError
from lash_kernel.runtime.hooks import KernelHooks
from lash_kernel.runtime.loader import load_plugins, make_plugin_manager

__all__ = ["RootGroup", "cli", "main"]


class RootGroup(LashGroup):
    """The ``lash`` group: adds installed plugins' commands (``lash_register_commands``) the
    first time a command is looked up or listed, honouring the plugin selection of
    ``lash.toml`` and the ``LASH_*PLUGINS`` variables. Errors raised outside a command (while
    parsing or listing commands) are reported as one line too."""

    _plugins_loaded = False

    def _load_plugin_commands(self, ctx: click.Context) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        try:
            config = load_config(ctx.params.get("config"))
        except ConfigError:
            config = LashConfig()  # the command itself reports the bad file
        options = core_options(config, os.environ)
        pm = make_plugin_manager()
        try:
            report = load_plugins(pm, allow=options["allow"], block=options["block"])
        except LashError as exc:
            warn_once([exc], err_console(), ctx)
            return
        hooks = KernelHooks(pm)
        problems = (*report.failed, *hooks.register_commands(self))
        if problems:  # a console (rich) only when there is something to print
            warn_once(problems, err_console(), ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in and plugin commands, sorted."""
        self._load_plugin_commands(ctx)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, loading plugin commands when it is not a built-in one or
        is a group (plugins may add sub-commands to built-in groups: ``lash sessions compact``)."""
        command = super().get_command(ctx, cmd_name)
        if command is None or isinstance(command, click.Group):
            self._load_plugin_commands(ctx)
            command = super().get_command(ctx, cmd_name)
        return command

    def main(self, args: Sequence[str] | None = None, *pargs: Any, **kwargs: Any) -> Any:
        """``click.Group.main`` with a last guard: an exception that escapes click (not a
        click exception) is printed as one ``error: ...`` line and exits 1."""
        try:
            return super().main(args, *pargs, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            report = report_error(exc)
            sys.exit(report.exit_code)


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lash-kernel", prog_name="lash")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=env_var("LASH_CONFIG"),
    default=None,
    is_eager=True,
    help="lash.toml to use [env LASH_CONFIG; default ./lash.toml when present]. It sets the "
    "provider, model, store and plugin stack.",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """lash: a durable agent runtime. Every turn is committed to a SQLite session store.

    \b
    Examples:
      lash run "Summarise README.md in one line" --model gpt-4o-mini
      lash run --base-url http://127.0.0.1:8080/v1 "Say hello"
      lash chat --session my-task
      lash sessions list
      lash usage
      lash plugins
      lash tools list
    """
    ctx.obj = CliState(config)


cli.add_command(run)
cli.add_command(chat)
cli.add_command(sessions)
cli.add_command(usage)
cli.add_command(worker)
cli.add_command(submit)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``lash``); also ``python -m lash_kernel``.

    Args:
        argv: arguments without the program name, or None for ``sys.argv[1:]``.
    """
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="lash")
