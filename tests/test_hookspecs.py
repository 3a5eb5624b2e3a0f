"""The hookspec module is the plugin author's reference: check it is complete and documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from lash_kernel import hookspecs
from lash_kernel.runtime.loader import make_plugin_manager

DOCS = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"

#: DESIGN §7's groups and the hooks each must contain.
GROUPS = {
    "build": {"lash_configure", "lash_register_tools", "lash_register_modes", "lash_register_record_types",
              "lash_register_usage_sources", "lash_register_config"},
    "prompt": {"lash_prompt_contributions"},
    "turn": {"lash_before_turn", "lash_checkpoint", "lash_before_tool_call", "lash_after_tool_call", "lash_after_turn"},
    "context": {"lash_transform_context", "lash_plan_compaction"},
    "lifecycle": {"lash_session_opened", "lash_turn_committed", "lash_session_closed"},
    "observation": {"lash_on_activity", "lash_on_trace_record"},
    "state": {"lash_snapshot_state", "lash_restore_state"},
}


def _specs() -> dict[str, object]:
    return {n: f for n, f in vars(hookspecs).items() if n.startswith("lash_") and callable(f)}


def test_every_design_group_is_present_in_its_banner_section():
    source = inspect.getsource(hookspecs)
    sections = dict(re.findall(r"# -{10,} (\w+)\n((?:.|\n)*?)(?=\n# -{10,}|\Z)", source))
    for group, hooks in GROUPS.items():
        defined = set(re.findall(r"^def (lash_\w+)", sections[group], re.M))
        assert hooks <= defined, f"{group}: missing {hooks - defined}"


def test_every_spec_is_registered_typed_and_documented():
    pm = make_plugin_manager()
    for name, fn in _specs().items():
        assert hasattr(pm.hook, name)
        doc = inspect.getdoc(fn) or ""
        for part in ("Called by:", "Returns:", "Raises:", "Added in"):
            assert part in doc, f"{name}: docstring lacks {part!r}"
        assert ("May be async" in doc) or ("Sync" in doc), f"{name}: say whether it may be async"
        sig = inspect.signature(fn)
        assert sig.return_annotation is not inspect.Signature.empty, f"{name}: no return annotation"
        assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()), name


def test_firstresult_only_on_plan_and_resolve_hooks():
    for name, fn in _specs().items():
        first = getattr(fn, "lash_spec", {}).get("firstresult", False)
        assert first == name.startswith(("lash_plan_", "lash_resolve_", "lash_select_")), name


def test_docs_are_generated_from_the_current_hookspecs():
    import runpy

    render = runpy.run_path(str(DOCS.parents[1] / "scripts" / "gen_hooks_doc.py"))["render"]
    assert DOCS.read_text() == render(), "docs/hooks.md is stale: run python scripts/gen_hooks_doc.py"


def test_docs_have_one_section_per_hookspec_with_its_summary():
    text = DOCS.read_text()
    headings = re.findall(r"^### (lash_\w+)$", text, re.M)
    assert sorted(headings) == sorted(_specs())
    for name, fn in _specs().items():
        summary = (inspect.getdoc(fn) or "").splitlines()[0]
        section = text.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        assert summary in section, f"docs/hooks.md section {name} is stale"
        assert f"def {name}(" in section


#: Hooks called where there is no core yet (or none at all): no ``host`` argument.
NO_HOST = {"lash_addhooks", "lash_register_config", "lash_register_commands", "lash_register_stores"}


def test_every_hook_a_core_calls_offers_the_host():
    for name, fn in _specs().items():
        params = inspect.signature(fn).parameters
        if name in NO_HOST:
            assert "host" not in params, name
            continue
        assert "host" in params and params["host"].annotation == "PluginHost", name
        assert "host" in (inspect.getdoc(fn) or ""), f"{name}: document the host argument"


def test_lash_addhooks_is_a_build_hook_and_hookspec_is_public():
    from lash_kernel.plugin import hookspec

    source = inspect.getsource(hookspecs)
    build = dict(re.findall(r"# -{10,} (\w+)\n((?:.|\n)*?)(?=\n# -{10,}|\Z)", source))["build"]
    assert "def lash_addhooks(registry: HookspecRegistrar)" in build
    assert hookspec is hookspecs.hookspec and hookspec.project_name == hookspecs.PROJECT
