"""``lash trace view`` through the real ``lash`` command group (the entry point adds it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lash_kernel.trace import TRACE_SCHEMA_VERSION
from lash_tracing import JsonlSink


def lash(*args: str) -> Result:
    from lash_kernel.cli import cli

    result = CliRunner().invoke(cli, list(args), prog_name="lash")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def trace_file(tmp_path, turn_records) -> Path:
    sink = JsonlSink(tmp_path / "run.jsonl")
    sink.write(turn_records)
    sink.close()
    return tmp_path / "run.jsonl"


def test_view_writes_html_next_to_the_file_and_prints_its_path(trace_file):
    result = lash("trace", "view", str(trace_file))
    assert result.exit_code == 0, result.output
    out = trace_file.with_suffix(".html")
    assert result.stdout == f"{out}\n"
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert html.count('data-kind="turn"') == 1
    assert html.count('data-kind="model_call"') == 3
    assert html.count('data-kind="tool_call"') == 1


def test_view_output_option_and_open(trace_file, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    out = tmp_path / "pages" / "x.html"
    out.parent.mkdir()
    result = lash("trace", "view", str(trace_file), "-o", str(out), "--open")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"
    assert out.is_file() and not trace_file.with_suffix(".html").exists()
    assert opened == [out.resolve().as_uri()]


def _bad(tmp_path: Path, name: str, content: bytes | None) -> Path:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "no such trace file"),
        ("garbage.jsonl", b'{"v": 1, "kind": "turn.started", "time_s": 1, "span_id": "t"}\n{oops\n', ":2: not a JSON line"),
        ("newer.jsonl", json.dumps({"v": TRACE_SCHEMA_VERSION + 1, "kind": "x", "time_s": 1, "span_id": "t"}).encode(),
         f"written with trace schema v{TRACE_SCHEMA_VERSION + 1}"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_code_2(tmp_path, name, content, message):
    path = _bad(tmp_path, name, content)
    result = lash("trace", "view", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not path.with_suffix(".html").exists()


def test_refuses_to_overwrite_the_input(tmp_path, turn_records):
    sink = JsonlSink(tmp_path / "t.html")
    sink.write(turn_records)
    sink.close()
    result = lash("trace", "view", str(tmp_path / "t.html"))
    assert result.exit_code == 2 and "would overwrite the trace file" in result.stderr


def test_lash_script_help_lists_trace_without_importing_opentelemetry(tmp_path):
    """``lash --help`` imports the plugin module; it must not pull in OpenTelemetry."""
    code = (
        "import sys\n"
        "from lash_kernel.cli import main\n"
        "sys.argv = ['lash', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('OTEL' if any(m.startswith('opentelemetry') for m in sys.modules) else 'NO-OTEL')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert " trace " in proc.stdout or "\n  trace" in proc.stdout
    assert proc.stdout.rstrip().endswith("NO-OTEL")


def test_lash_script_trace_view_subprocess(trace_file):
    lash_script = Path(sys.executable).with_name("lash")
    proc = subprocess.run([str(lash_script), "trace", "view", str(trace_file)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{trace_file.with_suffix('.html')}\n"
    proc = subprocess.run([str(lash_script), "trace", "view", str(trace_file.with_name("nope.jsonl"))],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("Error: ") and "Traceback" not in proc.stderr
