"""End to end in a real browser: ``rcstat attribute --format html`` on the default model, opened in
headless Chromium, a response sentence clicked, its source highlighted, a screenshot saved.

The example is the README's (``examples/curie.txt``): each of the three response sentences
restates one sentence of the context, so the source to highlight is known, not just whatever the
page's own data says. Skipped, with the reason, only where Chromium or Playwright is missing
(``make setup`` installs both).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rcstat import cli
from tests import browser

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "curie.txt"
QUERY = "When did Marie Curie win her Nobel Prizes?"
RESPONSE = (
    "In 1903 she shared the physics prize with Pierre Curie and Henri Becquerel. "
    "In 1911 she won the chemistry prize for polonium and radium. She was born in Warsaw."
)
EXPECTED = {  # response sentence -> the context sentence it restates
    0: "She shared the 1903 Nobel Prize in Physics",
    1: "In 1911 she won a second Nobel Prize",
    2: "Marie Curie was born in Warsaw",
}

UNAVAILABLE = browser.unavailable()
pytestmark = [
    pytest.mark.realmodel,
    pytest.mark.skipif(UNAVAILABLE is not None, reason=f"no browser test: {UNAVAILABLE}"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    page = tmp_path_factory.mktemp("report") / "report.html"
    argv = ["attribute", "--context", str(EXAMPLE), "--query", QUERY, "--response", RESPONSE]
    assert cli.main([*argv, "--granularity", "sentence", "--format", "html", "--output", str(page)]) == 0
    return page


def page_data(report: Path) -> dict:
    text = report.read_text()
    return json.loads(text.split('<script id="data" type="application/json">')[1].split("</script>")[0])


def test_clicking_a_sentence_highlights_its_source(report, tmp_path) -> None:
    data = page_data(report)
    with browser.browser_context() as context:
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(report.as_uri())
        for index in (2, 1, 0):  # the last first: the page starts on sentence 0
            page.locator(f'.sent[data-index="{index}"]').click()
            assert page.locator(".sent.on").get_attribute("data-index") == str(index)
            top = page.locator("#context .src.top")
            assert top.count() == 1
            assert top.inner_text().startswith(EXPECTED[index])
            scores = data["scores"]["sentence"][index]
            assert top.get_attribute("data-index") == str(scores.index(max(scores)))
            assert top.get_attribute("data-weight") == "1.000"  # the top of the colour scale
            assert "rgba(230, 120, 20, 0.75)" in top.get_attribute("style")
            assert top.get_attribute("title").endswith(f"score {max(scores):.3f}")
            if index == 1:
                page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        page.locator('.sent[data-index="2"]').hover()  # hovering works as clicking does
        assert page.locator("#context .src.top").inner_text().startswith(EXPECTED[2])
        page.locator('input[name=gran][value="token"]').check()  # the switch: no re-run, more sources
        assert page.locator("#context .src").count() > 20 and page.locator("#context .src.top").count() >= 1
        assert page.locator(".static").count() == 0  # the no-script lists give way to the live view
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests  # nothing fetched from a network
    png = tmp_path / "report.png"
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000


def test_without_javascript_the_page_still_lists_each_sentences_sources(report) -> None:
    with browser.browser_context(javascript=False) as context:
        page = context.new_page()
        page.goto(report.as_uri())
        for index, expected in EXPECTED.items():
            best = page.locator(f'.sent[data-index="{index}"] + ul.static li').first
            assert expected in best.inner_text()
        assert page.locator("#context").inner_text().strip() == EXAMPLE.read_text().strip()
