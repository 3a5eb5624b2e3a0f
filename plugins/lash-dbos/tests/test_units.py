"""The pieces without worker processes: journaling outside a workflow, replayed model errors,
heartbeat leases (claimed by exactly one live worker), configuration errors, the CLI command."""

from __future__ import annotations

import threading

import anyio
import pytest
from click.testing import CliRunner

from lash_dbos import DbosRunner, JournaledModel, WorkerLeases, journal_tools
from lash_dbos.journal import _error_from, _error_record
from lash_dbos.plugin import dbos_group, load_factory
from lash_kernel import ConfigError, LashCore, ProviderConnectionError, ProviderHTTPError, ProviderStreamError
from lash_kernel.testing import ScriptedModel


def test_outside_a_workflow_the_journaled_model_and_tools_are_transparent():
    model = ScriptedModel().enqueue_tool_calls(("add", {"a": 2, "b": 3})).enqueue_text("five")

    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    core = LashCore(model_client=JournaledModel(model), model="m", tools=[add], entry_points=False)
    assert journal_tools(core.tools) == 1 and journal_tools(core.tools) == 0  # idempotent
    result = core.session("s").run_sync("add 2 and 3")
    assert result.text == "five" and result.tool_calls[0][1].output == "5"
    assert len(model.requests) == 2
    core.close()


@pytest.mark.parametrize(
    "error",
    [
        ProviderHTTPError(429, "slow down", provider="p", retry_after_s=1.5),
        ProviderConnectionError("reset", provider="p"),
        ProviderStreamError("no terminal event", provider="p"),
    ],
)
def test_a_journaled_model_failure_replays_as_the_same_kind_of_error(error):
    replayed = _error_from(_error_record(error))
    assert type(replayed) is type(error)
    assert (str(replayed), replayed.retryable, replayed.provider) == (str(error), error.retryable, error.provider)
    if isinstance(error, ProviderHTTPError):
        assert (replayed.status, replayed.retry_after_s) == (429, 1.5)


def test_a_dead_workers_row_is_claimed_by_exactly_one_live_worker(pg_dsn):
    dead = WorkerLeases(pg_dsn, worker_id="dead", app_version="v", dead_after_s=0.3)
    dead.create()
    dead.beat()
    other_version = WorkerLeases(pg_dsn, worker_id="old", app_version="v0", dead_after_s=0.3)
    other_version.beat()
    live = [WorkerLeases(pg_dsn, worker_id=f"live{i}", app_version="v", dead_after_s=0.3) for i in range(6)]
    for w in live:
        w.beat()
    assert live[0].claim_dead() == []  # nobody is dead yet
    anyio.run(anyio.sleep, 0.5)
    for w in live:
        w.beat()
    recovered: list[tuple[str, list[str]]] = []
    barrier = threading.Barrier(len(live))

    def tick(w: WorkerLeases) -> None:
        barrier.wait()
        w.tick(lambda ids: recovered.append((w.worker_id, ids)))

    threads = [threading.Thread(target=tick, args=(w,)) for w in live]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [ids for _, ids in recovered] == [["dead"]]  # one claimant; the other version untouched
    assert live[0].alive() == sorted(w.worker_id for w in live)
    for w in [dead, other_version, *live]:
        w.close()


def test_the_runner_refuses_a_core_whose_model_is_not_journaled(pg_dsn):
    with pytest.raises(ConfigError, match="concurrency"):
        DbosRunner(lambda: None, pg_dsn, concurrency=0)  # type: ignore[arg-type, return-value]
    runner = DbosRunner(lambda: LashCore(model_client=ScriptedModel(), model="m", entry_points=False), pg_dsn)
    with pytest.raises(ConfigError, match="JournaledModel"):
        runner.launch()


def test_factory_specs_are_checked():
    assert load_factory("lash_dbos:DbosRunner") is DbosRunner
    for bad in ("nocolon", "no_such_module_x:f", "lash_dbos:nothing"):
        with pytest.raises(ConfigError):
            load_factory(bad)


def test_the_worker_command_is_registered_and_documented():
    out = CliRunner().invoke(dbos_group, ["worker", "--help"])
    assert out.exit_code == 0 and "--concurrency" in out.output and "--factory" in out.output
