"""The pages in headless Chromium (issue 29), on a tiny random Llama with the default model's
tokenizer: the attribution page's token view prints no score into the text (scores on hover), and
the compression and generation pages draw without script errors, their per-layer chart a small part
of its card. Skipped, with the reason, where Chromium or Playwright is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcstat import cli
from tests import browser
from tests.cli.test_commands import CHUNKS

UNAVAILABLE = browser.unavailable()
pytestmark = [
    pytest.mark.realmodel,
    pytest.mark.skipif(UNAVAILABLE is not None, reason=f"no browser test: {UNAVAILABLE}"),
]


def open_page(context, path: Path, errors: list[str]):
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.resolve().as_uri())
    return page


def test_the_token_view_shows_scores_on_hover_only(tiny_checkpoint, tmp_path) -> None:
    context, page_path = tmp_path / "context.txt", tmp_path / "attribution.html"
    context.write_text(" ".join(CHUNKS))
    argv = ["attribute", "--context", str(context), "--query", "Who won?", "--response", "Curie won."]
    assert cli.main([*argv, "--model", tiny_checkpoint, "--format", "html", "--output", str(page_path)]) == 0
    errors: list[str] = []
    with browser.browser_context() as browser_context:
        page = open_page(browser_context, page_path, errors)
        page.locator('input[name=gran][value="token"]').check()
        assert page.locator("#context .src").count() > 20
        assert page.locator("#context").inner_text() == " ".join(CHUNKS)  # no number inside a word
        assert page.locator("#context .score").count() == 0
        source = page.locator('#context .src[data-index="3"]')
        source.hover()
        assert page.locator("#hover").inner_text() == source.get_attribute("title")
        assert page.locator("#hover").inner_text().startswith("source 4: score ")  # numbered from 1
    assert errors == []


def test_compression_and_generation_pages_draw(tiny_checkpoint, tmp_path, capsys) -> None:
    context = tmp_path / "context.txt"
    context.write_text(" ".join(CHUNKS * 6))
    pages = {"compress": tmp_path / "compression.html", "generate": tmp_path / "generation.html"}
    common = [
        "--context",
        str(context),
        "--model",
        tiny_checkpoint,
        "--max-new-tokens",
        "8",
        "--format",
        "html",
    ]
    assert cli.main(["compress", *common, "--query", "Who won?", "--output", str(pages["compress"])]) == 0
    argv = ["generate", *common, "--query", "Repeat it.", "--budget", "24", "--interval", "4"]
    assert cli.main([*argv, "--output", str(pages["generate"])]) == 0
    errors: list[str] = []
    with browser.browser_context() as browser_context:
        page = open_page(browser_context, pages["compress"], errors)
        chart = page.locator("svg.chart").bounding_box()
        card = page.locator("section", has=page.locator("svg.chart")).bounding_box()
        assert (
            chart["width"] <= 520 and chart["width"] * chart["height"] < 0.5 * card["width"] * card["height"]
        )
        assert page.locator("svg.strips rect.lane").count() == 3 and page.locator("#full-answer").count() == 1
        page.screenshot(path=str(tmp_path / "compression.png"), full_page=True)
        page = open_page(browser_context, pages["generate"], errors)
        assert page.locator("svg.chart polyline").count() == 2
        assert "generated tokens (decoding step)" in page.locator("svg.chart").text_content()
    assert errors == []
    assert (tmp_path / "compression.png").read_bytes().startswith(b"\x89PNG")
