"""The ``lash`` command line (click + rich). ``main`` is the console-script entry point.

``app`` holds the root group; ``context`` what commands share; ``turns``, ``sessions`` and ``plugins`` the commands;
``output`` and ``errors`` what is printed; ``providers`` the provider table and the store.
Plugin commands use ``lash_kernel.plugin.command_host()`` rather than this package.
"""

from lash_kernel.cli.app import cli, main
from lash_kernel.cli.providers import PROVIDERS, build_provider, default_db_path

__all__ = [
    "PROVIDERS",
    "build_provider",
    "cli",
    "default_db_path",
    "main",
]
