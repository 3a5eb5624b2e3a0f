"""Two small kernel pieces lash-subagents stands on: a tool call sees its turn's catalog
(``ToolContext.tools``), and a spec allowing no tools at all survives being stored."""

from __future__ import annotations

import pytest

from lash_kernel import LashCore, SessionSpec, SqliteStore
from lash_kernel.plugin import ToolContext, tool
from lash_kernel.testing import ScriptedModel

pytestmark = pytest.mark.anyio


@tool(read_only=True)
def peek() -> str:
    """Read something."""
    return "x"


@tool
def poke() -> str:
    """Change something."""
    return "y"


async def test_a_tool_call_sees_its_turns_catalog_after_the_sessions_lists(tmp_path):
    seen: list[tuple[str, bool]] = []

    @tool
    def inspect_catalog(ctx: ToolContext) -> str:
        """List the catalog."""
        seen.extend((t.name, t.read_only) for t in ctx.tools)
        return "ok"

    model = ScriptedModel().enqueue_tool_calls(("inspect_catalog", {})).enqueue_text("done")
    store = SqliteStore(tmp_path / "lash.db")
    tools = [peek, poke, inspect_catalog]
    with LashCore(model_client=model, model="m", store=store, entry_points=False, tools=tools) as core:
        await core.session("s", spec=SessionSpec(tools_deny=("poke",))).turn("go").run()
    assert seen == [("peek", True), ("inspect_catalog", False)]
    assert ToolContext(session_id="s", turn_id="t", call_id="c", tool_name="x").tools == ()


async def test_an_empty_tools_allow_is_stored_and_means_no_tools(tmp_path):
    spec = SessionSpec(tools_allow=())
    assert SessionSpec.from_json(spec.to_json()) == spec
    model = ScriptedModel().enqueue_text("done")
    with LashCore(
        model_client=model, model="m", store=SqliteStore(tmp_path / "lash.db"), entry_points=False, tools=[peek]
    ) as core:
        core.session("s", spec=spec)
        await core.session("s").turn("go").run()  # a new handle reads the stored spec
    assert model.requests[0].tools == ()
