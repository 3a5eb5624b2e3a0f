"""The ``postgres`` plugin: declares the ``postgresql`` and ``postgres`` store URL schemes.

It adds no tools, hooks into no turn and opens nothing until a store URL is opened.
"""

from __future__ import annotations

from lash_kernel.plugin import Store, StoreRegistrar, hookimpl

__all__ = ["lash_register_stores", "open_postgres"]


def open_postgres(url: str) -> Store:
    """Open a ``PostgresStore`` on ``url`` (``postgresql://user:password@host:port/db?…``,
    passed to libpq as is; the ``postgres://`` spelling too), creating the schema if missing.

    Raises:
        StoreError: the server cannot be reached or the database cannot hold the schema.
        SchemaVersionError: the database was written by a newer lash-postgres.
    """
    from lash_postgres.store import PostgresStore  # psycopg only when a store is opened

    return PostgresStore(url)


@hookimpl
def lash_register_stores(registry: StoreRegistrar) -> None:
    """Declare ``postgresql://`` and ``postgres://``."""
    registry.add("postgresql", open_postgres, "PostgreSQL (lash-postgres): postgresql://user@host:5432/db")
    registry.add("postgres", open_postgres, "PostgreSQL (lash-postgres), the postgres:// spelling")
