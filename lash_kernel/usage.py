"""Token usage: the five buckets, and a per-(source, model) ledger.

Bucket semantics (all integers, tokens):
- ``input_tokens``: uncached input only (OpenAI: ``prompt_tokens - cached_tokens``).
- ``output_tokens``: all output, reasoning included.
- ``cache_read_input_tokens``: input served from the provider's prompt cache.
- ``cache_write_input_tokens``: input written to the prompt cache (Anthropic cache creation).
- ``reasoning_output_tokens``: the reasoning subset of ``output_tokens``.

``total = input + output + cache_read + cache_write`` (reasoning is already inside output).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

import attrs

__all__ = ["BUCKETS", "TokenUsage", "UsageKey", "UsageLedger", "UsageReport", "diff_ledgers", "usage_key"]

BUCKETS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "reasoning_output_tokens",
)


@attrs.frozen(kw_only=True)
class TokenUsage:
    """Token counts for one or more model calls. See the module docstring for bucket meanings.

    Changed in 0.2: ``KIND`` is ``token_usage`` (it was ``usage``, the app activity
    ``UsageReported``'s wire name). No stored or wire JSON carries this tag, so nothing to migrate.
    """

    KIND: ClassVar[str] = "token_usage"
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    reasoning_output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """input + output + cache read + cache write (reasoning is a subset of output)."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_write_input_tokens
        )

    def __add__(self, other: TokenUsage) -> TokenUsage:
        if not isinstance(other, TokenUsage):
            return NotImplemented
        return TokenUsage(**{b: getattr(self, b) + getattr(other, b) for b in BUCKETS})

    def __sub__(self, other: TokenUsage) -> TokenUsage:
        if not isinstance(other, TokenUsage):
            return NotImplemented
        return TokenUsage(**{b: getattr(self, b) - getattr(other, b) for b in BUCKETS})

    def is_zero(self) -> bool:
        """True when every bucket is 0."""
        return not any(getattr(self, b) for b in BUCKETS)

    def as_dict(self) -> dict[str, int]:
        """The five buckets as a plain dict (JSON output of the CLI uses this shape)."""
        return {b: getattr(self, b) for b in BUCKETS}


@attrs.frozen(kw_only=True)
class UsageKey:
    """Ledger key: who spent the tokens, on which model.

    Attributes:
        source: the usage source (``turn``, ``child``, ``compaction``, ...).
        model: the model that was asked for (the request's model id): what tables show.
            Changed in 0.3: it used to be the model the provider reported.
        served_model: the model the provider reported serving, when that differs from
            ``model`` (a dated snapshot, a router's pick, a local server's file path), else "".
            Added in 0.3.
    """

    source: str
    model: str
    served_model: str = ""


def usage_key(source: str, requested: str, served: str) -> UsageKey:
    """The ledger key of a model call: ``requested`` is the request's model id, ``served`` the
    one the provider reported ("" if none). Either may be "", not both usefully: with no
    requested id the served one is the key's model."""
    model = requested or served
    return UsageKey(source=source, model=model, served_model=served if served and served != model else "")


@attrs.frozen(kw_only=True)
class UsageLedger:
    """Usage per (source, model), plus the number of model calls per key.

    Attributes:
        entries: ``((key, usage, calls), ...)`` sorted by (source, model); at most one entry a key.
    """

    entries: tuple[tuple[UsageKey, TokenUsage, int], ...] = ()

    @classmethod
    def of(cls, rows: Iterable[tuple[UsageKey, TokenUsage, int]]) -> UsageLedger:
        """Build a ledger from rows, merging rows with the same key."""
        merged: dict[UsageKey, tuple[TokenUsage, int]] = {}
        for key, usage, calls in rows:
            prev = merged.get(key)
            merged[key] = (usage, calls) if prev is None else (prev[0] + usage, prev[1] + calls)
        return cls(
            entries=tuple(
                (k, u, c)
                for k, (u, c) in sorted(merged.items(), key=lambda kv: (kv[0].source, kv[0].model, kv[0].served_model))
            )
        )

    def __add__(self, other: UsageLedger) -> UsageLedger:
        return UsageLedger.of((*self.entries, *other.entries))

    def total(self) -> TokenUsage:
        """Sum of every entry."""
        out = TokenUsage()
        for _, usage, _ in self.entries:
            out = out + usage
        return out

    def get(self, source: str, model: str) -> TokenUsage:
        """Usage of ``source`` on the requested ``model`` (whatever served it), zero if absent."""
        out = TokenUsage()
        for key, usage, _ in self.entries:
            if key.source == source and key.model == model:
                out = out + usage
        return out

    def report(self) -> UsageReport:
        """Aggregate into a ``UsageReport`` (by source, by model, by both)."""
        return UsageReport.from_ledger(self)


@attrs.frozen(kw_only=True)
class UsageReport:
    """A ledger aggregated three ways. Mappings are plain dicts sorted by key.

    Attributes:
        by_source: source -> usage.
        by_model: model -> usage.
        by_source_model: (source, model) -> usage.
        calls: (source, model) -> number of model calls.
        total: everything summed.
        served: (source, model) -> the other models the provider reported serving for it,
            sorted (absent when it always reported the requested one). Added in 0.3.

    ``model`` is always the requested model (``UsageKey.model``).
    """

    by_source: Mapping[str, TokenUsage]
    by_model: Mapping[str, TokenUsage]
    by_source_model: Mapping[tuple[str, str], TokenUsage]
    calls: Mapping[tuple[str, str], int]
    total: TokenUsage
    served: Mapping[tuple[str, str], tuple[str, ...]] = attrs.field(factory=dict)

    @classmethod
    def from_ledger(cls, ledger: UsageLedger) -> UsageReport:
        """Aggregate ``ledger``."""
        by_source: dict[str, TokenUsage] = {}
        by_model: dict[str, TokenUsage] = {}
        both: dict[tuple[str, str], TokenUsage] = {}
        calls: dict[tuple[str, str], int] = {}
        served: dict[tuple[str, str], set[str]] = {}
        for key, usage, n in ledger.entries:
            pair = (key.source, key.model)
            by_source[key.source] = by_source.get(key.source, TokenUsage()) + usage
            by_model[key.model] = by_model.get(key.model, TokenUsage()) + usage
            both[pair] = both.get(pair, TokenUsage()) + usage
            calls[pair] = calls.get(pair, 0) + n
            if key.served_model:
                served.setdefault(pair, set()).add(key.served_model)
        return cls(
            by_source=dict(sorted(by_source.items())),
            by_model=dict(sorted(by_model.items())),
            by_source_model=dict(sorted(both.items())),
            calls=dict(sorted(calls.items())),
            total=ledger.total(),
            served={pair: tuple(sorted(models)) for pair, models in sorted(served.items())},
        )

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: ``{total, by_source, by_model, by_source_model: [{source, model,
        calls, ..., served_models?}]}`` (``served_models`` only where the provider reported
        other models than the requested one)."""
        rows = []
        for (s, m), u in self.by_source_model.items():
            row: dict[str, object] = {"source": s, "model": m, "calls": self.calls.get((s, m), 0), **u.as_dict()}
            if (s, m) in self.served:
                row["served_models"] = list(self.served[(s, m)])
            rows.append(row)
        return {
            "total": self.total.as_dict(),
            "by_source": {k: v.as_dict() for k, v in self.by_source.items()},
            "by_model": {k: v.as_dict() for k, v in self.by_model.items()},
            "by_source_model": rows,
        }


def diff_ledgers(after: UsageLedger, before: UsageLedger) -> UsageLedger:
    """Return ``after - before`` per key (what was spent between two ledger snapshots).

    Keys present only in ``before`` appear with negative counts; zero entries are dropped.
    """
    keyed: dict[UsageKey, tuple[TokenUsage, int]] = {k: (u, c) for k, u, c in after.entries}
    for key, usage, calls in before.entries:
        u, c = keyed.get(key, (TokenUsage(), 0))
        keyed[key] = (u - usage, c - calls)
    return UsageLedger.of((k, u, c) for k, (u, c) in keyed.items() if not (u.is_zero() and c == 0))
