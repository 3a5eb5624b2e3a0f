"""lash-audit: audit log of tool calls, a tool deny-list, and a ``utc_now`` tool."""

from lash_audit._config import AuditConfig

__all__ = ["AuditConfig"]
