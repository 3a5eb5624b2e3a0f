"""``tree_report``: equal to ``usage_report()`` when every turn committed (nothing counted
twice); adds a child whose usage the parent's ledger cannot hold."""

from __future__ import annotations

import pytest
from subagents_testing import RoutedModel, make_core

from lash_kernel import SessionNotFoundError, SessionSpec
from lash_subagents import tree_report

pytestmark = pytest.mark.anyio


async def test_after_committed_turns_the_tree_report_is_the_usage_report(tmp_path):
    model = RoutedModel()
    model.reply(None, calls=(("spawn_agent", {"task": "a", "capability": "peer"}),))
    model.reply("a", calls=(("spawn_agent", {"task": "b"}),))
    model.reply("b", "b done")
    model.reply("a", "a done")
    model.reply(None, "done")
    with make_core(tmp_path, model) as core:
        session = core.session("root")
        await session.turn("go").run()
        assert tree_report(core.store, "root") == session.usage_report()
        assert session.usage_report().total == model.spent


async def test_a_child_opened_outside_a_turn_is_added(tmp_path):
    model = RoutedModel()
    model.reply(None, "root turn")
    model.reply("side job", "done")
    with make_core(tmp_path, model) as core:
        root = core.session("root")
        await root.turn("hello").run()
        child = core.plugin_host.open_child_session("root", SessionSpec(), source="subagent")
        await child.turn("side job").run()
        assert root.usage_report().total == model.spent - child.usage_report().total
        assert tree_report(core.store, "root").total == model.spent
        with pytest.raises(SessionNotFoundError):
            tree_report(core.store, "nope")
