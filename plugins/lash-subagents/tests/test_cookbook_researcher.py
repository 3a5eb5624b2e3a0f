"""The cookbook recipe ``cookbook/researcher.py`` runs: two explore children in parallel, typed
findings merged into a typed report, children's usage in the researcher's report."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest
from subagents_testing import RoutedModel

from lash_kernel import SessionSpec

RECIPE = Path(__file__).resolve().parents[3] / "cookbook" / "researcher.py"

pytestmark = pytest.mark.anyio


def load_recipe():
    spec = importlib.util.spec_from_file_location("researcher_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_researcher_fans_out_two_explore_children_and_merges_typed_results(tmp_path):
    recipe = load_recipe()
    model = RoutedModel()
    tasks = ("what are lighthouses for", "what drives tides")
    model.reply(None, calls=tuple(
        ("spawn_agent", {"task": t, "capability": "explore", "output_schema": recipe.FINDINGS}) for t in tasks
    ))
    model.reply(tasks[0], calls=(("search_notes", {"query": "lighthouse"}),))
    lighthouses = {"topic": "lighthouses", "facts": ["mark hazards"], "confidence": 0.9}
    model.reply(tasks[0], calls=(("final_result", lighthouses),))
    model.reply(tasks[1], calls=(("search_notes", {"query": "tides"}),))
    tides = {"topic": "tides", "facts": ["moon and sun"], "confidence": 0.8}
    model.reply(tasks[1], calls=(("final_result", tides),))
    report = {"answer": "Lights and tides.", "facts": ["mark hazards", "moon and sun"], "children": 2}
    model.reply(None, calls=(("final_result", report),))
    out = io.StringIO()
    with recipe.build_core(model, "scripted", str(tmp_path / "research.db")) as core:
        result = await recipe.research(core, "r", "How do lighthouses and tides relate?", out=out)
        assert result.value == report
        findings = [json.loads(r.output) for c, r in result.tool_calls if c.name == "spawn_agent"]
        assert [f["topic"] for f in findings] == ["lighthouses", "tides"]
        for key in tasks:  # explore children: the read-only tool only (no save_note, no spawn_agent)
            assert {t.name for t in model.routes[key].requests[0].tools} == {"search_notes", "final_result"}
        children = core.session("r").children()
        assert [SessionSpec.from_json(c.spec).plugin_options["subagents"]["capability"] for c in children] == [
            "explore", "explore",
        ]
        assert core.session("r").usage_report().total == model.spent
        assert "spawning: what drives tides" in out.getvalue() and "calling search_notes" in out.getvalue()
