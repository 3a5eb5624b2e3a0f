"""``lash run`` and ``lash chat``: drive turns through ``Session.turn`` and ``Turn.stream``.

Rule: the CLI is a host like any other. It builds a provider (``build_provider``), opens a store
(``open_store``), wraps them in a ``LashCore`` and drives turns; it never reaches into the driver
or the machine. Text from argv and stdin is made valid Unicode (``valid_text``) before it
becomes a turn; every error is one ``error: ...`` line (``lash chat`` then reads the next line).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import attrs
import click

from lash_kernel.cli.context import (
    config_db,
    core_options,
    current_config,
    json_option,
    turn_options,
    warn_failures,
)
from lash_kernel.cli.errors import report_error
from lash_kernel.cli.output import (
    LiveView,
    answered,
    cancelled,
    echo_json,
    err_console,
    fail,
    has_value,
    one_line,
    out_console,
    stop_error,
    summary,
    turn_json,
    usage_table,
)
from lash_kernel.cli.providers import (
    build_provider,
    check_base_url,
    check_provider,
    default_db_path,
    default_provider,
    open_store,
    resolve_base_url,
)
from lash_kernel.config import LashConfig
from lash_kernel.errors import ConfigError
from lash_kernel.text import valid_text

if TYPE_CHECKING:
    import asyncio

    from rich.console import Console

    from lash_kernel.activity import TurnActivity
    from lash_kernel.runtime.core import LashCore
    from lash_kernel.runtime.session import Session, Turn, TurnResult
    from lash_kernel.store.base import Store

__all__ = ["CHAT_HELP", "chat", "latest_session", "never_answered", "read_prompt", "run"]


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
        import asyncio

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
    output_schema: dict[str, Any] | None = None,
) -> TurnResult:
    """Run one turn on ``session``, feeding each activity to ``view``; return its result.
    With ``output_schema`` (a JSON Schema), the turn ends with a typed value."""
    turn = session.turn(
        valid_text(prompt), max_turns=max_turns, max_output_tokens=max_tokens, output_schema=output_schema
    )
    waiting = getattr(view, "waiting", None)
    if waiting is not None:
        waiting()
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
    db: Path | str
    session: str | None
    max_tokens: int | None
    max_turns: int | None
    system: str | None
    continue_: bool = False
    config: LashConfig = LashConfig()


def _resolve(
    *,
    provider: str | None,
    base_url: str | None,
    model: str | None,
    db: Path | str | None,
    session: str | None,
    max_tokens: int | None,
    max_turns: int | None,
    system: str | None,
    continue_: bool = False,
) -> _TurnOptions:
    """Flags win over ``lash.toml``, which wins over the environment (the base URL:
    ``--base-url`` > ``base_url`` > ``OPENAI_BASE_URL`` and co. > the provider's endpoint).
    Every configuration error is raised here, before anything is opened or sent."""
    env = os.environ
    config = current_config()
    if base_url is not None:
        check_base_url(base_url)  # lash.toml's base_url was checked when it was read
    name = provider or config.provider or default_provider(base_url or config.base_url, env)
    base_url, _ = resolve_base_url(name, base_url, config.base_url, env, config_source=config.source)
    check_provider(name, base_url, env)
    model = model or config.model
    if not model:
        if not base_url:
            raise ConfigError("pass --model, set LASH_MODEL, or set model in lash.toml (for example gpt-4o-mini)")
        model = "default"
    return _TurnOptions(
        provider=name,
        base_url=base_url or None,
        model=model,
        db=db or config_db(config) or default_db_path(env),
        session=valid_text(session) if session else None,
        max_tokens=max_tokens or config.max_output_tokens,
        max_turns=max_turns or config.max_turns,
        system=valid_text(system) if system is not None else config.prompt,
        continue_=continue_,
        config=config,
    )


@contextlib.asynccontextmanager
async def _core(opts: _TurnOptions, err: Console) -> AsyncIterator[LashCore]:
    """Provider + store + core for one command; everything is closed on exit."""
    from lash_kernel.runtime.core import LashCore  # the runtime loads only when a turn runs

    client = build_provider(opts.provider, opts.base_url, os.environ)
    try:
        # a store URL is opened by the core, once its plugins have declared their schemes
        store: Store | str = opts.db if isinstance(opts.db, str) else open_store(opts.db, create=True)
        try:
            options = core_options(opts.config, os.environ) | {"prompt": opts.system}
            with LashCore(model_client=client, model=opts.model, store=store, **options) as core:
                warn_failures(core, err)
                yield core
        finally:
            if not isinstance(store, str):
                store.close()
    finally:
        await client.aclose()


# ------------------------------------------------------------------------------- run


def _load_output_schema(path: Path | None) -> dict[str, Any] | None:
    """The JSON Schema in ``path`` (None without one), checked as ``Session.turn`` checks it.

    Raises:
        ConfigError: the file cannot be read, is not JSON, or is not a valid JSON Schema.
    """
    if path is None:
        return None
    where = f"--output-schema {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text: {exc}") from exc
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: not valid JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise ConfigError(f"{where}: a JSON Schema must be a JSON object, got {type(schema).__name__}")
    from lash_kernel._tool_schema import output_schema as check_output_schema  # jsonschema

    check_output_schema(schema, where)
    return schema


def read_prompt(argument: str | None) -> str:
    """The turn's prompt, as ``llm`` builds it: ``-`` reads all of stdin; otherwise text piped
    on stdin (stdin not a terminal) comes first and the argument follows after one space.

    Raises:
        click.UsageError: no prompt at all (exit 2).
    """
    stdin = sys.stdin
    piped = ""
    if stdin is not None and (argument == "-" or not stdin.isatty()):
        piped = valid_text(stdin.read())
    if argument == "-":
        argument = None
    prompt = " ".join(bit for bit in (piped, argument or "") if bit)
    if not prompt.strip():
        raise click.UsageError("no prompt: pass PROMPT, or pipe it on stdin (echo 'Say hi' | lash run)")
    return prompt


def latest_session(core: LashCore) -> str | None:
    """The most recently updated top-level session of ``core``'s store, or None."""
    return next((s.session_id for s in core.store.list_sessions() if s.parent_session_id is None), None)


def never_answered(store: Store, session_id: str) -> bool:
    """True when no model ever answered in ``session_id``: it has no child sessions, no model
    call in its usage ledger, and every committed turn (there may be none) stopped for a reason
    other than ``cancelled`` (a turn the user cancelled may have streamed text: it is kept).

    The CLI deletes such a session when it created it itself (``lash run`` without
    ``--session`` / ``-c``, or ``lash chat`` the same way), so a run against a dead server
    leaves nothing behind.
    """
    from lash_kernel.outcomes import Stopped

    if store.list_children(session_id):
        return False
    if any(calls for _key, _usage, calls in store.usage_ledger(session_id).entries):
        return False
    return all(
        isinstance(rec.outcome, Stopped) and rec.outcome.reason != "cancelled" for rec in store.list_turns(session_id)
    )


def _discard_unanswered(core: LashCore, session_id: str, err: Console, *, quiet: bool = False) -> bool:
    """Delete ``session_id`` (created by this command) when ``never_answered``; say so on
    stderr unless ``quiet``. Returns whether it was deleted."""
    if not never_answered(core.store, session_id):
        return False
    core.store.delete_session(session_id)
    if not quiet:
        err.print(f"session {session_id} not kept: the model never answered", style="dim", markup=False)
    return True


def _session_to_open(core: LashCore, opts: _TurnOptions, err: Console) -> str | None:
    """``--session``, else with ``-c`` the latest session, else None (a new one)."""
    if opts.session or not opts.continue_:
        return opts.session
    found = latest_session(core)
    if found is None:
        err.print("no session to continue; starting a new one", style="dim", markup=False)
    return found


@click.command()
@click.argument("prompt", required=False)
@turn_options
@click.option(
    "--output-schema", "output_schema_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    metavar="FILE",
    help="A JSON Schema file: the model must answer with a value matching it (through the final_result "
    "tool); the value is printed as JSON on stdout.",
)
@json_option(
    "Print exactly one JSON object: {session_id, turn_id, outcome, text, usage, tool_calls} "
    "(plus value with --output-schema)."
)
def run(
    prompt: str | None,
    provider: str | None,
    base_url: str | None,
    model: str | None,
    db: Path | str | None,
    session_id: str | None,
    continue_: bool,
    max_tokens: int | None,
    max_turns: int | None,
    system: str | None,
    output_schema_file: Path | None,
    as_json: bool,
) -> None:
    """Run one turn: send PROMPT, stream the answer, commit the turn.

    PROMPT "-" (or none) reads the prompt from stdin; text piped on stdin with a PROMPT is
    sent first, then PROMPT after a space (as llm does). -c continues the latest session.
    Ctrl-C cancels the turn: it is committed as cancelled, "cancelled" and the usage spent
    are printed on stderr, and the exit status is 130. A new session in which the model never
    answered (the server is down, say) is not kept; one named with --session or -c is.

    Prose streams to stdout; tool calls, retries and a summary line (outcome, tokens, session
    id) go to stderr. With --output-schema FILE, stdout holds only the typed value, as one
    line of JSON. Exit status 0 when the model answered (also when it hit --max-tokens),
    1 when the turn stopped for another reason or failed (e.g. no_final_value: the model
    answered in prose twice instead of giving a value), 2 for configuration errors. Errors
    are one line: "error: ..." (set LASH_DEBUG=1 for a traceback).

    \b
    Examples:
      lash run "What is 2 + 2?" --model gpt-4o-mini
      lash run --base-url http://127.0.0.1:8080/v1 --max-tokens 64 "Say hello"
      lash run --session 3f2a... "And in French?"
      lash run -c "And in French?"
      cat notes.txt | lash run "Summarise this"
      lash run - < question.txt
      lash run --json "Say hello" | jq .usage
      lash run --output-schema city.schema.json "The largest city in Norway?" | jq .name
    """
    schema = _load_output_schema(output_schema_file)
    opts = _resolve(
        provider=provider,
        base_url=base_url,
        model=model,
        db=db,
        session=session_id,
        max_tokens=max_tokens,
        max_turns=max_turns,
        system=system,
        continue_=continue_,
    )
    prompt = read_prompt(prompt)
    err = err_console()
    view = LiveView(err, prose=not as_json and schema is None, details=not as_json)
    ctrl_c = _CtrlC()
    created: list[bool] = []

    async def go() -> TurnResult:
        async with _core(opts, err) as core:
            try:
                opened = _session_to_open(core, opts, err)
                with core.session(opened) as session:
                    result = await _drive(
                        session,
                        prompt,
                        max_turns=opts.max_turns,
                        max_tokens=opts.max_tokens,
                        view=view,
                        ctrl_c=ctrl_c,
                        output_schema=schema,
                    )
            finally:
                view.end()
            if opened is None and never_answered(core.store, result.session_id):
                core.store.delete_session(result.session_id)  # a new session the model never answered in
                created.append(False)
            return result

    import anyio

    with ctrl_c.installed():
        result = anyio.run(go, backend="asyncio")
    discarded = created == [False]
    if as_json:
        echo_json(turn_json(result, with_value=schema is not None) | ({"session_kept": False} if discarded else {}))
    else:
        if schema is not None and has_value(result.outcome):
            echo_json(result.value)
        err.print(valid_text(summary(result)), style="dim", markup=False)
        if discarded:
            err.print(f"session {result.session_id} not kept: the model never answered", style="dim", markup=False)
    if cancelled(result.outcome):
        err.print("cancelled", markup=False)
        raise SystemExit(130)
    if not answered(result.outcome):
        fail(stop_error(result.outcome), 1)


# ------------------------------------------------------------------------------- chat

#: What ``/help`` prints in ``lash chat``.
CHAT_HELP = """commands:
  /help             this list
  /usage            this session's token usage by source and model
  /compact [focus]  summarise the session into a new frame (needs a compaction plugin)
  /exit, /quit      quit (so do Ctrl-D and Ctrl-C at the prompt)
Ctrl-C while the model answers cancels that turn (it is still committed)."""


def _tolerant_stdin() -> None:
    """Read stdin with undecodable bytes replaced (U+FFFD) instead of failing the chat."""
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError, io.UnsupportedOperation):
            reconfigure(errors="replace")


def _read_line(err: Console) -> str | None:
    """The next prompt line (valid Unicode, stripped), or None at end of input / Ctrl-C."""
    try:
        line = click.prompt("", prompt_suffix="> ", default="", show_default=False, err=True)
    except click.Abort:
        err.print()
        return None
    except UnicodeDecodeError:
        err.print("error: that line is not valid text in the terminal's encoding; type it again",
                  style="red", markup=False)
        return ""
    return valid_text(str(line)).strip()


@click.command()
@turn_options
def chat(
    provider: str | None,
    base_url: str | None,
    model: str | None,
    db: Path | str | None,
    session_id: str | None,
    continue_: bool,
    max_tokens: int | None,
    max_turns: int | None,
    system: str | None,
) -> None:
    """Chat interactively: each line you type is one turn, streamed live.

    \b
    Commands:
      /help    list these commands
      /usage   this session's token usage by source and model
      /compact [focus]   summarise the session into a new frame (needs a compaction plugin)
      /exit    quit (so do Ctrl-D and Ctrl-C at the prompt)
    Ctrl-C while the model is answering cancels that turn (it is still committed). An error
    in one turn is printed on one line and the chat goes on.

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
        continue_=continue_,
    )
    err = err_console()
    ctrl_c = _CtrlC()
    _tolerant_stdin()

    async def go() -> None:
        async with _core(opts, err) as core:
            opened = _session_to_open(core, opts, err)
            session = core.session(opened)
            err.print(f"lash chat · session {session.id} · /help, /exit", style="dim", markup=False)
            try:
                await _chat_loop(core, session)
            finally:
                if opened is None:  # a session this chat created, and the model never answered in it
                    with contextlib.suppress(Exception):
                        _discard_unanswered(core, session.id, err, quiet=not core.store.list_turns(session.id))

    async def _chat_loop(core: LashCore, session: Session) -> None:
        while True:
            text = _read_line(err)
            if text is None or text in ("/exit", "/quit"):
                return
            if not text:
                continue
            if text in ("/help", "/?"):
                err.print(CHAT_HELP, markup=False)
                continue
            if text == "/usage":
                out_console().print(usage_table(session.usage_report(), f"usage: session {session.id}"))
                continue
            if text == "/compact" or text.startswith("/compact "):  # a compaction plugin (lash-compaction)
                try:
                    opened = await session.compact(text[len("/compact"):].strip() or None)
                    err.print("compacted into a new frame" if opened else "nothing to compact", style="dim")
                except Exception as exc:  # one line, then the next prompt
                    report_error(exc)
                continue
            if text.startswith("/"):
                err.print(f"unknown command {text.split()[0]}; try /help", style="yellow",
                          markup=False)
                continue
            view = LiveView(err)
            try:
                result = await _drive(
                    session, text, max_turns=opts.max_turns, max_tokens=opts.max_tokens, view=view, ctrl_c=ctrl_c
                )
            except Exception as exc:  # one line, then the next prompt (bugs included)
                view.end()
                report_error(exc)
                with contextlib.suppress(Exception):  # if the store fails again, the next turn says so
                    session = core.session(session.id)  # reload the head from the store
                continue
            view.end()
            err.print(valid_text(summary(result)), style="dim", markup=False)
            if cancelled(result.outcome):
                err.print("cancelled", markup=False)
            elif not answered(result.outcome):
                err.print(f"error: {one_line(stop_error(result.outcome))}", style="red", markup=False)

    import anyio

    with ctrl_c.installed():
        anyio.run(go, backend="asyncio")
