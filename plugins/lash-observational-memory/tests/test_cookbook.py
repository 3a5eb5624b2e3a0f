"""The cookbook recipe ``cookbook/observational_memory.py`` runs as documented."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest
from om_helpers import words

from lash_kernel.testing import ScriptedModel

RECIPE = Path(__file__).resolve().parents[3] / "cookbook" / "observational_memory.py"


@pytest.mark.anyio
@pytest.mark.skipif(not RECIPE.exists(), reason="the cookbook is not beside this package")
async def test_recipe_observes_in_the_background_and_shows_the_block(tmp_path):
    spec = importlib.util.spec_from_file_location("om_recipe", RECIPE)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    main, cheap = ScriptedModel(model="big"), ScriptedModel(model="cheap")
    for i in range(4):
        cheap.enqueue_text(f"- [high] 2025-09-01: the user shared source {i}")
    out = io.StringIO()
    thresholds = {"buffer_tokens": 200, "observe_at_tokens": 500, "block_at_tokens": 900}
    with recipe.build_core(main, "big", str(tmp_path / "agent.db"), cheap_client=cheap, **thresholds) as core:
        for k in range(3):
            main.enqueue_text(f"noted {k}")
            await recipe.chat(core, "s", f"source {k}: " + words(100, f"s{k}"), out=out)
    text = out.getvalue()
    assert "agent: noted 2" in text
    assert "the user shared source 0" in text and "<observations>" in text
    assert "'observer': " in text and main.requests[-1].system.startswith("You are a meticulous")
    assert main.requests[-1].messages[0].text.startswith("<observations>")
