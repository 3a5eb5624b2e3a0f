"""Plugin loading: one ``pluggy.PluginManager`` per core, built-ins first.

Rule: nothing here runs at import time. ``LashCore`` builds the manager with
``make_plugin_manager`` and ``load_plugins``, then talks to it only through ``KernelHooks``
(``lash_kernel.runtime.hooks``).

Registration order (so call order, which is the reverse): kernel built-ins, then entry points
of group ``lash.plugins`` sorted by name, then the host's explicit plugins.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Sequence

import attrs
import pluggy

from lash_kernel import hookspecs
from lash_kernel.errors import PluginError, PluginLoadError

__all__ = [
    "ENTRY_POINT_GROUP",
    "LoadReport",
    "PluginInfo",
    "check_hookimpls",
    "default_builtins",
    "load_plugins",
    "make_plugin_manager",
    "plugin_infos",
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
        origin: ``builtin``, ``entry point``, ``host`` (passed to ``LashCore(plugins=...)``) or
            ``added`` (registered later, e.g. by another plugin's ``lash_configure``).
    """

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    origin: str = "host"


@attrs.frozen(kw_only=True)
class LoadReport:
    """Result of ``load_plugins``: what loaded and what failed (failures never raise unless strict)."""

    loaded: tuple[PluginInfo, ...] = ()
    failed: tuple[PluginLoadError, ...] = ()


def load_plugins(
    pm: pluggy.PluginManager,
    *,
    builtins: Sequence[tuple[str, object]] | None = None,
    plugins: Sequence[object] = (),
    entry_points: bool = True,
    allow: Iterable[str] | None = None,
    block: Iterable[str] = (),
    strict: bool = False,
) -> LoadReport:
    """Register built-ins, entry-point plugins (sorted by name) and host plugins on ``pm``.

    Args:
        pm: a fresh manager with lash's hookspecs added.
        builtins: ``(name, plugin)`` pairs owned by the kernel; None registers the kernel's
            defaults (``lash_kernel._builtin.BUILTINS``).
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
    if builtins is None:
        builtins = default_builtins()
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
    check_hookimpls(pm)
    origins = {name: "builtin" for name, _ in builtins} | {name: "entry point" for name in dists}
    infos = tuple(
        _info(pm, name, plugin, dists.get(name, (None, None)), origins.get(name, "host"))
        for name, plugin in pm.list_name_plugin()
    )
    return LoadReport(loaded=infos, failed=tuple(failed))


def default_builtins() -> list[tuple[str, object]]:
    """The kernel's built-in plugins as ``(name, module)`` pairs, imported now."""
    from lash_kernel._builtin import BUILTINS

    return [(name, importlib.import_module(path)) for name, path in BUILTINS]


def check_hookimpls(pm: pluggy.PluginManager) -> None:
    """Reject misspelled ``lash_*`` hooks and wrapper implementations (lash never supports them).

    Raises:
        PluginError: naming the plugin and the hook.
    """
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"unknown hook: {exc}") from exc
    for name in dir(pm.hook):
        if name.startswith("lash_"):
            for impl in getattr(pm.hook, name).get_hookimpls():
                if impl.hookwrapper or impl.wrapper:
                    raise PluginError(f"plugin {impl.plugin_name!r}: wrappers are not supported on {name}")


def plugin_infos(pm: pluggy.PluginManager, report: LoadReport) -> list[PluginInfo]:
    """Every plugin registered on ``pm`` now, in registration order (call order is the reverse).

    Plugins registered after loading (``LashCore.add_plugin``) have origin ``added``.
    """
    known = {info.name: info for info in report.loaded}
    out = []
    for name, plugin in pm.list_name_plugin():
        info = known.get(name)
        if info is None:
            out.append(_info(pm, name, plugin, (None, None), "added"))
        else:
            out.append(attrs.evolve(info, hooks=_hooks_of(pm, plugin)))
    return out


def _plugin_name(plugin: object) -> str:
    name = getattr(plugin, "lash_plugin_name", None) or getattr(plugin, "__name__", None)
    return str(name) if name else f"{type(plugin).__name__}-{id(plugin):x}"


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    return tuple(sorted(h.name for h in (pm.get_hookcallers(plugin) or ())))


def _info(
    pm: pluggy.PluginManager, name: str, plugin: object, dist: tuple[str | None, str | None], origin: str
) -> PluginInfo:
    return PluginInfo(
        name=name, distribution=dist[0], version=dist[1], hooks=_hooks_of(pm, plugin), origin=origin
    )


def make_plugin_manager() -> pluggy.PluginManager:
    """A fresh ``PluginManager`` with every lash hookspec added."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm
