"""Shared fixtures for the kernel's own tests (the public ones live in lash_kernel.testing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def provider_wire_dir() -> Path:
    """Recorded provider traffic: ``tests/fixtures/provider-wire`` (copied into the repo with its
    attribution and licences), or ``$LASH_FIXTURES_DIR/provider-wire`` to replay another set."""
    override = os.environ.get("LASH_FIXTURES_DIR")
    path = Path(override) / "provider-wire" if override else ROOT / "tests" / "fixtures" / "provider-wire"
    if not path.is_dir():
        pytest.fail(f"recorded provider fixtures not found at {path}")
    return path
