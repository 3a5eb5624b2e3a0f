"""The plugin end to end on a real SQLite file, loaded through its installed entry point,
with ScriptedModels as the main model, the observer and the reflector."""

from __future__ import annotations

import itertools

import pytest
from om_helpers import GatedModel, Models, words

from lash_kernel import LashCore, SqliteStore
from lash_kernel.plugin import TokenUsage
from lash_kernel.testing import ScriptedModel
from lash_observational_memory import Activation, Observation, Reflection, observation_block

pytestmark = pytest.mark.anyio

OBS_USAGE = TokenUsage(input_tokens=300, output_tokens=20)


async def chat(core: LashCore, models: Models, n: int, size: int = 100, *, drain: bool = True, sid: str = "s"):
    """``n`` turns of a ``size``-word question and a short answer; returns their results."""
    session = core.session(sid)
    out = []
    for _ in range(n):
        k = len(models.main.requests)
        models.main.enqueue_text(f"answer {k}")
        out.append(await session.turn(f"q{k} " + words(size, f"q{k}")).run())
        if drain:
            await core.drain()
    return out


def first_texts(model: ScriptedModel) -> list[str]:
    return [r.messages[0].text for r in model.requests]


async def test_the_plugin_loads_from_its_entry_point(tmp_path, models):
    with models.core(tmp_path / "lash.db") as core:
        assert "observational_memory" in {p.name for p in core.plugins()}
        assert {"observer", "reflector"} <= set(core.plugin_host.usage_sources)


async def test_background_observer_buffers_without_delaying_the_turn(tmp_path):
    models = Models(observer=GatedModel(model="observer-model"))
    models.observer.enqueue_text("- [high] 2025-01-01: the user asked q0 and q1", usage=OBS_USAGE)
    with models.core(tmp_path / "lash.db") as core:
        session = core.session("s")
        await chat(core, models, 1, drain=False)  # ~210 tokens unobserved: the observer starts
        await models.observer.started.wait()
        # the observer is blocked on its gate, yet the next turn runs and commits
        [second] = await chat(core, models, 1, size=10, drain=False)
        assert second.text == "answer 1"
        assert session.nodes(Observation.KIND) == ()
        models.observer.gate.set()
        await core.drain()
        [obs] = session.nodes(Observation.KIND)
        assert (obs.start, obs.end) == (0, 2) and not obs.synchronous
        assert obs.lines[0].priority == "high" and obs.lines[0].text == "the user asked q0 and q1"
        assert obs.message_tokens > 200
        assert session.usage_report().by_source["observer"] == OBS_USAGE
        # buffered, not activated: the next call still sees every message, no block
        await chat(core, models, 1, size=10)
        assert len(models.main.requests[-1].messages) == 5
        assert models.main.requests[-1].messages[0].text.startswith("q0 ")


async def test_activation_at_the_threshold_replaces_covered_messages_by_the_block(tmp_path, models):
    for i in range(6):
        models.observer.enqueue_text(f"- [medium] 2025-01-0{i + 1}: fact {i}")
    with models.core(tmp_path / "lash.db") as core:
        await chat(core, models, 2)  # 2 x ~210 tokens: buffered at 2 turns, under observe_at (500)
        assert "<observations>" not in models.main.requests[-1].messages[0].text
        await chat(core, models, 1)  # ~630 unobserved: activation before this call
        request = models.main.requests[-1]
        block = request.messages[0].text
        session = core.session("s")
        [act, *_] = session.nodes(Activation.KIND)
        obs = session.nodes(Observation.KIND)
        assert [(o.start, o.end) for o in obs[:2]] == [(0, 2), (2, 4)]  # buffered after turns 1 and 2
        assert act.through == 4  # every buffered observation is activated
        assert "fact 0" in block and "fact 1" in block and block.startswith("<observations>")
        assert request.messages[1].text.startswith("q2 ")  # the covered messages are gone
        assert len(request.messages) == 1 + 5 - act.through
        assert observation_block(core.plugin_host, "s") == block
        # the stored history is never changed
        assert len(session.history()) == 6 and session.history()[0].text.startswith("q0 ")


async def test_prompt_prefix_is_byte_identical_between_activations(tmp_path, models):
    for i in range(30):
        models.observer.enqueue_text(f"- [low] 2025-02-{i + 1:02d}: note {i}")
    with models.core(tmp_path / "lash.db") as core:
        await chat(core, models, 14)
        session = core.session("s")
        activations = session.nodes(Activation.KIND)
    firsts = [t for t in first_texts(models.main) if t.startswith("<observations>")]
    assert len(activations) >= 2
    changes = sum(1 for a, b in itertools.pairwise(firsts) if a != b)
    assert changes == len(activations) - 1  # the block changed exactly at each activation
    assert len(set(firsts)) == len(activations)


async def test_synchronous_fallback_observes_before_the_model_call(tmp_path, models):
    models.observer.enqueue_text("- [high] 2025-03-01: the user introduced the project", usage=OBS_USAGE)
    with models.core(tmp_path / "lash.db") as core:
        await chat(core, models, 1, size=20)  # ~50 tokens: no background run
        models.main.enqueue_text("big answer")
        result = await core.session("s").turn("big " + words(500, "b")).run()  # ~1000 > block_at
        kinds = [a.event.KIND for a in result.activities]
        assert "observation_started" in kinds and "observation_finished" in kinds
        # keyed by the model the observer was asked for (the session's, "main"), whatever served it
        assert result.children_usage[("observer", "main")] == OBS_USAGE
        request = models.main.requests[-1]
        assert request.messages[0].text.startswith("<observations>")
        assert "the user introduced the project" in request.messages[0].text
        assert request.messages[1].text.startswith("big ")  # the newest message stays
        session = core.session("s")
        [obs] = session.nodes(Observation.KIND)
        assert obs.synchronous and (obs.start, obs.end) == (0, 2)
        assert session.nodes(Activation.KIND)[-1].through == 2
        assert session.usage_report().by_source["observer"] == OBS_USAGE


async def test_reflection_condenses_the_block(tmp_path, models):
    for i in range(40):
        models.observer.enqueue_text("\n".join(f"- [medium] 2025-04-01: detail {i}.{j} " + "z" * 40 for j in range(4)))
    models.reflector.enqueue_text("- [high] 2025-04-02: everything so far, condensed", usage=OBS_USAGE)
    with models.core(tmp_path / "lash.db", reflect_at_tokens=200, reflect_block_at_tokens=100_000) as core:
        session = core.session("s")
        kinds = []
        for _ in range(20):
            [result] = await chat(core, models, 1)
            kinds += [a.event.KIND for a in result.activities]
            if session.nodes(Reflection.KIND) and "## Reflections" in models.main.requests[-1].messages[0].text:
                break
        [refl] = session.nodes(Reflection.KIND)
        assert not refl.synchronous and refl.replaced_tokens >= 100  # buffered from half the threshold
        block = models.main.requests[-1].messages[0].text
        assert "everything so far, condensed" in block
        assert "detail 0.0" not in block  # replaced by the reflection
        assert session.nodes(Activation.KIND)[-1].reflection_through == refl.through
        assert session.usage_report().by_source["reflector"] == OBS_USAGE
        [result] = await chat(core, models, 1)
        kinds += [a.event.KIND for a in result.activities]
        # background work is reported at the start of the next turn
        assert "observation_finished" in kinds and "reflection_finished" in kinds
        finished = next(a.event for a in result.activities if a.event.KIND == "observation_finished")
        assert finished.message_tokens > 200 and finished.observation_tokens > 0 and not finished.synchronous


async def test_synchronous_reflection_past_reflect_block_at(tmp_path, models):
    models.observer.enqueue_text("\n".join(f"- [low] 2025-05-01: item {j} " + "y" * 80 for j in range(10)))
    models.reflector.enqueue_text("- [high] 2025-05-02: condensed now")
    with models.core(tmp_path / "lash.db", reflect_at_tokens=100, reflect_block_at_tokens=150) as core:
        await chat(core, models, 1, size=20)
        models.main.enqueue_text("ok")
        result = await core.session("s").turn("big " + words(500, "b")).run()
        assert "reflection_finished" in [a.event.KIND for a in result.activities]
        [refl] = core.session("s").nodes(Reflection.KIND)
        assert refl.synchronous
        block = models.main.requests[-1].messages[0].text
        assert "condensed now" in block and "item 3" not in block


async def test_both_with_compaction_is_a_config_error_unless_it_is_the_fallback(tmp_path, models):
    class Compaction:
        lash_plugin_name = "compaction"

    from lash_kernel.plugin import ConfigError

    with pytest.raises(ConfigError) as caught:
        LashCore(
            model_client=models.main, model="m", store=SqliteStore(tmp_path / "a.db"), allow=["observational_memory"],
            plugins=[Compaction()],
        )
    assert "'observational_memory'" in str(caught.value) and "'compaction'" in str(caught.value)
    with LashCore(
        model_client=models.main, model="m", store=SqliteStore(tmp_path / "b.db"), allow=["observational_memory"],
        plugins=[Compaction()], plugin_config={"observational_memory": {"fallback": "compaction"}},
    ) as core:
        assert {"compaction", "observational_memory"} <= {p.name for p in core.plugins()}
