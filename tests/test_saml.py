"""SAML single sign-on against a real identity provider: pysaml2's, in-process
(tests/saml_idp.py), signing with xmlsec. Each test drives what a browser does: the button's
redirect to the IdP (whose AuthnRequest the IdP reads), then the IdP's POST to the assertion
consumer service (the test client's POST of the form the IdP built).
"""

import re
import sys
from typing import Any

import pytest
import sqlalchemy as sa
from blog import db
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_gatehouse import services
from flask_gatehouse.models import SocialIdentity, User
from tests.conftest import PASSWORD, Account, csrf_token, login, logout
from tests.saml_idp import (
    IDP_ENTITY_ID,
    OTHER_SP_ENTITY_ID,
    AuthnRequestInfo,
    SamlIdp,
    saml_idp,
    saml_idp_server,
    sp_keypair,
)
from tests.smtp import Mailbox, link_path
from tests.test_two_factor import clock, code_at, enrol, send_code

__all__ = ["clock", "saml_idp", "saml_idp_server"]

EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"


def providers(idp: SamlIdp, **extra: Any) -> dict[str, Any]:
    metadata = {"metadata_xml": idp.metadata_xml}
    return {
        "corp": {**metadata, "name": "Corp SSO", "trust_email": True, **extra},
        "plain": {**metadata, "name": "Plain SSO", "email_attribute": EMAIL},
        "open": {**metadata, "trust_email": True, "idp_initiated": True},
        "mfa": {**metadata, "trust_email": True, "mfa_enforced": True},
    }


def trusting(app: Flask, idp: SamlIdp) -> Flask:
    """The IdP knows each of the app's SPs by its metadata."""
    client = app.test_client()
    for slug in app.config["GATEHOUSE_SAML_PROVIDERS"]:
        metadata = client.get(f"/saml/{slug}/metadata")
        assert metadata.status_code == 200
        idp.trust_sp(metadata.data)
    return app


@pytest.fixture
def app(make_app: Any, saml_idp: SamlIdp) -> Flask:
    return trusting(make_app(GATEHOUSE_SAML_PROVIDERS=providers(saml_idp)), saml_idp)


def start(
    client: FlaskClient, idp: SamlIdp, slug: str = "corp", path: str = ""
) -> AuthnRequestInfo:
    """Press the IdP's button: the AuthnRequest the IdP receives."""
    answer = client.get(f"/saml/{slug}/login{path}")
    assert answer.status_code == 302, answer.text
    return idp.read_request(answer.headers["Location"])


def post(client: FlaskClient, slug: str, fields: dict[str, str]) -> TestResponse:
    """The IdP's auto-submitting form, posted by the browser."""
    return client.post(f"/saml/{slug}/acs", data=fields)


def sign_in(
    client: FlaskClient,
    idp: SamlIdp,
    name_id: str = "carol@example.com",
    slug: str = "corp",
    attributes: dict[str, list[str]] | None = None,
    **options: Any,
) -> TestResponse:
    request = start(client, idp, slug)
    found = {"email": [name_id]} if attributes is None else attributes
    return post(client, slug, idp.post_for(request, name_id=name_id, attributes=found, **options))


def signed_in_as(client: FlaskClient) -> str | None:
    page = client.get("/blogs")
    if page.status_code != 200:
        return None
    return page.text.split("Hi ", 1)[1].split("<", 1)[0].strip(" !")


def rows(app: Flask, model: Any, **where: Any) -> list[Any]:
    with app.app_context():
        return list(db.session.scalars(sa.select(model).filter_by(**where)))


def refused(answer: TestResponse, client: FlaskClient, app: Flask) -> None:
    assert answer.status_code == 400, answer.text
    assert "could not be accepted" in answer.text or "not started here" in answer.text
    assert signed_in_as(client) is None
    assert rows(app, User) == []


# Signing in


def test_a_trusted_idp_signs_in_a_new_account(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp
) -> None:
    answer = sign_in(client, saml_idp)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/blogs"
    assert signed_in_as(client) == "carol"
    (user,) = rows(app, User)
    assert user.email == "carol@example.com"
    assert user.email_confirmed_at is not None
    (identity,) = rows(app, SocialIdentity)
    assert (identity.issuer, identity.subject, identity.provider) == (
        IDP_ENTITY_ID,
        "carol@example.com",
        "saml:corp",
    )
    # The next sign-in finds the account by its NameID.
    logout(client)
    assert sign_in(client, saml_idp).status_code == 303
    assert len(rows(app, User)) == 1


def test_the_page_asked_for_is_kept_with_the_request(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp
) -> None:
    request = start(client, saml_idp, path="?next=/account")
    fields = saml_idp.post_for(
        request, name_id="carol@example.com", attributes={"email": ["carol@example.com"]}
    )
    fields["RelayState"] = "//evil.example/"  # what the IdP sends back is not trusted
    answer = post(client, "corp", fields)
    assert answer.headers["Location"] == "/account"


def test_an_untrusted_idp_address_waits_for_its_confirmation_link(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp, mailbox: Mailbox
) -> None:
    answer = sign_in(
        client, saml_idp, "dave-id", slug="plain", attributes={EMAIL: ["dave@example.com"]}
    )
    assert answer.status_code == 403
    assert "Confirm your email address first" in answer.text
    assert signed_in_as(client) is None
    (message,) = mailbox.wait_for(1)
    assert "Plain SSO (dave@example.com)" in message.get_body(("plain",)).get_content()
    path = link_path(message, "/confirm/")
    client.post(path, data={"csrf_token": csrf_token(client.get(path))})
    again = sign_in(
        client, saml_idp, "dave-id", slug="plain", attributes={EMAIL: ["dave@example.com"]}
    )
    assert again.status_code == 303
    assert signed_in_as(client) == "dave"


def test_an_address_with_an_account_links_only_after_signing_in_to_it(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp, user: Account
) -> None:
    answer = sign_in(client, saml_idp, "alice-at-corp", attributes={"email": [user.email]})
    assert answer.status_code == 409
    assert "Sign in to that account" in answer.text
    assert "/saml/corp/connect" in answer.text
    assert signed_in_as(client) is None
    assert rows(app, SocialIdentity) == []
    login(client, user.email, next="/saml/corp/connect")
    connect = client.get("/saml/corp/connect")
    assert connect.status_code == 302
    request = saml_idp.read_request(connect.headers["Location"])
    linked = post(
        client,
        "corp",
        saml_idp.post_for(request, name_id="alice-at-corp", attributes={"email": [user.email]}),
    )
    assert linked.status_code == 303
    assert linked.headers["Location"] == "/account"
    (identity,) = rows(app, SocialIdentity)
    assert identity.user_id == user.id
    logout(client)
    assert (
        sign_in(client, saml_idp, "alice-at-corp", attributes={"email": [user.email]}).status_code
        == 303
    )
    assert signed_in_as(client) == user.username


def test_two_factor_applies_unless_the_host_says_the_idp_enforces_it(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp, clock: Any, user: Account
) -> None:
    login(client, user.email)
    secret, _ = enrol(client)
    for slug in ("corp", "mfa"):
        request = saml_idp.read_request(client.get(f"/saml/{slug}/connect").headers["Location"])
        fields = saml_idp.post_for(
            request, name_id=f"alice-{slug}", attributes={"email": ["a@example.com"]}
        )
        assert post(client, slug, fields).status_code == 303
    logout(client)
    clock.shift(60)
    answer = sign_in(client, saml_idp, "alice-corp", attributes={"email": ["a@example.com"]})
    assert answer.headers["Location"] == "/login/two-factor"
    assert signed_in_as(client) is None
    assert send_code(client, code_at(secret)).status_code == 302
    assert signed_in_as(client) == user.username
    logout(client)
    enforced = sign_in(
        client, saml_idp, "alice-mfa", slug="mfa", attributes={"email": ["a@example.com"]}
    )
    assert enforced.headers["Location"] == "/blogs"


def test_a_transient_name_id_names_nobody_for_good(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp
) -> None:
    answer = sign_in(
        client,
        saml_idp,
        "_a1b2c3",
        name_id_format="transient",
        attributes={"email": ["t@example.com"]},
    )
    assert answer.status_code == 400
    assert "transient" in answer.text
    assert rows(app, User) == []


def test_a_link_started_before_signing_out_does_not_finish(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp, user: Account
) -> None:
    login(client, user.email)
    request = saml_idp.read_request(client.get("/saml/corp/connect").headers["Location"])
    logout(client)
    fields = saml_idp.post_for(
        request, name_id="alice-at-corp", attributes={"email": ["x@example.com"]}
    )
    assert post(client, "corp", fields).status_code == 400
    assert rows(app, SocialIdentity) == []


# Responses that prove nothing: a clean 400, nobody signed in, no account made


def test_a_replayed_response_is_refused(app: Flask, client: FlaskClient, saml_idp: SamlIdp) -> None:
    request = start(client, saml_idp)
    fields = saml_idp.post_for(
        request, name_id="carol@example.com", attributes={"email": ["carol@example.com"]}
    )
    assert post(client, "corp", fields).status_code == 303
    logout(client)
    # The same answer again: its request is spent.
    attacker = app.test_client()
    assert post(attacker, "corp", fields).status_code == 400
    assert signed_in_as(attacker) is None


def test_an_assertion_is_used_once_even_where_unsolicited_responses_are_allowed(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp
) -> None:
    """python3-saml accepts the same response twice: the assertion ids Gatehouse keeps stop
    the second."""
    response = saml_idp.response(
        acs_url="https://gatehouse.test/saml/open/acs",
        audience="https://gatehouse.test/saml/open/metadata",
        in_response_to=None,
        name_id="carol@example.com",
        attributes={"email": ["carol@example.com"]},
    )
    assert post(client, "open", {"SAMLResponse": response}).status_code == 303
    other = app.test_client()
    assert post(other, "open", {"SAMLResponse": response}).status_code == 400
    assert signed_in_as(other) is None


def test_a_hostile_relay_state_of_an_unsolicited_response_stays_on_the_site(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp
) -> None:
    response = saml_idp.response(
        acs_url="https://gatehouse.test/saml/open/acs",
        audience="https://gatehouse.test/saml/open/metadata",
        in_response_to=None,
        name_id="carol@example.com",
        attributes={"email": ["carol@example.com"]},
    )
    answer = post(
        client, "open", {"SAMLResponse": response, "RelayState": "https://evil.example/x"}
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/blogs"


def test_an_unsolicited_response_is_refused_by_default(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp
) -> None:
    response = saml_idp.response(
        acs_url="https://gatehouse.test/saml/corp/acs",
        audience="https://gatehouse.test/saml/corp/metadata",
        in_response_to=None,
        name_id="carol@example.com",
        attributes={"email": ["carol@example.com"]},
    )
    refused(post(client, "corp", {"SAMLResponse": response}), client, app)


def test_a_response_without_in_response_to_does_not_answer_this_browsers_request(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp
) -> None:
    """python3-saml lets it through although the request's id is passed."""
    answer = sign_in(client, saml_idp, in_response_to=None)
    refused(answer, client, app)


def test_a_wrong_in_response_to_is_refused(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp
) -> None:
    refused(sign_in(client, saml_idp, in_response_to="_another-request"), client, app)


def test_a_response_to_another_browsers_request_is_refused(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp
) -> None:
    """Login CSRF: the attacker's own answer planted in the victim's browser."""
    attacker = app.test_client()
    request = start(attacker, saml_idp)
    fields = saml_idp.post_for(
        request, name_id="mallory@example.com", attributes={"email": ["mallory@example.com"]}
    )
    start(client, saml_idp)  # the victim has a request of its own pending
    refused(post(client, "corp", fields), client, app)


@pytest.mark.parametrize(
    "attack",
    [
        "tampered",
        "resigned",
        "wrapped",
        "wrapped_before",
        "comment_in_name_id",
        "expired",
        "wrong_audience",
        "sha1",
        "assertion_unsigned",
        "unsigned",
        "another_issuer",
    ],
)
def test_a_forged_or_unfit_response_is_refused(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp, attack: str
) -> None:
    request = start(client, saml_idp)
    genuine = {
        "name_id": "mallory@example.com.evil.example",
        "attributes": {"email": ["mallory@example.com.evil.example"]},
    }
    options: dict[str, Any] = {
        "expired": {"not_on_or_after_seconds": -600},
        "wrong_audience": {"audience": OTHER_SP_ENTITY_ID},
        "sha1": {"sign_alg": "sha1"},
        "assertion_unsigned": {"sign_assertion": False, "sign_response": True},
        "unsigned": {"sign_assertion": False},
        "another_issuer": {"issuer": "https://evil.example/idp"},
    }.get(attack, {})
    fields = saml_idp.post_for(request, **genuine, **options)
    response = fields["SAMLResponse"]
    victim = "victim@example.com"
    if attack == "tampered":
        response = saml_idp.tampered(response, "mallory@example.com.evil.example", victim)
    elif attack == "resigned":
        response = saml_idp.resigned_by_other_key(
            response, "mallory@example.com.evil.example", victim
        )
    elif attack == "wrapped":
        response = saml_idp.wrapped(response, "mallory@example.com.evil.example", victim)
    elif attack == "wrapped_before":
        response = saml_idp.wrapped(
            response, "mallory@example.com.evil.example", victim, placement="before"
        )
    elif attack == "comment_in_name_id":
        response = saml_idp.comment_injected(response, "mallory@example.com")
    answer = post(client, "corp", {**fields, "SAMLResponse": response})
    refused(answer, client, app)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"SAMLResponse": ""},
        {"SAMLResponse": "not base64 at all!"},
        {"SAMLResponse": "PHg+"},  # <x>
        {"SAMLResponse": "PCFET0NUWVBFIHggWzwhRU5USVRZIGEgIng+XT48eD4mYTs8L3g+"},  # a DTD
    ],
)
def test_garbage_is_a_clean_400(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp, body: dict[str, str]
) -> None:
    start(client, saml_idp)
    refused(post(client, "corp", body), client, app)


def test_refused_responses_count_against_the_client(make_app: Any, saml_idp: SamlIdp) -> None:
    app = make_app(
        GATEHOUSE_SAML_PROVIDERS=providers(saml_idp), GATEHOUSE_LOGIN_IP_LIMIT="2 per minute"
    )
    client = app.test_client()
    for _ in range(2):
        assert post(client, "corp", {"SAMLResponse": "PHg+"}).status_code == 400
    assert post(client, "corp", {"SAMLResponse": "PHg+"}).status_code == 429
    assert login(client, "someone@example.com", PASSWORD).status_code == 429


# Single logout, started at the IdP


def idp_logout(
    client: FlaskClient, idp: SamlIdp, name_id: str, *, sign: bool = True
) -> TestResponse:
    url = idp.logout_request(
        "https://gatehouse.test/saml/corp/metadata", name_id=name_id, sign=sign
    )
    assert url.startswith("https://gatehouse.test/saml/corp/sls?")
    return client.get(url.removeprefix("https://gatehouse.test"))


def test_the_idps_logout_signs_this_browser_out(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp
) -> None:
    assert sign_in(client, saml_idp).status_code == 303
    answer = idp_logout(client, saml_idp, "carol@example.com")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("https://idp.example.com/slo?SAMLResponse=")
    assert signed_in_as(client) is None


def test_a_logout_for_someone_else_or_unsigned_signs_nobody_out(
    app: Flask, client: FlaskClient, saml_idp: SamlIdp
) -> None:
    assert sign_in(client, saml_idp).status_code == 303
    assert idp_logout(client, saml_idp, "someone.else@example.com").status_code == 302
    assert signed_in_as(client) == "carol"
    forged = idp_logout(client, saml_idp, "carol@example.com", sign=False)
    assert forged.status_code == 400
    assert signed_in_as(client) == "carol"


# The SP's side


def test_the_sp_metadata_names_its_urls_and_a_signing_sp_signs_its_requests(
    make_app: Any, saml_idp: SamlIdp
) -> None:
    cert, key = sp_keypair()
    app = trusting(
        make_app(GATEHOUSE_SAML_PROVIDERS=providers(saml_idp, sp_cert=cert, sp_key=key)), saml_idp
    )
    metadata = app.test_client().get("/saml/corp/metadata")
    assert metadata.mimetype == "application/samlmetadata+xml"
    assert 'entityID="https://gatehouse.test/saml/corp/metadata"' in metadata.text
    assert 'Location="https://gatehouse.test/saml/corp/acs"' in metadata.text
    request = start(app.test_client(), saml_idp)
    assert request.signed
    assert request.signature_valid
    assert request.sig_alg is not None
    assert request.sig_alg.endswith("rsa-sha256")


def test_the_pending_request_cookie_comes_with_a_cross_site_post(
    client: FlaskClient, saml_idp: SamlIdp
) -> None:
    answer = client.get("/saml/corp/login")
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("__Host-gatehouse_saml=")
    assert "SameSite=None" in cookie
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


def test_an_unreachable_idp_is_a_503(make_app: Any) -> None:
    app = make_app(
        GATEHOUSE_SAML_PROVIDERS={
            "down": {"metadata_url": "http://127.0.0.1:9/metadata", "idp_initiated": True}
        }
    )
    client = app.test_client()
    for answer in (client.get("/saml/down/login"), post(client, "down", {"SAMLResponse": "PHg+"})):
        assert answer.status_code == 503
        assert "could not be reached" in answer.text
    # The SP's own metadata needs nothing from the IdP, and has no expiry date to go stale.
    metadata = client.get("/saml/down/metadata")
    assert metadata.status_code == 200
    assert "validUntil" not in metadata.text


def test_an_unknown_provider_is_no_page(client: FlaskClient) -> None:
    assert client.get("/saml/nowhere/login").status_code == 404
    assert client.post("/saml/nowhere/acs").status_code == 404


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"x": {}}, "metadata_url or metadata_xml"),
        (
            {"x": {"metadata_url": "https://a", "metadata_xml": "<x/>"}},
            "metadata_url or metadata_xml",
        ),
        ({"x": {"metadata_xml": "<x/>"}}, "cannot be used"),
        ({"x": {"metadata_url": "https://a", "sp_cert": "c"}}, "go together"),
        ({"x": {"metadata_url": "https://a", "sp_cert": "c", "sp_key": "k"}}, "its own private"),
        (
            {
                "x": {
                    "metadata_url": "https://a",
                    "sp_cert": sp_keypair()[0],
                    "sp_key": sp_keypair()[1],
                }
            },
            "its own private",
        ),
        ({"x": {"metadata_url": "https://a", "trust": True}}, "unknown settings"),
        ("corp", "must map"),
    ],
)
def test_a_wrong_provider_setting_fails_at_start_up(
    make_app: Any, settings: Any, complaint: str
) -> None:
    with pytest.raises(RuntimeError, match=complaint):
        make_app(GATEHOUSE_SAML_PROVIDERS=settings)


def test_a_broken_xmlsec_binding_is_a_clear_start_up_error(
    make_app: Any, saml_idp: SamlIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a host sees when its xmlsec and lxml bundle different libxml2 versions (the
    binding refuses to load): the fix, at start-up, never a 500 later."""
    monkeypatch.delattr(services, "saml_toolkit")
    monkeypatch.setitem(sys.modules, "flask_gatehouse.services.saml_toolkit", None)
    with pytest.raises(RuntimeError, match=re.escape('pip install "xmlsec==1.3.17" "lxml==6.1.3"')):
        make_app(GATEHOUSE_SAML_PROVIDERS=providers(saml_idp))
