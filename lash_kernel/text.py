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

from typing import Any

import attrs

__all__ = ["REPLACEMENT", "SurrogateJoiner", "valid_message", "valid_text"]

REPLACEMENT = "\ufffd"


def valid_text(text: str) -> str:
    """Return ``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD.

    Args:
        text: any ``str``.
    Returns:
        ``text`` itself when it is already valid (the common case costs one ``encode``); else a
        new string that encodes as UTF-8.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def valid_message(message: Any) -> Any:
    """Return ``message`` (a ``Message``) with every text field made valid by ``valid_text``.

    Covers text and reasoning parts, tool-call names and arguments, tool-result names and
    outputs. Returns the same object when nothing needed fixing.
    """
    parts = tuple(_valid_part(p) for p in message.parts)
    if all(a is b for a, b in zip(parts, message.parts, strict=True)):
        return message
    return attrs.evolve(message, parts=parts)


_TEXT_FIELDS = ("text", "name", "arguments", "output")


def _valid_part(part: Any) -> Any:
    changes = {}
    for field in _TEXT_FIELDS:
        value = getattr(part, field, None)
        if isinstance(value, str):
            fixed = valid_text(value)
            if fixed is not value:
                changes[field] = fixed
    return attrs.evolve(part, **changes) if changes else part


@attrs.define
class SurrogateJoiner:
    """Joins surrogate pairs split across consecutive stream deltas.

    ``push(delta)`` returns the text that is safe to publish now: a high surrogate at the end
    of a delta is held back until the next delta shows whether its low half follows.
    ``flush()`` returns what is held (as U+FFFD) at the end of the stream.
    """

    _held: str = ""

    def push(self, delta: str) -> str:
        """Return the valid text of ``held + delta`` up to a trailing high surrogate."""
        text = self._held + delta
        self._held = ""
        if text and "\ud800" <= text[-1] <= "\udbff":
            text, self._held = text[:-1], text[-1]
        return valid_text(text)

    def flush(self) -> str:
        """Return the held-back text (a lone high surrogate becomes U+FFFD) and reset."""
        held, self._held = self._held, ""
        return valid_text(held)
