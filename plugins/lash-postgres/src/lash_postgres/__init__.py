"""lash-postgres: a PostgreSQL store for lash (psycopg 3), for many workers on many machines.

Install it beside lash-kernel and open a store by URL: ``LashCore(store="postgresql://…")``,
``lash run --db postgresql://…``, ``LASH_DB=postgresql://…`` or ``store = "postgresql://…"`` in
``lash.toml``. Or build one in code: ``PostgresStore(dsn)``.
"""

from __future__ import annotations

from lash_postgres.store import SCHEMA_VERSION, PostgresStore

__all__ = ["SCHEMA_VERSION", "PostgresStore"]
