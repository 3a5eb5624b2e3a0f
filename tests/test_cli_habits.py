"""CLI habits of ``llm`` users (issue 15, item 3): the prompt from stdin, ``-c/--continue``,
``/help`` in chat, a status line until the first token, Ctrl-C ending the turn quietly (a
real process and a real SIGINT), and ``lash sessions delete / export / search``.

The fake OpenAI-compatible server and the ``lash`` runner are ``tests/test_cli.py``'s.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from lash_kernel.activity import AssistantProseDelta, TurnActivity
from lash_kernel.cli.output import LiveView
from lash_kernel.store.sqlite import SqliteStore

_spec = importlib.util.spec_from_file_location("lash_test_cli_helpers", Path(__file__).with_name("test_cli.py"))
assert _spec is not None and _spec.loader is not None
_cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cli)
FakeOpenAI, lash, MODEL = _cli.FakeOpenAI, _cli.lash, _cli.MODEL
clean_env = _cli.clean_env  # autouse: no real keys or user config


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


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "lash.db"


def user_text(server: FakeOpenAI, call: int = 0) -> str:
    return server.bodies[call]["messages"][-1]["content"]


def sessions(db: Path) -> list[str]:
    store = SqliteStore(db)
    try:
        return [s.session_id for s in store.list_sessions()]
    finally:
        store.close()


# ------------------------------------------------------------------------------- stdin


def test_prompt_from_stdin_alone_dash_and_joined_with_the_argument(server, db):
    server.text("a").text("b").text("c")
    base = ("run", "--base-url", server.url, "--db", str(db))
    assert lash(*base, input="Say hi\n").exit_code == 0
    assert user_text(server, 0) == "Say hi\n"
    assert lash(*base, "-", input="from dash").exit_code == 0
    assert user_text(server, 1) == "from dash"
    assert lash(*base, "Summarise this", input="notes line\n").exit_code == 0
    assert user_text(server, 2) == "notes line\n Summarise this"  # llm's rule: stdin, a space, the argument


def test_no_prompt_at_all_is_a_usage_error(db):
    result = lash("run", "--base-url", "http://127.0.0.1:9/v1", "--db", str(db), input="")
    assert result.exit_code == 2
    assert "no prompt" in result.stderr
    assert not db.exists()


# ------------------------------------------------------------------------------- -c / --continue


def test_continue_picks_the_most_recent_session(server, db):
    server.text("one").text("two").text("three")
    base = ("run", "--base-url", server.url, "--db", str(db), "--json")
    first = json.loads(lash(*base, "first").stdout)
    second = json.loads(lash(*base, "second").stdout)
    assert first["session_id"] != second["session_id"]
    third = json.loads(lash(*base, "-c", "third").stdout)
    assert third["session_id"] == second["session_id"]
    assert [m["content"] for m in server.bodies[2]["messages"]] == ["second", "two", "third"]


def test_continue_with_no_session_starts_one(server, db):
    server.text("hello")
    result = lash("run", "--base-url", server.url, "--db", str(db), "--continue", "hi")
    assert result.exit_code == 0, result.stderr
    assert "no session to continue" in result.stderr
    assert len(sessions(db)) == 1


# ------------------------------------------------------------------------------- chat /help


def test_chat_help_lists_the_commands(server, db):
    result = lash("chat", "--base-url", server.url, "--db", str(db), input="/help\n/nope\n/exit\n")
    assert result.exit_code == 0, result.stderr
    for command in ("/help", "/usage", "/compact", "/exit"):
        assert command in result.stderr
    assert "unknown command /nope; try /help" in result.stderr
    assert server.bodies == []


# ------------------------------------------------------------------------------- status line


def _activity(event) -> TurnActivity:
    return TurnActivity(id="t:0", correlation_id="t", seq=0, event=event)


def test_status_line_until_the_first_activity_on_a_terminal_only():
    buf = io.StringIO()
    view = LiveView(Console(file=buf, force_terminal=True, width=80))
    view.waiting()
    assert view._status is not None
    view(_activity(AssistantProseDelta(text="")))
    assert view._status is None  # the first activity ends it
    view.end()
    assert "waiting for the model" in buf.getvalue()

    plain = io.StringIO()
    view = LiveView(Console(file=plain, force_terminal=False))
    view.waiting()
    view.end()
    assert plain.getvalue() == ""  # pipes and files never see a spinner


# ------------------------------------------------------------------------------- Ctrl-C in a real process


def test_sigint_to_a_real_lash_run_ends_the_turn_quietly_with_130(server, db):
    server.text("Partial ", "answer never finished")
    server.stall.set()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASH_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lash_kernel", "run", "--base-url", server.url, "--db", str(db), "tell me"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert server.stalled.wait(timeout=60)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert out in ("", "Partial \n")  # whatever streamed before the signal, never an error
    assert err.strip().splitlines()[-1] == "cancelled"
    assert "error" not in err and "usage unknown" in err
    (sid,) = sessions(db)
    shown = json.loads(lash("sessions", "show", sid, "--db", str(db), "--json").stdout)
    assert shown["turns"][0]["outcome"]["reason"] == "cancelled" and shown["pending_inputs"] == []


# ------------------------------------------------------------------------------- delete / export / search


@pytest.fixture
def two_sessions(server, db) -> tuple[str, str]:
    server.text("Oslo is the capital.").text("Paris, I think.")
    base = ("run", "--base-url", server.url, "--db", str(db), "--json")
    first = json.loads(lash(*base, "Capital of Norway?").stdout)["session_id"]
    second = json.loads(lash(*base, "Capital of France?").stdout)["session_id"]
    return first, second


def test_search_finds_committed_messages_case_insensitively(two_sessions, db):
    first, second = two_sessions
    hits = json.loads(lash("sessions", "search", "OSLO", "--db", str(db), "--json").stdout)
    assert [(h["session_id"], h["role"]) for h in hits] == [(first, "assistant")]
    assert "Oslo is the capital" in hits[0]["snippet"]
    hits = json.loads(lash("sessions", "search", "capital of", "--db", str(db), "--json").stdout)
    assert [h["session_id"] for h in hits] == [second, first]  # most recent session first
    table = lash("sessions", "search", "paris", "--db", str(db))
    assert table.exit_code == 0 and second in table.stdout
    none = lash("sessions", "search", "tokyo", "--db", str(db))
    assert none.exit_code == 0 and "no message contains 'tokyo'" in none.stderr


def test_export_json_and_markdown(two_sessions, db):
    first, _ = two_sessions
    data = json.loads(lash("sessions", "export", first, "--db", str(db)).stdout)
    assert data["session_id"] == first
    (turn,) = data["turns"]
    assert turn["outcome"]["type"] == "finished"
    assert [(m["role"], m["text"]) for m in turn["messages"]] == [
        ("user", "Capital of Norway?"), ("assistant", "Oslo is the capital."),
    ]
    md = lash("sessions", "export", first, "--format", "markdown", "--db", str(db)).stdout
    assert md.startswith(f"# Session {first}\n")
    assert "**user**:\n\nCapital of Norway?" in md and "**assistant**:\n\nOslo is the capital." in md
    missing = lash("sessions", "export", "nope", "--db", str(db))
    assert missing.exit_code == 1 and "nope" in missing.stderr


def test_delete_removes_the_session_after_confirmation(two_sessions, db):
    first, second = two_sessions
    refused = lash("sessions", "delete", first, "--db", str(db), input="n\n")
    assert refused.exit_code == 1 and first in sessions(db)
    done = lash("sessions", "delete", first, "--db", str(db), input="y\n")
    assert done.exit_code == 0, done.stderr
    assert sessions(db) == [second]
    assert lash("sessions", "search", "oslo", "--db", str(db), "--json").stdout.strip() == "[]"
    assert lash("sessions", "delete", second, "--db", str(db), "--yes").exit_code == 0
    assert sessions(db) == []
    again = lash("sessions", "delete", second, "--db", str(db), "--yes")
    assert again.exit_code == 1 and second in again.stderr
