"""The ``lash`` command line (click + rich): run turns, chat, inspect sessions and usage.

Rule: the CLI is a host like any other. It builds a provider (``build_provider``), opens a store
(``open_store``), wraps them in a ``LashCore`` and drives turns through ``Session.turn`` and
``Turn.stream``; it never reaches into the driver or the machine.

Output contract:

- stdout carries data only: streamed assistant prose, tables, or exactly one JSON object with
  ``--json``. Tool calls, retries, warnings and the one-line summary go to stderr.
- Exit codes: 0 when the model answered (``Finished``, or ``Stopped`` with reason
  ``max_output_tokens``); 1 for any other outcome and for runtime errors (``error: ...`` on one
  line, never a traceback for a ``LashError``); 2 for configuration errors (no key, unknown
  provider, no model), with a message saying what to set.
- API keys are read from the environment and never printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import attrs
import click
from rich.console import Console
from rich.table import Table

from lash_kernel.activity import (
    TurnActivity,
)
from lash_kernel.cli.output import (
    _answered,
    _err_console,
    _fail,
    _LiveView,
    _message_json,
    _one_line,
    _out_console,
    _outcome_dict,
    _outcome_label,
    _session_json,
    _stop_error,
    _summary,
    _usage_table,
    _when,
    turn_json,
)
from lash_kernel.cli.providers import (
    build_provider,
    check_provider,
    default_db_path,
    default_provider,
    open_store,
    ProviderChoice,
    PROVIDERS,
)
from lash_kernel.config import LashConfig, load_config
from lash_kernel.runtime.core import LashCore
from lash_kernel.errors import ConfigError, LashError
from lash_kernel.runtime.hooks import KernelHooks
from lash_kernel.runtime.loader import load_plugins, make_plugin_manager
from lash_kernel.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Stopped
from lash_kernel.runtime.session import Session, Turn, TurnResult
from lash_kernel.store.base import PendingInput, Store, TurnRecord
from lash_kernel.store.memory import MemoryStore
from lash_kernel.usage import UsageLedger

__all__ = [
    "PROVIDERS",
    "ProviderChoice",
    "build_provider",
    "check_provider",
    "cli",
    "context_core",
    "core_options",
    "current_config",
    "default_db_path",
    "default_provider",
    "main",
    "open_store",
    "turn_json",
]


class _CtrlC:
    """SIGINT policy: during a turn the first Ctrl-C cancels the turn (it commits as
    ``Stopped(cancelled)``); outside a turn, or a second time, it raises ``KeyboardInterrupt``."""

    def __init__(self) -> None:
        self._turn: Turn | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cancelling = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Install the handler for the duration (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextlib.contextmanager
    def cancels(self, turn: Turn) -> Iterator[None]:
        """While active, Ctrl-C cancels ``turn``. Call from inside the event loop."""
        self._turn, self._loop, self._cancelling = turn, asyncio.get_running_loop(), False
        try:
            yield
        finally:
            self._turn = self._loop = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        turn, loop = self._turn, self._loop
        if turn is not None and loop is not None and not self._cancelling:
            self._cancelling = True
            loop.call_soon_threadsafe(turn.cancel, "cancelled with Ctrl-C")
            return
        raise KeyboardInterrupt


async def _drive(
    session: Session,
    prompt: str,
    *,
    max_turns: int | None,
    max_tokens: int | None,
    view: Callable[[TurnActivity], None],
    ctrl_c: _CtrlC,
) -> TurnResult:
    """Run one turn on ``session``, feeding each activity to ``view``; return its result."""
    turn = session.turn(prompt, max_turns=max_turns, max_output_tokens=max_tokens)
    with ctrl_c.cancels(turn):
        async with contextlib.aclosing(turn.stream()) as stream:
            async for activity in stream:
                view(activity)
    return turn.result


@attrs.frozen(kw_only=True)
class _TurnOptions:
    """Options shared by ``run`` and ``chat``, resolved against the environment."""

    provider: str
    base_url: str | None
    model: str
    db: Path
    session: str | None
    max_tokens: int | None
    max_turns: int | None
    system: str | None
    config: LashConfig = LashConfig()


def _resolve(
    *,
    provider: str | None,
    base_url: str | None,
    model: str | None,
    db: Path | None,
    session: str | None,
    max_tokens: int | None,
    max_turns: int | None,
    system: str | None,
) -> _TurnOptions:
    """Flags win over ``lash.toml``, which wins over the environment's defaults."""
    env = os.environ
    config = current_config()
    base_url = base_url or config.base_url
    name = provider or config.provider or default_provider(base_url, env)
    check_provider(name, base_url, env)  # config errors before anything is opened
    model = model or config.model
    if not model:
        if not base_url:
            raise ConfigError("pass --model, set LASH_MODEL, or set model in lash.toml (for example gpt-4o-mini)")
        model = "default"
    return _TurnOptions(
        provider=name,
        base_url=base_url or None,
        model=model,
        db=db or _config_db(config) or default_db_path(env),
        session=session or None,
        max_tokens=max_tokens or config.max_output_tokens,
        max_turns=max_turns or config.max_turns,
        system=system if system is not None else config.prompt,
        config=config,
    )


@contextlib.asynccontextmanager
async def _core(opts: _TurnOptions, err: Console) -> AsyncIterator[LashCore]:
    """Provider + store + core for one command; everything is closed on exit."""
    client = build_provider(opts.provider, opts.base_url, os.environ)
    try:
        store = open_store(opts.db, create=True)
        try:
            options = core_options(opts.config, os.environ) | {"prompt": opts.system}
            with LashCore(model_client=client, model=opts.model, store=store, **options) as core:
                _warn_failures(core, err)
                yield core
        finally:
            store.close()
    finally:
        await client.aclose()


def _warn_failures(core: LashCore, err: Console) -> None:
    for failure in core.load_report.failed:
        err.print(f"warning: {_one_line(str(failure))}", style="dim yellow", markup=False)


# ------------------------------------------------------------------------------- lash.toml


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
    allow = _env_names(env, "LASH_PLUGINS")
    if allow is not None:
        options["allow"] = allow
    options["block"] = (*options["block"], *(_env_names(env, "LASH_DISABLE_PLUGINS") or ()))
    if env.get("LASH_STRICT_PLUGINS", "") not in ("", "0", "false"):
        options["strict"] = True
    return options


def _config_db(config: LashConfig) -> Path | None:
    if not config.store or config.store == ":memory:":
        return None
    return Path(config.store)


class _CliState:
    """Per-invocation state on the root click context: the ``--config`` path, loaded lazily."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._config: LashConfig | None = None

    @property
    def config(self) -> LashConfig:
        if self._config is None:
            self._config = load_config(self.path)
        return self._config


def current_config() -> LashConfig:
    """The ``lash.toml`` of the running command (``--config``, else ./lash.toml, else defaults).

    For plugin commands. Outside a ``lash`` invocation it reads ./lash.toml.
    Raises:
        ConfigError: the file is invalid (the CLI prints it and exits 2).
    """
    ctx = click.get_current_context(silent=True)
    state = ctx.find_root().obj if ctx is not None else None
    if isinstance(state, _CliState):
        return state.config
    return load_config()


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
    config = current_config()
    options = core_options(config, os.environ)
    with LashCore(
        model_client=_NoModel(),  # type: ignore[arg-type]
        model=config.model or "none",
        store=store or MemoryStore(),
        **options,
    ) as core:
        _warn_failures(core, _err_console())
        yield core


# ------------------------------------------------------------------------------- click plumbing


class _LashGroup(click.Group):
    """Maps ``LashError`` to a one-line ``error: ...`` and an exit code (2 for ``ConfigError``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            _fail(str(exc), 2)
        except LashError as exc:
            _fail(str(exc), 1)


def _db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="LASH_DB",
        default=None,
        help="SQLite database file [env LASH_DB; default $XDG_DATA_HOME/lash/lash.db, "
        "i.e. ~/.local/share/lash/lash.db].",
    )(f)


def _json_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def _turn_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
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
            envvar="LASH_MODEL",
            default=None,
            help="Model id [env LASH_MODEL; required unless --base-url is given, then 'default'].",
        ),
        _db_option,
        click.option("--session", "session_id", default=None, metavar="ID",
                     help="Continue session ID (created if it does not exist) [default: a new session]."),
        click.option("--max-tokens", type=click.IntRange(min=1), default=None,
                     help="Output-token cap per model call."),
        click.option("--max-turns", type=click.IntRange(min=1), default=None,
                     help="Model calls allowed in one turn [default: 16]."),
        click.option("--system", default=None, metavar="TEXT", help="System prompt."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


class _RootGroup(_LashGroup):
    """The ``lash`` group: adds installed plugins' commands (``lash_register_commands``) the
    first time a command is looked up or listed, honouring the plugin selection of
    ``lash.toml`` and the ``LASH_*PLUGINS`` variables."""

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
            _err_console().print(f"warning: {_one_line(str(exc))}", style="dim yellow", markup=False)
            return
        hooks = KernelHooks(pm)
        for error in (*report.failed, *hooks.register_commands(self)):
            _err_console().print(f"warning: {_one_line(str(error))}", style="dim yellow", markup=False)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands(ctx)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._load_plugin_commands(ctx)
            command = super().get_command(ctx, cmd_name)
        return command


@click.group(cls=_RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lash-kernel", prog_name="lash")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="LASH_CONFIG",
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
    ctx.obj = _CliState(config)


# ------------------------------------------------------------------------------- run


@cli.command()
@click.argument("prompt")
@_turn_options
@_json_option("Print exactly one JSON object: {session_id, turn_id, outcome, text, usage, tool_calls}.")
def run(
    prompt: str,
    provider: str | None,
    base_url: str | None,
    model: str | None,
    db: Path | None,
    session_id: str | None,
    max_tokens: int | None,
    max_turns: int | None,
    system: str | None,
    as_json: bool,
) -> None:
    """Run one turn: send PROMPT, stream the answer, commit the turn.

    Prose streams to stdout; tool calls, retries and a summary line (outcome, tokens, session
    id) go to stderr. Exit status 0 when the model answered (also when it hit --max-tokens),
    1 when the turn stopped for another reason, 2 for configuration errors.

    \b
    Examples:
      lash run "What is 2 + 2?" --model gpt-4o-mini
      lash run --base-url http://127.0.0.1:8080/v1 --max-tokens 64 "Say hello"
      lash run --session 3f2a... "And in French?"
      lash run --json "Say hello" | jq .usage
    """
    opts = _resolve(
        provider=provider,
        base_url=base_url,
        model=model,
        db=db,
        session=session_id,
        max_tokens=max_tokens,
        max_turns=max_turns,
        system=system,
    )
    err = _err_console()
    view = _LiveView(err, prose=not as_json, details=not as_json)
    ctrl_c = _CtrlC()

    async def go() -> TurnResult:
        async with _core(opts, err) as core:
            try:
                with core.session(opts.session) as session:
                    return await _drive(
                        session,
                        prompt,
                        max_turns=opts.max_turns,
                        max_tokens=opts.max_tokens,
                        view=view,
                        ctrl_c=ctrl_c,
                    )
            finally:
                view.end()

    with ctrl_c.installed():
        result = anyio.run(go, backend="asyncio")
    if as_json:
        click.echo(json.dumps(turn_json(result), ensure_ascii=False))
    else:
        err.print(_summary(result), style="dim", markup=False)
    if not _answered(result.outcome):
        _fail(_stop_error(result.outcome), 1)


# ------------------------------------------------------------------------------- chat


@cli.command()
@_turn_options
def chat(
    provider: str | None,
    base_url: str | None,
    model: str | None,
    db: Path | None,
    session_id: str | None,
    max_tokens: int | None,
    max_turns: int | None,
    system: str | None,
) -> None:
    """Chat interactively: each line you type is one turn, streamed live.

    \b
    Commands:
      /usage   this session's token usage by source and model
      /exit    quit (so do Ctrl-D and Ctrl-C at the prompt)
    Ctrl-C while the model is answering cancels that turn (it is still committed).

    \b
    Examples:
      lash chat --model gpt-4o-mini
      lash chat --base-url http://127.0.0.1:8080/v1 --session my-task
    """
    opts = _resolve(
        provider=provider,
        base_url=base_url,
        model=model,
        db=db,
        session=session_id,
        max_tokens=max_tokens,
        max_turns=max_turns,
        system=system,
    )
    err = _err_console()
    ctrl_c = _CtrlC()

    async def go() -> None:
        async with _core(opts, err) as core:
            session = core.session(opts.session)
            err.print(f"lash chat · session {session.id} · /usage, /exit", style="dim", markup=False)
            while True:
                try:
                    line = click.prompt("", prompt_suffix="> ", default="", show_default=False, err=True)
                except click.Abort:
                    err.print()
                    return
                text = line.strip()
                if not text:
                    continue
                if text in ("/exit", "/quit"):
                    return
                if text == "/usage":
                    _out_console().print(_usage_table(session.usage_report(), f"usage: session {session.id}"))
                    continue
                if text.startswith("/"):
                    err.print(f"unknown command {text.split()[0]}; try /usage or /exit", style="yellow", markup=False)
                    continue
                view = _LiveView(err)
                try:
                    result = await _drive(
                        session, text, max_turns=opts.max_turns, max_tokens=opts.max_tokens, view=view, ctrl_c=ctrl_c
                    )
                except LashError as exc:
                    view.end()
                    err.print(f"error: {_one_line(str(exc))}", style="red", markup=False)
                    session = core.session(session.id)  # reload the head from the store
                    continue
                view.end()
                err.print(_summary(result), style="dim", markup=False)
                if not _answered(result.outcome):
                    err.print(f"error: {_one_line(_stop_error(result.outcome))}", style="red", markup=False)

    with ctrl_c.installed():
        anyio.run(go, backend="asyncio")


# ------------------------------------------------------------------------------- sessions


@cli.group(cls=_LashGroup)
def sessions() -> None:
    """List and inspect stored sessions.

    \b
    Examples:
      lash sessions list
      lash sessions show 3f2a... --json
    """


@contextlib.contextmanager
def _reading(db: Path | None) -> Iterator[Store]:
    store = open_store(db or _config_db(current_config()) or default_db_path(os.environ), create=False)
    try:
        yield store
    finally:
        store.close()


@sessions.command("list")
@_db_option
@_json_option("Print a JSON array of {session_id, turns, created_at, updated_at, pending_inputs}.")
def sessions_list(db: Path | None, as_json: bool) -> None:
    """List sessions, most recently updated first.

    Shows each session's id, committed turns, last update and pending (uncommitted) inputs.

    \b
    Examples:
      lash sessions list
      lash sessions list --json | jq '.[0].session_id'
    """
    with _reading(db) as store:
        rows = [(info, len(store.pending_inputs(info.session_id))) for info in store.list_sessions()]
    if as_json:
        click.echo(json.dumps([_session_json(info, pending) for info, pending in rows], ensure_ascii=False))
        return
    if not rows:
        _err_console().print("no sessions", style="dim")
        return
    table = Table()
    table.add_column("session", overflow="fold")
    table.add_column("turns", justify="right")
    table.add_column("updated")
    table.add_column("pending", justify="right")
    for info, pending in rows:
        table.add_row(info.session_id, str(info.head_revision), _when(info.updated_at), str(pending))
    _out_console().print(table)


def _indented(text: str) -> str:
    return text.replace("\n", "\n    ")


def _message_lines(message: Message) -> Iterator[str]:
    for part in message.parts:
        if isinstance(part, TextPart) and part.text:
            yield f"  {message.role}: {_indented(part.text)}"
        elif isinstance(part, ReasoningPart) and part.text:
            yield f"  {message.role} (reasoning): {_indented(part.text)}"
        elif isinstance(part, ToolCallPart):
            yield f"  {message.role} → {part.name}({part.arguments}) [{part.id}]"
        elif isinstance(part, ToolResultPart):
            mark = "✗" if part.is_error else "←"
            yield f"  tool {mark} {part.name} [{part.call_id}]: {_indented(part.output)}"


@sessions.command("show")
@click.argument("session_id", metavar="ID")
@_db_option
@_json_option("Print one JSON object: {session_id, turns: [{turn_id, outcome, messages}], pending_inputs}.")
def sessions_show(session_id: str, db: Path | None, as_json: bool) -> None:
    """Show session ID: each committed turn with its outcome and messages, then pending inputs.

    Pending inputs are user inputs that were admitted but whose turn never committed (for
    example after a crash).

    \b
    Examples:
      lash sessions show 3f2a...
      lash sessions show 3f2a... --json | jq '.turns | length'
    """
    with _reading(db) as store:
        info = store.get_session(session_id)
        turns: list[tuple[TurnRecord, tuple[Message, ...]]] = [
            (rec, tuple(n.payload for n in store.load_nodes(session_id, rec.node_ids)))
            for rec in store.list_turns(session_id)
        ]
        pending: list[PendingInput] = store.pending_inputs(session_id)
    if as_json:
        obj = {
            "session_id": info.session_id,
            "head_revision": info.head_revision,
            "created_at": info.created_at,
            "updated_at": info.updated_at,
            "turns": [
                {
                    "turn_id": rec.turn_id,
                    "revision": rec.revision,
                    "committed_at": rec.committed_at,
                    "outcome": _outcome_dict(rec.outcome),
                    "messages": [_message_json(m) for m in messages],
                }
                for rec, messages in turns
            ],
            "pending_inputs": [
                {"turn_id": p.turn_id, "created_at": p.created_at, "message": _message_json(p.message)}
                for p in pending
            ],
        }
        click.echo(json.dumps(obj, ensure_ascii=False))
        return
    click.echo(
        f"session {info.session_id} · {info.head_revision} turn(s) · created {_when(info.created_at)}"
        f" · updated {_when(info.updated_at)}"
    )
    for rec, messages in turns:
        outcome = rec.outcome
        label = _outcome_label(outcome)
        if isinstance(outcome, Stopped) and outcome.detail:
            label += f": {_one_line(outcome.detail)}"
        click.echo(f"turn {rec.revision} · {rec.turn_id} · {label} · {_when(rec.committed_at)}")
        for message in messages:
            for line in _message_lines(message):
                click.echo(line)
    if pending:
        click.echo(f"pending inputs ({len(pending)}, not committed):")
        for p in pending:
            click.echo(f"  turn {p.turn_id} · {_when(p.created_at)} · {p.message.role}: {_indented(p.message.text)}")


# ------------------------------------------------------------------------------- usage


@cli.command()
@click.argument("session_id", metavar="[SESSION]", required=False)
@_db_option
@_json_option("Print the usage report as JSON: {total, by_source, by_model, by_source_model}.")
def usage(session_id: str | None, db: Path | None, as_json: bool) -> None:
    """Show token usage by source and model: the five buckets and the number of model calls.

    Buckets: input (uncached), output (reasoning included), cache read, cache write, and
    reasoning. Without SESSION, every session in the database is summed.

    \b
    Examples:
      lash usage
      lash usage 3f2a... --json | jq .total
    """
    with _reading(db) as store:
        if session_id is not None:
            ledger = store.usage_ledger(session_id)
            title = f"usage: session {session_id}"
        else:
            infos = store.list_sessions()
            ledger = UsageLedger()
            for info in infos:
                ledger = ledger + store.usage_ledger(info.session_id)
            title = f"usage: all sessions ({len(infos)})"
    report = ledger.report()
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False))
        return
    _out_console().print(_usage_table(report, title))


# ------------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``lash``); also ``python -m lash_kernel``.

    Args:
        argv: arguments without the program name, or None for ``sys.argv[1:]``.
    """
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="lash")
