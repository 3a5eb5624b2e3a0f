"""Cold start: what a new process imports and builds before and during its first turn.

Each test runs a fresh interpreter (a subprocess), because what matters is what a process that
never imported lash loads. No timing asserts: ``bench/cold_start.py`` prints the times; these
tests pin the import structure and the work that makes them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_REPORT = "import json, sys\nprint(json.dumps(sorted(sys.modules)))\n"


def _modules(code: str, *, cwd: Path, env: dict[str, str] | None = None) -> set[str]:
    """Run ``code`` in a fresh interpreter; the names in its ``sys.modules`` afterwards."""
    out = subprocess.run(
        [sys.executable, "-c", code + "\n" + _REPORT],
        capture_output=True, text=True, check=True, cwd=cwd, env={**os.environ, **(env or {})},
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def _tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


#: Libraries a host that builds a core and a SQLite store never needs at import: the CLI's
#: (click, rich), the provider adapters' (httpx), the old store wrapper's (sqlite-utils and its
#: click/dateutil stack) and the schema checker's (jsonschema loads with the first ``Tool``).
HOST_NEVER = {"click", "rich", "httpx", "httpx_sse", "sqlite_utils", "dateutil", "jsonschema"}


def test_host_imports_load_no_cli_provider_or_schema_library(tmp_path: Path) -> None:
    loaded = _modules(
        "from lash_kernel import LashCore, MemoryStore, Session, SqliteStore, TurnResult, tool", cwd=tmp_path
    )
    assert _tops(loaded) & HOST_NEVER == set()
    assert not any(m.startswith(("lash_kernel.cli", "lash_kernel.providers", "lash_kernel.testing")) for m in loaded)


def test_defining_a_tool_loads_jsonschema_but_not_the_cli_or_providers(tmp_path: Path) -> None:
    code = "from lash_kernel import tool\n@tool\ndef f(x: int) -> int:\n    '''Double.'''\n    return 2 * x\n"
    loaded = _modules(code, cwd=tmp_path)
    assert "jsonschema" in loaded  # the schema is checked when the tool is defined, as before
    assert _tops(loaded) & (HOST_NEVER - {"jsonschema"}) == set()


def test_a_plugin_entry_module_importing_the_plugin_api_loads_no_runtime_library(tmp_path: Path) -> None:
    loaded = _modules("from lash_kernel.plugin import PluginHost, StashKey, hookimpl", cwd=tmp_path)
    assert _tops(loaded) & {"anyio", "asyncio", "cattrs", "jsonschema", "click", "rich", "httpx", "sqlite3"} == set()
    assert not any(m.startswith(("lash_kernel.runtime", "lash_kernel.store", "lash_kernel.tools")) for m in loaded)


def test_plugin_api_names_still_resolve_lazily(tmp_path: Path) -> None:
    code = (
        "import lash_kernel.plugin as p\n"
        "assert p.Tool.__module__ == 'lash_kernel.tools' and p.serde.__name__ == 'lash_kernel.serde'\n"
        "assert all(getattr(p, n) is not None for n in p.__all__)\n"
        "assert set(p.__all__) <= set(dir(p))\n"
    )
    _modules(code, cwd=tmp_path)


def test_lash_help_lists_commands_without_the_runtime_or_output_libraries(tmp_path: Path) -> None:
    """``lash --help`` (no lash.toml in the directory) imports click, pluggy and the installed
    plugins' entry modules, but not the runtime, rich, cattrs, jsonschema, anyio or a store."""
    code = (
        "import contextlib, io\n"
        "from lash_kernel.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), exc.code\n"
        "assert 'sessions' in buf.getvalue() and 'plugins' in buf.getvalue() and 'tools' in buf.getvalue()\n"
    )
    loaded = _modules(code, cwd=tmp_path)
    assert "click" in loaded
    never = {"rich", "cattrs", "jsonschema", "anyio", "asyncio", "httpx", "sqlite_utils", "sqlite3", "psycopg", "mcp"}
    assert _tops(loaded) & never == set()
    runtime = {"lash_kernel.runtime.core", "lash_kernel.runtime.driver", "lash_kernel.runtime.session"}
    assert loaded & {*runtime, "lash_kernel.tools"} == set()


_TWO_TURNS = """
import sys
from pathlib import Path
import cattrs.converters, cattrs.gen

built = []
for name in ("make_dict_unstructure_fn", "make_dict_structure_fn"):
    original = getattr(cattrs.gen, name)
    def counting(cl, *args, _original=original, _name=name, **kwargs):
        built.append((phase, _name, getattr(cl, "__name__", repr(cl))))
        return _original(cl, *args, **kwargs)
    setattr(cattrs.gen, name, counting)
    setattr(cattrs.converters, name, counting)

phase = "import"
import anyio
from lash_kernel import LashCore, SqliteStore, TokenUsage, tool
from lash_kernel.testing import ScriptedModel

@tool
async def lookup(key: str) -> str:
    '''Look a key up.'''
    return f"value of {key}"

model = ScriptedModel()
for i in range(3):
    model.enqueue_tool_calls(("lookup", {"key": f"k{i}"}), usage=TokenUsage(input_tokens=5, output_tokens=2))
    model.enqueue_text("answer", usage=TokenUsage(input_tokens=5, output_tokens=2))
core = LashCore(model_client=model, model="scripted", store=SqliteStore(Path(sys.argv[1])), tools=[lookup],
                entry_points=False)

async def main():
    global phase
    for i in range(2):
        phase = f"turn {i}"
        with core.session() as session:
            assert (await session.turn(f"What is k{i}?").run()).text == "answer"
    phase = "resume"
    with core.session(session.id) as session:
        assert (await session.turn("again").run()).text == "answer"

anyio.run(main)
core.close()
print(json.dumps([b for b in built if b[0] != "import"]))
"""


def test_turns_build_no_converter_hooks(tmp_path: Path) -> None:
    """The hooks a turn's commit needs are built at import (``serde.prebuild``): no turn, the
    first one included, builds one, and cattrs' cache resets never make a later turn rebuild them."""
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + _TWO_TURNS, str(tmp_path / "cold.db")],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == []
