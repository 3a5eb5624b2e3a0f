"""Recipe: a long-running agent whose old messages become an observation log.

Install ``lash-observational-memory`` and every ``LashCore`` loads it. Here a cheaper model
client (``"cheap"``) observes and reflects, the thresholds are set in code (the same keys as
``[plugins.observational_memory]`` in ``lash.toml``), and ``chat`` runs a turn, lets the
background observer catch up, and prints what the next model call will start with.

    core = build_core(main_client, "gpt-4o", "agent.db", cheap_client=mini_client)
    await chat(core, "s", "...")
"""

from __future__ import annotations

import sys
from typing import TextIO

from lash_kernel import LashCore, ModelClient, SqliteStore, TurnResult
from lash_observational_memory import observation_block


def build_core(client: ModelClient, model: str, db: str, *, cheap_client: ModelClient, **thresholds: int) -> LashCore:
    """A core over the SQLite file ``db`` whose observer and reflector use ``cheap_client``.

    Args:
        client: the agent's model client; ``model`` its model id.
        db: the SQLite file (created if missing).
        cheap_client: the client for the observer and the reflector.
        thresholds: any ``ObservationalMemoryConfig`` token threshold (e.g. ``observe_at_tokens``).
    Raises:
        ConfigError / PluginHookError: invalid thresholds, or lash-compaction loaded beside it.
    """
    config = {"observer_client": "cheap", "reflector_client": "cheap", **thresholds}
    return LashCore(
        model_client=client, model=model, store=SqliteStore(db), model_clients={"cheap": cheap_client},
        plugin_config={"observational_memory": config}, prompt="You are a meticulous research assistant.",
    )


async def chat(core: LashCore, session_id: str, text: str, *, out: TextIO = sys.stdout) -> TurnResult:
    """One turn; then wait for the background observer and show the observation block."""
    result = await core.session(session_id).turn(text).run()
    out.write(f"agent: {result.text}\n")
    await core.drain()  # a long-lived service skips this: the observer runs while the user types
    block = observation_block(core.plugin_host, session_id)
    if block is not None:
        out.write(block + "\n")
    report = core.session(session_id).usage_report().by_source
    spent = {s: u.input_tokens + u.output_tokens for s, u in report.items()}
    out.write(f"tokens by source: {spent}\n")
    return result
