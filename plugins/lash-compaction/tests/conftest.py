"""Shared helpers: a core with lash-compaction loaded through its ``lash.plugins`` entry point,
a ScriptedModel for the session and another (client ``summarizer``) for summaries, and a real
SQLite file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lash_kernel import LashCore, SqliteStore, tool
from lash_kernel.testing import ScriptedModel

#: Bytes of every ``read`` tool result (about 250 tokens by the bytes/4 estimate).
RESULT_BYTES = 1_000


@tool
def read(path: str) -> str:
    """Read a file.

    Args:
        path: the file.
    """
    return f"{path}:" + "x" * (RESULT_BYTES - len(path) - 1)


def make_core(
    tmp_path: Path,
    model: ScriptedModel,
    *,
    summarizer: ScriptedModel | None = None,
    config: dict[str, Any] | None = None,
    db: str = "lash.db",
    **kw: Any,
) -> LashCore:
    """A core over ``tmp_path/db`` with only the ``compaction`` entry-point plugin loaded."""
    cfg = dict(config or {})
    clients = None
    if summarizer is not None:
        clients = {"summarizer": summarizer}
        cfg.setdefault("client", "summarizer")
    return LashCore(
        model_client=model,
        model="scripted",
        store=SqliteStore(tmp_path / db),
        tools=[read],
        allow=["compaction"],
        plugin_config={"compaction": cfg},
        model_clients=clients,
        **kw,
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="make_core")
def make_core_fixture() -> Any:
    """``make_core`` (tests import nothing from conftest: pytest runs with importlib mode)."""
    return make_core
