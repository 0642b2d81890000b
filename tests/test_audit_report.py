"""The audit's report.html (no browser): self-contained, escaped, and showing the right numbers."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from deepiqa_core.audit.report import (
    MAP_MAX_WIDTH,
    render_report,
    thumbnail,
    thumbnails,
    write_report,
)

from . import report_samples as samples


class Page(HTMLParser):
    """Tags with their attributes, and each element's id -> the tags inside it."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._open: list[tuple[str, str | None]] = []
        self.inside: dict[str, list[tuple[str, dict]]] = {}
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.handle_startendtag(tag, attrs)
        if tag not in ("img", "meta", "br", "hr", "input", "link"):  # HTML void elements
            self._open.append((tag, dict(attrs).get("id")))
            self._in_script = tag == "script"

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        for _, element_id in self._open:
            if element_id:
                self.inside[element_id].append((tag, attributes))
        if attributes.get("id"):
            self.inside.setdefault(attributes["id"], [])

    def handle_endtag(self, tag: str) -> None:
        if any(name == tag for name, _ in self._open):
            while self._open.pop()[0] != tag:
                pass
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)

    def within(self, element_id: str, tag: str, cls: str | None = None) -> list[dict]:
        return [
            a
            for t, a in self.inside.get(element_id, [])
            if t == tag and (cls is None or cls in (a.get("class") or "").split())
        ]


def card(text: str, label: str) -> str:
    """The value shown on the headline card with this label."""
    found = re.search(
        r'<div class="value">([^<]*)</div><div class="label">' + re.escape(label) + "</div>", text
    )
    assert found, f"no card {label!r}"
    return found.group(1)


@pytest.fixture(scope="module")
def rendered() -> str:
    return render_report(samples.summary(), samples.extras(runs=1))


def test_the_page_is_self_contained(rendered):
    lower = rendered.lower()
    for needle in ("http://", "https://", 'src="//', "<link", "@import", "url(", "<iframe"):
        assert needle not in lower, needle
    page = Page(rendered)
    images = [a for t, a in page.tags if t == "img"]
    assert len(images) == 6 + 5 + 2  # best 6, worst 6 less one without a picture, 2 maps
    assert all(
        a["src"].startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for a in images
    )
    scripts = [a for t, a in page.tags if t == "script"]
    assert scripts == [{}]  # one inline script, no src


def test_the_content_security_policy_forbids_fetches_and_allows_exactly_our_script(rendered):
    page = Page(rendered)
    (policy,) = [
        a["content"] for t, a in page.tags if t == "meta" and "content" in a and a.get("http-equiv")
    ]
    assert "default-src 'none'" in policy and "img-src data:" in policy
    digest = base64.b64encode(hashlib.sha256("".join(page.scripts).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy  # otherwise the browser blocks the sorting


def test_strings_from_data_are_escaped(rendered):
    assert samples.NASTY_URI not in rendered
    assert rendered.count("<script") == 1
    escaped = (
        "s3://media/lib/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;/it&#x27;s &amp; more.jpg"
    )
    assert rendered.count(escaped) == 2  # the tile's caption and its img alt text
    assert "&lt;b&gt;odd &amp; &quot;name&quot;&lt;/b&gt;" in rendered
    assert "<b>odd" not in rendered
    assert "cannot identify image file &lt;_io.BytesIO object&gt;" in rendered


def test_header_and_headline_numbers(rendered):
    assert "<h1>deepiqa audit \u2014 s3://media/lib/</h1>" in rendered
    assert "20261129T010203-ab12cd34" in rendered
    assert "0123456789ab</code>" in rendered and "0123456789abc" not in rendered  # sha[:12]
    assert "range 0\u2013100" in rendered and "/data/audit" in rendered
    s = samples.summary()
    assert card(rendered, "images in the library") == "2,000"
    assert card(rendered, "new") == "10"
    assert card(rendered, "changed") == "2"
    assert card(rendered, "removed") == "3"
    assert card(rendered, "unchanged (carried forward)") == "1,988"
    assert card(rendered, "scored this run") == "12"
    assert card(rendered, "failed this run") == "1"
    assert card(rendered, "library median") == f"{s['library_stats']['median']:.1f}"
    assert card(rendered, "library p10") == f"{s['library_stats']['p10']:.1f}"
    share = 100 * s["library_stats"]["share_below"]
    assert card(rendered, "below threshold 35") == f"{share:.1f}\u2009%"
    assert card(rendered, "alerts") == "no alert"
    assert '<div class="card good">' in rendered and "card bad" not in rendered
    assert "decode_error 1" in rendered


def test_fired_alerts_are_red_and_listed():
    s = samples.summary()
    s["alerts"][0].update(value=38.0, fired=True, status="firing", since_run="R1", since="D1")
    s["alerts"][1].update(value=0.02, fired=True, status="new")
    s["alerted"] = True
    text = render_report(s, samples.extras())
    assert card(text, "alerts") == "2 fired"
    assert '<div class="card bad">' in text
    rows = re.findall(r"<tr><td><code>([^<]*)</code></td><td>[^<]*</td><td class=num>([^<]*)</td>"
                      r"<td>(.*?)</td><td>(.*?)</td></tr>", text)  # fmt: skip
    assert rows == [
        (
            "p10&lt;40",
            "38",
            '<span class="fired">yes</span>',
            "firing since run <code>R1</code> (D1)",
        ),
        ("error_rate&gt;0.01", "0.02", '<span class="fired">yes</span>', "<b>new</b>"),
    ]


def test_histogram_has_one_bar_per_bin_a_run_line_and_the_threshold(rendered):
    s = samples.summary()
    page = Page(rendered)
    bars = page.within("histogram", "rect", "bar-library")
    assert len(bars) == len(s["histogram"]["edges"]) - 1 == 20
    heights = np.array([float(b["height"]) for b in bars])
    counts = np.array(s["histogram"]["library"], dtype=float)
    assert heights.argmax() == counts.argmax()
    assert np.allclose(heights, counts * heights.max() / counts.max(), atol=0.1)  # proportional
    (line,) = page.within("histogram", "polyline", "line-run")
    assert len(line["points"].split()) == 2 * 20  # a step line: two points per bin
    (threshold,) = page.within("histogram", "line", "threshold")
    first, last = float(bars[0]["x"]), float(bars[-1]["x"]) + float(bars[-1]["width"])
    assert float(threshold["x1"]) == pytest.approx(first + 0.35 * (last - first), abs=1.5)
    labels = re.findall(
        r"<text x=\"[\d.]+\" y=\"\d+\" text-anchor=\"middle\">(\d+)</text>", rendered
    )
    assert labels[:11] == [str(v) for v in range(0, 101, 10)]


def test_an_empty_incremental_run_shows_the_library_only():
    extras = {**samples.extras(), "error_rows": []}
    text = render_report(samples.summary(run_scored=0), extras)
    page = Page(text)
    assert "no images scored in this run" in text
    assert len(page.within("histogram", "rect", "bar-library")) == 20
    assert page.within("histogram", "polyline", "line-run") == []
    assert card(text, "scored this run") == "0"
    assert card(text, "failed this run") == "0"
    assert "no image failed in this run" in text


def test_a_summary_with_everything_missing_still_renders():
    text = render_report({}, {})
    assert text.startswith("<!DOCTYPE html>") and text.endswith("</html>\n")
    for element_id in (
        "histogram",
        "worst",
        "best",
        "folders",
        "errors",
        "trend",
        "alerts",
        "maps",
    ):
        assert f'id="{element_id}"' in text
    assert card(text, "images in the library") == "\u2014"
    nans = {"counts": {"library": float("nan"), "scored": None}, "threshold": "n/a"}
    assert card(render_report(nans, {"trend": None}), "images in the library") == "\u2014"


def test_trend_needs_two_runs():
    one = render_report(samples.summary(), samples.extras(runs=1))
    assert "the trend appears from the second run" in one
    assert 'id="trend-scores"' not in one
    three = render_report(samples.summary(), samples.extras(runs=3))
    assert "the trend appears from the second run" not in three
    page = Page(three)
    points = page.within("trend-scores", "circle")
    assert len(points) == 2 * 3  # median and p10, one dot per run
    (median, p10) = page.within("trend-scores", "polyline")
    ys = [float(p.split(",")[1]) for p in median["points"].split()]
    assert ys == sorted(ys)  # the sample's median falls run by run: y grows downwards
    assert len(page.within("trend-health", "rect", "bar-failed")) == 3


def test_folders_table_is_sortable_data_and_says_when_truncated(rendered):
    page = Page(rendered)
    heads = page.within("folders", "th")
    assert [h["data-type"] for h in heads] == ["text", "num", "num", "num", "num", "num"]
    cells = page.within("folders", "td")
    assert [c["data-v"] for c in cells[:6]] == ["2026/11", "1200.0", "60.2", "41.0", "0.05", "4.0"]
    archive = cells[18:24]
    assert [c["data-v"] for c in archive] == ["archive", "480.0", "", "", "", "5.0"]
    assert "largest folders" not in rendered
    s = samples.summary()
    s["folders_truncated"] = True
    assert "the table shows the 4 largest folders" in render_report(s, samples.extras())


def test_galleries_show_thumbnails_scores_and_placeholders(rendered):
    page = Page(rendered)
    assert len(page.within("worst", "figure")) == 6
    assert len(page.within("worst", "img")) == 5
    assert len(page.within("best", "img")) == 6
    assert "could not be read or decoded now</div>" in rendered
    scores = re.findall(r'<b class="score">([^<]*)</b>', rendered)
    assert scores[:3] == ["8.0", "11.1", "14.2"] and scores[6] == "93.0"
    worst = render_report(samples.summary(), samples.extras())
    assert "<p class=note>lowest scores</p>" in worst
    s = samples.summary()
    s["score_direction"] = "lower_better"
    assert '<p class=note>highest scores</p><div class="gallery" id="worst"' in render_report(
        s, samples.extras()
    )


def decoded(src: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))


def test_maps_are_embedded_and_huge_ones_shrunk():
    extras = samples.extras()
    big = Image.new("RGB", (MAP_MAX_WIDTH * 2, 300), (10, 200, 30))
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    extras["maps"].append({"uri": "s3://x/huge.jpg", "score": 3.25, "png": buf.getvalue()})
    page = Page(render_report(samples.summary(), extras))
    images = page.within("maps", "img")
    assert len(images) == 3
    sizes = [decoded(a["src"]).size for a in images]
    assert sizes[0] == Image.open(io.BytesIO(extras["maps"][0]["png"])).size  # small: as given
    assert sizes[2] == (MAP_MAX_WIDTH, 150)
    assert images[0]["class"] == "small" and int(images[0]["width"]) == 2 * sizes[0][0]


def test_errors_table_counts_and_examples(rendered):
    page = Page(rendered)
    cells = page.within("errors", "td")
    assert len(cells) == 2 + 3
    assert "<td><code>decode_error</code></td><td class=num>1</td>" in rendered
    assert "s3://media/lib/2026/11/broken.jpg" in rendered


def test_footer_lists_arguments_and_versions(rendered):
    assert "<code>spark</code></td><td><code>4.0.1</code>" in rendered
    assert (
        "<code>alert</code></td><td><code>[&quot;p10&lt;40&quot;, &quot;error_rate&gt;0.01&quot;]"
        in rendered
    )
    assert "2026-11-29T01:02:03Z" in rendered


def test_write_report_returns_the_bytes_written(tmp_path):
    path = tmp_path / "report.html"
    written = write_report(path, samples.summary(), samples.extras())
    assert written == path.stat().st_size > 50_000
    assert path.read_text(encoding="utf-8") == render_report(samples.summary(), samples.extras())


# --- thumbnails -------------------------------------------------------------------------------


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG")
    return buf.getvalue()


def test_thumbnail_fits_the_box_keeps_the_aspect_and_is_jpeg():
    data = png(samples.picture(1, 480, 640))
    thumb = thumbnail(data)
    assert thumb is not None and thumb[:3] == b"\xff\xd8\xff"
    assert Image.open(io.BytesIO(thumb)).size == (144, 108)
    assert Image.open(io.BytesIO(thumbnail(data, size=64))).size == (64, 48)
    small = png(samples.picture(1, 20, 30))  # never enlarged
    assert Image.open(io.BytesIO(thumbnail(small))).size == (30, 20)


def test_thumbnail_returns_none_for_what_cannot_be_decoded():
    assert thumbnail(b"") is None
    assert thumbnail(b"definitely not an image" * 10) is None
    data = png(samples.picture(2, 200, 200))
    assert thumbnail(data[: len(data) // 2]) is None  # truncated


def test_thumbnail_respects_the_decompression_bomb_limit(monkeypatch):
    data = png(samples.picture(3, 100, 100))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)
    assert thumbnail(data) is None
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)
    assert thumbnail(data) is not None


def test_thumbnail_composites_transparency_on_white():
    rgba = np.zeros((50, 50, 4), np.uint8)  # fully transparent black
    pixel = Image.open(io.BytesIO(thumbnail(png(rgba, "RGBA")))).convert("RGB").getpixel((25, 25))
    assert min(pixel) > 245


def test_unknown_thumbnail_bytes_become_a_placeholder():
    extras = samples.extras()
    extras["worst"][0]["thumbnail"] = b"BM not shown by browsers"
    text = render_report(samples.summary(), extras)
    assert "thumbnail in an unknown format" in text
    assert thumbnails._data_uri(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "data:image/webp;base64," + (
        base64.b64encode(b"RIFF\x00\x00\x00\x00WEBPVP8 ").decode()
    )


def test_library_and_run_statistics_sit_under_the_histogram():
    s = samples.summary()
    rows = re.findall(
        r"<tr><td>([^<]+)</td>((?:<td class=num>[^<]*</td>){5})</tr>", render_report(s, {})
    )
    cells = {label: re.findall(r">([^<]*)<", rest)[::2] for label, rest in rows}
    run = s["run_stats"]
    assert cells["this run"] == ["12", *(f"{run[k]:.1f}" for k in ("median", "p10", "p90", "mean"))]
    assert cells["library"][:2] == ["1,990", f"{s['library_stats']['median']:.1f}"]
    empty = render_report(samples.summary(run_scored=0), {})
    assert "<tr><td>this run</td><td class=num>0</td><td class=num>\u2014</td>" in empty


def test_axis_labels_read_well_for_unround_edges_and_same_day_runs():
    s = samples.summary()
    s["histogram"]["edges"] = list(np.linspace(-110.024, -77.6179, 21))
    extras = samples.extras(runs=3)
    for i, point in enumerate(extras["trend"]):
        point["finished_at"] = f"2026-11-29T0{i}:24:04Z"
    text = render_report(s, extras)
    ticks = re.findall(r'text-anchor="middle">(-?[\d.]+)</text>', text)
    assert ticks[:3] == ["-110", "-106.8", "-103.5"]  # every other edge, one decimal
    assert ">11-29 00:24</text>" in text and ">11-29 02:24</text>" in text
