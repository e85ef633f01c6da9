"""The SAML protocol through python3-saml (OneLogin's toolkit), strict, and the checks it
leaves to its caller.

python3-saml validates a response's signature (SHA-256 and better: SHA-1 refused), the
destination, recipient, audience, issuer and time conditions, and requires the assertion
itself to be signed. It accepts a response that omits ``InResponseTo`` although the request's
id was passed, and the same response twice: Gatehouse refuses both itself (here and in
``services/saml.first_use``). It also refuses any response holding an XML comment, whatever
python3-saml would make of it: a comment inside a signed NameID or attribute
(CVE-2017-11427) leaves the signature valid and changes what a careless reader sees.

Imported only where a SAML provider is configured (``services/saml``): loading it loads the
``xmlsec`` binding.
"""

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from . import mail
from .saml import Assertion, Provider, ResponseRefusedError

#: How long an assertion is remembered when it names no expiry at all.
_DEFAULT_LIFETIME = timedelta(days=1)
#: python3-saml's leeway on time conditions: an assertion stays valid this much longer.
_DRIFT = timedelta(seconds=OneLogin_Saml2_Constants.ALLOWED_CLOCK_DRIFT)


class MetadataError(Exception):
    """An IdP's metadata could not be fetched or parsed."""


def parse_metadata(xml: str) -> dict[str, Any]:
    """The IdP's settings (entity id, SSO and SLO URLs, signing certificates) from its
    metadata."""
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(xml)
    # The parser raises lxml's errors and bare Exceptions for what it cannot use.
    except Exception as error:
        raise MetadataError(str(error) or type(error).__name__) from error
    idp = parsed.get("idp")
    if not isinstance(idp, dict) or not idp.get("entityId") or not idp.get("singleSignOnService"):
        raise MetadataError("no IdP entity with a single sign-on URL (HTTP-Redirect binding)")
    if not (idp.get("x509cert") or idp.get("x509certMulti")):
        raise MetadataError("no signing certificate: nothing it sends could be checked")
    return idp


def fetch_metadata(url: str, timeout: float) -> dict[str, Any]:
    try:
        xml = OneLogin_Saml2_IdPMetadataParser.get_metadata(url, timeout=timeout)
    # urllib's errors, and a bare Exception for a document without an entity.
    except Exception as error:
        raise MetadataError(f"{url}: {error}") from error
    return parse_metadata(xml.decode() if isinstance(xml, bytes) else str(xml))


def settings(provider: Provider, idp: dict[str, Any] | None) -> OneLogin_Saml2_Settings:
    """python3-saml's settings for ``provider``: strict, SHA-256, signed assertions, and the
    SP's own URLs from GATEHOUSE_BASE_URL (never the request's Host header). Without ``idp``
    only the SP's half (for its metadata)."""
    signs = provider.sp_cert is not None
    sp: dict[str, Any] = {
        "entityId": mail.link("gatehouse.saml_metadata", provider=provider.slug),
        "assertionConsumerService": {
            "url": mail.link("gatehouse.saml_acs", provider=provider.slug),
            "binding": OneLogin_Saml2_Constants.BINDING_HTTP_POST,
        },
        "singleLogoutService": {
            "url": mail.link("gatehouse.saml_sls", provider=provider.slug),
            "binding": OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT,
        },
        "NameIDFormat": OneLogin_Saml2_Constants.NAMEID_UNSPECIFIED,
    }
    if signs:
        sp["x509cert"] = provider.sp_cert
        sp["privateKey"] = provider.sp_key
    return OneLogin_Saml2_Settings(
        {
            "strict": True,
            "debug": False,
            "sp": sp,
            "idp": idp or {},
            "security": {
                "authnRequestsSigned": signs,
                "logoutResponseSigned": signs,
                "wantAssertionsSigned": True,
                "wantMessagesSigned": False,
                "wantNameId": True,
                "wantAttributeStatement": False,
                "requestedAuthnContext": False,
                "rejectDeprecatedAlgorithm": True,
                "signatureAlgorithm": OneLogin_Saml2_Constants.RSA_SHA256,
                "digestAlgorithm": OneLogin_Saml2_Constants.SHA256,
                "signMetadata": False,
            },
        },
        sp_validation_only=idp is None,
    )


def _request_data(endpoint: str, provider: Provider, form: dict[str, str]) -> dict[str, Any]:
    """The request as python3-saml sees it, on the configured URL (its Destination checks
    compare against this)."""
    url = urlsplit(mail.link(endpoint, provider=provider.slug))
    return {
        "https": "on" if url.scheme == "https" else "off",
        "http_host": url.netloc,
        "script_name": url.path,
        "get_data": form if endpoint != "gatehouse.saml_acs" else {},
        "post_data": form if endpoint == "gatehouse.saml_acs" else {},
    }


def authn_request(provider: Provider, idp: dict[str, Any]) -> tuple[str, str]:
    """The IdP's URL carrying a new AuthnRequest (HTTP-Redirect binding, signed when the SP
    has a key), and the request's id."""
    auth = OneLogin_Saml2_Auth(
        _request_data("gatehouse.saml_login", provider, {}), settings(provider, idp)
    )
    url = auth.login(return_to="")
    return url, str(auth.get_last_request_id())


def sp_metadata(provider: Provider) -> str:
    """The SP's metadata, without python3-saml's ``validUntil`` (two days ahead): an IdP
    that honours it would drop a saved copy that is still right."""
    metadata = settings(provider, None).get_sp_metadata()
    document = etree.fromstring(metadata if isinstance(metadata, bytes) else metadata.encode())
    document.attrib.pop("validUntil", None)
    return str(etree.tostring(document, encoding="unicode"))


def read_response(
    provider: Provider, idp: dict[str, Any], form: dict[str, str], request_id: str | None
) -> Assertion:
    """Validate the POSTed response, answering the AuthnRequest ``request_id`` (None only
    for an IdP-initiated sign-in the host allowed). Raises ResponseRefusedError."""
    document = _parse_plain(form.get("SAMLResponse", ""))
    auth = OneLogin_Saml2_Auth(
        _request_data("gatehouse.saml_acs", provider, form), settings(provider, idp)
    )
    try:
        auth.process_response(request_id=request_id)
    # ValueError: defusedxml's refusals (a DTD, an entity) are ValueErrors.
    except (OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError, ValueError) as error:
        raise ResponseRefusedError(str(error)) from error
    if auth.get_errors() or not auth.is_authenticated():
        raise ResponseRefusedError(auth.get_last_error_reason() or "not authenticated")
    # python3-saml lets a response without InResponseTo through even when a request id is
    # given (and refuses a mismatch only): the answer must name the request.
    if auth.get_last_response_in_response_to() != request_id:
        raise ResponseRefusedError("InResponseTo does not name this browser's request")
    assertion_id = auth.get_last_assertion_id()
    name_id = auth.get_nameid()
    if not assertion_id or not name_id:
        raise ResponseRefusedError("no assertion id or NameID")
    expires_at = _used_until(document, auth.get_last_assertion_not_on_or_after())
    attributes = {
        str(name): [str(value) for value in values if isinstance(value, str)]
        for name, values in (auth.get_attributes() or {}).items()
    }
    return Assertion(
        issuer=str(idp["entityId"]),
        assertion_id=str(assertion_id),
        expires_at=expires_at,
        name_id=str(name_id),
        name_id_format=auth.get_nameid_format(),
        attributes=attributes,
    )


def _parse_plain(encoded: str) -> Any:
    """The response's XML, refused when it holds a comment, a DTD or an encrypted
    assertion."""
    try:
        document = etree.fromstring(
            base64.b64decode(encoded, validate=False),
            parser=etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False),
        )
    except (ValueError, etree.XMLSyntaxError) as error:
        raise ResponseRefusedError("not a SAML response") from error
    if document.getroottree().docinfo.doctype:
        raise ResponseRefusedError("a document type declaration in the response")
    if document.xpath("//comment()"):
        raise ResponseRefusedError("an XML comment in the response")
    # Encrypted assertions are not supported: python3-saml would decrypt one with the SP's
    # key, past the checks above.
    if document.xpath("//*[local-name()='EncryptedAssertion']"):
        raise ResponseRefusedError("an encrypted assertion")
    return document


def _used_until(document: Any, confirmation_not_after: object) -> datetime:
    """Until when python3-saml would still accept the assertion (the later of its
    confirmation's and its conditions' NotOnOrAfter, plus the clock drift it allows): it
    must be remembered as used at least that long."""
    limits = [
        OneLogin_Saml2_Utils.parse_SAML_to_time(value)
        for value in document.xpath(
            "//*[local-name()='Assertion']/*[local-name()='Conditions']/@NotOnOrAfter"
        )
    ]
    if isinstance(confirmation_not_after, int | float):
        limits.append(confirmation_not_after)
    if not limits:
        return datetime.now(UTC) + _DEFAULT_LIFETIME
    return datetime.fromtimestamp(max(limits), UTC) + _DRIFT


def logout_request(
    provider: Provider, idp: dict[str, Any], query: dict[str, str]
) -> tuple[str, str]:
    """An IdP's LogoutRequest (HTTP-Redirect binding): the NameID it signs out, and the URL
    of the LogoutResponse to send the browser back with. Only a signed request is accepted
    (python3-saml takes an unsigned one unless every message must be signed, SSO responses
    included), so no other site can sign a user out through it."""
    if "SAMLRequest" not in query or "Signature" not in query:
        raise ResponseRefusedError("not a signed LogoutRequest")
    auth = OneLogin_Saml2_Auth(
        _request_data("gatehouse.saml_sls", provider, query), settings(provider, idp)
    )
    try:
        url = auth.process_slo(keep_local_session=True)
        name_id = OneLogin_Saml2_Logout_Request.get_nameid(auth.get_last_request_xml())
    except (OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError, ValueError) as error:
        raise ResponseRefusedError(str(error)) from error
    if auth.get_errors() or not url:
        raise ResponseRefusedError(auth.get_last_error_reason() or ", ".join(auth.get_errors()))
    return str(name_id), str(url)
