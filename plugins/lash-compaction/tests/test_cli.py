"""``lash sessions compact ID`` (a real ``lash`` process) against a local fake OpenAI-compatible
server that answers every call with the same streamed summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lash_kernel import LashCore, SqliteStore
from lash_kernel.testing import ScriptedModel, sse_body

SUMMARY = "## Goal\nfind the colour"


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "model": "fake",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}  # fmt: skip


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    usage = {"id": "c1", "object": "chat.completion.chunk", "model": "fake", "choices": [],
             "usage": {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129}}  # fmt: skip
    body = sse_body(_chunk({"role": "assistant", "content": SUMMARY}), _chunk(finish="stop"), usage).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers.get("content-length") or 0))))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", bodies
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _lash(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    hidden = ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "LASH_DB", "LASH_MODEL", "LASH_PLUGINS")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    return subprocess.run([sys.executable, "-m", "lash_kernel", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd)  # fmt: skip


def test_lash_sessions_compact(tmp_path: Path, server: tuple[str, list[dict[str, Any]]]) -> None:
    url, bodies = server
    db = tmp_path / "lash.db"
    model = ScriptedModel().enqueue_text("red").enqueue_text("apple")
    with LashCore(model_client=model, model="fake", store=SqliteStore(db), allow=["compaction"]) as core:
        session = core.session("s1")
        session.run_sync("Name a colour.")
        session.run_sync("Name a fruit.")

    proc = _lash(tmp_path, "sessions", "compact", "s1", "-i", "keep the colour", "--base-url", url,
                 "--model", "fake", "--db", str(db))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "compacted into a new frame" in proc.stderr
    [request] = bodies
    prompt = request["messages"][-1]["content"]
    assert "Name a colour." in prompt and "keep the colour" in prompt and "Name a fruit." not in prompt

    with LashCore(model_client=ScriptedModel(), model="fake", store=SqliteStore(db), allow=["compaction"]) as core:
        session = core.session("s1")
        [frame] = session.frames()
        [record] = session.nodes("compaction")
        assert record.frame_id == frame.frame_id and record.summary == SUMMARY
        assert [m.text for m in session.history()][1:] == ["Name a fruit.", "apple"]
        assert session.usage_report().by_source["compaction"].input_tokens == 120

    again = _lash(tmp_path, "sessions", "compact", "s1", "--base-url", url, "--model", "fake", "--db", str(db))
    assert again.returncode == 0 and "nothing to compact" in again.stderr  # one exchange left
    assert len(bodies) == 1


def test_lash_sessions_compact_is_listed(tmp_path: Path) -> None:
    proc = _lash(tmp_path, "sessions", "--help")
    assert proc.returncode == 0 and "compact" in proc.stdout
