"""Hook implementations only; the ``lash.plugins`` entry point ``audit`` targets this module.

Module-level hooks build one ``Auditor`` per core (``lash_configure``) and register it with
``core.add_plugin``, so two cores never share state.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from lash_kernel import PromptContribution, hookimpl, tool
from lash_kernel.directives import BlockToolCall

from lash_audit._config import AuditConfig


@tool
def utc_now() -> str:
    """The current date and time in UTC, ISO 8601."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Auditor:
    """Per-core state: the deny-list and the buffered log lines of the running turns."""

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.pending: dict[str, list[dict]] = {}

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


@hookimpl
def lash_register_config(registry):
    registry.add(AuditConfig)


@hookimpl
def lash_configure(core, config):
    core.add_plugin(Auditor(config), name="audit.auditor")


@hookimpl
def lash_register_tools(registry):
    registry.add(utc_now)


@hookimpl
def lash_prompt_contributions(tool_names):
    if "utc_now" not in tool_names:
        return None
    return [PromptContribution(slot="tools", title="Time", content="Call utc_now when you need the date.")]
