"""The ``lash`` command line (click + rich). ``main`` is the console-script entry point.

``app`` holds the root group; ``context`` what commands share; ``turns``, ``sessions`` and ``plugins`` the commands;
``output`` and ``errors`` what is printed; ``providers`` the provider table and the store.
Plugin commands use ``lash_kernel.plugin.command_host()`` rather than this package.

Names load lazily on first use, and every module here imports the runtime, rich and the
provider adapters only inside the functions that need them, so ``lash --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lash_kernel.cli.app import cli, main
    from lash_kernel.cli.providers import PROVIDERS, build_provider, default_db_path

_EXPORTS: dict[str, str] = {
    "PROVIDERS": "lash_kernel.cli.providers",
    "build_provider": "lash_kernel.cli.providers",
    "cli": "lash_kernel.cli.app",
    "default_db_path": "lash_kernel.cli.providers",
    "main": "lash_kernel.cli.app",
}

__all__ = [
    "PROVIDERS",
    "build_provider",
    "cli",
    "default_db_path",
    "main",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lash_kernel.cli' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
