"""``[plugins.subagents]`` in ``lash.toml``: limits and user-defined capabilities.

```toml
[plugins.subagents]
max_depth = 5          # deepest nesting of subagents (root session = depth 0)
max_concurrent = 4     # spawn_agent calls of one session running at once

[plugins.subagents.capabilities.reviewer]
description = "reviews a diff; read-only"
model = "gpt-4o-mini"
system_prompt = "You review code changes."
tools_allow = ["read_file", "grep"]
read_only = true
may_spawn = false
max_turns = 8
```
"""

from __future__ import annotations

import attrs

from lash_subagents._capabilities import Capability

__all__ = ["CapabilityConfig", "SubagentsConfig"]


@attrs.frozen(kw_only=True)
class CapabilityConfig:
    """One ``[plugins.subagents.capabilities.<name>]`` table (see ``Capability`` for each key).

    Attributes:
        description: one line for the model (required).
        model, client, system_prompt: the child's model id, named model client and base system
            prompt; None inherits the parent's.
        tools_allow: tool names the child may have (within the parent's), or None for all.
        tools_deny: tool names the child never gets.
        read_only: only tools marked ``read_only``.
        may_spawn: the child keeps ``spawn_agent``.
        max_turns: model calls per child turn (>= 1), or None to inherit.
    """

    description: str
    model: str | None = None
    client: str | None = None
    system_prompt: str | None = None
    tools_allow: list[str] | None = None
    tools_deny: list[str] = attrs.field(factory=list)
    read_only: bool = False
    may_spawn: bool = False
    max_turns: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.max_turns is not None and self.max_turns < 1:
            raise ValueError(f"max_turns must be an integer >= 1, got {self.max_turns}")

    def capability(self, name: str) -> Capability:
        """This table as the ``Capability`` called ``name``.

        Raises:
            ConfigError: an invalid name.
        """
        return Capability(
            name=name, description=self.description, model=self.model, client=self.client,
            system_prompt=self.system_prompt, tools_allow=self.tools_allow, tools_deny=self.tools_deny,
            read_only=self.read_only, may_spawn=self.may_spawn, max_turns=self.max_turns,
        )


@attrs.frozen(kw_only=True)
class SubagentsConfig:
    """The ``[plugins.subagents]`` table.

    Attributes:
        max_depth: the deepest a subagent may run (a root session is depth 0, its children 1);
            a child at this depth does not get ``spawn_agent``, and a spawn from a session at
            it is a tool error. Default 5.
        max_concurrent: ``spawn_agent`` calls of one session that run at once (the others
            wait). Default 4.
        capabilities: user-defined capabilities by name (they may redefine ``explore`` and
            ``peer``).

    Raises:
        ValueError: a limit below 1 (reported as a ``ConfigError`` naming the key).
    """

    max_depth: int = 5
    max_concurrent: int = 4
    capabilities: dict[str, CapabilityConfig] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        for key in ("max_depth", "max_concurrent"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be an integer >= 1, got {getattr(self, key)}")
        for name in self.capabilities:
            self.capabilities[name].capability(name)  # a bad name fails here, with the table
