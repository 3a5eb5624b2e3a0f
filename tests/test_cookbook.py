"""Every cookbook recipe runs (with a scripted model standing in for the provider)."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

from lash_kernel.outcomes import Finished
from lash_kernel.testing import ScriptedModel

COOKBOOK = Path(__file__).resolve().parents[1] / "cookbook"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, COOKBOOK / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.anyio
async def test_tool_agent_recipe_streams_runs_tools_and_resumes(tmp_path):
    recipe = load("tool_agent")
    model = ScriptedModel()
    model.enqueue_tool_calls(("multiply", {"a": 17, "b": 23}), ("weather", {"city": "Oslo"}))
    model.enqueue_text("17 x 23 = 391; Oslo is clear.")
    model.enqueue_text("You asked about Oslo.")
    db = str(tmp_path / "agent.db")
    out = io.StringIO()
    with recipe.build_core(model, "scripted", db) as core:
        result = await recipe.ask(core, "s", "17*23 and Oslo weather?", out=out)
    assert result.outcome == Finished(text="17 x 23 = 391; Oslo is clear.")
    assert "[multiply -> 391.0]" in out.getvalue()
    assert '"sky": "clear"' in out.getvalue()
    with recipe.build_core(model, "scripted", db) as core:  # a new core over the same file
        await recipe.ask(core, "s", "What did I ask?", out=io.StringIO())
    assert [m.role for m in model.requests[-1].messages] == ["user", "assistant", "tool", "assistant", "user"]
