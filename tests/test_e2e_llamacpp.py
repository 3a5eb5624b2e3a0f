"""End to end: the real ``lash`` CLI (a subprocess) against llama.cpp serving a real model.

llama.cpp's OpenAI-compatible server runs in-process through ``xllamacpp`` with Gemma 3 270M
(Q4_K_M). The model is tiny and writes poor text, so the tests assert on the protocol only
(exit code, outcome, non-empty text, usage counts, the committed session), never on wording.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lash_kernel.testing.llamacpp import llamacpp_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    """llama.cpp's server on a free 127.0.0.1 port (``lash_kernel.testing.llamacpp_server``)."""
    with llamacpp_server() as url:
        yield url


def _lash(*args: str) -> subprocess.CompletedProcess[str]:
    hidden = ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "LASH_DB", "LASH_MODEL")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    return subprocess.run(
        [sys.executable, "-m", "lash_kernel", *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_run_against_llamacpp(llama_url: str, tmp_path: Path) -> None:
    db = tmp_path / "lash.db"
    proc = _lash(
        "run", "--base-url", llama_url, "--model", "gemma", "--max-tokens", "16", "--db", str(db), "--json", "Say hello"
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    outcome = out["outcome"]
    assert outcome["type"] == "finished" or (
        outcome["type"] == "stopped" and outcome["reason"] == "max_output_tokens"
    ), outcome
    assert out["text"].strip()
    assert out["usage"]["input_tokens"] > 0
    assert 0 < out["usage"]["output_tokens"] <= 16
    assert out["tool_calls"] == []

    shown = _lash("sessions", "show", out["session_id"], "--json", "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    session = json.loads(shown.stdout)
    assert session["head_revision"] == 1
    (turn,) = session["turns"]
    assert turn["turn_id"] == out["turn_id"]
    assert [m["role"] for m in turn["messages"]] == ["user", "assistant"]
    assert turn["messages"][0]["text"] == "Say hello"
    assert session["pending_inputs"] == []
