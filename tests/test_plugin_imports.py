"""Shipped plugins and cookbook code use only lash's public modules.

A plugin imports ``lash_kernel`` (the host API), ``lash_kernel.plugin`` (the plugin-author
API) and ``lash_kernel.testing`` (the test kit), and nothing else of the kernel; ``click`` is
fine for CLI commands. Cookbook host recipes (``cookbook/*.py``) are applications: they may
also pick a provider adapter from ``lash_kernel.providers``. Every import statement counts,
including those under ``if TYPE_CHECKING:`` and inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_ALLOWED = ("lash_kernel", "lash_kernel.plugin", "lash_kernel.testing")
HOST_ALLOWED = (*PLUGIN_ALLOWED, "lash_kernel.providers")

#: Known violations in files this package does not own, each with what must replace it. The
#: test fails when one disappears, so the entry is removed together with the fix.
PENDING: dict[tuple[str, str], str] = {}


def _kernel_imports(path: Path) -> list[str]:
    """Every ``lash_kernel...`` module ``path`` imports (``from lash_kernel import x`` is ``lash_kernel``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names if alias.name.split(".")[0] == "lash_kernel"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "lash_kernel":
                out.append(node.module)
    return out


def _allowed(module: str, allowed: tuple[str, ...]) -> bool:
    return any(module == a or (a == "lash_kernel.providers" and module.startswith(a + ".")) for a in allowed)


def _violations() -> set[tuple[str, str]]:
    found = set()
    plugin_files = [*ROOT.glob("plugins/*/src/**/*.py"), *ROOT.glob("cookbook/*/src/**/*.py")]
    host_files = list(ROOT.glob("cookbook/*.py"))
    for files, allowed in ((plugin_files, PLUGIN_ALLOWED), (host_files, HOST_ALLOWED)):
        for path in files:
            for module in _kernel_imports(path):
                if not _allowed(module, allowed):
                    found.add((path.relative_to(ROOT).as_posix(), module))
    return found


def test_the_scan_finds_the_shipped_plugins_and_the_cookbook():
    names = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("plugins/*/src/**/*.py")}
    names |= {p.relative_to(ROOT).as_posix() for p in ROOT.glob("cookbook/**/*.py")}
    for expected in (
        "plugins/lash-mcp/src/lash_mcp/plugin.py",
        "plugins/lash-tracing/src/lash_tracing/_sink.py",
        "cookbook/lash-audit/src/lash_audit/plugin.py",
        "cookbook/tool_agent.py",
    ):
        assert expected in names
    assert _kernel_imports(ROOT / "cookbook/lash-audit/src/lash_audit/plugin.py") == ["lash_kernel.plugin"]


def test_plugins_import_only_the_public_kernel_modules():
    violations = _violations()
    unexpected = sorted(violations - PENDING.keys())
    assert not unexpected, "import only lash_kernel, lash_kernel.plugin or lash_kernel.testing: " + ", ".join(
        f"{path} imports {module}" for path, module in unexpected
    )
    fixed = sorted(PENDING.keys() - violations)
    assert not fixed, f"fixed, remove from PENDING: {fixed}"


def test_the_checker_catches_private_and_runtime_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "import lash_kernel.plugin\n"
        "from lash_kernel import hookimpl\n"
        "if TYPE_CHECKING:\n"
        "    from lash_kernel.runtime.core import LashCore\n"
        "def f():\n"
        "    import lash_kernel.trace as t\n"
        "from . import sibling\n"
    )
    modules = _kernel_imports(sample)
    assert modules == ["lash_kernel.plugin", "lash_kernel", "lash_kernel.runtime.core", "lash_kernel.trace"]
    assert [m for m in modules if not _allowed(m, PLUGIN_ALLOWED)] == ["lash_kernel.runtime.core", "lash_kernel.trace"]


def _doc_blocks() -> list[str]:
    import re

    return re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "plugins.md").read_text(), re.S)


def test_docs_plugin_examples_import_only_the_plugin_api(tmp_path):
    blocks = _doc_blocks()
    assert len(blocks) >= 5
    for block in blocks:
        sample = tmp_path / "block.py"
        sample.write_text(block)
        modules = _kernel_imports(sample)  # also proves the block parses
        assert set(modules) <= {"lash_kernel.plugin", "lash_kernel.testing"}, block
    first_import = next(line for line in blocks[0].splitlines() if "import" in line)
    assert first_import.startswith("from lash_kernel.plugin import ")


def test_docs_plugin_examples_load_on_a_core():
    import types

    from lash_kernel import LashCore
    from lash_kernel.plugin import StashKey
    from lash_kernel.testing import ScriptedModel

    modules = []
    for index, block in enumerate(_doc_blocks()):
        if "@hookimpl" not in block or "def test_" in block:
            continue
        module = types.ModuleType(f"docs_plugin_{index}")
        exec(compile(block, f"docs/plugins.md block {index}", "exec"), module.__dict__)
        modules.append(module)
    core = LashCore(model_client=ScriptedModel(), model="m", entry_points=False, plugins=modules)
    names = {p.name for p in core.plugins()}
    assert {m.__name__ for m in modules} <= names
    keys = [v for m in modules for v in vars(m).values() if isinstance(v, StashKey)]
    assert keys and all(key in core.plugin_host.stash for key in keys)  # the §4 example ran
    assert "compaction_on_compacted" in core.hooks.published  # the §5 example published its hook
    core.close()
