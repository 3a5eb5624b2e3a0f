"""What every ``lash`` command shares: the running command's ``lash.toml``, a core built from
it, the click group class that reports errors as one line, and the common options.

Rule: this module knows no command. ``app`` (the root group), ``turns``, ``sessions`` and
``plugins`` build on it; plugin commands reach it only through
``lash_kernel.plugin.command_host()``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lash_kernel.cli.errors import report_error
from lash_kernel.cli.output import err_console, one_line
from lash_kernel.cli.providers import PROVIDERS
from lash_kernel.config import LashConfig, env_var, load_config
from lash_kernel.errors import ConfigError
from lash_kernel.runtime.stores import store_scheme

if TYPE_CHECKING:
    from rich.console import Console

    from lash_kernel.plugin import PluginHost
    from lash_kernel.runtime.core import LashCore
    from lash_kernel.store.base import Store

__all__ = [
    "CliState",
    "LashGroup",
    "cli_state",
    "config_db",
    "context_core",
    "core_options",
    "current_config",
    "db_option",
    "json_option",
    "plugin_command_host",
    "turn_options",
    "warn_failures",
    "warn_once",
]


# ------------------------------------------------------------------------------- lash.toml


class CliState:
    """Per-invocation state on the root click context (``ctx.obj``).

    Attributes:
        path: the ``--config`` file, or None (then ``./lash.toml`` if present).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._config: LashConfig | None = None

    @property
    def config(self) -> LashConfig:
        """The parsed config, read on first use. Raises ``ConfigError`` when it is invalid."""
        if self._config is None:
            self._config = load_config(self.path)
        return self._config


def cli_state() -> CliState | None:
    """The running ``lash`` command's ``CliState``, or None outside a ``lash`` invocation."""
    ctx = click.get_current_context(silent=True)
    state = ctx.find_root().obj if ctx is not None else None
    return state if isinstance(state, CliState) else None


def current_config() -> LashConfig:
    """The ``lash.toml`` of the running command (``--config``, else ./lash.toml, else defaults).

    Outside a ``lash`` invocation it reads ./lash.toml.
    Raises:
        ConfigError: the file is invalid (the CLI prints it and exits 2).
    """
    state = cli_state()
    return state.config if state is not None else load_config()


def _env_names(env: Mapping[str, str], key: str) -> tuple[str, ...] | None:
    raw = env.get(key)
    if raw is None:
        return None
    return tuple(n.strip() for n in raw.split(",") if n.strip())


def core_options(config: LashConfig, env: Mapping[str, str]) -> dict[str, Any]:
    """``LashCore`` keyword arguments from ``lash.toml`` plus the plugin environment variables.

    ``LASH_PLUGINS`` (comma-separated allow-list; empty loads no installed plugin) replaces
    ``[plugins] enabled``; ``LASH_DISABLE_PLUGINS`` adds to ``disabled``;
    ``LASH_STRICT_PLUGINS=1`` turns strict loading on.

    Args:
        config: the parsed ``lash.toml`` (or defaults).
        env: the environment.
    Returns:
        Keyword arguments for ``LashCore`` (no model client, model or store).
    """
    options = config.core_options()
    allow = _env_names(env, env_var("LASH_PLUGINS"))
    if allow is not None:
        options["allow"] = allow
    options["block"] = (*options["block"], *(_env_names(env, env_var("LASH_DISABLE_PLUGINS")) or ()))
    if env.get(env_var("LASH_STRICT_PLUGINS"), "") not in ("", "0", "false"):
        options["strict"] = True
    return options


def config_db(config: LashConfig) -> Path | str | None:
    """The store ``store`` names in ``lash.toml``: a SQLite file (``Path``), a store URL
    (``str``, kept as written), or None (unset or ``:memory:``)."""
    if not config.store or config.store == ":memory:":
        return None
    return config.store if store_scheme(config.store) is not None else Path(config.store)


def warn_once(errors: Iterable[BaseException | str], err: Console, ctx: click.Context | None = None) -> None:
    """Print one ``warning: ...`` line per error, each at most once per ``lash`` command (a
    command may load the plugin stack more than once: for plugin commands, then its core).

    Args:
        errors: the errors (or messages) to report.
        err: the stderr console.
        ctx: any click context of the command; None uses the current one (outside a command
            nothing is de-duplicated).
    """
    ctx = ctx if ctx is not None else click.get_current_context(silent=True)
    seen: set[str] = ctx.find_root().meta.setdefault("lash.warned", set()) if ctx is not None else set()
    for error in errors:
        line = one_line(str(error))
        if line not in seen:
            seen.add(line)
            err.print(f"warning: {line}", style="dim yellow", markup=False)


def warn_failures(core: LashCore, err: Console) -> None:
    """Print one ``warning: ...`` line per plugin that failed to load on ``core`` (once per command)."""
    warn_once(core.load_report.failed, err)


# ------------------------------------------------------------------------------- cores without a model


class _NoModel:
    """The model client of a core built without a model (``lash tools``, ``lash mcp``)."""

    provider_name = "none"

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        raise ConfigError("no model configured: set provider and model in lash.toml, or use lash run --model")
        yield  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        return None


@contextlib.contextmanager
def context_core(*, store: Store | None = None) -> Iterator[LashCore]:
    """A ``LashCore`` built from the current ``lash.toml`` for commands that need plugins and
    tools but no model (its model client raises if called). Closed on exit.

    Args:
        store: the store to use; default an in-memory one (nothing is written).
    Raises:
        ConfigError: invalid config or plugin tables.
        PluginLoadError: strict loading and a plugin failed.
    """
    from lash_kernel.runtime.core import LashCore  # the runtime loads only when a command needs a core
    from lash_kernel.store.memory import MemoryStore

    config = current_config()
    options = core_options(config, os.environ)
    with LashCore(
        model_client=_NoModel(),
        model=config.model or "none",
        store=store or MemoryStore(),
        **options,
    ) as core:
        warn_failures(core, err_console())
        yield core


@contextlib.contextmanager
def plugin_command_host() -> Iterator[PluginHost]:
    """``context_core()``'s ``PluginHost``: what ``lash_kernel.plugin.command_host()`` yields.

    Raises:
        As ``context_core``.
    """
    with context_core() as core:
        yield core.plugin_host


# ------------------------------------------------------------------------------- click plumbing


class LashGroup(click.Group):
    """A click group whose commands report every error as one ``error: ...`` line.

    ``ConfigError`` exits 2; any other ``LashError``, an ``OSError`` or an exception group of
    those exits 1; any other exception is an internal error (exit 1, traceback with
    ``LASH_DEBUG=1``). click's own exceptions (usage errors, ``Exit``, ``Abort``) pass through.
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Invoke the chosen subcommand, mapping errors as described above."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            report = report_error(exc)
            raise click.exceptions.Exit(report.exit_code) from None


class _StoreTarget(click.ParamType):
    """``--db``'s value: a store URL stays a ``str``, anything else is a SQLite file ``Path``."""

    name = "FILE|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path | str:
        """Return ``value`` as a URL string or a ``Path``."""
        if isinstance(value, Path):
            return value
        text = str(value)
        return text if store_scheme(text) is not None else Path(text)


def db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--db FILE|URL`` option (``LASH_DB``), passed as ``db: Path | str | None``."""
    return click.option(
        "--db",
        type=_StoreTarget(),
        envvar=env_var("LASH_DB"),
        default=None,
        help="SQLite database file, or a store URL (sqlite:///abs/path.db; postgresql://… with "
        "lash-postgres) [env LASH_DB; default $XDG_DATA_HOME/lash/lash.db, "
        "i.e. ~/.local/share/lash/lash.db].",
    )(f)


def json_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``--json`` flag, passed as ``as_json: bool``; ``help_text`` describes the shape."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def turn_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options shared by ``run`` and ``chat``: provider, base URL, model, store, session,
    limits and system prompt."""
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option(
            "--provider",
            type=click.Choice(list(PROVIDERS)),
            default=None,
            help="Model provider [default: openrouter when OPENROUTER_API_KEY is set and no "
            "--base-url is given, else openai]. Keys come from OPENAI_API_KEY, ANTHROPIC_API_KEY "
            "or OPENROUTER_API_KEY.",
        ),
        click.option(
            "--base-url",
            default=None,
            metavar="URL",
            help="API root of a compatible server, e.g. http://127.0.0.1:8080/v1 (llama.cpp, "
            "vLLM, Ollama). No key is required then.",
        ),
        click.option(
            "--model",
            envvar=env_var("LASH_MODEL"),
            default=None,
            help="Model id [env LASH_MODEL; required unless --base-url is given, then 'default'].",
        ),
        db_option,
        click.option("--session", "session_id", default=None, metavar="ID",
                     help="Continue session ID (created if it does not exist) [default: a new session]."),
        click.option("-c", "--continue", "continue_", is_flag=True,
                     help="Continue the most recently updated session (a top-level one, not a child)."),
        click.option("--max-tokens", type=click.IntRange(min=1), default=None,
                     help="Output-token cap per model call."),
        click.option("--max-turns", type=click.IntRange(min=1), default=None,
                     help="Model calls allowed in one turn [default: 16]."),
        click.option("--system", default=None, metavar="TEXT", help="System prompt."),
    ]
    for option in reversed(options):
        f = option(f)
    return f
