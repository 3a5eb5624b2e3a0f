"""``lash worker`` and ``lash submit``: serve submitted turns from a shared store, and feed them.

Rule: like every command, a host of the public API: ``submit`` is ``LashCore.submit`` (and
``wait_turn`` with ``--wait``), ``worker`` is ``Worker(core).run(handle_signals=True)``. The
store, provider and model come from the same flags, ``lash.toml`` and environment as ``lash run``;
``--model-client MODULE:FACTORY`` replaces the provider with any ``ModelClient`` factory (a
local model wrapper, or a scripted model in tests).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lash_kernel.cli.context import config_db, core_options, current_config, json_option, warn_failures
from lash_kernel.cli.output import answered, echo, echo_json, err_console, outcome_dict
from lash_kernel.cli.providers import (
    build_provider,
    check_base_url,
    check_provider,
    default_db_path,
    default_provider,
    open_store,
)
from lash_kernel.errors import ConfigError

if TYPE_CHECKING:  # the runtime loads inside the commands, so ``lash --help`` stays cheap
    from lash_kernel.model import ModelClient
    from lash_kernel.runtime.core import LashCore
    from lash_kernel.store.base import Store
from lash_kernel.text import valid_text

__all__ = ["load_model_client", "submit", "worker"]


def _store_target(value: str | None) -> Path | str:
    """``--store``'s value (else ``lash.toml``'s store, else the default SQLite file): a URL
    stays a string, anything else is a SQLite file path."""
    from lash_kernel.runtime.stores import store_scheme

    if value:
        return value if store_scheme(value) is not None else Path(value)
    return config_db(current_config()) or default_db_path(os.environ)


def _store_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--store",
        "--db",
        "store",
        envvar="LASH_DB",
        default=None,
        metavar="URL|FILE",
        help="The shared store: postgresql://… (with lash-postgres), sqlite:///abs/path.db or a SQLite "
        "file [env LASH_DB; default lash.toml's store, else the default SQLite file].",
    )(f)


def load_model_client(spec: str) -> ModelClient:
    """Build a model client from ``MODULE:FACTORY``: ``FACTORY()`` (no arguments) must return a
    ``ModelClient``; configure it through the environment.

    Raises:
        ConfigError: ``spec`` is malformed, the module cannot be imported, or the factory is
            missing, fails or returns no model client.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--model-client {spec!r}: expected MODULE:FACTORY, e.g. my_models:make_client")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--model-client {spec!r}: {exc}") from exc
    try:
        client = factory()
    except Exception as exc:
        raise ConfigError(f"--model-client {spec!r}: the factory failed: {exc}") from exc
    if not callable(getattr(client, "stream", None)) or not hasattr(client, "provider_name"):
        raise ConfigError(f"--model-client {spec!r}: the factory returned {client!r}, not a ModelClient")
    return client


@contextlib.asynccontextmanager
async def _worker_core(
    *,
    store: str | None,
    provider: str | None,
    base_url: str | None,
    model: str | None,
    model_client: str | None,
    lease_ttl: float,
    system: str | None,
) -> AsyncIterator[LashCore]:
    """The worker's core: flags over ``lash.toml`` over the environment, as ``lash run``."""
    from lash_kernel.runtime.core import LashCore

    env, config = os.environ, current_config()
    if model_client:
        client = load_model_client(model_client)
        model = model or config.model or "default"
    else:
        if base_url is not None:
            check_base_url(base_url)
        base_url = base_url or config.base_url
        name = provider or config.provider or default_provider(base_url, env)
        check_provider(name, base_url, env)
        model = model or config.model
        if not model:
            if not base_url:
                raise ConfigError("pass --model, set LASH_MODEL, or set model in lash.toml (for example gpt-4o-mini)")
            model = "default"
        client = build_provider(name, base_url, env)
    target = _store_target(store)
    try:
        opened: Store | str = target if isinstance(target, str) else open_store(target, create=True)
        options = core_options(config, env) | {"prompt": valid_text(system) if system is not None else config.prompt}
        try:
            with LashCore(model_client=client, model=model, store=opened, lease_ttl_s=lease_ttl, **options) as core:
                warn_failures(core, err_console())
                yield core
        finally:
            if not isinstance(opened, str):
                opened.close()
    finally:
        await client.aclose()


@click.command()
@_store_option
@click.option("--concurrency", "-n", type=click.IntRange(min=1), default=4, show_default=True,
              help="Turns run at once, each of a different session.")
@click.option("--poll-interval", type=click.FloatRange(min=0.001), default=0.5, show_default=True, metavar="S",
              help="Seconds between polls of the store when there is nothing to start.")
@click.option("--lease-ttl", type=click.FloatRange(min=0.1), default=30.0, show_default=True, metavar="S",
              help="Lifetime of a session's lease in seconds (renewed every third of it while a turn runs); "
              "a worker that dies blocks its sessions this long.")
@click.option("--grace", type=click.FloatRange(min=0), default=30.0, show_default=True, metavar="S",
              help="On SIGTERM/SIGINT, seconds running turns get to finish before they are cancelled.")
@click.option("--provider", default=None, help="Model provider (as lash run).")
@click.option("--base-url", default=None, metavar="URL", help="API root of a compatible server (as lash run).")
@click.option("--model", envvar="LASH_MODEL", default=None, help="Model id [env LASH_MODEL].")
@click.option("--model-client", default=None, metavar="MODULE:FACTORY",
              help="Use FACTORY() from MODULE as the model client instead of a provider (a custom client, "
              "or a scripted one in tests).")
@click.option("--system", default=None, metavar="TEXT", help="System prompt.")
@click.option("--until-idle", is_flag=True, help="Exit once there is nothing left to run.")
@click.option("-v", "--verbose", is_flag=True, help="Log each committed turn on stderr.")
def worker(
    store: str | None,
    concurrency: int,
    poll_interval: float,
    lease_ttl: float,
    grace: float,
    provider: str | None,
    base_url: str | None,
    model: str | None,
    model_client: str | None,
    system: str | None,
    until_idle: bool,
    verbose: bool,
) -> None:
    """Run submitted turns (lash submit, LashCore.submit) from a shared store.

    Start as many workers, on as many machines, as you like: each polls the store for
    sessions with pending input, claims a session's lease (so one turn per session runs at a
    time, in submission order) and runs its oldest pending turn. A worker killed mid-turn
    leaves the input pending; once its lease expires (--lease-ttl) another worker runs the turn
    again and commits it once. SIGTERM or Ctrl-C: finish running turns (up to --grace), then
    exit; a second one cancels them (each commits as cancelled).

    \b
    Examples:
      lash worker --store postgresql://lash@db/lash --concurrency 8 --model gpt-4o-mini
      lash worker --store ./lash.db --base-url http://127.0.0.1:8080/v1 --until-idle
    """
    import anyio

    from lash_kernel.runtime.worker import Worker

    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    async def serve() -> None:
        async with _worker_core(
            store=store, provider=provider, base_url=base_url, model=model, model_client=model_client,
            lease_ttl=lease_ttl, system=system,
        ) as core:
            w = Worker(core, concurrency=concurrency, poll_interval_s=poll_interval, grace_s=grace)
            async with anyio.create_task_group() as tg:
                await tg.start(functools.partial(w.run, handle_signals=True, until_idle=until_idle))
                err_console().print(
                    f"worker ready: pid {os.getpid()}, concurrency {concurrency}", style="dim", markup=False
                )
            await core.drain()
            s = w.stats
            err_console().print(
                f"worker stopped: {s.committed} committed, {s.already_committed} already committed elsewhere, "
                f"{s.busy} busy skips, {s.failed} failed",
                style="dim", markup=False,
            )

    anyio.run(serve)


class _NoModelClient:
    """The model client of ``lash submit``'s core, which never runs a turn."""

    provider_name = "none"

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        raise ConfigError("lash submit runs no turn")
        yield  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        return None


@click.command()
@click.argument("session_id", metavar="SESSION")
@click.argument("prompt")
@_store_option
@click.option("--turn-id", default=None, metavar="ID",
              help="The turn id [default: a new one]. Submitting an id again changes nothing.")
@click.option("--wait", is_flag=True, help="Wait until a worker commits the turn; print its answer.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="S",
              help="With --wait: give up after S seconds (exit 1; the turn stays pending).")
@json_option("Print one JSON object: {session_id, turn_id} (with --wait also revision, outcome, text).")
def submit(
    session_id: str,
    prompt: str,
    store: str | None,
    turn_id: str | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Submit PROMPT as a turn of SESSION (created if new) for a worker to run.

    Prints the turn id. With --wait, waits for a worker (lash worker) to commit it and prints
    the answer; exit status 0 when the model answered, 1 when the turn stopped for another
    reason or the wait timed out.

    \b
    Examples:
      lash submit --store postgresql://lash@db/lash support-42 "Where is my order?"
      lash submit --store ./lash.db s1 "Say hi" --wait --timeout 60
    """
    import anyio

    from lash_kernel.messages import assistant_text
    from lash_kernel.runtime.core import LashCore
    from lash_kernel.store.base import MESSAGE_KIND

    target = _store_target(store)
    config = current_config()
    opened: Store | str = target if isinstance(target, str) else open_store(target, create=True)
    try:
        options = core_options(config, os.environ)
        with LashCore(model_client=_NoModelClient(), model=config.model or "none", store=opened, **options) as core:
            warn_failures(core, err_console())
            tid = core.submit(valid_text(session_id), valid_text(prompt), turn_id=turn_id)
            sid = valid_text(session_id)
            if not wait:
                if as_json:
                    echo_json({"session_id": sid, "turn_id": tid})
                else:
                    echo(tid)
                return
            record = anyio.run(lambda: core.wait_turn(sid, tid, timeout=timeout))
            nodes = core.store.load_nodes(sid, record.node_ids)
            text = assistant_text(tuple(n.message for n in nodes if n.kind == MESSAGE_KIND))
            if as_json:
                echo_json(
                    {"session_id": sid, "turn_id": tid, "revision": record.revision,
                     "outcome": outcome_dict(record.outcome), "text": text}
                )
            else:
                echo(text)
    finally:
        if not isinstance(opened, str):
            opened.close()
    if not answered(record.outcome):
        raise click.exceptions.Exit(1)
