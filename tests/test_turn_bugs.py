"""Regression tests for turn-level bugs of issue 9 (each failed before its fix).

ScriptedModel and real SQLite files; no network, no timing asserts.
"""

from __future__ import annotations

import anyio
import pytest

from lash_kernel.activity import ErrorReported, TurnFinished
from lash_kernel.errors import CommitConflictError, SessionBusyError, StoreError, ToolError
from lash_kernel.hookspecs import hookimpl
from lash_kernel.messages import Message, TextPart
from lash_kernel.outcomes import Finished, Stopped
from lash_kernel.runtime.core import LashCore
from lash_kernel.runtime.driver import RetryPolicy
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import ScriptedModel
from lash_kernel.text import REPLACEMENT
from lash_kernel.tools import Tool, tool

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.0, jitter=0.0)


def make_core(model, tmp_path, **kw) -> LashCore:
    kw.setdefault("store", SqliteStore(tmp_path / "lash.db"))
    kw.setdefault("retry", FAST_RETRY)
    return LashCore(model_client=model, model="scripted", entry_points=False, **kw)


# ------------------------------------------------------------------------------- commit races


def _two_writers(tmp_path):
    """Two cores on one SQLite file, each with a handle on session ``s`` loaded at revision 0."""
    model_a, model_b = ScriptedModel(), ScriptedModel()
    core_a = make_core(model_a, tmp_path)
    core_b = make_core(model_b, tmp_path, store=SqliteStore(tmp_path / "lash.db"))
    a, b = core_a.session("s"), core_b.session("s")
    a.history(), b.history()  # both handles hold head revision 0 in memory
    return (core_a, model_a, a), (core_b, model_b, b)


async def test_a_stale_handle_continues_from_the_other_writers_turn(tmp_path):
    # 0.2: a turn claims the session's lease and re-reads the head first, so a handle that
    # another writer moved on never loses a commit race: it reloads and continues.
    (core_a, model_a, a), (core_b, model_b, b) = _two_writers(tmp_path)
    model_a.enqueue_text("a first")
    model_b.enqueue_text("b second")
    assert (await a.turn("from a").run()).outcome == Finished(text="a first")
    result = await b.turn("from b").run()
    assert result.head_revision == 2
    assert [m.text for m in model_b.requests[0].messages] == ["from a", "a first", "from b"]
    assert b.pending_inputs() == []
    core_a.close(), core_b.close()


async def test_streaming_on_a_busy_session_raises_bare_session_busy_error(tmp_path):
    (core_a, _, _), (core_b, model_b, b) = _two_writers(tmp_path)
    lease = core_a.store.claim_lease("s", owner="elsewhere:1", token="t", ttl_s=60, now=core_a.services.rt.clock())
    kinds = []
    with pytest.raises(SessionBusyError) as info:
        async for activity in b.turn("from b").stream():
            kinds.append(activity.kind)
    assert type(info.value) is SessionBusyError and kinds == []
    assert model_b.requests == [] and b.pending_inputs() == []
    core_a.store.release_lease(lease)
    core_a.close(), core_b.close()


async def test_a_store_error_in_the_commit_reaches_the_host_bare(tmp_path):
    class FailingCommit(SqliteStore):
        def commit_turn(self, commit):
            raise StoreError("disk full")

    model = ScriptedModel().enqueue_text("lost")
    core = make_core(model, tmp_path, store=FailingCommit(tmp_path / "lash.db"))
    session = core.session("s")
    with pytest.raises(StoreError, match="disk full") as info:
        await session.turn("hi").run()
    assert type(info.value) is StoreError
    assert [p.message.text for p in session.pending_inputs()] == ["hi"]
    core.close()


async def test_rerunning_a_committed_turn_id_is_refused_before_any_model_call(tmp_path):
    model = ScriptedModel().enqueue_text("first").enqueue_text("never used")
    core = make_core(model, tmp_path)
    session = core.session("s")
    await session.turn("one", turn_id="t-1").run()
    assert len(model.requests) == 1
    with pytest.raises(CommitConflictError, match="'t-1' is already committed"):
        await session.turn("one again", turn_id="t-1").run()
    assert len(model.requests) == 1  # no model call
    assert session.pending_inputs() == []  # and nothing admitted
    assert len(session.turns()) == 1
    # a fresh handle (other process) is refused the same way
    other = core.session("s")
    with pytest.raises(CommitConflictError):
        await other.turn("again", turn_id="t-1").run()
    assert len(model.requests) == 1
    core.close()


# ------------------------------------------------------------------------------- input


async def test_non_user_input_commits_stopped_invalid_input_and_leaves_nothing_pending(tmp_path):
    model = ScriptedModel()
    core = make_core(model, tmp_path)
    session = core.session("s")
    bad = Message(role="assistant", parts=(TextPart(text="I am not the user"),))
    result = await session.turn(bad).run()
    assert isinstance(result.outcome, Stopped) and result.outcome.reason == "invalid_input"
    assert "assistant" in result.outcome.detail
    assert model.requests == []
    assert session.pending_inputs() == []
    assert [t.outcome for t in session.turns()] == [result.outcome]
    assert isinstance(result.activities[-1].event, TurnFinished)
    # the session goes on
    model.enqueue_text("fine")
    assert (await session.turn("hello").run()).outcome == Finished(text="fine")
    assert [m.text for m in model.requests[0].messages] == ["hello"]
    core.close()


async def test_lone_surrogate_in_the_prompt_is_replaced_and_committed(tmp_path):
    model = ScriptedModel().enqueue_text("ok")
    core = make_core(model, tmp_path)
    session = core.session("s")
    result = await session.turn("file caf\udcff.txt").run()
    assert result.outcome == Finished(text="ok")
    assert session.pending_inputs() == []
    assert model.requests[0].messages[0].text == f"file caf{REPLACEMENT}.txt"
    core.close()
    with SqliteStore(tmp_path / "lash.db") as store:
        assert store.load_active_path("s")[0].payload.text == f"file caf{REPLACEMENT}.txt"


async def test_lone_surrogate_in_a_session_id_is_replaced_and_the_turn_commits(tmp_path):
    model = ScriptedModel().enqueue_text("ok")
    core = make_core(model, tmp_path)
    session = core.session("user-\udcff")  # e.g. an id taken from a non-UTF-8 file name
    assert session.id == f"user-{REPLACEMENT}"
    assert (await session.turn("hi").run()).outcome == Finished(text="ok")
    core.close()
    with SqliteStore(tmp_path / "lash.db") as store:
        assert [info.session_id for info in store.list_sessions()] == [f"user-{REPLACEMENT}"]


@pytest.mark.parametrize("output", ["bad\udcff.txt", "\ud83d"])
async def test_lone_surrogate_in_tool_output_is_replaced_and_committed(tmp_path, output):
    @tool
    def listdir() -> str:
        """List a folder."""
        return output

    model = ScriptedModel().enqueue_tool_calls(("listdir", {})).enqueue_text("done")
    core = make_core(model, tmp_path, tools=[listdir])
    session = core.session("s")
    result = await session.turn("ls").run()
    assert result.outcome == Finished(text="done")
    assert session.pending_inputs() == []
    (_, tool_result), = result.tool_calls
    assert REPLACEMENT in tool_result.output
    tool_result.output.encode("utf-8")
    core.close()
    with SqliteStore(tmp_path / "lash.db") as store:
        assert REPLACEMENT in store.load_active_path("s")[2].payload.parts[0].output


async def test_lone_surrogate_from_the_provider_is_made_valid_at_the_commit(tmp_path):
    model = ScriptedModel().enqueue_text("smile \ud83d")
    core = make_core(model, tmp_path)
    session = core.session("s")
    result = await session.turn("hi").run()
    assert result.outcome == Finished(text=f"smile {REPLACEMENT}")
    assert session.pending_inputs() == []
    assert session.history()[-1].text == f"smile {REPLACEMENT}"
    core.close()


# ------------------------------------------------------------------------------- cancel


async def test_cancel_before_run_keeps_the_reason_and_the_final_event(tmp_path):
    model = ScriptedModel().enqueue_text("never")
    core = make_core(model, tmp_path)
    session = core.session("s")
    turn = session.turn("hi")
    turn.cancel("changed my mind")
    activities = [a async for a in turn.stream()]
    assert isinstance(activities[-1].event, TurnFinished)
    assert activities[-1].event.outcome == Stopped(reason="cancelled", detail="changed my mind")
    assert turn.result.outcome == Stopped(reason="cancelled", detail="changed my mind")
    assert model.requests == []
    assert session.pending_inputs() == []
    core.close()


async def test_cancel_before_run_with_a_slow_tool_provider_and_before_turn_hook(tmp_path):
    class Provider:
        name = "slowprov"

        async def list_tools(self):
            await anyio.sleep(0)
            return []

        def close(self):
            pass

    class Plugin:
        lash_plugin_name = "p"

        @hookimpl
        def lash_register_tools(self, registry):
            registry.add_provider(Provider())

        @hookimpl
        async def lash_before_turn(self):
            await anyio.sleep(0)

    model = ScriptedModel().enqueue_text("never")
    core = make_core(model, tmp_path, plugins=[Plugin()])
    turn = core.session("s").turn("hi")
    turn.cancel("stop now")
    result = await turn.run()
    assert result.outcome == Stopped(reason="cancelled", detail="stop now")
    assert isinstance(result.activities[-1].event, TurnFinished)
    assert model.requests == []
    core.close()


async def test_cancel_interrupts_a_hanging_tool_provider_during_preparation(tmp_path):
    listing = anyio.Event()

    class Hangs:
        name = "hangs"

        async def list_tools(self):
            listing.set()
            await anyio.sleep(60)
            return []  # pragma: no cover

        def close(self):
            pass

    class Plugin:
        lash_plugin_name = "p"

        @hookimpl
        def lash_register_tools(self, registry):
            registry.add_provider(Hangs())

    model = ScriptedModel()
    core = make_core(model, tmp_path, plugins=[Plugin()])
    session = core.session("s")
    turn = session.turn("hi")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def cancel_while_listing() -> None:
                await listing.wait()
                turn.cancel("provider too slow")

            tg.start_soon(cancel_while_listing)
            result = await turn.run()
    assert result.outcome == Stopped(reason="cancelled", detail="provider too slow")
    assert isinstance(result.activities[-1].event, TurnFinished)
    assert model.requests == [] and session.pending_inputs() == []
    core.close()


# ------------------------------------------------------------------------------- tools


async def test_retryable_tool_error_is_retried_with_the_tools_policy(tmp_path):
    calls = []

    @tool(retries=2)
    def flaky(key: str) -> str:
        """Fails once, retryably."""
        calls.append(key)
        if len(calls) == 1:
            raise ToolError("busy, try again", retryable=True)
        return f"value of {key}"

    model = ScriptedModel().enqueue_tool_calls(("flaky", {"key": "k"})).enqueue_text("done")
    core = make_core(model, tmp_path, tools=[flaky])
    result = await core.session().turn("go").run()
    assert result.outcome == Finished(text="done")
    assert calls == ["k", "k"]
    (_, tool_result), = result.tool_calls
    assert tool_result.output == "value of k" and not tool_result.is_error
    core.close()


async def test_retryable_tool_error_without_a_policy_is_not_retried(tmp_path):
    calls = []

    @tool
    def flaky() -> str:
        """Always busy."""
        calls.append(1)
        raise ToolError("busy", retryable=True)

    model = ScriptedModel().enqueue_tool_calls(("flaky", {})).enqueue_text("done")
    core = make_core(model, tmp_path, tools=[flaky])
    result = await core.session().turn("go").run()
    assert calls == [1]
    (_, tool_result), = result.tool_calls
    assert tool_result.is_error and tool_result.output == "busy"
    core.close()


async def test_failing_tool_providers_report_in_registration_order(tmp_path):
    class Broken:
        def __init__(self, name):
            self.name = name

        async def list_tools(self):
            raise RuntimeError(f"{self.name} is down")

        def close(self):
            pass

    class Plugin:
        lash_plugin_name = "p"

        @hookimpl
        def lash_register_tools(self, registry):
            registry.add_provider(Broken("first"))
            registry.add_provider(Broken("second"))

    core = make_core(ScriptedModel().enqueue_text("ok"), tmp_path, plugins=[Plugin()])
    result = await core.session().turn("hi").run()
    notices = [a.event.message for a in result.activities if isinstance(a.event, ErrorReported)]
    assert len(notices) == 2
    assert "first is down" in notices[0] and "second is down" in notices[1]
    core.close()


# ------------------------------------------------------------------------------- stream idle


class StallsOnce(ScriptedModel):
    """The first attempt keeps the stream open and sends nothing; later ones answer."""

    def __init__(self, *, after_first_delta: bool = False) -> None:
        super().__init__()
        self.attempts = 0
        self.after_first_delta = after_first_delta

    async def stream(self, request):
        self.attempts += 1
        if self.attempts == 1:
            if self.after_first_delta:
                from lash_kernel.model import TextDelta

                yield TextDelta(text="partial ")
            await anyio.sleep(30)
        async for item in super().stream(request):
            yield item


@pytest.mark.parametrize("after_first_delta", [False, True])
async def test_stream_idle_timeout_is_retried_like_a_stream_fault(tmp_path, after_first_delta):
    model = StallsOnce(after_first_delta=after_first_delta)
    model.enqueue_text("recovered")
    core = make_core(model, tmp_path, stream_idle_timeout_s=0.05, request_timeout_s=None)
    with anyio.fail_after(20):
        result = await core.session().turn("hi").run()
    assert result.outcome == Finished(text="recovered")
    assert model.attempts == 2
    reason = next(a.event.reason for a in result.activities if a.kind == "retry_status")
    assert "no data for 0.05 s" in reason
    assert ("model_attempt_reset" in [a.kind for a in result.activities]) is after_first_delta
    core.close()


async def test_stream_idle_timeout_exhausted_stops_with_provider_error(tmp_path):
    class AlwaysStalls(ScriptedModel):
        async def stream(self, request):
            self.requests.append(request)
            await anyio.sleep(30)
            yield  # pragma: no cover

    model = AlwaysStalls()
    core = make_core(model, tmp_path, stream_idle_timeout_s=0.05)
    with anyio.fail_after(20):
        result = await core.session().turn("hi").run()
    assert result.outcome.reason == "provider_error" and "no data for 0.05 s" in result.outcome.detail
    assert len(model.requests) == FAST_RETRY.max_attempts
    core.close()


async def test_keep_alives_hold_the_stream_idle_timeout_off(tmp_path):
    from lash_kernel.activity import RetryStatus
    from lash_kernel.model import STREAM_ALIVE

    class ThinksBehindPings(ScriptedModel):
        """Sends only keep-alives for twice the idle timeout, then answers."""

        async def stream(self, request):
            for _ in range(20):
                await anyio.sleep(0.05)
                yield STREAM_ALIVE
            async for item in super().stream(request):
                yield item

    model = ThinksBehindPings().enqueue_text("thought it through")
    core = make_core(model, tmp_path, stream_idle_timeout_s=0.5)
    with anyio.fail_after(20):
        result = await core.session().turn("hi").run()
    assert result.outcome == Finished(text="thought it through")
    assert len(model.requests) == 1
    assert not any(isinstance(a.event, RetryStatus) for a in result.activities)
    core.close()


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_stream_idle_timeout_is_validated(bad):
    from lash_kernel.errors import ConfigError

    with pytest.raises(ConfigError, match="stream_idle_timeout_s"):
        LashCore(model_client=ScriptedModel(), model="m", entry_points=False, stream_idle_timeout_s=bad)


def test_tool_retries_option_is_validated():
    from lash_kernel.errors import ConfigError

    with pytest.raises(ConfigError, match="retries"):
        Tool(name="x", fn=lambda: None, retries=-1)


# ------------------------------------------------------------------------------- traces


async def test_a_failing_observer_with_a_tracer_gives_an_error_trace_record(tmp_path):
    """The ``error`` trace record has a ``kind`` attribute of its own (it used to collide with
    the trace helper's ``kind`` parameter and crash the turn)."""
    records = []

    class Noisy:
        lash_plugin_name = "noisy"

        @hookimpl
        def lash_on_activity(self, activity):
            if activity.kind == "model_request_started":
                raise ValueError("observer bug")

        @hookimpl
        def lash_on_trace_record(self, record):
            records.append(record)

    core = make_core(ScriptedModel().enqueue_text("fine"), tmp_path, plugins=[Noisy()])
    result = await core.session().turn("hi").run()
    assert result.outcome == Finished(text="fine")
    errors = [r for r in records if r.kind == "error"]
    assert len(errors) == 1
    assert errors[0].attributes["kind"] == "plugin" and "observer bug" in errors[0].attributes["message"]
    core.close()
