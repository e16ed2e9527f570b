"""Bearer tokens, roles and scopes, API clients and the client-credentials grant."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jwt

from app.auth.models import ApiClient
from app.auth.principals import principal_from_claims
from app.core.config import ConfigError, Settings
from app.core.security import InvalidToken, TokenVerifier
from app.main import create_app
from tests.support import (
    ADMIN,
    TOKEN_SETTINGS,
    as_subject,
    assert_problem,
    claims,
    make_processor,
    make_subject,
    staff,
    token,
)

PROTECTED = "/v1/subjects"


def hs256(payload, secret=None):
    return jwt.encode(payload, secret or TOKEN_SETTINGS.jwt_secret.get_secret_value(), algorithm="HS256")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def assert_unauthorized(client, headers):
    response = await client.get(PROTECTED, headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_valid_token_is_accepted(client):
    assert (await client.get(PROTECTED, headers=bearer(hs256(claims())))).status_code == 200


async def test_missing_or_non_bearer_credentials_are_401(client):
    await assert_unauthorized(client, {})
    await assert_unauthorized(client, {"Authorization": "Basic dXNlcjpwYXNz"})
    await assert_unauthorized(client, {"Authorization": "Bearer"})


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "a.b.c",
        "a.b",
        "....",
        "e30.e30.",
        "eyJhbGciOiJIUzI1NiJ9.%%%.sig",
        "x" * 5000,
        base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode() + ".bnVsbA.c2ln",
    ],
)
async def test_malformed_tokens_are_401_never_500(client, value):
    await assert_unauthorized(client, bearer(value))


@pytest.mark.parametrize(
    "override",
    [
        {"exp": int(time.time()) - 3600},  # expired
        {"aud": "someone-else"},  # wrong audience
        {"iss": "evil"},  # wrong issuer
        {"exp": None},
        {"iat": None},
        {"iss": None},
        {"aud": None},
        {"sub": None},  # a required claim missing
        {"role": None},
        {"role": "superuser"},  # no role, unknown role
        {"role": "subject", "sub": "not-a-uuid"},  # a subject is a UUID
        {"sub": 42},  # sub must be a string
    ],
)
async def test_tokens_with_bad_claims_are_401(client, override):
    await assert_unauthorized(client, bearer(hs256(claims(**override))))


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "sub", "role", "scope", "client_id"])
@pytest.mark.parametrize("value", [["staff"], {"role": "staff"}, True, 1.5, ""])
async def test_a_claim_of_any_json_type_is_refused_or_ignored_never_a_500(client, claim, value):
    """A token signed with the right key but odd claim types (a list where a string goes, an object, ...)."""
    response = await client.get(PROTECTED, headers=bearer(hs256(claims(**{claim: value}))))
    assert response.status_code in (200, 401, 403), response.text


@pytest.mark.parametrize("ahead", [TOKEN_SETTINGS.jwt_leeway_seconds + 5, 600, 86400, 10 * 365 * 86400])
async def test_a_token_issued_in_the_future_beyond_the_leeway_is_401(client, ahead):
    """`iat` later than now by more than the clock leeway (30 s): a wrong clock, or a token forged ahead."""
    now = int(time.time())
    refused = await client.get(
        PROTECTED, headers=bearer(hs256(claims(iat=now + ahead, exp=now + ahead + 300)))
    )
    assert "future" in assert_problem(refused, 401)["detail"]


@pytest.mark.parametrize("ahead", [0, 1, TOKEN_SETTINGS.jwt_leeway_seconds - 5])
async def test_a_token_issued_within_the_leeway_is_accepted(client, ahead):
    now = int(time.time())
    accepted = await client.get(PROTECTED, headers=bearer(hs256(claims(iat=now + ahead, exp=now + 300))))
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize("setting", ["access_token_ttl_seconds", "subject_token_ttl_seconds"])
def test_token_lifetimes_are_short_by_default_and_capped_at_an_hour(setting):
    assert getattr(Settings(env="test"), setting) == 900
    assert getattr(Settings(env="test", **{setting: 3600}), setting) == 3600
    with pytest.raises(ValueError, match="3600"):
        Settings(env="test", **{setting: 3601})


async def test_wrong_signature_and_alg_none_are_401(client):
    await assert_unauthorized(client, bearer(hs256(claims(), secret="another-secret-entirely-0123456789")))
    header = (
        base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    )
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=").decode()
    await assert_unauthorized(client, bearer(f"{header}.{body}."))


async def test_scope_and_role_failures_are_403(client):
    response = await client.get(PROTECTED, headers=staff("consents:read"))
    body = assert_problem(response, 403)
    assert "subjects:read" in body["detail"]
    assert_problem(await client.get(PROTECTED, headers=bearer(token("processor", str(uuid.uuid4())))), 403)


# --- public keys: RS256 / ES256 from an identity provider, and the key-confusion guard ----------------------


def _rsa():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return private, pem.decode()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    rsa_private, rsa_pem = _rsa()
    ec_private = ec.generate_private_key(ec.SECP256R1())
    ec_pem = ec_private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    folder = tmp_path_factory.mktemp("keys")
    public_pem = folder / "idp.pem"
    public_pem.write_bytes(
        rsa_private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    ec_jwk = jwk.construct(ec_pem, "ES256").public_key().to_dict() | {"kid": "ec-1"}
    jwks = folder / "jwks.json"
    jwks.write_text(json.dumps({"keys": [ec_jwk]}))
    return {
        "rsa_pem": rsa_pem,
        "rsa_public": rsa_private.public_key(),
        "public_pem": public_pem,
        "ec_pem": ec_pem,
        "jwks": jwks,
    }


async def _client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as http,
    ):
        yield http


@pytest.fixture
async def pem_client(settings, keys):
    async for http in _client_for(settings.model_copy(update={"jwt_public_keys": keys["public_pem"]})):
        yield http


@pytest.fixture
async def jwks_client(settings, keys):
    async for http in _client_for(settings.model_copy(update={"jwt_public_keys": keys["jwks"]})):
        yield http


async def test_rs256_tokens_from_the_pem_key_are_accepted(pem_client, keys):
    rs = jwt.encode(claims(), keys["rsa_pem"], algorithm="RS256")
    assert (await pem_client.get(PROTECTED, headers=bearer(rs))).status_code == 200
    # HS256 tokens still work beside them.
    assert (await pem_client.get(PROTECTED, headers=bearer(hs256(claims())))).status_code == 200


async def test_es256_tokens_from_the_jwks_are_accepted(jwks_client, keys):
    es = jwt.encode(claims(), keys["ec_pem"], algorithm="ES256", headers={"kid": "ec-1"})
    assert (await jwks_client.get(PROTECTED, headers=bearer(es))).status_code == 200
    other_kid = jwt.encode(claims(), keys["ec_pem"], algorithm="ES256", headers={"kid": "unknown"})
    await assert_unauthorized(jwks_client, bearer(other_kid))


async def test_public_key_used_as_hmac_secret_is_refused(pem_client, keys):
    """The classic algorithm confusion: sign HS256 with the server's public key, PEM or DER."""
    public = keys["rsa_public"]
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    import hmac

    for secret in (pem, der):
        header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
        body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
        signature = base64.urlsafe_b64encode(
            hmac.new(secret, header + b"." + body, hashlib.sha256).digest()
        ).rstrip(b"=")
        await assert_unauthorized(pem_client, bearer(b".".join([header, body, signature]).decode()))


async def test_algorithms_come_from_configuration_not_the_token(settings, keys):
    only_hs = settings.model_copy(update={"jwt_public_keys": keys["public_pem"], "jwt_algorithms": ["HS256"]})
    async for http in _client_for(only_hs):
        rs = jwt.encode(claims(), keys["rsa_pem"], algorithm="RS256")
        await assert_unauthorized(http, bearer(rs))


def test_a_public_key_as_the_hmac_secret_is_a_configuration_error(keys):
    der = keys["rsa_public"].public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (der.decode("latin-1"), base64.b64encode(der).decode(), keys["public_pem"].read_text()):
        with pytest.raises(ConfigError, match="public key"):
            TokenVerifier(Settings(env="test", jwt_secret=secret), principal_from_claims)


def test_a_jwks_with_a_symmetric_key_is_a_configuration_error(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}))
    with pytest.raises(ConfigError, match="RSA and EC"):
        TokenVerifier(Settings(env="test", jwt_public_keys=path), principal_from_claims)


# --- API clients and the token endpoint ---------------------------------------------------------------------


async def register(client, **body):
    response = await client.post("/v1/clients", json={"name": "CRM", "role": "staff", **body}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def test_client_credentials_grant_by_form_and_basic(client):
    registered = await register(client, scopes=["subjects:read", "consents:read"])
    assert registered["client_secret"].startswith("wsp_")
    form = {
        "grant_type": "client_credentials",
        "client_id": registered["client_id"],
        "client_secret": registered["client_secret"],
    }
    by_form = await client.post("/v1/auth/token", data=form)
    assert by_form.status_code == 200, by_form.text
    issued = by_form.json()
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 900  # 15 minutes (docs/security.md)
    assert issued["scope"] == "consents:read subjects:read"
    assert by_form.headers["cache-control"] == "no-store"
    assert (await client.get(PROTECTED, headers=bearer(issued["access_token"]))).status_code == 200

    basic = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(registered["client_id"], registered["client_secret"]),
    )
    assert basic.status_code == 200
    narrowed = await client.post("/v1/auth/token", data=form | {"scope": "consents:read"})
    assert narrowed.json()["scope"] == "consents:read"
    assert_problem(await client.get(PROTECTED, headers=bearer(narrowed.json()["access_token"])), 403)


async def test_bad_client_credentials_are_invalid_client(client):
    registered = await register(client, scopes=["subjects:read"])
    for client_id, secret in (
        (registered["client_id"], "wsp_wrong"),
        (str(uuid.uuid4()), "x"),
        ("not-a-uuid", "x"),
        (registered["client_id"], None),
    ):
        form = {"grant_type": "client_credentials", "client_id": client_id} | (
            {"client_secret": secret} if secret else {}
        )
        body = assert_problem(await client.post("/v1/auth/token", data=form), 401)
        assert body["error"] == "invalid_client"


async def test_token_request_errors_follow_oauth(client):
    registered = await register(client, scopes=["subjects:read"])
    creds = {"client_id": registered["client_id"], "client_secret": registered["client_secret"]}
    unsupported = assert_problem(
        await client.post("/v1/auth/token", data={"grant_type": "password", **creds}), 400
    )
    assert unsupported["error"] == "unsupported_grant_type"
    missing = assert_problem(await client.post("/v1/auth/token", data=creds), 400)
    assert missing["error"] == "invalid_request"
    scope = assert_problem(
        await client.post(
            "/v1/auth/token", data={"grant_type": "client_credentials", "scope": "admin", **creds}
        ),
        400,
    )
    assert scope["error"] == "invalid_scope"
    # RFC 6749 §5.2's fields, which OAuth clients show: the description is the problem's detail.
    assert scope["error_description"] == scope["detail"] and "scope" in scope["error_description"]


async def test_a_json_token_request_is_told_to_use_a_form(client):
    registered = await register(client, scopes=["subjects:read"])
    body = {
        "grant_type": "client_credentials",
        "client_id": registered["client_id"],
        "client_secret": registered["client_secret"],
    }
    refused = assert_problem(await client.post("/v1/auth/token", json=body), 415)
    assert refused["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in refused["error_description"]
    assert (await client.post("/v1/auth/token", data=body)).status_code == 200


async def test_secret_is_shown_once_and_stored_hashed(client, db):
    registered = await register(client, scopes=["subjects:read"])
    listed = (await client.get("/v1/clients", params={"limit": 500}, headers=ADMIN)).json()["items"]
    mine = next(c for c in listed if c["client_id"] == registered["client_id"])
    assert "client_secret" not in mine and mine["scopes"] == ["subjects:read"]
    async with db() as session:
        row = await session.get(ApiClient, uuid.UUID(registered["client_id"]))
    assert registered["client_secret"] not in row.secret_hash and len(row.secret_hash) == 64


async def test_revoked_clients_get_no_tokens(client):
    registered = await register(client, scopes=["subjects:read"])
    assert (await client.delete(f"/v1/clients/{registered['client_id']}", headers=ADMIN)).status_code == 204
    form = {
        "grant_type": "client_credentials",
        "client_id": registered["client_id"],
        "client_secret": registered["client_secret"],
    }
    assert_problem(await client.post("/v1/auth/token", data=form), 401)
    assert_problem(await client.delete(f"/v1/clients/{uuid.uuid4()}", headers=ADMIN), 404)


async def test_processor_clients_get_processor_tokens(client):
    processor_id = (await make_processor(client))["id"]
    registered = await register(client, role="processor", processor_id=processor_id)
    issued = (
        await client.post(
            "/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": registered["client_id"],
                "client_secret": registered["client_secret"],
            },
        )
    ).json()
    decoded = jwt.get_unverified_claims(issued["access_token"])
    assert decoded["role"] == "processor" and decoded["sub"] == processor_id and "scope" not in decoded


async def test_client_registration_rules(client):
    for body in (
        {"role": "processor"},
        {"role": "processor", "processor_id": str(uuid.uuid4()), "scopes": ["admin"]},
        {"role": "staff", "processor_id": str(uuid.uuid4())},
        {"role": "staff", "scopes": ["root"]},
        {"role": "subject"},
    ):
        response = await client.post("/v1/clients", json={"name": "x", **body}, headers=ADMIN)
        assert_problem(response, 422)
    assert_problem(
        await client.post(
            "/v1/clients", json={"name": "x", "role": "staff"}, headers=staff("subjects:write")
        ),
        403,
    )


async def test_subject_tokens_cannot_reach_admin_routes(client):
    subject = await make_subject(client)
    response = await client.post(
        "/v1/clients", json={"name": "x", "role": "staff"}, headers=as_subject(subject["id"])
    )
    assert_problem(response, 403)


async def test_verified_tokens_are_remembered_only_until_they_expire():
    verifier = TokenVerifier(Settings(env="test", jwt_leeway_seconds=0), principal_from_claims)
    issued = token("staff", "cache-test", "subjects:read", extra={"exp": int(time.time()) + 1})
    first = verifier.verify(issued)
    assert verifier.verify(issued) is first  # the cached principal
    await asyncio.sleep(3)  # python-jose compares whole seconds
    with pytest.raises(InvalidToken):
        verifier.verify(issued)
