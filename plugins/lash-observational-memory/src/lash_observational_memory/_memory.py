"""The observer and the reflector at work: per-session state, activation, the synchronous
fallback inside a turn, and the background runs between turns.

Rule: what decides the prompt view is only the committed records (``Observation``,
``Reflection``, ``Activation`` nodes) and the frame's messages; the per-session state here is a
cache of those records plus bookkeeping (is a background run going, which activities wait for
the next turn). A process that dies loses only a run that had not committed: the next turn or
the next ``core.session(id)`` recomputes what is unobserved from the nodes and runs again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import attrs

from lash_kernel import CommitConflictError
from lash_kernel.plugin import LashError, Message, PluginHost, StashKey

from ._logic import (
    MemoryRecords,
    View,
    chunk_ranges,
    iso_date,
    line_tokens,
    messages_digest,
    messages_tokens,
    observer_request,
    parse_lines,
    reflector_request,
    render_block,
    safe_cut,
)
from ._records import (
    Activation,
    Observation,
    ObservationalMemoryConfig,
    ObservationFinished,
    ObservationStarted,
    Reflection,
    ReflectionFinished,
)

__all__ = [
    "CONFIG",
    "MEMORY",
    "SessionMemory",
    "activate",
    "background_run",
    "load_records",
    "observe_synchronously",
    "observation_block",
    "prompt_view",
    "start_background",
]

_log = logging.getLogger("lash.observational_memory")

CONFIG = StashKey[ObservationalMemoryConfig]()
"""Per-core: the validated config (``host.stash[CONFIG]``)."""


@attrs.define
class SessionMemory:
    """Per-session state (``host.session_stash(id)[MEMORY]``).

    Attributes:
        records: the current frame's records, reloaded at every turn's start (None: not yet).
        running: a background run is going for this session on this core.
        again: a trigger arrived while it ran: look once more when it ends.
        reported: background activities waiting for the next turn (``emit_activity`` only
            reaches a running turn).
        unbuffered_tokens: estimated tokens past the coverage chain after the last turn.
        block: ``(key, message)`` of the last rendered block (rendering is cached).
        revision: the head revision ``records`` match (set when this core commits a turn of
            the session); any other head means reload.
    """

    records: MemoryRecords | None = None
    running: bool = False
    again: bool = False
    reported: list[object] = attrs.Factory(list)
    unbuffered_tokens: int = 0
    block: tuple[Any, Message] | None = None
    revision: int = -1


MEMORY = StashKey[SessionMemory]()
"""Per-session: the ``SessionMemory`` (``host.session_stash(id)[MEMORY]``)."""


def memory(host: PluginHost, session_id: str) -> SessionMemory:
    """The session's ``SessionMemory`` on this core, created on first use."""
    return host.session_stash(session_id).setdefault(MEMORY, SessionMemory())


def load_records(host: PluginHost, session_id: str, previous: MemoryRecords | None = None) -> MemoryRecords:
    """Read the session's records of its current frame from the store (I/O).

    Args:
        previous: records loaded before; their digest cache is kept when the frame is the same.
    """
    frame_id = host.session_info(session_id).frame_id
    recs = MemoryRecords.of(
        frame_id,
        host.nodes(session_id, Observation.KIND),
        host.nodes(session_id, Reflection.KIND),
        host.nodes(session_id, Activation.KIND),
    )
    if previous is not None and previous.frame_id == frame_id:
        recs._valid = previous._valid
    return recs


# ------------------------------------------------------------------------------------ in a turn
def activate(
    host: PluginHost, session_id: str, cfg: ObservationalMemoryConfig, recs: MemoryRecords, messages: Sequence[Message]
) -> View:
    """Apply the activation rules to ``messages`` (the frame as the model gets it) and return
    the view; a changed view is stored as an ``Activation`` node with the running turn.

    - unobserved messages (past the view's ``through``) at or above ``observe_at_tokens``:
      every buffered observation is activated (``through`` moves to the chain's end);
    - the block above ``reflect_at_tokens``: the latest buffered reflection that covers no
      more than ``through`` becomes its head.

    Sync, no I/O (``append_nodes`` only queues the node for the turn's commit).
    """
    view = recs.view(messages)
    through = view.through
    head = view.head
    if view.chain_end > through and messages_tokens(messages[through:]) >= cfg.observe_at_tokens:
        through = view.chain_end
    candidate = recs.view(messages, Activation(frame_id=recs.frame_id, through=through,
                                               reflection_through=head.through if head else None))
    if candidate.block_tokens > cfg.reflect_at_tokens:
        floor = head.through if head is not None else 0
        newer = [r for r in recs.reflections if floor < r.through <= through]
        if newer:
            head = newer[-1]
    act = Activation(frame_id=recs.frame_id, through=through, reflection_through=head.through if head else None)
    if (through, act.reflection_through) == (view.through, view.head.through if view.head else None):
        return view
    host.append_nodes(session_id, [act])
    recs.activation = act
    return recs.view(messages)


def prompt_view(
    host: PluginHost, session_id: str, cfg: ObservationalMemoryConfig, mem: SessionMemory, messages: tuple[Message, ...]
) -> tuple[Message, ...] | None:
    """``lash_transform_context``: the block as the first message, then the messages past the
    view's ``through``; None when there is nothing to change. Sync, no I/O."""
    recs = mem.records
    if recs is None:
        return None
    view = activate(host, session_id, cfg, recs, messages)
    mem.unbuffered_tokens = messages_tokens(messages[view.chain_end :])
    key = (recs.frame_id, view.through, view.head.through if view.head else None, len(view.active))
    if mem.block is None or mem.block[0] != key:
        text = render_block(view)
        mem.block = (key, Message.user(text) if text is not None else None)  # type: ignore[arg-type]
    block = mem.block[1]
    if block is None:
        return None
    return (block, *messages[view.through :])


def _today() -> tuple[float, str]:
    now = time.time()
    return now, iso_date(now)


async def _observe(
    host: PluginHost,
    session_id: str,
    cfg: ObservationalMemoryConfig,
    recs: MemoryRecords,
    messages: Sequence[Message],
    start: int,
    end: int,
    *,
    synchronous: bool,
) -> Observation:
    """One observer call on ``messages[start:end]``; returns the record (not stored)."""
    now, today = _today()
    previous = [line for o in recs.chain(messages) if o.end <= start for line in o.lines]
    chunk = messages[start:end]
    request = observer_request(
        chunk, previous, today=today, previous_tokens=cfg.previous_observer_tokens,
        max_output_tokens=cfg.observer_max_output_tokens,
    )
    response = await host.complete(
        request, source="observer", model=cfg.observer_model, client=cfg.observer_client,
        session_id=session_id,
    )
    lines = parse_lines(response.message.text, today=today)
    return Observation(
        frame_id=recs.frame_id, start=start, end=end, covered_sha256=messages_digest(chunk), lines=lines,
        message_tokens=messages_tokens(chunk), tokens=line_tokens(lines), observed_at=now, synchronous=synchronous,
    )


async def _reflect(
    host: PluginHost, session_id: str, cfg: ObservationalMemoryConfig, recs: MemoryRecords, view: View,
    *, synchronous: bool,
) -> Reflection:
    """One reflector call on the view's block; returns the record (not stored)."""
    now, today = _today()
    refl, obs = view.block_lines()
    request = reflector_request(refl, obs, today=today, max_output_tokens=cfg.reflector_max_output_tokens)
    response = await host.complete(
        request, source="reflector", model=cfg.reflector_model, client=cfg.reflector_client,
        session_id=session_id,
    )
    lines = parse_lines(response.message.text, today=today)
    return Reflection(
        frame_id=recs.frame_id, through=view.through, lines=lines, replaced_tokens=view.block_tokens,
        tokens=line_tokens(lines), reflected_at=now, synchronous=synchronous,
    )


async def observe_synchronously(
    host: PluginHost, session_id: str, cfg: ObservationalMemoryConfig, mem: SessionMemory,
    messages: tuple[Message, ...],
) -> None:
    """``lash_compact``: before a model call, observe and reflect in the turn when the
    background is behind (unobserved messages past ``block_at_tokens``, block past
    ``reflect_block_at_tokens``). Records go with the turn's commit (``append_nodes``), usage
    too (``complete`` inside a turn). Always leaves the newest ``buffer_tokens`` of messages
    in view."""
    recs = mem.records
    if recs is None:
        return
    view = activate(host, session_id, cfg, recs, messages)
    if messages_tokens(messages[view.through :]) > cfg.block_at_tokens:
        stop, tail = len(messages), 0
        while stop > view.chain_end:
            tail += messages_tokens(messages[stop - 1 : stop])
            stop -= 1
            if tail >= cfg.buffer_tokens and safe_cut(messages, stop):
                break
        for start, end in chunk_ranges(messages, view.chain_end, stop, cfg.max_tokens_per_batch):
            tokens = messages_tokens(messages[start:end])
            host.emit_activity(session_id, ObservationStarted(start=start, end=end, message_tokens=tokens))
            obs = await _observe(host, session_id, cfg, recs, messages, start, end, synchronous=True)
            host.append_nodes(session_id, [obs])
            recs.observations.append(obs)
            host.emit_activity(session_id, _finished(obs))
        view = recs.view(messages)
        if view.chain_end > view.through:  # past block_at, so past observe_at: activate all
            act = Activation(frame_id=recs.frame_id, through=view.chain_end,
                             reflection_through=view.head.through if view.head else None)
            host.append_nodes(session_id, [act])
            recs.activation = act
            view = recs.view(messages)
    if view.block_tokens > cfg.reflect_block_at_tokens:
        view = activate(host, session_id, cfg, recs, messages)  # a buffered reflection may do
        if view.block_tokens > cfg.reflect_block_at_tokens:
            refl = await _reflect(host, session_id, cfg, recs, view, synchronous=True)
            act = Activation(frame_id=recs.frame_id, through=view.through, reflection_through=refl.through)
            host.append_nodes(session_id, [refl, act])
            recs.reflections.append(refl)
            recs.activation = act
            host.emit_activity(session_id, _reflected(refl))


def _finished(obs: Observation) -> ObservationFinished:
    return ObservationFinished(
        start=obs.start, end=obs.end, message_tokens=obs.message_tokens, observation_tokens=obs.tokens,
        synchronous=obs.synchronous,
    )


def _reflected(refl: Reflection) -> ReflectionFinished:
    return ReflectionFinished(
        through=refl.through, replaced_tokens=refl.replaced_tokens, reflection_tokens=refl.tokens,
        synchronous=refl.synchronous,
    )


# ------------------------------------------------------------------------------------ background
def start_background(host: PluginHost, session_id: str) -> bool:
    """Start a background run for the session unless one is going (then it looks again when
    it ends). Returns False when no event loop runs here (the next turn will try again)."""
    mem = memory(host, session_id)
    if mem.running:
        mem.again = True
        return True
    mem.running = True

    async def work() -> None:
        try:
            while True:
                mem.again = False
                await background_run(host, session_id)
                if not mem.again:
                    break
        finally:
            mem.running = False

    try:
        host.spawn(work, name=f"observational memory: session {session_id}")
    except LashError:
        mem.running = False
        return False
    return True


async def background_run(host: PluginHost, session_id: str) -> None:
    """Observe what is unobserved (every ``buffer_tokens``, in chunks of at most
    ``max_tokens_per_batch``), then buffer a reflection when the block passes half of
    ``reflect_at_tokens``. Each result is committed through ``commit_maintenance`` with a key
    derived from what it covers, so a redo after a crash commits at most once.

    Errors of a run (a provider failure) are logged; the next trigger tries again.
    """
    cfg = host.stash[CONFIG]
    mem = memory(host, session_id)
    while True:
        history = host.history(session_id)
        recs = load_records(host, session_id, mem.records)
        view = recs.view(history)
        pending = messages_tokens(history[view.chain_end :])
        mem.unbuffered_tokens = pending
        if pending < cfg.buffer_tokens:
            break
        chunks = chunk_ranges(history, view.chain_end, len(history), cfg.max_tokens_per_batch)
        if not chunks:
            break
        for start, end in chunks:
            obs = await _observe(host, session_id, cfg, recs, history, start, end, synchronous=False)
            if not await _commit(host, session_id, f"om:obs:{recs.frame_id}:{start}:{end}", obs):
                break
            recs.observations.append(obs)
            mem.reported.append(_finished(obs))
        mem.unbuffered_tokens = messages_tokens(history[recs.view(history).chain_end :])
    recs = load_records(host, session_id, mem.records)
    view = recs.view(history)
    floor = view.head.through if view.head is not None else 0
    buffered = any(floor < r.through <= view.through for r in recs.reflections)
    if view.through > floor and not buffered and view.block_tokens >= cfg.reflect_at_tokens / 2:
        refl = await _reflect(host, session_id, cfg, recs, view, synchronous=False)
        if await _commit(host, session_id, f"om:refl:{recs.frame_id}:{refl.through}", refl):
            mem.reported.append(_reflected(refl))


async def _commit(host: PluginHost, session_id: str, key: str, record: object) -> bool:
    """Commit one record under ``key``; False when that key already holds another result
    (another run got there first: keep it)."""
    try:
        await host.commit_maintenance(session_id, key=key, records=[record])
    except CommitConflictError:
        _log.info("observational memory: %s was committed by another run; keeping that one", key)
        return False
    return True


# ------------------------------------------------------------------------------------ reading
def observation_block(host: PluginHost, session_id: str) -> str | None:
    """The observation block the session's next model call starts with (from the store), or
    None when nothing has been activated.

    Raises:
        SessionNotFoundError: no such session.
    """
    history = host.history(session_id)
    view = load_records(host, session_id).view(history)
    return render_block(view)
