"""A developer's first hour: `privacy demo` and the README's first look run as written, the public base URL
follows `--port`, the login code is at /dev/mail (development only), the webhook flag is named where it
matters, and trusted proxies are a setting."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import cli
from app.core import migrate
from app.core.config import Settings
from app.demo import DEMO_SCOPES, DEMO_SUBJECTS, describe, load_demo
from app.main import create_app
from app.webhooks import delivery
from app.webhooks.models import OutboxEvent, WebhookEndpoint
from tests.processes import BIN, REPO, Served, clean_environment, run, start, write_receipt_key
from tests.support import ADMIN, PRODUCTION_KEYS, app_settings, assert_problem, free_port

FLAG = "PRIVACY_WEBHOOK_ALLOW_PRIVATE_ADDRESSES"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


# --- privacy demo -----------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_sqlite(tmp_path) -> str:
    url = f"sqlite:///{tmp_path}/demo.db"
    migrate.upgrade(url)
    return url


async def test_the_demo_prints_who_it_loaded_and_commands_that_run_as_printed(fresh_sqlite, capsys):
    settings = app_settings(database_url=fresh_sqlite, log_level="WARNING")
    demo = await load_demo(settings)
    printed = describe(demo, base_url="http://127.0.0.1:8000", program="privacy")
    assert demo.loaded and printed.startswith("loaded the demo subjects:")
    for (data, _items), subject in zip(DEMO_SUBJECTS, demo.subjects, strict=True):
        assert re.search(rf"{data.name}\s+{data.email}\s+{subject.id}\s", printed), printed
    assert "<id>" not in printed and "sensitive:read" not in printed and DEMO_SCOPES in printed

    # The printed commands, run as printed: the token command through the CLI, the curls against the app.
    token_command = re.search(r"TOKEN=\$\((privacy token [^)]*)\)", printed).group(1)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        cli.main(shlex.split(token_command)[1:])
    headers = {"Authorization": f"Bearer {out.getvalue().strip()}"}
    urls = re.findall(r'curl -s -H "Authorization: Bearer \$TOKEN" "http://127.0.0.1:8000([^"]+)"', printed)
    assert len(urls) == 3 and all(str(demo.subjects[0].id) in url for url in urls)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        answers = [await http.get(url, headers=headers) for url in urls]
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert answers[0].json()["email"] == "anna.svensson@example.se"
    card = next(item for item in answers[1].json()["items"] if item["category"] == "payment")
    assert card["value"] == "****1111" and "4111 1111" not in answers[1].text  # masked, as the README says
    assert answers[2].json()["items"]

    # Again: the same subjects, found rather than loaded.
    again = await load_demo(settings)
    assert not again.loaded and [s.id for s in again.subjects] == [s.id for s in demo.subjects]
    assert describe(again, base_url="http://x").startswith("the demo subjects are already loaded:")


async def test_the_demo_leaves_a_database_with_other_subjects_alone(client, settings):
    from tests.support import make_subject

    await make_subject(client)
    demo = await load_demo(settings)
    if demo.subjects:  # the suite's database may hold the demo subjects already
        assert not demo.loaded
    else:
        assert "demo data not loaded" in describe(demo, base_url="http://x")


# --- a development server, as the README starts it --------------------------------------------------------------

PROXY = "127.0.0.2"  # the trusted reverse proxy: loopback has the whole of 127.0.0.0/8


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory) -> Iterator[Served]:
    """`privacy serve --port P` in a fresh folder (SQLite ./privacy.db, development defaults), with the demo
    loaded; the only settings: a trusted proxy, and a cookie-choice limit of 1 a day per client address."""
    folder = tmp_path_factory.mktemp("dev-server")
    port = free_port()
    env = clean_environment(PRIVACY_FORWARDED_ALLOW_IPS=PROXY, PRIVACY_VISITOR_CONSENT_RATE_LIMIT="1/day")
    served = start(["privacy", "serve", "--port", str(port)], env, folder, port)
    try:
        served.wait_until("/readyz")
        loaded = run(["privacy", "demo"], env, folder)
        assert loaded.returncode == 0 and "anna.svensson@example.se" in loaded.stdout, loaded.stderr
        yield served
    finally:
        served.stop()


def _readme_first_look() -> str:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"A first look.*?\n```sh\n(.*?)```", readme, re.S)
    assert block, "the README's first look is a ```sh block"
    return block.group(1)


def test_the_readme_first_look_runs_as_written(dev_server):
    script = _readme_first_look()
    assert "<id>" not in script and "sensitive:read" not in script
    # As written, but for where the venv is and the port this server got.
    script = script.replace(".venv/bin/", f"{BIN}/").replace("127.0.0.1:8000", f"127.0.0.1:{dev_server.port}")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=clean_environment(), text=True,
                            capture_output=True, cwd=dev_server.log.parent, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert '"category":"payment"' in result.stdout.replace(" ", "") and "****1111" in result.stdout
    assert "4111 1111" not in result.stdout
    assert '"action"' in result.stdout  # the audit events


def _token(*scopes: str) -> dict[str, str]:
    minted = run(["privacy", "token", "--role", "staff", "--sub", "dev", "--scope", " ".join(scopes)],
                 clean_environment(), Path.cwd())
    assert minted.returncode == 0, minted.stderr
    return {"Authorization": f"Bearer {minted.stdout.strip()}"}


def test_in_development_the_public_base_url_follows_the_port(dev_server):
    link = httpx.post(dev_server.url + "/v1/marketing/unsubscribe-links", headers=_token("consents:read"),
                      json={"email": "anna.svensson@example.se"}, timeout=10)
    assert link.status_code == 200, link.text
    assert link.json()["url"].startswith(f"http://127.0.0.1:{dev_server.port}/v1/marketing/unsubscribe?token=")


def test_public_base_url_from_host_and_port():
    assert cli.local_base_url("127.0.0.1", 9000) == "http://127.0.0.1:9000"
    assert cli.local_base_url("0.0.0.0", 8080) == "http://127.0.0.1:8080"
    assert cli.local_base_url("::", 8080) == "http://[::1]:8080"
    assert cli.local_base_url("localhost", 8001) == "http://localhost:8001"


def test_the_login_code_is_at_dev_mail(dev_server):
    anna = "anna.svensson@example.se"
    sent = httpx.post(dev_server.url + "/v1/auth/subject-login", json={"email": anna}, timeout=10)
    assert sent.status_code == 202, sent.text
    page = httpx.get(dev_server.url + "/dev/mail", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    assert page.headers["cache-control"] == "no-store"
    newest = page.text.split("-" * 72)[0]
    assert f"To: {anna}" in newest and "Subject: Din inloggningskod / Your login code" in newest
    code = re.search(r"\b(\d{6})\b", newest).group(1)
    verified = httpx.post(dev_server.url + "/v1/auth/subject-login/verify", json={"email": anna, "code": code},
                          timeout=10)
    assert verified.status_code == 200, verified.text


@pytest.mark.parametrize("env", ["production", "test"])
async def test_dev_mail_does_not_exist_outside_development(tmp_path, env):
    settings = Settings(env=env, database_url="postgresql://db.internal/privacy", **PRODUCTION_KEYS,
                        receipt_key_file=write_receipt_key(tmp_path / "receipt.pem"), mail_backend="smtp",
                        public_base_url="https://privacy.wesafe.example")
    if env == "test":
        settings = app_settings(mail_backend="console")
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        viewer, nothing = await http.get("/dev/mail"), await http.get("/dev/nothing-here")
    assert assert_problem(viewer, 404)["title"] == assert_problem(nothing, 404)["title"]
    assert "/dev/mail" not in app.openapi()["paths"]


async def test_the_console_backend_keeps_only_the_last_mails():
    from app.core.mail import KEPT_MAILS, Mail, Mailer

    mailer = Mailer(Settings(env="development"))
    for n in range(KEPT_MAILS + 5):
        await mailer.send(Mail(to=f"p{n}@example.se", subject="s", body="b"))
    assert len(mailer.recent) == KEPT_MAILS and mailer.recent[-1].mail.to == f"p{KEPT_MAILS + 4}@example.se"
    smtp = Mailer(Settings(env="development", mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=9))
    await smtp.send(Mail(to="p@example.se", subject="s", body="b"))  # fails to connect: logged, not kept
    assert not smtp.recent


# --- trusted proxies --------------------------------------------------------------------------------------------


def _choose(served: Served, *, via: str, client: str) -> int:
    """A cookie choice sent from `via` (a local address), saying it is forwarded for `client`."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address=via), timeout=10) as http:
        response = http.post(served.url + "/v1/visitor-consents", headers={"X-Forwarded-For": client},
                             json={"choices": {"analytics": False}})
    assert response.status_code in (201, 429), response.text
    return response.status_code


def test_the_client_address_comes_from_x_forwarded_for_only_through_a_trusted_proxy(dev_server):
    """PRIVACY_FORWARDED_ALLOW_IPS=127.0.0.2, and one cookie choice a day per client address."""
    # Through the proxy: each forwarded client has its own count.
    assert _choose(dev_server, via=PROXY, client="203.0.113.1") == 201
    assert _choose(dev_server, via=PROXY, client="203.0.113.2") == 201
    assert _choose(dev_server, via=PROXY, client="203.0.113.1") == 429
    # Straight from 127.0.0.1, which is not trusted: the header is ignored, and the peer is the client.
    assert _choose(dev_server, via="127.0.0.1", client="198.51.100.1") == 201
    assert _choose(dev_server, via="127.0.0.1", client="198.51.100.2") == 429


def test_trusted_proxies_are_validated():
    assert Settings(forwarded_allow_ips="10.0.0.1, 10.1.0.0/16 *").forwarded_allow_ips == [
        "10.0.0.1", "10.1.0.0/16", "*"]
    assert Settings().forwarded_allow_ips == ["127.0.0.1"]
    with pytest.raises(ValueError, match="PRIVACY_FORWARDED_ALLOW_IPS"):
        Settings(forwarded_allow_ips="proxy.internal")


# --- the webhook flag, named ------------------------------------------------------------------------------------


async def test_a_refused_webhook_url_names_the_flag(client):
    response = await client.post("/v1/webhook-endpoints", headers=ADMIN,
                                 json={"url": "http://127.0.0.1:9/hook", "event_types": ["consent.granted"]})
    body = assert_problem(response, 422)
    assert f"{FLAG}=true" in body["detail"] and "worker" in body["detail"]


async def test_the_worker_logs_a_refused_delivery_naming_the_flag():
    """The API may allow loopback webhooks while the worker does not: the worker says so, at WARNING."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("app.webhooks")
    logger.addHandler(handler)
    endpoint = WebhookEndpoint(id=uuid.uuid4(), url="http://127.0.0.1:9/hook", event_types=["consent.granted"],
                               secret_ciphertext=b"", secret_key_id="k1")
    event = OutboxEvent(id=uuid.uuid4(), type="consent.granted", payload={})
    try:
        async with httpx.AsyncClient() as http:
            outcome = await delivery._send(http, Settings(env="test"), endpoint, "whsec_" + "A" * 44, event)
    finally:
        logger.removeHandler(handler)
    assert outcome.error.startswith("refused") and FLAG in outcome.error
    [warning] = [r for r in records if r.levelno == logging.WARNING]
    assert warning.getMessage() == "webhook delivery refused"
    assert FLAG in warning.reason and warning.endpoint_id == str(endpoint.id)
