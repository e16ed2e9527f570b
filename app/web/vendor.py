"""Update the vendored front-end files from the npm registry, without Node.

    python -m app.web.vendor                      # every package, at the newest release of its major line
    python -m app.web.vendor 3.1.0                # vanilla-cookieconsent at that exact version
    python -m app.web.vendor redoc [2.5.4]        # one package (cookieconsent, swagger-ui, redoc), newest of
                                                  # its major line or that exact version

The tarball is downloaded with httpx, checked against the registry's `dist.integrity` (SHA-512), and only
the files listed below are extracted into app/web/static/vendor/<name>/, with a VERSION.json naming the
exact version, the tarball and each file's SHA-256 (tests check the files against it).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REGISTRY = "https://registry.npmjs.org"
VENDOR = Path(__file__).parent / "static" / "vendor"


@dataclass(frozen=True)
class Package:
    npm: str
    major: int
    # Path inside the tarball (below `package/`) → file name in the vendor folder.
    files: dict[str, str]


PACKAGES = {
    "cookieconsent": Package(
        npm="vanilla-cookieconsent",
        major=3,
        files={
            "dist/cookieconsent.umd.js": "cookieconsent.umd.js",
            "dist/cookieconsent.css": "cookieconsent.css",
            "LICENSE": "LICENSE",
        },
    ),
    # Swagger UI 5 is the first line that renders OpenAPI 3.1 (the PyPI swagger-ui-bundle ships 4.15).
    "swagger-ui": Package(
        npm="swagger-ui-dist",
        major=5,
        files={
            "swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
            "swagger-ui.css": "swagger-ui.css",
            "favicon-32x32.png": "favicon-32x32.png",
            "LICENSE": "LICENSE",
            "NOTICE": "NOTICE",
        },
    ),
    # Redoc 2 is the line FastAPI's get_redoc_html targets (`<redoc spec-url>` and the standalone bundle).
    "redoc": Package(
        npm="redoc",
        major=2,
        files={
            "bundles/redoc.standalone.js": "redoc.standalone.js",
            "bundles/redoc.standalone.js.LICENSE.txt": "redoc.standalone.js.LICENSE.txt",
            "LICENSE": "LICENSE",
        },
    ),
}

_RELEASE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class VendorError(RuntimeError):
    """The registry's answer cannot be used; the message says why."""


def newest_release(versions: list[str], major: int) -> str:
    """The highest plain release (no pre-release tag) of one major line."""
    releases = [
        (tuple(int(part) for part in match.groups()), version)
        for version in versions
        if (match := _RELEASE.match(version)) and int(match.group(1)) == major
    ]
    if not releases:
        raise VendorError(f"no {major}.x release on the registry")
    return max(releases)[1]


def check_integrity(data: bytes, integrity: str) -> None:
    """Subresource-integrity check (`sha512-<base64>`), as npm records it in `dist.integrity`."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise VendorError(f"unexpected integrity algorithm {algorithm!r}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise VendorError("the tarball does not match the registry's dist.integrity (sha512)")


def extract(tarball: bytes, package: Package) -> dict[str, bytes]:
    """The listed files from an npm tarball (whose entries sit below `package/`)."""
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member in archive.getmembers():
            inner = member.name.split("/", 1)[1] if "/" in member.name else member.name
            if member.isfile() and inner in package.files:
                stream = archive.extractfile(member)
                if stream is not None:
                    found[package.files[inner]] = stream.read()
    missing = sorted(set(package.files.values()) - set(found))
    if missing:
        raise VendorError(f"the tarball lacks {', '.join(missing)}")
    return found


def refresh(
    name: str, version: str | None = None, *, client: httpx.Client | None = None, vendor: Path = VENDOR
) -> dict[str, Any]:
    """Vendor `name` at `version` (default: the newest release of its major line) into `vendor/<name>/`;
    the new VERSION.json."""
    package = PACKAGES[name]
    http = client or httpx.Client(timeout=60, follow_redirects=True)
    try:
        metadata = http.get(f"{REGISTRY}/{package.npm}")
        metadata.raise_for_status()
        document = metadata.json()
        version = version or newest_release(list(document["versions"]), package.major)
        if version not in document["versions"]:
            raise VendorError(f"{package.npm} {version} is not on the registry")
        dist = document["versions"][version]["dist"]
        download = http.get(dist["tarball"])
        download.raise_for_status()
    finally:
        if client is None:
            http.close()
    check_integrity(download.content, dist["integrity"])
    files = extract(download.content, package)

    folder = vendor / name
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        if stale.is_file() and stale.name not in files and stale.name != "VERSION.json":
            stale.unlink()
    for filename, data in files.items():
        (folder / filename).write_bytes(data)
    record = {
        "package": package.npm,
        "version": version,
        "license": document["versions"][version].get("license"),
        "tarball": dist["tarball"],
        "integrity": dist["integrity"],
        "files": {
            filename: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for filename, data in sorted(files.items())
        },
    }
    (folder / "VERSION.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m app.web.vendor",
        description="Update the vendored front-end files from the npm registry.",
    )
    parser.add_argument(
        "target", nargs="*", help="[package] [version]; package is one of " + ", ".join(PACKAGES)
    )
    args = parser.parse_args(argv)
    target: list[str] = args.target
    if len(target) > 2:
        parser.error("at most a package and a version")
    if not target:
        jobs: list[tuple[str, str | None]] = [(name, None) for name in PACKAGES]
    elif target[0] in PACKAGES:
        jobs = [(target[0], target[1] if len(target) > 1 else None)]
    elif len(target) == 1 and _RELEASE.match(target[0]):
        jobs = [("cookieconsent", target[0])]
    else:
        parser.error(f"unknown package {target[0]!r}")
    for name, version in jobs:
        try:
            record = refresh(name, version)
        except (VendorError, httpx.HTTPError) as exc:
            sys.exit(f"vendor: {name}: {exc}")
        print(f"{record['package']} {record['version']} → app/web/static/vendor/{name}/")


if __name__ == "__main__":
    main()
