"""LashCore: the facade an application embeds.

One core = one model client, one store, one tool catalog and one pluggy ``PluginManager``
(never a module global). Building a core loads plugins and collects tools; nothing happens at
import time.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import anyio
import attrs

from lash_kernel.config import env_var, structure_config
from lash_kernel.errors import ConfigError, LashError, PluginHookError, TurnNotPendingError, TurnWaitTimeoutError
from lash_kernel.messages import Message
from lash_kernel.model import ModelClient
from lash_kernel.plugin import ModeInfo, PluginHost
from lash_kernel.runtime._lease import owner_name
from lash_kernel.runtime.driver import RetryPolicy, TurnRuntime
from lash_kernel.runtime.hooks import KernelHooks
from lash_kernel.runtime.host import CoreHost
from lash_kernel.runtime.loader import (
    LoadReport,
    PluginInfo,
    load_plugins,
    make_plugin_manager,
    plugin_infos,
    register_plugin,
)
from lash_kernel.runtime.services import Services
from lash_kernel.runtime.session import Session, SessionServices, TurnResult
from lash_kernel.runtime.stores import open_store_target
from lash_kernel.spec import SessionSpec
from lash_kernel.store.base import PendingInput, SessionInfo, Store, TurnRecord
from lash_kernel.store.memory import MemoryStore
from lash_kernel.text import valid_message, valid_text
from lash_kernel.tools import Tool, ToolProvider, ToolRegistry, tool
from lash_kernel.trace import TraceKind

_log = logging.getLogger("lash")

__all__ = ["LashCore"]


class LashCore:
    """The runtime: sessions, turns, tools and plugins over one model and one store.

    Args:
        model_client: the provider (``OpenAIChatProvider``, ``ScriptedModel``, ...).
        model: model id sent with every call.
        context_window: the model's context window in tokens, or None if unknown.
        store: where sessions live; default a fresh ``MemoryStore`` (not durable). A string is
            opened by the core once its plugins have loaded: a plain path is a SQLite file, a
            URL (``sqlite:///abs/path.db``, ``postgresql://…`` with lash-postgres) goes to the
            plugin that declared its scheme (``lash_register_stores``); an unknown scheme is a
            ``ConfigError`` naming the known ones. Added in 0.3 (strings). The core takes
            ownership: ``close()`` closes it.
        tools: host tools: ``Tool`` objects or plain functions (wrapped with ``@tool``).
        plugins: host plugin objects; registered last, so their hooks run first. A mapping
            ``{name: plugin}`` names each: give a plugin its entry-point name in tests and its
            ``plugin_config`` key is the one ``lash.toml`` uses (``[plugins.<name>]``).
        prompt: the base system prompt, or None.
        max_turns: default model calls allowed per turn.
        max_output_tokens: default output-token cap per model call, or None.
        temperature: default sampling temperature, or None.
        tool_timeout_s: default per-tool timeout in seconds, or None for none.
        request_timeout_s: deadline for one model-call attempt including its whole stream,
            seconds (None for none); a timed-out attempt is retried per ``retry``.
        stream_idle_timeout_s: longest wait for the next item of a model stream (the first
            included), seconds (> 0, or None for none); a stream idle that long fails the
            attempt, which is retried per ``retry``. Added in 0.2.
        retry: model-call retry policy.
        entry_points: load installed plugins from the ``lash.plugins`` entry-point group.
        allow, block, strict: entry-point filtering and strict loading (see ``load_plugins``).
        plugin_config: per-plugin configuration by plugin name: a mapping (validated strictly
            against the class the plugin declared in ``lash_register_config``, like a
            ``[plugins.<name>]`` table) or an instance of that class.
        config_source: where ``plugin_config`` came from: a ``lash.toml`` path (errors name it;
            ``config_dir`` is its directory) or ``<code>``.
        clock: seconds since the epoch; inject a fake for deterministic tests.
        new_id: id factory for sessions, turns and nodes.
        model_clients: other model clients by name, for sessions whose ``SessionSpec.client``
            names one and for ``complete(client=...)`` (e.g. a cheaper provider for
            summaries). Added in 0.2.
        lease_ttl_s: lifetime of a session's single-writer lease in seconds (> 0); a running
            turn renews it every third of that. A writer that dies holding it blocks the
            session until it expires (at once when the dead process was on this machine).
            Added in 0.2.
    Raises:
        ConfigError: invalid arguments, invalid plugin config, duplicate tool names, a host
            plugin without a stable name (``lash_plugin_name``) that implements the state hooks,
            or a plugin whose ``lash_configure`` raised ``ConfigError`` (it refused the
            configuration; the message names it).
        PluginLoadError: a plugin failed to load and ``strict`` is set.
        PluginHookError: a plugin failed in a build hook (``lash_configure``, ``lash_register_*``).

    Build order: load plugins; ``lash_register_config``; validate ``plugin_config``;
    ``lash_configure``; ``lash_register_tools``; ``lash_register_modes``;
    ``lash_register_record_types``; ``lash_register_usage_sources``. A failure closes what
    was opened so far.

    Plugins get ``plugin_host`` (a ``PluginHost``), never the core. ``LASH_TRACE_HOOKS=1`` in
    the environment (read here) prints every hook implementation call to stderr.
    """

    def __init__(
        self,
        *,
        model_client: ModelClient,
        model: str,
        context_window: int | None = None,
        store: Store | str | None = None,
        tools: Iterable[Tool | Callable[..., Any]] = (),
        plugins: Iterable[object] | Mapping[str, object] = (),
        prompt: str | None = None,
        max_turns: int = 16,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
        tool_timeout_s: float | None = None,
        request_timeout_s: float | None = 600.0,
        stream_idle_timeout_s: float | None = 60.0,
        retry: RetryPolicy | None = None,
        entry_points: bool = True,
        allow: Iterable[str] | None = None,
        block: Iterable[str] = (),
        strict: bool = False,
        plugin_config: Mapping[str, object] | None = None,
        config_source: str = "<code>",
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] | None = None,
        model_clients: Mapping[str, ModelClient] | None = None,
        lease_ttl_s: float = 30.0,
    ) -> None:
        if not model:
            raise ConfigError("model must be a non-empty model id")
        if max_turns < 1:
            raise ConfigError(f"max_turns must be >= 1, got {max_turns}")
        if max_output_tokens is not None and max_output_tokens < 1:
            raise ConfigError(f"max_output_tokens must be >= 1, got {max_output_tokens}")
        if stream_idle_timeout_s is not None and not stream_idle_timeout_s > 0:
            raise ConfigError(f"stream_idle_timeout_s must be > 0 seconds or None, got {stream_idle_timeout_s}")
        if not lease_ttl_s > 0:
            raise ConfigError(f"lease_ttl_s must be > 0 seconds, got {lease_ttl_s}")
        self.model = model
        self.context_window = context_window
        self.max_turns = max_turns
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self.store: Store = store if store is not None and not isinstance(store, str) else MemoryStore()
        self.config_source = config_source
        self._closers: list[Callable[[], None]] = []
        self._closed = False
        block = tuple(block)  # read twice: by the loader and by config validation
        host_plugins = dict(plugins) if isinstance(plugins, Mapping) else tuple(plugins)
        self.pm = make_plugin_manager()
        self._added_by: dict[str, str] = {}  # an added plugin -> the plugin that added it
        self._host = CoreHost(self)
        trace_hooks = os.environ.get(env_var("LASH_TRACE_HOOKS"), "").strip() not in ("", "0")
        self.hooks = KernelHooks(self.pm, host=self._host, trace=trace_hooks)
        self.load_report: LoadReport = load_plugins(
            self.pm, plugins=host_plugins, entry_points=entry_points, allow=allow, block=block, strict=strict,
            hooks=self.hooks,
        )
        self.tools = ToolRegistry()
        self.tool_providers: list[tuple[str, ToolProvider]] = []
        self.modes: dict[str, ModeInfo] = {}
        self.record_types: dict[str, tuple[str, type]] = {}
        self.usage_sources: dict[str, tuple[str, str]] = {}
        self.config_classes: dict[str, type] = {}
        try:
            if isinstance(store, str):  # a URL or SQLite path, opened once plugins declared schemes
                self.store = open_store_target(store, hooks=self.hooks)
            self.hooks.register_config(self.config_classes)
            self.plugin_configs = self._plugin_configs(plugin_config or {}, config_source, block)
            self._configure()
            for item in tools:
                self.tools.add(item if isinstance(item, Tool) else tool(item), provider="host")
            self.hooks.register_tools(self.tools, self.tool_providers)
            self.hooks.register_modes(self.modes)
            self.hooks.register_record_types(self.record_types)
            self.hooks.register_usage_sources(self.usage_sources)
        except BaseException:
            self.close()
            raise
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
            stream_idle_timeout_s=stream_idle_timeout_s,
            catalog=self.tool_catalog if self.tool_providers else None,
            modes=self.modes,
            record_types=self.record_types,
            context_window=context_window,
            clients=dict(model_clients or {}),
            usage_sources=self.usage_sources,
            lease_ttl_s=lease_ttl_s,
            owner=owner_name(),
        )
        self._services = SessionServices(
            runtime=self._runtime,
            model=model,
            max_turns=max_turns,
            max_output_tokens=max_output_tokens,
            temperature=temperature,
        )
        self.services = Services(self._services, self._opened)
        self._runtime.services = self.services

    def _configure(self) -> None:
        """Run ``lash_configure``; a plugin that refuses the configuration with a ``ConfigError``
        (e.g. an incompatible plugin beside it) reaches the host as a ``ConfigError`` naming it."""
        try:
            self.hooks.configure(self._host, self.plugin_configs)
        except PluginHookError as exc:
            if isinstance(exc.__cause__, ConfigError):
                raise ConfigError(f"plugin {exc.plugin!r}: {exc.__cause__}") from exc
            raise

    def _plugin_configs(self, given: Mapping[str, object], source: str, block: Iterable[str]) -> dict[str, object]:
        """Validate ``plugin_config`` against the declared classes; defaults for the rest."""
        loaded = {name for name, _ in self.pm.list_name_plugin()}
        failed = {e.plugin for e in self.load_report.failed}
        skipped = failed | set(block)
        out: dict[str, object] = {}
        for name, value in given.items():
            cls = self.config_classes.get(name)
            if cls is None:
                if name in skipped:
                    continue  # config for a disabled or broken plugin is not an error
                if name in loaded:
                    raise ConfigError(f"{source}: [plugins.{name}]: plugin {name!r} takes no configuration")
                known = ", ".join(sorted(self.config_classes)) or "none"
                raise ConfigError(
                    f"{source}: [plugins.{name}]: no loaded plugin is named {name!r} "
                    f"(plugins with configuration: {known})"
                )
            if not isinstance(value, cls):
                value = structure_config(value, cls, source=source, table=f"plugins.{name}")
            out[name] = value
        for name, cls in self.config_classes.items():
            if name not in out:
                try:
                    out[name] = cls()
                except TypeError as exc:
                    raise ConfigError(f"{source}: [plugins.{name}] is required: {exc}") from exc
        return out

    # ---------------------------------------------------------------- plugins
    def add_plugin(self, plugin: object, *, name: str | None = None) -> None:
        """Register another hook implementation object on this core (from ``lash_configure``).

        Stateful plugins build an object per core and register it here, so its hooks see only
        this core. It takes part in every hook called after registration; its
        ``lash_addhooks`` runs first.
        Raises:
            PluginError: the name is taken, or it implements an unknown ``lash_*`` hook.
            ConfigError: no ``name`` and no stable name of its own, but it implements the state
                hooks.
        """
        registered = register_plugin(self.pm, self.hooks, plugin, name)
        if self.hooks.configuring is not None and self.hooks.configuring != registered:
            self._added_by[registered] = self.hooks.configuring

    @property
    def plugin_host(self) -> PluginHost:
        """The ``PluginHost`` this core hands its plugins (``lash_configure(host)`` and every
        hook's ``host``): for host code that needs a plugin's per-core data, e.g.
        ``core.plugin_host.stash[KEY]``."""
        return self._host

    @property
    def config_dir(self) -> Path | None:
        """Directory of the ``lash.toml`` this core was configured from, or None (built in code).

        Plugins resolve relative paths in their config tables against it, as the store is.
        """
        if self.config_source.startswith("<"):
            return None
        return Path(self.config_source).resolve().parent

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` when the core closes (last registered runs first). Errors are logged."""
        self._closers.append(fn)

    def plugins(self) -> list[PluginInfo]:
        """Every registered plugin with distribution, version, hooks and declared usage sources,
        in call order (first called first)."""
        sources: dict[str, list[str]] = {}
        for source, (plugin, _) in self.usage_sources.items():
            sources.setdefault(plugin, []).append(source)
        return [
            attrs.evolve(
                info,
                usage_sources=tuple(sorted(sources.get(info.name, ()))),
                added_by=self._added_by.get(info.name) if info.origin == "added" else None,
            )
            for info in reversed(plugin_infos(self.pm, self.load_report))
        ]

    async def tool_catalog(self) -> tuple[ToolRegistry, list[str]]:
        """The catalog a turn starting now would see: host and plugin tools plus provider tools.

        Provider tools are labelled with the provider's ``name`` (e.g. ``mcp``).
        Returns:
            ``(catalog, failures)``: a provider that raised is skipped, and a provider tool
            whose name is taken is skipped (the rest of that provider stays); each is described
            in ``failures``, naming the plugin and provider.
        """
        if not self.tool_providers:
            return self.tools, []
        catalog = self.tools.copy()
        failures = []
        for plugin, provider in self.tool_providers:
            try:
                items = await provider.list_tools()
            except Exception as exc:
                failures.append(
                    f"tool provider {provider.name!r} of plugin {plugin!r} failed: {type(exc).__name__}: {exc}"
                )
                continue
            for item in items:
                try:
                    catalog.add(item, provider=provider.name)
                except ConfigError as exc:
                    failures.append(f"tool provider {provider.name!r} of plugin {plugin!r}: {exc}; tool skipped")
        return catalog, failures

    @property
    def model_client(self) -> ModelClient:
        """The provider this core calls."""
        return self._runtime.client

    def session(
        self, session_id: str | None = None, *, mode: str = "standard", spec: SessionSpec | None = None
    ) -> Session:
        """Open (creating if needed) the session ``session_id``; a new id when None.

        Cheap: reads only the session's head, never its history. Fires ``lash_session_opened``.
        Args:
            session_id: the id, or None for a new session. Lone surrogates in it (an id read
                from argv or a file name) become U+FFFD, as everywhere text enters a turn.
            mode: execution mode for a new session (an existing one keeps its own).
            spec: settings for a new session (model, system prompt, tool allow/deny lists,
                ``max_turns``, plugin options, usage source), persisted with it; an existing
                session keeps the spec it was created with. Default ``SessionSpec()``.
                Added in 0.2.
        Raises:
            ConfigError: ``mode`` is not registered, ``spec`` is not a ``SessionSpec``, or its
                usage source was not declared.
            LashError: the core is closed.
        """
        if self._closed:
            raise LashError("this LashCore is closed")
        if mode not in self.modes:
            raise ConfigError(f"unknown mode {mode!r}; registered modes: {', '.join(sorted(self.modes))}")
        if spec is not None:
            if not isinstance(spec, SessionSpec):
                raise ConfigError(f"spec must be a SessionSpec, got {type(spec).__name__}")
            if spec.usage_source is not None:
                self._runtime.check_source(spec.usage_source)
            self._runtime.client_named(spec.client)
        sid = valid_text(session_id) if session_id else self._runtime.new_id()
        observed = self.hooks.implemented("lash_session_opened") or self.hooks.implemented("lash_on_trace_record")
        return self.services.open_session(sid, mode=mode, spec=spec, observed=observed)

    def _opened(self, session: Session, created: bool) -> None:
        """A session handle was opened: fire ``lash_session_opened``, trace it."""
        if self.hooks.implemented("lash_session_opened") or self.hooks.implemented("lash_on_trace_record"):
            info = session.info
            self._log_errors(self.hooks.session_opened(session_id=session.id, info=info, created=created))
            self._trace_session(
                "session.opened", info, mode=info.mode, head_revision=info.head_revision, created=created
            )

    def _trace_session(self, kind: TraceKind, info: SessionInfo, **attributes: Any) -> None:
        self._services.trace_session(kind, info, **attributes)

    @staticmethod
    def _log_errors(errors: list[PluginHookError]) -> None:
        for error in errors:
            _log.error("%s", error)

    def sessions(self) -> list[SessionInfo]:
        """Every session in the store, most recently updated first."""
        return self.store.list_sessions()

    def run_sync(self, prompt: str, *, session_id: str | None = None, **kwargs: Any) -> TurnResult:
        """One turn from synchronous code: ``core.run_sync("hi")``. See ``Session.turn``.

        Background work the turn started is drained before it returns. The session handle it
        opens is closed afterwards (``lash_session_closed`` fires).
        """
        with self.session(session_id) as session:
            return session.run_sync(prompt, **kwargs)

    def submit(
        self,
        session_id: str,
        prompt: str | Message,
        *,
        turn_id: str | None = None,
        spec: SessionSpec | None = None,
        mode: str = "standard",
    ) -> str:
        """Submit a turn for a worker to run: record its input durably as pending input of
        ``session_id`` (creating the session if needed) and return its turn id. Nothing runs
        here; any process whose ``Worker`` serves the same store runs it (see
        ``lash_kernel.runtime.worker``), and ``wait_turn`` awaits its commit. Added in 0.3.

        Submitting again with the same ``turn_id`` is a no-op (the first input is kept; a
        committed turn stays committed), so a client may retry a submission it is unsure of.

        Args:
            session_id: the session (created with ``mode`` and ``spec`` when new; an existing
                one keeps its own).
            prompt: the user's text, or a ``Message`` with role ``user``.
            turn_id: the turn id; default a fresh unique id.
            spec: settings for a new session (see ``session``).
            mode: execution mode for a new session.
        Returns:
            The turn id.
        Raises:
            ConfigError: an unknown ``mode`` or an invalid ``spec`` (see ``session``).
            StoreError: the store failed (then nothing may have been recorded: submit again).
            LashError: the core is closed.
        """
        with self.session(session_id, mode=mode, spec=spec) as session:
            message = valid_message(Message.user(prompt) if isinstance(prompt, str) else prompt)
            tid = valid_text(turn_id) if turn_id else self._runtime.new_id()
            self.store.record_input(
                PendingInput(session_id=session.id, turn_id=tid, message=message, created_at=self._runtime.clock())
            )
        return tid

    async def wait_turn(
        self, session_id: str, turn_id: str, *, timeout: float | None = None, max_interval: float = 0.5
    ) -> TurnRecord:
        """Wait until the turn ``turn_id`` of ``session_id`` is committed (by any process) and
        return its record. A turn that ended ``Stopped`` (cancelled, provider error, ...) is
        committed too: check ``TurnRecord.outcome``. Its messages are
        ``core.store.load_nodes(session_id, record.node_ids)``. Added in 0.3.

        Polls ``Store.get_turn`` with backoff: 10 ms doubling up to ``max_interval`` seconds.

        Args:
            session_id: the session.
            turn_id: the turn, as ``submit`` returned it.
            timeout: longest wait in seconds; None waits for ever.
            max_interval: longest pause between two polls, seconds.
        Returns:
            The committed turn.
        Raises:
            TurnWaitTimeoutError: not committed within ``timeout`` (its input stays pending).
            TurnNotPendingError: the turn is neither committed nor pending (its input was
                discarded, or it was never submitted).
            SessionNotFoundError: no such session.
            StoreError: the store failed.
        """
        store = self.store
        deadline = None if timeout is None else anyio.current_time() + timeout
        delay = 0.01
        while True:
            record = store.get_turn(session_id, turn_id)
            if record is not None:
                return record
            if all(p.turn_id != turn_id for p in store.pending_inputs(session_id)):
                record = store.get_turn(session_id, turn_id)  # committed since the first look?
                if record is not None:
                    return record
                raise TurnNotPendingError(
                    f"session {session_id!r}: turn {turn_id!r} is neither committed nor pending "
                    "(its input was discarded, or it was never submitted)"
                )
            if deadline is not None and anyio.current_time() >= deadline:
                raise TurnWaitTimeoutError(
                    f"session {session_id!r}: turn {turn_id!r} was not committed within {timeout} s; "
                    "its input stays pending"
                )
            pause = delay if deadline is None else min(delay, max(0.0, deadline - anyio.current_time()))
            await anyio.sleep(pause)
            delay = min(delay * 2, max_interval)

    async def drain(self) -> None:
        """Wait for the background work plugins started (``PluginHost.spawn``), including work
        started meanwhile. Added in 0.2."""
        await self.services.drain()

    def close(self) -> None:
        """Cancel background work, close open sessions, run ``on_close`` callbacks and tool
        providers' ``close()`` (newest first), then close the store. Idempotent. The model
        clients are the host's. Background work cancelled here loses only what it had not
        committed yet.

        Errors from plugins are logged, never raised, so every resource gets its turn.
        """
        if self._closed:
            return
        self._closed = True
        services = getattr(self, "services", None)
        if services is not None:
            services.background.cancel()
        for session in services.handles() if services is not None else ():
            session.close()
        closers = [*self._closers, *(p.close for _, p in getattr(self, "tool_providers", ()))]
        for fn in reversed(closers):
            try:
                fn()
            except Exception:
                _log.exception("error while closing %r", fn)
        self.store.close()

    async def aclose(self) -> None:
        """Async ``close`` (it does not drain background work: ``await drain()`` first to keep it)."""
        self.close()

    def __enter__(self) -> LashCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LashCore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
