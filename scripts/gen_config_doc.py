"""Regenerate docs/configuration.md from the config classes: ``python scripts/gen_config_doc.py``.

Sources of truth: ``lash_kernel.config`` (``LashConfig``'s top-level keys, ``PluginSelection``
for ``[plugins]``, ``ENVIRONMENT`` for the variables) and the config class each first-party
plugin under ``plugins/`` declares through ``lash_register_config`` (its ``[plugins.<name>]``
table; nested attrs classes become sub-tables). Each key's description comes from its class's
``Attributes:`` docstring section: a key without one is an error, not a blank row.
``tests/test_cli_config.py`` checks the file is fresh.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "configuration.md"

_SECTION_END = re.compile(r"^(Args|Returns|Raises|Example|Examples|Note|Notes):\s*$")
_ATTRIBUTE = re.compile(r"^    ([A-Za-z_][\w ,/]*?):\s(.*)$")


def attribute_docs(cls: type) -> dict[str, str]:
    """The ``Attributes:`` section of ``cls``'s docstring (and its bases'), by key.

    A line ``a, b: text`` or ``a / b: text`` documents each name. Continuation lines (indented
    deeper) are joined with spaces; reST double backquotes become Markdown code.
    """
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = klass.__doc__
        if not doc:
            continue
        lines = [line.rstrip() for line in _dedent(doc).splitlines()]
        inside, current = False, None
        for line in lines:
            if line.strip() == "Attributes:":
                inside, current = True, None
                continue
            if not inside:
                continue
            if _SECTION_END.match(line):
                inside, current = False, None
                continue
            match = _ATTRIBUTE.match(line)
            if match:
                names = [n.strip() for n in re.split(r"[,/]", match.group(1)) if n.strip()]
                current = names
                for name in names:
                    out[name] = match.group(2).strip()
            elif current and line.startswith("        "):
                for name in current:
                    out[name] += " " + line.strip()
            else:
                current = None
    return {k: _markdown(v) for k, v in out.items()}


def _dedent(doc: str) -> str:
    import inspect

    return inspect.cleandoc(doc)


def _markdown(text: str) -> str:
    return text.replace("``", "`").replace("|", "\\|")


def _hints(cls: type) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    return typing.get_type_hints(cls, globalns=vars(module) if module else None)


def _strip_none(tp: Any) -> Any:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # noqa: UP007
    return tp


_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def type_name(tp: Any) -> str:
    """A TOML-ish name of an annotation: ``string``, ``list of strings``, ``one of "a", "b"``..."""
    tp = _strip_none(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in _SCALARS:
        return _SCALARS[tp]
    if origin is typing.Literal:
        return "one of " + ", ".join(json.dumps(a) for a in args)
    if origin in (list, tuple, typing.Sequence, Sequence_abc()) and args:
        return f"list of {type_name(args[0])}s"
    if origin in (dict, Mapping, typing.Mapping, Mapping_abc()) and len(args) == 2:
        value = args[1]
        if attrs.has(value):
            return "table of tables"
        return f"table of {type_name(value)}s"
    if attrs.has(tp):
        return "table"
    return getattr(tp, "__name__", str(tp))


def Sequence_abc() -> Any:
    import collections.abc

    return collections.abc.Sequence


def Mapping_abc() -> Any:
    import collections.abc

    return collections.abc.Mapping


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not isinstance(value, float) or not value.is_integer() else str(int(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _default(field: attrs.Attribute[Any]) -> str:
    default = field.default
    if default is attrs.NOTHING:
        return "**required**"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()  # type: ignore[union-attr]
    if default is None:
        return "unset"
    if isinstance(default, (list, tuple, Mapping)) and not default:
        return "empty"
    return f"`{_toml(default)}`"


_SAMPLES = {str: '"..."', int: "1", float: "1.5", bool: "true"}


def _example(field: attrs.Attribute[Any], tp: Any, key: str) -> str:
    if "example" in field.metadata:
        return f"`{key} = {_toml(field.metadata['example'])}`"
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()  # type: ignore[union-attr]
    bare = _strip_none(tp)
    origin, args = typing.get_origin(bare), typing.get_args(bare)
    if origin is typing.Literal:
        pick = next((a for a in args if a != default), args[0])
        return f"`{key} = {_toml(pick)}`"
    if default not in (None, attrs.NOTHING) and not (isinstance(default, (list, tuple, Mapping)) and not default):
        return f"`{key} = {_toml(default)}`"
    if bare in _SAMPLES:
        return f"`{key} = {_SAMPLES[bare]}`"
    if origin in (list, tuple, Sequence_abc()) and args:
        return f"`{key} = [{_SAMPLES.get(args[0], '...')}]`"
    if origin in (dict, Mapping, Mapping_abc()) and len(args) == 2 and not attrs.has(args[1]):
        return f"`{key} = {{ name = {_SAMPLES.get(args[1], '...')} }}`"
    return "see below"


def key_rows(cls: type, table: str, *, skip: tuple[str, ...] = ()) -> tuple[list[str], list[tuple[str, type]]]:
    """Markdown rows ``| key | type | default | example | description |`` for ``cls``'s fields,
    and the sub-tables (``(table name, attrs class)``) its table-of-tables fields open.

    Raises:
        ValueError: a field has no description in the ``Attributes:`` section (named).
    """
    docs = attribute_docs(cls)
    hints = _hints(cls)
    rows: list[str] = []
    subtables: list[tuple[str, type]] = []
    missing = []
    for field in attrs.fields(cls):
        if field.name in skip or field.name.startswith("_"):
            continue
        description = docs.get(field.name)
        if not description:
            missing.append(field.name)
            continue
        tp = hints.get(field.name, field.type)
        bare = _strip_none(tp)
        args = typing.get_args(bare)
        if typing.get_origin(bare) in (dict, Mapping, Mapping_abc()) and len(args) == 2 and attrs.has(args[1]):
            subtables.append((f"{table}.{field.name}.<name>", args[1]))
        rows.append(
            f"| `{field.name}` | {type_name(tp)} | {_default(field)} | {_example(field, tp, field.name)} | "
            f"{description} |"
        )
    if missing:
        raise ValueError(
            f"[{table}] ({cls.__module__}.{cls.__qualname__}): undocumented key(s) {', '.join(missing)}: "
            "describe each in the class docstring's Attributes: section"
        )
    return rows, subtables


_HEADER = ["| key | type | default | example | description |", "|---|---|---|---|---|"]


def _table_section(title: str, cls: type, table: str, intro: str = "", skip: tuple[str, ...] = ()) -> list[str]:
    rows, subtables = key_rows(cls, table, skip=skip)
    out = [title, ""]
    if intro:
        out += [intro, ""]
    out += [*_HEADER, *rows, ""]
    for name, sub in subtables:
        sub_rows, deeper = key_rows(sub, name)
        out += [f"#### `[{name}]`", "", f"One table per entry ({sub.__qualname__}).", "", *_HEADER, *sub_rows, ""]
        for deep_name, deep in deeper:  # pragma: no cover - no plugin nests three levels yet
            out += _table_section(f"#### `[{deep_name}]`", deep, deep_name)
    return out


def plugin_configs() -> Iterator[tuple[str, str, type]]:
    """``(entry-point name, distribution, config class)`` of every first-party plugin under
    ``plugins/`` that declares a config table, sorted by entry-point name."""
    from lash_kernel.plugin import ConfigRegistrar

    found = []
    for pyproject in sorted(ROOT.glob("plugins/*/pyproject.toml")):
        meta = tomllib.loads(pyproject.read_text())
        distribution = meta["project"]["name"]
        points = meta["project"].get("entry-points", {}).get("lash.plugins", {})
        src = str(pyproject.parent / "src")
        if src not in sys.path:
            sys.path.insert(0, src)
        for name, target in points.items():
            module = importlib.import_module(target.split(":")[0])
            hook = getattr(module, "lash_register_config", None)
            if hook is None:
                continue
            classes: dict[str, type] = {}
            hook(registry=ConfigRegistrar(classes, name))
            if name in classes:
                found.append((name, distribution, classes[name]))
    return iter(sorted(found))


def render() -> str:
    """The whole configuration reference as Markdown."""
    from lash_kernel.config import ENVIRONMENT, LashConfig, PluginSelection

    out = [
        "# Configuration reference",
        "",
        "Every `lash.toml` key and every environment variable lash reads, generated from the config",
        "classes (`lash_kernel/config.py` and each first-party plugin's config class) by",
        "`python scripts/gen_config_doc.py`; `tests/test_cli_config.py` fails when a key is undocumented",
        "or this file is stale.",
        "",
        "`lash` reads `./lash.toml` (or `--config FILE`, or `LASH_CONFIG`). Unknown keys and wrong types",
        "are errors naming the file, the table and the key. Precedence: command-line flags, then",
        "`lash.toml`, then environment variables, then the defaults; except that `LASH_DB` and",
        "`LASH_MODEL` stand for `--db` and `--model`, and `LASH_PLUGINS`, `LASH_DISABLE_PLUGINS` and",
        "`LASH_STRICT_PLUGINS` adjust `[plugins]`, so these win over `lash.toml`.",
        "",
        "Base URL of the model provider: `--base-url` > `base_url` in `lash.toml` > the provider's",
        "variable (`OPENAI_BASE_URL` for `openai` and `openai-responses`, `ANTHROPIC_BASE_URL`,",
        "`OPENROUTER_BASE_URL`) > the provider's official endpoint. With any base URL the API key is",
        "optional. A base URL on another provider's official host (`api.openai.com` with",
        "`provider = \"anthropic\"`, `api.anthropic.com` with `openai`, `openrouter.ai` with",
        "`anthropic`, ...) is refused with one `error:` line naming both; any other host is accepted.",
        "",
        "```toml",
        'provider = "openai"',
        'model = "gpt-4o-mini"',
        'store = "lash.db"',
        "",
        "[plugins]",
        'disabled = ["mcp"]',
        "",
        "[plugins.tracing]",
        'jsonl = "trace.jsonl"',
        "```",
        "",
        "## Top-level keys",
        "",
        *_HEADER,
        *key_rows(LashConfig, "", skip=("path", "plugins", "plugin_tables"))[0],
        "",
        "## `[plugins]`",
        "",
        "Which installed plugins load. Each other key of `[plugins]` is a plugin's own table",
        "(`[plugins.<entry-point name>]`), checked against the plugin's config class when a core is built.",
        "",
        *_HEADER,
        *key_rows(PluginSelection, "plugins")[0],
        "",
        "## Plugin tables",
        "",
        "The tables of the first-party plugins (a third-party plugin documents its own).",
        "",
    ]
    for name, distribution, cls in plugin_configs():
        out += _table_section(f"### `[plugins.{name}]` ({distribution})", cls, f"plugins.{name}")
    out += [
        "## Environment variables",
        "",
        "From `lash_kernel.config.ENVIRONMENT`, the one table the kernel and the CLI read names from.",
        "",
        "| variable | type | default | example | description |",
        "|---|---|---|---|---|",
    ]
    for var in ENVIRONMENT:
        out.append(
            f"| `{var.name}` | {var.type} | {_markdown(var.default)} | `{var.example}` | {_markdown(var.description)} |"
        )
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(OUT)
