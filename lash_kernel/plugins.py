"""Plugin loading and the one typed facade through which the kernel calls hooks.

Rule: nothing here runs at import time. ``LashCore`` builds one ``pluggy.PluginManager`` per
core with ``load_plugins`` and talks to it only through ``KernelHooks``; no other kernel module
spells a hook name.

Registration order (so call order, which is the reverse): kernel built-ins, then entry points
of group ``lash.plugins`` sorted by name, then the host's explicit plugins.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import pluggy

from lash_kernel import hookspecs
from lash_kernel.activity import TurnActivity
from lash_kernel.errors import PluginError, PluginHookError, PluginLoadError
from lash_kernel.outcomes import Outcome
from lash_kernel.prompt import PromptContribution
from lash_kernel.tools import Tool, ToolRegistry, tool

__all__ = [
    "ENTRY_POINT_GROUP",
    "KernelHooks",
    "LoadReport",
    "PluginInfo",
    "ToolRegistrar",
    "load_plugins",
    "make_plugin_manager",
]

ENTRY_POINT_GROUP = "lash.plugins"


@attrs.frozen(kw_only=True)
class PluginInfo:
    """What ``lash plugins`` shows about one registered plugin.

    Attributes:
        name: plugin name (entry-point name for installed plugins).
        distribution: distribution name, or None for built-ins and host objects.
        version: distribution version, or None.
        hooks: names of the hooks it implements, sorted.
    """

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]


@attrs.frozen(kw_only=True)
class LoadReport:
    """Result of ``load_plugins``: what loaded and what failed (failures never raise unless strict)."""

    loaded: tuple[PluginInfo, ...] = ()
    failed: tuple[PluginLoadError, ...] = ()


def load_plugins(
    pm: pluggy.PluginManager,
    *,
    builtins: Sequence[tuple[str, object]] = (),
    plugins: Sequence[object] = (),
    entry_points: bool = True,
    allow: Iterable[str] | None = None,
    block: Iterable[str] = (),
    strict: bool = False,
) -> LoadReport:
    """Register built-ins, entry-point plugins (sorted by name) and host plugins on ``pm``.

    Args:
        pm: a fresh manager with lash's hookspecs added.
        builtins: ``(name, plugin)`` pairs owned by the kernel.
        plugins: host plugin objects (modules or instances), registered last so they run first.
        entry_points: scan the ``lash.plugins`` entry-point group.
        allow: if given, only entry points with these names load (an empty set loads none).
        block: entry-point names never to load.
        strict: raise the first ``PluginLoadError`` instead of reporting it.
    Returns:
        A ``LoadReport``.
    Raises:
        PluginLoadError: in strict mode, for the first plugin that fails to import or register.
        PluginError: a misspelled ``lash_*`` hook (unknown hook name) in any plugin.
    """
    dists: dict[str, tuple[str | None, str | None]] = {}
    failed: list[PluginLoadError] = []
    for name, plugin in builtins:
        pm.register(plugin, name=name)
    if entry_points:
        allowed = None if allow is None else set(allow)
        blocked = set(block)
        eps = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
        for ep in eps:
            if ep.name in blocked or (allowed is not None and ep.name not in allowed):
                continue
            if pm.has_plugin(ep.name):
                continue
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:
                error = PluginLoadError(ep.name, ep.value, dist, exc)
                if strict:
                    raise error from exc
                failed.append(error)
                continue
            dists[ep.name] = (dist, version)
    for plugin in plugins:
        pm.register(plugin, name=_plugin_name(plugin))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"unknown hook: {exc}") from exc
    infos = tuple(_info(pm, name, plugin, dists) for name, plugin in pm.list_name_plugin())
    return LoadReport(loaded=infos, failed=tuple(failed))


def _plugin_name(plugin: object) -> str:
    name = getattr(plugin, "lash_plugin_name", None) or getattr(plugin, "__name__", None)
    return str(name) if name else f"{type(plugin).__name__}-{id(plugin):x}"


def _info(pm: pluggy.PluginManager, name: str, plugin: object, dists: dict) -> PluginInfo:
    dist, version = dists.get(name, (None, None))
    hooks = tuple(sorted(h.name for h in (pm.get_hookcallers(plugin) or ())))
    return PluginInfo(name=name, distribution=dist, version=version, hooks=hooks)


class ToolRegistrar:
    """Handed to ``lash_register_tools``: adds tools to the catalog on behalf of one plugin.

    Args:
        registry: the core's catalog.
        plugin: name of the plugin registering (used in conflict errors and ``lash tools list``).
    """

    def __init__(self, registry: ToolRegistry, plugin: str) -> None:
        self._registry = registry
        self.plugin = plugin

    def add(self, item: Tool | Callable[..., Any], *, replace: bool = False) -> Tool:
        """Register a ``Tool`` (or a function, wrapped with ``@tool``) and return it.

        Raises:
            ConfigError: the name is taken by another tool (both providers are named).
        """
        t = item if isinstance(item, Tool) else tool(item)
        self._registry.add(t, provider=self.plugin, replace=replace)
        return t


class KernelHooks:
    """The typed facade over one core's ``PluginManager``: the only place that calls hooks.

    Implementations run in pluggy's call order; each call is attributed to its plugin so
    failures raise ``PluginHookError(plugin, hook)``.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def _impls(self, hook: str) -> list[tuple[str, Callable[..., Any], tuple[str, ...]]]:
        caller = getattr(self.pm.hook, hook)
        out = []
        for impl in reversed(caller.get_hookimpls()):  # pluggy's own call order
            if impl.hookwrapper or impl.wrapper:
                raise PluginError(f"plugin {impl.plugin_name!r}: wrappers are not supported on {hook}")
            out.append((impl.plugin_name, impl.function, tuple(impl.argnames)))
        return out

    def _call(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        results = []
        for plugin, fn, argnames in self._impls(hook):
            try:
                result = fn(**{a: kwargs[a] for a in argnames})
            except Exception as exc:
                raise PluginHookError(plugin, hook, exc) from exc
            if inspect.isawaitable(result):
                close = getattr(result, "close", None)
                if close:
                    close()
                raise PluginHookError(plugin, hook, TypeError(f"{hook} must not be async"))
            results.append((plugin, result))
        return results

    async def _acall(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        results = []
        for plugin, fn, argnames in self._impls(hook):
            try:
                result = fn(**{a: kwargs[a] for a in argnames})
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                raise PluginHookError(plugin, hook, exc) from exc
            results.append((plugin, result))
        return results

    # ---------------------------------------------------------------- typed hooks
    def register_tools(self, registry: ToolRegistry) -> None:
        """Run ``lash_register_tools`` with a registrar bound to each plugin in turn."""
        for plugin, fn, argnames in self._impls("lash_register_tools"):
            registrar = ToolRegistrar(registry, plugin)
            try:
                fn(**{a: registrar for a in argnames if a == "registry"})
            except Exception as exc:
                raise PluginHookError(plugin, "lash_register_tools", exc) from exc

    def prompt_contributions(self, *, session_id: str, tool_names: frozenset[str]) -> list[PromptContribution]:
        """Collect ``lash_prompt_contributions`` in call order. Raises ``PluginHookError``."""
        out: list[PromptContribution] = []
        for plugin, result in self._call("lash_prompt_contributions", session_id=session_id, tool_names=tool_names):
            for item in result or ():
                if not isinstance(item, PromptContribution):
                    raise PluginHookError(
                        plugin, "lash_prompt_contributions", TypeError(f"expected PromptContribution, got {item!r}")
                    )
                out.append(item)
        return out

    def on_activity(self, activity: TurnActivity) -> None:
        """Fire ``lash_on_activity``. Raises ``PluginHookError`` (the driver reports it)."""
        self._call("lash_on_activity", activity=activity)

    async def turn_committed(self, *, session_id: str, turn_id: str, outcome: Outcome, head_revision: int) -> None:
        """Fire ``lash_turn_committed`` (may be async). Raises ``PluginHookError``."""
        await self._acall(
            "lash_turn_committed",
            session_id=session_id,
            turn_id=turn_id,
            outcome=outcome,
            head_revision=head_revision,
        )

    @property
    def has_activity_observers(self) -> bool:
        """True when some plugin implements ``lash_on_activity`` (lets the driver skip the call)."""
        return bool(self.pm.hook.lash_on_activity.get_hookimpls())


def make_plugin_manager() -> pluggy.PluginManager:
    """A fresh ``PluginManager`` with every lash hookspec added."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm
