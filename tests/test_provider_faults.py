"""Every provider fault, through the real provider HTTP code and the real driver.

An ``httpx.MockTransport`` handler serves a scripted sequence of responses (or raises the httpx
error a real connection would raise). For each fault the test checks the activity stream the host
sees (request started, retry status, attempt reset, request started again, ...), the number of HTTP
requests, the committed outcome, what a fresh ``SqliteStore`` on the same file holds, and that a
follow-up turn on the same session (in a new core, so history comes back from disk) goes out in
a shape the API accepts.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest

from lash_kernel.activity import ModelAttemptReset, ModelRequestStarted, RetryStatus, TurnActivity
from lash_kernel.outcomes import Finished, Stopped
from lash_kernel.providers.anthropic import AnthropicProvider
from lash_kernel.providers.openai_chat import OpenAIChatProvider
from lash_kernel.providers.openai_responses import OpenAIResponsesProvider
from lash_kernel.runtime.core import LashCore
from lash_kernel.runtime.driver import RetryPolicy
from lash_kernel.runtime.session import TurnResult
from lash_kernel.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio

MAX_ATTEMPTS = 3
FIRST_TRY = "Lost words from the failed attempt"
ANSWER = "The recovered answer."
FOLLOW_UP_ANSWER = "Happy to help again."
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}


# ---------------------------------------------------------------------------------------------
# Wire formats, one per API
# ---------------------------------------------------------------------------------------------


def _data(payload: Any) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


def _named(name: str, payload: Any) -> str:
    return f"event: {name}\n" + _data(payload)


class Chat:
    """OpenAI Chat Completions: terminal evidence is a ``finish_reason`` or ``data: [DONE]``."""

    name = "openai"
    path = "/v1/chat/completions"

    @staticmethod
    def provider(transport: httpx.AsyncBaseTransport) -> OpenAIChatProvider:
        return OpenAIChatProvider(api_key="sk-test", transport=transport)

    @staticmethod
    def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-F1",
            "object": "chat.completion.chunk",
            "created": 1786465029,
            "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    @classmethod
    def partial(cls, text: str) -> str:
        """Text deltas and nothing else: no finish_reason, no usage, no [DONE]."""
        body = _data(cls._chunk({"role": "assistant", "content": ""}))
        return body + "".join(_data(cls._chunk({"content": w})) for w in text.split(" ") if w)

    @classmethod
    def ok(cls, text: str) -> str:
        usage = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        return (
            cls.partial(text)
            + _data(cls._chunk({}, "stop"))
            + _data({**cls._chunk({}), "choices": [], "usage": usage})
            + _data("[DONE]")
        )

    @classmethod
    def malformed(cls) -> str:
        return 'data: {"id":"chatcmpl-F1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel\n\n'

    @classmethod
    def wrong_types(cls) -> str | None:
        """Valid JSON of the wrong shape: ``delta`` is a string, not an object."""
        return _data(cls._chunk({"role": "assistant", "content": ""})) + _data({**cls._chunk({}), "choices": [{"index": 0, "delta": "Hello"}]})

    @staticmethod
    def error_body(status: int, message: str) -> str:
        codes = {400: "invalid_request_error", 401: "invalid_api_key", 403: "unsupported_country_region_territory", 404: "model_not_found"}
        return json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": codes.get(status)}})

    @staticmethod
    def stream_error(retryable: bool) -> str:
        """OpenRouter-style ``error`` object sent mid-stream (always a retryable stream error)."""
        return _data({"id": "gen-1", "object": "chat.completion.chunk", "error": {"code": 502, "message": "Provider returned error"}})

    @staticmethod
    def followup(body: dict[str, Any]) -> list[tuple[str, str]]:
        """(role, text) of the request; checks the body is a valid Chat Completions request."""
        assert body["stream"] is True and body["model"] == "m"
        return [(m["role"], m["content"]) for m in body["messages"]]


class Anthropic:
    """Anthropic Messages: terminal evidence is ``message_stop``."""

    name = "anthropic"
    path = "/v1/messages"

    @staticmethod
    def provider(transport: httpx.AsyncBaseTransport) -> AnthropicProvider:
        return AnthropicProvider(api_key="sk-ant-test", transport=transport)

    @staticmethod
    def partial(text: str) -> str:
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_01F",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1},
            },
        }
        body = _named("message_start", start) + _named("ping", {"type": "ping"})
        body += _named("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        for w in text.split(" "):
            if w:
                delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}
                body += _named("content_block_delta", delta)
        return body

    @classmethod
    def ok(cls, text: str) -> str:
        end = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 5}}
        return (
            cls.partial(text)
            + _named("content_block_stop", '{"type":"content_block_stop","index":0     }')
            + _named("message_delta", end)
            + _named("message_stop", '{"type":"message_stop"   }')
        )

    @classmethod
    def malformed(cls) -> str:
        start = cls.partial("").split("event: ping")[0]
        return start + 'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_bl\n\n'

    @classmethod
    def wrong_types(cls) -> str | None:
        """Valid JSON of the wrong shape: a proxy's ``error`` event whose error is a bare string."""
        return cls.partial("").split("event: ping")[0] + _named("error", {"type": "error", "error": "Overloaded"})

    @staticmethod
    def error_body(status: int, message: str) -> str:
        kinds = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error"}
        return json.dumps({"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": message}, "request_id": "req_011F"})

    @staticmethod
    def stream_error(retryable: bool) -> str:
        kind = "overloaded_error" if retryable else "invalid_request_error"
        return _named("error", {"type": "error", "error": {"type": kind, "message": f"{kind} mid-stream"}})

    @staticmethod
    def followup(body: dict[str, Any]) -> list[tuple[str, str]]:
        assert body["stream"] is True and body["model"] == "m" and body["max_tokens"] > 0
        roles = [m["role"] for m in body["messages"]]
        assert roles[0] == "user" and all(a != b for a, b in zip(roles, roles[1:])), roles  # must alternate
        return [
            (m["role"], b["text"]) for m in body["messages"] for b in m["content"] if b["type"] == "text"
        ]


class Responses:
    """OpenAI Responses: terminal evidence is ``response.completed`` (or incomplete / failed)."""

    name = "openai-responses"
    path = "/v1/responses"

    @staticmethod
    def provider(transport: httpx.AsyncBaseTransport) -> OpenAIResponsesProvider:
        return OpenAIResponsesProvider(api_key="sk-test", transport=transport)

    @staticmethod
    def _response(status: str, output: list[Any], error: Any = None) -> dict[str, Any]:
        usage = {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 17}
        return {"id": "resp_F1", "object": "response", "status": status, "model": "gpt-5.5", "output": output, "error": error, "usage": usage if status != "in_progress" else None}

    @classmethod
    def partial(cls, text: str) -> str:
        body = _named("response.created", {"type": "response.created", "response": cls._response("in_progress", []), "sequence_number": 0})
        item = {"id": "msg_F1", "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
        body += _named("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": item, "sequence_number": 1})
        for w in text.split(" "):
            if w:
                body += _named(
                    "response.output_text.delta",
                    {"type": "response.output_text.delta", "item_id": "msg_F1", "output_index": 0, "content_index": 0, "delta": w},
                )
        return body

    @classmethod
    def ok(cls, text: str) -> str:
        text = "".join(w for w in text.split(" ") if w)
        item = {"id": "msg_F1", "type": "message", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]}
        return (
            cls.partial(text)
            + _named("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item})
            + _named("response.completed", {"type": "response.completed", "response": cls._response("completed", [item])})
        )

    @classmethod
    def malformed(cls) -> str:
        return cls.partial("") + 'event: response.output_item.added\ndata: {"type":"response.output_item.added","item":{"id\n\n'

    @staticmethod
    def wrong_types() -> str | None:
        return None  # every field is type-checked: no wrong-typed chunk crashes this parser

    @staticmethod
    def error_body(status: int, message: str) -> str:
        return json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})

    @classmethod
    def stream_error(cls, retryable: bool) -> str:
        code = "server_error" if retryable else "invalid_prompt"
        failed = cls._response("failed", [], {"code": code, "message": f"{code} while generating"})
        return _named("response.failed", {"type": "response.failed", "response": failed})

    @staticmethod
    def followup(body: dict[str, Any]) -> list[tuple[str, str]]:
        assert body["stream"] is True and body["model"] == "m"
        out = []
        for item in body["input"]:
            role = item.get("role")
            texts = [c["text"] for c in item.get("content", ()) if c["type"] in ("input_text", "output_text")]
            out.extend((role, t) for t in texts)
        return out


SHAPES: list[Any] = [Chat, Anthropic, Responses]


def _words(text: str) -> str:
    """What the wire builders actually stream for ``text`` (they split on spaces)."""
    return "".join(w for w in text.split(" ") if w)


# ---------------------------------------------------------------------------------------------
# The scripted server
# ---------------------------------------------------------------------------------------------


class BreakingStream(httpx.AsyncByteStream):
    """A response body that yields some bytes, then fails the way a dying connection does
    (``error``), or stalls forever (``stall``: a server that stops sending but keeps the socket)."""

    def __init__(self, chunks: list[bytes], error: Exception | None, *, stall: bool = False) -> None:
        self.chunks = chunks
        self.error = error
        self.stall = stall

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.stall:
            await anyio.sleep_forever()
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        pass


Step = Callable[[httpx.Request], httpx.Response]


class Server:
    """Serves ``steps`` in order (each builds a response or raises); records the requests."""

    def __init__(self, shape: Any, steps: list[Step]) -> None:
        self.shape = shape
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == self.shape.path, request.url.path
        self.requests.append(request)
        if len(self.requests) > len(self.steps):
            raise AssertionError(f"unexpected request #{len(self.requests)}")
        return self.steps[len(self.requests) - 1](request)

    def body(self, n: int) -> dict[str, Any]:
        return json.loads(self.requests[n].content)


def sse(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Step:
    return lambda request: httpx.Response(status, headers={**SSE_HEADERS, **(headers or {})}, content=text.encode())


def status(code: int, body: str, headers: dict[str, str] | None = None) -> Step:
    return lambda request: httpx.Response(code, headers={"content-type": "application/json", **(headers or {})}, content=body.encode())


def breaks_after(text: str, error: Callable[[httpx.Request], Exception]) -> Step:
    def step(request: httpx.Request) -> httpx.Response:
        raw = text.encode()
        cut = [raw[: len(raw) // 2], raw[len(raw) // 2 :]]  # two reads, then the failure
        return httpx.Response(200, headers=SSE_HEADERS, stream=BreakingStream(cut, error(request)))

    return step


def _gzip_prefix(text: str) -> bytes:
    """A valid gzip stream prefix of ``text`` (sync-flushed, so it decodes incrementally)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)


def corrupt_gzip(text: str, *, streamed: bool) -> Step:
    """A ``content-encoding: gzip`` body that decodes to ``text`` and then turns to garbage.

    ``streamed=False`` hands httpx the bytes at once (it decodes them while building the
    response); ``streamed=True`` delivers them as a live stream, so the failure happens mid-read.
    """
    raw = [_gzip_prefix(text), b"\xff" * 64]
    headers = {**SSE_HEADERS, "content-encoding": "gzip"}

    def step(request: httpx.Request) -> httpx.Response:
        if streamed:
            return httpx.Response(200, headers=headers, stream=BreakingStream(raw, None))
        return httpx.Response(200, headers=headers, content=b"".join(raw))

    return step


def stalls_after(text: str) -> Step:
    return lambda request: httpx.Response(200, headers=SSE_HEADERS, stream=BreakingStream([text.encode()], None, stall=True))


def raises(error: Callable[[httpx.Request], Exception]) -> Step:
    def step(request: httpx.Request) -> httpx.Response:
        raise error(request)

    return step


# ---------------------------------------------------------------------------------------------
# Running a turn, then reopening the file
# ---------------------------------------------------------------------------------------------


@attrs.define
class Run:
    result: TurnResult
    slept: list[float]
    db: Path

    @property
    def kinds(self) -> list[str]:
        """Activity kinds without the hot deltas."""
        return [a.kind for a in self.result.activities if a.kind not in ("assistant_prose_delta", "reasoning_delta")]

    @property
    def attempts(self) -> list[int]:
        return [a.event.attempt for a in self.result.activities if isinstance(a.event, ModelRequestStarted)]


async def run_turn(shape: Any, server: Server, tmp_path: Path, *, request_timeout_s: float = 600.0) -> Run:
    db = tmp_path / "faults.db"
    provider = shape.provider(server.transport)
    core = LashCore(
        model_client=provider,
        model="m",
        store=SqliteStore(db),
        retry=RetryPolicy(max_attempts=MAX_ATTEMPTS, base_delay_s=0, jitter=0),
        request_timeout_s=request_timeout_s,
        entry_points=False,
    )
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)

    core._runtime.sleep = record_sleep
    try:
        result = await core.session("s").turn("hello there").run()
    finally:
        await provider.aclose()
        core.close()
    return Run(result=result, slept=slept, db=db)


def visible_text(activities: tuple[TurnActivity, ...]) -> str:
    """What a UI that honours ``model_attempt_reset`` shows: deltas of retracted attempts vanish."""
    shown: dict[str, str] = {}
    for a in activities:
        if a.kind == "assistant_prose_delta":
            shown[a.correlation_id] = shown.get(a.correlation_id, "") + a.event.text
        elif isinstance(a.event, ModelAttemptReset):
            shown[a.event.request_id] = ""
    return "".join(shown.values())


def check_reopened(run: Run) -> None:
    """A fresh store on the file: exactly one committed turn, nothing pending."""
    with SqliteStore(run.db) as store:
        turns = store.list_turns("s")
        assert [t.outcome for t in turns] == [run.result.outcome]
        assert tuple(n.payload for n in store.load_active_path("s")) == run.result.messages
        assert store.pending_inputs("s") == []


async def check_follow_up(shape: Any, run: Run, tmp_path: Path, expected_history: list[tuple[str, str]]) -> None:
    """A second turn in a new core: history comes from the file and goes out well-formed."""
    server = Server(shape, [sse(shape.ok(FOLLOW_UP_ANSWER))])
    provider = shape.provider(server.transport)
    core = LashCore(model_client=provider, model="m", store=SqliteStore(run.db), entry_points=False)
    try:
        result = await core.session("s").turn("and again").run()
        turns = core.session("s").turns()
    finally:
        await provider.aclose()
        core.close()
    assert result.outcome == Finished(text=_words(FOLLOW_UP_ANSWER))
    assert len(server.requests) == 1 and len(turns) == 2
    sent = shape.followup(server.body(0))
    assert [(r, t) for r, t in sent if r != "system"] == [*expected_history, ("user", "and again")]
    assert _words(FIRST_TRY) not in server.requests[0].content.decode()  # retracted text never resent


# ---------------------------------------------------------------------------------------------
# Recoverable faults: one failed attempt, then success
# ---------------------------------------------------------------------------------------------

RETRIED = ["model_request_started", "retry_status", "model_request_started", "usage", "turn_finished"]
RESET = ["model_request_started", "model_attempt_reset", "retry_status", "model_request_started", "usage", "turn_finished"]


def _fault_429(shape: Any) -> Step:
    return status(429, shape.error_body(429, "Rate limit reached for requests"), {"retry-after": "2"})


FAULTS: dict[str, tuple[Callable[[Any], Step], list[str], float, str]] = {
    # name: (first response, expected activity kinds, expected wait, text in the retry reason)
    "429-retry-after": (_fault_429, RETRIED, 2.0, "HTTP 429"),
    "500": (lambda shape: status(500, shape.error_body(500, "The server had an error")), RETRIED, 0.0, "HTTP 500"),
    "dropped-before-terminal-event": (lambda shape: sse(shape.partial(FIRST_TRY)), RESET, 0.0, "stream ended"),
    "malformed-json-chunk": (lambda shape: sse(shape.malformed()), RETRIED, 0.0, "malformed"),
    "mid-stream-disconnect": (
        lambda shape: breaks_after(shape.partial(FIRST_TRY), lambda r: httpx.ReadError("connection reset by peer", request=r)),
        RESET,
        0.0,
        "stream interrupted",
    ),
    "mid-stream-idle-timeout": (
        lambda shape: breaks_after(shape.partial(FIRST_TRY), lambda r: httpx.ReadTimeout("timed out", request=r)),
        RESET,
        0.0,
        "idle timeout",
    ),
    "read-timeout": (lambda shape: raises(lambda r: httpx.ReadTimeout("timed out", request=r)), RETRIED, 0.0, "timed out"),
    "connect-error": (
        lambda shape: raises(lambda r: httpx.ConnectError("connection refused", request=r)),
        RETRIED,
        0.0,
        "connection failed",
    ),
    "retryable-stream-error-event": (lambda shape: sse(shape.partial(FIRST_TRY) + shape.stream_error(True)), RESET, 0.0, "error"),
    "wrong-typed-json-chunk": (lambda shape: sse(shape.wrong_types()), RETRIED, 0.0, "malformed stream chunk"),
    "corrupt-gzip-body": (lambda shape: corrupt_gzip(shape.partial(FIRST_TRY), streamed=False), RETRIED, 0.0, "undecodable"),
    "corrupt-gzip-mid-stream": (lambda shape: corrupt_gzip(shape.partial(FIRST_TRY), streamed=True), RESET, 0.0, "undecodable"),
    # the server stops sending but keeps the connection: the driver's per-attempt deadline fires
    "stalled-stream-deadline": (lambda shape: stalls_after(shape.partial(FIRST_TRY)), RESET, 0.0, "no complete response within"),
}
DEADLINE_S = {"stalled-stream-deadline": 0.25}
FAULT_CASES = [
    pytest.param(shape, fault, id=f"{shape.name}-{fault}")
    for shape in SHAPES
    for fault in FAULTS
    if not (fault == "wrong-typed-json-chunk" and shape.wrong_types() is None)
]


@pytest.mark.parametrize(("shape", "fault"), FAULT_CASES)
async def test_fault_then_success_retries_and_commits_only_the_answer(shape: Any, fault: str, tmp_path: Path) -> None:
    first, kinds, wait_s, reason = FAULTS[fault]
    server = Server(shape, [first(shape), sse(shape.ok(ANSWER))])
    with anyio.fail_after(30):
        run = await run_turn(shape, server, tmp_path, request_timeout_s=DEADLINE_S.get(fault, 600.0))

    assert run.kinds == kinds
    assert run.attempts == [1, 2]
    assert len(server.requests) == 2
    assert server.body(0) == server.body(1)  # the retry sends the same request
    retry = [a.event for a in run.result.activities if isinstance(a.event, RetryStatus)]
    assert [(r.attempt, r.max_attempts, r.wait_s) for r in retry] == [(1, MAX_ATTEMPTS, wait_s)]
    assert reason in retry[0].reason
    assert run.slept == [wait_s]
    if "model_attempt_reset" in kinds:
        reset = next(a for a in run.result.activities if isinstance(a.event, ModelAttemptReset))
        assert reset.event.attempt == 1 and reset.correlation_id == retry[0].request_id
        streamed_before = [a for a in run.result.activities if a.kind == "assistant_prose_delta" and a.seq < reset.seq]
        assert "".join(a.event.text for a in streamed_before) == _words(FIRST_TRY)

    answer = _words(ANSWER)
    assert run.result.outcome == Finished(text=answer)
    assert [m.role for m in run.result.messages] == ["user", "assistant"]
    assert run.result.messages[-1].text == answer  # nothing of the failed attempt is kept
    assert visible_text(run.result.activities) == answer
    check_reopened(run)
    await check_follow_up(shape, run, tmp_path, [("user", "hello there"), ("assistant", answer)])


# ---------------------------------------------------------------------------------------------
# Unrecoverable faults
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
async def test_retries_exhausted_stop_with_provider_error(shape: Any, tmp_path: Path) -> None:
    steps = [status(500, shape.error_body(500, f"upstream failure #{i}")) for i in range(MAX_ATTEMPTS)]
    server = Server(shape, steps)
    run = await run_turn(shape, server, tmp_path)

    assert run.kinds == ["model_request_started", "retry_status"] * (MAX_ATTEMPTS - 1) + [
        "model_request_started",
        "error",
        "turn_finished",
    ]
    assert run.attempts == list(range(1, MAX_ATTEMPTS + 1))
    assert len(server.requests) == MAX_ATTEMPTS
    assert run.slept == [0.0] * (MAX_ATTEMPTS - 1)
    outcome = run.result.outcome
    assert isinstance(outcome, Stopped) and outcome.reason == "provider_error"
    assert "HTTP 500" in outcome.detail and f"upstream failure #{MAX_ATTEMPTS - 1}" in outcome.detail
    assert [m.role for m in run.result.messages] == ["user"]
    check_reopened(run)
    await check_follow_up(shape, run, tmp_path, [("user", "hello there")])


NON_RETRYABLE = {
    400: "Invalid value for 'messages': unsupported content type.",
    401: "Incorrect API key provided: sk-test.",
    403: "Your organization is not allowed to use this model.",
    404: "The model 'm' does not exist or you do not have access to it.",
}


@pytest.mark.parametrize("code", list(NON_RETRYABLE))
@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
async def test_non_retryable_status_stops_after_one_request(shape: Any, code: int, tmp_path: Path) -> None:
    # a second step is scripted so that a wrong retry would succeed instead of failing loudly
    server = Server(shape, [status(code, shape.error_body(code, NON_RETRYABLE[code])), sse(shape.ok(ANSWER))])
    run = await run_turn(shape, server, tmp_path)

    assert run.kinds == ["model_request_started", "error", "turn_finished"]
    assert len(server.requests) == 1 and run.slept == []
    outcome = run.result.outcome
    assert isinstance(outcome, Stopped) and outcome.reason == "provider_error"
    assert f"HTTP {code}" in outcome.detail and NON_RETRYABLE[code] in outcome.detail
    error = next(a.event for a in run.result.activities if a.kind == "error")
    assert error.kind == "provider" and NON_RETRYABLE[code] in error.message
    check_reopened(run)
    await check_follow_up(shape, run, tmp_path, [("user", "hello there")])


@pytest.mark.parametrize("shape", [Anthropic, Responses], ids=["anthropic", "openai-responses"])
async def test_non_retryable_stream_error_event_stops_after_one_request(shape: Any, tmp_path: Path) -> None:
    """A 200 stream that reports a request problem (not an outage) is not retried."""
    server = Server(shape, [sse(shape.partial(FIRST_TRY) + shape.stream_error(False)), sse(shape.ok(ANSWER))])
    run = await run_turn(shape, server, tmp_path)

    # the streamed text is retracted before the error: nothing of it is committed
    assert run.kinds == ["model_request_started", "model_attempt_reset", "error", "turn_finished"]
    assert len(server.requests) == 1
    outcome = run.result.outcome
    assert isinstance(outcome, Stopped) and outcome.reason == "provider_error"
    assert ("invalid_request_error" if shape is Anthropic else "invalid_prompt") in outcome.detail
    assert [m.role for m in run.result.messages] == ["user"]  # streamed text is not committed
    check_reopened(run)
    await check_follow_up(shape, run, tmp_path, [("user", "hello there")])
