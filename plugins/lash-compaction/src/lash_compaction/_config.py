"""``[plugins.compaction]`` in ``lash.toml``, and how big a model's context window is.

Rule: attrs and plain functions only; importing this module stays cheap (the ``lash`` CLI
imports the plugin for ``--help``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["DEFAULT_WINDOWS", "CompactionConfig", "window_for"]

#: Context windows (tokens) of common model ids. A model id matches an entry when it equals
#: it or starts with it (the longest entry wins), after dropping a ``provider/`` prefix
#: (OpenRouter ids), so ``gpt-4o-2024-08-06`` and ``openai/gpt-4o`` both match ``gpt-4o``.
DEFAULT_WINDOWS: Mapping[str, int] = {
    "gpt-3.5-turbo": 16_385,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "gpt-5": 400_000,
    "gpt-5-mini": 400_000,
    "gpt-5-nano": 400_000,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o3": 200_000,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
    "claude-3-5-haiku": 200_000,
    "claude-3-5-sonnet": 200_000,
    "claude-3-7-sonnet": 200_000,
    "claude-haiku-4": 200_000,
    "claude-sonnet-4": 200_000,
    "claude-opus-4": 200_000,
    "gemini-1.5-flash": 1_048_576,
    "gemini-1.5-pro": 2_097_152,
    "gemini-2.0-flash": 1_048_576,
    "gemini-2.5-flash": 1_048_576,
    "gemini-2.5-pro": 1_048_576,
    "deepseek-chat": 65_536,
    "deepseek-reasoner": 65_536,
    "llama-3.1-8b-instruct": 131_072,
    "llama-3.3-70b-instruct": 131_072,
    "qwen2.5-coder-32b-instruct": 32_768,
}


def _fraction(_inst: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{attribute.name} must be a fraction of the window in (0, 1], got {value!r}")


def _positive(_inst: Any, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


def _non_negative(_inst: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _windows(_inst: Any, attribute: attrs.Attribute[Mapping[str, int]], value: Mapping[str, int]) -> None:
    for model, size in value.items():
        if not model or size < 1:
            raise ValueError(f"{attribute.name}: {model!r} needs a window of >= 1 tokens, got {size!r}")


@attrs.frozen(kw_only=True)
class CompactionConfig:
    """Configuration of the ``compaction`` plugin (``[plugins.compaction]`` in ``lash.toml``).

    Every key is optional. A session may override ``enabled``, ``context_window`` and the
    thresholds with ``SessionSpec(plugin_options={"compaction": {...}})``.

    Attributes:
        enabled: compact sessions of this core at all (False: the plugin is inert; ``compact()``
            by hand still works).
        context_window: the window of every model, tokens; overrides the core's
            ``context_window``, ``windows`` and ``DEFAULT_WINDOWS``. None: look it up.
        windows: per-model windows, tokens, ``{model id or prefix: tokens}``, consulted before
            ``DEFAULT_WINDOWS`` (after the core's ``context_window``).
        clear_at: tier 1 (tool-result clearing in the prompt view) starts when the next
            request is estimated above this fraction of the window.
        keep_tool_results: tier 1 keeps this many most recent tool results verbatim.
        summarize_at: tier 2 (a summary that opens a new frame) runs when the next request,
            after tier 1, is estimated above this fraction of the window.
        keep_recent_tokens: tier 2 keeps about this many most recent tokens verbatim (at most
            a quarter of the window), cut at a user-message boundary.
        model: model id of the summary call; None uses the session's model.
        client: name of one of the core's ``model_clients`` for the summary call (e.g. a
            cheaper provider); None uses the session's client.
        summary_max_tokens: output-token cap of the summary call.

    Raises:
        ValueError: a value out of range (the kernel reports a bad ``lash.toml`` value as a
            ``ConfigError`` naming the key).
    """

    enabled: bool = True
    context_window: int | None = attrs.field(default=None, validator=_positive)
    windows: Mapping[str, int] = attrs.field(factory=dict, validator=_windows)
    clear_at: float = attrs.field(default=0.6, validator=_fraction)
    keep_tool_results: int = attrs.field(default=3, validator=_non_negative)
    summarize_at: float = attrs.field(default=0.8, validator=_fraction)
    keep_recent_tokens: int = attrs.field(default=20_000, validator=_non_negative)
    model: str | None = None
    client: str | None = None
    summary_max_tokens: int = attrs.field(default=2_000, validator=_positive)

    def for_session(self, options: Mapping[str, Any] | None) -> CompactionConfig:
        """This config with a session's ``plugin_options["compaction"]`` applied.

        Args:
            options: the session's options for this plugin, or None.
        Returns:
            The merged config (``self`` when there are none).
        Raises:
            ValueError: an unknown key or a value out of range.
        """
        if not options:
            return self
        names = {a.name for a in attrs.fields(CompactionConfig)}
        unknown = set(options) - names
        if unknown:
            names = ", ".join(sorted(unknown))
            raise ValueError(f"unknown compaction option(s) {names} in the session's plugin_options")
        return attrs.evolve(self, **dict(options))


def _lookup(table: Mapping[str, int], model: str) -> int | None:
    best: tuple[int, int] | None = None
    for key, size in table.items():
        if model == key or model.startswith(key):
            if best is None or len(key) > best[0]:
                best = (len(key), size)
    return best[1] if best is not None else None


def window_for(config: CompactionConfig, model: str | None, core_window: int | None) -> int | None:
    """The context window of ``model``, tokens, or None when nothing says.

    Order: ``config.context_window``; the core's ``context_window``; ``config.windows``;
    ``DEFAULT_WINDOWS``. Model ids match exactly or by prefix (longest wins), with or without
    a ``provider/`` prefix.

    Args:
        config: the effective config.
        model: the session's model id, or None when not known yet.
        core_window: ``LashCore(context_window=...)`` (the ``lash_compact`` argument), or None.
    """
    if config.context_window is not None:
        return config.context_window
    if core_window is not None:
        return core_window
    if not model:
        return None
    for candidate in dict.fromkeys((model, model.rsplit("/", 1)[-1])):
        for table in (config.windows, DEFAULT_WINDOWS):
            found = _lookup(table, candidate)
            if found is not None:
                return found
    return None
