"""``lash run --db postgresql://…`` (and ``LASH_DB``, ``lash sessions``) against the real CLI in a
subprocess: the installed ``postgres`` entry point declares the scheme; the model is a small
OpenAI-compatible server scripted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest

from lash_kernel.testing import sse_body


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if "usage" in extra else [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": choices, **extra}


@pytest.fixture
def model_url() -> Iterator[str]:
    """A chat-completions server answering every request with the streamed text ``pong``."""
    body = sse_body(
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "pong"}),
        _chunk(finish="stop"),
        _chunk(usage={"prompt_tokens": 5, "completion_tokens": 1}),
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _lash(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LASH_", "OPENAI", "OPENROUTER", "ANTHROPIC"))}
    return subprocess.run(
        [sys.executable, "-m", "lash_kernel", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
    )


def test_lash_run_with_db_postgresql_commits_the_turn_there(pg_dsn: str, model_url: str) -> None:
    run = _lash("run", "--db", pg_dsn, "--base-url", model_url, "--model", "m", "--session", "cli-1", "--json", "ping")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["session_id"] == "cli-1" and out["text"] == "pong"
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT head_revision FROM lash_sessions WHERE session_id = 'cli-1'").fetchone() == (1,)
    again = _lash("run", "--base-url", model_url, "--model", "m", "--session", "cli-1", "--json", "ping again",
                  env={"LASH_DB": pg_dsn})
    assert again.returncode == 0, again.stderr
    listed = _lash("sessions", "list", "--json", env={"LASH_DB": pg_dsn})
    assert listed.returncode == 0, listed.stderr
    (session,) = json.loads(listed.stdout)
    assert (session["session_id"], session["turns"]) == ("cli-1", 2)


def test_lash_run_without_the_plugin_selected_names_the_known_schemes(pg_dsn: str, model_url: str) -> None:
    run = _lash("run", "--db", pg_dsn, "--base-url", model_url, "--model", "m", "ping", env={"LASH_PLUGINS": ""})
    assert run.returncode == 2
    assert "known store schemes: memory, sqlite" in run.stderr and "install lash-postgres" in run.stderr
