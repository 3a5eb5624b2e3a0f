"""Catalog names for MCP tools: ``mcp__<server>__<tool>``, made acceptable to every provider.

Rule: pure functions. A name is at most 64 characters from ``[a-zA-Z0-9_-]``; any other
character becomes ``_``; a longer name keeps its first 55 characters and gets ``_`` plus 8 hex
digits of the SHA-256 of the *original* ``server`` and ``tool``, so it is deterministic and
two different originals practically never shorten to the same name. Collisions that remain
(``a.b`` and ``a_b``) are reported by ``find_collisions`` naming both originals.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

__all__ = ["MAX_NAME", "PREFIX", "find_collisions", "sanitize", "tool_name"]

#: Longest tool name providers accept.
MAX_NAME = 64
#: Prefix of every MCP tool in the catalog.
PREFIX = "mcp"

_BAD = re.compile(r"[^a-zA-Z0-9_-]")


def sanitize(part: str) -> str:
    """Replace every character outside ``[a-zA-Z0-9_-]`` with ``_``.

    Args:
        part: a server or tool name as configured / as the server reports it.
    Returns:
        The same length string with only accepted characters (``""`` stays ``""``).
    """
    return _BAD.sub("_", part)


def tool_name(server: str, tool: str) -> str:
    """The catalog name of ``tool`` on ``server``.

    Args:
        server: server name (the ``[plugins.mcp.servers.<name>]`` key).
        tool: tool name as the server lists it.
    Returns:
        ``mcp__<server>__<tool>`` with bad characters replaced by ``_``, or, when that is
        longer than 64 characters, its first 55 characters + ``_`` + 8 hex digits of
        ``sha256(server + "\\0" + tool)``.
    """
    full = f"{PREFIX}__{sanitize(server)}__{sanitize(tool)}"
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:8]
    return f"{full[: MAX_NAME - 9]}_{digest}"


def find_collisions(originals: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Find originals whose catalog names collide.

    Args:
        originals: ``(server, tool)`` pairs, in catalog order.
    Returns:
        For every pair involved in a collision, an error message naming both originals and the
        shared catalog name; pairs not involved are absent. Identical pairs are not collisions.
    """
    seen: dict[str, tuple[str, str]] = {}
    errors: dict[tuple[str, str], str] = {}
    for pair in originals:
        name = tool_name(*pair)
        first = seen.get(name)
        if first is None:
            seen[name] = pair
            continue
        if first == pair:
            continue
        message = (
            f"tool name collision: {first[1]!r} on server {first[0]!r} and {pair[1]!r} on server "
            f"{pair[0]!r} both map to {name!r}; neither is available"
        )
        errors[first] = message
        errors[pair] = message
    return errors
