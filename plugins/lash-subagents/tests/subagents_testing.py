"""Test helpers (imported as ``subagents_testing``; conftest puts this folder on sys.path): a
model that routes requests to one script per agent, and a core factory.

Cores load lash-subagents through its ``lash.plugins`` entry point (the package is installed),
restricted with ``allow=["subagents"]`` so other installed plugins stay out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lash_kernel import LashCore, SqliteStore
from lash_kernel.plugin import ModelRequest, TokenUsage
from lash_kernel.testing import ScriptedModel


def U(n: int) -> TokenUsage:
    """A distinct usage for call ``n`` (every bucket non-trivial, so sums are checked exactly)."""
    return TokenUsage(
        input_tokens=n, output_tokens=10 * n, cache_read_input_tokens=n % 3, cache_write_input_tokens=n % 2
    )


class RoutedModel:
    """A model client with one ``ScriptedModel`` per agent: a request goes to the script whose
    key is the text of its first user message (a child's task), else to ``root``.

    ``spent`` sums every usage scripted through ``reply``.
    """

    provider_name = "scripted"

    def __init__(self) -> None:
        self.root = ScriptedModel()
        self.routes: dict[str, ScriptedModel] = {}
        self.spent = TokenUsage()
        self._n = 0

    def script(self, key: str | None) -> ScriptedModel:
        """The script answering requests whose first user message is ``key`` (None: root)."""
        if key is None:
            return self.root
        return self.routes.setdefault(key, ScriptedModel())

    def reply(self, key: str | None, text: str = "", calls: tuple[tuple[str, Any], ...] = ()) -> TokenUsage:
        """Queue one reply for ``key``'s agent with a fresh distinct usage; returns the usage."""
        self._n += 1
        usage = U(self._n)
        self.spent = self.spent + usage
        if calls:
            self.script(key).enqueue_tool_calls(*calls, text=text, usage=usage)
        else:
            self.script(key).enqueue_text(text, usage=usage)
        return usage

    def _pick(self, request: ModelRequest) -> ScriptedModel:
        first = next((m for m in request.messages if m.role == "user"), None)
        return self.routes.get(first.text if first is not None else "", self.root)

    async def stream(self, request: ModelRequest) -> AsyncIterator[Any]:
        async for item in self._pick(request).stream(request):
            yield item

    async def aclose(self) -> None:
        return None

    @property
    def pending(self) -> int:
        return self.root.pending + sum(s.pending for s in self.routes.values())


def make_core(tmp_path: Path, model: Any, **kwargs: Any) -> LashCore:
    """A core on a SQLite file with lash-subagents loaded through its entry point."""
    kwargs.setdefault("allow", ["subagents"])
    return LashCore(model_client=model, model="scripted", store=SqliteStore(tmp_path / "lash.db"), **kwargs)
