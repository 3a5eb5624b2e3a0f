"""A warm session costs no reload: the core keeps the decoded state of the sessions it served,
validated against the store's head by the lease's fencing number or one read of the head."""

from __future__ import annotations

import pytest

from lash_kernel import LashCore, Message, OpenFrame, SqliteStore
from lash_kernel.runtime._cache import StateCache
from lash_kernel.runtime._state import SessionState
from lash_kernel.store.base import SessionInfo
from lash_kernel.testing import ScriptedModel

pytestmark = pytest.mark.anyio


class CountingStore(SqliteStore):
    """Counts the active-path loads (the O(history) read)."""

    loads = 0

    def load_frame_messages(self, session_id):
        CountingStore.loads += 1
        return super().load_frame_messages(session_id)


def core_on(db, model, **kw) -> LashCore:
    return LashCore(model_client=model, model="m", store=CountingStore(db), entry_points=False, **kw)


async def test_a_new_handle_on_a_warm_session_does_not_reload(tmp_path):
    CountingStore.loads = 0
    model = ScriptedModel()
    for i in range(5):
        model.enqueue_text(f"a{i}")
    with core_on(tmp_path / "lash.db", model) as core:
        for i in range(5):
            with core.session("s") as session:  # the stateless request-handler pattern
                await session.turn(f"q{i}").run()
        assert CountingStore.loads == 1  # only the first handle read the history
        assert [m.text for m in model.requests[-1].messages][-3:] == ["q3", "a3", "q4"]
        assert [m.text for m in core.session("s").history()][-2:] == ["q4", "a4"]
        assert CountingStore.loads == 1


async def test_another_process_commit_invalidates_the_cached_state(tmp_path):
    CountingStore.loads = 0
    db = tmp_path / "lash.db"
    model = ScriptedModel().enqueue_text("a1").enqueue_text("a3")
    with core_on(db, model) as core:
        with core.session("s") as session:
            await session.turn("q1").run()
        other_model = ScriptedModel().enqueue_text("a2")
        with LashCore(model_client=other_model, model="m", store=SqliteStore(db), entry_points=False) as other:
            await other.session("s").turn("q2").run()  # another writer moves the head
        with core.session("s") as session:
            await session.turn("q3").run()
        assert [m.text for m in model.requests[-1].messages] == ["q1", "a1", "q2", "a2", "q3"]
        assert CountingStore.loads == 2  # reloaded once, because the head had moved


async def test_a_maintenance_commit_advances_the_cached_state_without_a_reload(tmp_path):
    CountingStore.loads = 0
    model = ScriptedModel().enqueue_text("a1").enqueue_text("a2")
    with core_on(tmp_path / "lash.db", model) as core:
        with core.session("s") as session:
            await session.turn("q1").run()
        usage_only = await core.plugin_host.commit_maintenance("s", key="k")  # no frame: history unchanged
        frame = OpenFrame(reason="compaction", seed=(Message.user("summary"),))
        revision = await core.plugin_host.commit_maintenance("s", frame=frame, expected_revision=usage_only)
        with core.session("s") as session:
            assert [m.text for m in session.history()] == ["summary"]
            assert session.info.head_revision == revision
            await session.turn("q2").run()
        assert [m.text for m in model.requests[-1].messages] == ["summary", "q2"]
        assert CountingStore.loads == 1


def _state(sid: str, size: int) -> SessionState:
    info = SessionInfo(session_id=sid, head_revision=0, leaf_id=None, frame_id="f0", mode="standard",
                       created_at=0.0, updated_at=0.0)
    return SessionState(info=info, history=(), approx_bytes=size)


def test_the_cache_is_an_lru_bounded_by_count_and_bytes():
    cache = StateCache(max_sessions=2, max_bytes=1000)
    cache.put("a", _state("a", 100), 1)
    cache.put("b", _state("b", 100), 1)
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", _state("c", 100), 1)
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 2
    cache.put("d", _state("d", 950), 1)  # over the byte bound: everything older goes
    assert len(cache) == 1 and cache.get("d") is not None
    assert StateCache(max_sessions=0).put("x", _state("x", 1), 1) is None
