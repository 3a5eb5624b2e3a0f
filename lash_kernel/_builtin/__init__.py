"""The kernel's defaults, registered like any plugin (first, so their hooks run last).

Each entry is ``(plugin name, module path)``; the loader imports the module when a core or the
CLI loads plugins. ``lash plugins`` lists them with origin ``builtin``.

- ``lash.standard`` (``standard.py``): the ``standard`` execution mode (native tool calling)
  and the ``turn`` usage source.
- ``lash.commands`` (``commands.py``): the ``lash plugins`` and ``lash tools`` commands.
"""

from __future__ import annotations

__all__ = ["BUILTINS"]

BUILTINS: tuple[tuple[str, str], ...] = (
    ("lash.standard", "lash_kernel._builtin.standard"),
    ("lash.commands", "lash_kernel._builtin.commands"),
)
