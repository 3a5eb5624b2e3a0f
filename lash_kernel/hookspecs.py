"""Every lash hookspec. Plugin authors: this file is the reference (``docs/hooks.md`` mirrors it).

Rules for all hooks:
- Implement them with ``@hookimpl`` (``from lash_kernel.plugin import hookimpl``) and accept
  only the arguments you use, by name; an implementation parameter with a default is rejected
  when the plugin loads.
- Every hook a core calls (all but ``lash_addhooks``, ``lash_register_config``,
  ``lash_register_stores`` and ``lash_register_commands``) offers ``host``: the core's ``PluginHost``, the same object
  ``lash_configure`` received. A module-level implementation keeps per-core data in
  ``host.stash`` and per-session data in ``host.session_stash(session_id)``.
- Hooks are synchronous unless the docstring says "May be async"; those are awaited by the
  driver one implementation at a time, in pluggy's call order. ``wrapper=True`` and
  ``hookwrapper=True`` implementations are rejected on every lash hook.
- Call order: kernel built-ins are registered first (they run last), then entry-point plugins
  sorted by name, then plugins the host passes (they run first). ``tryfirst`` / ``trylast``
  are honoured.
- An exception from an implementation is wrapped in ``PluginHookError(plugin, hook)``; what
  happens next is stated per hook.
- ``registry`` objects handed to ``lash_register_*`` hooks are bound to the calling plugin,
  so conflicts name both plugins.
- Every implementation call goes through ``KernelHooks`` and can be watched: in tests with
  ``lash_kernel.testing.HookRecorder``, on the console with ``LASH_TRACE_HOOKS=1``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import pluggy

if TYPE_CHECKING:
    import click

    from lash_kernel.activity import TurnActivity
    from lash_kernel.directives import AbortTurn, BlockToolCall, CheckpointDirective, CompactionPlan, OpenFrame
    from lash_kernel.messages import Message, ToolCallPart, ToolResultPart
    from lash_kernel.outcomes import Outcome
    from lash_kernel.plugin import (
        ConfigRegistrar,
        HookspecRegistrar,
        ModeRegistrar,
        PluginHost,
        RecordTypeRegistrar,
        StoreRegistrar,
        ToolRegistrar,
        UsageSourceRegistrar,
    )
    from lash_kernel.prompt import PromptContribution
    from lash_kernel.store.base import SessionInfo
    from lash_kernel.trace import TraceRecord
    from lash_kernel.usage import UsageLedger

PROJECT = "lash"
hookspec = pluggy.HookspecMarker(PROJECT)
"""Marks a hook specification; plugins use it for hooks they publish (``lash_addhooks``)."""
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a hook implementation: ``@hookimpl``, ``@hookimpl(tryfirst=True)``."""
_hookspec = hookspec

__all__ = ["PROJECT", "hookimpl", "hookspec"]


# ------------------------------------------------------------------------------------- build
@_hookspec
def lash_addhooks(registry: HookspecRegistrar) -> None:
    """Publish hookspecs of your own, for other plugins to implement (like ``pytest_addhooks``).

    Called by: the plugin loader (in ``LashCore`` and in the ``lash`` CLI), once per plugin,
    after every plugin is registered and before implementations are checked, so a plugin may
    implement a hook another plugin publishes whatever their order; and by
    ``PluginHost.add_plugin`` for a plugin added later. Sync.
    Args:
        registry: ``registry.add(namespace)`` takes a module or class whose functions are
            marked ``@hookspec`` (``from lash_kernel.plugin import hookspec``). Prefix their
            names with your plugin's name (``myplugin_on_x``); ``lash_`` is the kernel's.
    Returns:
        Nothing. Call a published hook with ``host.call_hook(name, **kwargs)`` (or
        ``await host.acall_hook(...)`` when implementations may be async).
    Raises:
        A name that is taken, starts with ``lash_`` or is ``historic`` raises ``ConfigError``;
        an existing implementation that asks for arguments the spec lacks raises
        ``PluginError``. Any exception fails loading with ``PluginHookError``.
    Added in 0.2.
    """


@_hookspec
def lash_register_config(registry: ConfigRegistrar) -> None:
    """Declare the attrs class that holds this plugin's configuration.

    Called by: ``LashCore``, once, right after plugins load and before ``lash_configure``.
    Sync. The ``lash`` CLI also calls it to validate ``lash.toml`` early.
    Args:
        registry: ``registry.add(cls)`` takes an attrs class whose fields (with defaults for
            anything optional) are the keys of ``[plugins.<name>]`` in ``lash.toml`` (or of
            ``LashCore(plugin_config={name: {...}})``). Values are read strictly: unknown keys
            and wrong types are ``ConfigError``\\ s naming the file, table and key.
    Returns:
        Nothing.
    Raises:
        A second class for the same plugin raises ``ConfigError``. Any exception fails
        ``LashCore`` construction with ``PluginHookError``.
    Added in 0.1.
    """


@_hookspec
def lash_configure(host: PluginHost, config: object | None) -> None:
    """Set the plugin up for one core: open sinks, read config, register cleanups.

    Called by: ``LashCore``, once per core, after config validation and before tools are
    registered; each plugin receives only its own config. Sync; keep it fast (open
    connections lazily). Use ``host.on_close(fn)`` to release what you open, ``host.stash``
    for per-core data, ``host.add_plugin(obj, name=...)`` for a per-core hook object.
    Args:
        host: the ``PluginHost`` of the core being built (never the core itself; its tool
            catalog and sessions are not ready yet).
        config: the plugin's validated config object (an instance of the class it gave
            ``lash_register_config``), or None when the plugin declared no config class. A
            plugin with a config class but no table gets the class's defaults.
    Returns:
        Nothing.
    Raises:
        ``ConfigError`` (the plugin refuses this configuration, e.g. an incompatible plugin is
        loaded too: see ``host.plugin_names()``) fails ``LashCore`` construction with a
        ``ConfigError`` naming the plugin; any other exception with ``PluginHookError``.
    Added in 0.1. Changed in 0.2: receives ``host`` (a ``PluginHost``) instead of ``core``,
    and a ``ConfigError`` reaches the host as one.
    """


@_hookspec
def lash_register_tools(registry: ToolRegistrar, host: PluginHost) -> None:
    """Add tools (or tool providers) to the core's catalog.

    Called by: ``LashCore``, once, after ``lash_configure``. Sync.
    Args:
        registry: ``registry.add(tool)`` takes a ``Tool`` or a plain function (wrapped with
            ``@tool``); ``registry.add_provider(provider)`` takes a ``ToolProvider`` whose tool
            list is fetched (async) at the start of every turn, so it may change between turns.
        host: the core's ``PluginHost``.
    Returns:
        Nothing; register through ``registry``.
    Raises:
        A duplicate tool name raises ``ConfigError`` naming both plugins. Any exception fails
        ``LashCore`` construction with ``PluginHookError``.
    Added in 0.1.
    """


@_hookspec
def lash_register_modes(registry: ModeRegistrar, host: PluginHost) -> None:
    """Add execution modes (how a turn runs: ``standard`` is the kernel's own).

    Called by: ``LashCore``, once, after ``lash_register_tools``. Sync.
    Args:
        registry: ``registry.add(name, factory, description=...)``; ``factory(config,
            history)`` gets a ``MachineConfig`` and the session's committed messages and returns
            a machine with the ``TurnMachine`` interface (``start``, ``feed``, ``state``).
        host: the core's ``PluginHost``.
    Returns:
        Nothing.
    Raises:
        A duplicate mode name raises ``ConfigError``. Any exception fails ``LashCore``
        construction with ``PluginHookError``.
    Added in 0.1.
    """


@_hookspec
def lash_register_record_types(registry: RecordTypeRegistrar, host: PluginHost) -> None:
    """Declare the record classes a plugin persists (its state snapshots).

    Called by: ``LashCore``, once, after ``lash_register_modes``. Sync.
    Args:
        registry: ``registry.add(cls)`` takes a frozen attrs class with a unique ``KIND:
            ClassVar[str]`` wire tag. Records are (de)serialised by the kernel's one converter.
        host: the core's ``PluginHost``.
    Returns:
        Nothing.
    Raises:
        A KIND already taken raises ``ConfigError`` naming both plugins. Any exception fails
        ``LashCore`` construction with ``PluginHookError``.
    Added in 0.1.
    """


@_hookspec
def lash_register_usage_sources(registry: UsageSourceRegistrar, host: PluginHost) -> None:
    """Declare usage-ledger source labels a plugin spends tokens under (e.g. ``compaction``).

    Called by: ``LashCore``, once, after ``lash_register_record_types``. Sync.
    Args:
        registry: ``registry.add(name, description)``; ``name`` is the ledger's ``source``.
            ``lash plugins`` lists each plugin's sources, and a turn whose ledger has a source
            no plugin declared logs a warning (once per core and source).
        host: the core's ``PluginHost``.
    Returns:
        Nothing.
    Raises:
        A source already declared by another plugin raises ``ConfigError``. Any exception
        fails ``LashCore`` construction with ``PluginHookError``.
    Added in 0.1.
    """


@_hookspec
def lash_register_stores(registry: StoreRegistrar) -> None:
    """Declare store URL schemes (``postgresql``) and how to open a store for each.

    Called by: ``LashCore`` when its ``store`` argument is a URL string, and the ``lash`` CLI
    when ``--db`` / ``LASH_DB`` / ``store`` in ``lash.toml`` is one; once per plugin, right
    after plugins load (no core exists yet, so there is no ``host``). Sync; do not connect here.
    Args:
        registry: ``registry.add(scheme, opener, description=...)``: ``scheme`` is the URL's
            scheme, lower case (``postgresql`` for ``postgresql://…``); ``opener(url)`` gets the
            whole URL string and returns an open ``Store``, raising a ``StoreError`` (or
            ``ConfigError`` for a malformed URL) when it cannot. The kernel's built-in
            ``lash.stores`` declares ``sqlite`` (``sqlite:///abs/path.db``) and ``memory``.
    Returns:
        Nothing.
    Raises:
        A scheme another plugin declared raises ``ConfigError`` naming both plugins. Any
        exception fails opening the store with ``PluginHookError``. A URL whose scheme no
        plugin declared is a ``ConfigError`` naming the schemes known.
    Added in 0.3.
    """


@_hookspec
def lash_register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``lash`` command line (e.g. ``lash trace view``).

    Called by: the ``lash`` CLI, once per process, before parsing arguments (so also for
    ``lash --help``: import heavy libraries inside your commands, not at module level). Sync.
    Args:
        cli: the root ``click.Group``; call ``cli.add_command(...)``.
    Returns:
        Nothing.
    Raises:
        A failing implementation is reported as a warning naming the plugin; the CLI goes on.
    Added in 0.1.
    """


# ------------------------------------------------------------------------------------- prompt
@_hookspec
def lash_prompt_contributions(
    session_id: str, tool_names: frozenset[str], host: PluginHost
) -> list[PromptContribution] | None:
    """Contribute sections to the system prompt of the next model call.

    Called by: the driver, once per turn, before the first model call. Sync; do no I/O.
    Args:
        session_id: the session the turn belongs to.
        tool_names: names of the tools in this turn's catalog (a contribution may gate on one).
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        A list of ``PromptContribution`` (slot, title, priority, content, optional tool gate),
        or None for nothing. Sections are ordered by slot, then priority (higher first), then
        plugin call order.
    Raises:
        Any exception stops the turn as ``Stopped(plugin_abort)`` with the plugin named.
    Added in 0.1.
    """


# ------------------------------------------------------------------------------------- turn
@_hookspec
def lash_before_turn(session_id: str, turn_id: str, user_input: Message, host: PluginHost) -> AbortTurn | None:
    """A turn is about to call the model for the first time.

    Called by: the driver, once per turn, after the user input was admitted durably and
    before the prompt is built. May be async.
    Args:
        session_id: the session.
        turn_id: the new turn's id.
        user_input: the user's message.
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        None to go on, or ``AbortTurn(reason)`` to stop the turn before any model call as
        ``Stopped(plugin_abort)``; later implementations then do not run. The input is
        committed with that outcome.
    Raises:
        Any exception stops the turn the same way, naming the plugin.
    Added in 0.1.
    """


@_hookspec
def lash_checkpoint(
    session_id: str,
    turn_id: str,
    phase: Literal["after_tools", "before_finish"],
    messages: tuple[Message, ...],
    host: PluginHost,
) -> CheckpointDirective | None:
    """A point where a plugin may steer the turn: inject messages, open a frame, or abort.

    Called by: the driver, after each batch of tool results (``after_tools``, before the next
    model call) and when the model gave its final answer (``before_finish``, before the turn
    completes). May be async.
    Args:
        session_id: the session.
        turn_id: the turn.
        phase: which point (see above).
        messages: the messages this turn produced so far, user input first.
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        None to go on; ``InjectMessages(messages)`` to append messages and (at
        ``before_finish``) call the model again, within ``max_turns``; ``AbortTurn(reason)``
        to stop as ``Stopped(plugin_abort)``; ``OpenFrame(reason, seed)`` (added in 0.2) to
        open a new agent frame here: the turn's messages so far stay in the old frame, the
        seed and everything after it form the new one (committed with the turn; at most one
        frame per turn). Every implementation runs; injections are concatenated in call
        order; an abort wins over everything; the first ``OpenFrame`` wins.
    Raises:
        Any exception stops the turn as ``Stopped(plugin_abort)`` naming the plugin.
    Added in 0.1.
    """


@_hookspec
def lash_before_tool_call(
    session_id: str, turn_id: str, call: ToolCallPart, host: PluginHost
) -> ToolCallPart | BlockToolCall | None:
    """A tool call is about to run (policy, argument rewriting, approval).

    Called by: the driver, once per tool call, before argument validation; calls of one batch
    run concurrently, so implementations may run concurrently for different calls.
    May be async (e.g. await a human approval; the turn's cancellation applies).
    Args:
        session_id: the session.
        turn_id: the turn.
        call: the call as the model wrote it (or as rewritten by an earlier implementation).
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        None to run the call unchanged; a ``ToolCallPart`` with the same ``id`` to run that
        instead (later implementations see it); ``BlockToolCall(reason)`` to skip the tool: the
        model gets ``reason`` as an error result and later implementations do not run.
    Raises:
        Any exception becomes an error result for that call naming the plugin; the turn goes on.
    Added in 0.1.
    """


@_hookspec
def lash_after_tool_call(
    session_id: str, turn_id: str, call: ToolCallPart, result: ToolResultPart, duration_s: float, host: PluginHost
) -> ToolResultPart | None:
    """A tool call finished (redaction, truncation, result post-processing).

    Called by: the driver, once per tool call (including blocked and failed ones), before the
    result is fed back to the model. May be async.
    Args:
        session_id: the session.
        turn_id: the turn.
        call: the call that ran.
        result: its result (or as rewritten by an earlier implementation).
        duration_s: wall time of the tool itself, seconds.
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        None to keep ``result``; a ``ToolResultPart`` with the same ``call_id`` to replace it.
    Raises:
        Any exception replaces the result with an error result naming the plugin.
    Added in 0.1.
    """


@_hookspec
def lash_after_turn(
    session_id: str, turn_id: str, outcome: Outcome, messages: tuple[Message, ...], usage: UsageLedger, host: PluginHost
) -> None:
    """The turn is over and about to be committed.

    Called by: the driver, once per turn, right before the commit (so also for cancelled and
    failed turns). Sync; do no I/O (use ``lash_turn_committed`` for that).
    Args:
        session_id: the session.
        turn_id: the turn.
        outcome: ``Finished`` or ``Stopped``.
        messages: everything the turn will commit, user input first.
        usage: the turn's usage ledger (per source, model; tokens).
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        Nothing.
    Raises:
        Exceptions are logged with the plugin named; the commit goes ahead.
    Added in 0.1.
    """


# ------------------------------------------------------------------------------------- context
@_hookspec
def lash_transform_context(
    session_id: str, turn_id: str, messages: tuple[Message, ...], host: PluginHost
) -> tuple[Message, ...] | None:
    """Rewrite the messages sent to the model for one call (never what is committed).

    Called by: the driver, before every model call, after ``lash_plan_compaction``. Sync; do
    no I/O. Implementations chain: each sees the previous one's output.
    Args:
        session_id: the session.
        turn_id: the turn.
        messages: the prompt view, oldest first (system prompt excluded).
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        A new message tuple, or None to leave the view as is. Keep every tool call answered.
    Raises:
        Any exception stops the turn as ``Stopped(plugin_abort)`` naming the plugin.
    Added in 0.1.
    """


@_hookspec(firstresult=True)
def lash_plan_compaction(
    session_id: str, messages: tuple[Message, ...], context_window: int | None, input_tokens: int, host: PluginHost
) -> CompactionPlan | None:
    """Decide whether to compact the prompt view before a model call.

    Called by: the driver, before every model call. Sync; do no I/O. Stops at the first
    implementation that returns a plan.
    Args:
        session_id: the session.
        messages: the prompt view, oldest first.
        context_window: the model's context window in tokens, or None if unknown.
        input_tokens: input tokens of the previous model call in this session (0 before the
            first), a cheap estimate of the view's size.
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        A ``CompactionPlan(keep_last, summary)`` applied to this call's view (the kernel keeps
        tool calls and their results together), or None to defer to later plugins.
    Raises:
        Any exception stops the turn as ``Stopped(plugin_abort)`` naming the plugin.
    Added in 0.1.
    """


@_hookspec
def lash_compact(
    session_id: str,
    turn_id: str,
    messages: tuple[Message, ...],
    context_window: int | None,
    input_tokens: int,
    overflow: bool,
    host: PluginHost,
) -> OpenFrame | None:
    """Decide whether to open a new agent frame before a model call (durable compaction).

    Called by: the driver, before every model call of a turn that has not opened a frame
    yet, before ``lash_plan_compaction`` and ``lash_transform_context``. May be async, and
    may do I/O: call ``host.complete(..., source="compaction")`` to summarise (its usage is
    committed with the turn). Stops at the first implementation that returns a frame.
    Args:
        session_id: the session.
        turn_id: the turn.
        messages: the current frame's messages as the model would get them, oldest first.
        context_window: the model's context window in tokens, or None if unknown.
        input_tokens: input tokens of the previous model call in this session (0 before the
            first).
        overflow: True when the provider just refused ``messages`` for exceeding the model's
            context (``ProviderHTTPError.context_overflow``): a frame returned now is opened
            and the call retried once with it. False before every call.
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        ``OpenFrame(reason, seed)`` to switch: this and every later call of the turn sends the
        seed and what follows it, and the switch is committed with the turn (the turn's
        messages so far stay in the old frame). None to go on.
    Raises:
        Any exception stops the turn as ``Stopped(plugin_abort)`` naming the plugin.
    Added in 0.2.
    """


@_hookspec
def lash_compact_session(session_id: str, instructions: str | None, host: PluginHost) -> bool | None:
    """Compact a session now, between turns (``Session.compact()``, ``lash sessions compact``).

    Called by: ``Session.compact``, once per call, never during a turn of the session.
    May be async. Stops at the first implementation that returns non-None. The implementation opens
    the new frame itself, with ``host.commit_maintenance(session_id, frame=...,
    expected_revision=...)`` (summarise with ``host.complete(..., session_id=session_id)``).
    Args:
        session_id: the session.
        instructions: what the person asked the summary to focus on, or None.
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        True when a frame was opened, False when there was nothing to compact, None to leave
        it to another plugin.
    Raises:
        Any exception reaches the caller as ``PluginHookError`` naming the plugin.
    Added in 0.2.
    """


# ------------------------------------------------------------------------------------- lifecycle
@_hookspec
def lash_session_opened(session_id: str, info: SessionInfo, created: bool, host: PluginHost) -> None:
    """A session handle was opened.

    Called by: ``LashCore.session()``, once per call. Sync.
    Args:
        session_id: the session.
        info: its head (mode, revision, timestamps).
        created: True if the session did not exist before.
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        Nothing.
    Raises:
        Exceptions are logged with the plugin named; the session opens anyway.
    Added in 0.1.
    """


@_hookspec
def lash_turn_committed(session_id: str, turn_id: str, outcome: Outcome, head_revision: int, host: PluginHost) -> None:
    """A turn was committed durably.

    Called by: the driver, once per turn, right after the store commit succeeded. May be async.
    Args:
        session_id: the session.
        turn_id: the committed turn.
        outcome: how the turn ended (``Finished`` or ``Stopped``).
        head_revision: the session's head revision after the commit.
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        Nothing.
    Raises:
        Exceptions are logged with the plugin named; the commit stands.
    Added in 0.1.
    """


@_hookspec
def lash_session_closed(session_id: str, host: PluginHost) -> None:
    """A session handle was closed (``Session.close()``, or ``LashCore.close()`` for open ones).

    Called by: ``Session.close``, once per handle. Sync.
    Args:
        session_id: the session.
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        Nothing.
    Raises:
        Exceptions are logged with the plugin named; closing goes on.
    Added in 0.1.
    """


# ------------------------------------------------------------------------------------- observation
@_hookspec
def lash_on_activity(activity: TurnActivity, host: PluginHost) -> None:
    """Observe one semantic event of a turn (never the per-token deltas: those are too hot).

    Called by: the driver, for every activity except ``assistant_prose_delta`` and
    ``reasoning_delta``, in stream order. Sync and on the hot path: do no I/O here; buffer and
    flush in ``lash_turn_committed``.
    Args:
        activity: the ``TurnActivity`` (id, correlation_id, seq, event).
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        Nothing.
    Raises:
        Exceptions are reported as an ``error`` activity and otherwise ignored; an observer
        never breaks a turn.
    Added in 0.1.
    """


@_hookspec
def lash_on_trace_record(record: TraceRecord, host: PluginHost) -> None:
    """Observe one trace record (turn and call spans, prompt hash, usage, errors).

    Called by: the kernel, for every record (see ``lash_kernel.trace``), in order; built only
    when some plugin implements this hook. Sync and on the hot path: buffer, do not block.
    Args:
        record: the ``TraceRecord``.
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        Nothing.
    Raises:
        Exceptions are logged with the plugin named and otherwise ignored.
    Added in 0.1.
    """


# ------------------------------------------------------------------------------------- state
@_hookspec
def lash_snapshot_state(session_id: str, turn_id: str, host: PluginHost) -> object | None:
    """Return this plugin's per-session state, to be committed atomically with the turn.

    Called by: the driver, once per turn, right before the commit. Sync; do no I/O.
    Args:
        session_id: the session.
        turn_id: the turn about to be committed.
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        An instance of a record type the plugin registered with
        ``lash_register_record_types``, or None when the state did not change. The kernel
        stores it with the turn, in the same transaction, keyed by plugin name: so a plugin
        implementing this hook (or ``lash_restore_state``) needs a name that survives a
        restart (its entry-point name, ``lash_plugin_name``, or ``add_plugin(name=...)``);
        ``LashCore`` refuses one named after its ``id()`` with ``ConfigError``.
    Raises:
        Any exception (or an unregistered type) is logged naming the plugin; the turn commits
        without that plugin's snapshot.
    Added in 0.1.
    """


@_hookspec
def lash_restore_state(session_id: str, state: object, host: PluginHost) -> None:
    """Receive this plugin's last committed snapshot for a session.

    Called by: the session, once, when it loads its history (before its first turn in this
    process), and only for plugins that have a snapshot. Sync.
    Args:
        session_id: the session.
        state: the record this plugin last returned from ``lash_snapshot_state``.
        host: the core's ``PluginHost`` (see the rules above).
    Returns:
        Nothing.
    Raises:
        Exceptions are logged naming the plugin; the session loads anyway.
    Added in 0.1.
    """
