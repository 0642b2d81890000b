"""One audit run's ``report.html``: a single self-contained file anyone can open offline.

Why self-contained: the report is copied around (mail, tickets, object stores) and opened years
later, often without network. So the styles are inline, charts are inline SVG, thumbnails and
quality maps are ``data:`` URIs, and nothing is fetched -- a Content-Security-Policy in the page
makes the browser refuse any fetch that slipped in. The only script makes the per-folder table
sortable; the page reads the same without it.

Every string that comes from data (URIs can hold ``<``, ``&`` and quotes) is escaped. Any key of
the input may be missing and any number may be ``None`` (an incremental run that scored nothing):
the report then says so rather than failing. The input contract is the audit job's ``summary``
(also written as ``summary.json``) plus ``extras`` (galleries, maps, error rows, trend).

Modules: ``page`` (the page, CSS and script as package files, the CSP), ``sections`` (one
function per HTML section), ``charts`` (inline SVG), ``thumbnails`` (pictures sized for the
page), ``format`` (escaping and the guards for missing values).
"""

from .page import render_report, write_report
from .thumbnails import MAP_MAX_WIDTH, thumbnail

__all__ = ["MAP_MAX_WIDTH", "render_report", "thumbnail", "write_report"]
