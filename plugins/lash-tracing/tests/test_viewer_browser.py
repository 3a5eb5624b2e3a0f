"""``lash trace view`` in a real browser: Debian's chromium driven by Playwright for Python.

The trace is real: ``scripts/screenshot_viewer.py``'s ``build_demo_trace`` runs three turns
through a ``LashCore`` with the tracing plugin's JSONL sink and the OpenAI chat provider over an
``httpx.MockTransport`` (an HTTP 500 then a retry, three ``get_time`` calls of which one fails,
a ``fetch_page`` call returning hostile HTML, a ``max_output_tokens`` stop and a
``provider_error`` stop). The page comes from the real ``lash trace view`` command.

Skipped only when ``/usr/bin/chromium`` or the ``playwright`` package is missing (CI installs
both: ``apt-get install -y chromium`` and the plugin's ``[test]`` extra).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "screenshot_viewer.py"
WIDTH, HEIGHT = 1280, 800
RED, AMBER = "rgb(207, 34, 46)", "rgb(212, 167, 44)"

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing (pip install playwright)")


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lash_tracing_screenshot_viewer", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo() -> ModuleType:
    return load_demo()


@pytest.fixture(scope="module")
def html_page(tmp_path_factory: pytest.TempPathFactory, demo: ModuleType) -> Path:
    from lash_kernel.cli import cli

    trace = demo.build_demo_trace(tmp_path_factory.mktemp("browser") / "trace.jsonl")
    result = CliRunner().invoke(cli, ["trace", "view", str(trace)], prog_name="lash")
    assert result.exit_code == 0, result.output
    out = Path(result.stdout.strip())
    assert out == trace.with_suffix(".html") and out.exists()
    return out


@pytest.fixture(scope="module")
def browser(demo: ModuleType, html_page: Path) -> Iterator[Any]:
    # after html_page: the demo trace runs its own event loop, which it cannot while Playwright's runs
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=demo.CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, html_page: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    pg = context.new_page()
    dialogs: list[str] = []
    requests: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.on("request", lambda r: requests.append(r.url))
    pg.goto(html_page.as_uri())
    yield pg
    assert dialogs == []  # nothing from the trace ever ran as script
    assert [u for u in requests if not u.startswith("file:")] == []  # offline: no network request at all
    context.close()


def row(page: Any, span_suffix: str) -> Any:
    """The row whose span id ends with ``span_suffix`` (exactly one)."""
    loc = page.locator(f'.row.span[data-span-id$="{span_suffix}"]')
    assert loc.count() == 1, span_suffix
    return loc


def visible_rows(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        ".row.span", "rs => rs.filter(r => r.offsetParent !== null).map(r => r.dataset.spanId)"
    )


def detail_json(page: Any, part: str) -> Any:
    return json.loads(page.locator(f'#detail section[data-part="{part}"] pre').inner_text())


def test_fits_1280x800_with_the_timeline_on_screen(page):
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate("document.body.scrollWidth <= window.innerWidth")
    timeline = page.locator("#timeline")
    assert timeline.is_visible()
    box = timeline.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH and 0 <= box["y"] < HEIGHT
    # every bar track lies inside the window, and the first turn's rows are on the first screen
    tracks = page.eval_on_selector_all(".row.span .track", "ts => ts.map(t => t.getBoundingClientRect().right)")
    assert tracks and max(tracks) <= WIDTH
    first_tool = row(page, ":t:call_tokyo").bounding_box()
    assert first_tool["y"] + first_tool["height"] <= HEIGHT
    # long text is cut with an ellipsis on one line, never wrapped letter by letter
    heights = page.eval_on_selector_all(
        ".row.span > span", "cs => cs.map(c => c.getBoundingClientRect().height)"
    )
    assert max(heights) <= 24
    # no row's content spills out of it (under the detail pane), and the pane sits beside the timeline
    assert page.eval_on_selector_all(".row.span, .axis", "rs => rs.every(r => r.scrollWidth <= r.clientWidth + 1)")
    detail = page.locator("#detail").bounding_box()
    assert box["x"] + box["width"] <= detail["x"] and detail["x"] + detail["width"] <= WIDTH and detail["width"] >= 250


def test_clicking_a_tool_span_shows_its_arguments_and_result(page):
    assert "Click a span" in page.locator("#detail").inner_text()
    row(page, ":t:call_tokyo").click()
    assert "selected" in row(page, ":t:call_tokyo").get_attribute("class")
    assert page.locator("#detail h2").inner_text() == "tool get_time"
    assert detail_json(page, "arguments") == {"city": "Tokyo"}
    assert detail_json(page, "result") == {"city": "Tokyo", "time": "21:04 JST (UTC+9)"}

    row(page, ":t:call_atl").click()
    assert detail_json(page, "arguments") == {"city": "Atlantis"}
    assert "unknown city 'Atlantis'" in page.locator('#detail section[data-part="error"]').inner_text()


def test_a_model_call_shows_usage_and_the_failed_attempt_its_error(page):
    model_rows = page.locator('.row.span[data-kind="model_call"]')
    failed = model_rows.nth(0)
    assert failed.get_attribute("data-status") == "error"
    failed.click()
    error = detail_json(page, "error")
    assert error["status"] == 500 and error["retryable"] is True
    retry = model_rows.nth(1)
    assert "retry" in retry.inner_text() and "(attempt 2)" in retry.inner_text()
    retry.click()
    assert detail_json(page, "usage")["input_tokens"] == 412
    assert detail_json(page, "response")["finish_reason"] == "tool_calls"


def test_search_and_filters_narrow_the_rows(page):
    everything = visible_rows(page)
    assert len(everything) == page.locator(".row.span").count() >= 15
    page.fill("#q", "atlantis")
    found = visible_rows(page)
    assert 0 < len(found) < len(everything)
    assert any(s.endswith(":t:call_atl") for s in found)
    assert not any(s.endswith(":t:call_tokyo") for s in found)
    assert page.locator("#count").inner_text() == f"{len(found)} of {len(everything)} spans"

    page.fill("#q", "")
    assert visible_rows(page) == everything
    page.uncheck('.f-kind[value="model_call"]')
    assert not page.locator('.row.span[data-kind="model_call"]:visible').count()
    assert page.locator('.row.span[data-kind="tool_call"]:visible').count() == 4
    page.check('.f-kind[value="model_call"]')

    turns = page.locator('.row.span[data-kind="turn"]')
    second = turns.nth(1).get_attribute("data-turn-id")
    page.select_option("#f-turn", second)
    shown = [page.locator(f'.row.span[data-span-id="{s}"]') for s in visible_rows(page)]
    assert {r.get_attribute("data-turn-id") for r in shown} == {second}
    assert {"turn", "model_call"} <= {r.get_attribute("data-kind") for r in shown}
    page.select_option("#f-turn", "")
    page.select_option("#f-status", "error")
    statuses = {page.locator(f'.row.span[data-span-id="{s}"]').get_attribute("data-status") for s in visible_rows(page)}
    assert statuses == {"error"}


def test_errors_are_red_and_a_max_output_tokens_stop_is_not(page):
    def bar_colour(loc: Any) -> str:
        return loc.locator(".bar").evaluate("b => getComputedStyle(b).backgroundColor")

    turns = page.locator('.row.span[data-kind="turn"]')
    finished, capped, failed = (turns.nth(i) for i in range(3))
    assert "stopped: max_output_tokens" in capped.inner_text()
    assert "status-stop" in capped.get_attribute("class") and "status-error" not in capped.get_attribute("class")
    assert bar_colour(capped) == AMBER
    assert "stopped: provider_error" in failed.inner_text()
    assert "status-error" in failed.get_attribute("class") and bar_colour(failed) == RED
    assert "status-ok" in finished.get_attribute("class") and bar_colour(finished) not in (RED, AMBER)
    assert bar_colour(row(page, ":t:call_atl")) == RED
    assert bar_colour(row(page, ":t:call_tokyo")) not in (RED, AMBER)


def test_hostile_tool_output_is_shown_as_text(page, demo):
    fetch = page.locator('.row.span[data-kind="tool_call"]').filter(has_text="example.org")
    fetch.click()
    assert demo.HOSTILE in page.locator('#detail section[data-part="result"]').inner_text()
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 2  # the data block and the viewer's code


def test_zoom_to_a_turn_and_collapse_it(page):
    bar = page.locator('.row.span[data-kind="model_call"]').nth(1).locator(".bar")  # the retry, ~0.45 s
    before = bar.bounding_box()["width"]
    first_turn = page.locator('.row.span[data-kind="turn"]').first
    first_turn.locator("button.zoom").click()
    assert bar.bounding_box()["width"] > before * 1.2  # the turn is ~1.8 s of the session's ~2.6 s
    assert page.locator(".zoom-reset").first.is_visible()
    page.locator(".zoom-reset").first.click()
    assert bar.bounding_box()["width"] == pytest.approx(before, abs=0.5)

    first_turn.locator("button.toggle").click()
    assert not row(page, ":t:call_tokyo").is_visible()
    first_turn.locator("button.toggle").click()
    assert row(page, ":t:call_tokyo").is_visible()
