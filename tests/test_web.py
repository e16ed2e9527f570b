"""What the service serves to browsers (app.web): the banner's files, the offline docs, the demo site, and the
vendored front-end files with the updater that brings them from the npm registry. The banner itself, in a
real browser: tests/browser/."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from app.web import vendor
from app.web.router import STATIC, VENDOR, assets, minify
from tests.support import app_settings, assert_problem

ADAPTER = "/consent/wesafe-consent.js"


def test_vendored_files_are_the_published_ones():
    for name, package in vendor.PACKAGES.items():
        record = json.loads((VENDOR / name / "VERSION.json").read_text())
        assert record["package"] == package.npm
        assert record["version"].split(".")[0] == str(package.major)
        assert record["tarball"].startswith("https://registry.npmjs.org/")
        assert set(record["files"]) == set(package.files.values())
        for filename, facts in record["files"].items():
            data = (VENDOR / name / filename).read_bytes()
            assert hashlib.sha256(data).hexdigest() == facts["sha256"], f"{name}/{filename} was changed"
        assert (VENDOR / name / "LICENSE").read_text().strip()


def _registry(files: dict[str, bytes], *, version: str = "3.2.0", corrupt: bool = False) -> httpx.MockTransport:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    tarball = buffer.getvalue()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(b"x" if corrupt else tarball).digest()).decode()
    url = f"https://registry.npmjs.org/vanilla-cookieconsent/-/vanilla-cookieconsent-{version}.tgz"
    document = {"versions": {v: {"license": "MIT", "dist": {"tarball": url, "integrity": integrity}}
                             for v in ("2.9.0", "3.1.0", version, "3.9.0-rc.1", "4.0.0")}}

    def answer(request: httpx.Request) -> httpx.Response:
        if str(request.url) == url:
            return httpx.Response(200, content=tarball)
        if str(request.url) == "https://registry.npmjs.org/vanilla-cookieconsent":
            return httpx.Response(200, json=document)
        return httpx.Response(404)

    return httpx.MockTransport(answer)


PACKAGE_FILES = {"dist/cookieconsent.umd.js": b"/* js */", "dist/cookieconsent.css": b"/* css */",
                 "LICENSE": b"MIT", "dist/cookieconsent.esm.js": b"/* not vendored */"}


def test_the_updater_takes_the_newest_release_of_the_major_line_and_checks_its_integrity(tmp_path: Path):
    with httpx.Client(transport=_registry(PACKAGE_FILES)) as client:
        record = vendor.refresh("cookieconsent", client=client, vendor=tmp_path)
    assert record["version"] == "3.2.0"  # not 3.9.0-rc.1, not 4.0.0
    folder = tmp_path / "cookieconsent"
    assert sorted(p.name for p in folder.iterdir()) == ["LICENSE", "VERSION.json", "cookieconsent.css",
                                                       "cookieconsent.umd.js"]
    assert json.loads((folder / "VERSION.json").read_text()) == record
    assert record["files"]["cookieconsent.umd.js"]["sha256"] == hashlib.sha256(b"/* js */").hexdigest()

    with httpx.Client(transport=_registry(PACKAGE_FILES, corrupt=True)) as client, \
            pytest.raises(vendor.VendorError, match="integrity"):
        vendor.refresh("cookieconsent", client=client, vendor=tmp_path)
    incomplete = {k: v for k, v in PACKAGE_FILES.items() if k != "LICENSE"}
    with httpx.Client(transport=_registry(incomplete)) as client, pytest.raises(vendor.VendorError, match="LICENSE"):
        vendor.refresh("cookieconsent", client=client, vendor=tmp_path)
    with httpx.Client(transport=_registry(PACKAGE_FILES)) as client, pytest.raises(vendor.VendorError):
        vendor.refresh("cookieconsent", "3.0.7", client=client, vendor=tmp_path)


def test_minify_keeps_the_code_and_drops_comments_and_indentation():
    source = (STATIC / "wesafe-consent.js").read_text()
    small = minify(source)
    assert "__ASSETS__" in small and "/*" not in small and "\n  " not in small
    assert not any(line.startswith("//") for line in small.splitlines())
    # Every line of code survives, unchanged but for its indentation.
    code = [line.strip() for line in source.split("*/", 1)[1].splitlines()
            if line.strip() and not line.strip().startswith("//")]
    assert small.splitlines() == code


async def test_the_banner_files_are_versioned_cached_and_compressed(client: httpx.AsyncClient):
    adapter = await client.get(ADAPTER)
    assert adapter.status_code == 200 and adapter.headers["content-type"].startswith("text/javascript")
    assert adapter.headers["cache-control"] == "public, max-age=3600"
    assert adapter.headers["content-encoding"] == "gzip" and adapter.headers["access-control-allow-origin"] == "*"
    assert len(gzip.compress(adapter.content, 9)) <= 3 * 1024, "the adapter is over its 3 KB budget"
    references = json.loads(re.search(r"const ASSETS = (\{.*?\});", adapter.text).group(1))
    urls = [references["js"], *references["css"], *references["texts"].values()]
    assert len(urls) == 5
    for url in urls:
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        etag = response.headers["etag"]
        assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304
    stale = await client.get(references["js"].split("?")[0] + "?v=0000")
    assert stale.headers["cache-control"] == "public, max-age=3600"

    plain = await client.get(ADAPTER, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == adapter.content
    assert_problem(await client.get("/consent/nothing-here.js"), 404)
    assert_problem(await client.get("/consent/../app/main.py"), 404)


def test_the_texts_have_the_same_keys_in_both_languages():
    sv, en = (json.loads((STATIC / "i18n" / f"{lang}.json").read_text()) for lang in ("sv", "en"))
    assert sv.keys() == en.keys() and sv["table"].keys() == en["table"].keys()
    assert (sv["acceptAll"], sv["rejectAll"]) == ("Godkänn alla", "Neka alla")
    assert (en["acceptAll"], en["rejectAll"]) == ("Accept all", "Reject all")
    assert "__ASSETS__" not in assets()[ADAPTER].body.decode()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_need_nothing_from_outside(client: httpx.AsyncClient, page: str):
    response = await client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
    for source in sources:
        assert (await client.get(source)).status_code == 200, source
    assert "fonts.googleapis" not in response.text and "cdn." not in response.text


async def test_the_pages_stay_out_of_the_openapi_document(client: httpx.AsyncClient):
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc", "/consent", "/demo"))]


async def test_the_demo_site_exists_only_in_development(client: httpx.AsyncClient, database_url: str):
    assert_problem(await client.get("/demo/site"), 404)  # the suite's app runs with PRIVACY_ENV=test

    development = create_app(app_settings(env="development", database_url=database_url, log_level="WARNING"))
    transport = httpx.ASGITransport(app=development)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as dev:
        page = await dev.get("/demo/site")
        assert page.status_code == 200 and '<html lang="sv">' in page.text
        # One tag, pointing at the service under its other name: the page and the API are cross-origin.
        assert ('<script src="http://127.0.0.1:8000/consent/wesafe-consent.js" data-api="http://127.0.0.1:8000" '
                'data-lang="sv" defer></script>') in page.text
        assert '<script type="text/plain" data-category="analytics">' in page.text
        english = await dev.get("/demo/site", params={"lang": "en", "api": "http://example.test:9000"})
        assert '<html lang="en">' in english.text and 'data-api="http://example.test:9000"' in english.text
        assert_problem(await dev.get("/demo/site", params={"api": 'x"><script>alert(1)</script>'}), 422)
        assert_problem(await dev.get("/demo/site", params={"lang": "de"}), 422)
