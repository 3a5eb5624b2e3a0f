"""Every ``KIND`` wire tag names exactly one class, across the kernel and the first-party plugins.

A ``KIND`` is a tagged-union tag (``serde``), an app activity's wire name (``TurnActivity.kind``)
or a plugin record's stored tag (``plugin_state``). Two classes sharing one would decode as each
other, or be indistinguishable to a client.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import attrs

import lash_kernel
from lash_kernel.runtime.core import LashCore
from lash_kernel.store.memory import MemoryStore
from lash_kernel.testing import ScriptedModel

COOKBOOK_AUDIT = Path(__file__).resolve().parents[1] / "cookbook" / "lash-audit" / "src"
NOT_IMPORTABLE = {"lash_kernel.__main__"}  # runs the CLI when imported


def _modules(package: ModuleType) -> Iterable[ModuleType]:
    yield package
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        if info.name not in NOT_IMPORTABLE:
            yield importlib.import_module(info.name)


def _classes_with_kind(modules: Iterable[ModuleType]) -> set[type]:
    found = set()
    for module in modules:
        for obj in vars(module).values():
            if not isinstance(obj, type) or obj.__module__ != module.__name__:
                continue  # a class counts once, in the module that defines it
            if isinstance(getattr(obj, "KIND", None), str):
                found.add(obj)
    return found


def _collisions(classes: Iterable[type]) -> dict[str, list[str]]:
    """KIND -> the classes sharing it, for every KIND held by more than one class."""
    by_kind: dict[str, set[type]] = defaultdict(set)
    for cls in classes:
        by_kind[cls.KIND].add(cls)  # type: ignore[attr-defined]
    return {
        kind: sorted(f"{c.__module__}.{c.__qualname__}" for c in owners)
        for kind, owners in by_kind.items()
        if len(owners) > 1
    }


def _first_party_core(tmp_path: Path) -> LashCore:
    """A core with the built-ins and every first-party plugin loaded (tracing switched on): the
    installed ``tracing`` and ``mcp`` entry points, and the cookbook's ``lash-audit``."""
    sys.path.insert(0, str(COOKBOOK_AUDIT))
    try:
        import lash_audit.plugin
    finally:
        sys.path.remove(str(COOKBOOK_AUDIT))
    return LashCore(
        model_client=ScriptedModel(),
        model="scripted",
        store=MemoryStore(),
        allow=("tracing", "mcp"),
        strict=True,
        plugins=[lash_audit.plugin],
        plugin_config={"tracing": {"jsonl": str(tmp_path / "trace.jsonl")}},
        config_source=str(tmp_path / "lash.toml"),
    )


def test_every_kind_is_unique(tmp_path: Path) -> None:
    import lash_mcp
    import lash_tracing

    classes = _classes_with_kind(_modules(lash_kernel))
    classes |= _classes_with_kind(_modules(lash_mcp)) | _classes_with_kind(_modules(lash_tracing))
    with _first_party_core(tmp_path) as core:
        assert {"tracing", "mcp", "tracing.sink"} <= {name for name, _ in core.pm.list_name_plugin()}
        registered = {cls for _, cls in core.record_types.values()}
    # the walk reaches every family: records, activities, trace, machine events, store, model stream
    names = {c.__name__ for c in classes}
    assert {
        "TextPart", "Message", "Finished", "TokenUsage", "UsageReported", "ReasoningProseDelta",
        "TraceRecord", "ModelResponded", "Node", "TurnCommit", "ReasoningDelta", "ModelResponse",
        "PromptContribution",
    } <= names
    assert _collisions(classes | registered) == {}


def test_the_app_facing_activity_names_are_kept() -> None:
    from lash_kernel.activity import ReasoningProseDelta, UsageReported
    from lash_kernel.model import ReasoningDelta, TextDelta, ToolCallDelta
    from lash_kernel.usage import TokenUsage

    assert (UsageReported.KIND, ReasoningProseDelta.KIND) == ("usage", "reasoning_delta")  # DESIGN §6
    assert (TokenUsage.KIND, ReasoningDelta.KIND) == ("token_usage", "model_reasoning_delta")
    assert (TextDelta.KIND, ToolCallDelta.KIND) == ("model_text_delta", "model_tool_call_delta")


def test_renamed_kinds_were_never_persisted() -> None:
    # serde tags only Part and Outcome unions with KIND; TokenUsage (in every stored ledger and
    # model response) is written without its tag, so renaming it needs no fallback when reading
    from lash_kernel import serde
    from lash_kernel.usage import TokenUsage, UsageKey, UsageLedger

    ledger = UsageLedger.of([(UsageKey(source="turn", model="m"), TokenUsage(input_tokens=1), 1)])
    assert "kind" not in serde.dumps(ledger, UsageLedger)
    assert serde.loads('{"entries":[[{"source":"turn","model":"m"},{"input_tokens":1},1]]}', UsageLedger) == ledger


def test_the_check_finds_a_collision() -> None:
    @attrs.frozen
    class Impostor:
        KIND: ClassVar[str] = "usage"

    from lash_kernel.activity import UsageReported

    assert _collisions([UsageReported, Impostor]) == {
        "usage": sorted([f"{__name__}.test_the_check_finds_a_collision.<locals>.Impostor",
                         "lash_kernel.activity.UsageReported"])
    }
