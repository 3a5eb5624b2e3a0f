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
