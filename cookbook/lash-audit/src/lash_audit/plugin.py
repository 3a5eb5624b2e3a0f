"""Hook implementations only; the ``lash.plugins`` entry point ``audit`` targets this module.

``lash_configure`` builds one ``Auditor`` per core, registers it with ``host.add_plugin`` (so
two cores never share state) and keeps it in the core's stash under ``AUDITOR``, where host
code finds it: ``core.plugin_host.stash[AUDITOR]``.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from lash_audit._config import AuditConfig
from lash_kernel.plugin import BlockToolCall, PluginHost, PromptContribution, StashKey, hookimpl, tool


@tool
def utc_now() -> str:
    """The current date and time in UTC, ISO 8601."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Auditor:
    """Per-core state: the deny-list and the buffered log lines of the running turns."""

    lash_plugin_name = "audit.auditor"

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.pending: dict[str, list[dict]] = {}
        self.written = 0  # log lines written so far

    @hookimpl
    def lash_before_tool_call(self, call):
        if call.name in self.config.deny:
            return BlockToolCall(reason=f"tool {call.name!r} is not allowed here")
        return None

    @hookimpl
    def lash_after_tool_call(self, turn_id, call, result, duration_s):
        self.pending.setdefault(turn_id, []).append(
            {"turn_id": turn_id, "call_id": call.id, "tool": call.name, "arguments": call.arguments,
             "is_error": result.is_error, "duration_s": round(duration_s, 6)}
        )

    @hookimpl
    def lash_turn_committed(self, turn_id):
        lines = self.pending.pop(turn_id, [])
        if self.config.log and lines:
            with Path(self.config.log).open("a", encoding="utf-8") as f:
                f.writelines(json.dumps(line) + "\n" for line in lines)
            self.written += len(lines)


#: The core's ``Auditor``: ``core.plugin_host.stash[AUDITOR]``.
AUDITOR = StashKey[Auditor]()


@hookimpl
def lash_register_config(registry):
    registry.add(AuditConfig)


@hookimpl
def lash_configure(host: PluginHost, config: AuditConfig) -> None:
    auditor = host.stash[AUDITOR] = Auditor(config)
    host.add_plugin(auditor)


@hookimpl
def lash_register_tools(registry):
    registry.add(utc_now)


@hookimpl
def lash_prompt_contributions(tool_names):
    if "utc_now" not in tool_names:
        return None
    return [PromptContribution(slot="tools", title="Time", content="Call utc_now when you need the date.")]
