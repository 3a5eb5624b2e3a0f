"""Valid text at the edges: every string that enters a turn is valid Unicode (encodable UTF-8).

Python strings may hold lone surrogates (U+D800..U+DFFF): ``sys.argv`` and ``os.listdir``
smuggle undecodable bytes in as ``\\udcXX`` (PEP 383), and a JSON stream may escape the two
halves of one emoji into two chunks (``"\\ud83d"``, then ``"\\ude00"``). Such a string cannot be
encoded as UTF-8, so it would break admission, the commit hash, the store and the terminal.

Rule: text is made valid where it enters a turn (user input, tool output, provider streams,
session ids), never deep inside: a surrogate pair split across two strings is joined
(``SurrogateJoiner``), and a surrogate left alone becomes U+FFFD (the replacement character).
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import attrs

__all__ = ["REPLACEMENT", "SurrogateJoiner", "valid_message", "valid_text"]

#: What a lone surrogate becomes: U+FFFD REPLACEMENT CHARACTER.
REPLACEMENT = "\ufffd"

_M = TypeVar("_M")


def valid_text(text: str) -> str:
    """Return ``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD.

    Args:
        text: any ``str``.
    Returns:
        ``text`` itself (the same object) when it is already valid: ASCII costs one flag check,
        other text one ``encode``. Otherwise a new string that encodes as UTF-8: each adjacent
        high+low surrogate pair becomes the one code point it encodes, and each surrogate left
        alone (including the ``\\udc80``..``\\udcff`` of ``os.fsdecode``) becomes one U+FFFD.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def valid_message(message: _M) -> _M:
    """Return ``message`` (a ``Message``) with every string in it made valid by ``valid_text``.

    Walks the attrs fields of the message and, recursively, of every part and attachment in
    it: text and reasoning parts (text, signature, encrypted content, ids), tool calls (id,
    name, arguments) and tool results (call id, name, output, attachment fields). Works the
    same for any attrs record whose fields are strings, tuples and nested attrs records.

    Args:
        message: a ``lash_kernel.messages.Message`` (or another frozen attrs record).
    Returns:
        ``message`` itself when nothing needed fixing, else a copy (``attrs.evolve``) with the
        fixed strings; unchanged parts are shared, not copied.
    """
    return cast(_M, _valid_value(message))


def _valid_value(value: Any) -> Any:
    """``value`` with every string made valid: str, tuple of values, or an attrs record."""
    cls = value.__class__
    if cls is str:
        return value if value.isascii() else valid_text(value)
    if cls is tuple:
        items: list[Any] | None = None
        for i, item in enumerate(value):
            new = _valid_value(item)
            if new is not item:
                if items is None:
                    items = list(value)
                items[i] = new
        return value if items is None else tuple(items)
    fields = _FIELDS.get(cls)
    if fields is None:
        if not attrs.has(cls):
            return value  # None, bool, int, float, mappings: no text of ours to fix
        fields = _FIELDS[cls] = tuple((f.name, f.alias) for f in attrs.fields(cls))
    changes = {}
    for name, alias in fields:
        old = getattr(value, name)
        if old.__class__ is str and old.isascii():
            continue  # the common case, inlined
        new = _valid_value(old)
        if new is not old:
            changes[alias] = new
    return attrs.evolve(value, **changes) if changes else value


#: attrs class -> its fields as (attribute name, ``__init__`` name); filled on first use.
_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


@attrs.define
class SurrogateJoiner:
    """Joins surrogate pairs split across consecutive deltas of one text stream.

    Use one joiner per stream (the text of one message or block, one reasoning stream, one
    tool call's arguments): ``push`` each delta and publish what it returns, then publish
    ``flush()`` when the stream ends. The published pieces are valid text and their
    concatenation equals ``valid_text`` of the concatenated deltas.

    A high surrogate at the end of a delta is held back until the next delta shows whether its
    low half follows; nothing else is ever held.
    """

    _held: str = ""

    def push(self, delta: str) -> str:
        """Return the valid text of ``held + delta``, holding back a trailing high surrogate.

        Args:
            delta: the next piece of the stream, as decoded (may hold lone surrogates).
        Returns:
            Text safe to publish now; ``""`` when ``delta`` was only a held-back high surrogate.
            ``delta`` itself (the same object) when it is ASCII and nothing was held.
        """
        if self._held:
            delta, self._held = self._held + delta, ""
        elif delta.isascii():
            return delta
        if delta and "\ud800" <= delta[-1] <= "\udbff":
            delta, self._held = delta[:-1], delta[-1]
        return valid_text(delta)

    def flush(self) -> str:
        """Return the held-back text (a lone high surrogate, as U+FFFD) and reset.

        Returns:
            ``""`` when nothing is held, else ``REPLACEMENT``.
        """
        if not self._held:
            return ""
        held, self._held = self._held, ""
        return valid_text(held)
