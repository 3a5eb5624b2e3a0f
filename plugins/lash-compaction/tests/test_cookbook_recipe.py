"""The cookbook recipe ``cookbook/compaction_agent.py`` runs (ScriptedModel for the provider)."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

from lash_kernel import Finished
from lash_kernel.testing import ScriptedModel

RECIPE = Path(__file__).resolve().parents[3] / "cookbook" / "compaction_agent.py"

pytestmark = pytest.mark.anyio


def _load():
    spec = importlib.util.spec_from_file_location("compaction_agent", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_recipe_compacts_prints_it_and_describes_the_frames(tmp_path):
    if not RECIPE.exists():  # pragma: no cover - the package installed outside the repository
        pytest.skip("cookbook/ not present")
    recipe = _load()
    model, summarizer = ScriptedModel(), ScriptedModel().enqueue_text("## Goal\nOslo facts")
    for i in range(8):
        model.enqueue_text(f"answer {i} " + "about Oslo " * 150)
    db = str(tmp_path / "agent.db")
    out = io.StringIO()
    with recipe.build_core(model, "scripted", db, window=2_000, summarizer=summarizer) as core:
        for i in range(5):
            result = await recipe.ask(core, "s", f"question {i}", out=out)
            assert isinstance(result.outcome, Finished)
        assert "[summarised into frame" in out.getvalue()
        text = recipe.describe(core.session("s"))
    assert "1 compaction frame(s)" in text and "Oslo facts" in text
    assert "tokens spent on summaries: 0" in text  # the scripted summarizer reported no usage
    with recipe.build_core(model, "scripted", db, window=2_000, summarizer=summarizer) as core:
        summarizer.enqueue_text("## Goal\nmore Oslo facts")
        assert await core.session("s").compact("keep the city") is True
        assert "keep the city" in summarizer.requests[-1].messages[0].text
