"""The public surface: ``__all__`` is sorted, complete and importable; nothing runs at import."""

from __future__ import annotations

import subprocess
import sys

import lash_kernel


def test_all_is_sorted_and_importable():
    names = [n for n in lash_kernel.__all__ if n != "__version__"]
    assert names == sorted(names, key=str)
    for name in lash_kernel.__all__:
        assert getattr(lash_kernel, name) is not None, name


def test_every_public_class_and_function_has_a_docstring():
    missing = [
        n for n in lash_kernel.__all__
        if callable(getattr(lash_kernel, n)) and not (getattr(lash_kernel, n).__doc__ or "").strip()
    ]
    assert missing == []


def test_import_loads_no_plugins_and_reads_no_entry_points():
    code = (
        "import importlib.metadata as m\n"
        "calls = []\n"
        "orig = m.entry_points\n"
        "m.entry_points = lambda *a, **k: calls.append(k) or orig(*a, **k)\n"
        "import lash_kernel\n"
        "assert calls == [], calls\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_plugin_api_all_is_sorted_importable_and_documented():
    import typing

    import lash_kernel.plugin as plugin

    assert plugin.__all__ == sorted(plugin.__all__, key=str)
    for name in plugin.__all__:
        assert getattr(plugin, name) is not None, name
    undocumented = [
        n for n in plugin.__all__
        if callable(value := getattr(plugin, n))
        and typing.get_origin(value) is None  # type aliases (EffectPerformer) carry no __doc__
        and not (value.__doc__ or "").strip()
    ]
    assert undocumented == []


def test_a_plugin_needs_one_import_line():
    """What docs/plugins.md's examples import is all in ``lash_kernel.plugin``."""
    import lash_kernel.plugin as plugin

    needed = {
        "hookimpl", "hookspec", "tool", "PluginHost", "Stash", "StashKey", "PromptContribution", "BlockToolCall",
        "AbortTurn", "InjectMessages", "CompactionPlan", "TraceRecord", "TRACE_SCHEMA_VERSION", "Attachment",
        "ToolOutput", "ToolContext", "ToolError", "ConfigError", "Message", "ToolCallPart", "ToolResultPart",
        "TurnActivity", "UsageLedger", "ToolRegistrar", "ConfigRegistrar", "HookspecRegistrar",
    }
    assert needed <= set(plugin.__all__)


def test_the_plugin_api_does_not_load_the_runtime_engine():
    code = (
        "import sys\n"
        "import lash_kernel.plugin\n"
        "engine = ['lash_kernel.runtime.' + m for m in ('driver', 'session', 'core', 'loader', 'hooks', 'host')]\n"
        "print(sorted(m for m in engine if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
