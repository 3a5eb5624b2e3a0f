"""A turn that fails before the model answered leaves no fresh session behind (issue 15,
item 3): ``lash run`` / ``lash chat`` delete a session they created themselves when no model
ever answered in it; a session the user named (``--session``, ``-c``) is kept."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lash_kernel.store.sqlite import SqliteStore

_spec = importlib.util.spec_from_file_location("lash_test_cli_unanswered", Path(__file__).with_name("test_cli.py"))
assert _spec is not None and _spec.loader is not None
_cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cli)
lash = _cli.lash
clean_env = _cli.clean_env  # autouse: no real keys or user config


@pytest.fixture
def dead_url() -> str:
    """A local port nothing listens on (bound, then closed): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _sessions(db: Path) -> list[str]:
    with SqliteStore(db) as store:
        return [s.session_id for s in store.list_sessions()]


def test_a_real_lash_run_against_a_dead_port_leaves_no_session(tmp_path, dead_url):
    db = tmp_path / "lash.db"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LASH_") and not k.endswith(("_API_KEY", "_BASE_URL"))}
    proc = subprocess.run(
        [sys.executable, "-m", "lash_kernel", "run", "--base-url", dead_url, "--db", str(db), "hello?"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: turn stopped (provider_error): openai: connection failed")
    assert lines[-2].startswith("session ") and lines[-2].endswith(" not kept: the model never answered")
    assert _sessions(db) == []
    listed = subprocess.run([sys.executable, "-m", "lash_kernel", "sessions", "list", "--db", str(db), "--json"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert json.loads(listed.stdout) == []


def test_json_says_the_session_was_not_kept_and_a_named_session_is_kept(tmp_path, dead_url):
    db = tmp_path / "lash.db"
    result = lash("run", "--base-url", dead_url, "--db", str(db), "--json", "hi")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["session_kept"] is False and data["outcome"]["reason"] == "provider_error"
    assert _sessions(db) == []
    result = lash("run", "--base-url", dead_url, "--db", str(db), "--session", "mine", "--json", "hi")
    assert result.exit_code == 1 and "session_kept" not in json.loads(result.stdout)
    assert _sessions(db) == ["mine"]  # the user named it: kept, with its failed turn
    with SqliteStore(db) as store:
        (turn,) = store.list_turns("mine")
        assert turn.outcome.reason == "provider_error"


def test_an_answered_session_is_kept(tmp_path):
    fake = _cli.FakeOpenAI()
    fake.thread.start()
    try:
        fake.text("Hi!")
        db = tmp_path / "lash.db"
        result = lash("run", "--base-url", fake.url, "--db", str(db), "--json", "hi")
        assert result.exit_code == 0 and "session_kept" not in json.loads(result.stdout)
        assert _sessions(db) == [json.loads(result.stdout)["session_id"]]
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def test_a_chat_that_never_reached_the_model_leaves_nothing(tmp_path, dead_url):
    db = tmp_path / "lash.db"
    result = lash("chat", "--base-url", dead_url, "--db", str(db), input="/exit\n")
    assert result.exit_code == 0, result.stderr
    assert _sessions(db) == [] and "not kept" not in result.stderr  # no turn at all: silently
    result = lash("chat", "--base-url", dead_url, "--db", str(db), input="hello?\n/exit\n")
    assert result.exit_code == 0 and _sessions(db) == []
    assert "error: turn stopped (provider_error)" in result.stderr
    assert "not kept: the model never answered" in result.stderr
    result = lash("chat", "--base-url", dead_url, "--db", str(db), "--session", "kept", input="/exit\n")
    assert result.exit_code == 0 and _sessions(db) == ["kept"]
