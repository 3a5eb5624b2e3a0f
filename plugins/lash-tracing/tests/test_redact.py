"""Secret redaction: credential-like keys are masked at any depth, token counts are kept."""

from __future__ import annotations

import json

import pytest

from lash_tracing import REDACTED, redact
from lash_tracing._redact import is_secret_key


@pytest.mark.parametrize(
    "key",
    [
        "Authorization", "authorization", "api_key", "API-KEY", "apikey", "x-api-key", "X-Api-Key",
        "password", "db_password", "client_secret", "secret", "access_token", "refresh-token", "token",
        "x-auth-token", "bearer", "Cookie", "set-cookie", "aws_secret_access_key", "private_key", "credentials",
    ],
)
def test_credential_keys_are_secret(key):
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens", "reasoning_output_tokens",
        "max_output_tokens", "max_tokens", "tool_count", "model", "arguments", "output", "sha256", "message",
    ],
)
def test_ordinary_keys_are_kept(key):
    assert not is_secret_key(key)


def test_redact_nested_keeps_counts_and_drops_headers():
    data = {
        "model": "m",
        "usage": {"input_tokens": 5, "output_tokens": 2},
        "request": {"headers": {"authorization": "Bearer abc"}, "body": [{"api_key": "k1", "n": 1}]},
        "Request-Headers": ["x"],
        "password": None,
        "nested": ({"x-api-key": "k2"},),
    }
    out = redact(data)
    assert out == {
        "model": "m",
        "usage": {"input_tokens": 5, "output_tokens": 2},
        "request": {"body": [{"api_key": REDACTED, "n": 1}]},
        "password": None,  # nothing to hide
        "nested": [{"x-api-key": REDACTED}],
    }
    assert data["request"]["headers"] == {"authorization": "Bearer abc"}  # input untouched


def test_bearer_tokens_inside_text_are_masked():
    out = redact({"message": "401 for Authorization: Bearer sk-abc.def_123 (retry)"})
    assert out == {"message": f"401 for Authorization: Bearer {REDACTED} (retry)"}
    assert "sk-abc" not in json.dumps(out)


def test_json_arguments_are_redacted_and_reencoded_only_when_needed():
    secret = redact({"arguments": '{"q": "x", "api_key": "sk-1", "opts": {"password": "p"}}'})
    assert json.loads(secret["arguments"]) == {"q": "x", "api_key": REDACTED, "opts": {"password": REDACTED}}
    plain = '{"q":  "x"}'
    assert redact({"arguments": plain}) == {"arguments": plain}  # byte-identical when nothing to hide
    broken = '{"api_key": "sk'
    assert redact({"arguments": broken}) == {"arguments": broken}  # not JSON: left as the model wrote it
