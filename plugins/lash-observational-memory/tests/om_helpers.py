"""Shared test helpers (``conftest.py`` puts this folder on sys.path): a core with the plugin
loaded through its installed entry point, scripted observer / reflector clients, and turns of
known size.

Token sizes are the plugin's estimates (characters / 4 + 4 per message): ``words(n)`` is a
text of ``n`` distinct 8-character words, about ``2 * n`` tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from lash_kernel import LashCore, SqliteStore
from lash_kernel.testing import ScriptedModel

#: Small thresholds (estimated tokens) so a few turns cross them.
SMALL = {
    "buffer_tokens": 200,
    "max_tokens_per_batch": 400,
    "previous_observer_tokens": 100,
    "observe_at_tokens": 500,
    "block_at_tokens": 900,
    "reflect_at_tokens": 100_000,
    "reflect_block_at_tokens": 100_000,
    "observer_client": "observer",
    "reflector_client": "reflector",
}


def words(n: int, tag: str = "w") -> str:
    """``n`` distinct words of 7 characters plus a space (about 2 tokens each)."""
    return " ".join(f"{tag}{i:06d}"[-7:] for i in range(n))


class GatedModel(ScriptedModel):
    """A ScriptedModel that waits for ``gate`` before answering; ``started`` is set when a
    request arrived."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.gate = anyio.Event()
        self.started = anyio.Event()

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        self.started.set()
        await self.gate.wait()
        async for item in super().stream(request):
            yield item


class Models:
    """The main model, the observer and the reflector of one test."""

    def __init__(self, observer: ScriptedModel | None = None) -> None:
        self.main = ScriptedModel(model="main")
        self.observer = observer or ScriptedModel(model="observer-model")
        self.reflector = ScriptedModel(model="reflector-model")

    def core(self, db: Path, **config: Any) -> LashCore:
        """A core over ``db`` that loads the installed plugin through its entry point only."""
        return LashCore(
            model_client=self.main, model="main", store=SqliteStore(db), allow=["observational_memory"],
            model_clients={"observer": self.observer, "reflector": self.reflector},
            plugin_config={"observational_memory": {**SMALL, **config}},
        )
