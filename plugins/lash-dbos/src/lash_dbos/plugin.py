"""The ``dbos`` plugin: the ``lash dbos worker`` command. It adds no tools and no turn hooks."""

from __future__ import annotations

import importlib
import signal
import threading
from typing import Any

import click

from lash_kernel import ConfigError
from lash_kernel.plugin import hookimpl

__all__ = ["dbos_group", "lash_register_commands", "load_factory"]


def load_factory(spec: str) -> Any:
    """Import ``module:function`` and return the function.

    Raises:
        ConfigError: not of that form, or the module or attribute does not exist.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--factory must be 'module:function', got {spec!r}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the core factory {spec!r}: {exc}") from exc


@click.group("dbos")
def dbos_group() -> None:
    """Run lash turns as DBOS workflows on PostgreSQL (lash-dbos)."""


@dbos_group.command("worker")
@click.option("--store", "store", required=True, envvar="LASH_DB", help="postgresql://… (lash's and DBOS's tables)")
@click.option("--factory", required=True, help="module:function; function(store_url) returns a LashCore "
              "whose model_client is a lash_dbos.JournaledModel")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(min=1), help="turns at once")
@click.option("--app-version", default=None, help="pinned DBOS application version")
@click.option("--worker-id", default=None, help="worker / DBOS executor id (default host:pid:random)")
@click.option("--heartbeat", "heartbeat_s", default=1.0, show_default=True, type=float, help="seconds")
def worker(store: str, factory: str, concurrency: int, app_version: str | None, worker_id: str | None,
           heartbeat_s: float) -> None:
    """Serve submitted turns until SIGINT / SIGTERM."""
    from lash_dbos.runner import DEFAULT_APP_VERSION, DbosRunner

    make = load_factory(factory)
    runner = DbosRunner(
        lambda: make(store), store, concurrency=concurrency, worker_id=worker_id,
        app_version=app_version or DEFAULT_APP_VERSION, heartbeat_s=heartbeat_s,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runner.launch()
    click.echo(f"lash-dbos worker {runner.worker_id} serving (concurrency {concurrency})", err=True)
    try:
        stop.wait()
    finally:
        runner.close()


@hookimpl
def lash_register_commands(cli: click.Group) -> None:
    """Add ``lash dbos worker``."""
    cli.add_command(dbos_group)
