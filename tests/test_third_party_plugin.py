"""A plugin written by someone else, as a separate package, found through its entry point.

``cookbook/lash-audit`` (written from docs/plugins.md) and a deliberately broken package are
built with pip into a temporary directory; every check runs in a subprocess whose
``PYTHONPATH`` holds that directory, so the packages are installed for it exactly as
``pip install`` would install them, and this test process stays untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("third-party")
    broken = work / "lash-broken"
    (broken / "src" / "lash_broken").mkdir(parents=True)
    (broken / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"
        [project]
        name = "lash-broken"
        version = "9.9.9"
        [project.entry-points."lash.plugins"]
        broken = "lash_broken.plugin"
        [tool.hatch.build.targets.wheel]
        packages = ["src/lash_broken"]
    """))
    (broken / "src" / "lash_broken" / "__init__.py").write_text("")
    (broken / "src" / "lash_broken" / "plugin.py").write_text("import lash_no_such_dependency\n")
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT / "cookbook" / "lash-audit"), str(broken)],
        check=True, capture_output=True, timeout=300,
    )
    return target


def run(site: Path, cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200", **(env or {})}
    full_env.pop("LASH_CONFIG", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


def lash(site: Path, cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    return run(site, cwd, "-m", "lash_kernel", *args, **kw)


def test_lash_plugins_shows_the_installed_plugin_and_names_the_broken_one(site, tmp_path):
    out = lash(site, tmp_path, "plugins", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    audit = {p["name"]: p for p in data["plugins"]}["audit"]
    assert audit["distribution"] == "lash-audit" and audit["version"] == "0.1.0"
    assert audit["origin"] == "entry point"
    assert set(audit["hooks"]) == {"lash_register_config", "lash_configure", "lash_register_tools", "lash_prompt_contributions"}
    assert audit["usage_sources"] == []
    standard = {p["name"]: p for p in data["plugins"]}["lash.standard"]
    assert standard["origin"] == "builtin" and standard["usage_sources"] == ["child", "turn"]
    assert "audit.auditor" not in {p["name"] for p in data["plugins"]}  # listed once, under its plugin
    (added,) = audit["objects"]
    assert added["name"] == "audit.auditor" and added["call_order"] < audit["call_order"]
    (failed,) = data["failed"]
    assert failed["name"] == "broken" and failed["distribution"] == "lash-broken"
    assert "plugin 'broken' (lash_broken.plugin) from distribution 'lash-broken' failed to load" in failed["error"]
    assert "lash_no_such_dependency" in failed["error"]
    assert "Traceback" not in out.stderr


def test_strict_mode_turns_the_broken_plugin_into_an_error(site, tmp_path):
    (tmp_path / "lash.toml").write_text("[plugins]\nstrict = true\n")
    out = lash(site, tmp_path, "plugins")
    assert out.returncode == 1
    assert "plugin 'broken'" in out.stderr and "lash-broken" in out.stderr
    assert "Traceback" not in out.stderr


def test_lash_toml_disables_plugins_and_validates_their_tables(site, tmp_path):
    (tmp_path / "lash.toml").write_text('[plugins]\ndisabled = ["broken"]\n[plugins.audit]\ndeny = ["shell"]\n')
    out = lash(site, tmp_path, "plugins", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["failed"] == []

    (tmp_path / "lash.toml").write_text('[plugins]\ndisabled = ["broken"]\n[plugins.audit]\ndenny = ["shell"]\n')
    out = lash(site, tmp_path, "tools", "list")
    assert out.returncode == 2
    assert f"error: {tmp_path / 'lash.toml'}: [plugins.audit] unknown key 'denny'" in out.stderr

    (tmp_path / "lash.toml").write_text('[plugins]\nenabled = []\n')
    out = lash(site, tmp_path, "plugins", "--json")
    listed = json.loads(out.stdout)
    assert [(p["name"], p["origin"]) for p in listed["plugins"]] == [("lash.commands", "builtin"), ("lash.standard", "builtin")]
    assert listed["failed"] == []


def test_tools_list_and_call_reach_the_plugin_tool(site, tmp_path):
    out = lash(site, tmp_path, "tools", "list", "--json")
    assert out.returncode == 0, out.stderr
    (row,) = [r for r in json.loads(out.stdout) if r["provider"] == "audit"]  # other installed plugins may add tools
    assert row["name"] == "utc_now"
    assert row["input_schema"]["type"] == "object"
    assert row["description"].startswith("The current date and time in UTC")

    out = lash(site, tmp_path, "tools", "call", "utc_now")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("+00:00") and out.stdout.startswith("20")

    out = lash(site, tmp_path, "tools", "call", "nope")
    assert out.returncode == 2 and "unknown tool 'nope'; available tools: " in out.stderr and "utc_now" in out.stderr
    out = lash(site, tmp_path, "tools", "call", "utc_now", "--args", "{bad")
    assert out.returncode == 2 and "--args is not valid JSON" in out.stderr
    out = lash(site, tmp_path, "tools", "call", "utc_now", "--args", '{"x": 1}')
    assert out.returncode == 1 and "invalid arguments for tool 'utc_now'" in out.stdout


def test_hooks_fire_in_a_real_turn(site, tmp_path):
    log = tmp_path / "audit.jsonl"
    script = textwrap.dedent(f"""
        import anyio, json
        from lash_audit import AUDITOR
        from lash_kernel import LashCore
        from lash_kernel.testing import ScriptedModel

        model = ScriptedModel()
        model.enqueue_tool_calls(("utc_now", {{}}), ("shell", {{"cmd": "ls"}}))
        model.enqueue_text("done")
        core = LashCore(model_client=model, model="m", block=["broken"],
                        plugin_config={{"audit": {{"log": {str(log)!r}, "deny": ["shell"]}}}})
        result = core.run_sync("what time is it?")
        (_, now), (_, shell) = result.tool_calls
        print(json.dumps({{"system": model.requests[0].system, "now_error": now.is_error,
                          "shell": shell.output, "outcome": result.outcome.KIND,
                          "written": core.plugin_host.stash[AUDITOR].written}}))
        core.close()
    """)
    out = run(site, tmp_path, "-c", script)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["system"] == "## Time\n\nCall utc_now when you need the date."
    assert data["now_error"] is False
    assert data["shell"] == "tool 'shell' is not allowed here"
    assert data["written"] == 2  # the per-core Auditor, reached through the core's plugin stash
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted((line["tool"], line["is_error"]) for line in lines) == [("shell", True), ("utc_now", False)]  # concurrent calls
