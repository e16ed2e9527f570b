"""The API docs render with the internet cut off, and the banner keeps to its budget: bytes, origins, time."""

from __future__ import annotations

import gzip
import urllib.parse
from typing import Any

from playwright.async_api import Page, Request, Route, expect

from tests.browser.conftest import ARTIFACTS, MEASURED, NewContext, Server

ADAPTER_BUDGET = 3 * 1024  # bytes, gzipped
TOTAL_BUDGET = 20 * 1024  # everything the site downloads from the service to show the banner (JS + CSS)


async def offline(new_context: NewContext, server: Server) -> tuple[Page, list[str]]:
    """A page whose every request to anywhere but this service is aborted (and noted)."""
    context = await new_context()
    blocked: list[str] = []

    async def only_the_service(route: Route, request: Request) -> None:
        if request.url.startswith((server.api + "/", server.site + "/")):
            await route.continue_()
        else:
            blocked.append(request.url)
            await route.abort()

    await context.route("**/*", only_the_service)
    return await context.new_page(), blocked


async def test_swagger_ui_renders_offline(new_context: NewContext, server: Server):
    page, blocked = await offline(new_context, server)
    await page.goto(f"{server.api}/docs")
    await expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
    assert await page.locator(".opblock").count() > 50
    await expect(page.locator(".info .title")).to_contain_text("WeSafe Privacy API")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = await page.screenshot(path=str(ARTIFACTS / "docs-swagger.png"))
    assert len(shot) > 20_000, "the screenshot is (nearly) blank"
    assert blocked == []


async def test_redoc_renders_offline(new_context: NewContext, server: Server):
    page, blocked = await offline(new_context, server)
    await page.goto(f"{server.api}/redoc")
    operations = page.locator("[data-section-id^='operation/']")
    await expect(operations.first).to_be_attached(timeout=30_000)
    assert await operations.count() > 50
    await expect(page.locator("h1").first).to_contain_text("WeSafe Privacy API")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = await page.screenshot(path=str(ARTIFACTS / "docs-redoc.png"))
    assert len(shot) > 20_000, "the screenshot is (nearly) blank"
    assert blocked == []


async def test_the_banner_keeps_to_its_byte_budget_and_its_origins(page: Page, server: Server):
    responses: list[Any] = []
    page.on("response", lambda response: responses.append(response))
    await page.goto(server.demo())
    await expect(page.locator("#cc-main .cm")).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("data-wesafe-consent", "ready")

    hosts = {urllib.parse.urlsplit(r.url).netloc for r in responses}
    assert hosts <= {f"localhost:{server.port}", f"127.0.0.1:{server.port}"}, "a request left the site"

    sizes: dict[str, int] = {}
    for response in responses:
        path = urllib.parse.urlsplit(response.url).path
        if response.request.resource_type in ("script", "stylesheet") or path.startswith("/consent/"):
            body = await response.body()
            sizes[path] = len(gzip.compress(body, compresslevel=9))
            # Sent compressed, as measured (the service gzips what it serves).
            assert (await response.all_headers()).get("content-encoding") == "gzip", path
    adapter = sizes["/consent/wesafe-consent.js"]
    code = sum(size for path, size in sizes.items() if path.endswith((".js", ".css")))
    MEASURED["banner bytes (gzip), per file"] = sizes
    MEASURED["adapter bytes (gzip)"] = adapter
    MEASURED["JS + CSS bytes (gzip)"] = code
    MEASURED["everything from /consent/ (gzip)"] = sum(sizes.values())
    assert adapter <= ADAPTER_BUDGET
    assert code <= TOTAL_BUDGET
    assert set(sizes) >= {"/consent/wesafe-consent.js", "/consent/vendor/cookieconsent.umd.js",
                          "/consent/vendor/cookieconsent.css", "/consent/wesafe-consent.css"}


async def test_time_to_banner(new_context: NewContext, server: Server):
    """Recorded, not asserted tightly: a first visit (empty cache), then a second page (cached assets)."""
    context = await new_context()
    timings = []
    for _ in range(2):
        page = await context.new_page()
        await page.goto(server.demo("en"))
        await expect(page.locator("#cc-main .cm")).to_be_visible()
        timings.append(round(await page.evaluate("window.__bannerShownAt")))
        await page.close()
    MEASURED["time to banner, first visit (ms)"] = timings[0]
    MEASURED["time to banner, assets cached (ms)"] = timings[1]
    assert timings[0] < 5000
