"""The audit report in a real headless Chromium: loads without errors, images decode, the folder
table sorts, and the page's policy blocks any fetch (and this check would see one).

Chromium is Debian's package, installed once by scripts/setup-chromium.sh; a failed install fails
these tests (with the script's output) rather than skipping them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from deepiqa_core.audit.report import write_report

from . import report_samples as samples
from .cdp import Chromium, Page, ensure_chromium

GALLERY = 6


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    ok, output = ensure_chromium()
    if not ok:
        pytest.fail(f"scripts/setup-chromium.sh could not provide chromium:\n{output}")
    browser = Chromium()
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(path, samples.summary(), samples.extras(runs=3, n_gallery=GALLERY))
    return path


@pytest.fixture(scope="module")
def page(chromium: Chromium, report_file: Path) -> Iterator[Page]:
    tab = chromium.page()
    tab.open(report_file.as_uri())
    yield tab
    tab.close()


def test_the_page_loads_without_errors(page):
    assert page.problems() == []
    assert page.evaluate("document.title") == "deepiqa audit \u2014 s3://media/lib/"
    assert page.evaluate("document.documentElement.classList.contains('js')")  # script ran


def test_charts_and_galleries_are_in_the_document(page):
    shapes = page.evaluate("document.querySelectorAll('#histogram rect, #histogram path').length")
    assert shapes >= 20
    width = page.evaluate("document.getElementById('histogram').getBoundingClientRect().width")
    assert width > 600  # the chart is laid out, not collapsed
    for gallery, images in (("worst", GALLERY - 1), ("best", GALLERY)):  # one worst is missing
        assert page.evaluate(f"document.querySelectorAll('#{gallery} img').length") == images
    assert page.evaluate("document.querySelectorAll('#worst .placeholder').length") == 1
    assert page.evaluate("document.querySelectorAll('#trend svg').length") == 2
    assert page.evaluate("document.querySelectorAll('#maps img').length") == 2


def test_every_image_is_decoded(page):
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(images) == (GALLERY - 1) + GALLERY + 2
    assert all(complete and w > 0 and h > 0 for complete, w, h in images), images


def test_the_uri_with_markup_is_text_not_markup(page):
    texts = page.evaluate(
        "Array.from(document.querySelectorAll('#worst .uri'), e => e.textContent)"
    )
    assert texts[1] == samples.NASTY_URI
    assert page.evaluate("document.querySelectorAll('#worst script, #folders b').length") == 0


def test_a_full_page_screenshot(page):
    png = page.screenshot(full_page=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    picture = Image.open(io.BytesIO(png))
    assert picture.width == 1200 and 2000 < picture.height < 20000
    assert len(set(picture.convert("RGB").resize((64, 256)).getdata())) > 100  # not blank


def folder_column(page: Page, column: int) -> list[str]:
    return page.evaluate(
        "Array.from(document.querySelectorAll('#folders tbody tr'), "
        f"r => r.cells[{column}].textContent)"
    )


def click_header(page: Page, column: int) -> None:
    page.evaluate(f"document.querySelectorAll('#folders thead th')[{column}].click()")


def test_clicking_folder_headers_sorts_the_rows(page):
    given = ["2026/11", "2025/01", '<b>odd & "name"</b>', "archive"]
    assert folder_column(page, 0) == given
    click_header(page, 1)  # images, ascending (numbers, not text: "1,200" last)
    assert folder_column(page, 1) == ["20", "300", "480", "1,200"]
    click_header(page, 1)  # again: descending
    assert folder_column(page, 1) == ["1,200", "480", "300", "20"]
    sort = page.evaluate("document.querySelectorAll('#folders thead th')[1].ariaSort")
    assert sort == "descending"
    click_header(page, 2)  # median: the folder without one goes last
    assert folder_column(page, 2) == ["44.9", "60.2", "70.5", "\u2014"]
    click_header(page, 0)  # text in the browser's collation: symbols, digits, then letters
    assert folder_column(page, 0) == [given[2], "2025/01", "2026/11", "archive"]
    click_header(page, 0)
    assert folder_column(page, 0) == ["archive", "2026/11", "2025/01", given[2]]
    assert page.problems() == []


def test_the_policy_blocks_a_fetch_and_the_check_sees_it(chromium, report_file):
    """The negative control: an injected remote image is refused and reported as an error."""
    tab = chromium.page()
    try:
        tab.open(report_file.as_uri())
        assert tab.problems() == []
        tab.evaluate(
            "new Promise(done => { const i = new Image(); i.onerror = done; i.onload = done;"
            " i.src = 'http://127.0.0.1:9/x.png'; document.body.appendChild(i); })"
        )
        for _ in range(100):  # the report arrives as an event; wait for it (up to ~2 s)
            if any("Content Security Policy" in p for p in tab.problems()):
                break
            tab.evaluate("new Promise(done => setTimeout(done, 20))")
        assert any("Content Security Policy" in p for p in tab.problems()), tab.problems()
    finally:
        tab.close()
