"""The shipped pytest plugin's fixtures work as documented (they come from the pytest11 entry point)."""

from __future__ import annotations

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
