"""The core factory the test workers run (``--factory dbos_testapp:make_core``).

``CallLogModel`` answers deterministically from the request and appends one line per call to
``$LASH_DBOS_TEST_LOG``: ``<request_id> <nonce>``. The nonce (fresh per call) is carried into
the answer (the tool call id ``c-<nonce>`` of the first call, the text ``done <nonce>`` of the
second), so the committed history says which call's result the turn used. The ``note`` tool
appends ``<call id>`` to ``$LASH_DBOS_TEST_LOG.tools``; while the file ``$LASH_DBOS_TEST_HOLD``
exists it writes ``<hold>.reached`` and blocks (to be killed mid-turn).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from lash_dbos import JournaledModel
from lash_kernel import LashCore
from lash_kernel.plugin import Message, ModelRequest, ModelResponse, TextPart, TokenUsage, ToolCallPart, ToolContext
from lash_postgres import PostgresStore


class CallLogModel:
    """A model whose every call is logged (see the module docstring)."""

    provider_name = "calllog"

    def __init__(self, log: Path, delay_s: float) -> None:
        self.log, self.delay_s = log, delay_s

    async def stream(self, request: ModelRequest) -> AsyncIterator[Any]:
        await anyio.sleep(self.delay_s)
        nonce = uuid.uuid4().hex[:12]
        with self.log.open("a") as f:
            f.write(f"{request.request_id} {nonce}\n")
        last = request.messages[-1]
        if last.role == "user":
            part: Any = ToolCallPart(id=f"c-{nonce}", name="note", arguments=json.dumps({"text": last.text}))
            finish = "tool_calls"
        else:
            part, finish = TextPart(text=f"done {nonce}"), "stop"
        message = Message(role="assistant", parts=(part,))
        yield ModelResponse(message=message, usage=TokenUsage(input_tokens=10, output_tokens=2),
                            finish_reason=finish, model="calllog", provider="calllog")

    async def aclose(self) -> None:
        pass


def make_core(store: str) -> LashCore:
    """The worker's core: a journaled ``CallLogModel`` and the ``note`` tool, on ``store``."""
    log = Path(os.environ["LASH_DBOS_TEST_LOG"])
    hold = Path(os.environ["LASH_DBOS_TEST_HOLD"])
    delay = float(os.environ.get("LASH_DBOS_TEST_DELAY", "0"))

    def note(text: str, ctx: ToolContext) -> str:
        """Write a note."""
        with Path(f"{log}.tools").open("a") as f:
            f.write(f"{ctx.call_id}\n")
        if hold.exists():
            Path(f"{hold}.reached").write_text(ctx.call_id)
            while hold.exists():
                time.sleep(0.05)
        return f"noted {len(text)} chars"

    return LashCore(model_client=JournaledModel(CallLogModel(log, delay)), model="calllog", store=PostgresStore(store),
                    tools=[note], entry_points=False, lease_ttl_s=10)
