"""``PostgresStore`` passes the kernel's store conformance suite, unchanged."""

from __future__ import annotations

from lash_kernel.testing.conformance import check_store
from lash_postgres import PostgresStore


def test_postgres_store_conforms(pg_dsn: str) -> None:
    check_store(lambda: PostgresStore(pg_dsn, max_size=2))
