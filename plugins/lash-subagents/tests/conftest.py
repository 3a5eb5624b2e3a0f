"""Puts this folder on sys.path so tests import ``subagents_testing`` (a unique module name, so
running every plugin's tests in one pytest process cannot collide)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
