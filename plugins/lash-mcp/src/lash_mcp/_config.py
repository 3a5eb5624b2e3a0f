"""Configuration of the MCP plugin: the ``[plugins.mcp]`` table and its server entries.

Rule: plain attrs classes, no I/O, no ``mcp`` import; the kernel structures them strictly from
``lash.toml`` (unknown keys and wrong types are ``ConfigError``\\ s), and hosts build them in code.

```toml
[plugins.mcp.servers.time]
command = "python"
args = ["-m", "mcp_server_time"]
```
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

__all__ = ["DEFAULT_CALL_TIMEOUT_S", "DEFAULT_INIT_TIMEOUT_S", "MCPConfig", "ServerConfig", "default_log_dir"]

#: Seconds a server may take to start, initialise and list its tools.
DEFAULT_INIT_TIMEOUT_S = 30.0
#: Seconds one ``tools/call`` may take before it is cancelled and reported as a tool error.
DEFAULT_CALL_TIMEOUT_S = 60.0


def default_log_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where stdio servers' stderr logs go by default: ``$XDG_STATE_HOME/lash/mcp``, or
    ``~/.local/state/lash/mcp`` when ``XDG_STATE_HOME`` is unset or relative (as the XDG spec says).

    Args:
        env: the environment; None reads ``os.environ``.
    Returns:
        The directory (not created).
    """
    xdg = (os.environ if env is None else env).get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "lash" / "mcp"


def _check_timeout(_inst: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{attribute.name} must be a positive number of seconds, got {value!r}")


@attrs.frozen(kw_only=True)
class ServerConfig:
    """How to reach one MCP server: a subprocess over stdio, or a streamable-HTTP URL.

    Give exactly one of ``command`` (stdio) or ``url`` (streamable HTTP).

    Attributes:
        command: executable to start (stdio), e.g. ``"uvx"`` or ``sys.executable``.
        args: its command-line arguments.
        env: extra environment variables for the subprocess, merged over the SDK's safe
            default environment (``HOME``, ``PATH``, ``USER``, ...; not the whole host env).
        cwd: working directory of the subprocess, or None for the host's.
        url: streamable-HTTP endpoint, e.g. ``"http://127.0.0.1:8000/mcp"``.
        headers: HTTP headers sent with every request (e.g. ``Authorization``).
        init_timeout_s: seconds to start and initialise, or None for the plugin default.
        call_timeout_s: seconds per tool call, or None for the plugin default.
        enabled: False keeps the entry configured but never connects it.

    Raises:
        ValueError: (on construction) neither or both of ``command`` and ``url``; ``args``,
            ``env`` or ``headers`` given with the other transport; a non-positive timeout.
    """

    command: str | None = None
    args: list[str] = attrs.field(factory=list, converter=list)
    env: dict[str, str] = attrs.field(factory=dict, converter=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = attrs.field(factory=dict, converter=dict)
    init_timeout_s: float | None = attrs.field(default=None, validator=_check_timeout)
    call_timeout_s: float | None = attrs.field(default=None, validator=_check_timeout)
    enabled: bool = True

    def __attrs_post_init__(self) -> None:
        if (self.command is None) == (self.url is None):
            raise ValueError(
                "an MCP server needs exactly one of 'command' (a subprocess over stdio) or "
                f"'url' (streamable HTTP); got {'both' if self.command is not None else 'neither'}"
            )
        if self.command is not None:
            if not self.command:
                raise ValueError("'command' must not be empty")
            if self.headers:
                raise ValueError("'headers' apply to 'url' servers only; this server has a 'command'")
        else:
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError(f"'url' must be an http:// or https:// URL, got {self.url!r}")
            for key in ("args", "env", "cwd"):
                if getattr(self, key):
                    raise ValueError(f"{key!r} applies to 'command' servers only; this server has a 'url'")

    @property
    def transport(self) -> Literal["stdio", "http"]:
        """``"stdio"`` for a command, ``"http"`` for a URL."""
        return "stdio" if self.command is not None else "http"

    @classmethod
    def coerce(cls, value: ServerConfig | Mapping[str, Any]) -> ServerConfig:
        """Accept a ``ServerConfig`` or a mapping of its fields (as in ``lash.toml``).

        Args:
            value: the config, or a dict such as ``{"command": "python", "args": [...]}``.
        Returns:
            A ``ServerConfig``.
        Raises:
            TypeError: an unknown key or a value of the wrong kind.
            ValueError: the checks of the constructor.
        """
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"an MCP server config must be a ServerConfig or a mapping, got {value!r}")
        return cls(**dict(value))


@attrs.frozen(kw_only=True)
class MCPConfig:
    """The ``[plugins.mcp]`` table.

    Attributes:
        servers: server entries by name (``[plugins.mcp.servers.<name>]``); a name becomes the
            middle part of each tool's catalog name, ``mcp__<name>__<tool>``.
        init_timeout_s: default seconds a server may take to start, initialise and list tools.
        call_timeout_s: default seconds per tool call.
        log_dir: directory of the stdio servers' stderr logs, one ``<server>.log`` each
            (appended to; ``lash mcp list`` shows the path), so a server's own log lines never
            reach the terminal. ``~`` is expanded; a relative path is relative to the
            ``lash.toml`` directory. Unset: ``$XDG_STATE_HOME/lash/mcp`` (``~/.local/state/lash/mcp``).
    """

    servers: dict[str, ServerConfig] = attrs.field(factory=dict)
    init_timeout_s: float = attrs.field(default=DEFAULT_INIT_TIMEOUT_S, validator=_check_timeout)
    call_timeout_s: float = attrs.field(default=DEFAULT_CALL_TIMEOUT_S, validator=_check_timeout)
    log_dir: str | None = attrs.field(default=None, metadata={"example": "logs/mcp"})
