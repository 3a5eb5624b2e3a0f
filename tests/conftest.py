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
    """``shared/fixtures/provider-wire``: beside the repo, or where ``LASH_FIXTURES_DIR`` points."""
    base = Path(os.environ.get("LASH_FIXTURES_DIR", ROOT.parent / "shared" / "fixtures"))
    path = base / "provider-wire"
    if not path.is_dir():
        pytest.fail(f"recorded provider fixtures not found at {path}; set LASH_FIXTURES_DIR")
    return path
