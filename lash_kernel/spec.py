"""Per-session settings: ``SessionSpec``.

A session's spec is fixed when the session is created and persisted with it (as JSON text in
``SessionInfo.spec``), so a reopened session, in any process, runs with the same settings.
Every field left unset (None, or empty) falls back to the core's defaults; a child session's
spec is built with ``SessionSpec.inherit(parent)`` and overrides only what it sets.

Rule: a plain record; resolving it against a core's defaults is the runtime's job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from lash_kernel.errors import ConfigError

__all__ = ["SessionSpec"]


def _names(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _max_turns(_inst: Any, _attr: Any, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"SessionSpec.max_turns must be an integer >= 1 or None, got {value!r}")


def _source(_inst: Any, _attr: Any, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"SessionSpec.usage_source must be a non-empty string or None, got {value!r}")


@attrs.frozen(kw_only=True)
class SessionSpec:
    """The settings one session runs with. ``SessionSpec()`` takes every default of the core.

    Attributes:
        model: model id for the session's model calls, or None for the core's.
        client: name of one of the core's model clients (``LashCore(model_clients={...})``),
            or None for the core's default client.
        system_prompt: the base system prompt, replacing the core's ``prompt``; None keeps it.
            Plugin prompt contributions are added to it either way.
        tools_allow: tool names the session may use (None: every tool of the catalog).
        tools_deny: tool names the session may not use (applied after ``tools_allow``).
        max_turns: model calls allowed per turn, or None for the core's.
        plugin_options: per-plugin options for this session, ``{plugin: {key: value}}``;
            JSON values only (they are persisted). Plugins read them with
            ``host.session_spec(session_id)``.
        usage_source: the usage-ledger source of the session's own model calls; None means
            ``turn`` for a root session and the source the child was opened with for a child.

    Raises:
        ConfigError: an invalid value (``max_turns < 1``, an empty usage source, options that
            are not JSON).
    """

    KIND: ClassVar[str] = "session_spec"
    model: str | None = None
    client: str | None = None
    system_prompt: str | None = None
    tools_allow: tuple[str, ...] | None = attrs.field(default=None, converter=_names)
    tools_deny: tuple[str, ...] = attrs.field(default=(), converter=lambda v: _names(v) or ())
    max_turns: int | None = attrs.field(default=None, validator=_max_turns)
    plugin_options: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, hash=False)
    usage_source: str | None = attrs.field(default=None, validator=_source)

    def __attrs_post_init__(self) -> None:
        try:
            json.dumps(dict(self.plugin_options))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"SessionSpec.plugin_options must hold JSON values only: {exc}") from exc

    @classmethod
    def inherit(cls, parent: SessionSpec, **overrides: Any) -> SessionSpec:
        """A child's spec: ``parent``'s settings with ``overrides`` applied.

        ``plugin_options`` are merged per plugin (an override replaces that plugin's options);
        ``usage_source`` is not inherited (a child's calls are attributed to the source it is
        opened with, unless ``usage_source`` is given here).

        Args:
            parent: the parent session's spec.
            overrides: field values to set (``model=...``, ``tools_deny=(...)``, ...).
        Raises:
            ConfigError: an unknown field name, or an invalid value.
        """
        unknown = set(overrides) - {a.name for a in attrs.fields(cls)}
        if unknown:
            raise ConfigError(f"SessionSpec has no field(s) {', '.join(sorted(unknown))}")
        options = dict(parent.plugin_options)
        options.update(overrides.pop("plugin_options", {}))
        return attrs.evolve(parent, usage_source=None, plugin_options=options, **overrides)

    def allows(self, tool_name: str) -> bool:
        """True when the session may use the tool named ``tool_name``."""
        if self.tools_allow is not None and tool_name not in self.tools_allow:
            return False
        return tool_name not in self.tools_deny

    def to_json(self) -> str:
        """The spec as compact JSON text (its persisted form); "" for ``SessionSpec()``."""
        if self == SessionSpec():
            return ""
        raw = {a.name: getattr(self, a.name) for a in attrs.fields(type(self))}
        # an empty tools_allow (no tools at all) is kept: dropping it would mean "every tool"
        keep = {k for k, v in raw.items() if v not in (None, (), {}) or (k == "tools_allow" and v == ())}
        raw = {k: (list(v) if isinstance(v, tuple) else v) for k, v in raw.items() if k in keep}
        raw["plugin_options"] = {k: dict(v) for k, v in self.plugin_options.items()}
        if not raw["plugin_options"]:
            del raw["plugin_options"]
        return json.dumps(raw, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SessionSpec:
        """Decode ``to_json`` output leniently (unknown keys are ignored; "" is the default spec).

        Raises:
            ConfigError: the text is not a JSON object or holds an invalid value.
        """
        if not text:
            return cls()
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"stored session spec is not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError("stored session spec is not a JSON object")
        names = {a.name for a in attrs.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})
