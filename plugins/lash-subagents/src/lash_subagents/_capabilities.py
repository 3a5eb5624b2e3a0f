"""Capabilities: what a child agent may do, resolved from its parent's settings.

Rule: a child never gains a tool its parent lacks. ``child_spec`` starts from the tools the
parent's turn actually has (its catalog after the parent's allow/deny lists), removes every
interactive tool, applies the capability's restrictions, and writes the result as the child's
explicit ``tools_allow``, so tools that appear later (a tool provider's new tool) are not given
to a child either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from lash_kernel.plugin import ConfigError, SessionSpec

if TYPE_CHECKING:
    from lash_kernel.plugin import Tool

__all__ = ["BUILTIN_CAPABILITIES", "PLUGIN_NAME", "SPAWN_TOOL", "Capability", "child_spec", "merge_capabilities"]

#: The tool's name, also denied to every child that may not spawn.
SPAWN_TOOL = "spawn_agent"

#: The plugin's name: its entry point, its ``[plugins.subagents]`` table and its key in
#: ``SessionSpec.plugin_options``.
PLUGIN_NAME = "subagents"


def _names(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _check_name(_inst: Any, _attr: Any, value: str) -> None:
    if not isinstance(value, str) or not value or not value.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"capability name must be letters, digits, '_' or '-', got {value!r}")


def _check_turns(_inst: Any, _attr: Any, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"capability max_turns must be an integer >= 1 or None, got {value!r}")


@attrs.frozen(kw_only=True)
class Capability:
    """What one kind of child agent may do. The parent's settings are the ceiling: a
    capability can only narrow them (tools) or swap the model and prompt.

    Attributes:
        name: what the model passes as ``capability`` (letters, digits, ``_``, ``-``).
        description: one line, shown to the model in ``spawn_agent``'s description.
        model: model id for the child, or None to inherit the parent's.
        client: one of the core's named model clients, or None to inherit the parent's.
        system_prompt: the child's base system prompt, or None to inherit the parent's.
        tools_allow: tool names the child may have (intersected with the parent's), or None
            for all of the parent's.
        tools_deny: tool names the child never gets.
        read_only: keep only tools marked ``read_only=True`` (``Tool.read_only``).
        may_spawn: the child keeps ``spawn_agent`` (when its parent has it and the depth
            limit allows).
        max_turns: model calls allowed per child turn, or None to inherit the parent's.

    Raises:
        ConfigError: an invalid name or ``max_turns``.
    """

    name: str = attrs.field(validator=_check_name)
    description: str = ""
    model: str | None = None
    client: str | None = None
    system_prompt: str | None = None
    tools_allow: tuple[str, ...] | None = attrs.field(default=None, converter=_names)
    tools_deny: tuple[str, ...] = attrs.field(default=(), converter=lambda v: _names(v) or ())
    read_only: bool = False
    may_spawn: bool = False
    max_turns: int | None = attrs.field(default=None, validator=_check_turns)


#: The capabilities every core has (``[plugins.subagents.capabilities.<name>]`` may redefine them).
BUILTIN_CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        name="explore",
        description="read-only research: only tools that change nothing; cannot spawn agents",
        read_only=True,
        may_spawn=False,
    ),
    Capability(
        name="peer",
        description="a full agent like you: your model, your tools (minus interactive ones); may spawn agents",
        may_spawn=True,
    ),
)


def merge_capabilities(
    from_plugins: Iterable[Iterable[Capability]], from_config: Mapping[str, Capability]
) -> dict[str, Capability]:
    """The capabilities of one core: built-ins, then plugins' (``subagents_capabilities``),
    then ``lash.toml``'s, which may redefine any of them.

    Args:
        from_plugins: each implementing plugin's capabilities.
        from_config: the config table's capabilities by name.
    Returns:
        ``{name: Capability}`` in that order.
    Raises:
        ConfigError: a plugin returned something that is not a ``Capability``, or two plugins
            (or a plugin and the built-ins) define the same name.
    """
    out = {c.name: c for c in BUILTIN_CAPABILITIES}
    for batch in from_plugins:
        for cap in batch or ():
            if not isinstance(cap, Capability):
                raise ConfigError(f"subagents_capabilities must return Capability objects, got {cap!r}")
            if cap.name in out:
                raise ConfigError(
                    f"subagent capability {cap.name!r} is defined twice (a plugin may not redefine a built-in or "
                    "another plugin's capability; redefine it in [plugins.subagents.capabilities] instead)"
                )
            out[cap.name] = cap
    out.update(from_config)
    return out


def child_spec(
    parent: SessionSpec,
    parent_tools: Iterable[Tool],
    capability: Capability,
    *,
    depth: int,
    max_depth: int,
) -> SessionSpec:
    """The ``SessionSpec`` of a child running ``capability``.

    Args:
        parent: the parent session's spec.
        parent_tools: the tools the parent's turn has (its catalog after its allow/deny lists).
        capability: what the child may do.
        depth: the child's depth (its parent's + 1).
        max_depth: the deepest a subagent may be; a child at it gets no ``spawn_agent``.
    Returns:
        The parent's spec with the capability applied: an explicit ``tools_allow`` (a subset of
        ``parent_tools`` without interactive tools), ``spawn_agent`` denied unless the child may
        spawn, and ``plugin_options["subagents"]`` = ``{"capability", "depth", "max_depth",
        "may_spawn"}``.
    Raises:
        ConfigError: never for valid inputs (``SessionSpec`` validates the values).
    """
    may_spawn = capability.may_spawn and depth < max_depth
    allowed: list[str] = []
    for item in parent_tools:
        name = item.name
        if item.interactive or (capability.read_only and not item.read_only):
            continue
        if capability.tools_allow is not None and name not in capability.tools_allow:
            continue
        if name in capability.tools_deny or (name == SPAWN_TOOL and not may_spawn) or name in allowed:
            continue
        allowed.append(name)
    deny = [*parent.tools_deny, *(n for n in capability.tools_deny if n not in parent.tools_deny)]
    if not may_spawn and SPAWN_TOOL not in deny:
        deny.append(SPAWN_TOOL)
    options = {"capability": capability.name, "depth": depth, "max_depth": max_depth, "may_spawn": may_spawn}
    return SessionSpec.inherit(
        parent,
        model=capability.model or parent.model,
        client=capability.client or parent.client,
        system_prompt=capability.system_prompt if capability.system_prompt is not None else parent.system_prompt,
        tools_allow=tuple(allowed),
        tools_deny=tuple(deny),
        max_turns=capability.max_turns or parent.max_turns,
        plugin_options={PLUGIN_NAME: options},
    )
