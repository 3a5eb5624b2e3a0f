"""The typed mode contract: a plugin mode with its own effect type runs with no driver edit.

A toy mode registers its machine factory and a performer for its own effect through
``lash_register_modes``; the driver performs the effect through the performer and feeds the
returned events back. ScriptedModel and real SQLite; no network.
"""

from __future__ import annotations

from typing import ClassVar

import anyio
import attrs
import pytest

from lash_kernel.activity import ErrorReported, ToolCallProgress, TurnFinished
from lash_kernel.errors import MachineStateError
from lash_kernel.hookspecs import hookimpl
from lash_kernel.messages import Message, TextPart
from lash_kernel.outcomes import Finished, Stopped
from lash_kernel.plugin import EffectContext, MachineConfig, MachineProtocol, TurnState
from lash_kernel.runtime.core import LashCore
from lash_kernel.runtime.effects import EmitActivity, FinishTurn
from lash_kernel.runtime.events import CancelRequested, TurnFailed
from lash_kernel.runtime.machine import TurnMachine
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import ScriptedModel
from lash_kernel.tools import tool
from lash_kernel.usage import UsageLedger

pytestmark = pytest.mark.anyio


# ------------------------------------------------------------------------------- the toy mode


@attrs.frozen(kw_only=True)
class Compute:
    """The toy mode's own effect: evaluate ``a * b`` somewhere else."""

    a: int
    b: int


@attrs.frozen(kw_only=True)
class Computed:
    """The toy mode's own event: the product arrived."""

    KIND: ClassVar[str] = "toy.computed"
    value: int


@attrs.frozen(kw_only=True)
class Noted:
    """Another toy event, fed before ``Computed`` when a performer returns two."""

    KIND: ClassVar[str] = "toy.noted"
    note: str


@attrs.frozen(kw_only=True)
class Unknown:
    """An effect the toy mode forgot to register a performer for."""


class ToyMachine:
    """Multiplies two numbers from the user's text ("6 7") through its own ``Compute`` effect."""

    def __init__(self, config: MachineConfig, history: tuple[Message, ...], effect: type = Compute) -> None:
        self.config = config
        self.history = history
        self.effect = effect
        self.state = TurnState.IDLE
        self.notes: list[str] = []
        self._input: Message | None = None

    @property
    def usage(self) -> UsageLedger:
        return UsageLedger()

    def start(self, user_input: Message, *, now: float) -> list:
        self._input = user_input
        self.state = TurnState.AWAITING_MODEL  # "live": waiting for its effect
        a, b = (int(x) for x in user_input.text.split())
        announce = EmitActivity(event=ErrorReported(kind="toy", message="computing"), correlation_id="toy")
        return [announce, Compute(a=a, b=b) if self.effect is Compute else self.effect()]

    def feed(self, event: object) -> list:
        if self.state is not TurnState.AWAITING_MODEL:
            raise MachineStateError(f"{type(event).__name__} after the end")
        if isinstance(event, Noted):
            self.notes.append(event.note)
            return []
        if isinstance(event, Computed):
            answer = Message(role="assistant", parts=(TextPart(text=str(event.value)),))
            return self._finish(Finished(text=str(event.value)), answer)
        if isinstance(event, CancelRequested):
            return self._finish(Stopped(reason="cancelled", detail=event.reason))
        if isinstance(event, TurnFailed):
            return self._finish(Stopped(reason=event.reason, detail=event.message))  # type: ignore[arg-type]
        raise MachineStateError(f"unexpected {type(event).__name__}")

    def _finish(self, outcome, *messages: Message) -> list:
        self.state = TurnState.DONE
        assert self._input is not None
        return [FinishTurn(outcome=outcome, messages=(self._input, *messages), usage=self.usage)]


def toy_plugin(perform, *, effect: type = Compute, machines: list | None = None) -> object:
    """A plugin registering mode ``toy`` with ``perform`` as the performer of ``Compute``."""

    def factory(config: MachineConfig, history: tuple[Message, ...]) -> ToyMachine:
        machine = ToyMachine(config, history, effect)
        if machines is not None:
            machines.append(machine)
        return machine

    class Toy:
        lash_plugin_name = "toy"

        @hookimpl
        def lash_register_modes(self, registry):
            registry.add("toy", factory, effects={Compute: perform}, description="multiplies")

    return Toy()


def make_core(tmp_path, *plugins, **kw) -> LashCore:
    kw.setdefault("store", SqliteStore(tmp_path / "lash.db"))
    return LashCore(model_client=ScriptedModel(), model="scripted", entry_points=False, plugins=plugins, **kw)


# ------------------------------------------------------------------------------- tests


async def test_toy_mode_effect_is_performed_by_its_performer_and_the_turn_finishes(tmp_path):
    seen: list[tuple[str, str, tuple[str, ...]]] = []

    async def perform(effect: Compute, ctx: EffectContext) -> Computed:
        seen.append((ctx.session_id, ctx.turn_id, ctx.tools.names()))
        ctx.emit(ToolCallProgress(call_id="toy", name="multiply", progress=1, total=1, message="halfway"), "toy")
        await anyio.sleep(0)
        return Computed(value=effect.a * effect.b)

    @tool
    def helper() -> str:
        """A tool the performer can see."""
        return ""

    machines: list[ToyMachine] = []
    core = make_core(tmp_path, toy_plugin(perform, machines=machines), tools=[helper])
    session = core.session("s", mode="toy")
    turn = session.turn("6 7", turn_id="t1")
    kinds = [a.kind async for a in turn.stream()]
    result = turn.result

    assert result.outcome == Finished(text="42")
    assert seen == [("s", "t1", ("helper",))]
    assert kinds == ["error", "tool_call_progress", "turn_finished"]
    assert isinstance(result.activities[-1].event, TurnFinished)
    assert core.model_client.requests == []  # the toy mode never called the model
    assert machines[0].config.tools[0].name == "helper"  # the catalog was settled before start
    assert [m.text for m in session.history()] == ["6 7", "42"]
    assert session.pending_inputs() == []
    core.close()
    with SqliteStore(tmp_path / "lash.db") as store:  # committed like any turn
        assert [t.outcome for t in store.list_turns("s")] == [Finished(text="42")]


async def test_a_performer_may_return_several_events(tmp_path):
    async def perform(effect: Compute, ctx: EffectContext) -> list[object]:
        return [Noted(note="first"), Computed(value=effect.a + effect.b)]

    machines: list[ToyMachine] = []
    core = make_core(tmp_path, toy_plugin(perform, machines=machines))
    result = await core.session("s", mode="toy").turn("2 3").run()
    assert result.outcome == Finished(text="5")
    assert machines[0].notes == ["first"]
    core.close()


async def test_an_effect_without_a_performer_stops_the_turn_with_runtime_error(tmp_path):
    async def perform(effect, ctx):  # pragma: no cover - never called
        raise AssertionError

    core = make_core(tmp_path, toy_plugin(perform, effect=Unknown))
    session = core.session("s", mode="toy")
    result = await session.turn("2 3").run()
    assert isinstance(result.outcome, Stopped) and result.outcome.reason == "runtime_error"
    assert "Unknown" in result.outcome.detail and "'toy'" in result.outcome.detail
    assert session.pending_inputs() == []
    core.close()


async def test_a_failing_performer_stops_the_turn_with_runtime_error(tmp_path):
    async def perform(effect, ctx):
        raise RuntimeError("calculator on fire")

    core = make_core(tmp_path, toy_plugin(perform))
    session = core.session("s", mode="toy")
    result = await session.turn("2 3").run()
    assert result.outcome.reason == "runtime_error"
    assert "Compute" in result.outcome.detail and "calculator on fire" in result.outcome.detail
    assert session.pending_inputs() == []
    core.close()


async def test_cancel_interrupts_a_slow_performer(tmp_path):
    started = anyio.Event()

    async def perform(effect, ctx):
        started.set()
        await anyio.sleep(60)
        return Computed(value=0)  # pragma: no cover

    core = make_core(tmp_path, toy_plugin(perform))
    turn = core.session("s", mode="toy").turn("2 3")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def cancel_when_started() -> None:
                await started.wait()
                turn.cancel("enough")

            tg.start_soon(cancel_when_started)
            result = await turn.run()
    assert result.outcome == Stopped(reason="cancelled", detail="enough")
    core.close()


async def test_the_standard_machine_receives_a_settled_config_and_is_never_written(tmp_path):
    """Sans-IO both ways: the system prompt, tools and checkpoints are in the config the
    factory receives; the driver only calls start/feed (the machine's config is that object)."""
    built: list[tuple[MachineConfig, TurnMachine]] = []

    def factory(config: MachineConfig, history: tuple[Message, ...]) -> MachineProtocol:
        machine = TurnMachine(config=config, history=history, repair=False)
        built.append((config, machine))
        return machine

    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    class Plugin:
        lash_plugin_name = "watch"

        @hookimpl
        def lash_register_modes(self, registry):
            registry.add("watched", factory)

        @hookimpl
        def lash_prompt_contributions(self):
            from lash_kernel.prompt import PromptContribution

            return [PromptContribution(content="Be brief.")]

        @hookimpl
        def lash_checkpoint(self):
            return None

    model = ScriptedModel().enqueue_tool_calls(("echo", {"text": "x"})).enqueue_text("done")
    core = LashCore(
        model_client=model, model="scripted", entry_points=False, plugins=[Plugin()], tools=[echo],
        prompt="You are terse.", store=SqliteStore(tmp_path / "lash.db"),
    )
    result = await core.session("s", mode="watched").turn("go").run()
    assert result.outcome == Finished(text="done")
    (config, machine), = built
    assert config.system == "You are terse.\n\nBe brief."
    assert [t.name for t in config.tools] == ["echo"] and config.checkpoints
    assert machine.config is config
    assert all(r.system == config.system and r.tools == config.tools for r in model.requests)
    core.close()
