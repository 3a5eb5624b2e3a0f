"""The ``lash`` command line (click + rich). ``main`` is the console-script entry point."""

from lash_kernel.cli.app import PROVIDERS, build_provider, cli, context_core, default_db_path, main

__all__ = ["PROVIDERS", "build_provider", "cli", "context_core", "default_db_path", "main"]
