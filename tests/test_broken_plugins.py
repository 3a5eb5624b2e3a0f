"""A broken plugin never breaks the host (issue 15, item 2).

An installed third-party plugin with a misspelled hook (a dist-info and a ``lash.plugins``
entry point on ``PYTHONPATH``, as ``pip install`` would leave it) is skipped with one report
naming it and its distribution, printed once per command; every ``lash`` command still works;
strict mode raises. A plugin returning bad values from a hook stops the turn with
``Stopped(plugin_abort)`` naming it, with nothing left pending.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lash_kernel import LashCore
from lash_kernel.errors import ConfigError, PluginLoadError
from lash_kernel.hookspecs import hookimpl
from lash_kernel.prompt import SLOTS, PromptContribution
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import ScriptedModel

TYPO = '''
from lash_kernel.plugin import hookimpl, tool


@tool
def shout(text: str) -> str:
    """Upper-case text."""
    return text.upper()


@hookimpl
def lash_regster_tools(registry):
    registry.add(shout)
'''


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``lash-typo`` 0.3 installed on a site directory (also put on this process's sys.path)."""
    site = tmp_path / "site"
    info = site / "lash_typo-0.3.dist-info"
    info.mkdir(parents=True)
    (site / "lash_typo.py").write_text(TYPO)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lash-typo\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[lash.plugins]\ntypo = lash_typo\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "lash_typo", raising=False)
    return site


def lash(site: Path, cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("LASH_CONFIG", "LASH_PLUGINS", "LASH_STRICT_PLUGINS")}
    full_env.update({"PYTHONPATH": str(site), "COLUMNS": "200", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "lash_kernel", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=120,
    )


REPORT = "plugin 'typo' (lash_typo) from distribution 'lash-typo' failed to load"


def test_the_core_skips_a_plugin_with_a_misspelled_hook_and_names_it(site):
    with LashCore(model_client=ScriptedModel(), model="m") as core:
        (failed,) = [e for e in core.load_report.failed if e.plugin == "typo"]
        assert failed.distribution == "lash-typo"
        assert REPORT in str(failed)
        assert "unknown hook 'lash_regster_tools' (did you mean lash_register_tools" in str(failed)
        assert "typo" not in [p.name for p in core.plugins()]
    with pytest.raises(PluginLoadError, match="lash-typo"):
        LashCore(model_client=ScriptedModel(), model="m", strict=True)


def test_every_command_still_works_and_reports_the_plugin_once(site, tmp_path):
    out = lash(site, tmp_path, "plugins", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    (failed,) = [f for f in data["failed"] if f["name"] == "typo"]
    assert failed["distribution"] == "lash-typo" and "lash_regster_tools" in failed["error"]
    assert out.stderr.count("lash_regster_tools") == 1, out.stderr

    out = lash(site, tmp_path, "plugins")
    assert out.returncode == 0, out.stderr
    assert "lash-typo" in out.stderr

    out = lash(site, tmp_path, "tools", "list", "--json")
    assert out.returncode == 0, out.stderr
    assert "shout" not in [t["name"] for t in json.loads(out.stdout)]
    assert out.stderr.count(REPORT) == 1, out.stderr

    # lash run reaches the model (a dead port: a connection error, not a plugin error)
    out = lash(site, tmp_path, "run", "--base-url", "http://127.0.0.1:9/v1", "--db", str(tmp_path / "x.db"), "hi")
    assert out.stderr.count(REPORT) == 1, out.stderr
    assert "connect" in out.stderr.lower(), out.stderr

    out = lash(site, tmp_path, "plugins", env={"LASH_STRICT_PLUGINS": "1"})
    assert out.returncode == 1
    assert REPORT in out.stderr and "Traceback" not in out.stderr


def test_prompt_contribution_validates_its_slot():
    with pytest.raises(ConfigError, match="slot must be one of identity, instructions"):
        PromptContribution(slot="bogus", content="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="priority must be an integer"):
        PromptContribution(content="x", priority="high")  # type: ignore[arg-type]
    assert [PromptContribution(slot=s, content="x").slot for s in SLOTS] == list(SLOTS)
    assert all(f"``{s}``" in (PromptContribution.__doc__ or "") for s in SLOTS)


@pytest.mark.anyio
@pytest.mark.parametrize("bad", ["slot", "not a list", "wrong item"])
async def test_a_bad_value_from_a_hook_stops_the_turn_naming_the_plugin(tmp_path, bad):
    class Sloppy:
        lash_plugin_name = "sloppy"

        @hookimpl
        def lash_prompt_contributions(self):
            if bad == "slot":
                return [PromptContribution(slot="bogus", content="x")]  # type: ignore[arg-type]
            if bad == "not a list":
                return PromptContribution(content="x")
            return ["just text"]

    model = ScriptedModel()
    store = SqliteStore(tmp_path / "s.db")
    with LashCore(model_client=model, model="m", store=store, plugins=[Sloppy()], entry_points=False) as core:
        session = core.session()
        result = await session.turn("hi").run()
        assert result.outcome.KIND == "stopped" and result.outcome.reason == "plugin_abort"
        assert "plugin 'sloppy' failed in lash_prompt_contributions" in result.outcome.detail
        assert model.requests == []
        assert store.pending_inputs(session.id) == []
