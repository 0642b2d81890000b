"""The report's HTML sections, one function each, from the summary and the extras."""

from __future__ import annotations

import json
from collections.abc import Container, Iterable, Mapping, Sequence

from .charts import _histogram_svg, _trend_svgs
from .format import _DASH, _count, _dict, _direction_words, _e, _g, _list, _num, _score, _share
from .thumbnails import THUMBNAIL_SIZE, _data_uri, _page_map


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    attrs: str = "",
    numeric: Container[int] = frozenset(),
) -> str:
    """A plain table; cells are already-escaped HTML; columns in ``numeric`` align right."""
    head = "".join(
        f"<th{' class=num' if i in numeric else ''}>{h}</th>" for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in numeric else ''}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _header(s: Mapping) -> str:
    library = s.get("library") or "(unknown library)"
    sha = str(s.get("model_sha256") or "")
    model = _e(s.get("model") or "unknown model") + (f" <code>{_e(sha[:12])}</code>" if sha else "")
    rng = _list(s.get("score_range"))
    rng_text = (
        f"{_g(float(rng[0]))}\u2013{_g(float(rng[1]))}"
        if len(rng) == 2 and all(_num(v) is not None for v in rng)
        else "not declared"
    )
    name = str(s.get("score_name") or "score")
    words = _direction_words(s.get("score_direction"))
    described = name if words in name else f"{name}; {words}"
    score = f"{_e(described)}; range {_e(rng_text)}"
    items = [
        ("run", f"<code>{_e(s.get('run_id') or _DASH)}</code>"),
        ("finished", _e(s.get("finished_at") or _DASH)),
        ("model", model),
        ("score", score),
        ("state", f"<code>{_e(s.get('state') or _DASH)}</code>"),
    ]
    meta = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in items)
    return f"<header><h1>deepiqa audit \u2014 {_e(library)}</h1><dl class=meta>{meta}</dl></header>"


def _card(label: str, value: str, detail: str = "", cls: str = "") -> str:
    detail_html = f'<div class="detail">{detail}</div>' if detail else ""
    return (
        f'<div class="card {cls}"><div class="value">{value}</div>'
        f'<div class="label">{label}</div>{detail_html}</div>'
    )


def _alert_status(alert: Mapping) -> str:
    if not alert.get("fired"):
        return ""
    if alert.get("status") == "firing":
        return (
            f"firing since run <code>{_e(alert.get('since_run'))}</code> ({_e(alert.get('since'))})"
        )
    return "<b>new</b>" if alert.get("status") == "new" else ""


def _headline(s: Mapping) -> str:
    counts = _dict(s.get("counts"))
    lib = _dict(s.get("library_stats"))
    errors = _dict(s.get("errors"))
    threshold = _num(s.get("threshold"))
    alerts = [a for a in _list(s.get("alerts")) if isinstance(a, Mapping)]
    fired = [a for a in alerts if a.get("fired")]
    alerted = bool(s.get("alerted")) or bool(fired)
    by_code = ", ".join(f"{_e(k)} {_count(v)}" for k, v in sorted(errors.items()))
    below_label = (
        f"below threshold {_e(_g(threshold))}"
        if threshold is not None
        else "below threshold (none set)"
    )
    below_value = _share(lib.get("share_below")) if threshold is not None else _DASH
    cards = [
        _card("images in the library", _count(counts.get("library"))),
        _card("new", _count(counts.get("new"))),
        _card("changed", _count(counts.get("changed"))),
        _card("removed", _count(counts.get("removed"))),
        _card("unchanged (carried forward)", _count(counts.get("unchanged"))),
        _card("scored this run", _count(counts.get("scored"))),
        _card(
            "failed this run",
            _count(counts.get("failed")),
            by_code,
            "warn" if (_num(counts.get("failed")) or 0) > 0 else "",
        ),
        _card("library median", _score(lib.get("median"))),
        _card("library p10", _score(lib.get("p10"))),
        _card(below_label, below_value),
        _card(
            "alerts",
            f"{len(fired)} fired" if fired else "alert" if alerted else "no alert",
            ", ".join(_e(a.get("rule")) for a in fired),
            "bad" if alerted else "good",
        ),
    ]
    if alerts:
        rows = [
            (
                f"<code>{_e(a.get('rule'))}</code>",
                _e(a.get("metric") or ""),
                _e(_g(v)) if (v := _num(a.get("value"))) is not None else _DASH,
                '<span class="fired">yes</span>' if a.get("fired") else "no",
                _alert_status(a),
            )
            for a in alerts
        ]
        table = _table(["rule", "metric", "value", "fired", "since"], rows, ' id="alerts"', {2})
    else:
        table = '<p id="alerts" class="note">no alert rules configured</p>'
    return f'<section><h2>Headline</h2><div class="cards">{"".join(cards)}</div>{table}</section>'


def _histogram_section(s: Mapping) -> str:
    scored = _num(_dict(s.get("counts")).get("scored"))
    run_empty = not scored
    note = (
        '<p class="note">no images scored in this run; the library only</p>' if scored == 0 else ""
    )
    svg = _histogram_svg(_dict(s.get("histogram")), _num(s.get("threshold")), run_empty)
    rows = [
        (
            label,
            _count(stats.get("scored")),
            *(_score(stats.get(k)) for k in ("median", "p10", "p90", "mean")),
        )
        for label, stats in (
            ("library", _dict(s.get("library_stats"))),
            ("this run", _dict(s.get("run_stats"))),
        )
        if stats
    ]
    table = (
        _table(["", "scored", "median", "p10", "p90", "mean"], rows, ' id="stats"', {1, 2, 3, 4, 5})
        if rows
        else ""
    )
    return f"<section><h2>Scores</h2>{note}<div class=chart>{svg}</div>{table}</section>"


_SORT_HEADERS = (
    ("folder", "text"),
    ("images", "num"),
    ("median", "num"),
    ("p10", "num"),
    ("below threshold", "num"),
    ("failed", "num"),
)


def _folders_section(s: Mapping, extras: Mapping) -> str:
    folders = [f for f in _list(s.get("folders")) if isinstance(f, Mapping)]
    threshold = _num(s.get("threshold"))
    truncated = bool(s.get("folders_truncated") or extras.get("folders_truncated"))
    heads = []
    for name, kind in _SORT_HEADERS:
        if name == "below threshold" and threshold is not None:
            name = f"below {_g(threshold)}"
        heads.append(f'<th data-type="{kind}" class="{kind}">{_e(name)}</th>')
    rows = []
    for f in folders:
        cells = [(_e(f.get("folder")), _e(f.get("folder") or ""), "text")]
        for key, fmt in (
            ("count", _count),
            ("median", _score),
            ("p10", _score),
            ("share_below", _share),
            ("failed", _count),
        ):
            value = _num(f.get(key))
            cells.append((fmt(value), "" if value is None else repr(value), "num"))
        rows.append(
            "<tr>"
            + "".join(f'<td class="{k}" data-v="{_e(v)}">{text}</td>' for text, v, k in cells)
            + "</tr>"
        )
    total = _num(s.get("folders_total"))
    of = f" of {int(total):,}" if total is not None and total > len(folders) else ""
    note = (
        f'<p class="note">the table shows the {len(folders):,} largest folders{of}</p>'
        if truncated
        else ""
    )
    if not folders:
        return '<section><h2>Folders</h2><p class="note" id="folders">no folders</p></section>'
    hint = '<p class="note hint">click a column header to sort</p>'
    return (
        f"<section><h2>Folders</h2>{note}{hint}"
        f'<table id="folders" class="sortable"><thead><tr>{"".join(heads)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _gallery(
    items: Sequence[Mapping], element_id: str, title: str, caption: str, max_thumb: int
) -> str:
    tiles = []
    for i, item in enumerate(items, start=1):
        uri = item.get("uri") or ""
        src = _data_uri(item.get("thumbnail"))
        if src:
            picture = f'<img src="{src}" alt="{_e(uri)}" loading="eager">'
        else:
            reason = item.get("note") or (
                "no thumbnail"
                if item.get("thumbnail") is None
                else "thumbnail in an unknown format"
            )
            picture = f'<div class="placeholder">{_e(reason)}</div>'
        tiles.append(
            f'<figure class="tile">{picture}<figcaption><span class="rank">#{i}</span> '
            f'<b class="score">{_score(item.get("score"))}</b>'
            f'<span class="uri">{_e(uri)}</span></figcaption></figure>'
        )
    body = "".join(tiles) or '<p class="note">none</p>'
    return (
        f"<section><h2>{_e(title)}</h2><p class=note>{caption}</p>"
        f'<div class="gallery" id="{element_id}" style="--thumb:{max_thumb}px">{body}</div>'
        f"</section>"
    )


# What changed: each list's title and columns (header, the row's field), in the tables' order.
_CHANGE_LISTS = {
    "changed": (
        "changed (worst drop first)",
        [("before", "before"), ("after", "score"), ("drop", "drop")],
    ),
    "new": ("new", [("score", "score"), ("error", "error_code")]),
    "removed": ("removed", [("last score", "score")]),
    "newly_failing": ("newly failing", [("before", "before"), ("error", "error_code")]),
    "recovered": ("recovered", [("error before", "before_error"), ("score", "score")]),
}
_CHANGE_CARDS = ("new", "changed", "removed", "newly_failing", "recovered")
_SCORE_FIELDS = {"before", "score", "drop"}


def _changes_section(s: Mapping, extras: Mapping) -> str:
    """What changed since the previous run: counts, the top changed (before -> after, worst
    drop first) and lowest new images with thumbnails, then every list as a table."""
    changes = _dict(s.get("changes"))
    if not changes:
        return ""
    counts = "".join(
        _card(_CHANGE_LISTS[k][0], _count(_dict(changes.get(k)).get("count")))
        for k in _CHANGE_CARDS
    )
    tables = [_change_table(key, _dict(changes.get(key))) for key in _CHANGE_LISTS]
    return (
        '<section><h2>What changed since the previous run</h2><div class="cards">'
        f"{counts}</div>{_changed_tiles(extras)}{''.join(tables)}</section>"
    )


def _changed_tiles(extras: Mapping) -> str:
    """Thumbnails of the worst drops, each with its before -> after."""
    tiles = []
    for item in _list(extras.get("changed")):
        src = _data_uri(item.get("thumbnail"))
        picture = (
            f'<img src="{src}" alt="{_e(item.get("uri"))}">'
            if src
            else f'<div class="placeholder">{_e(item.get("note") or "no thumbnail")}</div>'
        )
        move = f"{_score(item.get('before'))} \u2192 {_score(item.get('score'))}"
        tiles.append(
            f'<figure class="tile">{picture}<figcaption><b class="score">{move}</b>'
            f'<span class="uri">{_e(item.get("uri"))}</span></figcaption></figure>'
        )
    if not tiles:
        return ""
    return (
        f'<div class="gallery" id="changed-gallery" style="--thumb:{THUMBNAIL_SIZE}px">'
        f"{''.join(tiles)}</div>"
    )


def _change_table(key: str, block: Mapping) -> str:
    """One list of what changed (its first rows; the count says how many more there are)."""
    rows = [r for r in _list(block.get("rows")) if isinstance(r, Mapping)]
    if not rows:
        return ""
    title, columns = _CHANGE_LISTS[key]
    body = []
    for r in rows:
        cells = [f"<code>{_e(r.get('uri'))}</code>"]
        for _, field in columns:
            value = r.get(field)
            cells.append(_score(value) if field in _SCORE_FIELDS else _e(value or _DASH))
        body.append(cells)
    more = int(_num(block.get("count")) or 0) - len(rows)
    note = (
        f'<p class="note">and {more:,} more (summary.json lists the first {len(rows)})</p>'
        if more > 0
        else ""
    )
    headers = ["image", *(h for h, _ in columns)]
    table = _table(headers, body, f' id="changes-{key}"', set(range(1, len(headers))))
    return f"<h3>{_e(title)}</h3>{table}{note}"


def _galleries(s: Mapping, extras: Mapping) -> str:
    worst = [w for w in _list(extras.get("worst")) if isinstance(w, Mapping)]
    best = [b for b in _list(extras.get("best")) if isinstance(b, Mapping)]
    direction = s.get("score_direction")
    low, high = "lowest scores", "highest scores"
    if direction == "lower_better":
        low, high = high, low
    elif direction not in ("higher_better", "lower_better"):
        low, high = "lowest scores (direction unknown)", "highest scores (direction unknown)"
    size = THUMBNAIL_SIZE
    return _gallery(worst, "worst", f"Worst {len(worst)}", low, size) + _gallery(
        best, "best", f"Best {len(best)}", high, size
    )


def _maps_section(extras: Mapping) -> str:
    maps = [m for m in _list(extras.get("maps")) if isinstance(m, Mapping)]
    figures = []
    for m in maps:
        png = m.get("png")
        if isinstance(png, bytes | bytearray):
            data, width, height, zoom = _page_map(bytes(png))
        else:
            data, width, height, zoom = png, 0, 0, 1
        src = _data_uri(data)
        if src:
            size = f' width="{width}" height="{height}"' if width else ""
            zoomed = ' class="small"' if zoom > 1 else ""
            picture = f'<img src="{src}"{size}{zoomed} alt="quality map of {_e(m.get("uri"))}">'
        else:
            picture = '<div class="placeholder">map missing or too large to show</div>'
        figures.append(
            f"<figure>{picture}<figcaption><b>{_score(m.get('score'))}</b> "
            f'<span class="uri">{_e(m.get("uri"))}</span></figcaption></figure>'
        )
    body = "".join(figures) or '<p class="note">no quality maps in this run</p>'
    return (
        "<section><h2>Quality maps of the worst</h2>"
        '<p class="note">where the network saw low quality (middle) and which patches counted '
        "most (right)</p>"
        f'<div id="maps" class="maps">{body}</div></section>'
    )


def _errors_section(s: Mapping, extras: Mapping) -> str:
    errors = _dict(s.get("errors"))
    examples = [r for r in _list(extras.get("error_rows")) if isinstance(r, Mapping)]
    if not errors and not examples:
        return (
            '<section><h2>Errors</h2><div id="errors"><p class="note">no image failed in this '
            "run</p></div></section>"
        )
    by_code = sorted(errors.items(), key=lambda kv: (-(_num(kv[1]) or 0), str(kv[0])))
    counts = _table(
        ["error code", "images"],
        [(f"<code>{_e(k)}</code>", _count(v)) for k, v in by_code],
        "",
        {1},
    )
    rows = [
        (
            f'<span class="uri">{_e(r.get("uri") or r.get("id"))}</span>',
            f"<code>{_e(r.get('error_code'))}</code>",
            _e(str(r.get("error_message") or "")[:400]),
        )
        for r in examples
    ]
    sample = (
        f"<h3>Examples</h3>{_table(['image', 'error code', 'message'], rows, ' class=examples')}"
        if rows
        else ""
    )
    return f'<section><h2>Errors</h2><div id="errors">{counts}{sample}</div></section>'


def _trend_section(s: Mapping, extras: Mapping) -> str:
    trend = [t for t in _list(extras.get("trend")) if isinstance(t, Mapping)]
    if len(trend) < 2:
        body = '<p class="note">the trend appears from the second run</p>'
    else:
        body = _trend_svgs(trend, _num(s.get("threshold")))
    return (
        f"<section><h2>Trend</h2>"
        f'<div id="trend" class="chart" data-runs="{len(trend)}">{body}</div></section>'
    )


def _footer(s: Mapping) -> str:
    def rows(mapping: Mapping) -> list[tuple[str, str]]:
        return [
            (
                f"<code>{_e(k)}</code>",
                f"<code>{_e(v if isinstance(v, str) else json.dumps(v, default=str))}</code>",
            )
            for k, v in mapping.items()
        ]

    times = [
        ("started", _e(s.get("started_at") or _DASH)),
        ("finished", _e(s.get("finished_at") or _DASH)),
        ("seconds", _e(_score(s.get("seconds")))),
    ]
    parts = [
        "<h2>Run</h2>",
        _table(["", ""], times, " class=kv"),
    ]
    arguments = _dict(s.get("arguments"))
    if arguments:
        parts += ["<h3>Arguments</h3>", _table(["argument", "value"], rows(arguments), " class=kv")]
    versions = _dict(s.get("versions"))
    if versions:
        parts += ["<h3>Versions</h3>", _table(["package", "version"], rows(versions), " class=kv")]
    return f"<footer>{''.join(parts)}</footer>"
