"""Build a demo trace with a real ``LashCore`` and screenshot ``lash trace view`` of it.

Usage (from the repository root, with lash-tracing, playwright and Debian's chromium installed)::

    python plugins/lash-tracing/scripts/screenshot_viewer.py            # -> docs/images/trace-viewer.png
    python plugins/lash-tracing/scripts/screenshot_viewer.py -o out.png --keep /tmp/demo

The trace is real: a ``LashCore`` with the tracing plugin's JSONL sink, the OpenAI chat provider
talking to an ``httpx.MockTransport`` (no network) and three turns:

1. a tool-using turn: the first model call gets HTTP 500 and is retried; the model then calls
   ``get_time`` three times (one call fails: an unknown city) and ``fetch_page`` (whose result
   is hostile HTML, to show it is escaped), then answers;
2. a turn stopped by ``max_output_tokens`` (finish reason ``length``): a normal stop;
3. a turn stopped by a non-retryable HTTP 400: ``provider_error``, an error.

A tool provider that takes ~0.3 s to list its tools stands in for an MCP server connecting, so
the start-up and prepare phases are visible. The browser test (``tests/test_viewer_browser.py``)
imports ``build_demo_trace`` and ``CHROMIUM_ARGS`` from this file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx

from lash_kernel import LashCore, tool
from lash_kernel.plugin import Tool, ToolOutput, hookimpl
from lash_kernel.providers.openai_chat import OpenAIChatProvider
from lash_kernel.runtime.driver import RetryPolicy
from lash_kernel.testing import sse_body
from lash_tracing import TracingPlugin

CHROMIUM = "/usr/bin/chromium"
#: Launch arguments for Debian's chromium under Playwright (checked on the CI machines).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run",
]
MODEL = "gpt-demo-mini"
HOSTILE = '<script>alert("xss")</script><img src=x onerror="alert(1)"> & </script> done'
ROOT = Path(__file__).resolve().parents[3]


@tool
def get_time(city: str) -> ToolOutput:
    """The local time in a city.

    Args:
        city: a city name.
    """
    times = {"Tokyo": "21:04 JST (UTC+9)", "Paris": "14:04 CET (UTC+1)"}
    if city not in times:
        return ToolOutput(text=f"unknown city {city!r}: no time zone on record", is_error=True)
    return ToolOutput(text=json.dumps({"city": city, "time": times[city]}))


@tool
def fetch_page(url: str) -> str:
    """Fetch a web page's text (here: canned hostile HTML).

    Args:
        url: the page.
    """
    return f"{url} says: {HOSTILE}"


class SlowToolProvider:
    """Stands in for an MCP server: the first ``list_tools`` takes ~0.3 s (connecting)."""

    name = "mcp"

    def __init__(self) -> None:
        self.connected = False

    async def list_tools(self) -> Sequence[Tool]:
        if not self.connected:
            await anyio.sleep(0.3)
            self.connected = True
        return [fetch_page]

    def close(self) -> None:
        pass


class DemoTools:
    """A host plugin that registers the slow tool provider."""

    @hookimpl
    def lash_register_tools(self, registry: Any) -> None:
        registry.add_provider(SlowToolProvider())


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-demo", "object": "chat.completion.chunk", "model": MODEL,
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"id": "chatcmpl-demo", "object": "chat.completion.chunk", "model": MODEL, "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}


def _sse(body: str, delay_s: float) -> tuple[int, str, str, float]:
    return 200, "text/event-stream", body, delay_s


def _text(text: str, *, finish: str, prompt: int, completion: int, delay_s: float) -> tuple[int, str, str, float]:
    chunks = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": text}), _chunk(finish=finish)]
    return _sse(sse_body(*chunks, _usage(prompt, completion)), delay_s)


def _calls(calls: list[tuple[str, str, dict[str, Any]]], *, prompt: int, completion: int,
           delay_s: float) -> tuple[int, str, str, float]:
    deltas = [{"index": i, "id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
              for i, (cid, name, args) in enumerate(calls)]
    chunks = [_chunk({"role": "assistant", "tool_calls": deltas}), _chunk(finish="tool_calls")]
    return _sse(sse_body(*chunks, _usage(prompt, completion)), delay_s)


def _error(status: int, message: str, delay_s: float) -> tuple[int, str, str, float]:
    return status, "application/json", json.dumps({"error": {"message": message, "type": "server_error"}}), delay_s


def _script() -> list[tuple[int, str, str, float]]:
    """HTTP replies in order: (status, content type, body, seconds to wait before answering)."""
    return [
        # turn 1: 500, retried; three get_time calls; fetch_page; the answer
        _error(500, "upstream overloaded, try again", 0.08),
        _calls([("call_tokyo", "get_time", {"city": "Tokyo"}), ("call_paris", "get_time", {"city": "Paris"}),
                ("call_atl", "get_time", {"city": "Atlantis"})], prompt=412, completion=61, delay_s=0.45),
        _calls([("call_page", "fetch_page", {"url": "https://example.org/clocks"})], prompt=655, completion=24,
               delay_s=0.3),
        _text("Tokyo: 21:04, Paris: 14:04; Atlantis has no time zone.", finish="stop", prompt=790, completion=38,
              delay_s=0.55),
        # turn 2: the output cap
        _text("Once upon a time, in a land of many clocks, " * 3, finish="length", prompt=860, completion=64,
              delay_s=0.7),
        # turn 3: a non-retryable 400
        _error(400, "this model does not support the requested feature", 0.06),
    ]


def build_demo_trace(path: str | Path) -> Path:
    """Run the three demo turns through a real ``LashCore`` and write their JSONL trace.

    Args:
        path: the JSONL file to write (replaced if it exists).
    Returns:
        ``path`` as a ``Path``.
    Raises:
        AssertionError: the turns did not end as scripted (finished, max_output_tokens,
            provider_error) or the mock server got an unexpected request.
    """
    path = Path(path)
    path.unlink(missing_ok=True)
    replies = _script()

    async def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/chat/completions"), request.url
        assert replies, "the demo server ran out of scripted replies"
        status, ctype, body, delay_s = replies.pop(0)
        await anyio.sleep(delay_s)
        return httpx.Response(status, headers={"content-type": ctype}, text=body)

    provider = OpenAIChatProvider(api_key="sk-demo-not-a-real-key", base_url="http://demo.invalid/v1",
                                  transport=httpx.MockTransport(handle))
    prompts = ("What time is it in Tokyo, Paris and Atlantis? Check example.org/clocks too.",
               "Write a very long story about clocks.", "Now draw the clocks as SVG.")

    async def run() -> list[tuple[str, str | None]]:
        outcomes = []
        plugins = [TracingPlugin(jsonl=path), DemoTools()]
        retry = RetryPolicy(max_attempts=2, base_delay_s=0.05, jitter=0.0)
        with LashCore(model_client=provider, model=MODEL, tools=[get_time], plugins=plugins, entry_points=False,
                      retry=retry) as core:
            session = core.session()
            for prompt in prompts:
                turn = session.turn(prompt)
                async for _ in turn.stream():
                    pass
                outcome = turn.result.outcome
                outcomes.append((outcome.KIND, getattr(outcome, "reason", None)))
            session.close()
        return outcomes

    outcomes = anyio.run(run)
    assert outcomes == [("finished", None), ("stopped", "max_output_tokens"), ("stopped", "provider_error")], outcomes
    assert not replies, f"{len(replies)} scripted replies unused"
    return path


def screenshot(
    html: Path, png: Path, *, width: int = 1280, height: int = 800, select: str | None = "call_atl"
) -> None:
    """Open ``html`` in Debian's chromium at ``width`` x ``height`` and save a PNG of the window.

    Args:
        html: the page from ``lash trace view``.
        png: where to write the screenshot (parent directories are created).
        width, height: the viewport, CSS pixels.
        select: click the first row whose span id contains this text first (None: no click).
    Raises:
        playwright.sync_api.Error: chromium could not be launched or the page misbehaved.
    """
    from playwright.sync_api import sync_playwright

    png.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(html.resolve().as_uri())
            if select:
                page.locator(f'.row[data-span-id*="{select}"]').first.click()
            page.screenshot(path=str(png))
        finally:
            browser.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Build the demo trace, render it with ``lash trace view`` and screenshot it.

    Returns:
        The exit code (0).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "images" / "trace-viewer.png")
    parser.add_argument("--keep", type=Path, default=None, help="directory to keep trace.jsonl and trace.html in")
    args = parser.parse_args(argv)
    from click.testing import CliRunner

    from lash_kernel.cli import cli

    work = Path(tempfile.mkdtemp(prefix="lash-viewer-"))
    try:
        trace = build_demo_trace(work / "trace.jsonl")
        result = CliRunner().invoke(cli, ["trace", "view", str(trace)], prog_name="lash")
        if result.exit_code != 0:
            print(result.output, file=sys.stderr)
            return 1
        screenshot(trace.with_suffix(".html"), args.output)
        print(args.output)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for name in ("trace.jsonl", "trace.html"):
                shutil.copy(work / name, args.keep / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
