"""``lash.toml``: a plugin stack composed in a file instead of code.

Rule: config is read strictly. Unknown keys and wrong types are ``ConfigError``\\ s naming the
file, the table and the key; nothing is read at import time, and nothing here touches the
network or the store. The same stack can be built in code with ``LashCore(...)`` arguments.

```toml
provider = "openai"          # openai | openai-responses | anthropic | openrouter
model = "gpt-4o-mini"
store = "lash.db"            # relative to this file; ":memory:" for none; or a URL:
                             # "sqlite:///abs/lash.db", "postgresql://host/db" (lash-postgres)

[plugins]
disabled = ["mcp"]           # installed plugins are active unless disabled
# enabled = ["tracing"]      # or: load only these installed plugins (an allow-list)
strict = false               # true: a plugin that fails to load is an error

[plugins.tracing]            # one table per plugin, validated by the plugin's config class
jsonl = "trace.jsonl"
```
"""

from __future__ import annotations

import errno
import functools
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from lash_kernel.errors import ConfigError

if TYPE_CHECKING:
    import cattrs

__all__ = [
    "CONFIG_FILE",
    "ENVIRONMENT",
    "EnvVar",
    "LashConfig",
    "PluginSelection",
    "base_url_problem",
    "env_var",
    "find_config",
    "load_config",
    "structure_config",
    "store_scheme",
]

#: The file ``find_config`` looks for in the working directory.
CONFIG_FILE = "lash.toml"

_RESERVED = frozenset({"enabled", "disabled", "strict"})


# ------------------------------------------------------------------------------------- environment
@attrs.frozen(kw_only=True)
class EnvVar:
    """One environment variable lash reads (a row of ``docs/configuration.md``).

    Attributes:
        name: the variable, e.g. ``LASH_DB``.
        type: what its value is, in words (``path``, ``URL``, ``comma-separated names``, ...).
        default: what applies when it is unset, in words.
        example: a typical value.
        description: what it does, one or two sentences.
    """

    name: str
    type: str
    default: str
    example: str
    description: str


#: Every environment variable the kernel and its CLI read. Code names a variable through
#: ``env_var`` (which looks it up here), so a variable cannot be read without being listed, and
#: ``scripts/gen_config_doc.py`` documents exactly these.
ENVIRONMENT: tuple[EnvVar, ...] = (
    EnvVar(name="LASH_CONFIG", type="path", default="./lash.toml when present", example="~/agents/lash.toml",
           description="The lash.toml to use, as `lash --config FILE`."),
    EnvVar(name="LASH_DB", type="path or store URL", default="$XDG_DATA_HOME/lash/lash.db",
           example="sqlite:///var/lib/lash/lash.db",
           description="The session store, as `--db`; wins over `store` in lash.toml."),
    EnvVar(name="LASH_MODEL", type="string", default="`model` in lash.toml", example="gpt-4o-mini",
           description="Model id, as `--model`; wins over `model` in lash.toml."),
    EnvVar(name="LASH_PLUGINS", type="comma-separated plugin names", default="every installed plugin",
           example="tracing,mcp",
           description="Allow-list of installed plugins to load; replaces `[plugins] enabled`. Empty loads none."),
    EnvVar(name="LASH_DISABLE_PLUGINS", type="comma-separated plugin names", default="none", example="mcp",
           description="Installed plugins never to load; added to `[plugins] disabled`."),
    EnvVar(name="LASH_STRICT_PLUGINS", type="flag (1/0)", default="0", example="1",
           description="A plugin that fails to load is an error instead of a warning (`[plugins] strict`)."),
    EnvVar(name="LASH_DEBUG", type="flag (1/0)", default="0", example="1",
           description="Print a traceback after every `error:` line."),
    EnvVar(name="LASH_TRACE_HOOKS", type="flag (1/0)", default="0", example="1",
           description="Print one stderr line per plugin hook call (read when a core is built)."),
    EnvVar(name="OPENAI_API_KEY", type="secret", default="none", example="sk-...",
           description="API key of the `openai` and `openai-responses` providers; never printed."),
    EnvVar(name="ANTHROPIC_API_KEY", type="secret", default="none", example="sk-ant-...",
           description="API key of the `anthropic` provider; never printed."),
    EnvVar(name="OPENROUTER_API_KEY", type="secret", default="none", example="sk-or-...",
           description="API key of the `openrouter` provider; when set (and no base URL is given) "
           "`openrouter` is the default provider."),
    EnvVar(name="OPENAI_BASE_URL", type="http(s) URL", default="https://api.openai.com/v1",
           example="http://127.0.0.1:8080/v1",
           description="API root of the `openai` and `openai-responses` providers, below `--base-url` "
           "and `base_url` in lash.toml. With a base URL the key is optional."),
    EnvVar(name="ANTHROPIC_BASE_URL", type="http(s) URL", default="https://api.anthropic.com",
           example="https://proxy.example.com",
           description="API root of the `anthropic` provider, below `--base-url` and `base_url` in lash.toml."),
    EnvVar(name="OPENROUTER_BASE_URL", type="http(s) URL", default="https://openrouter.ai/api/v1",
           example="https://openrouter.ai/api/v1",
           description="API root of the `openrouter` provider, below `--base-url` and `base_url` in lash.toml."),
    EnvVar(name="XDG_DATA_HOME", type="absolute path", default="~/.local/share", example="/srv/data",
           description="The default store is `$XDG_DATA_HOME/lash/lash.db` (a relative value is ignored)."),
    EnvVar(name="XDG_STATE_HOME", type="absolute path", default="~/.local/state", example="/srv/state",
           description="lash-mcp writes each MCP server's stderr to `$XDG_STATE_HOME/lash/mcp/<server>.log` "
           "(unless `[plugins.mcp] log_dir` says otherwise)."),
    EnvVar(name="COLUMNS", type="integer", default="the terminal's width (200 when stdout is not a terminal)",
           example="120", description="Width of the tables the CLI prints."),
)

_ENV_NAMES = frozenset(v.name for v in ENVIRONMENT)


def env_var(name: str) -> str:
    """``name``, after checking it is listed in ``ENVIRONMENT`` (code reads variables through this).

    Raises:
        KeyError: ``name`` is not in ``ENVIRONMENT`` (add it there, with its documentation).
    """
    if name not in _ENV_NAMES:
        raise KeyError(f"environment variable {name!r} is not listed in lash_kernel.config.ENVIRONMENT")
    return name


@attrs.frozen(kw_only=True)
class PluginSelection:
    """Which installed plugins load (``[plugins]`` in ``lash.toml``).

    Attributes:
        enabled: an allow-list of entry-point names, or None for "every installed plugin".
        disabled: entry-point names never to load.
        strict: a plugin that fails to import or register is an error instead of a warning.
    """

    enabled: tuple[str, ...] | None = attrs.field(default=None, metadata={"example": ["tracing", "mcp"]})
    disabled: tuple[str, ...] = attrs.field(default=(), metadata={"example": ["mcp"]})
    strict: bool = attrs.field(default=False, metadata={"example": True})


class _InvalidValues(ConfigError):
    """Values of the right type but out of range: ``problems`` holds ``(key, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"key {key!r}: {message}" for key, message in problems))


#: Keys that count something: integers >= 1.
_COUNTS = ("max_turns", "max_output_tokens", "context_window")
#: Keys that are durations in seconds: finite numbers > 0.
_TIMEOUTS = ("tool_timeout_s", "request_timeout_s", "stream_idle_timeout_s")


def _shown(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def base_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable provider base URL, or None when it is.

    Args:
        url: the candidate, e.g. ``http://127.0.0.1:8080/v1``.
    Returns:
        A phrase to follow the quoted URL (``is not an http(s) URL``, ``has no host``, ...), or
        None for an absolute ``http``/``https`` URL with a host and a valid port.
    """
    if not url.strip():
        return "is empty"
    if any(c.isspace() for c in url):
        return "is not an http(s) URL (it contains whitespace)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return "has an invalid port or address"
    if parts.scheme not in ("http", "https"):
        return "is not an http(s) URL"
    if not parts.hostname:
        return "has no host"
    return None


@attrs.frozen(kw_only=True)
class _Settings:
    """The top-level keys of ``lash.toml`` (``LashConfig`` documents them)."""

    # ``metadata["example"]`` is the example docs/configuration.md shows (scripts/gen_config_doc.py)
    provider: str | None = attrs.field(default=None, metadata={"example": "anthropic"})
    model: str | None = attrs.field(default=None, metadata={"example": "gpt-4o-mini"})
    base_url: str | None = attrs.field(default=None, metadata={"example": "http://127.0.0.1:8080/v1"})
    store: str | None = attrs.field(default=None, metadata={"example": "lash.db"})
    prompt: str | None = attrs.field(default=None, metadata={"example": "You are a terse assistant."})
    max_turns: int | None = attrs.field(default=None, metadata={"example": 8})
    max_output_tokens: int | None = attrs.field(default=None, metadata={"example": 1024})
    temperature: float | None = attrs.field(default=None, metadata={"example": 0.2})
    context_window: int | None = attrs.field(default=None, metadata={"example": 128000})
    tool_timeout_s: float | None = attrs.field(default=None, metadata={"example": 30})
    request_timeout_s: float | None = attrs.field(default=None, metadata={"example": 120})
    stream_idle_timeout_s: float | None = attrs.field(default=None, metadata={"example": 60})

    def __attrs_post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        for key in _COUNTS:
            value = getattr(self, key)
            if value is not None and value < 1:
                problems.append((key, f"must be an integer >= 1, got {_shown(value)}"))
        for key in _TIMEOUTS:
            value = getattr(self, key)
            if value is not None and not (math.isfinite(value) and value > 0):
                problems.append((key, f"must be a number of seconds > 0, got {_shown(value)}"))
        if self.temperature is not None and not (math.isfinite(self.temperature) and self.temperature >= 0):
            problems.append(("temperature", f"must be a number >= 0, got {_shown(self.temperature)}"))
        if self.base_url is not None:
            problem = base_url_problem(self.base_url)
            if problem is not None:
                problems.append(("base_url", f"{self.base_url!r} {problem}"))
        if problems:
            raise _InvalidValues(problems)


_STORE_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", re.S)


def store_scheme(target: str) -> str | None:
    """The URL scheme of ``target`` (lower case), or None when it is a plain path.

    A target is a URL when it starts ``scheme://`` or is a ``sqlite:`` or ``memory:`` URL;
    anything else (``lash.db``, ``/var/lib/lash.db``, ``:memory:``, ``dir/a:b.db``) is a path.
    """
    match = _STORE_URL.match(target)
    if match is None:
        return None
    scheme, rest = match.group(1).lower(), match.group(2)
    if rest.startswith("//") or scheme in ("sqlite", "memory"):
        return scheme
    return None


@attrs.frozen(kw_only=True)
class LashConfig(_Settings):
    """A parsed ``lash.toml`` (or the defaults when there is none).

    Attributes:
        path: the file it came from, or None.
        provider: provider name (``openai``, ``openai-responses``, ``anthropic``, ``openrouter``);
            unset: ``openrouter`` when ``OPENROUTER_API_KEY`` is set and no base URL is given,
            else ``openai``. ``--provider`` wins.
        model: model id; ``--model`` and ``LASH_MODEL`` win. Unset with a base URL: ``default``.
        base_url: the provider's API root (a local server, a proxy). ``--base-url`` wins; it
            wins over the provider's ``*_BASE_URL`` variable. Another provider's official host
            (``api.openai.com`` with ``provider = "anthropic"``) is an error.
        store: SQLite path (resolved against the file's directory), ``:memory:``, or a store URL
            (``sqlite:///abs/path.db``, ``postgresql://…``; kept as written). URLs added in 0.3.
            ``--db`` and ``LASH_DB`` win; unset: ``$XDG_DATA_HOME/lash/lash.db``.
        prompt: the base system prompt; ``--system`` wins.
        max_turns: model calls allowed per turn (the core's default: 16).
        max_output_tokens: per-call output cap, tokens.
        temperature: sampling temperature.
        context_window: the model's context window, tokens.
        tool_timeout_s: default per-tool timeout, seconds.
        request_timeout_s: deadline per model-call attempt, seconds.
        stream_idle_timeout_s: seconds a model stream may stay silent (no bytes) before the
            attempt fails and is retried like any stream fault; unset means the core's
            default, 60.
        plugins: which plugins load.
        plugin_tables: raw ``[plugins.<name>]`` tables by plugin name (validated when a core
            is built, against each plugin's config class).

    Counts (``max_turns``, ``max_output_tokens``, ``context_window``) must be >= 1, timeouts
    finite and > 0, ``temperature`` >= 0, ``base_url`` an http(s) URL; anything else is a
    ``ConfigError`` naming the key and the value.
    """

    path: Path | None = None
    plugins: PluginSelection = PluginSelection()
    plugin_tables: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)

    @property
    def source(self) -> str:
        """How errors name this config: the file path, or ``<defaults>``."""
        return str(self.path) if self.path else "<defaults>"

    def core_options(self) -> dict[str, Any]:
        """The ``LashCore`` keyword arguments this config sets (unset ones are left out)."""
        out: dict[str, Any] = {
            "allow": self.plugins.enabled,
            "block": self.plugins.disabled,
            "strict": self.plugins.strict,
            "plugin_config": dict(self.plugin_tables),
            "config_source": self.source,
        }
        for name in ("prompt", "max_turns", "max_output_tokens", "temperature", "context_window",
                     "tool_timeout_s", "request_timeout_s", "stream_idle_timeout_s"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def find_config(cwd: Path | None = None) -> Path | None:
    """``lash.toml`` in ``cwd`` (default: the working directory), or None if there is none.

    Raises:
        ConfigError: the directory cannot be searched (``permission denied: PATH``) or the
            working directory no longer exists; a ``lash.toml`` there may exist, so it is not
            silently ignored.
    """
    try:
        candidate = (cwd or Path.cwd()) / CONFIG_FILE
    except OSError as exc:
        raise ConfigError(f"cannot look for {CONFIG_FILE}: the working directory is gone ({exc.strerror})") from exc
    try:
        os.stat(candidate)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ConfigError(
                f"permission denied: {candidate} (cannot look for {CONFIG_FILE} in this directory; "
                "pass --config FILE or set LASH_CONFIG)"
            ) from exc
        raise ConfigError(f"cannot look for {candidate}: {exc.strerror or exc}") from exc
    return candidate if candidate.is_file() else None


@attrs.frozen(kw_only=True)
class _Plugins:
    enabled: list[str] | None = None
    disabled: list[str] = attrs.field(factory=list)
    strict: bool = False


def load_config(path: Path | str | None = None, *, cwd: Path | None = None) -> LashConfig:
    """Read a ``lash.toml``.

    Args:
        path: the file (``--config``); it must exist. None looks for ``lash.toml`` in ``cwd``
            and returns the defaults when there is none.
        cwd: directory to look in when ``path`` is None (default: the working directory).
    Returns:
        The ``LashConfig``; ``store`` is resolved against the file's directory.
    Raises:
        ConfigError: the file is missing (when given), unreadable, not TOML, or has an unknown
            key or a value of the wrong type (the message names the file, table and key).
    """
    if path is None:
        found = find_config(cwd)
        if found is None:
            return LashConfig()
        path = found
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except PermissionError as exc:
        raise ConfigError(f"permission denied: {path} (cannot read the config file)") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    source = str(path)
    raw_plugins = data.pop("plugins", {})
    if not isinstance(raw_plugins, dict):
        raise ConfigError(f"{source}: key 'plugins' must be a table, got {type(raw_plugins).__name__}")
    top = structure_config(data, _Settings, source=source, table="")
    selection = structure_config(
        {k: v for k, v in raw_plugins.items() if k in _RESERVED}, _Plugins, source=source, table="plugins"
    )
    tables: dict[str, Mapping[str, Any]] = {}
    for name, table in raw_plugins.items():
        if name in _RESERVED:
            continue
        if not isinstance(table, dict):
            raise ConfigError(
                f"{source}: [plugins] key {name!r}: expected a table [plugins.{name}] "
                f"(or one of {', '.join(sorted(_RESERVED))}), got {type(table).__name__}"
            )
        tables[name] = table
    store = top.store
    if store and store != ":memory:" and store_scheme(store) is None and not Path(store).expanduser().is_absolute():
        store = str(path.parent / Path(store).expanduser())
    return LashConfig(
        **(attrs.asdict(top, recurse=False) | {"store": store}),
        path=path,
        plugins=PluginSelection(
            enabled=None if selection.enabled is None else tuple(selection.enabled),
            disabled=tuple(selection.disabled),
            strict=selection.strict,
        ),
        plugin_tables=tables,
    )


# ------------------------------------------------------------------------------------- strict structuring
def _exact(kind: type, name: str) -> Any:
    def hook(value: Any, _: Any) -> Any:
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise TypeError(f"expected {name}, got {type(value).__name__} {value!r}")
        return value

    return hook


def _strict_sequence(type_: Any, converter: cattrs.Converter) -> Any:
    from cattrs.cols import list_structure_factory

    inner = list_structure_factory(type_, converter)

    def hook(value: Any, t: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {type(value).__name__} {value!r}")
        return inner(value, t)

    return hook


@functools.cache
def _strict_converter() -> cattrs.Converter:
    """The strict converter for config tables, built on first use (a ``lash`` command without a
    ``lash.toml`` never imports cattrs)."""
    import cattrs
    from cattrs.cols import is_sequence

    c = cattrs.Converter(forbid_extra_keys=True)
    c.register_structure_hook_factory(is_sequence, _strict_sequence)
    c.register_structure_hook(str, _exact(str, "a string"))
    c.register_structure_hook(int, _exact(int, "an integer"))
    c.register_structure_hook(float, _exact(float, "a number"))
    c.register_structure_hook(bool, _exact(bool, "true or false"))
    return c


_PATH_PART = re.compile(r"\.(\w+)|\[(?:'([^']*)'|(\d+))\]")


def _path_keys(path: str) -> list[str]:
    """``$.servers['time'].args[0]`` -> ``["servers", "time", "args[0]"]``."""
    keys: list[str] = []
    for attr, key, index in _PATH_PART.findall(path):
        if index and keys:
            keys[-1] += f"[{index}]"
        else:
            keys.append(attr or key or index)
    return keys


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required key is missing"
    if isinstance(exc, (TypeError, ValueError)) and str(exc):
        return str(exc)
    from cattrs.v import format_exception

    return format_exception(exc, type_)


def _messages(exc: BaseException, table: str, source: str) -> list[str]:
    import cattrs

    out: list[str] = []
    for line in cattrs.transform_error(exc, path="$", format_exception=_format):
        message, _, path = line.rpartition(" @ ")
        keys = _path_keys(path)
        extra = re.match(r"extra fields found \((.*)\)", message)
        if extra:  # the path is the table itself
            where = ".".join(x for x in (table, *keys) if x)
            head = f"{source}: [{where}]" if where else source
            out.extend(f"{head} unknown key {name!r}" for name in extra.group(1).split(", "))
            continue
        where = ".".join(x for x in (table, *keys[:-1]) if x)
        head = f"{source}: [{where}]" if where else source
        out.append(f"{head} key {keys[-1]!r}: {message}" if keys else f"{head}: {message}")
    return out


def structure_config(data: Any, cls: type, *, source: str, table: str) -> Any:
    """Build ``cls`` from a config table, strictly.

    Args:
        data: the table (a dict from TOML or code).
        cls: an attrs class; its fields are the allowed keys.
        source: the file path (or ``<code>``) for messages.
        table: the dotted table name for messages, e.g. ``plugins.tracing``.
    Returns:
        A ``cls`` instance.
    Raises:
        ConfigError: every problem found, one per line, each naming source, table and key:
            unknown keys, wrong types, missing required keys, values the class rejects.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: [{table}] must be a table, got {type(data).__name__}")
    import cattrs

    try:
        return _strict_converter().structure(dict(data), cls)
    except cattrs.BaseValidationError as exc:
        invalid = [e for e in exc.exceptions if isinstance(e, _InvalidValues)]
        if invalid:  # the class accepted the types but rejected values (it names the keys)
            head = f"{source}: [{table}]" if table else source
            lines = [f"{head} key {key!r}: {message}" for e in invalid for key, message in e.problems]
            raise ConfigError("\n".join(lines)) from exc
        raise ConfigError("\n".join(_messages(exc, table, source))) from exc
    except (TypeError, ValueError) as exc:
        where = f"[{table}]" if table else "top level"
        raise ConfigError(f"{source}: {where}: {exc}") from exc
