"""The ``compaction`` entry point (``lash.plugins``): hook implementations and wiring.

Two tiers keep a session inside its model's context window:

1. ``lash_transform_context`` (sync, no I/O): above ``clear_at`` of the window, tool results
   older than the last ``keep_tool_results`` are replaced by stubs in the prompt view (the
   store keeps them). The set of stubbed results only grows, in steps that each free at least
   ``MIN_STEP`` of the window, so the prompt prefix is byte-identical between steps.
2. ``lash_compact`` (async, before each model call): above ``summarize_at`` after tier 1, or
   when the provider refused the request for its size, one ``host.complete(source=
   "compaction")`` call summarises the start of the current frame (updating the previous
   summary) and an ``OpenFrame`` seeded with the summary and the most recent messages
   replaces the context. ``lash_compact_session`` does the same between turns, by hand.

How full the window is: the provider's reported input of the previous request (uncached +
cache read + cache write) corrects a bytes/4 estimate of the view (observed through
``lash_on_activity``); before any report the estimate alone counts.

Per-core data lives in ``host.stash``, per-session data in ``host.session_stash``; neither is
persisted (a resumed session starts with no correction and no stubs, so its first request
after a restart may change the prompt prefix once).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import attrs

from lash_compaction._config import CompactionConfig, window_for
from lash_compaction._records import CompactionFinished, CompactionRecord, CompactionStarted
from lash_compaction._summarize import choose_cut, summary_message, summary_request
from lash_compaction._view import Clearing, apply_clearing, estimate, message_tokens, next_clearing
from lash_kernel import ModelError
from lash_kernel.plugin import (
    ConfigError,
    LashError,
    Message,
    OpenFrame,
    StashKey,
    hookimpl,
)

if TYPE_CHECKING:
    import click

    from lash_kernel.plugin import (
        ConfigRegistrar,
        PluginHost,
        RecordTypeRegistrar,
        TurnActivity,
        UsageSourceRegistrar,
    )

__all__ = ["MIN_STEP", "SOURCE", "compact_now"]

_log = logging.getLogger("lash.compaction")

#: The usage-ledger source of summary calls.
SOURCE = "compaction"
#: A tier-1 step must free at least this fraction of the window (fewer, larger steps keep the
#: prompt prefix stable for longer).
MIN_STEP = 0.05
#: The most of the window the kept messages may take after a summary (the rest is headroom).
_KEEP_LIMIT = 0.5
#: Share of the window the transcript sent to the summary model may take.
_TRANSCRIPT_SHARE = 0.65


@attrs.define
class _Core:
    config: CompactionConfig
    core_window: int | None = None
    turns: dict[str, str] = attrs.field(factory=dict)  # turn id -> session id (running turns)
    warned: set[str] = attrs.field(factory=set)


@attrs.define
class _Session:
    config: CompactionConfig
    model: str | None = None
    clearing: Clearing = Clearing()
    correction: int = 0  # reported input tokens minus our estimate, last request
    pending_estimate: int | None = None  # estimate of the request in flight
    last_raw: tuple[Message, ...] | None = None  # the raw view lash_compact saw last
    failed_turn: str | None = None


_CORE = StashKey[_Core]()
_SESSION = StashKey[_Session]()


# ------------------------------------------------------------------------------------ build
@hookimpl
def lash_register_config(registry: ConfigRegistrar) -> None:
    """Declare ``CompactionConfig`` as the ``[plugins.compaction]`` table."""
    registry.add(CompactionConfig)


@hookimpl
def lash_configure(host: PluginHost, config: CompactionConfig | None) -> None:
    """Keep the validated config for this core (defaults when the table is absent)."""
    host.stash[_CORE] = _Core(config=config or CompactionConfig())


@hookimpl
def lash_register_record_types(registry: RecordTypeRegistrar) -> None:
    """``CompactionRecord``: one node per summary (kind ``compaction``)."""
    registry.add(CompactionRecord)


@hookimpl
def lash_register_usage_sources(registry: UsageSourceRegistrar) -> None:
    """Summary calls are billed to ``compaction``."""
    registry.add(SOURCE, "summaries that open a new agent frame (lash-compaction)")


@hookimpl
def lash_register_commands(cli: click.Group) -> None:
    """Add ``lash sessions compact ID`` (to the kernel's ``sessions`` group when present)."""
    from lash_compaction._cli import compact_command

    group = cli.commands.get("sessions") if hasattr(cli, "commands") else None
    target = group if group is not None and hasattr(group, "add_command") else cli
    target.add_command(compact_command)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------ state
def _session(host: PluginHost, session_id: str) -> _Session | None:
    """This session's state, created on first use; None when the plugin is off for it."""
    core = host.stash.get(_CORE, None)
    if core is None:
        return None
    stash = host.session_stash(session_id)
    state = stash.get(_SESSION, None)
    if state is None:
        spec = host.session_spec(session_id)
        try:
            config = core.config.for_session(spec.plugin_options.get("compaction"))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"session {session_id}: plugin_options['compaction']: {exc}") from exc
        state = stash[_SESSION] = _Session(config=config, model=spec.model)
    return state


def _window(host: PluginHost, state: _Session, core_window: int | None) -> int | None:
    core = host.stash[_CORE]
    if core_window is not None:
        core.core_window = core_window
    window = window_for(state.config, state.model, core.core_window)
    if window is None:
        key = state.model or "?"
        if key not in core.warned:
            core.warned.add(key)
            _log.warning(
                "lash-compaction: no context window known for model %r; set [plugins.compaction] "
                "context_window (or windows.%s), or LashCore(context_window=...). Compaction is off "
                "for it except when the provider reports a context overflow.",
                state.model, state.model,
            )
    return window


def _planned_view(
    state: _Session, messages: tuple[Message, ...], window: int | None
) -> tuple[tuple[Message, ...], Clearing, int, int]:
    """Tier 1 for ``messages``: ``(view, clearing, tokens, freed)`` where ``clearing`` may be a
    new step (not stored) and ``tokens`` the estimate of the view as it would be sent."""
    config, clearing = state.config, state.clearing
    view = apply_clearing(messages, clearing)
    tokens = max(0, estimate(view) + state.correction)
    freed = 0
    if window is not None and tokens > config.clear_at * window:
        step, step_freed = next_clearing(messages, clearing, config.keep_tool_results)
        if step_freed >= max(1, int(MIN_STEP * window)):
            clearing, freed = step, step_freed
            view = apply_clearing(messages, clearing)
            tokens = max(0, tokens - freed)
    return view, clearing, tokens, freed


# ------------------------------------------------------------------------------------ observation
@hookimpl
def lash_before_turn(host: PluginHost, session_id: str, turn_id: str) -> None:
    """Remember which session the turn belongs to (activities carry only the turn id)."""
    core = host.stash.get(_CORE, None)
    if core is not None:
        core.turns[turn_id] = session_id


@hookimpl
def lash_on_activity(host: PluginHost, activity: TurnActivity) -> None:
    """Learn the session's model (``model_request_started``) and calibrate the estimate with
    the provider's reported input (``usage``: uncached + cache read + cache write)."""
    core = host.stash.get(_CORE, None)
    if core is None or not core.turns:
        return
    kind = activity.kind
    if kind != "usage" and kind != "model_request_started":
        return
    session_id = core.turns.get(activity.id.rsplit(":", 1)[0])
    if session_id is None:
        return
    state = host.session_stash(session_id).get(_SESSION, None)
    if state is None and kind == "model_request_started":
        state = _session(host, session_id)
    if state is None:
        return
    event: Any = activity.event
    if kind == "model_request_started":
        state.model = event.model or state.model
    elif state.pending_estimate is not None:
        usage = event.usage
        reported = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_write_input_tokens
        if reported > 0:
            state.correction = reported - state.pending_estimate
        state.pending_estimate = None


@hookimpl
def lash_turn_committed(host: PluginHost, turn_id: str) -> None:
    """Forget the turn."""
    core = host.stash.get(_CORE, None)
    if core is not None:
        core.turns.pop(turn_id, None)


# ------------------------------------------------------------------------------------ tier 1
@hookimpl
def lash_transform_context(
    host: PluginHost, session_id: str, messages: tuple[Message, ...]
) -> tuple[Message, ...] | None:
    """Tier 1: stub old tool results in the view once it is above ``clear_at`` of the window.

    Returns:
        The view with stubs, or None when nothing is stubbed.
    """
    state = _session(host, session_id)
    if state is None or not state.config.enabled:
        return None
    window = _window(host, state, None)
    view, clearing, tokens, freed = _planned_view(state, messages, window)
    if clearing is not state.clearing:
        step = len(clearing.cleared) - len(state.clearing.cleared)
        trigger = "threshold"
        host.emit_activity(
            session_id,
            CompactionStarted(tier="clear", trigger=trigger, tokens_before=tokens + freed, context_window=window or 0),
        )
        state.clearing = clearing
        host.emit_activity(
            session_id,
            CompactionFinished(
                tier="clear", trigger=trigger, tokens_before=tokens + freed, tokens_after=tokens, cleared=step
            ),
        )
    state.pending_estimate = estimate(view)
    return view if view is not messages else None


# ------------------------------------------------------------------------------------ tier 2
@hookimpl
async def lash_compact(
    host: PluginHost,
    session_id: str,
    turn_id: str,
    messages: tuple[Message, ...],
    context_window: int | None,
    overflow: bool,
) -> OpenFrame | None:
    """Tier 2: above ``summarize_at`` (after tier 1), or on a context overflow, summarise the
    start of the current frame and open a new frame seeded with the summary and the most
    recent messages.

    Returns:
        The ``OpenFrame``, or None to go on uncompacted.
    Raises:
        LashError: the summary call failed and the request no longer fits the window (the
            turn stops as ``plugin_abort`` with this reason; nothing was opened).
    """
    state = _session(host, session_id)
    if state is None or not state.config.enabled:
        return None
    if overflow and state.last_raw is not None and len(state.last_raw) == len(messages):
        messages = state.last_raw  # the kernel passes the sent view; summarise the raw one
    else:
        state.last_raw = messages
    window = _window(host, state, context_window)
    if window is None and not overflow:
        return None
    if state.failed_turn == turn_id and not overflow:
        return None  # one failed summary per turn; the next turn tries again
    view, clearing, tokens, _ = _planned_view(state, messages, window)
    if not overflow and window is not None and tokens < state.config.summarize_at * window:
        return None
    trigger = "overflow" if overflow else "threshold"
    result = await _summarize(
        host, state, session_id, messages, view, clearing, tokens, window, trigger, instructions=None, turn_id=turn_id
    )
    if isinstance(result, str):  # the summary failed
        state.failed_turn = turn_id
        if overflow or (window is not None and tokens >= window):
            raise LashError(
                f"compaction failed ({result}) and the context (~{tokens} tokens) no longer fits the "
                f"model's window ({window or 'unknown'} tokens); nothing was compacted, the next turn tries again"
            )
        return None
    if result is None:
        return None
    frame, record = result
    host.append_nodes(session_id, [record])
    return frame


async def _summarize(
    host: PluginHost,
    state: _Session,
    session_id: str,
    messages: tuple[Message, ...],
    view: tuple[Message, ...],
    clearing: Clearing,
    tokens: int,
    window: int | None,
    trigger: str,
    *,
    instructions: str | None,
    turn_id: str | None,
) -> tuple[OpenFrame, CompactionRecord] | str | None:
    """One summary: ``(frame, record)``; an error text when the call failed; None when
    there is nothing to summarise. ``turn_id`` None means between turns (by hand)."""
    config = state.config
    sizes = [message_tokens(m) for m in view]
    basis = window if window is not None else tokens
    if trigger == "manual":
        keep, limit = 0, None
    else:
        keep = min(config.keep_recent_tokens, basis // 4)
        limit = int(basis * _KEEP_LIMIT)
    cut = choose_cut(messages, sizes, keep, limit)
    if cut is None or cut.index <= cut.start:
        return None
    host.emit_activity(
        session_id, CompactionStarted(tier="summary", trigger=trigger, tokens_before=tokens, context_window=window or 0)
    )
    request = summary_request(
        messages[cut.start : cut.index],
        previous=cut.previous,
        instructions=instructions,
        model=config.model or "",
        max_output_tokens=config.summary_max_tokens,
        max_chars=int(basis * _TRANSCRIPT_SHARE) * 4,
    )
    error: str | None = None
    text = ""
    try:
        response = await host.complete(
            request,
            source=SOURCE,
            model=config.model,
            client=config.client,
            session_id=session_id if turn_id is None else None,
        )
        text = response.message.text.strip()
        if not text:
            error = "the summary model returned no text"
    except ModelError as exc:
        error = f"summary call failed: {exc}"
    if error is not None:
        _log.warning("lash-compaction: session %s: %s", session_id, error)
        host.emit_activity(
            session_id,
            CompactionFinished(tier="summary", trigger=trigger, tokens_before=tokens, tokens_after=tokens, error=error),
        )
        return error
    seed = (summary_message(text), *messages[cut.index :])
    after = max(0, estimate(apply_clearing(seed, clearing)) + state.correction)
    frame_id = uuid.uuid4().hex
    record = CompactionRecord(
        frame_id=frame_id,
        previous_frame_id=host.session_info(session_id).frame_id,
        trigger=trigger,
        tokens_before=tokens,
        tokens_after=after,
        summarized_messages=cut.index,
        kept_messages=len(messages) - cut.index,
        incremental=cut.previous is not None,
        summary=text,
        model=response.model or config.model or state.model or "",
        instructions=instructions,
    )
    state.clearing = clearing
    state.last_raw = None
    host.emit_activity(
        session_id,
        CompactionFinished(
            tier="summary", trigger=trigger, tokens_before=tokens, tokens_after=after, frame_id=frame_id
        ),
    )
    return OpenFrame(reason="compaction", seed=seed, frame_id=frame_id), record


# ------------------------------------------------------------------------------------ by hand
async def compact_now(host: PluginHost, session_id: str, instructions: str | None = None) -> CompactionRecord | None:
    """Compact ``session_id`` now, between turns: summarise its current frame but the last
    exchange (from its last user message on) and open a new frame, in one maintenance commit
    (the summary call's usage is committed on its own, first).

    Args:
        host: the core's ``PluginHost``.
        session_id: the session (no turn of it may be running).
        instructions: what the summary should focus on, or None.
    Returns:
        The ``CompactionRecord`` stored with the new frame, or None when there was nothing to
        compact (an empty frame, or a single exchange).
    Raises:
        ModelError: the summary call failed (nothing but its usage, if any, was committed).
        CommitConflictError: the session moved on while the summary was written.
        ConfigError: the config names an unknown ``client`` or the session's options are invalid.
    """
    state = _session(host, session_id)
    if state is None:  # the plugin is registered but was never configured on this core
        raise ConfigError("lash-compaction is not configured on this core")
    before = host.session_info(session_id)
    messages = host.history(session_id)
    if not messages:
        return None
    window = window_for(state.config, state.model, host.stash[_CORE].core_window)
    view, clearing, tokens, _ = _planned_view(state, messages, window)
    sizes = [message_tokens(m) for m in view]
    cut = choose_cut(messages, sizes, 0, None)
    if cut is None:
        return None
    result = await _summarize(
        host, state, session_id, messages, view, clearing, tokens, window, "manual",
        instructions=instructions, turn_id=None,
    )
    if isinstance(result, str):
        raise ModelError(f"lash-compaction: {result}")
    if result is None:
        return None
    frame, record = result
    now = host.session_info(session_id)  # the summary's usage was committed: one revision on
    if now.leaf_id != before.leaf_id or now.frame_id != before.frame_id:
        from lash_kernel import CommitConflictError

        raise CommitConflictError(f"session {session_id} moved on while its summary was written; compact it again")
    await host.commit_maintenance(session_id, records=[record], frame=frame, expected_revision=now.head_revision)
    return record


@hookimpl
async def lash_compact_session(host: PluginHost, session_id: str, instructions: str | None) -> bool | None:
    """``Session.compact()``: see ``compact_now``. Returns True when a frame was opened."""
    return await compact_now(host, session_id, instructions) is not None
