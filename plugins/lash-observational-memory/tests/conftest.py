"""Fixtures; puts this folder on sys.path so tests import ``om_helpers`` (importlib mode)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from om_helpers import Models


@pytest.fixture
def models() -> Models:
    """Fresh main, observer and reflector models."""
    return Models()


@pytest.fixture
def anyio_backend() -> str:
    """The kernel's background work runs on asyncio."""
    return "asyncio"
