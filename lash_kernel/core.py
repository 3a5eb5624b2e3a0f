"""LashCore: the facade an application embeds.

One core = one model client, one store, one tool catalog and one pluggy ``PluginManager``
(never a module global). Building a core loads plugins and collects tools; nothing happens at
import time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lash_kernel.driver import RetryPolicy, TurnRuntime
from lash_kernel.errors import ConfigError
from lash_kernel.machine import MachineConfig
from lash_kernel.plugins import KernelHooks, LoadReport, load_plugins, make_plugin_manager
from lash_kernel.providers.base import ModelClient
from lash_kernel.session import Session, TurnResult
from lash_kernel.store.base import SessionInfo, Store
from lash_kernel.store.memory import MemoryStore
from lash_kernel.tools import Tool, ToolRegistry, tool

__all__ = ["LashCore"]


class LashCore:
    """The runtime: sessions, turns, tools and plugins over one model and one store.

    Args:
        model_client: the provider (``OpenAIChatProvider``, ``ScriptedModel``, ...).
        model: model id sent with every call.
        context_window: the model's context window in tokens, or None if unknown.
        store: where sessions live; default a fresh ``MemoryStore`` (not durable). The core
            takes ownership: ``close()`` closes it.
        tools: host tools: ``Tool`` objects or plain functions (wrapped with ``@tool``).
        plugins: host plugin objects; registered last, so their hooks run first.
        prompt: the base system prompt, or None.
        max_turns: default model calls allowed per turn.
        max_output_tokens: default output-token cap per model call, or None.
        temperature: default sampling temperature, or None.
        tool_timeout_s: default per-tool timeout in seconds, or None for none.
        request_timeout_s: deadline for one model-call attempt including its whole stream,
            seconds (None for none); a timed-out attempt is retried per ``retry``.
        retry: model-call retry policy.
        entry_points: load installed plugins from the ``lash.plugins`` entry-point group.
        allow, block, strict: entry-point filtering and strict loading (see ``load_plugins``).
        clock: seconds since the epoch; inject a fake for deterministic tests.
        new_id: id factory for sessions, turns and nodes.
    Raises:
        ConfigError: invalid arguments or duplicate tool names.
        PluginLoadError: a plugin failed to load and ``strict`` is set.
        PluginHookError: a plugin failed while registering tools.
    """

    def __init__(
        self,
        *,
        model_client: ModelClient,
        model: str,
        context_window: int | None = None,
        store: Store | None = None,
        tools: Iterable[Tool | Callable[..., Any]] = (),
        plugins: Iterable[object] = (),
        prompt: str | None = None,
        max_turns: int = 16,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
        tool_timeout_s: float | None = None,
        request_timeout_s: float | None = 600.0,
        retry: RetryPolicy | None = None,
        entry_points: bool = True,
        allow: Iterable[str] | None = None,
        block: Iterable[str] = (),
        strict: bool = False,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        if not model:
            raise ConfigError("model must be a non-empty model id")
        if max_turns < 1:
            raise ConfigError(f"max_turns must be >= 1, got {max_turns}")
        if max_output_tokens is not None and max_output_tokens < 1:
            raise ConfigError(f"max_output_tokens must be >= 1, got {max_output_tokens}")
        self.model = model
        self.context_window = context_window
        self.max_turns = max_turns
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self.store: Store = store if store is not None else MemoryStore()
        self.pm = make_plugin_manager()
        self.load_report: LoadReport = load_plugins(
            self.pm, plugins=tuple(plugins), entry_points=entry_points, allow=allow, block=block, strict=strict
        )
        self.hooks = KernelHooks(self.pm)
        self.tools = ToolRegistry()
        for item in tools:
            self.tools.add(item if isinstance(item, Tool) else tool(item), provider="host")
        self.hooks.register_tools(self.tools)
        self._runtime = TurnRuntime(
            client=model_client,
            store=self.store,
            hooks=self.hooks,
            tools=self.tools,
            prompt=prompt,
            clock=clock,
            new_id=new_id or (lambda: uuid.uuid4().hex),
            retry=retry or RetryPolicy(),
            tool_timeout_s=tool_timeout_s,
            request_timeout_s=request_timeout_s,
        )

    @property
    def model_client(self) -> ModelClient:
        """The provider this core calls."""
        return self._runtime.client

    def session(self, session_id: str | None = None) -> Session:
        """Open (creating if needed) the session ``session_id``; a new id when None.

        Cheap: reads only the session's head, never its history.
        """
        sid = session_id or self._runtime.new_id()
        info = self.store.open_session(sid, mode="standard", frame_id="f0", now=self._runtime.clock())
        return Session(self, info)

    def sessions(self) -> list[SessionInfo]:
        """Every session in the store, most recently updated first."""
        return self.store.list_sessions()

    def run_sync(self, prompt: str, *, session_id: str | None = None, **kwargs: Any) -> TurnResult:
        """One turn from synchronous code: ``core.run_sync("hi")``. See ``Session.turn``."""
        return self.session(session_id).run_sync(prompt, **kwargs)

    def close(self) -> None:
        """Close the store. Idempotent. The model client is the host's to close."""
        self.store.close()

    async def aclose(self) -> None:
        """Async ``close``."""
        self.close()

    def __enter__(self) -> LashCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LashCore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _machine_config(
        self,
        *,
        turn_id: str,
        max_turns: int | None,
        max_output_tokens: int | None,
        temperature: float | None,
        options: Mapping[str, Any] | None,
    ) -> MachineConfig:
        try:
            return MachineConfig(
                turn_id=turn_id,
                model=self.model,
                tools=self.tools.specs(),
                max_turns=max_turns or self.max_turns,
                max_output_tokens=max_output_tokens or self.max_output_tokens,
                temperature=temperature if temperature is not None else self.temperature,
                options=dict(options or {}),
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
