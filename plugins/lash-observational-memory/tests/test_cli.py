"""``lash memory show SESSION`` through the real ``lash`` command line (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from om_helpers import words

from lash_observational_memory import observation_block


@pytest.mark.anyio
async def test_memory_show_prints_the_block(tmp_path, models):
    db = tmp_path / "lash.db"
    for i in range(6):
        models.observer.enqueue_text(f"- [high] 2025-08-01: shown fact {i}")
    with models.core(db) as core:
        session = core.session("s")
        for k in range(3):
            models.main.enqueue_text(f"answer {k}")
            await session.turn(f"q{k} " + words(100, f"q{k}")).run()
            await core.drain()
        block = observation_block(core.plugin_host, "s")
    assert block is not None
    env = {k: v for k, v in os.environ.items() if k != "LASH_DB"}
    proc = subprocess.run(
        [sys.executable, "-m", "lash_kernel", "memory", "show", "s", "--db", str(db), "--json"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["block"] == block and shown["observed_through"] == 4 and shown["observations"] == 3
    assert shown["covered_message_tokens"] > shown["block_tokens"] > 0
