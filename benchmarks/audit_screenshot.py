"""A full-page PNG of an audit ``report.html`` in headless Chromium, so that a person can look.

    python benchmarks/audit_screenshot.py runs/R/report.html report.png
    python benchmarks/audit_screenshot.py --sample sample.html sample.png   # a made-up report

Chromium comes from scripts/setup-chromium.sh (Debian's package, installed once). The page's
console errors (a blocked fetch among them) are printed and make the exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cdp import Chromium, ensure_chromium  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="report.html (written first with --sample)")
    parser.add_argument("output", type=Path, help="PNG to write")
    parser.add_argument("--width", type=int, default=1200, help="viewport width in CSS px")
    parser.add_argument(
        "--sample", action="store_true", help="render the tests' sample report into REPORT first"
    )
    args = parser.parse_args(argv)
    if args.sample:
        from deepiqa_core.audit.report import write_report
        from tests import report_samples

        write_report(args.report, report_samples.summary(), report_samples.extras(runs=8))
    ok, output = ensure_chromium()
    if not ok:
        print(output, file=sys.stderr)
        return 2
    browser = Chromium()
    try:
        page = browser.page()
        page.open(args.report.resolve().as_uri(), width=args.width)
        args.output.write_bytes(page.screenshot(full_page=True))
        problems = page.problems()
        page.close()
    finally:
        browser.close()
    for problem in problems:
        print(f"page error: {problem}", file=sys.stderr)
    print(f"wrote {args.output} ({args.output.stat().st_size:,} bytes)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
