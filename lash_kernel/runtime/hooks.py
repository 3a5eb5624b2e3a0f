"""KernelHooks: the one typed facade through which the kernel calls hooks.

Rule: no other kernel module spells a hook name. Each hook implementation is called on its
own, in pluggy's call order, so a failure is attributed to its plugin
(``PluginHookError(plugin, hook)``), observers can all run after one fails, chained hooks
(``lash_before_tool_call``, ``lash_after_tool_call``, ``lash_transform_context``) feed each
implementation the previous one's output, and async implementations are awaited one at a time.

Monitoring: while a monitor is installed (``KernelHooks.monitor``, or pluggy's own
``PluginManager.add_hookcall_monitoring`` / ``enable_tracing``), every implementation call
goes through pluggy's hook execution (``HookCaller._hookexec`` with that one implementation),
so pluggy's monitors see each call with its ``HookImpl``. With no monitor installed the
implementation is called directly, exactly as pluggy would call it (positional arguments by
``HookImpl.argnames``; lash rejects wrappers and parameter defaults, so nothing else differs):
the unmonitored path costs no more than before monitoring existed.

``firstresult`` comes from the spec: ``lash_plan_compaction`` (and any published spec with
``firstresult=True``) stops at the first non-None result.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

import attrs
import pluggy

from lash_kernel.activity import TurnActivity
from lash_kernel.directives import AbortTurn, BlockToolCall, CompactionPlan, InjectMessages, OpenFrame
from lash_kernel.errors import ConfigError, PluginError, PluginHookError
from lash_kernel.messages import Message, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Outcome
from lash_kernel.plugin import (
    ConfigRegistrar,
    HookspecRegistrar,
    ModeInfo,
    ModeRegistrar,
    RecordTypeRegistrar,
    StoreRegistrar,
    ToolRegistrar,
    UsageSourceRegistrar,
)
from lash_kernel.prompt import PromptContribution
from lash_kernel.store.base import SessionInfo
from lash_kernel.trace import TraceRecord
from lash_kernel.usage import UsageLedger

if TYPE_CHECKING:
    from lash_kernel.plugin import PluginHost
    from lash_kernel.tools import ToolProvider, ToolRegistry

__all__ = [
    "HookCall",
    "HookCallOutcome",
    "HookMonitorAfter",
    "HookMonitorBefore",
    "KernelHooks",
    "LashPluginManager",
    "print_hook_call",
]

#: Hooks a plugin may not call through ``call_published``: the kernel's own.
_KERNEL_PREFIX = "lash_"


@attrs.frozen(kw_only=True)
class HookCall:
    """One hook implementation about to be called (what a monitor's ``before`` receives).

    Attributes:
        hook: hook name, e.g. ``lash_before_turn``.
        plugin: name of the plugin whose implementation is called.
        kwargs: every argument the kernel offers for this call, by name (read-only), including
            those the implementation does not ask for; ``host`` is the core's ``PluginHost``.
    """

    hook: str
    plugin: str
    kwargs: Mapping[str, Any]


@attrs.frozen(kw_only=True)
class HookCallOutcome:
    """How one implementation call ended (what a monitor's ``after`` receives).

    Attributes:
        result: the value it returned (awaited, for an async implementation); None on error.
        exception: the exception it raised, or None. The kernel then raises, logs or reports
            it as ``PluginHookError`` as the hook's docs say.
        duration_s: wall time of the call in seconds (``time.perf_counter``), awaiting included.
    """

    result: Any = None
    exception: BaseException | None = None
    duration_s: float = 0.0


HookMonitorBefore = Callable[[HookCall], None]
"""``before(call)``: called just before an implementation runs. Must not raise."""

HookMonitorAfter = Callable[[HookCall, HookCallOutcome], None]
"""``after(call, outcome)``: called when it returned or raised. Must not raise."""

_Monitor = tuple["HookMonitorBefore | None", "HookMonitorAfter | None"]


def print_hook_call(call: HookCall, outcome: HookCallOutcome) -> None:
    """The ``LASH_TRACE_HOOKS=1`` monitor: one line per implementation call on stderr.

    Format: ``lash hook <hook> plugin=<plugin> <milliseconds> ms`` plus ``raised <Type>: <message>``
    when it raised.
    """
    line = f"lash hook {call.hook} plugin={call.plugin} {outcome.duration_s * 1e3:.3f} ms"
    if outcome.exception is not None:
        line += f" raised {type(outcome.exception).__name__}: {outcome.exception}"
    print(line, file=sys.stderr, flush=True)


class LashPluginManager(pluggy.PluginManager):
    """pluggy's manager, counting hook-call monitors so ``KernelHooks`` knows when to route
    implementation calls through pluggy's hook execution (where those monitors sit).

    Attributes:
        hookcall_monitors: monitors installed with ``add_hookcall_monitoring`` (or
            ``enable_tracing``) and not undone yet.
    """

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.hookcall_monitors = 0

    def add_hookcall_monitoring(self, before: Any, after: Any) -> Callable[[], None]:
        """``pluggy.PluginManager.add_hookcall_monitoring``; the kernel's calls are seen too.

        Returns:
            ``undo()``, which also stops counting this monitor (idempotent).
        """
        undo = super().add_hookcall_monitoring(before, after)
        self.hookcall_monitors += 1
        done = False

        def undo_and_count() -> None:
            nonlocal done
            undo()
            if not done:
                done = True
                self.hookcall_monitors -= 1

        return undo_and_count


class KernelHooks:
    """The typed facade over one core's ``PluginManager``: the only place that calls hooks.

    Args:
        pm: the manager (``lash_kernel.runtime.loader.make_plugin_manager``); with a plain
            ``pluggy.PluginManager`` every call takes the monitored path.
        host: the ``PluginHost`` offered to every hook as ``host`` (None outside a core, e.g.
            when the CLI only collects commands).
        trace: print every implementation call to stderr (``print_hook_call``); ``LashCore``
            sets it from ``LASH_TRACE_HOOKS``.

    Implementations run in pluggy's call order; each call is attributed to its plugin so
    failures raise ``PluginHookError(plugin, hook)``. Hooks documented "may be async" are
    awaited one implementation at a time, preserving that order.

    Attributes:
        published: hooks published by plugins through ``lash_addhooks``: hook name -> plugin.
        configuring: the plugin whose ``lash_configure`` is running, else None (a plugin object
            it registers with ``add_plugin`` is shown nested under it by ``lash plugins``).
    """

    def __init__(self, pm: pluggy.PluginManager, *, host: PluginHost | None = None, trace: bool = False) -> None:
        self.pm = pm
        self.host = host
        self.published: dict[str, str] = {}
        self.configuring: str | None = None
        self._monitors: tuple[_Monitor, ...] = ()
        self._counter = pm if isinstance(pm, LashPluginManager) else None
        if trace:
            self.monitor(after=print_hook_call)

    # ---------------------------------------------------------------- monitoring
    def monitor(
        self, before: HookMonitorBefore | None = None, after: HookMonitorAfter | None = None
    ) -> Callable[[], None]:
        """Watch every hook implementation call the kernel makes through this facade.

        Args:
            before: ``before(HookCall)`` just before each implementation runs, or None.
            after: ``after(HookCall, HookCallOutcome)`` when it returned or raised (async
                implementations: after awaiting), or None.
        Returns:
            ``undo()``: removes this monitor (idempotent).
        Raises:
            Nothing. An exception raised by ``before``/``after`` propagates to the kernel code
            that made the hook call (a bug in the monitor).

        While any monitor is installed, calls go through pluggy's hook execution, so pluggy's
        ``add_hookcall_monitoring`` monitors also see them.
        """
        entry: _Monitor = (before, after)
        self._monitors = (*self._monitors, entry)

        def undo() -> None:
            self._monitors = tuple(m for m in self._monitors if m is not entry)

        return undo

    @property
    def monitored(self) -> bool:
        """True while a ``monitor`` or a pluggy hook-call monitor is installed."""
        return bool(self._monitors) or self._counter is None or self._counter.hookcall_monitors > 0

    # ---------------------------------------------------------------- calling
    def _order(self, hook: str) -> list[Any]:
        """The implementations of ``hook`` in pluggy's call order (first called first)."""
        impls = getattr(self.pm.hook, hook).get_hookimpls()
        impls.reverse()
        for impl in impls:
            if impl.hookwrapper or impl.wrapper:
                raise PluginError(f"plugin {impl.plugin_name!r}: wrappers are not supported on {hook}")
        return impls

    def implemented(self, hook: str) -> bool:
        """True when at least one plugin implements ``hook`` (lets callers skip building args)."""
        return bool(getattr(self.pm.hook, hook).get_hookimpls())

    def _invoke(self, hook: str, impl: Any, values: Mapping[str, Any]) -> Any:
        """Call one sync implementation with the arguments it asked for."""
        if self.monitored:
            result = self._invoke_monitored(hook, impl, values)
        else:
            try:
                result = impl.function(*[values[a] for a in impl.argnames])
            except Exception as exc:
                raise PluginHookError(impl.plugin_name, hook, exc) from exc
        if inspect.isawaitable(result):
            getattr(result, "close", lambda: None)()
            raise PluginHookError(impl.plugin_name, hook, TypeError(f"{hook} must not be async"))
        return result

    async def _await(self, hook: str, impl: Any, values: Mapping[str, Any]) -> Any:
        """Call one implementation that may be async, awaiting its result."""
        if self.monitored:
            return await self._await_monitored(hook, impl, values)
        try:
            result = impl.function(*[values[a] for a in impl.argnames])
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            raise PluginHookError(impl.plugin_name, hook, exc) from exc
        return result

    def _exec(self, hook: str, impl: Any, values: Mapping[str, Any]) -> Any:
        """Run one implementation through pluggy's hook execution (monitors see it)."""
        caller = getattr(self.pm.hook, hook)
        return caller._hookexec(hook, (impl,), values, True)  # one impl, firstresult: its raw value

    def _before(self, hook: str, impl: Any, values: Mapping[str, Any]) -> HookCall:
        call = HookCall(hook=hook, plugin=impl.plugin_name, kwargs=MappingProxyType(dict(values)))
        for before, _ in self._monitors:
            if before is not None:
                before(call)
        return call

    def _after(self, call: HookCall, result: Any, exception: BaseException | None, start: float) -> None:
        outcome = HookCallOutcome(result=result, exception=exception, duration_s=time.perf_counter() - start)
        for _, after in self._monitors:
            if after is not None:
                after(call, outcome)

    def _invoke_monitored(self, hook: str, impl: Any, values: Mapping[str, Any]) -> Any:
        call = self._before(hook, impl, values)
        start = time.perf_counter()
        try:
            result = self._exec(hook, impl, values)
        except BaseException as exc:
            self._after(call, None, exc, start)
            if isinstance(exc, Exception):
                raise PluginHookError(impl.plugin_name, hook, exc) from exc
            raise
        self._after(call, result, None, start)
        return result

    async def _await_monitored(self, hook: str, impl: Any, values: Mapping[str, Any]) -> Any:
        call = self._before(hook, impl, values)
        start = time.perf_counter()
        try:
            result = self._exec(hook, impl, values)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            self._after(call, None, exc, start)
            if isinstance(exc, Exception):
                raise PluginHookError(impl.plugin_name, hook, exc) from exc
            raise
        self._after(call, result, None, start)
        return result

    def _call(self, hook: str, values: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Every implementation in order; the first failure raises."""
        return [(impl.plugin_name, self._invoke(hook, impl, values)) for impl in self._order(hook)]

    def _call_each(self, hook: str, values: Mapping[str, Any]) -> list[PluginHookError]:
        """Every implementation, even after failures; return the failures (for observers)."""
        errors = []
        for impl in self._order(hook):
            try:
                self._invoke(hook, impl, values)
            except PluginHookError as exc:
                errors.append(exc)
        return errors

    async def _acall_each(self, hook: str, values: Mapping[str, Any]) -> list[PluginHookError]:
        """``_call_each`` for hooks that may be async."""
        errors = []
        for impl in self._order(hook):
            try:
                await self._await(hook, impl, values)
            except PluginHookError as exc:
                errors.append(exc)
        return errors

    def _first(self, hook: str, values: Mapping[str, Any], check: Callable[[str, Any], None]) -> Any:
        """Implementations in order until one returns non-None (``firstresult`` from the spec)."""
        caller = getattr(self.pm.hook, hook)
        first = bool(caller.spec is not None and caller.spec.opts.get("firstresult"))
        found = None
        for impl in self._order(hook):
            result = self._invoke(hook, impl, values)
            if result is None:
                continue
            check(impl.plugin_name, result)
            if found is None:
                found = result
            if first:
                break
        return found

    def _per_plugin(self, hook: str, make: Callable[[str], Any]) -> None:
        """Call a registrar hook once per plugin with ``registry=make(plugin)`` (and ``host``)."""
        for impl in self._order(hook):
            self._invoke(hook, impl, {"registry": make(impl.plugin_name), "host": self.host})

    # ---------------------------------------------------------------- published hooks
    def addhooks(self, plugins: Iterable[object] | None = None) -> None:
        """Run ``lash_addhooks`` for ``plugins`` (None: every registered plugin), in call order.

        Raises:
            PluginHookError: an implementation raised (``ConfigError`` and ``PluginError`` from
                the registrar included, as its cause).
        """
        only = None if plugins is None else {id(p) for p in plugins}
        hook = "lash_addhooks"
        for impl in self._order(hook):
            if only is None or id(impl.plugin) in only:
                registrar = HookspecRegistrar(self._publish, impl.plugin_name)
                self._invoke(hook, impl, {"registry": registrar})

    def _publish(self, namespace: object, plugin: str) -> tuple[str, ...]:
        """Add the ``@hookspec`` functions of ``namespace`` to the manager for ``plugin``."""
        project = self.pm.project_name
        names = []
        for name in dir(namespace):
            opts = getattr(getattr(namespace, name, None), f"{project}_spec", None)
            if isinstance(opts, dict):
                names.append((name, opts))
        if not names:
            raise ConfigError(f"plugin {plugin!r}: {namespace!r} has no @hookspec functions to publish")
        for name, opts in names:
            if name.startswith(_KERNEL_PREFIX):
                raise ConfigError(
                    f"plugin {plugin!r}: hook names starting with 'lash_' are the kernel's; rename {name!r}"
                )
            if opts.get("historic"):
                raise ConfigError(f"plugin {plugin!r}: historic hooks are not supported ({name!r})")
            caller = getattr(self.pm.hook, name, None)
            if caller is not None and caller.spec is not None:
                owner = self.published.get(name, "?")
                raise ConfigError(f"hook {name!r} from plugin {plugin!r} is already published by plugin {owner!r}")
        try:
            self.pm.add_hookspecs(cast(Any, namespace))
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"hook published by plugin {plugin!r}: {exc}") from exc
        for name, _ in names:
            self.published[name] = plugin
        return tuple(n for n, _ in names)

    def _published_values(self, name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        if name not in self.published:
            kind = "a kernel hook" if name.startswith(_KERNEL_PREFIX) else "not published by any plugin (lash_addhooks)"
            raise PluginError(f"cannot call hook {name!r}: it is {kind}")
        spec = getattr(self.pm.hook, name).spec
        values = dict(kwargs)
        if "host" in spec.argnames and "host" not in values:
            values["host"] = self.host
        missing = [a for a in spec.argnames if a not in values]
        extra = [a for a in values if a not in spec.argnames]
        if missing or extra:
            raise TypeError(f"{name}(): missing arguments {missing}, unknown arguments {extra}")
        return values

    def call_published(self, name: str, kwargs: Mapping[str, Any]) -> list[Any]:
        """Call a hook a plugin published (``lash_addhooks``): every implementation, in call order.

        Args:
            name: the published hook's name.
            kwargs: its arguments by name; ``host`` is filled in when the spec has it.
        Returns:
            The non-None results in call order; for a ``firstresult`` spec, at most one.
        Raises:
            PluginError: ``name`` is a kernel hook or was never published.
            TypeError: missing or unknown arguments.
            PluginHookError: an implementation raised or is async (the later ones do not run).
        """
        values = self._published_values(name, kwargs)
        first = bool(getattr(self.pm.hook, name).spec.opts.get("firstresult"))
        out = []
        for impl in self._order(name):
            result = self._invoke(name, impl, values)
            if result is not None:
                out.append(result)
                if first:
                    break
        return out

    async def acall_published(self, name: str, kwargs: Mapping[str, Any]) -> list[Any]:
        """``call_published`` whose implementations may be async (awaited one at a time)."""
        values = self._published_values(name, kwargs)
        first = bool(getattr(self.pm.hook, name).spec.opts.get("firstresult"))
        out = []
        for impl in self._order(name):
            result = await self._await(name, impl, values)
            if result is not None:
                out.append(result)
                if first:
                    break
        return out

    # ---------------------------------------------------------------- build
    def register_config(self, classes: dict[str, type]) -> None:
        """Run ``lash_register_config``; fills ``classes`` (plugin -> attrs class)."""
        for impl in self._order("lash_register_config"):
            self._invoke("lash_register_config", impl, {"registry": ConfigRegistrar(classes, impl.plugin_name)})

    def configure(self, host: PluginHost, configs: Mapping[str, object]) -> None:
        """Run ``lash_configure``; each plugin gets ``host`` and its own entry of ``configs`` (or None)."""
        for impl in self._order("lash_configure"):
            self.configuring = impl.plugin_name
            try:
                self._invoke("lash_configure", impl, {"host": host, "config": configs.get(impl.plugin_name)})
            finally:
                self.configuring = None

    def register_tools(self, registry: ToolRegistry, providers: list[tuple[str, ToolProvider]] | None = None) -> None:
        """Run ``lash_register_tools`` with a registrar bound to each plugin in turn."""
        sink: list[tuple[str, ToolProvider]] = providers if providers is not None else []
        self._per_plugin("lash_register_tools", lambda p: ToolRegistrar(registry, sink, p))

    def register_modes(self, modes: dict[str, ModeInfo]) -> None:
        """Run ``lash_register_modes``; fills ``modes``."""
        self._per_plugin("lash_register_modes", lambda p: ModeRegistrar(modes, p))

    def register_record_types(self, types: dict[str, tuple[str, type]]) -> None:
        """Run ``lash_register_record_types``; fills ``types`` (KIND -> (plugin, class))."""
        self._per_plugin("lash_register_record_types", lambda p: RecordTypeRegistrar(types, p))

    def register_usage_sources(self, sources: dict[str, tuple[str, str]]) -> None:
        """Run ``lash_register_usage_sources``; fills ``sources`` (name -> (plugin, description))."""
        self._per_plugin("lash_register_usage_sources", lambda p: UsageSourceRegistrar(sources, p))

    def register_stores(self, stores: dict[str, tuple[str, Callable[[str], Any], str]]) -> None:
        """Run ``lash_register_stores``; fills ``stores`` (scheme -> (plugin, opener, description))."""
        for impl in self._order("lash_register_stores"):
            self._invoke("lash_register_stores", impl, {"registry": StoreRegistrar(stores, impl.plugin_name)})

    def register_commands(self, cli: Any) -> list[PluginHookError]:
        """Run ``lash_register_commands`` on ``cli``; failures are returned, never raised."""
        return self._call_each("lash_register_commands", {"cli": cli})

    # ---------------------------------------------------------------- prompt
    def prompt_contributions(self, *, session_id: str, tool_names: frozenset[str]) -> list[PromptContribution]:
        """Collect ``lash_prompt_contributions`` in call order. Raises ``PluginHookError``."""
        out: list[PromptContribution] = []
        values = {"session_id": session_id, "tool_names": tool_names, "host": self.host}
        for plugin, result in self._call("lash_prompt_contributions", values):
            if result is not None and not isinstance(result, (list, tuple)):
                raise PluginHookError(
                    plugin, "lash_prompt_contributions",
                    TypeError(f"expected a list of PromptContribution or None, got {result!r}"),
                )
            for item in result or ():
                if not isinstance(item, PromptContribution):
                    raise PluginHookError(
                        plugin, "lash_prompt_contributions", TypeError(f"expected PromptContribution, got {item!r}")
                    )
                out.append(item)
        return out

    # ---------------------------------------------------------------- turn
    async def before_turn(self, *, session_id: str, turn_id: str, user_input: Message) -> AbortTurn | None:
        """Fire ``lash_before_turn`` (may be async); the first ``AbortTurn`` returned wins.

        Raises ``PluginHookError``.
        """
        hook = "lash_before_turn"
        values = {"session_id": session_id, "turn_id": turn_id, "user_input": user_input, "host": self.host}
        for impl in self._order(hook):
            result = await self._await(hook, impl, values)
            if isinstance(result, AbortTurn):
                return AbortTurn(reason=f"plugin {impl.plugin_name!r}: {result.reason}")
        return None

    async def checkpoint(
        self, *, session_id: str, turn_id: str, phase: str, messages: tuple[Message, ...]
    ) -> tuple[AbortTurn | InjectMessages | None, OpenFrame | None]:
        """Fire ``lash_checkpoint`` (may be async) and merge the directives.

        Returns:
            ``(directive, frame)``: ``directive`` is ``AbortTurn`` if any plugin aborted (its
            reason prefixed with the plugin), else one ``InjectMessages`` with every injection
            in call order, else None; ``frame`` is the first ``OpenFrame`` returned, or None.
        Raises:
            PluginHookError: an implementation raised or returned something else.
        """
        hook = "lash_checkpoint"
        values = {"session_id": session_id, "turn_id": turn_id, "phase": phase, "messages": messages, "host": self.host}
        injected: list[Message] = []
        frame: OpenFrame | None = None
        for impl in self._order(hook):
            result = await self._await(hook, impl, values)
            if result is None:
                continue
            if isinstance(result, AbortTurn):
                return AbortTurn(reason=f"plugin {impl.plugin_name!r}: {result.reason}"), None
            if isinstance(result, OpenFrame):
                frame = frame or result
                continue
            if not isinstance(result, InjectMessages):
                error = TypeError(f"expected a directive or None, got {result!r}")
                raise PluginHookError(impl.plugin_name, hook, error)
            injected.extend(result.messages)
        return (InjectMessages(messages=tuple(injected)) if injected else None), frame

    async def compact(
        self, *, session_id: str, turn_id: str, messages: tuple[Message, ...], context_window: int | None,
        input_tokens: int, overflow: bool = False,
    ) -> OpenFrame | None:
        """Fire ``lash_compact`` (may be async) until one implementation opens a frame.

        Raises:
            PluginHookError: an implementation raised or returned something else.
        """
        hook = "lash_compact"
        values = {
            "session_id": session_id, "turn_id": turn_id, "messages": messages, "context_window": context_window,
            "input_tokens": input_tokens, "overflow": overflow, "host": self.host,
        }
        for impl in self._order(hook):
            result = await self._await(hook, impl, values)
            if result is None:
                continue
            if not isinstance(result, OpenFrame):
                raise PluginHookError(impl.plugin_name, hook, TypeError(f"expected OpenFrame or None, got {result!r}"))
            return result
        return None

    async def before_tool_call(
        self, *, session_id: str, turn_id: str, call: ToolCallPart
    ) -> ToolCallPart | BlockToolCall:
        """Fire ``lash_before_tool_call`` (may be async), chaining rewritten calls.

        Returns:
            The call to run (maybe rewritten) or a ``BlockToolCall``.
        Raises:
            PluginHookError: an implementation raised, returned a wrong type, or changed the id.
        """
        hook = "lash_before_tool_call"
        for impl in self._order(hook):
            values = {"session_id": session_id, "turn_id": turn_id, "call": call, "host": self.host}
            result = await self._await(hook, impl, values)
            if result is None:
                continue
            if isinstance(result, BlockToolCall):
                return result
            if not isinstance(result, ToolCallPart) or result.id != call.id:
                expected = f"None, BlockToolCall or a ToolCallPart with id {call.id!r}"
                raise PluginHookError(impl.plugin_name, hook, TypeError(f"expected {expected}, got {result!r}"))
            call = result
        return call

    async def after_tool_call(
        self, *, session_id: str, turn_id: str, call: ToolCallPart, result: ToolResultPart, duration_s: float
    ) -> ToolResultPart:
        """Fire ``lash_after_tool_call`` (may be async), chaining replaced results.

        Raises ``PluginHookError`` (wrong type or a changed ``call_id`` included).
        """
        hook = "lash_after_tool_call"
        for impl in self._order(hook):
            values = {
                "session_id": session_id, "turn_id": turn_id, "call": call, "result": result,
                "duration_s": duration_s, "host": self.host,
            }
            new = await self._await(hook, impl, values)
            if new is None:
                continue
            if not isinstance(new, ToolResultPart) or new.call_id != result.call_id:
                expected = f"None or a ToolResultPart for call {result.call_id!r}"
                raise PluginHookError(impl.plugin_name, hook, TypeError(f"expected {expected}, got {new!r}"))
            result = new
        return result

    def after_turn(
        self, *, session_id: str, turn_id: str, outcome: Outcome, messages: tuple[Message, ...], usage: UsageLedger
    ) -> list[PluginHookError]:
        """Fire ``lash_after_turn``; every implementation runs; failures are returned."""
        values = {
            "session_id": session_id, "turn_id": turn_id, "outcome": outcome, "messages": messages,
            "usage": usage, "host": self.host,
        }
        return self._call_each("lash_after_turn", values)

    # ---------------------------------------------------------------- context
    def transform_context(self, *, session_id: str, turn_id: str, messages: tuple[Message, ...]) -> tuple[Message, ...]:
        """Chain ``lash_transform_context``: each implementation sees the previous output.

        Raises ``PluginHookError``.
        """
        hook = "lash_transform_context"
        for impl in self._order(hook):
            values = {"session_id": session_id, "turn_id": turn_id, "messages": messages, "host": self.host}
            result = self._invoke(hook, impl, values)
            if result is None:
                continue
            if not isinstance(result, (tuple, list)) or not all(isinstance(m, Message) for m in result):
                got = type(result).__name__
                raise PluginHookError(
                    impl.plugin_name, hook, TypeError(f"expected a sequence of Message or None, got {got}")
                )
            messages = tuple(result)
        return messages

    def plan_compaction(
        self, *, session_id: str, messages: tuple[Message, ...], context_window: int | None, input_tokens: int
    ) -> CompactionPlan | None:
        """``lash_plan_compaction`` (firstresult, from its spec). Raises ``PluginHookError``."""
        hook = "lash_plan_compaction"

        def check(plugin: str, result: Any) -> None:
            if not isinstance(result, CompactionPlan):
                raise PluginHookError(plugin, hook, TypeError(f"expected CompactionPlan or None, got {result!r}"))

        values = {
            "session_id": session_id, "messages": messages, "context_window": context_window,
            "input_tokens": input_tokens, "host": self.host,
        }
        plan: CompactionPlan | None = self._first(hook, values, check)
        return plan

    async def compact_session(self, *, session_id: str, instructions: str | None) -> bool | None:
        """Fire ``lash_compact_session`` (may be async) until one implementation answers.

        Returns:
            The first non-None answer (True: a frame was opened), or None when no plugin answered.
        Raises:
            PluginHookError: an implementation raised or returned something else.
        """
        hook = "lash_compact_session"
        values = {"session_id": session_id, "instructions": instructions, "host": self.host}
        for impl in self._order(hook):
            result = await self._await(hook, impl, values)
            if result is None:
                continue
            if not isinstance(result, bool):
                error = TypeError(f"expected True, False or None, got {result!r}")
                raise PluginHookError(impl.plugin_name, hook, error)
            return result
        return None

    # ---------------------------------------------------------------- lifecycle
    def session_opened(self, *, session_id: str, info: SessionInfo, created: bool) -> list[PluginHookError]:
        """Fire ``lash_session_opened``; failures are returned (the caller logs them)."""
        values = {"session_id": session_id, "info": info, "created": created, "host": self.host}
        return self._call_each("lash_session_opened", values)

    async def turn_committed(
        self, *, session_id: str, turn_id: str, outcome: Outcome, head_revision: int
    ) -> list[PluginHookError]:
        """Fire ``lash_turn_committed`` (may be async); every implementation runs; failures returned."""
        values = {
            "session_id": session_id, "turn_id": turn_id, "outcome": outcome, "head_revision": head_revision,
            "host": self.host,
        }
        return await self._acall_each("lash_turn_committed", values)

    def session_closed(self, *, session_id: str) -> list[PluginHookError]:
        """Fire ``lash_session_closed``; failures are returned (the caller logs them)."""
        return self._call_each("lash_session_closed", {"session_id": session_id, "host": self.host})

    # ---------------------------------------------------------------- observation
    def on_activity(self, activity: TurnActivity) -> list[PluginHookError]:
        """Fire ``lash_on_activity``; every observer runs; failures are returned."""
        return self._call_each("lash_on_activity", {"activity": activity, "host": self.host})

    def on_trace_record(self, record: TraceRecord) -> list[PluginHookError]:
        """Fire ``lash_on_trace_record``; every observer runs; failures are returned."""
        return self._call_each("lash_on_trace_record", {"record": record, "host": self.host})

    @property
    def has_activity_observers(self) -> bool:
        """True when some plugin implements ``lash_on_activity`` (lets the driver skip the call)."""
        return self.implemented("lash_on_activity")

    # ---------------------------------------------------------------- state
    def snapshot_state(
        self, *, session_id: str, turn_id: str
    ) -> tuple[list[tuple[str, object]], list[PluginHookError]]:
        """Collect ``lash_snapshot_state`` per plugin: ``([(plugin, record)], failures)``."""
        out, errors = [], []
        values = {"session_id": session_id, "turn_id": turn_id, "host": self.host}
        for impl in self._order("lash_snapshot_state"):
            try:
                result = self._invoke("lash_snapshot_state", impl, values)
            except PluginHookError as exc:
                errors.append(exc)
                continue
            if result is not None:
                out.append((impl.plugin_name, result))
        return out, errors

    def restore_state(self, *, session_id: str, states: Mapping[str, object]) -> list[PluginHookError]:
        """Give each plugin its own snapshot through ``lash_restore_state``; failures returned."""
        errors = []
        for impl in self._order("lash_restore_state"):
            if impl.plugin_name not in states:
                continue
            values = {"session_id": session_id, "state": states[impl.plugin_name], "host": self.host}
            try:
                self._invoke("lash_restore_state", impl, values)
            except PluginHookError as exc:
                errors.append(exc)
        return errors
