"""One fixture for every test that needs PostgreSQL: ``pg_dsn`` (``lash_postgres.testing``
says where the server comes from: ``LASH_TEST_PG_DSN``, else a throwaway cluster)."""

from lash_postgres.testing import pg_dsn, pg_server

__all__ = ["pg_dsn", "pg_server"]
