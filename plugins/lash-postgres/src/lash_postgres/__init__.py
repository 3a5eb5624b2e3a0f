"""lash-postgres: a PostgreSQL store for lash (psycopg 3), for many workers on many machines.

Install it beside lash-kernel and open a store by URL: ``LashCore(store="postgresql://…")``,
``lash run --db postgresql://…``, ``LASH_DB=postgresql://…`` or ``store = "postgresql://…"`` in
``lash.toml``. Or build one in code: ``PostgresStore(dsn)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lash_postgres.store import SCHEMA_VERSION, PostgresStore

__all__ = ["SCHEMA_VERSION", "PostgresStore"]


def __getattr__(name: str) -> Any:
    # psycopg loads on first use: the ``postgres`` entry point (``lash_postgres.plugin``) imports
    # this package, and ``lash --help`` imports every installed plugin's entry point.
    if name in __all__:
        from lash_postgres import store

        value = getattr(store, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lash_postgres' has no attribute {name!r}")
