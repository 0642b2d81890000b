"""Two nights of the audit on real photos, as a platform engineer would run them (by hand).

    python benchmarks/audit_two_nights.py --photos build/photos/photos --out output/two-nights \
        --json benchmarks/results/audit-two-nights.json \
        --screenshot benchmarks/results/audit-two-nights.png

Night 1 audits ``--count`` photos (the README's suggested alerts). Between the nights three
photos are degraded in place (re-encoded at JPEG quality 10, written back under the same name
and format), two are added and one deleted. Night 2 must name exactly those in "What changed".
Records each night's wall time (the whole ``deepiqa audit`` process, Spark start included),
exit code, ``_OUTCOME``, ``deepiqa outcome``'s verdict, the report's size and the changes
found; with ``--screenshot`` night 2's report is rendered by headless Chromium.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEEPIQA = Path(sys.executable).with_name("deepiqa")
MARK = ".audit-two-nights"  # marks --out as this script's, so a rerun may replace it
RULES = ["error_rate>0.01", "median_drop>5", "worse(15)>0"]  # the README's suggested alerts


def degrade(path: Path, quality: int = 10) -> None:
    """Re-encode at JPEG ``quality`` and write back in the file's own format and name."""
    image = Image.open(path).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    Image.open(io.BytesIO(buf.getvalue())).save(path)


def night(library: Path, state: Path) -> dict:
    command = [str(DEEPIQA), "audit", str(library), "--state", str(state)]
    for rule in RULES:
        command += ["--alert", rule]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = round(time.perf_counter() - started, 1)
    latest = json.loads((state / "_LATEST").read_text())
    summary = json.loads((state / "runs" / latest["run_id"] / "summary.json").read_text())
    verdict = subprocess.run(
        [str(DEEPIQA), "outcome", str(state), "--max-age-hours", "1"],
        capture_output=True,
        text=True,
    )
    report = state / "runs" / latest["run_id"] / "report.html"
    return {
        "wall_seconds": wall,
        "exit_code": done.returncode,
        "log": done.stdout.strip().splitlines(),
        "outcome_file": json.loads((state / "_OUTCOME").read_text()),
        "alert_file": (state / "runs" / latest["run_id"] / "_ALERT").exists(),
        "deepiqa_outcome": {"exit_code": verdict.returncode, "line": verdict.stdout.strip()},
        "report": str(report),
        "report_bytes": report.stat().st_size,
        "counts": summary["counts"],
        "changes": {
            k: {"count": v["count"], "rows": v["rows"][:5]} for k, v in summary["changes"].items()
        },
        "alerts": summary["alerts"],
        "library_median": summary["library_stats"]["median"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("output/two-nights"))
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    if len(photos) < args.count + 2:
        parser.error(f"{args.photos}: {len(photos)} photos, need {args.count + 2}")
    if args.out.exists():  # only this script's own earlier trial is replaced
        if not (args.out / MARK).is_file():
            parser.error(f"--out {args.out} exists and is not this script's output")
        shutil.rmtree(args.out)
    library, state = args.out / "library", args.out / "state"
    library.mkdir(parents=True)
    (args.out / MARK).write_text("made by benchmarks/audit_two_nights.py\n")
    for photo in photos[: args.count]:
        shutil.copy(photo, library / photo.name)
    first = night(library, state)
    degraded = [library / p.name for p in photos[: args.count : 10][:3]]
    for path in degraded:
        degrade(path)
    added = photos[args.count : args.count + 2]
    for photo in added:
        shutil.copy(photo, library / photo.name)
    deleted = library / photos[args.count - 1].name
    deleted.unlink()
    second = night(library, state)
    result = {
        "what": "two nights of `deepiqa audit` (local Spark, this machine) on real photos",
        "library": f"{args.count} photos from {args.photos}",
        "between_nights": {
            "degraded_in_place_jpeg_q10": [p.name for p in degraded],
            "added": [p.name for p in added],
            "deleted": [deleted.name],
        },
        "rules": RULES,
        "night1": first,
        "night2": second,
    }
    if args.screenshot:
        shot = [sys.executable, str(ROOT / "benchmarks" / "audit_screenshot.py")]
        subprocess.run([*shot, second["report"], str(args.screenshot)], check=True)
        result["screenshot"] = str(args.screenshot)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
