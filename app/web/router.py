"""What this service serves to browsers, all from this package (nothing from a CDN): the cookie banner that
websites embed (the adapter, its styles and texts, and the vendored vanilla-cookieconsent), the API docs
(Swagger UI and Redoc, vendored) and, in development only, a demo site. None of it is in the OpenAPI
document.

Assets that the adapter references carry `?v=<digest>` and are cached for a year; the adapter itself, whose
URL websites embed, for an hour. Every asset has a strong ETag and is sent gzipped to clients that accept
it."""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from string import Template
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

from app.core.config import Settings
from app.core.errors import NotFound
from app.core.headers import content_security_policy

HERE = Path(__file__).parent
STATIC = HERE / "static"
VENDOR = STATIC / "vendor"
TEMPLATES = HERE / "templates"

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=3600"
JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
JSON_TYPE = "application/json"

# Tagged only so that operation ids can be made; the routes stay out of the document.
router = APIRouter(tags=["pages"], include_in_schema=False)

# The docs pages may load nothing from outside this service; the browser enforces it (Redoc's footer, say,
# links a logo on a CDN). Swagger UI starts from an inline script (and so does its OAuth2 redirect page); both
# inject styles; Redoc's search runs in a worker made from a blob. No framing (core.headers' base).
DOCS_POLICY = content_security_policy(
    default_src="'self'",
    script_src="'self' 'unsafe-inline'",
    style_src="'self' 'unsafe-inline'",
    img_src="'self' data:",
    font_src="'self' data:",
    worker_src="'self' blob:",
    connect_src="'self'",
)
# The demo site stands for a website of WeSafe's, not for this service: it runs inline scripts and the banner
# from another origin, as such a site would. Only framing is forbidden.
DEMO_POLICY = content_security_policy(default_src=None)


@dataclass
class Asset:
    body: bytes
    media_type: str

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:16]

    @cached_property
    def gzipped(self) -> bytes:
        return gzip.compress(self.body, compresslevel=9, mtime=0)

    @classmethod
    def file(cls, path: Path, media_type: str) -> Asset:
        return cls(path.read_bytes(), media_type)


def vendored_version(name: str) -> str:
    version: str = json.loads((VENDOR / name / "VERSION.json").read_text())["version"]
    return version


def minify(source: str) -> str:
    """The adapter without its comments and indentation. Safe because the adapter is written for it: no
    string or template literal spans lines, and a comment other than the opening block has a line of its
    own."""
    source = re.sub(r"\A/\*.*?\*/\s*", "", source, flags=re.DOTALL)
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"


@functools.cache
def assets() -> dict[str, Asset]:
    """Every static asset by its URL path (built once per process)."""
    library = VENDOR / "cookieconsent"
    table = {
        "/consent/vendor/cookieconsent.umd.js": Asset.file(library / "cookieconsent.umd.js", JS),
        "/consent/vendor/cookieconsent.css": Asset.file(library / "cookieconsent.css", CSS),
        "/consent/wesafe-consent.css": Asset.file(STATIC / "wesafe-consent.css", CSS),
        "/consent/i18n/sv.json": Asset.file(STATIC / "i18n" / "sv.json", JSON_TYPE),
        "/consent/i18n/en.json": Asset.file(STATIC / "i18n" / "en.json", JSON_TYPE),
        "/docs/assets/swagger-ui-bundle.js": Asset.file(VENDOR / "swagger-ui" / "swagger-ui-bundle.js", JS),
        "/docs/assets/swagger-ui.css": Asset.file(VENDOR / "swagger-ui" / "swagger-ui.css", CSS),
        "/docs/assets/favicon.png": Asset.file(VENDOR / "swagger-ui" / "favicon-32x32.png", "image/png"),
        "/docs/assets/redoc.standalone.js": Asset.file(VENDOR / "redoc" / "redoc.standalone.js", JS),
        "/privacy-center/static/center.css": Asset.file(STATIC / "privacy-center.css", CSS),
    }

    def url(path: str) -> str:
        return _versioned(path, table[path])

    references = {
        "js": url("/consent/vendor/cookieconsent.umd.js"),
        "css": [url("/consent/vendor/cookieconsent.css"), url("/consent/wesafe-consent.css")],
        "texts": {lang: url(f"/consent/i18n/{lang}.json") for lang in ("sv", "en")},
    }
    header = (
        f"/* WeSafe cookie consent, over vanilla-cookieconsent {vendored_version('cookieconsent')} "
        "(MIT, Orest Bida) */\n"
    )
    adapter = header + minify((STATIC / "wesafe-consent.js").read_text()).replace(
        "__ASSETS__", json.dumps(references, separators=(",", ":"))
    )
    table["/consent/wesafe-consent.js"] = Asset(adapter.encode(), JS)
    return table


def _versioned(path: str, asset: Asset) -> str:
    """The asset's URL with its digest, so that it can be cached for good."""
    return f"{path}?v={asset.digest}"


def asset_url(path: str) -> str:
    """An asset's URL with its digest (cached for good by browsers)."""
    return _versioned(path, assets()[path])


_GZIP = re.compile(r"(?:^|,)\s*gzip\s*(?:;\s*q\s*=\s*(?P<q>[0-9.]+))?\s*(?:,|$)", re.IGNORECASE)


def _accepts_gzip(accept_encoding: str) -> bool:
    match = _GZIP.search(accept_encoding)
    if match is None:
        return False
    quality = match.group("q")
    try:
        return quality is None or float(quality) > 0
    except ValueError:
        return False


def serve(request: Request, path: str) -> Response:
    asset = assets().get(path)
    if asset is None:
        raise NotFound("No such file")
    etag = f'"{asset.digest}"'
    headers = {
        "ETag": etag,
        "Cache-Control": IMMUTABLE if request.query_params.get("v") == asset.digest else REVALIDATE,
        "Vary": "Accept-Encoding",
        # Public files, fetched by websites on other origins (the banner's texts) without credentials.
        "Access-Control-Allow-Origin": "*",
    }
    if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    if _accepts_gzip(request.headers.get("accept-encoding", "")):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.api_route("/consent/{name:path}", methods=["GET", "HEAD"])
async def consent_asset(request: Request, name: str) -> Response:
    """The banner: `wesafe-consent.js` (embedded by websites), its styles, texts and the vendored library."""
    return serve(request, f"/consent/{name}")


@router.api_route("/privacy-center/static/{name}", methods=["GET", "HEAD"])
async def center_asset(request: Request, name: str) -> Response:
    """The privacy center's stylesheet."""
    return serve(request, f"/privacy-center/static/{name}")


@router.api_route("/docs/assets/{name}", methods=["GET", "HEAD"])
async def docs_asset(request: Request, name: str) -> Response:
    return serve(request, f"/docs/assets/{name}")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} - Swagger UI",
        swagger_js_url=asset_url("/docs/assets/swagger-ui-bundle.js"),
        swagger_css_url=asset_url("/docs/assets/swagger-ui.css"),
        swagger_favicon_url=asset_url("/docs/assets/favicon.png"),
        oauth2_redirect_url="/docs/oauth2-redirect",
        # No call to the public validator: the page makes no request outside this service.
        swagger_ui_parameters={"validatorUrl": None},
    )
    page.headers["Content-Security-Policy"] = DOCS_POLICY
    return page


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    page = get_swagger_ui_oauth2_redirect_html()
    page.headers["Content-Security-Policy"] = DOCS_POLICY
    return page


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    app = request.app
    page = get_redoc_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=asset_url("/docs/assets/redoc.standalone.js"),
        redoc_favicon_url=asset_url("/docs/assets/favicon.png"),
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = DOCS_POLICY
    return page


_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?$")
_OTHER_HOST = {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}


@functools.cache
def _demo() -> tuple[Template, dict[str, dict[str, str]]]:
    texts: dict[str, dict[str, str]] = json.loads((TEMPLATES / "demo-site.json").read_text())
    return Template((TEMPLATES / "demo-site.html").read_text()), texts


def _other_origin(request: Request) -> str:
    """This service under its other loopback name, so that the demo page and the API are cross-origin."""
    url = request.url
    host = url.hostname or "127.0.0.1"
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{_OTHER_HOST.get(host, host)}{port}"


@router.get("/demo/site")
async def demo_site(
    request: Request,
    lang: Literal["sv", "en"] = "sv",
    api: Annotated[str | None, Query(max_length=200, pattern=_ORIGIN.pattern)] = None,
) -> HTMLResponse:
    """A WeSafe-like page that embeds the banner with one tag (development only). Open it on localhost: the
    banner then talks to the API on 127.0.0.1 (another origin), or on `?api=<origin>`."""
    settings: Settings = request.app.state.settings
    if settings.env != "development":
        raise NotFound("The demo site exists only in development (PRIVACY_ENV=development)")
    template, texts = _demo()
    values = {key: html.escape(value) for key, value in texts[lang].items()}
    values |= {"lang": lang, "api": html.escape(api or _other_origin(request))}
    return HTMLResponse(template.substitute(values), headers={"Content-Security-Policy": DEMO_POLICY})
