"""The shipped pytest plugin's fixtures work as documented (they come from the pytest11 entry point)."""

from __future__ import annotations

import pytest

from lash_kernel import hookimpl
from lash_kernel.outcomes import Finished
from lash_kernel.store.sqlite import SqliteStore


def test_fixtures_build_a_working_core(scripted_model, lash_core_factory, tmp_store):
    assert isinstance(tmp_store, SqliteStore)
    scripted_model.enqueue_text("hi there")
    core = lash_core_factory(store=tmp_store)
    result = core.run_sync("hello", session_id="s")
    assert result.outcome == Finished(text="hi there")
    assert tmp_store.list_turns("s")[0].outcome == result.outcome
    assert scripted_model.requests[0].model == "scripted"


@pytest.mark.anyio
async def test_hook_recorder_fixture_records_every_core_the_factory_builds(
    lash_core_factory, scripted_model, hook_recorder
):

    class Gate:
        lash_plugin_name = "gate"

        @hookimpl
        def lash_before_turn(self, turn_id):
            return None

    scripted_model.enqueue_text("one").enqueue_text("two")
    first, second = lash_core_factory(plugins=[Gate()]), lash_core_factory(plugins=[Gate()])
    await first.session("a").turn("x", turn_id="t1").run()
    await second.session("b").turn("y", turn_id="t2").run()
    calls = hook_recorder.calls("lash_before_turn")
    assert [(c.plugin, c["turn_id"]) for c in calls] == [("gate", "t1"), ("gate", "t2")]
    assert hook_recorder.pop("lash_before_turn")["host"] is first.plugin_host
