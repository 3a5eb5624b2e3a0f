"""lash's pytest plugin (entry point ``pytest11: lash``): fixtures only, imported lazily.

No autouse fixtures and no collection hooks; disable it with ``-p no:lash``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from lash_kernel.testing import HookRecorder, ScriptedModel


@pytest.fixture
def scripted_model() -> ScriptedModel:
    """A fresh ``ScriptedModel`` (model id ``scripted``); enqueue replies before running turns."""
    from lash_kernel.testing import ScriptedModel

    return ScriptedModel()


@pytest.fixture
def tmp_store(tmp_path: Any) -> Any:
    """A ``SqliteStore`` in ``tmp_path / "lash.db"``, closed after the test."""
    from lash_kernel.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "lash.db")
    yield store
    store.close()


@pytest.fixture
def hook_recorder() -> Any:
    """A ``HookRecorder``; every core ``lash_core_factory`` builds in the same test is attached
    to it (attach others with ``hook_recorder.attach(core)``). Stops recording after the test."""
    from lash_kernel.testing import HookRecorder

    recorder = HookRecorder()
    yield recorder
    recorder.close()


@pytest.fixture
def lash_core_factory(scripted_model: ScriptedModel, request: pytest.FixtureRequest) -> Any:
    """Build ``LashCore`` objects wired to ``scripted_model`` with entry-point loading off.

    Call it as ``lash_core_factory(**kwargs)``; kwargs override the defaults
    (``model_client=scripted_model, model="scripted", entry_points=False``). Cores are closed
    after the test. When the test also uses ``hook_recorder``, each core is attached to it.
    """
    from lash_kernel.runtime.core import LashCore

    cores: list[LashCore] = []
    recorder: HookRecorder | None = (
        request.getfixturevalue("hook_recorder") if "hook_recorder" in request.fixturenames else None
    )

    def make(**kwargs: Any) -> LashCore:
        kwargs.setdefault("model_client", scripted_model)
        kwargs.setdefault("model", "scripted")
        kwargs.setdefault("entry_points", False)
        core = LashCore(**kwargs)
        cores.append(core)
        if recorder is not None:
            recorder.attach(core)
        return core

    yield make
    for core in cores:
        core.close()
