"""The shape of ``lash_kernel.cli``: every module imports on its own, the package has no import
cycle, no module uses another's private names, plugins reach the CLI only through
``lash_kernel.plugin.command_host()``, and the built-in commands plugin loads click code lazily."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
CLI_DIR = ROOT / "lash_kernel" / "cli"
MODULES = sorted(p.stem for p in CLI_DIR.glob("*.py") if p.stem != "__init__")


def _imports(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Every ``import``/``from ... import`` in ``path`` (module level and inside functions),
    as ``(module, names)``; relative imports are resolved against the file's package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            out.append((module, tuple(alias.name for alias in node.names)))
    return out


def test_the_package_has_the_modules_by_role() -> None:
    assert set(MODULES) >= {"app", "context", "errors", "output", "plugins", "providers", "sessions", "turns"}


@pytest.mark.parametrize("module", ["lash_kernel.cli", *(f"lash_kernel.cli.{m}" for m in MODULES)])
def test_every_module_imports_on_its_own(module: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_no_import_cycle_inside_the_package() -> None:
    graph = {
        m: {
            target.removeprefix("lash_kernel.cli.")
            for target, _ in _imports(CLI_DIR / f"{m}.py")
            if target.startswith("lash_kernel.cli.")
        }
        for m in MODULES
    }
    assert graph["app"] >= {"context", "turns", "sessions"}  # the walk sees real edges
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"import cycle: {' -> '.join((*path, node))}"
        if node in done:
            return
        for nxt in graph.get(node, ()):
            visit(nxt, (*path, node))
        done.add(node)

    for module in MODULES:
        visit(module, ())


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = []
    files = [*CLI_DIR.glob("*.py"), ROOT / "lash_kernel" / "_builtin" / "commands.py"]
    for path in files:
        for module, names in _imports(path):
            if module.startswith("lash_kernel"):
                offenders += [f"{path.name}: {module}.{n}" for n in names if n.startswith("_")]
    assert offenders == []


def test_the_cli_package_has_no_bottom_import_or_noqa_e402() -> None:
    for path in CLI_DIR.glob("*.py"):
        assert "E402" not in path.read_text(encoding="utf-8"), path.name


def test_public_entry_points_stay() -> None:
    from lash_kernel.cli import app, cli, main

    assert cli is app.cli and main is app.main
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "lash"]
    assert script.value == "lash_kernel.cli:main"


def test_builtin_commands_plugin_loads_click_code_lazily() -> None:
    code = (
        "import sys, json; import lash_kernel._builtin.commands; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('lash_kernel.cli') or m == 'rich')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_lash_plugin_stays_light_and_mcp_cli_imports_no_cli_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, lash_kernel.plugin; print('lash_kernel.cli' in sys.modules)"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.stdout.strip() == "False", proc.stderr
    mcp_cli = ROOT / "plugins" / "lash-mcp" / "src" / "lash_mcp" / "_cli.py"
    kernel_imports = {m for m, _ in _imports(mcp_cli) if m.split(".")[0] == "lash_kernel"}
    assert kernel_imports <= {"lash_kernel", "lash_kernel.plugin", "lash_kernel.testing"}, kernel_imports


# ------------------------------------------------------------------------------- command_host


def _root_with(command: click.Command) -> click.Group:
    """A root group like ``lash``'s (``--config``, ``CliState``, one-line errors) holding ``command``."""
    from lash_kernel.cli.context import CliState, LashGroup

    @click.group(cls=LashGroup)
    @click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None)
    @click.pass_context
    def root(ctx: click.Context, config: Path | None) -> None:
        ctx.obj = CliState(config)

    root.add_command(command)
    return root


def _probe() -> click.Command:
    from lash_kernel.plugin import command_host

    @click.command("probe")
    def probe() -> None:
        with command_host() as host:
            click.echo(f"config_dir={host.config_dir} host={type(host).__name__}")

    return probe


def test_command_host_builds_a_core_from_the_running_commands_lash_toml(tmp_path: Path) -> None:
    probe = _probe()

    config = tmp_path / "agent.toml"
    config.write_text("[plugins]\nenabled = []\n")
    result = CliRunner().invoke(_root_with(probe), ["--config", str(config), "probe"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"config_dir={tmp_path} host=")

    config.write_text("max_turns = 0\n")
    result = CliRunner().invoke(_root_with(probe), ["--config", str(config), "probe"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {config} key 'max_turns': must be an integer >= 1, got 0"


def test_command_host_yields_the_plugin_host_not_the_core(tmp_path: Path) -> None:
    from lash_kernel.plugin import PluginHost, command_host

    seen: list[object] = []

    @click.command("probe")
    def probe() -> None:
        with command_host() as host:
            seen.append(host)

    result = CliRunner().invoke(_root_with(probe), ["probe"], env={"LASH_PLUGINS": ""})
    assert result.exit_code == 0, result.output
    (host,) = seen
    assert isinstance(host, PluginHost) and type(host).__name__ != "LashCore"
