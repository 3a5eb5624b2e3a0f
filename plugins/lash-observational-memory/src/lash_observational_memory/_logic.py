"""Pure logic: token estimates, safe cut points, the coverage chain, the observation block,
the observer / reflector prompts and the parsing of their answers.

Rule: no I/O, no clock, no hooks; every function is deterministic in its arguments, so the
block rendered from the same records is the same bytes in any process.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Sequence

import attrs

from lash_kernel.plugin import Message, ModelRequest, TextPart, ToolCallPart, ToolResultPart

from ._records import Activation, Observation, ObservationLine, Reflection

__all__ = [
    "BLOCK_HEADER",
    "MemoryRecords",
    "View",
    "chunk_ranges",
    "estimate_tokens",
    "iso_date",
    "line_tokens",
    "messages_digest",
    "messages_tokens",
    "observer_request",
    "parse_lines",
    "reflector_request",
    "render_block",
    "render_lines",
    "safe_cut",
]

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
PART_CHARS_IN_PROMPT = 4_000  # one part's share of an observer prompt, characters

BLOCK_HEADER = (
    "Observations of the earlier conversation (the messages they cover are not shown). "
    "Each line: [priority] date observed (date it refers to): observation."
)


# ------------------------------------------------------------------------------------ tokens
def _part_chars(part: object) -> int:
    if isinstance(part, TextPart):
        return len(part.text)
    if isinstance(part, ToolCallPart):
        return len(part.name) + len(part.arguments)
    if isinstance(part, ToolResultPart):
        return len(part.output)
    return len(getattr(part, "text", "") or "")


def estimate_tokens(message: Message) -> int:
    """Estimated tokens of one message: characters / 4 (rounded up) plus 4 of framing.

    A deliberate estimate (no tokenizer dependency): every threshold of the plugin is in
    these units. Returns a positive int.
    """
    chars = sum(_part_chars(p) for p in message.parts)
    return -(-chars // CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS


def messages_tokens(messages: Iterable[Message]) -> int:
    """Sum of ``estimate_tokens`` over ``messages``."""
    return sum(estimate_tokens(m) for m in messages)


def render_lines(lines: Iterable[ObservationLine]) -> str:
    """Lines as they appear in the block: ``- [high] 2025-01-05 (about 2025-01-10): text``."""
    out = []
    for line in lines:
        about = f" (about {line.refers_to})" if line.refers_to else ""
        out.append(f"- [{line.priority}] {line.observed_on}{about}: {line.text}")
    return "\n".join(out)


def line_tokens(lines: Sequence[ObservationLine]) -> int:
    """Estimated tokens of ``lines`` as rendered (characters / 4, rounded up)."""
    return -(-len(render_lines(lines)) // CHARS_PER_TOKEN) if lines else 0


def iso_date(epoch_s: float) -> str:
    """``YYYY-MM-DD`` (UTC) of a time in seconds since the epoch."""
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_s))


# ------------------------------------------------------------------------------------ coverage
def messages_digest(messages: Iterable[Message]) -> str:
    """Hex sha256 of messages (role and every part's fields, canonical JSON): what an
    observation records about the messages it covers, checked before they leave the view."""
    h = hashlib.sha256()
    for m in messages:
        parts = [[type(p).__name__, attrs.asdict(p)] for p in m.parts]  # type: ignore[arg-type]
        h.update(json.dumps([m.role, parts], sort_keys=True, separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


def safe_cut(messages: Sequence[Message], i: int) -> bool:
    """True when cutting ``messages`` before position ``i`` keeps every tool call with its
    results: ``i`` is 0, or a position whose message is not a tool result, or the end when the
    last message is not an assistant message still waiting for tool results."""
    n = len(messages)
    if i <= 0:
        return i == 0
    if i < n:
        return messages[i].role != "tool"
    if i == n:
        last = messages[-1]
        return not (last.role == "assistant" and last.tool_calls)
    return False


def chunk_ranges(messages: Sequence[Message], start: int, stop: int, max_tokens: int) -> list[tuple[int, int]]:
    """Split ``messages[start:stop]`` into observer chunks at safe cut points.

    Each chunk is the longest run from its start whose estimated tokens stay within
    ``max_tokens``; a single exchange larger than that is one chunk of its own.
    Args:
        messages: the frame's messages.
        start: first position (a safe cut).
        stop: end position; cut back to the last safe cut at or before it.
        max_tokens: token cap of one chunk (estimated).
    Returns:
        ``[(start, end), ...]``, contiguous, possibly empty.
    """
    while stop > start and not safe_cut(messages, stop):
        stop -= 1
    out: list[tuple[int, int]] = []
    s = start
    while s < stop:
        tokens, best, i = 0, None, s
        while i < stop:
            tokens += estimate_tokens(messages[i])
            i += 1
            if safe_cut(messages, i):
                if tokens <= max_tokens or best is None:
                    best = i
                if tokens > max_tokens:
                    break
        if best is None:
            break
        out.append((s, best))
        s = best
    return out


@attrs.define
class MemoryRecords:
    """A session's records of one frame, in commit order, with a digest cache (a range counts
    as verified again only when its messages equal the ones it was verified on).

    Attributes:
        frame_id: the frame they belong to.
        observations, reflections: stored records of that frame, commit order.
        activation: the latest activation of that frame, or None.
    """

    frame_id: str
    observations: list[Observation] = attrs.Factory(list)
    reflections: list[Reflection] = attrs.Factory(list)
    activation: Activation | None = None
    _valid: dict[tuple[int, int, str], tuple[Message, ...]] = attrs.Factory(dict)
    _memo: tuple[int, int, tuple[Message, ...], tuple[Observation, ...]] | None = None

    @classmethod
    def of(
        cls, frame_id: str, observations: Iterable[Observation], reflections: Iterable[Reflection],
        activations: Iterable[Activation],
    ) -> MemoryRecords:
        """Keep the records of ``frame_id`` (each iterable in commit order)."""
        acts = [a for a in activations if a.frame_id == frame_id]
        return cls(
            frame_id=frame_id,
            observations=[o for o in observations if o.frame_id == frame_id],
            reflections=[r for r in reflections if r.frame_id == frame_id],
            activation=acts[-1] if acts else None,
        )

    def valid(self, obs: Observation, messages: Sequence[Message]) -> bool:
        """True when ``messages[obs.start:obs.end]`` exist and match the observation's digest."""
        if obs.end > len(messages) or obs.start >= obs.end:
            return False
        key = (obs.start, obs.end, obs.covered_sha256)
        covered = messages[obs.start : obs.end]
        seen = self._valid.get(key)
        if seen is not None and seen == tuple(covered):
            return True  # equal to messages verified before (identical objects compare at once)
        if messages_digest(covered) != obs.covered_sha256:
            return False
        self._valid[key] = tuple(covered)
        return True

    def chain(self, messages: Sequence[Message]) -> list[Observation]:
        """The observations that cover ``messages`` contiguously from position 0: at each
        position the first valid observation (commit order) starting there. Overlapping
        duplicates (a synchronous and a background run of the same chunk) drop out."""
        memo, count = self._memo, len(self.observations)
        out: list[Observation] = []
        p = 0
        if memo is not None and memo[0] == count and len(messages) >= memo[1]:
            prefix = tuple(messages[: memo[1]])
            if prefix == memo[2]:  # identical objects compare in C; equal ones verify the same
                out, p = list(memo[3]), memo[1]
        by_start: dict[int, list[Observation]] = {}
        for o in self.observations:
            if o.start >= p:
                by_start.setdefault(o.start, []).append(o)
        while p in by_start:
            nxt = next((o for o in by_start[p] if self.valid(o, messages)), None)
            if nxt is None:
                break
            out.append(nxt)
            p = nxt.end
        self._memo = (count, p, tuple(messages[:p]), tuple(out))
        return out

    def reflection(self, through: int | None) -> Reflection | None:
        """The first reflection (commit order) with this ``through``, or None."""
        if through is None:
            return None
        return next((r for r in self.reflections if r.through == through), None)

    def view(self, messages: Sequence[Message], activation: Activation | None = None) -> View:
        """The prompt view these records give ``messages`` (the frame, oldest first).

        Args:
            messages: the frame's messages as the model would get them.
            activation: the activation to apply instead of the latest stored one.
        """
        chain = self.chain(messages)
        ends = [0] + [o.end for o in chain]
        act = activation if activation is not None else self.activation
        through = max((e for e in ends if e <= act.through), default=0) if act is not None else 0
        head = self.reflection(act.reflection_through if act is not None else None)
        if head is not None and head.through > through:
            head = None  # never lean on a reflection past what is verifiably covered
        floor = head.through if head is not None else 0
        active = tuple(o for o in chain if o.start >= floor and o.end <= through)
        return View(through=through, head=head, active=active, chain_end=ends[-1], chain=tuple(chain))


@attrs.frozen(kw_only=True)
class View:
    """What the model is shown, derived from the records and the frame's messages.

    Attributes:
        through: messages before this position are covered by the block and left out.
        head: the reflection heading the block, or None.
        active: the observations in the block after the head, in message order.
        chain_end: how far the stored (buffered or active) observations cover, contiguously.
        chain: every observation on the coverage chain.
    """

    through: int
    head: Reflection | None
    active: tuple[Observation, ...]
    chain_end: int
    chain: tuple[Observation, ...]

    @property
    def block_tokens(self) -> int:
        """Estimated tokens of the block's lines (reflection plus active observations)."""
        return (self.head.tokens if self.head is not None else 0) + sum(o.tokens for o in self.active)

    def block_lines(self) -> tuple[tuple[ObservationLine, ...], tuple[ObservationLine, ...]]:
        """``(reflection lines, observation lines)`` of the block, oldest first."""
        refl = self.head.lines if self.head is not None else ()
        return refl, tuple(line for o in self.active for line in o.lines)


def render_block(view: View) -> str | None:
    """The observation block's text (None when there is nothing in it): the same bytes for
    the same records, so the prompt prefix is stable between activations."""
    refl, obs = view.block_lines()
    if not refl and not obs and view.through == 0:
        return None
    sections = [BLOCK_HEADER]
    if refl:
        sections.append("## Reflections\n" + render_lines(refl))
    if obs:
        sections.append("## Observations\n" + render_lines(obs))
    return "<observations>\n" + "\n\n".join(sections) + "\n</observations>"


# ------------------------------------------------------------------------------------ prompts
OBSERVER_SYSTEM = """You are the observer of a long conversation between a user and an AI agent.
Write down what must be remembered from the new messages, as short dated lines:

- [high|medium|low] YYYY-MM-DD (about YYYY-MM-DD): observation

Use the date given as today for the first date; add "(about ...)" only when the conversation
names the date a fact refers to. Keep facts, decisions, preferences, open tasks and the
results of tool work (numbers, names, paths, outcomes); drop chatter and anything already in
the previous observations. high = the user's goals, constraints and decisions; medium =
useful facts and results; low = details. One observation per line, nothing else."""

REFLECTOR_SYSTEM = """You are the reflector of a long conversation's observation log.
Rewrite the observations below into a shorter log in the same format:

- [high|medium|low] YYYY-MM-DD (about YYYY-MM-DD): observation

Merge duplicates, drop facts later observations superseded, keep every high-priority item,
keep dates, drop low-priority details that no longer matter. One observation per line,
nothing else."""


def _transcript(messages: Sequence[Message]) -> str:
    def cap(text: str) -> str:
        return text if len(text) <= PART_CHARS_IN_PROMPT else text[:PART_CHARS_IN_PROMPT] + " [...]"

    out = []
    for m in messages:
        for p in m.parts:
            if isinstance(p, TextPart) and p.text:
                out.append(f"[{m.role}] {cap(p.text)}")
            elif isinstance(p, ToolCallPart):
                out.append(f"[tool call {p.name}] {cap(p.arguments)}")
            elif isinstance(p, ToolResultPart):
                err = " error" if p.is_error else ""
                out.append(f"[tool result {p.name}{err}] {cap(p.output)}")
    return "\n".join(out)


def _tail(lines: Sequence[ObservationLine], max_tokens: int) -> tuple[ObservationLine, ...]:
    """The latest lines whose rendering fits ``max_tokens``."""
    out: list[ObservationLine] = []
    budget = max_tokens * CHARS_PER_TOKEN
    for line in reversed(lines):
        size = len(render_lines([line])) + 1
        if size > budget:
            break
        budget -= size
        out.append(line)
    return tuple(reversed(out))


def observer_request(
    messages: Sequence[Message],
    previous: Sequence[ObservationLine],
    *,
    today: str,
    previous_tokens: int,
    max_output_tokens: int | None,
) -> ModelRequest:
    """The observer's request for one chunk.

    Args:
        messages: the chunk, oldest first.
        previous: earlier observation lines, oldest first (the last ``previous_tokens`` of
            them are shown as context).
        today: ``YYYY-MM-DD``.
        previous_tokens: token budget of the context.
        max_output_tokens: cap of the answer, or None.
    Returns:
        A ``ModelRequest`` with an empty model (the caller's ``complete`` fills it in).
    """
    context = render_lines(_tail(previous, previous_tokens)) or "(none)"
    text = (
        f"Today is {today}.\n\nPrevious observations:\n{context}\n\n"
        f"New messages:\n{_transcript(messages)}\n\nWrite the new observations."
    )
    return ModelRequest(
        model="", system=OBSERVER_SYSTEM, messages=(Message.user(text),), max_output_tokens=max_output_tokens
    )


def reflector_request(
    refl: Sequence[ObservationLine], obs: Sequence[ObservationLine], *, today: str, max_output_tokens: int | None
) -> ModelRequest:
    """The reflector's request: condense the block's lines (reflection lines first)."""
    text = f"Today is {today}.\n\nObservations:\n{render_lines([*refl, *obs])}\n\nWrite the condensed log."
    return ModelRequest(
        model="", system=REFLECTOR_SYSTEM, messages=(Message.user(text),), max_output_tokens=max_output_tokens
    )


_LINE = re.compile(
    r"^\s*(?:[-*\u2022]|\d+[.)])?\s*"
    r"(?:\[?\s*(?P<p>high|medium|low)\s*\]?\s*[:\-\u2013]?\s*)?"
    r"(?:(?P<d>\d{4}-\d{2}-\d{2})\s*)?"
    r"(?:\(\s*(?:about|refers to)\s*(?P<r>\d{4}-\d{2}-\d{2})\s*\)\s*)?"
    r"[:\-\u2013]?\s*(?P<t>.*?)\s*$",
    re.IGNORECASE,
)
_ABOUT = re.compile(r"\(\s*(?:about|refers to)\s*(\d{4}-\d{2}-\d{2})\s*\)", re.IGNORECASE)


def parse_lines(text: str, *, today: str) -> tuple[ObservationLine, ...]:
    """Read an observer's or reflector's answer leniently: one observation per non-empty
    line; a missing priority is ``medium``, a missing date is ``today``; headings, tags and
    blank lines are skipped. Never raises."""
    out: list[ObservationLine] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith(("#", "<", "```")):
            continue
        m = _LINE.match(stripped)
        if m is None or not m.group("t"):
            continue
        body, refers = m.group("t"), m.group("r")
        if refers is None and (about := _ABOUT.search(body)) is not None:
            refers = about.group(1)
            body = (body[: about.start()] + body[about.end() :]).strip(" :")
        if not body:
            continue
        prio = (m.group("p") or "medium").lower()
        out.append(
            ObservationLine(
                priority=prio,  # type: ignore[arg-type]
                observed_on=m.group("d") or today,
                refers_to=refers,
                text=" ".join(body.split()),
            )
        )
    return tuple(out)
