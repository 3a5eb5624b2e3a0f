"""The ``lash`` CLI against a real local HTTP server speaking OpenAI-compatible SSE.

Every provider call goes through real httpx to a ``ThreadingHTTPServer`` on 127.0.0.1 that
serves scripted replies in order and records every request body it received.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lash_kernel.cli import PROVIDERS, build_provider, cli, default_db_path
from lash_kernel.errors import ConfigError
from lash_kernel.messages import Message
from lash_kernel.store.base import PendingInput
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.testing import sse_body

MODEL = "fake-model"
SECRET = "sk-test-secret-do-not-print"


# ------------------------------------------------------------------------------- the fake server


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }


def usage_chunk(prompt: int, completion: int, *, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
    }


class FakeOpenAI:
    """Scripted OpenAI-compatible ``/v1/chat/completions`` server (streaming only)."""

    def __init__(self) -> None:
        self.replies: deque[tuple[int, str, str]] = deque()  # status, content type, body
        self.bodies: list[dict[str, Any]] = []
        self.stall = threading.Event()  # set: the next reply stalls after its first event
        self.stalled = threading.Event()  # set by the server once it is stalling
        self.headers: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                fake.bodies.append(json.loads(raw))
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path != "/v1/chat/completions":
                    status, ctype, body = 404, "application/json", '{"error": {"message": "no such path"}}'
                elif fake.replies:
                    status, ctype, body = fake.replies.popleft()
                else:
                    status, ctype, body = 400, "application/json", '{"error": {"message": "no scripted reply"}}'
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("content-type", ctype)
                if fake.stall.is_set():  # close-delimited body: two events, a pause, the rest
                    fake.stall.clear()
                    self.end_headers()
                    events = body.split("\n\n")  # role chunk, first text chunk | the rest
                    first, rest = "\n\n".join(events[:2]) + "\n\n", "\n\n".join(events[2:])
                    try:
                        self.wfile.write(first.encode("utf-8"))
                        self.wfile.flush()
                        fake.stalled.set()
                        time.sleep(3.0)
                        self.wfile.write(rest.encode("utf-8"))
                    except OSError:  # the client went away (the turn was cancelled)
                        pass
                    return
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def text(
        self,
        *pieces: str,
        prompt: int = 30,
        completion: int = 7,
        cached: int = 0,
        reasoning: int = 0,
        finish: str = "stop",
    ) -> FakeOpenAI:
        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": p}) for p in pieces]
        chunks += [chunk(finish=finish), usage_chunk(prompt, completion, cached=cached, reasoning=reasoning)]
        self.replies.append((200, "text/event-stream", sse_body(*chunks)))
        return self

    def tool_call(self, name: str, arguments: str, *, call_id: str = "call_1") -> FakeOpenAI:
        call = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        chunks = [
            chunk({"role": "assistant", "tool_calls": [call]}),
            chunk(finish="tool_calls"),
            usage_chunk(12, 3),
        ]
        self.replies.append((200, "text/event-stream", sse_body(*chunks)))
        return self

    def error(self, status: int, message: str) -> FakeOpenAI:
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}})
        self.replies.append((status, "application/json", body))
        return self


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        fake.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real keys or user config leak in; the default database lands under tmp_path."""
    for name in ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "ANTHROPIC_API_KEY", "LASH_DB", "LASH_MODEL",
                 "LASH_CONFIG", "LASH_PLUGINS", "LASH_DISABLE_PLUGINS", "LASH_STRICT_PLUGINS",
                 "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OPENROUTER_BASE_URL", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "lash.db"


def lash(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env, input=input, prog_name="lash")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def run_json(server: FakeOpenAI, db: Path, prompt: str, *extra: str) -> dict[str, Any]:
    result = lash("run", "--base-url", server.url, "--model", MODEL, "--db", str(db), "--json", *extra, prompt)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# ------------------------------------------------------------------------------- lash run


def test_run_json_shape_and_values(server: FakeOpenAI, db: Path) -> None:
    server.text("Hello", " there", prompt=30, completion=7, cached=10, reasoning=2)
    result = lash(
        "run", "--base-url", server.url, "--model", MODEL, "--db", str(db),
        "--max-tokens", "50", "--max-turns", "3", "--system", "Be brief.", "--json", "Say hello",
    )
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)  # exactly one JSON document
    assert set(out) == {"session_id", "turn_id", "outcome", "text", "usage", "tool_calls"}
    assert out["session_id"] and out["turn_id"]
    assert out["outcome"] == {"type": "finished", "output": "assistant_message", "text": "Hello there"}
    assert out["text"] == "Hello there"
    assert out["usage"] == {
        "input_tokens": 20,  # prompt_tokens - cached_tokens
        "output_tokens": 7,
        "cache_read_input_tokens": 10,
        "cache_write_input_tokens": 0,
        "reasoning_output_tokens": 2,
    }
    assert out["tool_calls"] == []
    assert result.stderr == ""
    (body,) = server.bodies
    assert body["model"] == MODEL
    assert body["stream"] is True
    assert body["max_tokens"] == 50
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"},
    ]
    assert "authorization" not in server.headers[0]  # base URL and no key: no auth header


def test_run_streams_prose_to_stdout_and_summary_to_stderr(server: FakeOpenAI, db: Path) -> None:
    server.text("Hel", "lo ", "world", prompt=11, completion=3)
    result = lash("run", "--base-url", server.url, "--db", str(db), "Say hello")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hello world\n"
    summary = one_line(result.stderr)
    assert "finished" in summary and "11 in" in summary and "3 out" in summary
    (sid,) = _sessions(db)
    assert summary.endswith(f"session {sid}")
    assert server.bodies[0]["model"] == "default"  # --base-url without --model


def _sessions(db: Path) -> list[str]:
    store = SqliteStore(db)
    try:
        return [s.session_id for s in store.list_sessions()]
    finally:
        store.close()


def test_tool_calls_in_json_and_on_stderr(server: FakeOpenAI, db: Path) -> None:
    server.tool_call("lookup", '{"q": "x"}', call_id="call_9").text("done", prompt=20, completion=2)
    out = run_json(server, db, "use a tool")
    assert out["outcome"]["type"] == "finished"
    assert out["text"] == "done"
    (call,) = out["tool_calls"]
    assert call["id"] == "call_9" and call["name"] == "lookup" and call["arguments"] == '{"q": "x"}'
    assert call["is_error"] is True and call["output"]  # the CLI has no tool named lookup
    assert out["usage"]["input_tokens"] == 32 and out["usage"]["output_tokens"] == 5
    # the second request carries the call and its result
    roles = [m["role"] for m in server.bodies[1]["messages"]]
    assert roles == ["user", "assistant", "tool"]

    server.tool_call("lookup", "{}", call_id="call_10").text("ok")
    result = lash("run", "--base-url", server.url, "--db", str(db), "again")
    assert result.exit_code == 0
    assert "→ lookup({})" in result.stderr
    assert "lookup" in result.stderr.splitlines()[1]


def test_max_output_tokens_is_an_answer(server: FakeOpenAI, db: Path) -> None:
    server.text("partial", finish="length")
    out = run_json(server, db, "write a lot", "--max-tokens", "1")
    assert out["outcome"]["type"] == "stopped"
    assert out["outcome"]["reason"] == "max_output_tokens"
    assert out["text"] == "partial"


def test_session_continues_with_session_option(server: FakeOpenAI, db: Path) -> None:
    server.text("First answer").text("Second answer")
    first = run_json(server, db, "first question")
    second = run_json(server, db, "second question", "--session", first["session_id"])
    assert second["session_id"] == first["session_id"]
    assert second["turn_id"] != first["turn_id"]
    assert server.bodies[1]["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "second question"},
    ]
    assert _sessions(db) == [first["session_id"]]


# ------------------------------------------------------------------------------- errors


def test_missing_key_exits_2_with_one_line(db: Path) -> None:
    result = lash("run", "--model", "gpt-4o-mini", "--db", str(db), "hi")
    assert result.exit_code == 2
    assert one_line(result.stderr) == (
        "error: set OPENAI_API_KEY, or pass --base-url for a local OpenAI-compatible server"
    )
    assert result.stdout == ""
    assert not db.exists()  # nothing was created

    result = lash("run", "--provider", "openrouter", "--model", "m", "--db", str(db), "hi")
    assert result.exit_code == 2
    assert "OPENROUTER_API_KEY" in one_line(result.stderr)

    result = lash("run", "--db", str(db), "hi", env={"OPENAI_API_KEY": SECRET})
    assert result.exit_code == 2
    assert "LASH_MODEL" in one_line(result.stderr)
    assert SECRET not in result.output


def test_unknown_provider_exits_2() -> None:
    result = lash("run", "--provider", "nope", "--model", "m", "hi")
    assert result.exit_code == 2
    assert "nope" in result.stderr
    with pytest.raises(ConfigError, match="unknown provider"):
        build_provider("nope", None, {})


def test_every_provider_builds_with_a_base_url() -> None:
    import anyio

    async def check() -> None:
        for name in PROVIDERS:
            client = build_provider(name, "http://127.0.0.1:9/v1", {})
            await client.aclose()
            with pytest.raises(ConfigError, match=PROVIDERS[name].key_env):
                build_provider(name, None, {})

    anyio.run(check)


def test_default_provider_is_openrouter_with_its_key(server: FakeOpenAI, db: Path) -> None:
    # with --base-url the default stays openai, and the OpenAI key (if any) goes to that server
    server.text("hi")
    result = lash(
        "run", "--base-url", server.url, "--db", str(db), "hi",
        env={"OPENROUTER_API_KEY": "or-key", "OPENAI_API_KEY": SECRET},
    )
    assert result.exit_code == 0, result.stderr
    assert server.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in result.output


def test_http_400_exits_1_without_retry(server: FakeOpenAI, db: Path) -> None:
    server.error(400, "model 'x' does not exist")
    result = lash("run", "--base-url", server.url, "--db", str(db), "hi")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "400" in lines[-1] and "does not exist" in lines[-1]
    assert "Traceback" not in result.output
    assert len(server.bodies) == 1  # 400 is not retried

    server.error(400, "bad request")
    result = lash("run", "--base-url", server.url, "--db", str(db), "--json", "hi")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["outcome"]["type"] == "stopped" and out["outcome"]["reason"] == "provider_error"
    assert "400" in out["outcome"]["detail"]
    assert one_line(result.stderr).startswith("error: turn stopped (provider_error)")


def test_retryable_status_is_retried_and_shown(server: FakeOpenAI, db: Path) -> None:
    server.error(503, "overloaded").text("recovered")
    result = lash("run", "--base-url", server.url, "--db", str(db), "hi")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "recovered\n"
    retry, summary = result.stderr.strip().splitlines()
    assert retry.startswith("retrying in ") and "attempt 1/4" in retry and "503" in retry
    assert summary.startswith("finished")
    assert len(server.bodies) == 2


def test_http_401_exits_1_and_never_prints_the_key(server: FakeOpenAI, db: Path) -> None:
    server.error(401, "invalid api key")
    result = lash("run", "--base-url", server.url, "--db", str(db), "hi", env={"OPENAI_API_KEY": SECRET})
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "401" in last
    assert SECRET not in result.output
    assert server.headers[0]["authorization"] == f"Bearer {SECRET}"


def _newer_db(db: Path) -> None:
    SqliteStore(db).close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE lash_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()


def test_newer_database_exits_1(server: FakeOpenAI, db: Path) -> None:
    _newer_db(db)
    for args in (
        ("sessions", "list", "--db", str(db)),
        ("usage", "--db", str(db)),
        ("run", "--base-url", server.url, "--db", str(db), "hi"),
    ):
        result = lash(*args)
        assert result.exit_code == 1, args
        line = one_line(result.stderr)
        assert line.startswith("error: ") and "newer lash" in line and "schema version 99" in line
    assert server.bodies == []


def test_corrupt_database_exits_1(db: Path) -> None:
    db.write_bytes(b"this is not sqlite at all" * 100)
    result = lash("sessions", "list", "--db", str(db))
    assert result.exit_code == 1
    assert "not a SQLite database" in one_line(result.stderr)


def test_unknown_session(db: Path, server: FakeOpenAI) -> None:
    server.text("hi")
    run_json(server, db, "hi")
    for args in (("sessions", "show", "nope"), ("usage", "nope")):
        result = lash(*args, "--db", str(db))
        assert result.exit_code == 1
        assert one_line(result.stderr).startswith("error: no session 'nope'")


# ------------------------------------------------------------------------------- sessions


def test_sessions_list_and_show(server: FakeOpenAI, db: Path) -> None:
    server.text("Paris.").text("About 2.1 million.")
    first = run_json(server, db, "Capital of France?")
    sid = first["session_id"]
    run_json(server, db, "Population?", "--session", sid)

    result = lash("sessions", "list", "--db", str(db), "--json")
    assert result.exit_code == 0
    (row,) = json.loads(result.stdout)
    assert row["session_id"] == sid and row["turns"] == 2 and row["pending_inputs"] == 0
    assert row["updated_at"] >= row["created_at"] > 0

    result = lash("sessions", "list", "--db", str(db))
    assert result.exit_code == 0
    assert sid in result.stdout and "turns" in result.stdout

    result = lash("sessions", "show", sid, "--db", str(db), "--json")
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["session_id"] == sid and shown["head_revision"] == 2
    assert [t["turn_id"] for t in shown["turns"]][0] == first["turn_id"]
    assert [t["outcome"]["type"] for t in shown["turns"]] == ["finished", "finished"]
    assert [[(m["role"], m["text"]) for m in t["messages"]] for t in shown["turns"]] == [
        [("user", "Capital of France?"), ("assistant", "Paris.")],
        [("user", "Population?"), ("assistant", "About 2.1 million.")],
    ]
    assert shown["pending_inputs"] == []

    result = lash("sessions", "show", sid, "--db", str(db))
    assert result.exit_code == 0
    text = result.stdout
    assert f"turn 1 · {first['turn_id']} · finished" in text
    assert "  user: Capital of France?" in text and "  assistant: Paris." in text
    assert "pending" not in text


def test_sessions_show_tool_calls(server: FakeOpenAI, db: Path) -> None:
    server.tool_call("lookup", '{"q": 1}', call_id="call_7").text("done")
    sid = run_json(server, db, "go")["session_id"]
    shown = json.loads(lash("sessions", "show", sid, "--db", str(db), "--json").stdout)
    messages = shown["turns"][0]["messages"]
    assert messages[1]["tool_calls"] == [{"id": "call_7", "name": "lookup", "arguments": '{"q": 1}'}]
    (res,) = messages[2]["tool_results"]
    assert res["call_id"] == "call_7" and res["is_error"] is True
    text = lash("sessions", "show", sid, "--db", str(db)).stdout
    assert '  assistant → lookup({"q": 1}) [call_7]' in text
    assert "  tool ✗ lookup [call_7]: " in text


def test_sessions_show_pending_input(db: Path) -> None:
    store = SqliteStore(db)
    try:
        store.open_session("s1", mode="standard", frame_id="f0", now=1000.0)
        store.record_input(
            PendingInput(session_id="s1", turn_id="t-crashed", message=Message.user("lost question"), created_at=1001.0)
        )
    finally:
        store.close()

    shown = json.loads(lash("sessions", "show", "s1", "--db", str(db), "--json").stdout)
    assert shown["turns"] == []
    assert shown["pending_inputs"] == [
        {"turn_id": "t-crashed", "created_at": 1001.0, "message": {"role": "user", "text": "lost question"}}
    ]
    text = lash("sessions", "show", "s1", "--db", str(db)).stdout
    assert "pending inputs (1, not committed):" in text
    assert "turn t-crashed" in text and "user: lost question" in text

    (row,) = json.loads(lash("sessions", "list", "--db", str(db), "--json").stdout)
    assert row == {"session_id": "s1", "turns": 0, "created_at": 1000.0, "updated_at": 1000.0, "pending_inputs": 1}


def test_read_commands_on_a_missing_database_create_nothing(db: Path) -> None:
    assert json.loads(lash("sessions", "list", "--db", str(db), "--json").stdout) == []
    assert json.loads(lash("usage", "--db", str(db), "--json").stdout)["total"]["input_tokens"] == 0
    assert not db.exists()


# ------------------------------------------------------------------------------- usage


def test_usage_shows_the_requested_model_and_the_served_one_as_a_detail(server: FakeOpenAI, db: Path) -> None:
    """The server reports serving ``fake-model`` (like a dated snapshot, or llama.cpp's file path)
    for a request that asked for ``my-alias``: the ledger is keyed by what was asked for."""
    server.text("a", prompt=30, completion=7)
    result = lash("run", "--base-url", server.url, "--model", "my-alias", "--db", str(db), "--json", "hi")
    assert result.exit_code == 0, result.stderr
    sid = json.loads(result.stdout)["session_id"]
    report = json.loads(lash("usage", sid, "--db", str(db), "--json").stdout)
    (row,) = report["by_source_model"]
    assert (row["model"], row["served_models"], row["calls"]) == ("my-alias", [MODEL], 1)
    assert list(report["by_model"]) == ["my-alias"]
    lines = lash("usage", sid, "--db", str(db)).stdout.splitlines()
    (at,) = [i for i, line in enumerate(lines) if "my-alias" in line]
    assert f"served: {MODEL}" in lines[at + 1]


def test_usage_table_and_json(server: FakeOpenAI, db: Path) -> None:
    server.text("a", prompt=30, completion=7, cached=10, reasoning=2).text("b", prompt=5, completion=1)
    server.text("c", prompt=100, completion=50)
    sid = run_json(server, db, "one")["session_id"]
    run_json(server, db, "two", "--session", sid)
    other = run_json(server, db, "three")["session_id"]

    result = lash("usage", sid, "--db", str(db), "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["total"] == {
        "input_tokens": 25,
        "output_tokens": 8,
        "cache_read_input_tokens": 10,
        "cache_write_input_tokens": 0,
        "reasoning_output_tokens": 2,
    }
    assert report["by_source_model"] == [
        {"source": "turn", "model": MODEL, "calls": 2, **report["total"]},
    ]
    assert report["by_model"] == {MODEL: report["total"]}

    everything = json.loads(lash("usage", "--db", str(db), "--json").stdout)
    assert everything["total"]["input_tokens"] == 125
    assert everything["total"]["output_tokens"] == 58
    assert everything["by_source_model"][0]["calls"] == 3

    table = lash("usage", sid, "--db", str(db)).stdout
    assert f"usage: session {sid}" in table
    for header in ("source", "model", "input", "output", "cache read", "cache write", "reasoning", "calls"):
        assert header in table
    (row,) = [line for line in table.splitlines() if MODEL in line]
    assert row.split("│")[1:-1] and [c.strip() for c in row.split("│")[1:-1]] == [
        "turn", MODEL, "25", "8", "10", "0", "2", "2"
    ]
    all_table = lash("usage", "--db", str(db)).stdout
    assert "all sessions (2)" in all_table and "125" in all_table
    assert other != sid


# ------------------------------------------------------------------------------- config, env


def test_lash_db_env_is_honoured(server: FakeOpenAI, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "from-env.db"
    server.text("hi")
    result = lash("run", "--base-url", server.url, "--json", "hi", env={"LASH_DB": str(path)})
    assert result.exit_code == 0, result.stderr
    sid = json.loads(result.stdout)["session_id"]
    assert path.exists()  # parent directories were created
    rows = json.loads(lash("sessions", "list", "--json", env={"LASH_DB": str(path)}).stdout)
    assert [r["session_id"] for r in rows] == [sid]
    assert not (tmp_path / "xdg").exists()


def test_default_db_honours_xdg_data_home(server: FakeOpenAI, tmp_path: Path) -> None:
    server.text("hi")
    assert lash("run", "--base-url", server.url, "hi").exit_code == 0
    assert (tmp_path / "xdg" / "lash" / "lash.db").exists()
    assert default_db_path({"XDG_DATA_HOME": "relative/ignored"}) == Path.home() / ".local/share/lash/lash.db"


def test_lash_model_env(server: FakeOpenAI, db: Path) -> None:
    server.text("hi")
    result = lash("run", "--base-url", server.url, "--db", str(db), "hi", env={"LASH_MODEL": "env-model"})
    assert result.exit_code == 0
    assert server.bodies[0]["model"] == "env-model"


# ------------------------------------------------------------------------------- chat


def test_chat_streams_turns_and_prints_usage(server: FakeOpenAI, db: Path) -> None:
    server.text("Hi!", prompt=9, completion=2).text("Bye.", prompt=20, completion=3)
    result = lash(
        "chat", "--base-url", server.url, "--model", MODEL, "--db", str(db),
        input="hello\n\n/usage\n/nope\ngoodbye\n/exit\n",
    )
    assert result.exit_code == 0, result.stderr
    assert "Hi!\n" in result.stdout and "Bye.\n" in result.stdout
    assert "usage: session" in result.stdout
    assert "unknown command /nope" in result.stderr
    (sid,) = _sessions(db)
    assert result.stderr.count(f"session {sid}") >= 3  # banner + two summaries
    assert server.bodies[1]["messages"][:2] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi!"},
    ]
    shown = json.loads(lash("sessions", "show", sid, "--db", str(db), "--json").stdout)
    assert len(shown["turns"]) == 2


def test_chat_quits_on_eof_and_reports_stopped_turns(server: FakeOpenAI, db: Path) -> None:
    server.error(400, "nope")
    result = lash("chat", "--base-url", server.url, "--db", str(db), input="hello\n")
    assert result.exit_code == 0
    assert "error: turn stopped (provider_error)" in result.stderr and "400" in result.stderr


def _interrupt_when_stalled(server: FakeOpenAI) -> threading.Thread:
    """Press Ctrl-C (SIGINT to this process) once the server is mid-stream."""

    def press() -> None:
        if server.stalled.wait(timeout=10):
            time.sleep(0.3)  # let the first delta reach the CLI
            os.kill(os.getpid(), signal.SIGINT)

    server.stall.set()
    thread = threading.Thread(target=press, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_cancels_the_chat_turn_not_the_process(server: FakeOpenAI, db: Path) -> None:
    server.text("Partial ", "answer never finished")
    presser = _interrupt_when_stalled(server)
    result = lash("chat", "--base-url", server.url, "--db", str(db), input="tell me\n")
    presser.join(timeout=10)
    assert result.exit_code == 0, result.stderr
    assert "Partial" in result.stdout  # streamed before the cancel
    assert "stopped (cancelled)" in result.stderr
    assert "usage unknown" in result.stderr  # the provider never reported usage: not "0 in, 0 out"
    assert "\ncancelled\n" in result.stderr and "error:" not in result.stderr
    (sid,) = _sessions(db)
    shown = json.loads(lash("sessions", "show", sid, "--db", str(db), "--json").stdout)
    (turn,) = shown["turns"]
    assert turn["outcome"]["type"] == "stopped" and turn["outcome"]["reason"] == "cancelled"
    assert turn["messages"][0] == {"role": "user", "text": "tell me"}


def test_ctrl_c_cancels_a_run_turn_and_commits_it(server: FakeOpenAI, db: Path) -> None:
    server.text("Partial ", "answer never finished")
    presser = _interrupt_when_stalled(server)
    result = lash("run", "--base-url", server.url, "--db", str(db), "--json", "tell me")
    presser.join(timeout=10)
    assert result.exit_code == 130
    out = json.loads(result.stdout)
    assert out["outcome"]["reason"] == "cancelled"
    assert one_line(result.stderr) == "cancelled"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


# ------------------------------------------------------------------------------- lash run --output-schema

CITY_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["name", "population"],
}


def test_output_schema_prints_the_value_as_json(server: FakeOpenAI, db: Path, tmp_path: Path) -> None:
    schema_file = tmp_path / "city.json"
    schema_file.write_text(json.dumps(CITY_SCHEMA))
    server.tool_call("final_result", '{"name": "Oslo", "population": "lots"}', call_id="c1")
    server.tool_call("final_result", '{"name": "Oslo", "population": 709000}', call_id="c2")
    result = lash("run", "--base-url", server.url, "--db", str(db), "--output-schema", str(schema_file), "city?")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"name": "Oslo", "population": 709000}  # stdout: the value only
    assert "✗ final_result" in result.stderr  # the invalid first call, fixed by the model
    # by name: an installed plugin (e.g. lash-subagents) may add tools of its own
    (tool,) = [t for t in server.bodies[0]["tools"] if t["function"]["name"] == "final_result"]
    assert tool["function"]["parameters"] == CITY_SCHEMA
    assert [m["role"] for m in server.bodies[1]["messages"]] == ["user", "assistant", "tool"]


def test_output_schema_value_in_json_and_wrapped_schemas(server: FakeOpenAI, db: Path, tmp_path: Path) -> None:
    schema_file = tmp_path / "list.json"
    schema_file.write_text('{"type": "array", "items": {"type": "string"}}')
    server.tool_call("final_result", '{"value": ["a", "b"]}')
    out = run_json(server, db, "letters?", "--output-schema", str(schema_file))
    assert out["value"] == ["a", "b"]
    assert out["outcome"] == {"type": "finished", "output": "final_value", "value": ["a", "b"], "text": ""}
    [final] = [t for t in server.bodies[0]["tools"] if t["function"]["name"] == "final_result"]
    parameters = final["function"]["parameters"]
    assert parameters["properties"] == {"value": {"type": "array", "items": {"type": "string"}}}


def test_output_schema_prose_twice_exits_1(server: FakeOpenAI, db: Path, tmp_path: Path) -> None:
    schema_file = tmp_path / "n.json"
    schema_file.write_text('{"type": "integer"}')
    server.text("Four.").text("I said four.")
    result = lash(
        "run", "--base-url", server.url, "--db", str(db), "--output-schema", str(schema_file), "--json", "2+2?"
    )
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["value"] is None and out["outcome"]["reason"] == "no_final_value"
    assert one_line(result.stderr).startswith("error: turn stopped (no_final_value)")
    assert "final_result" in server.bodies[1]["messages"][-1]["content"]  # the one reminder


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read it"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"type": "strng"}', "not a valid JSON Schema"),
    ],
)
def test_bad_output_schema_file_is_one_line(db: Path, tmp_path: Path, content: str | None, words: str) -> None:
    schema_file = tmp_path / "schema.json"
    if content is not None:
        schema_file.write_text(content)
    result = lash("run", "--base-url", "http://127.0.0.1:9/v1", "--db", str(db), "--output-schema",
                  str(schema_file), "x")
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert line.startswith(f"error: --output-schema {schema_file}: ") and words in line
    assert not db.exists()  # refused before anything was opened


# ------------------------------------------------------------------------------- help, version


@pytest.mark.parametrize(
    "args",
    [(), ("run",), ("chat",), ("sessions",), ("sessions", "list"), ("sessions", "show"), ("usage",)],
)
def test_help_everywhere_has_an_example(args: tuple[str, ...]) -> None:
    result = lash(*args, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert "lash" in result.stdout


def test_version() -> None:
    result = lash("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("lash, version ")


def test_python_dash_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lash_kernel", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("lash, version ")


# ------------------------------------------------------------------------------- lash.toml


def test_lash_toml_supplies_provider_model_store_and_prompt(server: FakeOpenAI, tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'provider = "openai"\nbase_url = "{server.url}"\nmodel = "{MODEL}"\nstore = "data/agent.db"\n'
        'prompt = "You are terse."\nmax_turns = 3\n'
    )
    server.text("ok", prompt=5, completion=1)
    result = lash("--config", str(config), "run", "--json", "hi")
    assert result.exit_code == 0, result.stderr
    body = server.bodies[0]
    assert body["model"] == MODEL
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert _sessions(tmp_path / "data" / "agent.db") == [json.loads(result.stdout)["session_id"]]
    listed = lash("--config", str(config), "sessions", "list", "--json")
    assert [s["session_id"] for s in json.loads(listed.stdout)] == [json.loads(result.stdout)["session_id"]]


def test_flags_override_lash_toml(server: FakeOpenAI, tmp_path: Path, db: Path) -> None:
    config = tmp_path / "lash.toml"
    config.write_text(f'base_url = "{server.url}"\nmodel = "from-file"\n')
    server.text("ok")
    result = lash("--config", str(config), "run", "--model", "from-flag", "--db", str(db), "hi")
    assert result.exit_code == 0, result.stderr
    assert server.bodies[0]["model"] == "from-flag"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('modle = "x"\n', "unknown key 'modle'"),
        ("max_turns = \"three\"\n", "key 'max_turns': expected an integer, got str 'three'"),
        ("[plugins]\nenabled = \"tracing\"\n", "[plugins] key 'enabled'"),
        ("[plugins]\nnot_a_table = 3\n", "[plugins] key 'not_a_table': expected a table [plugins.not_a_table]"),
        ("[plugins.nobody]\nx = 1\n", "[plugins.nobody]: no loaded plugin is named 'nobody'"),
        ("model = \n", "not valid TOML"),
    ],
)
def test_bad_lash_toml_exits_2_naming_file_table_and_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "lash.toml"
    config.write_text(text)
    result = lash("--config", str(config), "tools", "list")
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert line.startswith(f"error: {config}") and message in line


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    result = lash("--config", str(tmp_path / "nope.toml"), "plugins")
    assert result.exit_code == 2
    assert one_line(result.stderr) == f"error: {tmp_path / 'nope.toml'}: config file not found"


# ------------------------------------------------------------------------------- one-line errors
#
# Each situation is produced for real and driven through the real CLI; every error must come
# out as exactly one "error: ..." line (no traceback), with exit status 1 (2 for configuration).

CONFLICT_PLUGIN = '''
"""Test plugin: a tool that takes the running session's lease over (as a writer whose clock
says it expired would) and commits a turn from a second core."""
import os
import time

from lash_kernel import LashCore, SqliteStore
from lash_kernel.plugin import ToolContext, hookimpl, tool
from lash_kernel.testing import ScriptedModel


@tool
async def interfere(ctx: ToolContext) -> str:
    """Take the lease over and commit one turn from a second core: another writer, mid-turn."""
    model = ScriptedModel().enqueue_text("the other writer was here")
    store = SqliteStore(os.environ["LASH_DB"])
    try:
        later = time.time() + 3600
        store.release_lease(store.claim_lease(ctx.session_id, owner="thief:1", token="t", ttl_s=1, now=later))
        with LashCore(model_client=model, model="scripted", store=store, entry_points=False) as core:
            await core.session(ctx.session_id).turn("meanwhile").run()
    finally:
        store.close()
    return "done"


@hookimpl
def lash_register_tools(registry):
    registry.add(interfere)
'''


@pytest.fixture
def conflict_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install (on sys.path, with a dist-info and a ``lash.plugins`` entry point) a plugin whose
    ``interfere`` tool commits to the running session from a second core."""
    site = tmp_path / "site"
    info = site / "lash_conflict_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "lash_conflict_plugin.py").write_text(CONFLICT_PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lash-conflict-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lash.plugins]\nconflict = lash_conflict_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "lash_conflict_plugin", raising=False)


def assert_one_error_line(text: str, *, starts: str) -> str:
    """The last stderr line is the error, it starts with ``starts``, and nothing is a traceback."""
    assert "Traceback" not in text
    last = text.strip().splitlines()[-1]
    assert last.startswith(starts), text
    assert sum(line.startswith("error: ") for line in text.splitlines()) == 1, text
    return last


def test_a_lost_lease_is_one_line(server: FakeOpenAI, db: Path, conflict_plugin: None) -> None:
    server.tool_call("interfere", "{}").text("my answer")
    result = lash("run", "--base-url", server.url, "--model", MODEL, "--db", str(db), "go", env={"LASH_DB": str(db)})
    assert result.exit_code == 1
    line = assert_one_error_line(result.stderr, starts="error: ")
    assert "lease" in line and "another writer took this session over; this turn was not saved" in line
    (sid,) = _sessions(db)
    turns = json.loads(lash("sessions", "show", sid, "--db", str(db), "--json").stdout)["turns"]
    assert [t["messages"][0]["text"] for t in turns] == ["meanwhile"]  # only the other writer's turn


def test_chat_prints_a_lost_lease_and_carries_on(server: FakeOpenAI, db: Path, conflict_plugin: None) -> None:
    server.tool_call("interfere", "{}").text("lost answer").text("second answer")
    result = lash(
        "chat", "--base-url", server.url, "--model", MODEL, "--db", str(db),
        input="first\nsecond\n", env={"LASH_DB": str(db)},
    )
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.output
    (error,) = [line for line in result.stderr.splitlines() if "error: " in line]
    assert "another writer took this session over" in error
    assert "second answer\n" in result.stdout
    (sid,) = _sessions(db)
    turns = json.loads(lash("sessions", "show", sid, "--db", str(db), "--json").stdout)["turns"]
    assert [t["messages"][0]["text"] for t in turns] == ["meanwhile", "second"]


class _FailingCommitStore(SqliteStore):
    """A real SQLite store whose commit fails with ``error`` (set on the class by the test)."""

    error: BaseException = RuntimeError("unset")

    def commit_turn(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


def _failing_commit(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    import lash_kernel.cli.turns

    class Store(_FailingCommitStore):
        pass

    Store.error = error
    monkeypatch.setattr(lash_kernel.cli.turns, "open_store", lambda path, create=True: Store(path))


def test_os_error_from_the_store_is_one_line(server: FakeOpenAI, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    _failing_commit(monkeypatch, OSError(errno.ENOSPC, "No space left on device", str(db)))
    server.text("hi")
    result = lash("run", "--base-url", server.url, "--model", MODEL, "--db", str(db), "hi")
    assert result.exit_code == 1
    assert assert_one_error_line(result.stderr, starts="error: ") == f"error: disk full: {db}"

    _failing_commit(monkeypatch, PermissionError(errno.EACCES, "Permission denied", str(db)))
    server.text("hi")
    result = lash("run", "--base-url", server.url, "--model", MODEL, "--db", str(db), "hi")
    assert result.exit_code == 1
    assert assert_one_error_line(result.stderr, starts="error: ") == f"error: permission denied: {db}"


def test_a_bug_is_one_line_with_a_debug_hint(server: FakeOpenAI, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_commit(monkeypatch, ZeroDivisionError("boom"))
    server.text("hi")
    result = lash("run", "--base-url", server.url, "--model", MODEL, "--db", str(db), "hi")
    assert result.exit_code == 1
    line = assert_one_error_line(result.stderr, starts="error: ")
    assert line == "error: internal error: ZeroDivisionError: boom (set LASH_DEBUG=1 for the traceback)"

    server.text("hi")
    result = lash("run", "--base-url", server.url, "--model", MODEL, "--db", str(db), "hi", env={"LASH_DEBUG": "1"})
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "ZeroDivisionError: boom" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == line

    server.text("one").text("two")
    result = lash("chat", "--base-url", server.url, "--model", MODEL, "--db", str(db), input="a\nb\n")
    assert result.exit_code == 0  # chat reports the bug and reads the next line
    assert result.stderr.count("error: internal error: ZeroDivisionError: boom") == 2


def test_bad_base_url_is_rejected_up_front(db: Path) -> None:
    for url, problem in [
        ("not a url", "'not a url' is not an http(s) URL"),
        ("ftp://example.com/v1", "'ftp://example.com/v1' is not an http(s) URL"),
        ("http://", "'http://' has no host"),
        ("http://127.0.0.1:99999/v1", "'http://127.0.0.1:99999/v1' has an invalid port"),
    ]:
        result = lash("run", "--base-url", url, "--model", MODEL, "--db", str(db), "hi")
        assert result.exit_code == 2, url
        assert one_line(result.stderr).startswith(f"error: --base-url: {problem}"), result.stderr
    assert not db.exists()  # rejected before the store was opened, let alone a request retried


def _can_mount_tmpfs(where: Path) -> bool:
    where.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)], capture_output=True, timeout=30
    )
    return proc.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (needs root, as in CI); skipped where mounting is not allowed."""
    where = tmp_path / "small-disk"
    try:
        mounted = _can_mount_tmpfs(where)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); test_os_error_from_the_store_is_one_line covers ENOSPC")
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (not root?); test_os_error_from_the_store_is_one_line covers ENOSPC")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True, timeout=30)


def _fill(disk: Path) -> None:
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as exc:
        assert exc.errno == 28  # ENOSPC: the disk is full now
    finally:
        os.close(fd)


def test_full_disk_is_one_line(server: FakeOpenAI, small_disk: Path) -> None:
    db = small_disk / "lash.db"
    server.text("first")
    sid = run_json(server, db, "first")["session_id"]
    _fill(small_disk)
    server.text("second")
    result = lash("run", "--base-url", server.url, "--model", MODEL, "--db", str(db), "--session", sid, "second")
    assert result.exit_code == 1
    line = assert_one_error_line(result.stderr, starts="error: ")
    assert line.startswith(f"error: {db}: ") and "disk full" in line

    server.text("third")
    result = lash("chat", "--base-url", server.url, "--model", MODEL, "--db", str(db), "--session", sid, input="x\n")
    assert "Traceback" not in result.output
    assert f"error: {db}: " in result.stderr and "disk full" in result.stderr


def _drop_root_file_powers() -> None:
    """In the child before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    bounding set, so the command runs as root but obeys file permission bits."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def bound_by_permissions(
    cwd: Path, *args: str | bytes, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lash_kernel ARGS`` in ``cwd`` so that file permission bits bind: as is for
    a normal user; as root without the capabilities that let root ignore them (tests run as root
    in CI). ``preexec`` runs in the child after the chdir. Skips where that cannot be arranged."""

    def child() -> None:
        if preexec is not None:
            preexec()
        if os.geteuid() == 0:
            _drop_root_file_powers()

    env = {**os.environ, "COLUMNS": "200"}
    try:
        return subprocess.run(
            [sys.executable, "-m", "lash_kernel", *args], cwd=cwd, env=env, capture_output=True, text=True,
            timeout=120, preexec_fn=child,
        )
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot run a command bound by file permissions here: {exc}")


def test_read_only_database_file_is_permission_denied(server: FakeOpenAI, db: Path) -> None:
    server.text("first")
    sid = run_json(server, db, "first")["session_id"]
    db.chmod(0o444)  # a read-only file in a writable directory
    server.text("second")
    proc = bound_by_permissions(db.parent, "run", "--base-url", server.url, "--model", MODEL, "--db", str(db), "x")
    assert proc.returncode == 1, proc.stderr
    line = assert_one_error_line(proc.stderr, starts="error: ")
    assert line.startswith(f"error: {db}: ") and "permission denied: the database file is not writable" in line
    proc = bound_by_permissions(db.parent, "run", "--base-url", server.url, "--db", str(db), "--session", sid, "y")
    assert proc.returncode == 1
    again = assert_one_error_line(proc.stderr, starts="error: ")
    assert again.startswith(f"error: {db}: ") and "permission denied: the database file is not writable" in again
    assert server.bodies[1:] == []  # refused before the model was asked


def test_unsearchable_working_directory_is_permission_denied(tmp_path: Path) -> None:
    cwd = tmp_path / "locked"
    cwd.mkdir()
    (cwd / "lash.toml").write_text('model = "from-the-file"\n')

    def lock() -> None:
        os.chmod(".", 0)  # after the chdir: the command starts in a directory it cannot search

    try:
        proc = bound_by_permissions(cwd, "run", "--base-url", "http://127.0.0.1:9/v1", "hi", preexec=lock)
        assert proc.returncode == 2, proc.stderr
        line = assert_one_error_line(proc.stderr, starts="error: ")
        assert line.startswith(f"error: permission denied: {cwd / 'lash.toml'} (cannot look for lash.toml")
        assert "--config" in line
        help_proc = bound_by_permissions(cwd, "--help", preexec=lock)
        assert help_proc.returncode == 0 and "Usage:" in help_proc.stdout  # help still works there
    finally:
        cwd.chmod(0o755)


# ------------------------------------------------------------------------------- invalid Unicode


def test_prompt_and_session_with_an_invalid_utf8_byte_from_argv(server: FakeOpenAI, db: Path) -> None:
    server.text("ok")
    proc = subprocess.run(
        [sys.executable, "-m", "lash_kernel", "run", "--base-url", server.url, "--model", MODEL, "--db", str(db),
         "--json", "--session", b"s\xff", b"caf\xe9?"],
        env={**os.environ, "LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"}, capture_output=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    out = json.loads(proc.stdout)
    assert out["session_id"] == "s\ufffd"
    assert server.bodies[0]["messages"][-1] == {"role": "user", "content": "caf\ufffd?"}


def test_chat_line_with_an_invalid_utf8_byte(server: FakeOpenAI, db: Path) -> None:
    server.text("ok")
    proc = subprocess.run(
        [sys.executable, "-m", "lash_kernel", "chat", "--base-url", server.url, "--model", MODEL, "--db", str(db)],
        input=b"caf\xe9\n", env={**os.environ, "LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"},
        capture_output=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in proc.stderr
    assert server.bodies[0]["messages"][-1] == {"role": "user", "content": "caf\ufffd"}


def test_live_view_survives_split_and_lone_surrogates_in_the_stream(server: FakeOpenAI, db: Path) -> None:
    # a provider that escapes the two halves of one emoji into two chunks, then a lone half
    server.text("\ud83d", "\ude00", " and ", "\ud800")
    result = lash("run", "--base-url", server.url, "--model", MODEL, "--db", str(db), "hi")
    assert result.stdout == "\U0001f600 and \ufffd\n"  # printed live, joined and replaced
    assert "Traceback" not in result.output
    if result.exit_code != 0:  # committing such text is the runtime's part; at worst it fails in one line
        assert_one_error_line(result.stderr, starts="error: ")


# ------------------------------------------------------------------------------- limits in lash.toml


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("request_timeout_s = -5\n", "key 'request_timeout_s': must be a number of seconds > 0, got -5"),
        ("tool_timeout_s = 0\n", "key 'tool_timeout_s': must be a number of seconds > 0, got 0"),
        ("stream_idle_timeout_s = -0.5\n", "key 'stream_idle_timeout_s': must be a number of seconds > 0, got -0.5"),
        ("request_timeout_s = nan\n", "key 'request_timeout_s': must be a number of seconds > 0, got nan"),
        ("request_timeout_s = inf\n", "key 'request_timeout_s': must be a number of seconds > 0, got inf"),
        ("max_turns = -1\n", "key 'max_turns': must be an integer >= 1, got -1"),
        ("max_output_tokens = 0\n", "key 'max_output_tokens': must be an integer >= 1, got 0"),
        ("context_window = 0\n", "key 'context_window': must be an integer >= 1, got 0"),
        ("temperature = -1.0\n", "key 'temperature': must be a number >= 0, got -1"),
        ('base_url = "not a url"\n', "key 'base_url': 'not a url' is not an http(s) URL"),
    ],
)
def test_limits_in_lash_toml_are_validated(server: FakeOpenAI, tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "lash.toml"
    config.write_text(f'model = "{MODEL}"\n' + text)
    result = lash("--config", str(config), "run", "--base-url", server.url, "--db", str(tmp_path / "x.db"), "hi")
    assert result.exit_code == 2
    assert one_line(result.stderr).startswith(f"error: {config} {message}")
    assert server.bodies == []


def test_every_bad_limit_is_reported_at_once(tmp_path: Path) -> None:
    config = tmp_path / "lash.toml"
    config.write_text("request_timeout_s = -5\nmax_turns = 0\n")
    result = lash("--config", str(config), "plugins")
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert "key 'max_turns'" in line and "key 'request_timeout_s'" in line


def test_stream_idle_timeout_s_reaches_lash_core(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inspect

    import lash_kernel.runtime.core
    from lash_kernel.runtime.core import LashCore

    accepted = inspect.signature(LashCore).parameters
    seen: dict[str, Any] = {}

    class Recording(LashCore):
        def __init__(self, **kwargs: Any) -> None:
            seen.update(kwargs)
            super().__init__(**{k: v for k, v in kwargs.items() if k in accepted})

    monkeypatch.setattr(lash_kernel.runtime.core, "LashCore", Recording)  # cli.turns imports it when a turn runs
    config = tmp_path / "lash.toml"
    config.write_text(f'model = "{MODEL}"\nstream_idle_timeout_s = 2.5\nrequest_timeout_s = 30\n')
    server.text("ok")
    result = lash("--config", str(config), "run", "--base-url", server.url, "--db", str(tmp_path / "x.db"), "hi")
    assert result.exit_code == 0, result.stderr
    assert seen["stream_idle_timeout_s"] == 2.5 and seen["request_timeout_s"] == 30.0


def test_stream_idle_timeout_from_lash_toml_retries_a_silent_stream(server: FakeOpenAI, tmp_path: Path) -> None:
    config = tmp_path / "lash.toml"
    config.write_text(f'model = "{MODEL}"\nstream_idle_timeout_s = 0.5\n')
    server.text("never ", "finished").text("recovered")
    server.stall.set()  # the first reply goes silent for 3 s after its first delta
    result = lash("--config", str(config), "run", "--base-url", server.url, "--db", str(tmp_path / "x.db"), "hi")
    assert result.exit_code == 0, result.stderr
    assert "retrying in" in result.stderr
    assert len(server.bodies) == 2
