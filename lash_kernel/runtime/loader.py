"""Plugin loading: one ``pluggy.PluginManager`` per core, built-ins first.

Rule: nothing here runs at import time. ``LashCore`` builds the manager with
``make_plugin_manager`` and ``load_plugins``, then talks to it only through ``KernelHooks``
(``lash_kernel.runtime.hooks``).

Registration order (so call order, which is the reverse): kernel built-ins, then entry points
of group ``lash.plugins`` sorted by name, then the host's explicit plugins. Then every plugin's
``lash_addhooks`` runs (so hookspecs published for other plugins exist), and only then are the
implementations checked (``check_hookimpls``: misspelled hooks, wrappers, parameter defaults).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping, Sequence

import attrs
import pluggy

from lash_kernel import hookspecs
from lash_kernel.errors import ConfigError, PluginError, PluginLoadError
from lash_kernel.runtime.hooks import KernelHooks, LashPluginManager

__all__ = [
    "ENTRY_POINT_GROUP",
    "STATE_HOOKS",
    "LashPluginManager",
    "LoadReport",
    "PluginInfo",
    "check_hookimpls",
    "default_builtins",
    "load_plugins",
    "make_plugin_manager",
    "plugin_infos",
    "register_plugin",
]

ENTRY_POINT_GROUP = "lash.plugins"

#: Hooks whose data is keyed by plugin name in the store: a plugin implementing them needs a
#: name that is the same after a restart.
STATE_HOOKS = ("lash_snapshot_state", "lash_restore_state")


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
        usage_sources: the usage-ledger sources it declared (``lash_register_usage_sources``),
            sorted; filled by ``LashCore.plugins()`` (empty in a bare ``LoadReport``).
        added_by: for origin ``added``, the plugin whose ``lash_configure`` registered it (a
            plugin's internal object, e.g. lash-mcp's ``mcp-tools``), else None. Filled by
            ``LashCore.plugins()``. Added in 0.3.
    """

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    origin: str = "host"
    usage_sources: tuple[str, ...] = ()
    added_by: str | None = None


@attrs.frozen(kw_only=True)
class LoadReport:
    """Result of ``load_plugins``: what loaded and what failed (failures never raise unless strict)."""

    loaded: tuple[PluginInfo, ...] = ()
    failed: tuple[PluginLoadError, ...] = ()


def load_plugins(
    pm: pluggy.PluginManager,
    *,
    builtins: Sequence[tuple[str, object]] | None = None,
    plugins: Sequence[object] | Mapping[str, object] = (),
    entry_points: bool = True,
    allow: Iterable[str] | None = None,
    block: Iterable[str] = (),
    strict: bool = False,
    hooks: KernelHooks | None = None,
) -> LoadReport:
    """Register built-ins, entry-point plugins (sorted by name) and host plugins on ``pm``,
    run their ``lash_addhooks``, then check every implementation.

    Args:
        pm: a fresh manager with lash's hookspecs added.
        builtins: ``(name, plugin)`` pairs owned by the kernel; None registers the kernel's
            defaults (``lash_kernel._builtin.BUILTINS``).
        plugins: host plugin objects (modules or instances), registered last so they run first;
            or a mapping ``{name: plugin}`` registering each under that name (e.g. the
            entry-point name it has when installed, so its ``plugin_config`` key is the same).
        entry_points: scan the ``lash.plugins`` entry-point group.
        allow: if given, only entry points with these names load (an empty set loads none).
        block: entry-point names never to load.
        strict: raise the first ``PluginLoadError`` instead of reporting it.
        hooks: the facade over ``pm`` that runs ``lash_addhooks`` (the core's, so its monitors
            see it); None makes one.
    Returns:
        A ``LoadReport``.
    An installed (entry-point) plugin that fails to import, to register (a hook signature
    that does not match its spec), in its ``lash_addhooks``, or the implementation checks (an
    unknown or misspelled hook, a wrapper, a parameter default) is unregistered and reported
    once in ``LoadReport.failed`` as a ``PluginLoadError`` naming it and its distribution.

    Raises:
        PluginLoadError: in strict mode, for the first installed plugin that fails as above.
        PluginError: a host plugin's name is taken or an implementation does not match its
            spec; an unknown hook (misspelled, or a published hook nobody published), a
            wrapper, or a parameter with a default, in a host or built-in plugin.
        PluginHookError: a host or built-in plugin's ``lash_addhooks`` failed.
        ConfigError: a host plugin without a stable name implements the state hooks.
    """
    dists: dict[str, tuple[str | None, str | None]] = {}
    values: dict[str, str] = {}  # entry-point name -> its target, for the failure report
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
            metadata = ep.dist.metadata if ep.dist is not None else None  # parsed once for both
            dist = metadata["Name"] if metadata is not None else None
            version = metadata["Version"] if metadata is not None else None
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:
                error = PluginLoadError(ep.name, ep.value, dist, exc)
                if strict:
                    raise error from exc
                failed.append(error)
                continue
            dists[ep.name] = (dist, version)
            values[ep.name] = ep.value
    named = plugins.items() if isinstance(plugins, Mapping) else ((None, p) for p in plugins)
    for given, plugin in named:
        name, stable = (given, True) if given is not None else _plugin_name(plugin)
        _register(pm, plugin, name)
        if not stable:
            _require_stable_name(pm, plugin, name)
    hooks = hooks if hooks is not None else KernelHooks(pm)
    # An installed plugin that fails its lash_addhooks or its hook checks is skipped (one
    # PluginLoadError naming it and its distribution), never fatal unless strict.
    for name in sorted(dists, reverse=True):  # call order
        plugin = pm.get_plugin(name)
        try:
            hooks.addhooks([plugin])
        except PluginError as exc:
            _skip(pm, name, plugin, (dists, values), failed, exc, strict)
    ep_plugins = {id(pm.get_plugin(name)) for name in dists}
    hooks.addhooks([p for _, p in pm.list_name_plugin() if id(p) not in ep_plugins])
    for name in sorted(dists, reverse=True):
        plugin = pm.get_plugin(name)
        problems = _hookimpl_problems(pm, plugin)
        if problems:
            text = "; ".join(p.removeprefix(f"plugin {name!r}: ") for p in problems)
            _skip(pm, name, plugin, (dists, values), failed, PluginError(text), strict)
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


def register_plugin(pm: pluggy.PluginManager, hooks: KernelHooks, plugin: object, name: str | None = None) -> str:
    """Register one more plugin after loading (``PluginHost.add_plugin``): run its
    ``lash_addhooks``, then check every implementation; on failure it is unregistered again.

    Args:
        pm: the core's manager.
        hooks: the core's facade over ``pm``.
        plugin: a module or object with ``@hookimpl`` methods.
        name: its name; None uses ``lash_plugin_name``, a module's ``__name__``, or (not stable
            across restarts) the type and ``id()``.
    Returns:
        The name it was registered under.
    Raises:
        PluginError: the name is taken, or a hook is unknown, a wrapper, or has a parameter default.
        PluginHookError: its ``lash_addhooks`` failed.
        ConfigError: it has no stable name but implements the state hooks.
    """
    stable = name is not None
    if name is None:
        name, stable = _plugin_name(plugin)
    _register(pm, plugin, name)
    try:
        if not stable:
            _require_stable_name(pm, plugin, name)
        hooks.addhooks([plugin])
        check_hookimpls(pm)
    except BaseException:
        pm.unregister(plugin)
        raise
    return name


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """``pm.register`` with pluggy's errors (name taken, bad signature) as ``PluginError``."""
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        raise PluginError(f"cannot register plugin {name!r}: {exc}") from exc


def check_hookimpls(pm: pluggy.PluginManager) -> None:
    """Reject unknown hooks, wrapper implementations and parameter defaults (lash supports none).

    Raises:
        PluginError: naming the plugin and the hook (the first problem found).
    """
    problems = _hookimpl_problems(pm, None)
    if problems:
        raise PluginError(problems[0])


def _hookimpl_problems(pm: pluggy.PluginManager, plugin: object | None) -> list[str]:
    """What is wrong with ``plugin``'s hook implementations (None: every plugin's), one
    sentence each naming the plugin and the hook: unknown hooks (with the nearest known hook
    names), wrappers, parameter defaults."""
    problems = []
    callers = {name: c for name, c in vars(pm.hook).items() if not name.startswith("_")}
    known = sorted(name for name, c in callers.items() if c.has_spec())
    for name, caller in sorted(callers.items()):
        for impl in caller.get_hookimpls():
            if plugin is not None and impl.plugin is not plugin:
                continue
            who = f"plugin {impl.plugin_name!r}"
            if not caller.has_spec() and not impl.optionalhook:
                import difflib  # only to word an error

                near = difflib.get_close_matches(name, known, n=2)
                hint = f" (did you mean {' or '.join(near)}?)" if near else ""
                problems.append(f"{who}: unknown hook {name!r}{hint}")
            elif impl.hookwrapper or impl.wrapper:
                problems.append(f"{who}: wrappers are not supported on {name}")
            elif impl.kwargnames:
                problems.append(
                    f"{who}: {name} parameters must not have defaults "
                    f"({', '.join(impl.kwargnames)}); the kernel passes every argument you ask for"
                )
    return problems


def _skip(
    pm: pluggy.PluginManager,
    name: str,
    plugin: object,
    found: tuple[dict[str, tuple[str | None, str | None]], dict[str, str]],
    failed: list[PluginLoadError],
    exc: PluginError,
    strict: bool,
) -> None:
    """Unregister the installed plugin ``name`` and record (or, strict, raise) why."""
    dists, values = found
    error = PluginLoadError(name, values.pop(name), dists.pop(name)[0], exc)
    pm.unregister(plugin, name=name)
    if strict:
        raise error from exc
    failed.append(error)


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


def _plugin_name(plugin: object) -> tuple[str, bool]:
    """``(name, stable)``: ``lash_plugin_name``, else a module's or class's ``__name__``, else
    an ``id()``-based name that differs in every process (``stable`` False)."""
    name = getattr(plugin, "lash_plugin_name", None) or getattr(plugin, "__name__", None)
    if name:
        return str(name), True
    return f"{type(plugin).__name__}-{id(plugin):x}", False


def _require_stable_name(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Raise ``ConfigError`` when ``plugin`` (named ``name`` from its ``id()``) keeps state."""
    hooks = sorted(h.name for h in (pm.get_hookcallers(plugin) or ()) if h.name in STATE_HOOKS)
    if hooks:
        raise ConfigError(
            f"plugin {type(plugin).__name__} implements {' and '.join(hooks)} but has no stable name "
            f"(it was registered as {name!r}, which changes in every process), so its state could "
            f"never be restored after a restart: give its class a `lash_plugin_name = \"...\"` "
            f"attribute (or pass name= to add_plugin)"
        )


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    return tuple(sorted(h.name for h in (pm.get_hookcallers(plugin) or ())))


def _info(
    pm: pluggy.PluginManager, name: str, plugin: object, dist: tuple[str | None, str | None], origin: str
) -> PluginInfo:
    return PluginInfo(
        name=name, distribution=dist[0], version=dist[1], hooks=_hooks_of(pm, plugin), origin=origin
    )


def make_plugin_manager() -> LashPluginManager:
    """A fresh ``PluginManager`` with every lash hookspec added."""
    pm = LashPluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm
