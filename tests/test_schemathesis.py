"""Property-based contract tests: schemathesis drives every operation of the OpenAPI document, with every
check on, as staff holding every scope and as a data subject. Bounded so that the suite stays quick."""

from __future__ import annotations

import re
import uuid

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi

from app.main import create_app
from tests.support import ALL_SCOPES, app_settings, migrated_database_url, token, unique_email

# Rules the OpenAPI document states in words but JSON Schema cannot express; a schema-valid request that
# breaks one is rightly refused with 422, so the positive-data check accepts 422 for these operations only.
RULES_BEYOND_SCHEMA = {
    "catalog-publish_policy": "effective_from not in the past; section ids unique",
    "subjects-add_item": "the purpose must exist in the catalog",
    "subjects-end_relationship": "ended_at not in the future",
    "marketing-opt_out_contact": "a phone number must normalize to E.164",
    "webhooks-create_endpoint": "the URL must resolve to public addresses only",
    "processors-create_processor": "a webhook URL must resolve to public addresses only; a transfer mechanism "
    "only for a third country, with what its kind needs; the agreement expires after it was signed",
    "processors-update_processor": "something to change, no required field cleared; the transfer and agreement "
    "rules of creation, on the processor as it would stand",
    "processors-end_processor": "ended_at not in the future",
    "disclosures-record": "staff name the recipient; the purpose exists; disclosed_at not in the future",
    "disclosures-record_batch": "as for one disclosure, for every item",
    "auth-create_client": "a processor client's processor must exist",
    "rights-requests-file_request": "staff name the subject; an objection names an existing purpose",
    "legal-holds-place_hold": "a hold ends in the future",
    "consent-record_consent": "the purpose and the notice version named must exist in the catalog",
    "visitor-consents-record_visitor_consent": "the notice version named must exist in the catalog",
    "breaches-register_breach": "aware_at and occurred_at not in the future; occurred_at not after aware_at",
    "breaches-query_subjects": "until after from; an audit query names an action or an actor",
}
OPERATIONS = [
    {"include-operation-id": operation_id,
     # 429: the visitors' POST is rate limited per address, and every case comes from one.
     "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422",
                                                                   "429"]}}}
    for operation_id in RULES_BEYOND_SCHEMA
] + [
    # OpenDSR answers a request it cannot take with the specification's own 400 error object (docs/opendsr.md),
    # e.g. a status callback whose host does not resolve to a public address.
    {"include-operation-id": operation_id,
     "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409"]}}}
    for operation_id in ("opendsr-create_request", "opendsr-create_request_opengdpr")
]

# An app of its own, built at collection: schemathesis serves it from its own event loop thread.
app = create_app(app_settings(database_url=migrated_database_url(), log_level="ERROR"))
STAFF_TOKEN = token("staff", "schemathesis", *ALL_SCOPES)


def _subject_token() -> str:
    with asgi.get_client(app) as http:
        created = http.post("/v1/subjects", json={"email": unique_email("fuzz")},
                            headers={"Authorization": f"Bearer {STAFF_TOKEN}"})
    assert created.status_code == 201, created.text
    return token("subject", created.json()["id"])


def _schema(bearer: str):
    # The document's two schemes take the same bearer token: staff operations name `oauth2` (with scopes),
    # operations that subjects and processors call also `bearerAuth`.
    schemes = {"bearerAuth": {"bearer": bearer}, "oauth2": {"bearer": bearer}}
    # No NUL in generated strings: every text field's pattern already refuses it, yet schemathesis now and then
    # generated one inside a "valid" string (a Localized text in PATCH /v1/cookies); NUL in every path
    # parameter and body is swept by tests/test_http_conventions.py instead.
    config = SchemathesisConfig.from_dict(
        {"auth": {"openapi": schemes}, "operations": OPERATIONS, "generation": {"allow-x00": False}}
    )
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    loaded.hook("map_case")(only_server_state_is_invented)
    return loaded


EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
STAFF = {"Authorization": f"Bearer {token('staff', 'schemathesis', *ALL_SCOPES)}"}
_VALID_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def only_server_state_is_invented(_context, case):
    """Two values only the server can make valid are kept out of the generated data, without changing
    whether a case is valid: a schema-valid cursor (opaque; only ones the API issued decode) is dropped,
    and a schema-valid Idempotency-Key is made unique (reusing one with another body is a 422 by contract)."""
    if case.query and isinstance(case.query.get("cursor"), str) and _VALID_CURSOR.match(case.query["cursor"]):
        del case.query["cursor"]
    if case.headers and isinstance(case.headers.get("Idempotency-Key"), str) and _VALID_KEY.match(
            case.headers["Idempotency-Key"]):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    return case


as_staff = _schema(STAFF_TOKEN)
as_subject = _schema(_subject_token())


@as_staff.parametrize()
@EXAMPLES
def test_contract_as_staff(case):
    case.call_and_validate()


@as_subject.parametrize()
@EXAMPLES
def test_contract_as_subject(case):
    case.call_and_validate()
