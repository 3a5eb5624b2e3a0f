"""The kernel's import rules (docs/architecture.md), checked on the source.

Layers, bottom up:

- records and contracts: the top-level modules (messages, usage, activity, model, tools, ...);
- the machine: ``runtime.machine``, ``runtime.events``, ``runtime.effects`` (pure, sans-IO);
- ``lash_kernel.plugin``: the plugin-author API (records, contracts and the machine's types);
- adapters: ``providers/*`` and ``store/*``;
- the runtime engine: the rest of ``runtime/`` (driver, session, core, loader, hooks);
- the built-in plugins (``_builtin/*``) and the CLI (``cli/*``), on top.

Rules:
- records and contracts import no adapter, runtime or CLI module;
- the machine imports only records (its whole import closure is checked in a subprocess: no
  anyio, pluggy, httpx, sqlite, click, jsonschema or cattrs);
- the runtime never imports the CLI; adapters never import the runtime;
- no module imports another module's ``_private`` name, and a private module (``_x.py``) is
  imported only from its own package;
- no import cycle between modules at import time (imports inside functions and under
  ``TYPE_CHECKING`` do not run at import, so they are not edges of that graph).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import lash_kernel

ROOT = Path(lash_kernel.__file__).parent

PURE = {"lash_kernel.runtime.machine", "lash_kernel.runtime.events", "lash_kernel.runtime.effects"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str) -> list[tuple[str, tuple[str, ...], bool]]:
    """``(module, imported names, at import time)`` for every lash_kernel import of ``name``."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    out: list[tuple[str, tuple[str, ...], bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # annotations only
            if isinstance(child, ast.Import):
                out.extend((a.name, (), top) for a in child.names if a.name.startswith("lash_kernel"))
            elif isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("lash_kernel"):
                for alias in child.names:
                    sub = f"{child.module}.{alias.name}"
                    if sub in MODULES:  # "from pkg import module"
                        out.append((sub, (), top))
                    else:
                        out.append((child.module, (alias.name,), top))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            else:
                visit(child, top)

    visit(tree, True)
    return out


GRAPH = {name: _imports(name) for name in MODULES}


def _layer(name: str) -> str:
    parts = name.split(".")
    if name in PURE:
        return "machine"
    if len(parts) == 1:
        return "package"
    head = parts[1]
    if head in ("runtime", "cli", "providers", "store", "testing", "_builtin"):
        return {"providers": "adapter", "store": "adapter"}.get(head, head)
    if head == "plugin":
        return "plugin"
    if head == "__main__":
        return "cli"
    return "record"


#: Upward imports made inside a function (so only when called), each with its reason.
LAZY_EXCEPTIONS = {
    ("lash_kernel.plugin", "lash_kernel.cli.context"): "command_host() builds the CLI's core for plugin commands",
}


def _violations(allowed: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, imports in GRAPH.items():
        layer = _layer(name)
        if layer not in allowed:
            continue
        for target, _, top in imports:
            if not top and (name, target) in LAZY_EXCEPTIONS:
                continue
            if target in MODULES and _layer(target) not in allowed[layer] and target != name:
                bad.append(f"{name} ({layer}) imports {target} ({_layer(target)})")
    return bad


def test_every_module_is_classified():
    assert {_layer(n) for n in MODULES} <= {
        "package", "record", "machine", "plugin", "adapter", "runtime", "_builtin", "cli", "testing"
    }


def test_records_and_contracts_import_no_adapter_runtime_or_cli():
    assert _violations({"record": {"record"}}) == []


def test_the_machine_imports_only_records():
    assert _violations({"machine": {"record", "machine"}}) == []


def test_the_plugin_api_imports_no_runtime_engine():
    assert _violations({"plugin": {"record", "machine", "adapter"}}) == []


def test_adapters_never_import_the_runtime():
    assert _violations({"adapter": {"record", "adapter"}}) == []


def test_the_runtime_never_imports_the_cli():
    assert _violations({"runtime": {"record", "machine", "plugin", "adapter", "runtime", "_builtin"}}) == []


def test_no_private_names_or_modules_cross_module_boundaries():
    bad = []
    for name, imports in GRAPH.items():
        for target, names, _ in imports:
            for imported in names:
                if imported.startswith("_") and not imported.startswith("__"):
                    bad.append(f"{name} imports private name {target}.{imported}")
            last = target.rsplit(".", 1)
            if len(last) == 2 and last[1].startswith("_") and not last[1].startswith("__"):
                owner = last[0]
                if not (name == owner or name.startswith(owner + ".")):
                    bad.append(f"{name} imports private module {target} of another package")
    assert bad == []


def test_no_import_cycle_at_import_time():
    edges = {name: {t for t, _, top in imports if top and t in MODULES and t != name} for name, imports in GRAPH.items()}
    # A package's __init__ importing its own submodules is how packages work, not a cycle.
    for name in edges:
        edges[name] = {t for t in edges[name] if not name.startswith(t + ".")}
    seen: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if seen.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(edges):
        if node not in seen:
            visit(node)
    assert cycles == []


@pytest.mark.parametrize("module", sorted(PURE | {"lash_kernel"}))
def test_import_closure_of_pure_modules_has_no_runtime_libraries(module):
    code = (
        "import json, sys\n"
        f"import {module}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert loaded & {"anyio", "pluggy", "httpx", "sqlite_utils", "sqlite3", "click", "jsonschema", "cattrs", "rich"} == set()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports_on_its_own(module):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True)
