"""The page: sections in order, the CSS and the one script (package files), the CSP."""

from __future__ import annotations

import base64
import hashlib
from importlib import resources
from pathlib import Path

from .format import _dict, _e
from .sections import (
    _changes_section,
    _errors_section,
    _folders_section,
    _footer,
    _galleries,
    _header,
    _headline,
    _histogram_section,
    _maps_section,
    _trend_section,
)


def _asset(name: str) -> str:
    """A file of the report kept beside this module (edited as CSS/JS, shipped as package data;
    read from a release zip too)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


_CSS = _asset("report.css")
# Sorts a table body by the clicked column's data-v values (numbers or text, blanks last).
_SCRIPT = _asset("report.js")


def _csp() -> str:
    """No fetches at all: images only from data: URIs, the one inline script pinned by hash."""
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def render_report(summary: dict, extras: dict) -> str:
    """The whole ``report.html`` as text; never fetches, never raises on missing keys."""
    s = _dict(summary)
    x = _dict(extras)
    title = f"deepiqa audit \u2014 {s.get('library') or 'library'}"
    sections = [
        _header(s),
        _headline(s),
        _changes_section(s, x),
        _histogram_section(s),
        _folders_section(s, x),
        _galleries(s, x),
        _maps_section(x),
        _errors_section(s, x),
        _trend_section(s, x),
        _footer(s),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_csp())}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(sections)}</main><script>{_SCRIPT}</script></body></html>\n"
    )


def write_report(path: str | Path, summary: dict, extras: dict) -> int:
    """Write the report (UTF-8) to a local path; returns the bytes written."""
    data = render_report(summary, extras).encode("utf-8")
    Path(path).write_bytes(data)
    return len(data)
