"""Secret redaction for trace attributes.

Rule: pure functions, no I/O. A key "looks like a credential" when its normalised form
(lower case, ``-`` and spaces as ``_``) contains one of ``SECRET_KEY_PARTS`` or is/ends with
``token`` (``access_token``, ``x_auth_token``), while token *counts* (``input_tokens``,
``max_output_tokens``) are kept. Header collections (``headers``, ``request_headers``, ...)
are dropped entirely. ``Bearer <token>`` inside string values is masked too, and a JSON
object held in a string under ``arguments`` is redacted the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

__all__ = ["REDACTED", "SECRET_KEY_PARTS", "is_header_key", "is_secret_key", "redact"]

#: What a secret value is replaced with.
REDACTED = "[redacted]"

#: Substrings of a normalised key that mark its value as a secret.
SECRET_KEY_PARTS = (
    "authorization",
    "api_key",
    "apikey",
    "password",
    "passwd",
    "passphrase",
    "secret",
    "bearer",
    "cookie",
    "credential",
    "private_key",
    "access_key",
    "auth_key",
)

_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{4,}")
_NORMALISE = str.maketrans({"-": "_", " ": "_"})


@lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether the value under ``key`` must be replaced by ``REDACTED``.

    Args:
        key: an attribute or JSON object key, any case.
    Returns:
        True for credential-like keys (``Authorization``, ``api-key``, ``X-Api-Key``,
        ``password``, ``client_secret``, ``access_token``, ``token`` ...); False for everything
        else, including token counts such as ``input_tokens``.
    """
    k = key.lower().translate(_NORMALISE)
    return k.endswith("token") or any(part in k for part in SECRET_KEY_PARTS)


@lru_cache(maxsize=4096)
def is_header_key(key: str) -> bool:
    """Whether ``key`` names a collection of HTTP headers (``headers``, ``request_headers``, ...).

    Args:
        key: an attribute key, any case.
    Returns:
        True when the key is, or ends with, ``headers``.
    """
    return key.lower().translate(_NORMALISE).endswith("headers")


def redact(value: Any, key: str | None = None) -> Any:
    """Return a copy of ``value`` with secrets masked, recursively.

    Args:
        value: JSON-like data (mappings, lists, tuples, scalars); other objects pass through.
        key: the key ``value`` sits under, if any (``arguments`` strings holding a JSON object
            are parsed, redacted and re-encoded when they contain a secret).
    Returns:
        New containers (the input is never mutated); mappings keep their key order, with
        header collections removed and credential-like values replaced by ``REDACTED`` (a
        None value stays None). Tuples become lists.
    """
    t = type(value)
    if t in _SCALARS:
        return value
    if t is str:
        return _redact_text(value, key)
    if t is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            ks = k if type(k) is str else str(k)
            action = _key_action(ks)
            if action is _KEEP:
                out[ks] = v if type(v) in _SCALARS else redact(v, ks)
            elif action is _MASK:
                out[ks] = None if v is None else REDACTED
        return out
    if t is list or t is tuple or isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


_SCALARS = frozenset({type(None), bool, int, float})
_KEEP, _MASK, _DROP = "keep", "mask", "drop"
_HINT = re.compile(r"(?i)auth|key|pass|secret|token|bearer|cookie|credential")


@lru_cache(maxsize=4096)
def _key_action(key: str) -> str:
    if is_header_key(key):
        return _DROP
    return _MASK if is_secret_key(key) else _KEEP


def _redact_text(text: str, key: str | None) -> str:
    if key == "arguments" and text[:1] == "{" and _HINT.search(text):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            cleaned = redact(parsed)
            if cleaned != parsed:
                return json.dumps(cleaned, ensure_ascii=False)
    if "earer" in text or "asic" in text:
        return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return text
