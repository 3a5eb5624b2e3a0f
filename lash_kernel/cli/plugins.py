"""``lash plugins`` and ``lash tools``: inspect the plugin stack and the tool catalog.

Rule: these commands build a ``LashCore`` from ``lash.toml`` exactly as ``lash run`` would
(same plugins, same config tables) but without a model, so what they show is what a session
would see.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from lash_kernel.cli.context import LashGroup, context_core
from lash_kernel.cli.output import echo, echo_json, err_console, fail, one_line, out_console
from lash_kernel.messages import ToolCallPart

if TYPE_CHECKING:
    from lash_kernel.runtime.core import LashCore
    from lash_kernel.tools import Tool, ToolRegistry

__all__ = ["plugins_command", "tools_group"]


def _plugins_json(core: LashCore) -> dict[str, Any]:
    """``{plugins, failed}``: each plugin once, with the objects it registered while it was
    configured (``added_by``) nested under it as ``objects``; in call order."""
    rows: list[dict[str, Any]] = []
    by_name: dict[str, dict[str, Any]] = {}
    infos = list(enumerate(core.plugins(), start=1))
    for position, info in infos:
        if info.added_by is not None:
            continue
        row = {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "origin": info.origin,
            "call_order": position,
            "hooks": list(info.hooks),
            "usage_sources": list(info.usage_sources),
            "objects": [],
        }
        rows.append(row)
        by_name[info.name] = row
    for position, info in infos:
        if info.added_by is None:
            continue
        obj = {"name": info.name, "call_order": position, "hooks": list(info.hooks),
               "usage_sources": list(info.usage_sources)}
        owner = by_name.get(info.added_by)
        if owner is not None:
            owner["objects"].append(obj)
        else:  # its owner is gone from the listing: show it on its own
            rows.append({**obj, "distribution": None, "version": None, "origin": "added", "objects": []})
    return {
        "plugins": rows,
        "failed": [
            {"name": e.plugin, "value": e.value, "distribution": e.distribution, "error": str(e)}
            for e in core.load_report.failed
        ],
    }


def _hooks_text(hooks: list[str]) -> str:
    return ", ".join(h.removeprefix("lash_") for h in hooks) or "-"


@click.command("plugins")
@click.option(
    "--json", "as_json", is_flag=True,
    help="Print one JSON object: {plugins: [{name, distribution, version, origin, call_order, hooks, "
    "usage_sources, objects: [{name, call_order, hooks, usage_sources}]}], failed: [...]}.",
)
def plugins_command(as_json: bool) -> None:
    """List the plugins a core would load: name, distribution, version, hooks, call order,
    and the usage-ledger sources each declared (lash usage groups tokens by them).

    Each plugin is listed once; the objects it registered on the core while being configured
    (e.g. lash-mcp's "mcp-tools", lash-tracing's "tracing.sink") are nested under it, each
    with its own hooks and call order. Call order 1 runs first (host plugins, then installed
    plugins in reverse name order, then the kernel's built-ins). Plugins that failed to load
    are listed with their error. The stack comes from lash.toml ([plugins] enabled /
    disabled / strict) and the LASH_PLUGINS, LASH_DISABLE_PLUGINS and LASH_STRICT_PLUGINS
    variables.

    \b
    Examples:
      lash plugins
      lash --config ./agent.toml plugins --json
    """
    with context_core() as core:
        data = _plugins_json(core)
    if as_json:
        echo_json(data)
        return
    if not data["plugins"] and not data["failed"]:
        err_console().print("no plugins loaded: install one (pip install lash-tracing) or check lash.toml", style="dim")
        return
    from rich.table import Table  # rich loads only when a table is printed
    table = Table(title="lash plugins", title_justify="left")
    for column in ("#", "plugin", "distribution", "version", "origin", "usage sources", "hooks"):
        table.add_column(column, overflow="fold")
    for p in data["plugins"]:
        sources = ", ".join(p["usage_sources"]) or "-"
        table.add_row(
            str(p["call_order"]), p["name"], p["distribution"] or "-", p["version"] or "-", p["origin"], sources,
            _hooks_text(p["hooks"]),
        )
        for obj in p["objects"]:
            table.add_row(
                str(obj["call_order"]), f"└ {obj['name']}", "", "", "registered by it",
                ", ".join(obj["usage_sources"]) or "-", _hooks_text(obj["hooks"]),
            )
    out_console().print(table)
    for failure in data["failed"]:
        err_console().print(f"failed: {one_line(failure['error'])}", style="red", markup=False)


@click.group("tools", cls=LashGroup)
def tools_group() -> None:
    """Inspect and call the tools a session would see (host, plugin and MCP tools).

    \b
    Examples:
      lash tools list
      lash tools list --json | jq '.[].name'
      lash tools call mcp__time__get_current_time --args '{"timezone": "UTC"}'
    """


async def _catalog(core: LashCore) -> ToolRegistry:
    catalog, failures = await core.tool_catalog()
    for message in failures:
        err_console().print(f"warning: {one_line(message)}", style="dim yellow", markup=False)
    return catalog


def _tool_json(catalog: ToolRegistry, t: Tool) -> dict[str, Any]:
    return {
        "name": t.name,
        "description": t.description,
        "provider": catalog.provider_of(t.name),
        "input_schema": dict(t.input_schema),
        "output_schema": None if t.output_schema is None else dict(t.output_schema),
    }


@tools_group.command("list")
@click.option(
    "--json", "as_json", is_flag=True,
    help="Print a JSON array of {name, description, provider, input_schema, output_schema}.",
)
def tools_list(as_json: bool) -> None:
    """List the tool catalog: name, providing plugin, description (and schemas with --json)."""

    async def go() -> list[dict[str, Any]]:
        with context_core() as core:
            catalog = await _catalog(core)
            return [_tool_json(catalog, t) for t in catalog]

    import anyio  # the runtime loads only when a command runs

    rows = anyio.run(go, backend="asyncio")
    if as_json:
        echo_json(rows)
        return
    if not rows:
        err_console().print("no tools: install a plugin that provides some, or configure one in lash.toml", style="dim")
        return
    from rich.table import Table
    table = Table(title=f"lash tools ({len(rows)})", title_justify="left")
    for column in ("tool", "provider", "arguments", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        args = ", ".join(
            f"{name}{'' if name in row['input_schema'].get('required', ()) else '?'}"
            for name in row["input_schema"].get("properties", {})
        )
        table.add_row(row["name"], row["provider"] or "-", args or "-", row["description"].split("\n", 1)[0])
    out_console().print(table)


@tools_group.command("call")
@click.argument("name")
@click.option("--args", "arguments", default="{}", metavar="JSON", help="Arguments as a JSON object [default: {}].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: {name, is_error, output, attachments}.")
def tools_call(name: str, arguments: str, as_json: bool) -> None:
    """Run one tool outside a turn and print its result (as the model would see it).

    Arguments are validated against the tool's input schema first. Exit status 1 when the
    tool reports an error (the message is printed), 2 for an unknown tool or bad JSON.

    \b
    Examples:
      lash tools call mcp__time__get_current_time --args '{"timezone": "Europe/Paris"}'
    """
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        fail(f"--args is not valid JSON: {exc}", 2)
    if not isinstance(parsed, dict):
        fail(f"--args must be a JSON object, got {type(parsed).__name__}", 2)

    import anyio

    from lash_kernel.tools import ToolContext, execute_tool_call

    async def go() -> Any:
        with context_core() as core:
            catalog = await _catalog(core)
            found = catalog.get(name)
            if found is None:
                known = ", ".join(catalog.names()) or "none"
                fail(f"unknown tool {name!r}; available tools: {known}", 2)
            call = ToolCallPart(id="cli", name=name, arguments=arguments)
            ctx = ToolContext(
                session_id="cli", turn_id="cli", call_id="cli", tool_name=name,
                on_progress=lambda done, total, message: err_console().print(
                    f"progress: {done:g}{'' if total is None else f'/{total:g}'} {message or ''}",
                    style="dim", markup=False,
                ),
            )
            return await execute_tool_call(found, call, ctx, available=catalog.names())

    result = anyio.run(go, backend="asyncio")
    if as_json:
        echo_json({
            "name": name,
            "is_error": result.is_error,
            "output": result.output,
            "attachments": [
                {"media_type": a.media_type, "bytes_base64": len(a.data), "name": a.name} for a in result.attachments
            ],
        })
    else:
        echo(result.output)
        for a in result.attachments:
            err_console().print(
                f"attachment: {a.media_type} ({len(a.data)} base64 chars) {a.name}", style="dim", markup=False
            )
    if result.is_error:
        raise SystemExit(1)
