"""pytest fixtures for tests that need PostgreSQL: lash-postgres's own, and those of packages
built on it (lash-dbos). Import them into a ``conftest.py``::

    from lash_postgres.testing import pg_dsn, pg_server  # noqa: F401

``LASH_TEST_PG_DSN`` (a ``postgresql://`` URL of a role that may create databases) points the
tests at a server of your own; each test gets a fresh database there, dropped afterwards.
Without it, a throwaway cluster is started once per test session from the local server
binaries (``initdb`` / ``pg_ctl`` on PATH or under /usr/lib/postgresql/*/bin) and stopped at
the end. Only when neither exists are the tests skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from lash_postgres.cluster import find_server_bin, throwaway_cluster

__all__ = ["pg_dsn", "pg_server"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The DSN of the server the tests use (see the module docstring)."""
    dsn = os.environ.get("LASH_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    if find_server_bin() is None:
        pytest.skip("no LASH_TEST_PG_DSN and no PostgreSQL server binaries (apt-get install postgresql)")
    with throwaway_cluster() as started:
        yield started


@pytest.fixture
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server for one test (dropped afterwards), as a
    ``postgresql://`` URL."""
    name = f"lash_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(pg_server)._replace(path=f"/{name}"))
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
