"""The whole lash exception tree, in one place.

```
LashError
├── ConfigError(ValueError)          bad host/user configuration (missing key, unknown provider, ...)
├── PluginError
│   ├── PluginLoadError              an entry point failed to import/register (names plugin + dist)
│   └── PluginHookError              a hookimpl raised; carries plugin and hook names
├── MachineStateError                local misuse: an event illegal in the machine's current state
├── ModelError                       remote: the provider failed
│   ├── ProviderHTTPError            non-2xx response; carries ``status`` and ``body``
│   ├── ProviderConnectionError      connect/read failure or timeout before a complete response
│   └── ProviderStreamError          the stream was malformed or ended without its terminal event
├── ToolError                        a tool raised or timed out (becomes a tool result, never a crash)
├── StoreError
│   ├── SchemaVersionError           the database was written by a newer lash (or is not a lash db)
│   ├── CorruptStoreError            the file is not a readable SQLite database
│   ├── CommitConflictError          compare-and-set failed, or a turn re-committed with new content
│   ├── StorePermissionError(PermissionError)  the database file or its directory is not writable
│   ├── StoreFullError               the disk holding the database is full (nothing was written)
│   └── SessionNotFoundError(KeyError)
├── LeaseError                       the single-writer lease of a session
│   ├── SessionBusyError             another writer holds the live lease (before any model call)
│   └── LeaseLostError               the lease was reclaimed; the commit wrote nothing
├── TurnWaitError                    waiting for a submitted turn (``LashCore.wait_turn``) failed
│   ├── TurnWaitTimeoutError(TimeoutError)  not committed in time (its input stays pending)
│   └── TurnNotPendingError          neither committed nor pending: discarded or never submitted
└── RecordDecodeError(ValueError)    a persisted record could not be decoded
```

Local misuse (``MachineStateError``, ``ConfigError``) is a caller bug or bad input; remote
misbehaviour (``ModelError``) is something the turn survives by stopping cleanly.
"""

from __future__ import annotations

from lash_kernel.text import valid_text

__all__ = [
    "CommitConflictError",
    "ConfigError",
    "CorruptStoreError",
    "LashError",
    "LeaseError",
    "LeaseLostError",
    "MachineStateError",
    "ModelError",
    "PluginError",
    "PluginHookError",
    "PluginLoadError",
    "ProviderConnectionError",
    "ProviderHTTPError",
    "ProviderStreamError",
    "RecordDecodeError",
    "SchemaVersionError",
    "SessionBusyError",
    "SessionNotFoundError",
    "StoreError",
    "StoreFullError",
    "StorePermissionError",
    "ToolError",
    "TurnNotPendingError",
    "TurnWaitError",
    "TurnWaitTimeoutError",
]


class LashError(Exception):
    """Base class of every error lash raises on purpose."""


class ConfigError(LashError, ValueError):
    """Bad configuration or host input: the message says what to set and where."""


class PluginError(LashError):
    """Base for plugin loading and hook-call failures."""


class PluginLoadError(PluginError):
    """A plugin's entry point failed to import or register.

    Attributes:
        plugin: entry-point name (the plugin's short name).
        value: the entry-point target, ``module[:attr]``.
        distribution: name of the distribution that declared it, or None if unknown.
    """

    def __init__(self, plugin: str, value: str, distribution: str | None, cause: BaseException) -> None:
        self.plugin = plugin
        self.value = value
        self.distribution = distribution
        dist = f" from distribution {distribution!r}" if distribution else ""
        super().__init__(
            f"plugin {plugin!r} ({value}){dist} failed to load: {type(cause).__name__}: {cause}"
        )


class PluginHookError(PluginError):
    """A hook implementation raised. ``__cause__`` holds the original exception.

    Attributes:
        plugin: name of the plugin whose hookimpl raised.
        hook: hook name, e.g. ``lash_prompt_contributions``.
    """

    def __init__(self, plugin: str, hook: str, cause: BaseException) -> None:
        self.plugin = plugin
        self.hook = hook
        super().__init__(f"plugin {plugin!r} failed in {hook}: {type(cause).__name__}: {cause}")


class MachineStateError(LashError):
    """An event was fed to the turn machine that is illegal in its current state (a caller bug)."""


class ModelError(LashError):
    """The model provider failed. Subclasses say how.

    Attributes:
        provider: provider name, e.g. ``"openai"``.
        retryable: True when retrying the same request could succeed (429, 5xx, disconnects).
    """

    def __init__(self, message: str, *, provider: str = "", retryable: bool = False) -> None:
        super().__init__(valid_text(message))  # provider text can hold lone surrogates (JSON "\\ud83d")
        self.provider = provider
        self.retryable = retryable


class ProviderHTTPError(ModelError):
    """The provider answered with a non-2xx status.

    Attributes:
        status: HTTP status code.
        body: response body as text (truncated to 64 KiB), the provider's own error message.
        retry_after_s: parsed ``Retry-After`` header in seconds, or None.
    """

    def __init__(
        self,
        status: int,
        body: str,
        *,
        provider: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        self.status = status
        self.body = body[:65536]
        self.retry_after_s = retry_after_s
        retryable = status in (408, 409, 429) or status >= 500
        super().__init__(
            f"{provider or 'provider'} returned HTTP {status}: {_error_text(self.body)}",
            provider=provider,
            retryable=retryable,
        )

    @property
    def context_overflow(self) -> bool:
        """True when the provider refused the request for exceeding the model's context window
        (HTTP 400/413 with the provider's wording: OpenAI ``context_length_exceeded``, Anthropic
        "prompt is too long", llama.cpp "exceeds the available context size", vLLM and
        OpenRouter "maximum context length"). Added in 0.2."""
        if self.status not in (400, 413):
            return False
        body = self.body.lower()
        return any(marker in body for marker in _CONTEXT_OVERFLOW_MARKERS)


class ProviderConnectionError(ModelError):
    """Connecting, sending or reading failed (including timeouts) before a complete response."""

    def __init__(self, message: str, *, provider: str = "") -> None:
        super().__init__(message, provider=provider, retryable=True)


class ProviderStreamError(ModelError):
    """The response stream was malformed or ended without the provider's terminal event."""

    def __init__(self, message: str, *, provider: str = "") -> None:
        super().__init__(message, provider=provider, retryable=True)


class ToolError(LashError):
    """A tool failed. Raise it from a tool to return a clean error message to the model.

    Attributes:
        retryable: the tool marks this failure as safe to retry; the kernel calls the tool
            again only if the tool opted in (``@tool(retries=N)``, default 0: never).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class StoreError(LashError):
    """Base for persistence failures."""


class SchemaVersionError(StoreError):
    """The database's schema version is not one this lash can read (usually: newer)."""


class CorruptStoreError(StoreError):
    """The database file is unreadable or is not a lash database."""


class CommitConflictError(StoreError):
    """A turn commit lost a compare-and-set race or re-used a turn id with different content."""


class StorePermissionError(StoreError, PermissionError):
    """The database cannot be read or written for lack of permission: a read-only file, a
    directory where SQLite may not create its ``-wal``/``-shm`` files, a read-only file system.

    The message starts with the database path and says "permission denied" and which path is
    at fault. Added in 0.2.
    """


class StoreFullError(StoreError):
    """The disk (file system) holding the database is full. The failed write was rolled back:
    nothing of it was stored. Added in 0.2."""


class LeaseError(LashError):
    """Base for single-writer lease failures (DESIGN §5: one writer per session). Added in 0.2."""


class SessionBusyError(LeaseError):
    """Another writer (a handle, core or process) holds the session's live lease. Raised at once,
    before any input is admitted or any model is called; retry later. Added in 0.2."""


class LeaseLostError(LeaseError):
    """This writer's lease was reclaimed by another writer (it expired and was claimed with a
    higher fencing number), so its commit was refused and wrote nothing. Added in 0.2."""


class TurnWaitError(LashError):
    """Base for failures of waiting on a submitted turn (``LashCore.wait_turn``). Added in 0.3."""


class TurnWaitTimeoutError(TurnWaitError, TimeoutError):
    """The turn was not committed within the wait's timeout. Nothing is undone: its input stays
    pending and a worker may still run it; wait again or discard it. Added in 0.3."""


class TurnNotPendingError(TurnWaitError):
    """The awaited turn is neither committed nor pending: its input was discarded, or it was
    never submitted to this session. Added in 0.3."""


class SessionNotFoundError(StoreError, KeyError):
    """No session with that id exists in the store."""

    def __str__(self) -> str:  # KeyError repr()s its message; keep it readable
        return str(self.args[0]) if self.args else "session not found"


class RecordDecodeError(LashError, ValueError):
    """A persisted record could not be decoded; the message lists the offending paths."""


_CONTEXT_OVERFLOW_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "prompt is too long",
    "exceeds the available context size",
    "context window",
    "too many tokens",
)


def _error_text(body: str) -> str:
    """Pull the provider's human message out of a JSON error body, else return a short body."""
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:500] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
    return body.strip()[:500]
