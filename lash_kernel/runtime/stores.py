"""Stores by URL: ``sqlite:///abs/path.db``, ``postgresql://…``, or a plain SQLite path.

Rule: a store target is either a ``Store`` object, a plain filesystem path (a SQLite file, as
before 0.3) or a URL whose scheme a plugin declared through ``lash_register_stores``. The
kernel's built-in ``lash.standard`` declares ``sqlite`` and ``memory``; ``lash-postgres``
declares ``postgresql`` and ``postgres``. A URL with an undeclared scheme is a ``ConfigError``
naming the schemes known. Nothing here connects anything until a store is opened, and the
module imports no plugin machinery until then. ``store_scheme`` lives in ``lash_kernel.config``
(a record-layer module, which reads it too) and is re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lash_kernel.config import store_scheme
from lash_kernel.errors import ConfigError

if TYPE_CHECKING:
    from lash_kernel.runtime.hooks import KernelHooks
    from lash_kernel.store.base import Store

__all__ = ["open_store_target", "open_store_url", "sqlite_path", "store_scheme"]

StoreTable = dict[str, tuple[str, Callable[[str], Any], str]]
"""scheme -> (plugin, opener, description), as ``lash_register_stores`` fills it."""

def sqlite_path(url: str) -> str:
    """The file a ``sqlite:`` URL names: ``sqlite:///abs/path.db`` -> ``/abs/path.db``,
    ``sqlite:rel.db`` -> ``rel.db``, ``sqlite://:memory:`` or ``sqlite::memory:`` -> ``:memory:``.

    Raises:
        ConfigError: a host part other than empty or ``localhost``, or no path.
    """
    rest = url.split(":", 1)[1]
    if rest.startswith("//"):
        host, sep, path = rest[2:].partition("/")
        if host == ":memory:" and not path:
            return ":memory:"
        if host not in ("", "localhost") or not sep:
            raise ConfigError(f"store URL {url!r}: a sqlite URL is sqlite:///absolute/path.db or sqlite:relative.db")
        rest = "/" + path
    if not rest or rest == "/":
        raise ConfigError(f"store URL {url!r} names no database file")
    return rest


def open_store_url(url: str, stores: StoreTable) -> Store:
    """Open the store ``url`` names through the scheme table.

    Args:
        url: a URL (``store_scheme(url)`` is not None).
        stores: what ``lash_register_stores`` declared.
    Returns:
        The open store; the caller closes it.
    Raises:
        ConfigError: no plugin declared the URL's scheme (the message lists the known ones).
        StoreError: the store's opener could not open it.
    """
    scheme = store_scheme(url) or ""
    entry = stores.get(scheme)
    if entry is None:
        known = ", ".join(sorted(stores)) or "none"
        hint = " (install lash-postgres)" if scheme in ("postgresql", "postgres") else ""
        raise ConfigError(f"no store plugin handles {scheme or url!r} URLs{hint}; known store schemes: {known}")
    from lash_kernel.store.base import Store

    store = entry[1](url)
    if not isinstance(store, Store):
        raise ConfigError(f"plugin {entry[0]!r}: the opener of {scheme!r} returned {store!r}, not a Store")
    return store


def open_store_target(
    target: str | os.PathLike[str],
    *,
    hooks: KernelHooks | None = None,
    allow: Iterable[str] | None = None,
    block: Iterable[str] = (),
    strict: bool = False,
) -> Store:
    """Open a store from a plain SQLite path or a URL.

    Args:
        target: a path (a SQLite file, parent directory must exist) or a store URL.
        hooks: the hooks of loaded plugins to ask for schemes; None loads the built-ins and the
            installed entry-point plugins (filtered by ``allow`` / ``block``) just for this.
        allow, block, strict: as ``LashCore``'s plugin selection, used when ``hooks`` is None.
    Returns:
        The open store; the caller closes it.
    Raises:
        ConfigError: an unknown scheme or a malformed URL.
        PluginHookError: a ``lash_register_stores`` implementation raised.
        StoreError (and subclasses): the store could not be opened.
    """
    text = os.fspath(target)
    if store_scheme(text) is None:
        from lash_kernel.store.sqlite import SqliteStore  # sqlite3 only when opened

        return SqliteStore(Path(text).expanduser() if text != ":memory:" else text)
    if hooks is None:
        from lash_kernel.runtime.hooks import KernelHooks
        from lash_kernel.runtime.loader import load_plugins, make_plugin_manager

        pm = make_plugin_manager()
        hooks = KernelHooks(pm)
        load_plugins(pm, allow=allow, block=tuple(block), strict=strict, hooks=hooks)
    stores: StoreTable = {}
    hooks.register_stores(stores)
    return open_store_url(text, stores)
