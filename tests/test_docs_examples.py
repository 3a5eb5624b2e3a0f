"""The runnable examples of ``docs/plugins.md`` (§7 to §13, one per agent capability) run as
written: each ``python example`` block of those sections (a whole script: plugin code and the
host code that uses it) is executed in a fresh directory, where it writes its own SQLite file,
and its own ``assert`` statements check what the text claims.

The plain ``python`` blocks are plugin snippets, checked by ``tests/test_plugin_imports.py``
(plugin API imports only, loaded on a core); these examples may also use the host API
(``lash_kernel``) but nothing else of the kernel."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"

SECTIONS = {
    "7. Model calls": ["calls.db"],
    "8. Session specs": ["specs.db"],
    "9. Child sessions": ["children.db", "cancel.db"],
    "10. Agent frames": ["frames.db", "checkpoint.db"],
    "11. Plugin nodes": ["nodes.db"],
    "12. Background work": ["background.db"],
    "13. One writer per session: the lease": ["lease.db"],
}


def blocks(title: str) -> list[str]:
    """The ``python`` code blocks of the section headed ``## {title}``."""
    text = DOC.read_text(encoding="utf-8")
    assert f"\n## {title}\n" in text, f"docs/plugins.md has no section {title!r}"
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python example\n(.*?)```", section, re.S)


@pytest.mark.parametrize("title", list(SECTIONS))
def test_the_example_runs(title: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = blocks(title)
    assert len(found) == len(SECTIONS[title]), f"{title}: expected {len(SECTIONS[title])} example(s)"
    monkeypatch.chdir(tmp_path)
    for index, (block, db) in enumerate(zip(found, SECTIONS[title], strict=True)):
        code = compile(block, f"docs/plugins.md ({title}, example {index + 1})", "exec", dont_inherit=True)
        exec(code, {"__name__": f"docs_example_{index}"})
        assert (tmp_path / db).exists(), f"{title}: example {index + 1} did not write {db}"


@pytest.mark.parametrize("title", list(SECTIONS))
def test_the_examples_import_only_public_kernel_modules(title: str) -> None:
    for block in blocks(title):
        modules = {
            node.module or "" for node in ast.walk(ast.parse(block)) if isinstance(node, ast.ImportFrom)
        } | {alias.name for node in ast.walk(ast.parse(block)) if isinstance(node, ast.Import) for alias in node.names}
        kernel = {m for m in modules if m.split(".")[0] == "lash_kernel"}
        assert kernel <= {"lash_kernel", "lash_kernel.plugin", "lash_kernel.testing"}, block


def test_every_capability_section_is_checked() -> None:
    titles = re.findall(r"^## (\d+\. .+)$", DOC.read_text(encoding="utf-8"), re.M)
    capability_titles = [t for t in titles if 7 <= int(t.split(".")[0]) <= 13]
    assert capability_titles == list(SECTIONS)


MYFEATURE = '''
"""The plugin docs/plugins.md's testing example exercises: deny some tools by config."""
import attrs

from lash_kernel.plugin import BlockToolCall, hookimpl


@attrs.frozen(kw_only=True)
class Config:
    deny: tuple[str, ...] = ()


@hookimpl
def lash_register_config(registry):
    registry.add(Config)


@hookimpl
def lash_configure(host, config):
    host.stash[DENY] = config.deny


@hookimpl
def lash_register_tools(registry):
    from lash_kernel.plugin import tool

    @tool
    def shell(cmd: str) -> str:
        """Run a shell command."""
        return cmd

    registry.add(shell)


@hookimpl
def lash_before_tool_call(host, call):
    if call.name in host.stash[DENY]:
        return BlockToolCall(reason=f"{call.name} is denied")
    return None


from lash_kernel.plugin import StashKey  # noqa: E402

DENY = StashKey()
'''


def test_the_testing_section_example_passes_as_written(tmp_path):
    """docs/plugins.md §14's test, copied verbatim, passes under pytest against a real plugin."""
    text = DOC.read_text()
    section = text[text.index("## 14. Testing") :]
    block = section[section.index("```python\n") + len("```python\n") :]
    block = block[: block.index("```")]
    package = tmp_path / "lash_myfeature"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(MYFEATURE)
    (tmp_path / "test_example.py").write_text(block)
    (tmp_path / "conftest.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_example.py")],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
