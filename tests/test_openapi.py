"""The API's OpenAPI document: valid (openapi-spec-validator), served at /api/openapi.json,
and true of the API in process, on the suite's database and counter storage: schemathesis
sends generated valid requests to every operation, with an app's session, with a personal
access token and without credentials, and runs its default checks on each answer (no 5xx;
statuses, content types, headers and bodies as documented; valid requests accepted), with
schemathesis.toml's settings. tests/test_api_contract.py runs schemathesis's command line
against the live demo, invalid requests too (they meet no database)."""

import json
import re
import warnings
from pathlib import Path
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import HypothesisDeprecationWarning
from openapi_spec_validator import validate
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok

from tests.api_clients import ApiClient
from tests.conftest import Account, login
from tests.test_access_tokens import create_token

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "schemathesis.toml"


def served(app: Flask) -> dict[str, Any]:
    """The document as /api/openapi.json serves it."""
    answer = app.test_client().get("/api/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = json.loads(answer.text)
    return document


def test_the_document_is_valid_openapi_3_1(app: Flask) -> None:
    spec = served(app)
    validate(spec)
    assert spec["openapi"].startswith("3.1")


def test_every_api_route_is_documented(app: Flask) -> None:
    spec = served(app)
    routes = {
        (re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert routes == documented


def test_the_reference_page_shows_the_served_document(app: Flask) -> None:
    """docs/api-reference.html (``make api-docs``) embeds the document it renders."""
    page = (ROOT / "docs" / "api-reference.html").read_text("utf-8")
    embedded = re.search(r"^\s*const __redoc_definition = (.*);$", page, re.MULTILINE)
    assert embedded, "no document in docs/api-reference.html: run `make api-docs`"
    assert json.loads(embedded.group(1)) == served(app), (
        "run `make api-docs`: the page is out of date"
    )


def keeps_to_its_document(
    app: Flask, headers: dict[str, str], *, scheme: str | None = None, skip: tuple[str, ...] = ()
) -> None:
    """Generated valid requests to every documented operation (those ``scheme``
    secures, when given; not those named in ``skip``), each answer checked against the
    document. (schemathesis's pytest plugin does not run under pytest 9 yet, so its Python API
    drives Hypothesis here.)

    With credentials in ``headers``, no others are generated beside them: ignored_auth would
    take a generated one for the credentials sent, and the server's 200 for a failure."""
    schema = schemathesis.openapi.from_wsgi(
        "/api/openapi.json", app, config=SchemathesisConfig.from_path(CONFIG)
    )
    schema.config.generation.update(with_security_parameters=not headers)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        definition = operation.definition.raw
        secured_by = (option for option in definition.get("security", ()) if scheme in option)
        if definition.get("operationId") not in skip and (scheme is None or any(secured_by)):
            operations.append(operation)
    assert operations
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            # Few per operation: the live run (test_api_contract) makes more.
            max_examples=10,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers)

        with warnings.catch_warnings():
            # schemathesis's strategies draw from the random module now and then.
            warnings.filterwarnings(
                "ignore",
                "Do not use the `random` module inside strategies",
                HypothesisDeprecationWarning,
            )
            check()


def test_the_api_keeps_to_its_document_with_a_session(app: Flask, user: Account) -> None:
    client = ApiClient(app, "app")
    assert client.sign_in(user.email, user.password).status_code == 200
    assert client.session_token is not None
    headers = {"X-Session-Token": client.session_token}
    # Signing out, or revoking a session by its id (this one's is 1), would end the session
    # the rest is about (test_api_auth and test_api_account do both).
    keeps_to_its_document(app, headers, skip=("signOut", "revokeSession"))
    assert client.get("/auth/session", headers=headers).status_code == 200


def test_the_api_keeps_to_its_document_with_a_personal_access_token(
    app: Flask, user: Account
) -> None:
    browser = app.test_client()
    login(browser, user.email)
    token = create_token(browser, scopes=("read",))
    keeps_to_its_document(app, {"Authorization": f"Bearer {token}"}, scheme="bearerToken")


def test_the_api_keeps_to_its_document_without_credentials(app: Flask) -> None:
    keeps_to_its_document(app, {})
