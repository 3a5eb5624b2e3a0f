"""The connection manager: MCP sessions on one private event loop, usable from any host loop.

Rule: every MCP connection is owned by exactly one long-lived task on the manager's own asyncio
loop (a daemon thread). That task enters the SDK's client context managers, initialises, lists
tools, then keeps the session open and runs tool calls as children of its own task group until
it is told to stop; so the SDK's task groups and cancel scopes are entered and exited by the
same task, whatever the host does (several event loops, ``anyio.run`` per turn, cancelled
turns, ``LashCore.close()`` from sync code).

Callers on any asyncio loop submit work with ``asyncio.run_coroutine_threadsafe`` and await it
with ``asyncio.wrap_future``; cancelling the caller cancels the call on the manager loop, and the
SDK sends ``notifications/cancelled`` to the server.

Reconnect policy: a connection that drops (crashed stdio server, dropped HTTP connection) is
reopened once and the interrupted call is retried once; if the reopen fails the server is marked
failed (its tools leave the catalog) until ``reconnect(name)``. A server that fails to start is
marked failed with its reason and never breaks the other servers.

The ``mcp`` SDK is imported lazily, on the manager thread, so importing this module is cheap.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import math
import os
import shutil
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import attrs

from lash_mcp._config import DEFAULT_CALL_TIMEOUT_S, DEFAULT_INIT_TIMEOUT_S, ServerConfig, default_log_dir
from lash_mcp._naming import find_collisions, sanitize

if TYPE_CHECKING:
    from lash_kernel.plugin import Tool

__all__ = ["MCPManager", "MCPServerError", "ProgressFn", "ServerState", "ServerStatus"]

log = logging.getLogger("lash_mcp")

_T = TypeVar("_T")

#: ``on_progress(progress, total, message)``, called on the caller's event-loop thread.
ProgressFn = Callable[[float, "float | None", "str | None"], None]

ServerState = Literal["idle", "connecting", "connected", "reconnecting", "failed", "disabled", "closed"]

#: Seconds ``close()`` / ``detach_server()`` wait for a connection to shut down before the
#: owning task is cancelled (the SDK bounds a stdio shutdown to about 6 s itself).
_STOP_TIMEOUT_S = 10.0
#: Most ``tools/list`` pages read from one server.
_MAX_PAGES = 1000


class MCPServerError(Exception):
    """An MCP server could not serve a request: not connected, failed, lost, timed out, or an
    MCP protocol error. Tool functions turn it into an error result the model reads.

    Attributes:
        server: the server's name.
        reason: what went wrong, without the server name.
    """

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"MCP server {server!r}: {reason}")
        self.server = server
        self.reason = reason


class _ConnectionLost(Exception):
    """Internal: the transport went away under a call (retry once after reconnecting)."""


@attrs.frozen(kw_only=True)
class ServerStatus:
    """A snapshot of one server, for listings (``lash mcp list``) and health checks.

    Attributes:
        name: server name.
        transport: ``"stdio"`` or ``"http"``.
        state: ``idle`` (not connected yet: connections open lazily), ``connecting``,
            ``connected``, ``reconnecting``, ``failed``, ``disabled`` (``enabled = false``) or
            ``closed``.
        error: why the server failed (or the last connection loss), else None.
        tool_count: tools this server contributes to the catalog (0 unless connected).
        problems: per-tool problems (a schema lash cannot use, a name collision); those tools
            are left out of the catalog.
        target: the command line or URL, for display.
        log_path: the file a stdio server's stderr is appended to (``MCPManager.log_dir``);
            None for an HTTP server.
    """

    name: str
    transport: Literal["stdio", "http"]
    state: ServerState
    error: str | None = None
    tool_count: int = 0
    problems: tuple[str, ...] = ()
    target: str = ""
    log_path: str | None = None


def _describe(exc: BaseException) -> str:
    """One line for an exception, unwrapping exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    text = str(exc)
    if isinstance(exc, TimeoutError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


@attrs.define(eq=False)
class _Call:
    """One ``tools/call`` in flight on the manager loop."""

    tool: str
    arguments: dict[str, Any]
    timeout_s: float
    progress: Callable[[float, float | None, str | None], Awaitable[None]] | None
    future: asyncio.Future[Any]
    scope: anyio.CancelScope | None = None

    def cancel(self) -> None:
        if self.scope is not None:
            self.scope.cancel()
        if not self.future.done():
            self.future.cancel()


class _Connection:
    """One server: its config, state, tool list, and the task that owns its MCP session.

    Everything except construction and the read-only status attributes runs on the manager loop.
    """

    def __init__(self, manager: MCPManager, name: str, config: ServerConfig) -> None:
        self.manager = manager
        self.name = name
        self.config = config
        self.state: ServerState = "idle" if config.enabled else "disabled"
        self.error: str | None = None
        self.tools: tuple[Tool, ...] = ()
        self.originals: tuple[str, ...] = ()  # MCP tool names, parallel to ``tools``
        self.problems: tuple[str, ...] = ()
        self.excluded: frozenset[str] = frozenset()  # originals left out for name collisions
        self.generation = 0
        self.stale = False
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._wake: asyncio.Event | None = None
        self._init_scope: anyio.CancelScope | None = None
        self._client: Any = None
        self._tg: Any = None
        self._live = False
        self._stopping = False

    @property
    def init_timeout_s(self) -> float:
        return self.config.init_timeout_s or self.manager.init_timeout_s

    @property
    def call_timeout_s(self) -> float:
        return self.config.call_timeout_s or self.manager.call_timeout_s

    @property
    def log_path(self) -> Path | None:
        """Where this server's stderr goes: ``<log_dir>/<name>.log`` for stdio, else None."""
        if self.config.command is None:
            return None
        return self.manager.log_dir / f"{sanitize(self.name)}.log"

    def status(self) -> ServerStatus:
        cfg = self.config
        target = " ".join([cfg.command or "", *cfg.args]).strip() if cfg.command else (cfg.url or "")
        log_path = self.log_path
        return ServerStatus(
            name=self.name,
            transport=cfg.transport,
            state=self.state,
            error=self.error,
            tool_count=len(set(self.originals) - self.excluded) if self.state == "connected" else 0,
            problems=self.problems,
            target=target,
            log_path=None if log_path is None else str(log_path),
        )

    def _open_log(self, stack: contextlib.AsyncExitStack, target: str) -> Any:
        """Open (append) this server's stderr log, closed with ``stack``; on failure warn once
        and return ``sys.stderr`` (the server still starts)."""
        path = self.log_path
        assert path is not None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a", encoding="utf-8")  # closed by the stack
        except OSError as exc:
            log.warning("MCP server %r: cannot write its log %s (%s); its stderr goes to the terminal",
                        self.name, path, exc.strerror or exc)
            return sys.stderr
        stack.callback(handle.close)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        handle.write(f"--- {stamp} lash-mcp starts server {self.name!r}: {target}\n")
        handle.flush()
        return handle

    # ------------------------------------------------------------------ lifecycle (manager loop)
    async def ensure(self) -> None:
        """Start connecting if idle; wait while connecting or reconnecting."""
        if self.state == "idle":
            loop = asyncio.get_running_loop()
            self.state = "connecting"
            self.error = None
            self._ready = loop.create_future()
            self._task = loop.create_task(self._run(), name=f"lash-mcp:{self.name}")
        if self.state in ("connecting", "reconnecting") and self._ready is not None:
            await asyncio.shield(self._ready)

    def _resolve_ready(self) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _mark_broken(self, generation: int, reason: str) -> None:
        """A call saw the transport go away: switch to reconnecting and wake the owner."""
        if self._stopping or generation != self.generation or self.state != "connected":
            return
        log.warning("MCP server %r: connection lost (%s); reconnecting once", self.name, reason)
        self.state = "reconnecting"
        self.error = f"connection lost: {reason}"
        self._ready = asyncio.get_running_loop().create_future()
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        """The owning task: connect, serve, reconnect once per drop, until stopped or failed."""
        try:
            while not self._stopping:
                self._live = False
                error: BaseException | None = None
                try:
                    await self._session()
                except Exception as exc:  # the SDK's transports fail in many ways; all end here
                    error = exc
                self._client = None
                self._tg = None
                if self._stopping:
                    break
                if self._live:  # it was connected, then dropped: one reconnect attempt
                    if self.state != "reconnecting":
                        self._mark_broken(self.generation, _describe(error) if error else "closed")
                    continue
                reason = _describe(error) if error is not None else "closed during initialisation"
                log.warning(
                    "MCP server %r failed to %s: %s",
                    self.name, "reconnect" if self.state == "reconnecting" else "start", reason,
                )
                self.state = "failed"
                self.error = reason
                self.tools = ()
                break
        finally:
            self._client = None
            self._tg = None
            if self._stopping:
                self.state = "closed"
            self._resolve_ready()

    async def _session(self) -> None:
        """Open one MCP session and keep it until woken (stop or broken)."""
        from mcp import Client  # lazy: only the manager thread pays for the SDK

        self._wake = asyncio.Event()
        deadline = anyio.current_time() + self.init_timeout_s
        with anyio.CancelScope(deadline=deadline) as init_scope:
            self._init_scope = init_scope
            async with contextlib.AsyncExitStack() as stack:
                target = await self._transport(stack)
                client = Client(
                    target,
                    mode="auto",
                    cache=None,
                    message_handler=self._on_message,
                    client_info=_client_info(),
                )
                await stack.enter_async_context(client)
                listing = await self._list_all(client)
                init_scope.deadline = math.inf
                self._init_scope = None
                try:
                    async with anyio.create_task_group() as tg:
                        self._client, self._tg = client, tg
                        self._publish(listing)
                        self._live = True
                        if not self._stopping:
                            await self._wake.wait()
                        tg.cancel_scope.cancel()
                finally:
                    self._tg = None  # no new calls while the transport unwinds
        self._init_scope = None
        if init_scope.cancelled_caught and not self._live and not self._stopping:
            raise TimeoutError(f"did not start and initialise within {self.init_timeout_s:g} s")

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        cfg = self.config
        if cfg.command is not None:
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            params = StdioServerParameters(
                command=_resolve_command(cfg.command), args=list(cfg.args), env=dict(cfg.env) or None, cwd=cfg.cwd
            )
            # the server's stderr (its own log lines) goes to its log file, not the terminal
            return stdio_client(params, errlog=self._open_log(stack, " ".join([params.command, *params.args])))
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        # The SDK's recommended timeouts: 30 s to connect/write, 300 s between SSE reads.
        http = await stack.enter_async_context(
            httpx2.AsyncClient(headers=dict(cfg.headers), timeout=httpx2.Timeout(30.0, read=300.0))
        )
        return streamable_http_client(cfg.url or "", http_client=http)

    async def _list_all(self, client: Any) -> list[Any]:
        tools: list[Any] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    def _publish(self, listing: Sequence[Any]) -> None:
        """Build the lash tools of a fresh listing and mark the server connected."""
        tools: list[Tool] = []
        originals: list[str] = []
        problems: list[str] = []
        for mcp_tool in listing:
            try:
                tools.append(self.manager._build_tool(self.name, mcp_tool))
                originals.append(mcp_tool.name)
            except Exception as exc:
                problems.append(f"tool {mcp_tool.name!r} skipped: {exc}")
        self.tools, self.originals, self.problems = tuple(tools), tuple(originals), tuple(problems)
        for problem in problems:
            log.warning("MCP server %r: %s", self.name, problem)
        self.generation += 1
        self.stale = False
        self.state = "connected"
        self.error = None
        self._resolve_ready()

    async def _on_message(self, message: Any) -> None:
        from mcp.types import ToolListChangedNotification

        if isinstance(message, ToolListChangedNotification):
            self.stale = True
        elif isinstance(message, Exception):
            log.debug("MCP server %r: transport reported %s", self.name, _describe(message))

    async def refresh(self) -> None:
        """Re-list tools after ``notifications/tools/list_changed`` (manager loop)."""
        if self.state != "connected" or self._tg is None:
            return
        self.stale = False
        client, generation = self._client, self.generation
        try:
            listing = await self._list_all(client)
        except Exception as exc:
            log.warning("MCP server %r: re-listing tools failed: %s", self.name, _describe(exc))
            return
        if generation == self.generation and self.state == "connected":
            self._publish(listing)

    async def stop(self) -> None:
        """Close the session (terminating a stdio subprocess) and wait for the owner to end."""
        self._stopping = True
        if self._init_scope is not None:
            self._init_scope.cancel()
        if self._wake is not None:
            self._wake.set()
        task = self._task
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=_STOP_TIMEOUT_S)
            if not done:
                log.warning("MCP server %r did not shut down within %g s; cancelling", self.name, _STOP_TIMEOUT_S)
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self.state = "closed"
        self._resolve_ready()

    # ------------------------------------------------------------------ calls (manager loop)
    async def call(
        self,
        tool: str,
        arguments: dict[str, Any],
        progress: Callable[[float, float | None, str | None], Awaitable[None]] | None,
        timeout_s: float,
    ) -> Any:
        """Run one ``tools/call`` as a child of the owner's task group and wait for it."""
        tg = self._tg
        if self.state != "connected":
            raise _ConnectionLost("not connected")
        req = _Call(tool, arguments, timeout_s, progress, asyncio.get_running_loop().create_future())
        try:
            if tg is None:
                raise RuntimeError("the session is closing")
            tg.start_soon(self._run_call, req, self.generation)
        except RuntimeError as exc:  # the session is going away under us: reconnect, then retry
            self._mark_broken(self.generation, str(exc))
            raise _ConnectionLost(str(exc)) from None
        try:
            return await req.future
        except asyncio.CancelledError:
            req.cancel()
            raise

    async def _run_call(self, req: _Call, generation: int) -> None:
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        if req.future.done():  # the caller gave up before the call started
            return
        outcome: BaseException | None = None
        try:
            with anyio.CancelScope() as scope:
                req.scope = scope
                result = await self._client.call_tool(
                    req.tool, req.arguments, read_timeout_seconds=req.timeout_s, progress_callback=req.progress
                )
                if not req.future.done():
                    req.future.set_result(result)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                outcome = _ConnectionLost(str(exc) or "connection closed")
            elif exc.code == REQUEST_TIMEOUT:
                outcome = MCPServerError(self.name, f"tool {req.tool!r} timed out after {req.timeout_s:g} s")
            else:
                outcome = MCPServerError(self.name, f"tool {req.tool!r} failed: {exc} (MCP error {exc.code})")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, ConnectionError) as exc:
            outcome = _ConnectionLost(_describe(exc))
        except Exception as exc:  # a bad result (output-schema mismatch, invalid JSON-RPC), ...
            outcome = MCPServerError(self.name, f"tool {req.tool!r} failed: {_describe(exc)}")
        finally:
            if not req.future.done():
                if outcome is None:  # cancelled by the owner: stopping, or the transport collapsed
                    outcome = (
                        MCPServerError(self.name, "the server was closed during the call")
                        if self._stopping
                        else _ConnectionLost("connection dropped")
                    )
                if isinstance(outcome, _ConnectionLost):
                    self._mark_broken(generation, str(outcome))
                req.future.set_exception(outcome)


def _client_info() -> Any:
    from mcp.types import Implementation

    return Implementation(name="lash-mcp", version="0.1.0")


_LIVE_MANAGERS: weakref.WeakSet[MCPManager] = weakref.WeakSet()


@atexit.register
def _close_live_managers() -> None:  # pragma: no cover - interpreter exit
    for manager in list(_LIVE_MANAGERS):
        with contextlib.suppress(Exception):
            manager.close()


class MCPManager:
    """Connections to a set of MCP servers, shared by everything that uses one lash core.

    Connections open lazily (on the first ``list_tools``, ``call_tool`` or ``connect``), all
    servers in parallel, and stay open until ``detach_server`` or ``close``. Safe to use from any
    thread and any asyncio event loop (the async methods need an asyncio loop; the SDK work runs
    on the manager's own loop in a daemon thread, started on first use).

    Args:
        servers: initial servers by name (``ServerConfig`` or a mapping of its fields).
        init_timeout_s: default seconds a server may take to start, initialise and list tools.
        call_timeout_s: default seconds per tool call (the SDK then cancels the request).
        log_dir: directory of the stdio servers' stderr logs (``<server>.log``, appended to;
            created on first start); None for ``default_log_dir()``. The attribute may be
            changed before servers start.
    Raises:
        ValueError: a bad server name or config (see ``attach_server``), or a bad timeout.
    """

    def __init__(
        self,
        servers: Mapping[str, ServerConfig | Mapping[str, Any]] | None = None,
        *,
        init_timeout_s: float = DEFAULT_INIT_TIMEOUT_S,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.log_dir = Path(log_dir).expanduser() if log_dir is not None else default_log_dir()
        for label, value in (("init_timeout_s", init_timeout_s), ("call_timeout_s", call_timeout_s)):
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")
        self.init_timeout_s = float(init_timeout_s)
        self.call_timeout_s = float(call_timeout_s)
        self._lock = threading.RLock()
        self._conns: dict[str, _Connection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        for name, config in (servers or {}).items():
            self.attach_server(name, config)

    # ------------------------------------------------------------------ servers
    def attach_server(self, name: str, config: ServerConfig | Mapping[str, Any]) -> None:
        """Add a server. It connects lazily; its tools join the catalog from the next turn.

        Args:
            name: server name; becomes ``mcp__<name>__<tool>`` in tool names (characters
                outside ``[a-zA-Z0-9_-]`` become ``_``).
            config: a ``ServerConfig`` or a mapping of its fields.
        Raises:
            ValueError: an empty name, a name already attached, a name that normalises to the
                same as an attached one (both are named), or an invalid config.
            TypeError: ``config`` is neither a ``ServerConfig`` nor a mapping.
            RuntimeError: the manager is closed.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"an MCP server name must be a non-empty string, got {name!r}")
        cfg = ServerConfig.coerce(config)
        with self._lock:
            if self._closed:
                raise RuntimeError("this MCPManager is closed")
            if name in self._conns:
                raise ValueError(f"an MCP server named {name!r} is already attached; detach it first")
            for other in self._conns:
                if sanitize(other) == sanitize(name):
                    raise ValueError(
                        f"MCP server names {other!r} and {name!r} both become {sanitize(name)!r} in "
                        "tool names; rename one"
                    )
            self._conns[name] = _Connection(self, name, cfg)

    def detach_server(self, name: str) -> None:
        """Remove a server: its tools leave the catalog from the next turn, and its connection
        is closed (a stdio subprocess is terminated) before this returns.

        Blocks while the server shuts down (normally milliseconds; at most about 10 s for a
        server that ignores its closed stdin). Calls still in flight end with an error result.

        Args:
            name: the server's name.
        Raises:
            KeyError: no server with that name is attached.
            RuntimeError: called from the manager's own thread.
        """
        with self._lock:
            conn = self._conns.pop(name, None)
            loop = self._loop
        if conn is None:
            raise KeyError(f"no MCP server named {name!r} is attached")
        if loop is not None:
            self._run_blocking(conn.stop(), loop, timeout=_STOP_TIMEOUT_S + 5)

    def reconnect(self, name: str) -> None:
        """Let a failed server try again on its next use (failed servers are not retried
        automatically). A no-op for a server that is not failed.

        Args:
            name: the server's name.
        Raises:
            KeyError: no server with that name is attached.
        """
        with self._lock:
            conn = self._conns.get(name)
        if conn is None:
            raise KeyError(f"no MCP server named {name!r} is attached")
        if conn.state == "failed" and (conn._task is None or conn._task.done()):
            conn.state = "idle"

    def servers(self) -> dict[str, ServerConfig]:
        """The attached servers' configs by name, in attach order."""
        with self._lock:
            return {name: conn.config for name, conn in self._conns.items()}

    def status(self) -> list[ServerStatus]:
        """A snapshot of every attached server, in attach order; never connects anything."""
        with self._lock:
            conns = list(self._conns.values())
        return [conn.status() for conn in conns]

    # ------------------------------------------------------------------ connect / list / call
    def connect(self, timeout_s: float | None = None) -> list[ServerStatus]:
        """Connect every enabled server now (in parallel) and wait; from sync code.

        Args:
            timeout_s: seconds to wait at most; None waits for every server's init timeout.
        Returns:
            ``status()`` afterwards (failed servers carry their reason).
        Raises:
            TimeoutError: ``timeout_s`` passed first.
            RuntimeError: the manager is closed, or called from the manager's own thread.
        """
        loop = self._ensure_loop()
        self._run_blocking(self._connect_all(), loop, timeout=timeout_s)
        return self.status()

    async def aconnect(self) -> list[ServerStatus]:
        """Async ``connect``: connect every enabled server and return ``status()``."""
        await self._submit(self._connect_all())
        return self.status()

    async def list_tools(self) -> list[Tool]:
        """The lash tools of every connected server, connecting idle servers first.

        Failed and disabled servers contribute nothing (see ``status()`` for why); tools whose
        schema lash cannot use, or whose names collide, are left out and listed in
        ``ServerStatus.problems``.

        Returns:
            ``Tool`` objects named ``mcp__<server>__<tool>``, servers in attach order, tools in
            each server's order.
        Raises:
            RuntimeError: the manager is closed.
        """
        with self._lock:
            if not any(c.state != "disabled" for c in self._conns.values()):
                return []
        return await self._submit(self._list_tools())

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        on_progress: ProgressFn | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """Call a tool on a server, from any asyncio event loop.

        Args:
            server: server name.
            tool: the tool's MCP name (not the catalog name).
            arguments: JSON arguments.
            on_progress: called as ``on_progress(progress, total, message)`` on *this* loop's
                thread for every MCP progress notification of the call.
            timeout_s: seconds before the call is cancelled; None for the server's call timeout.
        Returns:
            The SDK's ``CallToolResult`` (``content``, ``structured_content``, ``is_error``).
        Raises:
            MCPServerError: unknown or failed server, a timeout, an MCP protocol error, or the
                connection was lost and the one reconnect + retry did not help.
            asyncio.CancelledError: the caller was cancelled (the call is cancelled on the server).
        """
        caller = asyncio.get_running_loop()
        progress = None
        if on_progress is not None:

            async def progress(value: float, total: float | None, message: str | None) -> None:
                with contextlib.suppress(RuntimeError):  # the caller's loop is gone
                    caller.call_soon_threadsafe(_report, on_progress, value, total, message)

        return await self._submit(self._call(server, tool, dict(arguments or {}), progress, timeout_s))

    def close(self) -> None:
        """Close every connection (terminating stdio subprocesses) and stop the manager thread.

        Idempotent; blocks until done (bounded: about 10 s per stuck server, in parallel).
        Afterwards every method raises ``RuntimeError`` or returns nothing.

        Raises:
            RuntimeError: called from the manager's own thread.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
            conns = list(self._conns.values())
            self._conns.clear()
        _LIVE_MANAGERS.discard(self)
        if loop is None or thread is None:
            return
        if threading.current_thread() is thread:
            raise RuntimeError("MCPManager.close() cannot run on the manager's own thread")

        async def stop_all() -> None:
            await asyncio.gather(*(c.stop() for c in conns), return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(stop_all(), loop).result(_STOP_TIMEOUT_S + 5)
        except Exception as exc:  # pragma: no cover - defensive: never raise from close
            log.warning("closing MCP connections failed: %s", _describe(exc))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_STOP_TIMEOUT_S)

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    def __enter__(self) -> MCPManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError("this MCPManager is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=_serve_loop, args=(loop,), name="lash-mcp", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
                _LIVE_MANAGERS.add(self)
            return self._loop

    async def _submit(self, coro: Coroutine[Any, Any, _T]) -> _T:
        try:
            loop = self._ensure_loop()
        except BaseException:
            coro.close()
            raise
        if threading.current_thread() is self._thread:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def _run_blocking(
        self, coro: Coroutine[Any, Any, _T], loop: asyncio.AbstractEventLoop, timeout: float | None
    ) -> _T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("this MCPManager method cannot run on the manager's own thread")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def _live_conns(self) -> list[_Connection]:
        with self._lock:
            return [c for c in self._conns.values() if c.state != "disabled"]

    async def _connect_all(self) -> None:
        await asyncio.gather(*(c.ensure() for c in self._live_conns()))

    async def _list_tools(self) -> list[Tool]:
        conns = self._live_conns()
        await asyncio.gather(*(c.ensure() for c in conns))
        stale = [c for c in conns if c.stale and c.state == "connected"]
        if stale:
            await asyncio.gather(*(c.refresh() for c in stale))
        connected = [c for c in conns if c.state == "connected"]
        pairs = [(c.name, original) for c in connected for original in c.originals]
        collisions = find_collisions(pairs)
        out: list[Tool] = []
        for conn in connected:
            excluded = set()
            for original, lash_tool in zip(conn.originals, conn.tools, strict=True):
                message = collisions.get((conn.name, original))
                if message is None:
                    out.append(lash_tool)
                    continue
                excluded.add(original)
                if message not in conn.problems:
                    log.warning("MCP server %r: %s", conn.name, message)
                    conn.problems = (*conn.problems, message)
            conn.excluded = frozenset(excluded)
        return out

    async def _call(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        progress: Callable[[float, float | None, str | None], Awaitable[None]] | None,
        timeout_s: float | None,
    ) -> Any:
        lost: str | None = None
        for attempt in (1, 2):
            with self._lock:
                conn = self._conns.get(server)
            if conn is None:
                raise MCPServerError(server, "not attached (it was detached, or never configured)")
            await conn.ensure()
            if conn.state != "connected":
                if lost is not None:
                    raise MCPServerError(
                        server, f"connection lost during {tool!r} ({lost}) and reconnecting failed: {conn.error}"
                    )
                raise MCPServerError(server, f"not connected ({conn.state}): {conn.error or 'no reason'}")
            try:
                return await conn.call(tool, arguments, progress, timeout_s or conn.call_timeout_s)
            except _ConnectionLost as exc:
                lost = str(exc)
                if attempt == 2:
                    raise MCPServerError(
                        server, f"connection lost during {tool!r} ({lost}), again after reconnecting"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _build_tool(self, server: str, mcp_tool: Any) -> Tool:
        from lash_mcp._tools import build_tool

        return build_tool(self, server, mcp_tool)


def _report(on_progress: ProgressFn, value: float, total: float | None, message: str | None) -> None:
    try:
        on_progress(value, total, message)
    except Exception:
        log.exception("MCP progress callback raised")


def _serve_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _resolve_command(command: str) -> str:
    """``command`` as given, except that a bare name missing from ``PATH`` is looked up beside
    the running Python (so ``command = "mcp-server-time"`` works from an unactivated venv)."""
    if os.sep in command or shutil.which(command) is not None:
        return command
    beside = Path(sys.executable).parent / command
    return str(beside) if beside.exists() else command
