"""The ``[plugins.audit]`` table."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class AuditConfig:
    """Configuration of the audit plugin.

    Attributes:
        log: JSONL file that receives one line per tool call, or None for no log.
        deny: tool names the model may not call.
    """

    log: str | None = None
    deny: list[str] = attrs.field(factory=list)
