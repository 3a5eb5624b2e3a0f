"""The ``observational_memory`` plugin's hook implementations (the entry point targets this module).

Per turn: ``lash_before_turn`` reloads the session's records and publishes what background
runs finished since; ``lash_compact`` observes / reflects synchronously when the background
is behind (it never opens a frame); ``lash_transform_context`` builds the prompt view;
``lash_turn_committed`` starts the background observer when enough is unobserved.
``lash_session_opened`` redoes what a dead process left unobserved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lash_kernel.plugin import ConfigError, hookimpl

if TYPE_CHECKING:
    from lash_kernel.plugin import Message, PluginHost

    from ._records import ObservationalMemoryConfig

# Rule: the records and the memory logic are imported inside the hooks (a dict lookup once
# loaded), so importing this entry module stays cheap: ``lash --help`` imports every plugin's.

PLUGIN = "observational_memory"
RIVAL = "compaction"


@hookimpl
def lash_register_config(registry: Any) -> None:
    """Declare ``[plugins.observational_memory]``."""
    from ._records import ObservationalMemoryConfig

    registry.add(ObservationalMemoryConfig)


@hookimpl
def lash_configure(host: PluginHost, config: ObservationalMemoryConfig) -> None:
    """Keep the config; refuse ``lash-compaction`` beside this plugin unless it is the fallback.

    Raises:
        ConfigError: both plugins are loaded and ``fallback`` is not ``"compaction"``.
    """
    from ._memory import CONFIG

    if RIVAL in host.plugin_names() and config.fallback != RIVAL:
        raise ConfigError(
            f"plugins {PLUGIN!r} and {RIVAL!r} are both loaded: they are alternatives for a long "
            f"conversation. Disable one, or set [plugins.{PLUGIN}] fallback = \"{RIVAL}\" to keep "
            f"{RIVAL!r} as the fallback"
        )
    host.stash[CONFIG] = config


@hookimpl
def lash_register_record_types(registry: Any) -> None:
    """The observation, reflection and activation nodes."""
    from ._records import Activation, Observation, Reflection

    registry.add(Observation)
    registry.add(Reflection)
    registry.add(Activation)


@hookimpl
def lash_register_usage_sources(registry: Any) -> None:
    """``observer`` and ``reflector``."""
    registry.add("observer", "observational memory: the observer's model calls")
    registry.add("reflector", "observational memory: the reflector's model calls")


@hookimpl
def lash_register_commands(cli: Any) -> None:
    """``lash memory show SESSION``."""
    from ._commands import memory_group

    cli.add_command(memory_group)


@hookimpl
def lash_session_opened(host: PluginHost, session_id: str, created: bool) -> None:
    """An existing session: redo what is unobserved (a process may have died mid-run)."""
    from ._memory import start_background

    if not created:
        start_background(host, session_id)


@hookimpl
def lash_before_turn(host: PluginHost, session_id: str) -> None:
    """Reload the records when the session moved since this core's last commit of it (a
    background run, another process); publish background work finished since."""
    from ._memory import load_records, memory

    mem = memory(host, session_id)
    if mem.records is None or host.session_info(session_id).head_revision != mem.revision:
        mem.records = load_records(host, session_id, mem.records)  # someone else wrote since
    reported, mem.reported = mem.reported, []
    for event in reported:
        host.emit_activity(session_id, event)


@hookimpl
async def lash_compact(host: PluginHost, session_id: str, messages: tuple[Message, ...]) -> None:
    """The synchronous fallback before a model call; never opens a frame (returns None)."""
    from ._memory import CONFIG, memory, observe_synchronously

    await observe_synchronously(host, session_id, host.stash[CONFIG], memory(host, session_id), messages)


@hookimpl
def lash_transform_context(
    host: PluginHost, session_id: str, messages: tuple[Message, ...]
) -> tuple[Message, ...] | None:
    """System prompt, then the observation block, then the messages not yet observed."""
    from ._memory import CONFIG, memory, prompt_view

    return prompt_view(host, session_id, host.stash[CONFIG], memory(host, session_id), messages)


@hookimpl
def lash_after_turn(host: PluginHost, session_id: str, messages: tuple[Message, ...]) -> None:
    """Count the turn's final answer into the estimate of unobserved tokens (no I/O)."""
    from ._logic import estimate_tokens
    from ._memory import memory

    if messages and messages[-1].role == "assistant":
        memory(host, session_id).unbuffered_tokens += estimate_tokens(messages[-1])


@hookimpl
def lash_turn_committed(host: PluginHost, session_id: str, head_revision: int) -> None:
    """Start the background observer when ``buffer_tokens`` are unobserved (or a reflection
    may be due); it commits through maintenance commits, never delaying this turn."""
    from ._memory import CONFIG, memory, start_background

    cfg = host.stash[CONFIG]
    mem = memory(host, session_id)
    mem.revision = head_revision  # the records in memory are what this commit stored
    recs = mem.records
    due = mem.unbuffered_tokens >= cfg.buffer_tokens
    if not due and recs is not None and recs.activation is not None:
        due = _block_estimate(recs) >= cfg.reflect_at_tokens / 2
    if due:
        start_background(host, session_id)


def _block_estimate(recs: Any) -> int:
    """Tokens of the active block, from the records alone (an estimate for the trigger); 0
    when a reflection is already buffered."""
    act = recs.activation
    head = recs.reflection(act.reflection_through)
    floor = head.through if head is not None else 0
    if any(floor < r.through <= act.through for r in recs.reflections):
        return 0  # a reflection is buffered already
    obs = sum(o.tokens for o in recs.observations if o.start >= floor and o.end <= act.through)
    return (head.tokens if head is not None else 0) + obs
