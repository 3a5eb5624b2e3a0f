"""KernelHooks: the one typed facade through which the kernel calls hooks.

Rule: no other kernel module spells a hook name; every call goes through pluggy's own hook
caller, so ``PluginManager.add_hookcall_monitoring`` and ``KernelHooks.monitor`` see it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import pluggy

from lash_kernel.activity import TurnActivity
from lash_kernel.directives import AbortTurn, BlockToolCall, CheckpointDirective, CompactionPlan, InjectMessages
from lash_kernel.errors import PluginError, PluginHookError
from lash_kernel.messages import Message, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Outcome
from lash_kernel.plugin import (
    ConfigRegistrar,
    ModeInfo,
    ModeRegistrar,
    RecordTypeRegistrar,
    ToolRegistrar,
    UsageSourceRegistrar,
)
from lash_kernel.prompt import PromptContribution
from lash_kernel.store.base import SessionInfo
from lash_kernel.tools import ToolProvider, ToolRegistry
from lash_kernel.trace import TraceRecord
from lash_kernel.usage import UsageLedger

__all__ = ["KernelHooks"]


class KernelHooks:
    """The typed facade over one core's ``PluginManager``: the only place that calls hooks.

    Implementations run in pluggy's call order; each call is attributed to its plugin so
    failures raise ``PluginHookError(plugin, hook)``. Hooks documented "may be async" are
    awaited one implementation at a time (``_await``), preserving that order.
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

    def implemented(self, hook: str) -> bool:
        """True when at least one plugin implements ``hook`` (lets callers skip building args)."""
        return bool(getattr(self.pm.hook, hook).get_hookimpls())

    @staticmethod
    def _invoke(plugin: str, hook: str, fn: Callable[..., Any], argnames: tuple[str, ...], values: Mapping[str, Any]) -> Any:
        """Call one sync implementation with the arguments it asked for."""
        try:
            result = fn(**{a: values[a] for a in argnames})
        except Exception as exc:
            raise PluginHookError(plugin, hook, exc) from exc
        if inspect.isawaitable(result):
            getattr(result, "close", lambda: None)()
            raise PluginHookError(plugin, hook, TypeError(f"{hook} must not be async"))
        return result

    @staticmethod
    async def _await(
        plugin: str, hook: str, fn: Callable[..., Any], argnames: tuple[str, ...], values: Mapping[str, Any]
    ) -> Any:
        """Call one implementation that may be async, awaiting its result."""
        try:
            result = fn(**{a: values[a] for a in argnames})
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            raise PluginHookError(plugin, hook, exc) from exc
        return result

    def _call(self, hook: str, **values: Any) -> list[tuple[str, Any]]:
        """Every implementation in order; the first failure raises."""
        return [(plugin, self._invoke(plugin, hook, fn, names, values)) for plugin, fn, names in self._impls(hook)]

    def _call_each(self, hook: str, **values: Any) -> list[PluginHookError]:
        """Every implementation, even after failures; return the failures (for observers)."""
        errors = []
        for plugin, fn, names in self._impls(hook):
            try:
                self._invoke(plugin, hook, fn, names, values)
            except PluginHookError as exc:
                errors.append(exc)
        return errors

    async def _acall_each(self, hook: str, **values: Any) -> list[PluginHookError]:
        """``_call_each`` for hooks that may be async."""
        errors = []
        for plugin, fn, names in self._impls(hook):
            try:
                await self._await(plugin, hook, fn, names, values)
            except PluginHookError as exc:
                errors.append(exc)
        return errors

    def _per_plugin(self, hook: str, make: Callable[[str], Any]) -> None:
        """Call a ``lash_register_*`` hook once per plugin with ``registry=make(plugin)``."""
        for plugin, fn, names in self._impls(hook):
            self._invoke(plugin, hook, fn, names, {"registry": make(plugin)})

    # ---------------------------------------------------------------- build
    def register_config(self, classes: dict[str, type]) -> None:
        """Run ``lash_register_config``; fills ``classes`` (plugin -> attrs class)."""
        self._per_plugin("lash_register_config", lambda p: ConfigRegistrar(classes, p))

    def configure(self, core: Any, configs: Mapping[str, object]) -> None:
        """Run ``lash_configure``; each plugin gets its own entry of ``configs`` (or None)."""
        for plugin, fn, names in self._impls("lash_configure"):
            self._invoke(plugin, "lash_configure", fn, names, {"core": core, "config": configs.get(plugin)})

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

    def register_commands(self, cli: Any) -> list[PluginHookError]:
        """Run ``lash_register_commands`` on ``cli``; failures are returned, never raised."""
        return self._call_each("lash_register_commands", cli=cli)

    # ---------------------------------------------------------------- prompt
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

    # ---------------------------------------------------------------- turn
    async def before_turn(self, *, session_id: str, turn_id: str, user_input: Message) -> AbortTurn | None:
        """Fire ``lash_before_turn`` (may be async); the first ``AbortTurn`` returned wins.

        Raises ``PluginHookError``.
        """
        values = {"session_id": session_id, "turn_id": turn_id, "user_input": user_input}
        for plugin, fn, names in self._impls("lash_before_turn"):
            result = await self._await(plugin, "lash_before_turn", fn, names, values)
            if isinstance(result, AbortTurn):
                return AbortTurn(reason=f"plugin {plugin!r}: {result.reason}")
        return None

    async def checkpoint(
        self, *, session_id: str, turn_id: str, phase: str, messages: tuple[Message, ...]
    ) -> CheckpointDirective | None:
        """Fire ``lash_checkpoint`` (may be async) and merge the directives.

        Returns:
            ``AbortTurn`` if any plugin aborted (its reason prefixed with the plugin), else one
            ``InjectMessages`` with every injection in call order, else None.
        Raises:
            PluginHookError: an implementation raised or returned something else.
        """
        hook = "lash_checkpoint"
        values = {"session_id": session_id, "turn_id": turn_id, "phase": phase, "messages": messages}
        injected: list[Message] = []
        for plugin, fn, names in self._impls(hook):
            result = await self._await(plugin, hook, fn, names, values)
            if result is None:
                continue
            if isinstance(result, AbortTurn):
                return AbortTurn(reason=f"plugin {plugin!r}: {result.reason}")
            if not isinstance(result, InjectMessages):
                raise PluginHookError(plugin, hook, TypeError(f"expected a directive or None, got {result!r}"))
            injected.extend(result.messages)
        return InjectMessages(messages=tuple(injected)) if injected else None

    async def before_tool_call(self, *, session_id: str, turn_id: str, call: ToolCallPart) -> ToolCallPart | BlockToolCall:
        """Fire ``lash_before_tool_call`` (may be async), chaining rewritten calls.

        Returns:
            The call to run (maybe rewritten) or a ``BlockToolCall``.
        Raises:
            PluginHookError: an implementation raised, returned a wrong type, or changed the id.
        """
        hook = "lash_before_tool_call"
        for plugin, fn, names in self._impls(hook):
            values = {"session_id": session_id, "turn_id": turn_id, "call": call}
            result = await self._await(plugin, hook, fn, names, values)
            if result is None:
                continue
            if isinstance(result, BlockToolCall):
                return result
            if not isinstance(result, ToolCallPart) or result.id != call.id:
                expected = f"None, BlockToolCall or a ToolCallPart with id {call.id!r}"
                raise PluginHookError(plugin, hook, TypeError(f"expected {expected}, got {result!r}"))
            call = result
        return call

    async def after_tool_call(
        self, *, session_id: str, turn_id: str, call: ToolCallPart, result: ToolResultPart, duration_s: float
    ) -> ToolResultPart:
        """Fire ``lash_after_tool_call`` (may be async), chaining replaced results.

        Raises ``PluginHookError`` (wrong type or a changed ``call_id`` included).
        """
        hook = "lash_after_tool_call"
        for plugin, fn, names in self._impls(hook):
            values = {"session_id": session_id, "turn_id": turn_id, "call": call, "result": result, "duration_s": duration_s}
            new = await self._await(plugin, hook, fn, names, values)
            if new is None:
                continue
            if not isinstance(new, ToolResultPart) or new.call_id != result.call_id:
                expected = f"None or a ToolResultPart for call {result.call_id!r}"
                raise PluginHookError(plugin, hook, TypeError(f"expected {expected}, got {new!r}"))
            result = new
        return result

    def after_turn(
        self, *, session_id: str, turn_id: str, outcome: Outcome, messages: tuple[Message, ...], usage: UsageLedger
    ) -> list[PluginHookError]:
        """Fire ``lash_after_turn``; every implementation runs; failures are returned."""
        return self._call_each(
            "lash_after_turn", session_id=session_id, turn_id=turn_id, outcome=outcome, messages=messages, usage=usage
        )

    # ---------------------------------------------------------------- context
    def transform_context(self, *, session_id: str, turn_id: str, messages: tuple[Message, ...]) -> tuple[Message, ...]:
        """Chain ``lash_transform_context``: each implementation sees the previous output.

        Raises ``PluginHookError``.
        """
        hook = "lash_transform_context"
        for plugin, fn, names in self._impls(hook):
            values = {"session_id": session_id, "turn_id": turn_id, "messages": messages}
            result = self._invoke(plugin, hook, fn, names, values)
            if result is None:
                continue
            if not isinstance(result, (tuple, list)) or not all(isinstance(m, Message) for m in result):
                got = type(result).__name__
                raise PluginHookError(plugin, hook, TypeError(f"expected a sequence of Message or None, got {got}"))
            messages = tuple(result)
        return messages

    def plan_compaction(
        self, *, session_id: str, messages: tuple[Message, ...], context_window: int | None, input_tokens: int
    ) -> CompactionPlan | None:
        """``lash_plan_compaction`` (firstresult). Raises ``PluginHookError``."""
        hook = "lash_plan_compaction"
        values = {"session_id": session_id, "messages": messages, "context_window": context_window, "input_tokens": input_tokens}
        for plugin, fn, names in self._impls(hook):
            result = self._invoke(plugin, hook, fn, names, values)
            if result is None:
                continue
            if not isinstance(result, CompactionPlan):
                raise PluginHookError(plugin, hook, TypeError(f"expected CompactionPlan or None, got {result!r}"))
            return result
        return None

    # ---------------------------------------------------------------- lifecycle
    def session_opened(self, *, session_id: str, info: SessionInfo, created: bool) -> list[PluginHookError]:
        """Fire ``lash_session_opened``; failures are returned (the caller logs them)."""
        return self._call_each("lash_session_opened", session_id=session_id, info=info, created=created)

    async def turn_committed(self, *, session_id: str, turn_id: str, outcome: Outcome, head_revision: int) -> list[PluginHookError]:
        """Fire ``lash_turn_committed`` (may be async); every implementation runs; failures returned."""
        return await self._acall_each(
            "lash_turn_committed", session_id=session_id, turn_id=turn_id, outcome=outcome, head_revision=head_revision
        )

    def session_closed(self, *, session_id: str) -> list[PluginHookError]:
        """Fire ``lash_session_closed``; failures are returned (the caller logs them)."""
        return self._call_each("lash_session_closed", session_id=session_id)

    # ---------------------------------------------------------------- observation
    def on_activity(self, activity: TurnActivity) -> list[PluginHookError]:
        """Fire ``lash_on_activity``; every observer runs; failures are returned."""
        return self._call_each("lash_on_activity", activity=activity)

    def on_trace_record(self, record: TraceRecord) -> list[PluginHookError]:
        """Fire ``lash_on_trace_record``; every observer runs; failures are returned."""
        return self._call_each("lash_on_trace_record", record=record)

    @property
    def has_activity_observers(self) -> bool:
        """True when some plugin implements ``lash_on_activity`` (lets the driver skip the call)."""
        return self.implemented("lash_on_activity")

    # ---------------------------------------------------------------- state
    def snapshot_state(self, *, session_id: str, turn_id: str) -> tuple[list[tuple[str, object]], list[PluginHookError]]:
        """Collect ``lash_snapshot_state`` per plugin: ``([(plugin, record)], failures)``."""
        out, errors = [], []
        values = {"session_id": session_id, "turn_id": turn_id}
        for plugin, fn, names in self._impls("lash_snapshot_state"):
            try:
                result = self._invoke(plugin, "lash_snapshot_state", fn, names, values)
            except PluginHookError as exc:
                errors.append(exc)
                continue
            if result is not None:
                out.append((plugin, result))
        return out, errors

    def restore_state(self, *, session_id: str, states: Mapping[str, object]) -> list[PluginHookError]:
        """Give each plugin its own snapshot through ``lash_restore_state``; failures returned."""
        errors = []
        for plugin, fn, names in self._impls("lash_restore_state"):
            if plugin not in states:
                continue
            try:
                self._invoke(plugin, "lash_restore_state", fn, names, {"session_id": session_id, "state": states[plugin]})
            except PluginHookError as exc:
                errors.append(exc)
        return errors
