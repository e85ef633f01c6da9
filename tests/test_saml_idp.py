"""The test identity provider against python3-saml, the library Gatehouse's SP is built on.

Each attack is shown to be refused by python3-saml in strict mode, or else (``ACCEPTED``) to be
let through: those are the checks Gatehouse must make itself.
"""

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import xmlsec
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from tests.saml_idp import (
    IDP_ENTITY_ID,
    IDP_SLO_URL,
    IDP_SSO_URL,
    NS,
    OTHER_SP_ENTITY_ID,
    AuthnRequestInfo,
    SamlIdp,
    saml_idp,
    saml_idp_server,
    sp_keypair,
)

__all__ = ["saml_idp", "saml_idp_server"]

SP_ENTITY_ID = "https://gatehouse.test/saml/corp/metadata"
ACS_URL = "https://gatehouse.test/saml/corp/acs"
SLS_URL = "https://gatehouse.test/saml/corp/sls"
EMAIL = "ada@example.com"
ACCEPTED = None


@pytest.fixture(scope="module")
def sp_key() -> tuple[str, str]:
    return sp_keypair()


@pytest.fixture
def sp(saml_idp: SamlIdp, sp_key: tuple[str, str]) -> OneLogin_Saml2_Settings:
    """A strict python3-saml SP, set up as Gatehouse's will be, trusted by the IdP."""
    cert, key = sp_key
    settings = {
        "strict": True,
        "sp": {
            "entityId": SP_ENTITY_ID,
            "assertionConsumerService": {
                "url": ACS_URL,
                "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
            },
            "singleLogoutService": {
                "url": SLS_URL,
                "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
            },
            "NameIDFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            "x509cert": cert,
            "privateKey": key,
        },
        "security": {
            "authnRequestsSigned": True,
            "logoutRequestSigned": True,
            "logoutResponseSigned": True,
            "wantAssertionsSigned": True,
            "rejectDeprecatedAlgorithm": True,
            "requestedAuthnContext": False,
            "signatureAlgorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "digestAlgorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
        },
    }
    # Only the "idp" part: the parsed "security" would turn authnRequestsSigned off, since the
    # IdP's metadata says WantAuthnRequestsSigned="false".
    idp = OneLogin_Saml2_IdPMetadataParser.parse(saml_idp.metadata_xml)["idp"]
    merged = OneLogin_Saml2_IdPMetadataParser.merge_settings(settings, {"idp": idp})
    result = OneLogin_Saml2_Settings(merged, sp_validation_only=False)
    saml_idp.trust_sp(result.get_sp_metadata())
    return result


def request_data(path: str, *, get: dict[str, str] | None = None, post: Any = None) -> Any:
    return {
        "https": "on",
        "http_host": "gatehouse.test",
        "script_name": path,
        "get_data": get or {},
        "post_data": post or {},
    }


def login(sp: OneLogin_Saml2_Settings, **options: Any) -> tuple[str, str]:
    """The AuthnRequest redirect URL python3-saml makes, and the request's ID."""
    auth = OneLogin_Saml2_Auth(request_data("/saml/corp/login"), old_settings=sp)
    url = auth.login(return_to="https://gatehouse.test/after", **options)
    return url, auth.get_last_request_id()


def check(sp: OneLogin_Saml2_Settings, saml_response: str, request_id: str | None) -> Any:
    """python3-saml's verdict: the response object, and its error (None when valid)."""
    response = OneLogin_Saml2_Response(sp, saml_response)
    valid = response.is_valid(request_data("/saml/corp/acs", post={}), request_id)
    return response, None if valid else response.get_error()


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def signature_verifies(xml: bytes, element_id: str, cert_pem: str) -> bool:
    """Verify the signature of the element with ``element_id``, comments kept in the tree."""
    root = etree.fromstring(xml)
    element = root if root.get("ID") == element_id else root.find(f".//*[@ID='{element_id}']")
    key = xmlsec.Key.from_memory(cert_pem, xmlsec.constants.KeyDataFormatCertPem)
    context = xmlsec.SignatureContext()
    context.key = key
    context.register_id(element, "ID")
    try:
        context.verify(element.find("ds:Signature", NS))
    except xmlsec.Error:
        return False
    return True


def test_metadata_gives_endpoints_and_signing_certificate(saml_idp: SamlIdp) -> None:
    idp = OneLogin_Saml2_IdPMetadataParser.parse(saml_idp.metadata_xml)["idp"]
    assert idp["entityId"] == IDP_ENTITY_ID
    assert idp["singleSignOnService"]["url"] == IDP_SSO_URL
    assert idp["singleLogoutService"]["url"] == IDP_SLO_URL
    assert idp["x509cert"] == saml_idp.key.cert_b64


def test_read_request(saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings) -> None:
    url, request_id = login(sp, force_authn=True)
    request = saml_idp.read_request(url)
    assert request.id == request_id
    assert request.issuer == SP_ENTITY_ID
    assert request.acs_url == ACS_URL
    assert request.destination == IDP_SSO_URL
    assert request.relay_state == "https://gatehouse.test/after"
    assert request.force_authn
    assert request.signed
    assert request.signature_valid
    assert request.sig_alg == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def test_request_signature_is_checked(saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings) -> None:
    url, _ = login(sp)
    forged = url.replace("RelayState=", "RelayState=x")
    assert not saml_idp.read_request(forged).signature_valid


def test_untrusted_sp_is_refused(saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings) -> None:
    url, _ = login(sp)
    saml_idp.reset()
    with pytest.raises(ValueError, match="not a trusted SP"):
        saml_idp.read_request(url)


def test_genuine_response_is_valid(saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings) -> None:
    request = saml_idp.read_request(login(sp)[0])
    form = saml_idp.post_for(
        request,
        name_id=EMAIL,
        attributes={"email": [EMAIL], "groups": ["staff", "admins"]},
        session_index="_session1",
    )
    assert form["RelayState"] == "https://gatehouse.test/after"
    response, error = check(sp, form["SAMLResponse"], request.id)
    assert error is None
    assert response.get_nameid() == EMAIL
    assert response.get_nameid_format() == "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    assert response.get_attributes() == {"email": [EMAIL], "groups": ["staff", "admins"]}
    assert response.get_session_index() == "_session1"
    assert response.get_issuers() == [IDP_ENTITY_ID]


def test_signed_response_with_persistent_name_id(
    saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings
) -> None:
    request = saml_idp.read_request(login(sp)[0])
    form = saml_idp.post_for(
        request,
        name_id="u-1234",
        name_id_format="persistent",
        attributes={"email": [EMAIL]},
        sign_response=True,
    )
    response, error = check(sp, form["SAMLResponse"], request.id)
    assert error is None
    assert response.get_nameid() == "u-1234"
    assert response.get_nameid_format() == "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


Attack = Callable[[SamlIdp, AuthnRequestInfo], str]


def _genuine(idp: SamlIdp, request: AuthnRequestInfo, **options: Any) -> str:
    return idp.post_for(request, name_id=EMAIL, attributes={"email": [EMAIL]}, **options)[
        "SAMLResponse"
    ]


#: variant -> (how to make it, python3-saml's error or ACCEPTED)
ATTACKS: dict[str, tuple[Attack, str | None]] = {
    "tampered": (
        lambda idp, req: idp.tampered(_genuine(idp, req), EMAIL, "eve@example.com"),
        "Signature validation failed. SAML Response rejected",
    ),
    "resigned by other key": (
        lambda idp, req: idp.resigned_by_other_key(_genuine(idp, req), EMAIL, "eve@example.com"),
        "Signature validation failed. SAML Response rejected",
    ),
    "wrapped, original in Extensions": (
        lambda idp, req: idp.wrapped(_genuine(idp, req), EMAIL, "eve@example.com"),
        "SAML Response must contain 1 assertion",
    ),
    "wrapped, forgery before original": (
        lambda idp, req: idp.wrapped(
            _genuine(idp, req), EMAIL, "eve@example.com", placement="before"
        ),
        "SAML Response must contain 1 assertion",
    ),
    "assertion unsigned, response signed": (
        lambda idp, req: _genuine(idp, req, sign_assertion=False, sign_response=True),
        "The Assertion of the Response is not signed and the SP require it",
    ),
    "wholly unsigned": (
        lambda idp, req: _genuine(idp, req, sign_assertion=False),
        "The Assertion of the Response is not signed and the SP require it",
    ),
    "RSA-SHA1": (
        lambda idp, req: _genuine(idp, req, sign_alg="sha1"),
        "Deprecated signature algorithm found: http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    ),
    "expired 10 minutes ago": (
        lambda idp, req: _genuine(idp, req, not_on_or_after_seconds=-600),
        "Could not validate timestamp: expired. Check system clock.",
    ),
    "expired 1 minute ago": (
        lambda idp, req: _genuine(idp, req, not_on_or_after_seconds=-60),
        "A valid SubjectConfirmation was not found on this Response",
    ),
    "audience is another SP": (
        lambda idp, req: _genuine(idp, req, audience=OTHER_SP_ENTITY_ID),
        f"{SP_ENTITY_ID} is not a valid audience for this Response",
    ),
    "issuer is another IdP": (
        lambda idp, req: _genuine(idp, req, issuer="https://evil.example/metadata"),
        "Invalid issuer in the Assertion/Response (expected "
        f"{IDP_ENTITY_ID}, got https://evil.example/metadata)",
    ),
    "answers another request": (
        lambda idp, req: _genuine(idp, req, in_response_to="_another"),
        "The InResponseTo of the Response: _another, does not match the ID of the AuthNRequest"
        " sent by the SP: ",
    ),
    "wrong ACS (Destination)": (
        lambda idp, req: _genuine(idp, req, acs_url="https://gatehouse.test/saml/other/acs"),
        "The response was received at https://gatehouse.test/saml/corp/acs instead of "
        "https://gatehouse.test/saml/other/acs",
    ),
    # Gaps: Gatehouse must refuse these itself.
    "unsolicited, though a request ID is passed": (
        lambda idp, req: _genuine(idp, req, in_response_to=None),
        ACCEPTED,
    ),
}


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_attack_verdicts(
    saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings, attack: tuple[Attack, str | None]
) -> None:
    make, expected = attack
    request = saml_idp.read_request(login(sp)[0])
    response, error = check(sp, make(saml_idp, request), request.id)
    if expected is ACCEPTED:
        assert error is None
        assert response.get_nameid() == EMAIL
    else:
        assert error is not None
        assert error.startswith(expected)


def test_replay_is_accepted_by_python3_saml(saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings) -> None:
    """The same response twice: python3-saml keeps no record, Gatehouse must."""
    request = saml_idp.read_request(login(sp)[0])
    saml_response = _genuine(saml_idp, request)
    assert check(sp, saml_response, request.id)[1] is None
    assert check(sp, saml_response, request.id)[1] is None


def test_in_response_to_is_unchecked_without_request_id(
    saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings
) -> None:
    """When the SP passes no request ID, python3-saml takes an answer to any request."""
    request = saml_idp.read_request(login(sp)[0])
    response, error = check(sp, _genuine(saml_idp, request, in_response_to="_another"), None)
    assert error is None
    assert response.get_nameid() == EMAIL


def test_comment_injection_keeps_a_valid_signature_and_python3_saml_reads_it_whole(
    saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings
) -> None:
    evil = "victim@example.com.evil.example"
    request = saml_idp.read_request(login(sp)[0])
    genuine = saml_idp.post_for(request, name_id=evil, attributes={"email": [evil]})
    injected = saml_idp.comment_injected(genuine["SAMLResponse"], "victim@example.com")

    xml = base64.b64decode(injected)
    assert b"victim@example.com<!---->.evil.example</" in xml
    assertion = etree.fromstring(xml).find("saml:Assertion", NS)
    assert signature_verifies(xml, assertion.get("ID"), saml_idp.cert_pem)
    assert assertion.find(".//saml:NameID", NS).text == "victim@example.com"  # a naive reader

    response, error = check(sp, injected, request.id)
    assert error is None
    assert response.get_nameid() == evil
    assert response.get_attributes() == {"email": [evil]}


def test_resigned_response_is_sound_but_by_another_key(
    saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings
) -> None:
    request = saml_idp.read_request(login(sp)[0])
    genuine = _genuine(saml_idp, request, sign_response=True)
    resigned = saml_idp.resigned_by_other_key(genuine, EMAIL, "eve@example.com")
    xml = base64.b64decode(resigned)
    root = etree.fromstring(xml)
    for element_id in (root.get("ID"), root.find("saml:Assertion", NS).get("ID")):
        assert signature_verifies(xml, element_id, saml_idp.other_key.cert_pem)
        assert not signature_verifies(xml, element_id, saml_idp.cert_pem)
    assert check(sp, resigned, request.id)[1] == (
        "Signature validation failed. SAML Response rejected"
    )


def test_wrapped_keeps_the_signed_original(saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings) -> None:
    request = saml_idp.read_request(login(sp)[0])
    wrapped = saml_idp.wrapped(_genuine(saml_idp, request), EMAIL, "eve@example.com")
    xml = base64.b64decode(wrapped)
    root = etree.fromstring(xml)
    original = root.find("samlp:Extensions/saml:Assertion", NS)
    assert signature_verifies(xml, original.get("ID"), saml_idp.cert_pem)
    naive = root.find("saml:Assertion/saml:Subject/saml:NameID", NS)
    assert naive.text == "eve@example.com"


def test_idp_initiated_logout(saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings) -> None:
    url = saml_idp.logout_request(
        SP_ENTITY_ID, name_id=EMAIL, session_index="_session1", relay_state="/bye"
    )
    assert url.startswith(SLS_URL + "?")
    params = query(url)
    auth = OneLogin_Saml2_Auth(request_data("/saml/corp/sls", get=params), old_settings=sp)
    answer = auth.process_slo(keep_local_session=True)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    assert answer.startswith(IDP_SLO_URL + "?")
    xml = auth.get_last_request_xml()
    assert OneLogin_Saml2_Logout_Request.get_nameid(xml) == EMAIL
    assert OneLogin_Saml2_Logout_Request.get_session_indexes(xml) == ["_session1"]

    params["RelayState"] = "/elsewhere"
    auth = OneLogin_Saml2_Auth(request_data("/saml/corp/sls", get=params), old_settings=sp)
    auth.process_slo(keep_local_session=True)
    assert auth.get_last_error_reason() == "Signature validation failed. SAMLRequest rejected"


def test_sp_initiated_logout(saml_idp: SamlIdp, sp: OneLogin_Saml2_Settings) -> None:
    auth = OneLogin_Saml2_Auth(request_data("/saml/corp/logout"), old_settings=sp)
    url = auth.logout(return_to="/bye", name_id=EMAIL, session_index="_session1")
    request = saml_idp.parse_logout_request(url)
    assert (request.issuer, request.name_id, request.session_indexes) == (
        SP_ENTITY_ID,
        EMAIL,
        ["_session1"],
    )
    assert request.signed
    assert request.signature_valid
    assert request.relay_state == "/bye"

    params = query(saml_idp.logout_response(request))
    answer = OneLogin_Saml2_Auth(request_data("/saml/corp/sls", get=params), old_settings=sp)
    answer.process_slo(request_id=auth.get_last_request_id(), keep_local_session=True)
    assert answer.get_errors() == [], answer.get_last_error_reason()
