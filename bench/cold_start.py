"""Cold-start costs of lash: what a new process pays before and during its first turn.

Prints (each a median over fresh OS processes, so nothing is cached in the interpreter):

- ``python -c pass``: the interpreter's own start, for reference;
- ``import lash_kernel``, and ``from lash_kernel import LashCore, SqliteStore, tool`` (what a
  host imports), timed inside the process with ``time.perf_counter``;
- ``lash --help``: wall time of the console script (``python -m lash_kernel --help``) in a
  subprocess, with every plugin installed in this interpreter's environment (their commands are
  listed, so their entry modules are imported);
- first turn vs second turn in a fresh process: a ``SqliteStore`` file in a temp directory, a
  ``LashCore`` with a ``ScriptedModel`` (no network), then two turns on two new sessions, each
  one tool call and a short answer committed to SQLite; also the core's construction time (a
  pre-warm there would show up in it). ``first - second`` is the first-turn-only cost.

Bytecode: the processes run with ``PYTHONDONTWRITEBYTECODE`` unset and each command runs once
untimed first, so modules load from ``__pycache__`` as in an installed package (with no ``.pyc``
every run compiles every module, which more than doubles ``lash --help``).

Usage: python bench/cold_start.py [--runs N] [--plugins] [--json]
  --plugins: the turn processes load the installed entry-point plugins too (default: kernel only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

IMPORT_CODE = (
    "import time\n"
    "t0 = time.perf_counter()\n"
    "import lash_kernel\n"
    "t1 = time.perf_counter()\n"
    "from lash_kernel import LashCore, SqliteStore, tool\n"
    "t2 = time.perf_counter()\n"
    "print(t1 - t0, t2 - t0)\n"
)

TURN_CODE = """
import sys, time
t0 = time.perf_counter()
from pathlib import Path
import anyio
from lash_kernel import LashCore, SqliteStore, TokenUsage, tool
from lash_kernel.testing import ScriptedModel
t1 = time.perf_counter()

@tool
async def lookup(key: str) -> str:
    '''Look a key up.'''
    return f"value of {key}"

model = ScriptedModel()
usage = TokenUsage(input_tokens=120, output_tokens=12)
for i in range(2):
    model.enqueue_tool_calls(("lookup", {"key": f"k{i}"}), usage=usage)
    model.enqueue_text("x" * 200, usage=usage)

t2 = time.perf_counter()
core = LashCore(model_client=model, model="scripted", store=SqliteStore(Path(sys.argv[1]) / "cold.db"),
                tools=[lookup], entry_points=sys.argv[2] == "1")
t3 = time.perf_counter()

async def main():
    times = []
    for i in range(2):
        s0 = time.perf_counter()
        with core.session() as session:
            result = await session.turn(f"What is k{i}?").run()
        times.append(time.perf_counter() - s0)
        assert result.text, result.outcome
    return times

first, second = anyio.run(main)
core.close()
print(t1 - t0, t3 - t2, first, second)
"""


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
#: Every process starts in an empty directory: no lash.toml, and no source tree on sys.path
#: ahead of the installed packages (``python -c`` puts the working directory first).
CWD = tempfile.mkdtemp(prefix="lash-cold-")


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def _wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=CWD)
    return time.perf_counter() - t0


def measure(runs: int, plugins: bool) -> dict[str, float]:
    """Run every measurement ``runs`` times in fresh processes; medians in milliseconds."""
    py = sys.executable
    _wall([py, "-m", "lash_kernel", "--help"])  # writes the .pyc files (see the module docstring)
    with tempfile.TemporaryDirectory() as tmp:
        warm = [py, "-c", TURN_CODE, tmp, "1" if plugins else "0"]
        subprocess.run(warm, check=True, capture_output=True, env=ENV, cwd=CWD)
    pass_wall, help_wall, imp, host_imp = [], [], [], []
    turn_imports, construct, first, second, delta = [], [], [], [], []
    for _ in range(runs):  # interleaved, so a load spike on the machine hits every figure alike
        pass_wall.append(_wall([py, "-c", "pass"]))
        help_wall.append(_wall([py, "-m", "lash_kernel", "--help"]))
        out = subprocess.run([py, "-c", IMPORT_CODE], check=True, capture_output=True, text=True, env=ENV, cwd=CWD)
        out = out.stdout.split()
        imp.append(float(out[0]))
        host_imp.append(float(out[1]))
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [py, "-c", TURN_CODE, tmp, "1" if plugins else "0"],
                check=True, capture_output=True, text=True, env=ENV, cwd=CWD,
            ).stdout.split()
        values = [float(v) for v in out]
        turn_imports.append(values[0])
        construct.append(values[1])
        first.append(values[2])
        second.append(values[3])
        delta.append(values[2] - values[3])
    return {
        "python_pass_wall_ms": _median_ms(pass_wall),
        "import_lash_kernel_ms": _median_ms(imp),
        "import_host_names_ms": _median_ms(host_imp),
        "lash_help_wall_ms": _median_ms(help_wall),
        "turn_process_imports_ms": _median_ms(turn_imports),
        "core_construction_ms": _median_ms(construct),
        "first_turn_ms": _median_ms(first),
        "second_turn_ms": _median_ms(second),
        "first_minus_second_ms": _median_ms(delta),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per figure (median)")
    parser.add_argument("--plugins", action="store_true", help="load installed plugins in the turn processes")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = measure(args.runs, args.plugins)
    if args.json:
        print(json.dumps(result))
        return
    print(f"cold start, median of {args.runs} fresh processes (python {sys.version.split()[0]})")
    labels = {
        "python_pass_wall_ms": "python -c pass (wall, reference)",
        "import_lash_kernel_ms": "import lash_kernel",
        "import_host_names_ms": "import lash_kernel + LashCore, SqliteStore, tool",
        "lash_help_wall_ms": "lash --help (wall, installed plugins listed)",
        "turn_process_imports_ms": "turn process: imports (anyio, lash, testing kit)",
        "core_construction_ms": "turn process: LashCore(...) construction" + (" + plugins" if args.plugins else ""),
        "first_turn_ms": "first turn",
        "second_turn_ms": "second turn",
        "first_minus_second_ms": "first - second (per process)",
    }
    for key, label in labels.items():
        print(f"  {label:<52} {result[key]:8.1f} ms")


if __name__ == "__main__":
    main()
