"""lash-tracing inside a real ``LashCore``: scripted turns, entry-point discovery, and the
``lash run`` CLI against a local OpenAI-compatible HTTP server (no network beyond 127.0.0.1)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from lash_kernel import ConfigError, LashCore, tool
from lash_kernel.testing import ScriptedModel, sse_body
from lash_kernel.trace import TRACE_SCHEMA_VERSION
from lash_kernel.usage import TokenUsage
from lash_tracing import REDACTED, TracingPlugin

SECRET = "sk-live-do-not-log-999"


@tool
def lookup(q: str, api_key: str = "") -> str:
    """Look something up.

    Args:
        q: the query.
        api_key: a credential the model should never have (it must not reach the trace).
    """
    return f"found {q}"


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def scripted(first: TokenUsage | None = None) -> ScriptedModel:
    """A tool call (``lookup``, with a secret argument), then the answer ``done``."""
    model = ScriptedModel()
    model.enqueue_tool_calls(
        ("lookup", {"q": "x", "api_key": SECRET}), usage=first or TokenUsage(input_tokens=100, output_tokens=20)
    )
    model.enqueue_text("done", usage=TokenUsage(input_tokens=140, output_tokens=8))
    return model


def fake_clock():
    ticks = itertools.count()
    return lambda: 1000.0 + next(ticks) / 64


def fake_ids():
    ids = itertools.count(1)
    return lambda: f"id{next(ids)}"


# ------------------------------------------------------------------------------- scripted turns


@pytest.mark.anyio
async def test_scripted_turn_with_a_tool_call_writes_exactly_these_records(tmp_path):
    path = tmp_path / "trace.jsonl"
    plugin = TracingPlugin(jsonl=path)
    core = LashCore(model_client=scripted(), model="m", tools=[lookup], plugins=[plugin], entry_points=False,
                    clock=fake_clock(), new_id=fake_ids())
    session = core.session("s1")
    turn = session.turn("hi")
    async for _ in turn.stream():
        pass
    assert turn.result.outcome.text == "done"
    tid = turn.result.turn_id
    assert path.read_bytes().count(b"\n") == 11  # flushed at turn end, before any close
    session.close()
    core.close()
    assert plugin.closed  # the core closed it (the plugin attached itself in lash_configure)

    lines = read_lines(path)
    m1, m2, call = f"{tid}:m1#1", f"{tid}:m2#1", f"{tid}:t:call_1"
    assert [(r["kind"], r["turn_id"], r["span_id"], r["parent_span_id"]) for r in lines] == [
        ("session.opened", None, "s1", None),
        ("turn.started", tid, tid, None),
        ("prompt.built", tid, tid, None),
        ("model_call.started", tid, m1, tid),
        ("model_call.completed", tid, m1, tid),
        ("tool_call.started", tid, call, tid),
        ("tool_call.completed", tid, call, tid),
        ("model_call.started", tid, m2, tid),
        ("model_call.completed", tid, m2, tid),
        ("usage", tid, tid, None),
        ("turn.finished", tid, tid, None),
        ("session.closed", None, "s1", None),
    ]
    assert {r["v"] for r in lines} == {TRACE_SCHEMA_VERSION}
    assert {r["session_id"] for r in lines} == {"s1"}
    times = [r["time_s"] for r in lines]
    assert times == sorted(times) and all(t >= 1000.0 for t in times)  # the core's (fake) clock
    by_span = {(r["kind"], r["span_id"]): r["attributes"] for r in lines}
    assert by_span[("turn.started", tid)] == {"model": "m", "provider": "scripted", "max_turns": 16}
    first = by_span[("model_call.completed", m1)]
    assert (first["attempt"], first["model"], first["finish_reason"]) == (1, "m", "tool_calls")
    assert first["response_model"] == "scripted"  # what the ScriptedModel reports
    assert (first["usage"]["input_tokens"], first["usage"]["output_tokens"]) == (100, 20)
    second = by_span[("model_call.completed", m2)]
    assert (second["finish_reason"], second["usage"]["input_tokens"], second["usage"]["output_tokens"]) == ("stop", 140, 8)
    started = by_span[("tool_call.started", call)]
    assert started["tool"] == "lookup" and started["call_id"] == "call_1"
    assert json.loads(started["arguments"]) == {"q": "x", "api_key": REDACTED}
    completed = by_span[("tool_call.completed", call)]
    assert (completed["is_error"], completed["output"]) == (False, "found x")
    assert completed["duration_s"] >= 0
    finished = by_span[("turn.finished", tid)]
    assert finished["outcome"] == {"type": "finished", "output": "assistant_message"}
    assert finished["head_revision"] == 1
    assert (finished["usage"]["input_tokens"], finished["usage"]["output_tokens"]) == (240, 28)
    assert SECRET.encode() not in path.read_bytes()


def test_usage_attributes_carry_all_five_token_buckets(tmp_path):
    path = tmp_path / "trace.jsonl"
    model = scripted(first=TokenUsage(input_tokens=100, output_tokens=20, cache_read_input_tokens=50,
                                      cache_write_input_tokens=5, reasoning_output_tokens=3))
    plugins = [TracingPlugin(jsonl=path)]
    with LashCore(model_client=model, model="m", tools=[lookup], plugins=plugins, entry_points=False) as core:
        core.run_sync("hi", session_id="s1")
    (completed, *_) = [r for r in read_lines(path) if r["kind"] == "model_call.completed"]
    assert completed["attributes"]["usage"] == {
        "input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 50, "cache_write_input_tokens": 5, "reasoning_output_tokens": 3,
    }


@pytest.mark.anyio
async def test_scripted_turn_exports_these_otel_spans():
    exporter = InMemorySpanExporter()
    plugin = TracingPlugin(span_exporter=exporter)
    with LashCore(model_client=scripted(), model="m", tools=[lookup], plugins=[plugin], entry_points=False) as core:
        session = core.session("s1")
        turn = session.turn("hi")
        async for _ in turn.stream():
            pass
        spans = exporter.get_finished_spans()  # exported at turn end
        assert len(spans) == 4
    assert len(exporter.get_finished_spans()) == 4  # nothing more on close

    assert sorted(s.name for s in spans) == ["chat m", "chat m", "execute_tool lookup", "invoke_agent lash"]
    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "invoke_agent lash" and root.kind == SpanKind.INTERNAL
    children = sorted((s for s in spans if s is not root), key=lambda s: s.start_time)
    assert [s.name for s in children] == ["chat m", "execute_tool lookup", "chat m"]
    for child in children:
        assert child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id
        assert root.start_time <= child.start_time <= child.end_time <= root.end_time
    chat1, tool_span, chat2 = children
    tid = turn.result.turn_id
    assert dict(root.attributes) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "lash",
        "gen_ai.conversation.id": "s1",
        "gen_ai.provider.name": "scripted",
        "gen_ai.request.model": "m",
        "lash.turn_id": tid,
        "lash.prompt.sha256": "",
        "gen_ai.usage.input_tokens": 240,
        "gen_ai.usage.output_tokens": 28,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "lash.outcome": "finished",
    }
    assert chat1.kind == SpanKind.CLIENT
    assert dict(chat1.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "scripted",
        "gen_ai.request.model": "m",
        "gen_ai.conversation.id": "s1",
        "lash.model_call.attempt": 1,
        "gen_ai.response.model": "scripted",
        "gen_ai.response.finish_reasons": ("tool_calls",),
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
    }
    assert chat2.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert chat2.attributes["gen_ai.usage.input_tokens"] == 140
    assert dict(tool_span.attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "lookup",
        "gen_ai.tool.call.id": "call_1",
        "gen_ai.tool.type": "function",
        "gen_ai.conversation.id": "s1",
    }


def test_failed_model_call_span_has_error_status_and_type():
    from opentelemetry.trace import StatusCode

    from lash_kernel import ProviderHTTPError
    from lash_kernel.runtime.driver import RetryPolicy

    exporter = InMemorySpanExporter()
    model = ScriptedModel()
    model.enqueue_error(ProviderHTTPError(503, "overloaded", provider="scripted"))
    model.enqueue_text("ok", usage=TokenUsage(input_tokens=3, output_tokens=1))
    with LashCore(model_client=model, model="m", plugins=[TracingPlugin(span_exporter=exporter)], entry_points=False,
                  retry=RetryPolicy(max_attempts=2, base_delay_s=0.0, jitter=0.0)) as core:
        core.run_sync("hi", session_id="s1")
    chats = sorted((s for s in exporter.get_finished_spans() if s.name == "chat m"), key=lambda s: s.start_time)
    assert [s.attributes["lash.model_call.attempt"] for s in chats] == [1, 2]
    failed, ok = chats
    assert failed.status.status_code == StatusCode.ERROR and "overloaded" in failed.status.description
    assert failed.attributes["error.type"] == "503" and failed.attributes["lash.retryable"] is True
    assert "gen_ai.response.finish_reasons" not in failed.attributes
    assert ok.status.status_code == StatusCode.UNSET and ok.attributes["gen_ai.usage.output_tokens"] == 1


# ------------------------------------------------------------------------------- entry point


def test_entry_point_plugin_is_discovered_and_configured(tmp_path):
    path = tmp_path / "ep.jsonl"
    core = LashCore(model_client=scripted(), model="m", tools=[lookup], plugin_config={"tracing": {"jsonl": str(path)}})
    try:
        names = {p.name for p in core.plugins()}
        assert {"tracing", "tracing.sink"} <= names
        core.run_sync("hi", session_id="s1")
    finally:
        core.close()
    kinds = [r["kind"] for r in read_lines(path)]
    assert kinds[0] == "session.opened" and kinds[-2:] == ["turn.finished", "session.closed"]
    assert kinds.count("model_call.completed") == 2 and kinds.count("tool_call.completed") == 1


def test_entry_point_plugin_is_inert_without_config():
    with LashCore(model_client=scripted(), model="m", tools=[lookup]) as core:
        names = {p.name for p in core.plugins()}
        assert "tracing" in names and "tracing.sink" not in names
        assert not core.hooks.implemented("lash_on_trace_record")  # no per-turn cost


@pytest.mark.parametrize(
    ("table", "message"),
    [({"jsonl": 5}, "jsonl"), ({"jsonl": "x", "colour": "red"}, "colour"), ({"otel_exporter": "jaeger"}, "otel_exporter")],
)
def test_bad_config_is_a_config_error(table, message):
    with pytest.raises(ConfigError, match=message):
        LashCore(model_client=scripted(), model="m", plugin_config={"tracing": table})


def test_a_plugin_shared_by_two_cores_closes_with_the_last(tmp_path):
    path = tmp_path / "shared.jsonl"
    plugin = TracingPlugin(jsonl=path)
    first = LashCore(model_client=scripted(), model="m", tools=[lookup], plugins=[plugin], entry_points=False)
    second = LashCore(model_client=scripted(), model="m", tools=[lookup], plugins=[plugin], entry_points=False)
    first.run_sync("hi", session_id="a")
    plugin.attach(first.plugin_host)  # attaching again to the same core changes nothing
    first.close()
    assert not plugin.closed  # still attached to the second core
    second.run_sync("hi", session_id="b")
    second.close()
    assert plugin.closed
    finished = [r["session_id"] for r in read_lines(path) if r["kind"] == "turn.finished"]
    assert finished == ["a", "b"]


def test_an_unwritable_jsonl_path_fails_core_construction(tmp_path):
    from lash_kernel import PluginHookError

    with pytest.raises(PluginHookError, match="tracing") as info:
        LashCore(model_client=scripted(), model="m", plugin_config={"tracing": {"jsonl": str(tmp_path)}})
    assert isinstance(info.value.__cause__, OSError)


# ------------------------------------------------------------------------------- lash run, end to end

MODEL = "fake-model"


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": MODEL,
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": MODEL, "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}


class FakeOpenAI:
    """Scripted OpenAI-compatible ``/v1/chat/completions`` server (streaming only), on 127.0.0.1."""

    def __init__(self) -> None:
        self.replies: deque[str] = deque()
        self.headers: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path == "/v1/chat/completions" and fake.replies:
                    status, ctype, body = 200, "text/event-stream", fake.replies.popleft()
                else:
                    status, ctype, body = 400, "application/json", '{"error": {"message": "no scripted reply"}}'
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def text(self, *pieces: str, prompt: int, completion: int) -> FakeOpenAI:
        chunks = [chunk({"role": "assistant", "content": ""}), *(chunk({"content": p}) for p in pieces)]
        self.replies.append(sse_body(*chunks, chunk(finish="stop"), usage_chunk(prompt, completion)))
        return self

    def tool_call(self, name: str, arguments: str, *, call_id: str) -> FakeOpenAI:
        call = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        chunks = [chunk({"role": "assistant", "tool_calls": [call]}), chunk(finish="tool_calls"), usage_chunk(12, 3)]
        self.replies.append(sse_body(*chunks))
        return self


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        fake.thread.join(timeout=5)


def test_lash_run_with_lash_toml_writes_the_trace(server, tmp_path):
    server.tool_call("lookup", '{"q": "x"}', call_id="call_7").text("Hel", "lo", prompt=30, completion=7)
    (tmp_path / "lash.toml").write_text('[plugins.tracing]\njsonl = "trace.jsonl"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LASH_", "OPENAI_", "ANTHROPIC_", "OPENROUTER_"))}
    env |= {"OPENAI_API_KEY": SECRET, "XDG_DATA_HOME": str(tmp_path / "xdg"), "COLUMNS": "200"}
    lash_script = Path(sys.executable).with_name("lash")
    proc = subprocess.run(
        [str(lash_script), "run", "--base-url", server.url, "--model", MODEL, "--json", "hi"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["text"] == "Hello"
    assert server.headers[0]["authorization"] == f"Bearer {SECRET}"  # the key was really used...

    trace = tmp_path / "trace.jsonl"
    raw = trace.read_bytes()
    assert SECRET.encode() not in raw and b"authorization" not in raw.lower()  # ...and never traced
    lines = read_lines(trace)
    kinds = [r["kind"] for r in lines]
    assert kinds[:11] == [
        "session.opened", "turn.started", "prompt.built",
        "model_call.started", "model_call.completed", "tool_call.started", "tool_call.completed",
        "model_call.started", "model_call.completed", "usage", "turn.finished",
    ]
    assert kinds[11:] == ["session.closed"]
    assert {r["session_id"] for r in lines} == {out["session_id"]}
    assert {r["turn_id"] for r in lines if r["turn_id"]} == {out["turn_id"]}
    started = next(r for r in lines if r["kind"] == "turn.started")
    assert started["attributes"]["model"] == MODEL and started["attributes"]["provider"] == "openai"
    completed = [r["attributes"] for r in lines if r["kind"] == "model_call.completed"]
    assert [(c["finish_reason"], c["usage"]["input_tokens"], c["usage"]["output_tokens"]) for c in completed] == [
        ("tool_calls", 12, 3), ("stop", 30, 7),
    ]
    tool_done = next(r["attributes"] for r in lines if r["kind"] == "tool_call.completed")
    assert tool_done["call_id"] == "call_7" and tool_done["is_error"] is True  # the CLI has no tool named lookup
    finished = next(r["attributes"] for r in lines if r["kind"] == "turn.finished")
    assert finished["usage"]["input_tokens"] == out["usage"]["input_tokens"] == 42
    assert finished["usage"]["output_tokens"] == out["usage"]["output_tokens"] == 10

    # from another directory, --config still puts the trace beside lash.toml
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    server.text("again", prompt=1, completion=1)
    again = subprocess.run(
        [str(lash_script), "--config", str(tmp_path / "lash.toml"), "run", "--base-url", server.url, "--model", MODEL, "hi"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert not (elsewhere / "trace.jsonl").exists()
    assert len(read_lines(trace)) > len(lines)

    view = subprocess.run([str(lash_script), "trace", "view", "trace.jsonl"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert view.returncode == 0, view.stderr
    assert view.stdout.strip() == "trace.html"
    html = (tmp_path / "trace.html").read_text(encoding="utf-8")
    assert html.count('data-kind="turn"') == 2 and html.count('data-kind="model_call"') == 3
    assert html.count('data-kind="tool_call"') == 1
