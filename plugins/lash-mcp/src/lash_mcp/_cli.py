"""``lash mcp``: the configured MCP servers, their state and tool counts.

Rule: builds a core from ``lash.toml`` exactly as ``lash run`` would
(``lash_kernel.plugin.command_host``), so what it shows is what a session would see; connects
every enabled server (in parallel) to report its real state. Imports only ``lash_kernel.plugin``
and click from the kernel side, like any plugin.
"""

from __future__ import annotations

import json
from typing import Any

import click

from lash_kernel.plugin import command_host

__all__ = ["mcp_group"]


def _status_json(statuses: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "transport": s.transport,
            "target": s.target,
            "state": s.state,
            "error": s.error,
            "tools": s.tool_count,
            "problems": list(s.problems),
            "log": s.log_path,
        }
        for s in statuses
    ]


@click.group("mcp")
def mcp_group() -> None:
    """Inspect the MCP servers configured in lash.toml ([plugins.mcp.servers.<name>]).

    \b
    Examples:
      lash mcp list
      lash mcp list --json
    """


@mcp_group.command("list")
@click.option(
    "--json", "as_json", is_flag=True,
    help="Print a JSON array of {name, transport, target, state, error, tools, problems, log}.",
)
@click.option("--no-connect", is_flag=True, help="Show the configuration only; do not start or contact servers.")
def mcp_list(as_json: bool, no_connect: bool) -> None:
    """List configured MCP servers: transport, state (connected / failed + reason), tool count,
    and the log file a stdio server's stderr is appended to ([plugins.mcp] log_dir; default
    $XDG_STATE_HOME/lash/mcp/<server>.log).

    Every enabled server is started (stdio) or contacted (HTTP) in parallel, within its init
    timeout, then closed again. Exit status 1 when a server failed (its log often says why).
    """
    from lash_mcp.plugin import get_manager

    with command_host() as host:
        try:
            manager = get_manager(host)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        statuses = manager.status() if no_connect else manager.connect()
    rows = _status_json(statuses)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
    elif not rows:
        click.echo("no MCP servers configured: add [plugins.mcp.servers.<name>] to lash.toml", err=True)
    else:
        _print_table(rows)
    if any(row["state"] == "failed" for row in rows):
        raise SystemExit(1)


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"MCP servers ({len(rows)})", title_justify="left")
    for column in ("server", "transport", "state", "tools", "target / reason", "log"):
        table.add_column(column, overflow="fold")
    styles = {"connected": "green", "failed": "red", "disabled": "dim"}
    for row in rows:
        detail = row["error"] if row["state"] == "failed" else row["target"]
        for problem in row["problems"]:
            detail += f"\n{problem}"
        table.add_row(
            row["name"],
            row["transport"],
            Text(row["state"], style=styles.get(row["state"], "")),
            str(row["tools"]),
            Text(detail),
            Text(row["log"] or "-"),
        )
    Console(soft_wrap=False).print(table)
