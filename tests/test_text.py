"""lash_kernel.text: valid_text, valid_message and SurrogateJoiner."""

from __future__ import annotations

import os
import typing
from typing import Any

import attrs
import pytest

from lash_kernel.messages import (
    Attachment,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from lash_kernel.text import REPLACEMENT, SurrogateJoiner, valid_message, valid_text

EMOJI = "\U0001f600"  # one code point; "\ud83d\ude00" in UTF-16 / JSON escapes
HIGH, LOW = "\ud83d", "\ude00"


def encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- valid_text ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "plain ascii", "h\xe9llo w\u00f6rld", f"emoji {EMOJI} \u4e2d\u6587", REPLACEMENT])
def test_valid_text_returns_the_same_object_when_already_valid(text: str) -> None:
    assert valid_text(text) is text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HIGH + LOW, EMOJI),  # an adjacent pair is joined into its code point
        (f"a{HIGH}{LOW}b", f"a{EMOJI}b"),
        ("\udbff\udfff", "\U0010ffff"),
        (HIGH, REPLACEMENT),  # lone high at the end
        (f"{HIGH}x", f"{REPLACEMENT}x"),  # lone high before a non-surrogate
        (LOW, REPLACEMENT),  # lone low
        (f"x{LOW}{HIGH}y", f"x{REPLACEMENT}{REPLACEMENT}y"),  # wrong order: two lone halves
        (f"{HIGH}{HIGH}{LOW}", f"{REPLACEMENT}{EMOJI}"),  # the second high pairs with the low
        (f"\xe9{HIGH}\xe9", f"\xe9{REPLACEMENT}\xe9"),
    ],
)
def test_valid_text_joins_pairs_and_replaces_lone_surrogates(text: str, expected: str) -> None:
    assert not encodes(text)
    fixed = valid_text(text)
    assert fixed == expected
    assert encodes(fixed)


def test_valid_text_replaces_surrogateescape_bytes() -> None:
    """An undecodable file name byte (PEP 383) becomes one U+FFFD per byte."""
    name = os.fsdecode(b"bad\xff")
    assert name == "bad\udcff" and not encodes(name)
    assert valid_text(name) == f"bad{REPLACEMENT}"
    assert valid_text(os.fsdecode(b"x\xfe\xffy")) == f"x{REPLACEMENT}{REPLACEMENT}y"


# -- valid_message ---------------------------------------------------------------------------

BAD = f"bad{HIGH}"
FIXED = f"bad{REPLACEMENT}"


def _bad_value(cls: type, field: attrs.Attribute[Any], hint: Any) -> Any:
    """A value for ``field`` of ``cls`` holding a lone surrogate wherever a string can go."""
    args = typing.get_args(hint)
    if hint is str or str in args:
        return BAD
    if hint is bool:
        return False
    if args and args[0] is Attachment:
        return (Attachment(media_type=BAD, data=BAD, name=BAD),)
    raise AssertionError(f"{cls.__name__}.{field.name}: field type {hint!r} is new; teach this test about it")


def _all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple):
        return [s for v in value for s in _all_strings(v)]
    if attrs.has(type(value)):
        return [s for f in attrs.fields(type(value)) for s in _all_strings(getattr(value, f.name))]
    return []


@pytest.mark.parametrize("cls", typing.get_args(Part), ids=lambda c: c.__name__)
def test_valid_message_fixes_every_string_of_every_part_type(cls: type) -> None:
    hints = typing.get_type_hints(cls)
    fields = attrs.fields(cls)
    part = cls(**{f.alias: _bad_value(cls, f, hints[f.name]) for f in fields})
    message = Message(role="assistant", parts=(TextPart(text="fine"), part))

    fixed = valid_message(message)

    assert fixed is not message and fixed.role == "assistant"
    assert fixed.parts[0] is message.parts[0]  # an unchanged part is shared, not copied
    strings = _all_strings(fixed.parts[1])
    assert strings and all(s == FIXED for s in strings)
    assert type(fixed.parts[1]) is cls
    # every str field was reached (none left with a lone surrogate)
    assert len(strings) == len(_all_strings(part))


def test_valid_message_returns_the_same_object_when_valid() -> None:
    message = Message(
        role="assistant",
        parts=(
            ReasoningPart(text=f"think {EMOJI}", signature="sig", provider="anthropic"),
            TextPart(text="h\xe9llo"),
            ToolCallPart(id="c1", name="t", arguments='{"a": 1}'),
        ),
    )
    assert valid_message(message) is message
    image = Attachment(media_type="image/png", data="AA==")
    tool = Message(role="tool", parts=(ToolResultPart(call_id="c1", name="t", output="ok", attachments=(image,)),))
    assert valid_message(tool) is tool


def test_valid_message_joins_a_pair_inside_one_field() -> None:
    message = Message(role="user", parts=(TextPart(text=f"a{HIGH}{LOW}"),))
    assert valid_message(message) == Message.user(f"a{EMOJI}")


# -- SurrogateJoiner -------------------------------------------------------------------------


def test_joiner_joins_a_pair_split_across_deltas() -> None:
    joiner = SurrogateJoiner()
    assert joiner.push(f"hi {HIGH}") == "hi "  # the high half is held back
    assert joiner.push(f"{LOW}!") == f"{EMOJI}!"
    assert joiner.flush() == ""


def test_joiner_holds_a_delta_that_is_only_a_high_surrogate() -> None:
    joiner = SurrogateJoiner()
    assert joiner.push(HIGH) == ""
    assert joiner.push(LOW) == EMOJI


def test_joiner_replaces_a_high_surrogate_not_followed_by_its_low_half() -> None:
    joiner = SurrogateJoiner()
    assert joiner.push(f"a{HIGH}") == "a"
    assert joiner.push("b") == f"{REPLACEMENT}b"


def test_joiner_flush_replaces_a_trailing_high_surrogate_and_resets() -> None:
    joiner = SurrogateJoiner()
    assert joiner.push(f"end{HIGH}") == "end"
    assert joiner.flush() == REPLACEMENT
    assert joiner.flush() == ""
    assert joiner.push("next") == "next"


def test_joiner_replaces_a_lone_low_surrogate() -> None:
    joiner = SurrogateJoiner()
    assert joiner.push(f"{LOW}x") == f"{REPLACEMENT}x"
    assert joiner.push("") == ""


def test_joiner_fast_path_returns_the_delta_itself() -> None:
    joiner = SurrogateJoiner()
    delta = "plain ascii delta"
    assert joiner.push(delta) is delta
    unicode = f"h\xe9llo {EMOJI}"
    assert joiner.push(unicode) is unicode


def test_joiner_output_is_valid_text_of_the_whole_for_every_split() -> None:
    """However a stream is cut into three deltas, the pieces are valid and add up to the whole."""
    whole = f"a{HIGH}{LOW}b{HIGH}c{LOW}{HIGH}{HIGH}{LOW}{HIGH}"
    expected = valid_text(whole)
    assert expected == f"a{EMOJI}b{REPLACEMENT}c{REPLACEMENT}{REPLACEMENT}{EMOJI}{REPLACEMENT}"
    for i in range(len(whole) + 1):
        for j in range(i, len(whole) + 1):
            joiner = SurrogateJoiner()
            pieces = [joiner.push(whole[:i]), joiner.push(whole[i:j]), joiner.push(whole[j:]), joiner.flush()]
            assert all(encodes(p) for p in pieces), (i, j, pieces)
            assert "".join(pieces) == expected, (i, j, pieces)
