"""lash: a durable agent runtime.

Sessions, turns, tools, plugins, a semantic event stream, token-usage accounting and one atomic
commit per turn. Nothing runs at import: plugins load when a ``LashCore`` is built.
"""

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
from lash_kernel.core import LashCore
from lash_kernel.directives import AbortTurn, BlockToolCall, CompactionPlan, InjectMessages
from lash_kernel.driver import RetryPolicy
from lash_kernel.errors import (
    CommitConflictError,
    ConfigError,
    CorruptStoreError,
    LashError,
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
    SessionNotFoundError,
    StoreError,
    ToolError,
)
from lash_kernel.hookspecs import hookimpl
from lash_kernel.messages import Attachment, Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from lash_kernel.outcomes import Finished, Stopped
from lash_kernel.prompt import PromptContribution
from lash_kernel.providers.base import ModelClient, ModelRequest, ModelResponse, ToolSpec
from lash_kernel.session import Session, Turn, TurnResult
from lash_kernel.store.base import Store
from lash_kernel.store.memory import MemoryStore
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.tools import Tool, ToolContext, ToolOutput, ToolProvider, ToolRegistry, tool
from lash_kernel.trace import TraceRecord
from lash_kernel.usage import TokenUsage, UsageLedger, UsageReport

__version__ = "0.1.0"

__all__ = [
    "AbortTurn",
    "AssistantProseDelta",
    "Attachment",
    "BlockToolCall",
    "ChildUsage",
    "CommitConflictError",
    "CompactionPlan",
    "ConfigError",
    "CorruptStoreError",
    "ErrorReported",
    "Finished",
    "InjectMessages",
    "LashConfig",
    "LashCore",
    "LashError",
    "MachineStateError",
    "MemoryStore",
    "Message",
    "ModelAttemptReset",
    "ModelClient",
    "ModelError",
    "ModelRequest",
    "ModelRequestStarted",
    "ModelResponse",
    "PluginError",
    "PluginHookError",
    "PluginLoadError",
    "PromptContribution",
    "ProviderConnectionError",
    "ProviderHTTPError",
    "ProviderStreamError",
    "ReasoningPart",
    "ReasoningProseDelta",
    "RecordDecodeError",
    "RetryPolicy",
    "RetryStatus",
    "SchemaVersionError",
    "Session",
    "SessionNotFoundError",
    "SqliteStore",
    "Stopped",
    "Store",
    "StoreError",
    "TextPart",
    "TokenUsage",
    "Tool",
    "ToolCallCompleted",
    "ToolCallPart",
    "ToolCallProgress",
    "ToolCallStarted",
    "ToolContext",
    "ToolError",
    "ToolOutput",
    "ToolProvider",
    "ToolRegistry",
    "ToolResultPart",
    "ToolSpec",
    "TraceRecord",
    "Turn",
    "TurnActivity",
    "TurnFinished",
    "TurnResult",
    "UsageLedger",
    "UsageReport",
    "UsageReported",
    "__version__",
    "hookimpl",
    "load_config",
    "tool",
]
