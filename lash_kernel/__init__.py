"""lash: a durable agent runtime.

Sessions, turns, tools, plugins, a semantic event stream, token-usage accounting and one atomic
commit per turn. This module is the host API: ``from lash_kernel import LashCore, tool``.
Plugin authors import from ``lash_kernel.plugin`` instead.

Nothing runs at import: names load lazily on first use (``import lash_kernel`` pulls in no
runtime, store or provider code), and plugins load when a ``LashCore`` is built.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: ``import lash_kernel`` then imports nothing at all
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.3.0"

if TYPE_CHECKING:
    from lash_kernel.activity import (
        AssistantProseDelta,
        ChildUsage,
        ErrorReported,
        ModelAttemptReset,
        ModelRequestStarted,
        ReasoningProseDelta,
        RetryStatus,
        ToolCallCompleted,
        ToolCallProgress,
        ToolCallStarted,
        TurnActivity,
        TurnFinished,
        UsageReported,
    )
    from lash_kernel.config import LashConfig, load_config
    from lash_kernel.directives import AbortTurn, BlockToolCall, CompactionPlan, InjectMessages, OpenFrame
    from lash_kernel.errors import (
        CommitConflictError,
        ConfigError,
        CorruptStoreError,
        LashError,
        LeaseError,
        LeaseLostError,
        MachineStateError,
        ModelError,
        PluginError,
        PluginHookError,
        PluginLoadError,
        ProviderConnectionError,
        ProviderHTTPError,
        ProviderStreamError,
        RecordDecodeError,
        SchemaVersionError,
        SessionBusyError,
        SessionNotFoundError,
        StoreError,
        ToolError,
        TurnNotPendingError,
        TurnWaitError,
        TurnWaitTimeoutError,
    )
    from lash_kernel.hookspecs import hookimpl
    from lash_kernel.messages import Attachment, Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
    from lash_kernel.model import ModelClient, ModelRequest, ModelResponse, ToolSpec
    from lash_kernel.outcomes import Finished, Stopped
    from lash_kernel.prompt import PromptContribution
    from lash_kernel.runtime.core import LashCore
    from lash_kernel.runtime.driver import RetryPolicy
    from lash_kernel.runtime.session import Session, SessionGraph, Turn, TurnResult
    from lash_kernel.runtime.worker import Worker, WorkerStats
    from lash_kernel.spec import SessionSpec
    from lash_kernel.store.base import Frame, Store, TurnRecord
    from lash_kernel.store.memory import MemoryStore
    from lash_kernel.store.sqlite import SqliteStore
    from lash_kernel.tools import Tool, ToolContext, ToolOutput, ToolProvider, ToolRegistry, tool
    from lash_kernel.trace import TraceRecord
    from lash_kernel.usage import TokenUsage, UsageLedger, UsageReport

_EXPORTS: dict[str, str] = {
    "AbortTurn": "lash_kernel.directives",
    "AssistantProseDelta": "lash_kernel.activity",
    "Attachment": "lash_kernel.messages",
    "BlockToolCall": "lash_kernel.directives",
    "ChildUsage": "lash_kernel.activity",
    "CommitConflictError": "lash_kernel.errors",
    "CompactionPlan": "lash_kernel.directives",
    "ConfigError": "lash_kernel.errors",
    "CorruptStoreError": "lash_kernel.errors",
    "ErrorReported": "lash_kernel.activity",
    "Finished": "lash_kernel.outcomes",
    "Frame": "lash_kernel.store.base",
    "InjectMessages": "lash_kernel.directives",
    "LashConfig": "lash_kernel.config",
    "LashCore": "lash_kernel.runtime.core",
    "LashError": "lash_kernel.errors",
    "LeaseError": "lash_kernel.errors",
    "LeaseLostError": "lash_kernel.errors",
    "MachineStateError": "lash_kernel.errors",
    "MemoryStore": "lash_kernel.store.memory",
    "Message": "lash_kernel.messages",
    "ModelAttemptReset": "lash_kernel.activity",
    "ModelClient": "lash_kernel.model",
    "ModelError": "lash_kernel.errors",
    "ModelRequest": "lash_kernel.model",
    "ModelRequestStarted": "lash_kernel.activity",
    "ModelResponse": "lash_kernel.model",
    "OpenFrame": "lash_kernel.directives",
    "PluginError": "lash_kernel.errors",
    "PluginHookError": "lash_kernel.errors",
    "PluginLoadError": "lash_kernel.errors",
    "PromptContribution": "lash_kernel.prompt",
    "ProviderConnectionError": "lash_kernel.errors",
    "ProviderHTTPError": "lash_kernel.errors",
    "ProviderStreamError": "lash_kernel.errors",
    "ReasoningPart": "lash_kernel.messages",
    "ReasoningProseDelta": "lash_kernel.activity",
    "RecordDecodeError": "lash_kernel.errors",
    "RetryPolicy": "lash_kernel.runtime.driver",
    "RetryStatus": "lash_kernel.activity",
    "SchemaVersionError": "lash_kernel.errors",
    "Session": "lash_kernel.runtime.session",
    "Worker": "lash_kernel.runtime.worker",
    "WorkerStats": "lash_kernel.runtime.worker",
    "TurnRecord": "lash_kernel.store.base",
    "SessionBusyError": "lash_kernel.errors",
    "SessionGraph": "lash_kernel.runtime.session",
    "SessionNotFoundError": "lash_kernel.errors",
    "SessionSpec": "lash_kernel.spec",
    "SqliteStore": "lash_kernel.store.sqlite",
    "Stopped": "lash_kernel.outcomes",
    "Store": "lash_kernel.store.base",
    "StoreError": "lash_kernel.errors",
    "TextPart": "lash_kernel.messages",
    "TokenUsage": "lash_kernel.usage",
    "Tool": "lash_kernel.tools",
    "ToolCallCompleted": "lash_kernel.activity",
    "ToolCallPart": "lash_kernel.messages",
    "ToolCallProgress": "lash_kernel.activity",
    "ToolCallStarted": "lash_kernel.activity",
    "ToolContext": "lash_kernel.tools",
    "ToolError": "lash_kernel.errors",
    "TurnNotPendingError": "lash_kernel.errors",
    "TurnWaitError": "lash_kernel.errors",
    "TurnWaitTimeoutError": "lash_kernel.errors",
    "ToolOutput": "lash_kernel.tools",
    "ToolProvider": "lash_kernel.tools",
    "ToolRegistry": "lash_kernel.tools",
    "ToolResultPart": "lash_kernel.messages",
    "ToolSpec": "lash_kernel.model",
    "TraceRecord": "lash_kernel.trace",
    "Turn": "lash_kernel.runtime.session",
    "TurnActivity": "lash_kernel.activity",
    "TurnFinished": "lash_kernel.activity",
    "TurnResult": "lash_kernel.runtime.session",
    "UsageLedger": "lash_kernel.usage",
    "UsageReport": "lash_kernel.usage",
    "UsageReported": "lash_kernel.activity",
    "hookimpl": "lash_kernel.hookspecs",
    "load_config": "lash_kernel.config",
    "tool": "lash_kernel.tools",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lash_kernel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
