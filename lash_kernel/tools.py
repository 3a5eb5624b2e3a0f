"""Tools: definition, the ``@tool`` decorator, a catalog, and safe execution.

Schema derivation from type hints and docstrings lives in ``lash_kernel._tool_schema``.

Rule: a tool problem never crashes the host. ``execute_tool_call`` turns every failure (unknown
tool, malformed or invalid arguments, an exception, a timeout) into an ``is_error`` tool result
for the model; only anyio cancellation propagates. Schema problems in the *definition* of a tool
are the host's bug and raise ``ConfigError`` at decoration / construction time.

A tool may opt in to retries: ``@tool(retries=2)`` calls it again (after ``retry_delay_s``,
doubling) when it raises ``ToolError(..., retryable=True)``; any other failure, and a timeout,
is returned to the model at once.

```python
@tool(timeout_s=5)
async def weather(city: str, unit: Literal["c", "f"] = "c") -> dict[str, float]:
    '''Current weather for a city.

    Args:
        city: city name, e.g. "Paris".
        unit: temperature unit.
    '''
```
"""

from __future__ import annotations

import enum
import functools
import inspect
import json
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, overload, runtime_checkable

import anyio
import anyio.to_thread
import attrs

from lash_kernel._tool_schema import (
    ARG_SECTIONS,
    Deriver,
    default_json,
    has_own_description,
    parse_docstring,
    strip_annotated,
)
from lash_kernel.errors import ConfigError, LashError, ToolError
from lash_kernel.messages import Attachment, ToolCallPart, ToolResultPart
from lash_kernel.model import ModelRequest, ModelResponse, ToolSpec
from lash_kernel.text import valid_text

if TYPE_CHECKING:
    import jsonschema

__all__ = [
    "Tool",
    "ToolContext",
    "ToolOutput",
    "ToolProvider",
    "ToolRegistry",
    "ToolServices",
    "execute_tool_call",
    "tool",
]

#: What every provider accepts as a tool name.
_TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

_JSONSchema = dict[str, Any]


# --------------------------------------------------------------------------------------------
# ToolContext
# --------------------------------------------------------------------------------------------


class _EventLike(Protocol):
    """The part of ``anyio.Event`` a ``ToolContext`` needs."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...

    async def wait(self) -> Any: ...


class _CancelSignal:
    """Default cancellation flag: readable from worker threads, awaitable from the event loop.

    ``set()`` must be called from the event-loop thread (as the runtime does). The anyio event is
    created lazily, so a ``ToolContext`` can be built outside a running event loop.
    """

    __slots__ = ("_event", "_is_set")

    def __init__(self) -> None:
        self._is_set = False
        self._event: anyio.Event | None = None

    def is_set(self) -> bool:
        return self._is_set

    def set(self) -> None:
        self._is_set = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        if self._is_set:
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()


class ToolServices(Protocol):
    """What the runtime lends a ``ToolContext`` for model calls and child sessions (the runtime
    implements it per call; a context built without one raises ``LashError`` on use)."""

    async def complete(
        self, request: ModelRequest | str, *, source: str, model: str | None, client: str | None
    ) -> ModelResponse: ...

    def open_child_session(self, spec: Any, *, source: str) -> Any: ...


@typing.final
@attrs.define(kw_only=True)
class ToolContext:
    """What a running tool may know and do: identifiers, cancellation, progress, model calls
    and child sessions. Nothing more (no escape hatch to the core).

    A tool asks for it by annotating one parameter with ``ToolContext``; that parameter is
    injected and never appears in the tool's input schema. One context is made per call.

    Attributes:
        session_id: id of the session the call belongs to.
        turn_id: id of the turn that made the call.
        call_id: the model's tool-call id (``ToolCallPart.id``).
        tool_name: name of the tool being called.

    The runtime passes ``on_progress=`` to receive ``report_progress`` calls, and may pass
    ``cancel_event=`` (any object with ``is_set()``, ``set()`` and an
    async ``wait()``, e.g. an ``anyio.Event``) and set it to ask the tool to stop; otherwise a
    private one is made. ``execute_tool_call`` sets it when the call is cancelled or times out,
    so an abandoned worker thread can notice and stop.
    """

    session_id: str
    turn_id: str
    call_id: str
    tool_name: str
    _cancel_event: _EventLike = attrs.field(
        factory=_CancelSignal, alias="cancel_event", repr=False, eq=False
    )
    _progress: Callable[[float, float | None, str | None], None] | None = attrs.field(
        default=None, alias="on_progress", repr=False, eq=False
    )
    _services: ToolServices | None = attrs.field(default=None, alias="services", repr=False, eq=False)
    _tools: tuple[Tool, ...] = attrs.field(default=(), alias="tools", repr=False, eq=False)

    @property
    def tools(self) -> tuple[Tool, ...]:
        """The tools of the turn this call belongs to: its catalog (static and tool providers'
        tools, after the session's allow/deny lists), in catalog order; ``()`` for a context
        built by hand. Read it to know what the session may use (e.g. a subagent is given no
        tool its parent lacks). Added in 0.2."""
        return self._tools

    async def complete(
        self, request: ModelRequest | str, *, source: str, model: str | None = None, client: str | None = None
    ) -> ModelResponse:
        """One model call on behalf of this tool call, with the kernel's retry policy.

        Its usage is committed with the turn under ``(source, model)`` and reported in
        ``TurnResult.children_usage``. Added in 0.2.

        Args:
            request: a ``ModelRequest`` (an empty ``model`` means the session's model) or a
                prompt text (one user message).
            source: the usage source, declared through ``lash_register_usage_sources``
                (well-known: ``subagent``, ``compaction``, ``observer``, ``reflector``, ``child``).
            model: model id to use instead of the request's or the session's.
            client: name of one of the core's model clients instead of the session's.
        Returns:
            The ``ModelResponse`` (message, usage, finish reason).
        Raises:
            ConfigError: an undeclared source or unknown client.
            ModelError: the provider failed (after retries).
            LashError: this context has no runtime behind it (built by hand).
        """
        return await self._require_services().complete(request, source=source, model=model, client=client)

    def open_child_session(self, spec: Any = None, *, source: str = "child") -> Any:
        """Open a new durable child session of this call's session (a subagent's session).

        The child's record links it to this session, turn and tool call; its depth is one more
        than this session's. Turns run on it while this call runs report their model usage to
        this turn (``child_usage`` activities; ``TurnResult.children_usage``) and are cancelled
        with it. Added in 0.2.

        Args:
            spec: the child's ``SessionSpec`` (default ``SessionSpec.inherit(parent spec)``).
            source: the usage source of the child's model calls unless its spec sets one.
        Returns:
            A ``Session`` (use it as a context manager, or call ``close()``).
        Raises:
            ConfigError: an undeclared source.
            LashError: this context has no runtime behind it.
        """
        return self._require_services().open_child_session(spec, source=source)

    def _require_services(self) -> ToolServices:
        if self._services is None:
            raise LashError("this ToolContext has no runtime behind it (model calls and child sessions need one)")
        return self._services

    def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """Tell the host how far the call got; becomes a ``tool_call_progress`` activity.

        Call it from the turn's event-loop thread (from a worker thread use
        ``anyio.from_thread.run_sync``). A no-op when the runtime is not listening.

        Args:
            progress: work done so far, in the tool's own units.
            total: total work when known, else None.
            message: a short status text, or None.
        """
        if self._progress is not None:
            self._progress(float(progress), None if total is None else float(total), message)

    @property
    def cancelled(self) -> bool:
        """True once the runtime asked this call to stop (cancel or timeout); thread-safe."""
        return self._cancel_event.is_set()

    async def wait_cancelled(self) -> None:
        """Wait until the call is cancelled.

        Useful in a task group beside the tool's real work, to clean up before the runtime
        cancels the scope. Returns immediately if already cancelled.
        """
        await self._cancel_event.wait()


# --------------------------------------------------------------------------------------------
# Tool
# --------------------------------------------------------------------------------------------


@attrs.frozen
class _CallPlan:
    """How to turn validated JSON arguments into a call of ``fn`` (built by ``@tool``).

    Attributes:
        positional: names of positional-only parameters, in order (passed positionally).
        defaults: defaults of positional-only parameters, by name (filled when omitted).
        converters: per-parameter functions turning JSON values into the annotated types
            (attrs instances, enums, tuples, floats).
    """

    positional: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = attrs.field(factory=dict)
    converters: Mapping[str, Callable[[Any], Any]] = attrs.field(factory=dict)


_EMPTY_PLAN = _CallPlan()


def _check_name(_inst: Any, _attr: Any, value: Any) -> None:
    if not isinstance(value, str) or not _TOOL_NAME_RE.match(value):
        raise ConfigError(
            f"invalid tool name {value!r}: use 1-64 characters from a-z, A-Z, 0-9, '_' and '-'"
        )


@typing.final
@attrs.frozen(kw_only=True, eq=False)
class Tool:
    """A tool the model can call: a name, a description, a JSON Schema, and a callable.

    Usually made with ``@tool``; build one directly to supply a hand-written schema. A ``Tool``
    stays callable like the function it wraps (``tool_obj(x=1)`` calls ``fn``), so the function
    can be unit-tested as before. Equality and hashing are by identity.

    Attributes:
        name: tool name, ``^[a-zA-Z0-9_-]{1,64}$``.
        description: what the tool does, for the model ("" if none).
        input_schema: JSON Schema (draft 2020-12) with ``"type": "object"`` for the arguments;
            treat it as read-only (the validator is built from it once).
        fn: the sync or async callable; called with the arguments as keywords (positional-only
            parameters positionally). Sync callables run in a worker thread.
        timeout_s: seconds the call may take, or None to use the executor's default. Each
            attempt gets the whole timeout.
        output_schema: JSON Schema of the return value, or None if not known. Informational.
        takes_context: name of the parameter that receives the ``ToolContext``, or None.
        retries: extra attempts after a failure the tool marks retryable
            (``ToolError(..., retryable=True)``); 0 (the default) never retries. Other
            exceptions and timeouts are never retried. Added in 0.2.
        retry_delay_s: seconds to wait before the first retry; doubles for each later one.
            Added in 0.2.
        read_only: the tool only reads (no side effects outside the call), so it is safe to
            give to a constrained agent (lash-subagents' ``explore`` children get only these).
            Default False. Added in 0.2.
        interactive: the tool needs a person (e.g. asking the user); agents that run without
            one (child sessions of lash-subagents) never get it. Default False. Added in 0.2.

    Raises:
        ConfigError: (on construction) bad name, a schema that is not a valid draft 2020-12
            object schema, a non-callable ``fn``, a non-positive ``timeout_s``, a negative
            ``retries`` or ``retry_delay_s``, or ``takes_context`` naming a schema property.
    """

    name: str = attrs.field(validator=_check_name)
    description: str = ""
    input_schema: Mapping[str, Any] = attrs.field(
        factory=lambda: {"type": "object", "properties": {}, "additionalProperties": False}
    )
    fn: Callable[..., Any]
    timeout_s: float | None = None
    output_schema: Mapping[str, Any] | None = None
    takes_context: str | None = None
    retries: int = 0
    retry_delay_s: float = 0.5
    read_only: bool = False
    interactive: bool = False
    _call_plan: _CallPlan = attrs.field(default=_EMPTY_PLAN, alias="_call_plan", repr=False)
    _validator: jsonschema.protocols.Validator = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigError(f"tool {self.name!r}: fn must be callable, got {self.fn!r}")
        if not isinstance(self.description, str):
            raise ConfigError(f"tool {self.name!r}: description must be a string")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ConfigError(f"tool {self.name!r}: timeout_s must be > 0 seconds or None")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"tool {self.name!r}: retries must be an int >= 0, got {self.retries!r}")
        if not (isinstance(self.retry_delay_s, (int, float)) and self.retry_delay_s >= 0):
            raise ConfigError(f"tool {self.name!r}: retry_delay_s must be >= 0 seconds, got {self.retry_delay_s!r}")
        schema = self.input_schema
        if not isinstance(schema, Mapping) or schema.get("type") != "object":
            raise ConfigError(
                f"tool {self.name!r}: input_schema must be a JSON Schema with \"type\": \"object\""
            )
        import jsonschema  # on the first Tool built, not at import (``lash --help`` builds none)

        for label, sch in (("input_schema", schema), ("output_schema", self.output_schema)):
            if sch is None:
                continue
            try:
                jsonschema.Draft202012Validator.check_schema(sch)
            except jsonschema.SchemaError as exc:
                raise ConfigError(
                    f"tool {self.name!r}: {label} is not valid JSON Schema: {exc.message}"
                ) from exc
        if self.takes_context is not None:
            props = schema.get("properties") or {}
            if not isinstance(self.takes_context, str) or self.takes_context in props:
                raise ConfigError(
                    f"tool {self.name!r}: takes_context={self.takes_context!r} must name a "
                    "parameter that is not in input_schema"
                )
        object.__setattr__(self, "_validator", jsonschema.Draft202012Validator(schema))

    def spec(self) -> ToolSpec:
        """Return the tool as the model sees it.

        Returns:
            A ``ToolSpec`` with this tool's name, description and input schema.
        """
        return ToolSpec(
            name=self.name, description=self.description, input_schema=self.input_schema
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped function directly (no validation, no thread, no timeout).

        Args:
            *args: positional arguments for ``fn``.
            **kwargs: keyword arguments for ``fn``.
        Returns:
            Whatever ``fn`` returns (a coroutine for async functions).
        Raises:
            Whatever ``fn`` raises.
        """
        return self.fn(*args, **kwargs)


@attrs.frozen(kw_only=True)
class ToolOutput:
    """A rich tool result: return one from a tool to attach images or flag an error yourself.

    Attributes:
        text: what the model reads (JSON text for structured results).
        attachments: binary content (images) returned with the text.
        is_error: True to tell the model the call failed (same as raising ``ToolError``, but
            keeps attachments).
    """

    text: str
    attachments: tuple[Attachment, ...] = ()
    is_error: bool = False


@runtime_checkable
class ToolProvider(Protocol):
    """A source of tools whose list may change at runtime (an MCP connection, a remote catalog).

    Registered with ``ToolRegistrar.add_provider`` in ``lash_register_tools``. The core asks
    ``list_tools()`` at the start of every turn (and for ``lash tools list``), so the catalog a
    turn sees is current; cache inside the provider. ``close()`` is called once by
    ``LashCore.close()``.

    Attributes:
        name: a label for errors and listings (e.g. ``mcp``).
    """

    name: str

    async def list_tools(self) -> Sequence[Tool]:
        """The provider's tools right now. Raising reports an error and skips this provider
        for the turn (the other tools stay available)."""
        ...

    def close(self) -> None:
        """Release connections and processes; idempotent; must not block for long."""
        ...


# --------------------------------------------------------------------------------------------
# @tool
# --------------------------------------------------------------------------------------------


def _is_async_callable(fn: Any) -> bool:
    """True for ``async def`` functions, partials of them, and objects with ``async __call__``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - objects with async __call__
    )


@attrs.define
class _Parameters:
    """What ``@tool`` derives from a function's parameters (see ``_derive_parameters``)."""

    properties: dict[str, _JSONSchema] = attrs.field(factory=dict)
    required: list[str] = attrs.field(factory=list)
    converters: dict[str, Callable[[Any], Any]] = attrs.field(factory=dict)
    positional: list[str] = attrs.field(factory=list)
    positional_defaults: dict[str, Any] = attrs.field(factory=dict)
    takes_context: str | None = None


def _derive_parameters(
    label: str, signature: inspect.Signature, hints: Mapping[str, Any], arg_docs: Mapping[str, str]
) -> _Parameters:
    """The input schema pieces, converters and call plan of one function's parameters.

    Raises:
        ConfigError: ``*args``/``**kwargs``, a missing or unsupported annotation, a
            non-JSON-serialisable default, or more than one ``ToolContext`` parameter.
    """
    out = _Parameters()
    for param in signature.parameters.values():
        where = f"{label}, parameter {param.name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"{where}: *args and **kwargs are not supported in tools")
        if param.name not in hints:
            raise ConfigError(f"{where}: missing type annotation")
        annotation = hints[param.name]
        if param.kind is param.POSITIONAL_ONLY:
            out.positional.append(param.name)
            if param.default is not param.empty:
                out.positional_defaults[param.name] = param.default
        if strip_annotated(annotation) is ToolContext:
            if out.takes_context is not None:
                raise ConfigError(f"{where}: only one ToolContext parameter is allowed")
            out.takes_context = param.name
            continue
        schema, conv = Deriver(where, context_type=ToolContext).derive(annotation)
        schema = dict(schema)
        if param.name in arg_docs and not has_own_description(annotation):
            schema["description"] = arg_docs[param.name]
        if param.default is param.empty:
            out.required.append(param.name)
        else:
            schema["default"] = default_json(param.default, where)
        out.properties[param.name] = schema
        if conv is not None:
            out.converters[param.name] = conv
    return out


def _output_schema(label: str, hints: Mapping[str, Any]) -> _JSONSchema | None:
    """The return annotation as JSON Schema, or None (none, ``None``, or unsupported)."""
    returns = hints.get("return", None)
    if "return" not in hints or returns is None or returns is type(None):
        return None
    try:
        schema, _ = Deriver(f"{label}, return value", context_type=ToolContext).derive(returns)
    except ConfigError:
        return None  # informational only: an exotic return type is fine
    return schema


def _build_tool(
    fn: Callable[..., Any],
    *,
    name: str | None,
    description: str | None,
    timeout_s: float | None,
    retries: int = 0,
    retry_delay_s: float = 0.5,
    read_only: bool = False,
    interactive: bool = False,
) -> Tool:
    if isinstance(fn, Tool):
        raise ConfigError(f"{fn.name!r} is already a Tool; use attrs.evolve() to change it")
    if not callable(fn):
        raise ConfigError(f"@tool needs a function, got {fn!r}")
    tool_name = name if name is not None else getattr(fn, "__name__", "")
    _check_name(None, None, tool_name)
    label = f"tool {tool_name!r}"
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{label}: cannot read the signature of {fn!r}: {exc}") from exc
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # NameError for unresolvable forward references, TypeError, ...
        raise ConfigError(
            f"{label}: cannot resolve type hints: {type(exc).__name__}: {exc}"
        ) from exc
    doc_description, arg_docs = parse_docstring(inspect.getdoc(fn), ARG_SECTIONS)
    params = _derive_parameters(label, signature, hints, arg_docs)
    return Tool(
        name=tool_name,
        description=description if description is not None else doc_description,
        input_schema={
            "type": "object",
            "properties": params.properties,
            "required": params.required,
            "additionalProperties": False,
        },
        fn=fn,
        timeout_s=timeout_s,
        output_schema=_output_schema(label, hints),
        takes_context=params.takes_context,
        retries=retries,
        retry_delay_s=retry_delay_s,
        read_only=read_only,
        interactive=interactive,
        _call_plan=_CallPlan(
            positional=tuple(params.positional), defaults=params.positional_defaults, converters=params.converters
        ),
    )


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = None,
    retries: int = 0,
    retry_delay_s: float = 0.5,
    read_only: bool = False,
    interactive: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = None,
    retries: int = 0,
    retry_delay_s: float = 0.5,
    read_only: bool = False,
    interactive: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a ``Tool`` from a typed, Google-docstringed function. Use bare or with arguments.

    The input schema is derived from the parameters' type hints: ``str``, ``int``, ``float``,
    ``bool``, ``None``, ``Any``, ``list[X]``/``Sequence[X]``, ``tuple[X, ...]`` (and fixed
    tuples), ``dict[str, X]``, ``Literal[...]``, ``X | None`` and other unions (``anyOf``),
    ``enum.Enum`` subclasses, attrs classes (nested objects; JSON arguments are converted into
    instances before the call) and ``Annotated[X, "description"]`` (a ``dict`` in the metadata
    is merged into the schema, e.g. ``{"minimum": 0}``). Parameters without defaults are
    required; defaults are recorded as ``default``. The description is the docstring text before
    its first section; each parameter's description comes from its ``Args:`` entry (an
    ``Annotated`` description wins). A parameter annotated ``ToolContext`` is injected at call
    time and left out of the schema. The return annotation, when supported, becomes
    ``output_schema``.

    Args:
        fn: the function (sync or async) when used bare as ``@tool``.
        name: tool name; defaults to ``fn.__name__``. Must match ``^[a-zA-Z0-9_-]{1,64}$``.
        description: overrides the docstring-derived description.
        timeout_s: seconds a call may take before it is abandoned, or None for the
            executor's default.
        retries: extra attempts when the tool raises ``ToolError(..., retryable=True)``
            (default 0: no retry). Added in 0.2.
        retry_delay_s: seconds before the first retry, doubling after each. Added in 0.2.
        read_only: mark the tool as side-effect free (``Tool.read_only``). Added in 0.2.
        interactive: mark the tool as needing a person (``Tool.interactive``). Added in 0.2.
    Returns:
        A ``Tool`` (bare use), or a decorator that returns one.
    Raises:
        ConfigError: invalid name, ``*args``/``**kwargs``, a missing or unsupported annotation
            (the message names the tool and parameter), unresolvable forward references,
            a non-JSON-serialisable default, more than one ``ToolContext`` parameter, or a
            negative ``retries`` / ``retry_delay_s``.
    """

    def decorate(func: Callable[..., Any]) -> Tool:
        return _build_tool(
            func,
            name=name,
            description=description,
            timeout_s=timeout_s,
            retries=retries,
            retry_delay_s=retry_delay_s,
            read_only=read_only,
            interactive=interactive,
        )

    if fn is None:
        return decorate
    return decorate(fn)


# --------------------------------------------------------------------------------------------
# ToolRegistry
# --------------------------------------------------------------------------------------------


@typing.final
class ToolRegistry:
    """An ordered tool catalog: each name once, each tool attributed to the provider that added it.

    Args:
        tools: initial tools, added in order with ``provider``.
        provider: provider label for ``tools`` (e.g. ``"host"`` or a plugin name).
    Raises:
        ConfigError: duplicate names among ``tools``.
    """

    def __init__(self, tools: Iterable[Tool] = (), *, provider: str = "host") -> None:
        self._tools: dict[str, Tool] = {}
        self._providers: dict[str, str] = {}
        for t in tools:
            self.add(t, provider=provider)

    def add(self, tool: Tool, *, provider: str = "host", replace: bool = False) -> None:
        """Add a tool at the end of the catalog.

        Args:
            tool: the tool to add.
            provider: who supplies it (``"host"``, a plugin name, an MCP server name...); used in
                conflict messages and by ``provider_of``.
            replace: when True, a tool with the same name is replaced in place (keeping its
                position) instead of raising.
        Raises:
            ConfigError: ``tool`` is not a ``Tool``, or a tool with that name exists and
                ``replace`` is False; the message names both providers.
        """
        if not isinstance(tool, Tool):
            raise ConfigError(f"ToolRegistry.add() needs a Tool, got {tool!r} from {provider!r}")
        existing = self._providers.get(tool.name)
        if existing is not None and not replace:
            raise ConfigError(
                f"duplicate tool name {tool.name!r}: provided by both {existing!r} and "
                f"{provider!r}; rename one, or add with replace=True to override"
            )
        self._tools[tool.name] = tool
        self._providers[tool.name] = provider

    def filtered(self, keep: Callable[[str], bool]) -> ToolRegistry:
        """A new registry with the tools whose name ``keep(name)`` accepts, in catalog order
        (providers kept)."""
        out = ToolRegistry()
        for item in self:
            if keep(item.name):
                out.add(item, provider=self.provider_of(item.name) or "host")
        return out

    def copy(self) -> ToolRegistry:
        """A new registry with the same tools and providers (adding to it leaves this one alone)."""
        other = ToolRegistry()
        other._tools = dict(self._tools)
        other._providers = dict(self._providers)
        return other

    def get(self, name: str) -> Tool | None:
        """Look a tool up by name.

        Args:
            name: tool name as the model wrote it.
        Returns:
            The tool, or None if no tool has that name.
        """
        return self._tools.get(name)

    def provider_of(self, name: str) -> str | None:
        """Say who supplied a tool.

        Args:
            name: tool name.
        Returns:
            The ``provider`` label the tool was added with, or None if no tool has that name.
        """
        return self._providers.get(name)

    def names(self) -> tuple[str, ...]:
        """Return the tool names in catalog order (handy for ``execute_tool_call(available=)``)."""
        return tuple(self._tools)

    def specs(self) -> tuple[ToolSpec, ...]:
        """Return every tool's ``ToolSpec`` in catalog order (for ``ModelRequest.tools``)."""
        return tuple(t.spec() for t in self._tools.values())

    def __iter__(self) -> Iterator[Tool]:
        """Iterate over the tools in catalog order (a snapshot: adding meanwhile is safe)."""
        return iter(tuple(self._tools.values()))

    def __len__(self) -> int:
        """Number of tools."""
        return len(self._tools)

    def __contains__(self, item: object) -> bool:
        """True for a known tool name, or a ``Tool`` that is this registry's entry for its name."""
        if isinstance(item, Tool):
            return self._tools.get(item.name) is item
        return isinstance(item, str) and item in self._tools

    def __repr__(self) -> str:
        return f"ToolRegistry({list(self._tools)!r})"


# --------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------


def _error(call: ToolCallPart, message: str) -> ToolResultPart:
    return ToolResultPart(call_id=call.id, name=call.name, output=message, is_error=True)


def _json_default(value: Any) -> Any:
    if attrs.has(type(value)):
        return attrs.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    return str(value)


def _encode_output(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _format_violations(errors: Iterable[jsonschema.ValidationError]) -> str:
    lines = []
    for err in sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        lines.append(f"- {err.json_path}: {err.message}")
    return "\n".join(lines)


async def execute_tool_call(
    tool: Tool | None,
    call: ToolCallPart,
    ctx: ToolContext,
    *,
    default_timeout_s: float | None = None,
    available: Sequence[str] = (),
) -> ToolResultPart:
    """Run one tool call and return its result; tool problems become error results.

    Steps: parse ``call.arguments`` (``""`` means ``{}``), validate them against the tool's
    input schema (draft 2020-12), convert them to the annotated types, inject ``ctx`` if the
    tool asks for it, call the tool (sync callables in a worker thread, async ones awaited)
    under its timeout, and encode the return value: ``str`` as-is, None as ``""``, anything
    else as JSON (attrs instances via ``attrs.asdict``, unknown objects via ``str``). A
    ``ToolError(..., retryable=True)`` is retried up to ``tool.retries`` times (each attempt
    with the whole timeout, ``tool.retry_delay_s`` before the first retry, doubling). The
    output text is made valid Unicode (``lash_kernel.text.valid_text``: a lone surrogate, e.g.
    from ``os.listdir`` of a non-UTF-8 file name, becomes U+FFFD).

    Args:
        tool: the tool the call names, or None if the name is unknown.
        call: the model's tool call; its ``id`` and ``name`` are copied into the result.
        ctx: this call's context; its cancel event is set if the call is cancelled or times out.
        default_timeout_s: seconds allowed when ``tool.timeout_s`` is None; None for no limit.
        available: tool names to list in the "unknown tool" message (catalog order).
    Returns:
        A ``ToolResultPart`` for ``call``. ``is_error`` is True for an unknown tool, invalid
        JSON, arguments that are not an object or break the schema (each violation listed with
        its JSON path), a ``ToolError`` (its message, after any retries), any other exception
        (``"<ExcType>: <message>"``) and a timeout.
    Raises:
        anyio's cancellation exception when the enclosing scope is cancelled (after setting
        ``ctx``'s cancel event). Nothing else: any other exception is a bug.
    """
    if tool is None:
        message = f"unknown tool {call.name!r}"
        if available:
            message += f"; available tools: {', '.join(available)}"
        return _valid_result(_error(call, message))
    try:
        return _valid_result(await _execute(tool, call, ctx, default_timeout_s))
    except anyio.get_cancelled_exc_class():
        ctx._cancel_event.set()
        raise
    except Exception as exc:  # last-resort guard: the host must survive any tool
        return _valid_result(_error(call, f"{type(exc).__name__}: {exc}"))


def _valid_result(result: ToolResultPart) -> ToolResultPart:
    """The result with its output made valid Unicode (one ``encode`` when it already is)."""
    output = valid_text(result.output)
    return result if output is result.output else attrs.evolve(result, output=output)


def _valid_json_text(value: Any) -> Any:
    """``value`` (decoded JSON) with every string, keys included, made valid by ``valid_text``."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, list):
        return [_valid_json_text(v) for v in value]
    if isinstance(value, dict):
        return {valid_text(k): _valid_json_text(v) for k, v in value.items()}
    return value


async def _execute(
    tool: Tool, call: ToolCallPart, ctx: ToolContext, default_timeout_s: float | None
) -> ToolResultPart:
    text = call.arguments.strip()
    try:
        arguments = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        return _error(call, f"invalid JSON in arguments for tool {tool.name!r}: {exc}")
    if "\\ud" in text.lower():  # a JSON escape may decode to a lone surrogate
        arguments = _valid_json_text(arguments)
    if not isinstance(arguments, dict):
        return _error(
            call,
            f"arguments for tool {tool.name!r} must be a JSON object, "
            f"got {type(arguments).__name__}: {text[:200]}",
        )
    violations = _format_violations(tool._validator.iter_errors(arguments))
    if violations:
        return _error(call, f"invalid arguments for tool {tool.name!r}:\n{violations}")
    plan = tool._call_plan
    try:
        kwargs = {
            k: (plan.converters[k](v) if k in plan.converters else v) for k, v in arguments.items()
        }
    except Exception as exc:  # e.g. an attrs validator rejected a value
        return _error(
            call, f"invalid arguments for tool {tool.name!r}: {type(exc).__name__}: {exc}"
        )
    if tool.takes_context is not None:
        kwargs[tool.takes_context] = ctx
    args = []
    for pname in plan.positional:
        if pname in kwargs:
            args.append(kwargs.pop(pname))
        else:
            args.append(plan.defaults[pname])

    timeout_s = tool.timeout_s if tool.timeout_s is not None else default_timeout_s
    for attempt in range(tool.retries + 1):
        if attempt:
            await anyio.sleep(tool.retry_delay_s * 2 ** (attempt - 1))
        outcome: tuple[ToolResultPart, bool] | None = None
        with anyio.move_on_after(timeout_s) as scope:
            outcome = await _invoke(tool, call, args, kwargs)
        if scope.cancelled_caught:
            ctx._cancel_event.set()
            return _error(call, f"tool {tool.name!r} timed out after {timeout_s:g} s")
        assert outcome is not None
        result, retryable = outcome
        if not retryable:
            break
    return result


async def _invoke(
    tool: Tool, call: ToolCallPart, args: list[Any], kwargs: dict[str, Any]
) -> tuple[ToolResultPart, bool]:
    """Call the tool once: ``(result, retryable)``; retryable only for ``ToolError(retryable=True)``."""
    try:
        if _is_async_callable(tool.fn):
            value = await tool.fn(*args, **kwargs)
        else:
            value = await anyio.to_thread.run_sync(
                functools.partial(tool.fn, *args, **kwargs), abandon_on_cancel=True
            )
            if inspect.isawaitable(value):  # a sync wrapper around a coroutine function
                value = await value
    except ToolError as exc:
        return _error(call, str(exc)), exc.retryable
    except Exception as exc:
        return _error(call, f"{type(exc).__name__}: {exc}"), False
    if isinstance(value, ToolOutput):
        part = ToolResultPart(
            call_id=call.id, name=call.name, output=value.text, is_error=value.is_error, attachments=value.attachments
        )
        return part, False
    try:
        output = _encode_output(value)
    except (TypeError, ValueError) as exc:
        return _error(call, f"tool {tool.name!r} returned a value that is not JSON-encodable: {exc}"), False
    return ToolResultPart(call_id=call.id, name=call.name, output=output), False
