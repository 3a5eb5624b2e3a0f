"""lash-audit: audit log of tool calls, a tool deny-list, and a ``utc_now`` tool."""

from lash_audit._config import AuditConfig
from lash_audit.plugin import AUDITOR, Auditor

__all__ = ["AUDITOR", "AuditConfig", "Auditor"]
