"""Conversation messages: a role plus ordered, typed parts.

Rule: plain frozen data. Every part has a stable ``KIND`` tag used on the wire (see ``serde``);
provider adapters translate these into each API's own shapes and back.
"""

from __future__ import annotations

from typing import ClassVar, Literal, TypeAlias

import attrs

__all__ = [
    "Attachment",
    "Message",
    "Part",
    "ReasoningPart",
    "Role",
    "TextPart",
    "ToolCallPart",
    "ToolResultPart",
    "assistant_text",
    "repair_history",
]

Role: TypeAlias = Literal["system", "user", "assistant", "tool"]


@attrs.frozen(kw_only=True)
class TextPart:
    """Plain text.

    Attributes:
        text: the text, possibly empty.
    """

    KIND: ClassVar[str] = "text"
    text: str


@attrs.frozen(kw_only=True)
class ReasoningPart:
    """Model reasoning ("thinking") the provider exposed.

    Attributes:
        text: readable reasoning or its summary; may be empty when only ``encrypted`` is given.
        signature: provider signature that must be echoed back (Anthropic thinking), or None.
        encrypted: opaque encrypted reasoning to round-trip (OpenAI Responses), or None.
        provider: provider name that produced it; other providers drop or downgrade it.
        item_id: provider item id (Responses ``rs_...``), or None.
    """

    KIND: ClassVar[str] = "reasoning"
    text: str = ""
    signature: str | None = None
    encrypted: str | None = None
    provider: str | None = None
    item_id: str | None = None


@attrs.frozen(kw_only=True)
class ToolCallPart:
    """A tool call the model asked for.

    Attributes:
        id: the provider's call id; tool results refer to it.
        name: tool name as the model wrote it (may be unknown to the host).
        arguments: the raw JSON text of the arguments exactly as received, even if malformed;
            ``""`` means no arguments (treated as ``{}``).
    """

    KIND: ClassVar[str] = "tool_call"
    id: str
    name: str
    arguments: str = ""


@attrs.frozen(kw_only=True)
class Attachment:
    """A binary attachment to a tool result (an image an MCP server returned, a screenshot).

    Attributes:
        media_type: IANA media type, e.g. ``image/png``.
        data: the bytes, base64-encoded (standard alphabet, padded).
        name: optional label ("" for none).
    """

    KIND: ClassVar[str] = "attachment"
    media_type: str
    data: str
    name: str = ""

    @property
    def is_image(self) -> bool:
        """True for ``image/*`` media types."""
        return self.media_type.startswith("image/")

    @property
    def data_url(self) -> str:
        """The attachment as an RFC 2397 ``data:`` URL (what OpenAI's image inputs take)."""
        return f"data:{self.media_type};base64,{self.data}"

    def note(self) -> str:
        """A one-line text stand-in for APIs that cannot take this attachment."""
        label = f" {self.name!r}" if self.name else ""
        return f"[attachment{label}: {self.media_type}, {len(self.data) * 3 // 4} bytes, not shown]"


@attrs.frozen(kw_only=True)
class ToolResultPart:
    """The result of one tool call, fed back to the model.

    Attributes:
        call_id: id of the ``ToolCallPart`` this answers.
        name: tool name, for providers that want it.
        output: text the model sees (JSON text for structured results).
        is_error: True when the call failed (unknown tool, bad arguments, exception, timeout).
        attachments: images or other binary content returned with the result; providers that
            accept images in tool results send them, the others tell the model they exist.
    """

    KIND: ClassVar[str] = "tool_result"
    call_id: str
    name: str
    output: str
    is_error: bool = False
    attachments: tuple[Attachment, ...] = ()


Part: TypeAlias = TextPart | ReasoningPart | ToolCallPart | ToolResultPart


@attrs.frozen(kw_only=True)
class Message:
    """One conversation message.

    Attributes:
        role: ``user``, ``assistant``, ``tool`` (tool results) or ``system``.
        parts: ordered parts. Assistant messages may mix text, reasoning and tool calls;
            tool messages hold one ``ToolResultPart`` per call, in call order.
    """

    KIND: ClassVar[str] = "message"
    role: Role
    parts: tuple[Part, ...] = ()

    @classmethod
    def user(cls, text: str) -> Message:
        """Return a user message holding one text part."""
        return cls(role="user", parts=(TextPart(text=text),))

    @property
    def text(self) -> str:
        """Concatenated text of all ``TextPart`` parts ("" if none)."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> tuple[ToolCallPart, ...]:
        """The tool calls in this message, in order."""
        return tuple(p for p in self.parts if isinstance(p, ToolCallPart))


def assistant_text(messages: tuple[Message, ...] | list[Message]) -> str:
    """Return the text of the last assistant message in ``messages``, or "" if none."""
    for message in reversed(messages):
        if message.role == "assistant":
            return message.text
    return ""


INTERRUPTED_OUTPUT = "error: the tool call was interrupted before it returned a result"


def _is_consistent(messages: tuple[Message, ...]) -> bool:
    """True when each assistant message's tool calls are answered by the very next message, a
    tool message holding exactly their results in call order, and no other tool message
    exists: the shape ``repair_history`` produces (and the turn machine commits)."""
    expected: list[str] | None = None  # the call ids the next message must answer
    for message in messages:
        if expected is not None:
            if message.role != "tool" or [getattr(p, "call_id", None) for p in message.parts] != expected:
                return False
            expected = None
        elif message.role == "tool":
            return False
        elif message.role == "assistant":
            expected = [p.id for p in message.parts if type(p) is ToolCallPart] or None
    return expected is None


def repair_history(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """Make a history safe to send to any provider.

    Every assistant tool call gets a result: calls with no result (a crash or cancel mid-tool)
    get a synthetic error result saying the call was interrupted, placed right after the
    assistant message. Tool results that answer no call are dropped.

    Args:
        messages: history, oldest first.
    Returns:
        The same tuple object when it already has that shape (each call's results in the
        one tool message right after it, in call order), else a repaired copy; results
        spread over several tool messages or out of order are put in call order.
    """
    if _is_consistent(messages):  # what every commit writes: one cheap pass, no copies
        return messages
    out: list[Message] = []
    i = 0
    n = len(messages)
    while i < n:
        msg = messages[i]
        i += 1
        if msg.role == "tool":  # a result message not directly after its calls: stray
            continue
        out.append(msg)
        calls = msg.tool_calls if msg.role == "assistant" else ()
        if not calls:
            continue
        results: dict[str, ToolResultPart | None] = {}
        while i < n and messages[i].role == "tool":
            for part in messages[i].parts:
                if isinstance(part, ToolResultPart):
                    results.setdefault(part.call_id, part)
            i += 1
        ordered = [  # results answering calls this message did not make are dropped
            results.pop(call.id, None)
            or ToolResultPart(call_id=call.id, name=call.name, output=INTERRUPTED_OUTPUT, is_error=True)
            for call in calls
        ]
        out.append(Message(role="tool", parts=tuple(ordered)))
    return tuple(out)
