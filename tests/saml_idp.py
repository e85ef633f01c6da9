"""A SAML 2.0 identity provider for the SAML tests, run in-process, and its fixtures.

pysaml2's ``Server`` is the identity provider: it writes the metadata, parses the service
provider's AuthnRequests and LogoutRequests, and builds the Response and Assertion. Signatures
are made with the ``xmlsec`` binding (a few milliseconds, where pysaml2 would start the
``xmlsec1`` program for each one), and the attacks below edit the signed XML with lxml.

A login, as a test drives it::

    saml_idp.trust_sp(client.get("/saml/corp/metadata").data)
    request = saml_idp.read_request(client.get("/saml/corp/login").location)
    form = saml_idp.post_for(request, name_id="ada@example.com", attributes={"email": [...]})
    client.post("/saml/corp/acs", data=form)

What each way of getting a ``SAMLResponse`` models:

- ``post_for(request, ...)``: the IdP answering an AuthnRequest, as it should.
- ``response()`` options: ``sign_assertion=False, sign_response=True`` an unsigned assertion in a
  signed response; ``sign_assertion=False`` a wholly unsigned one; ``sign_alg="sha1"`` an IdP
  still on RSA-SHA1; ``not_on_or_after_seconds=-600`` an expired assertion replayed late;
  ``audience=OTHER_SP_ENTITY_ID`` an assertion the IdP issued to another SP, replayed here;
  ``in_response_to=None`` an unsolicited (IdP-initiated) login, ``in_response_to="_other"`` the
  answer to another AuthnRequest; ``issuer=...`` a response claiming to come from another IdP.
- ``tampered``: bytes edited in transit, the signatures left as they were.
- ``resigned_by_other_key``: edited, then re-signed with a key that is in no metadata.
- ``comment_injected``: CVE-2017-11427, a comment splitting a signed NameID.
- ``wrapped``: XML signature wrapping (XSW), a forged assertion beside the signed one.
"""

import base64
import secrets
import tempfile
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus, unquote_plus, urlencode, urlsplit

import pytest
import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from lxml import etree

with warnings.catch_warnings():
    # pysaml2 7.5 reaches for cryptography's deprecated CFB mode when saml2.server is imported.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from saml2 import (  # type: ignore[import-untyped]
        BINDING_HTTP_POST,
        BINDING_HTTP_REDIRECT,
        samlp,
    )
    from saml2 import saml as saml_types
    from saml2.assertion import Policy  # type: ignore[import-untyped]
    from saml2.config import IdPConfig  # type: ignore[import-untyped]
    from saml2.metadata import create_metadata_string  # type: ignore[import-untyped]
    from saml2.s_utils import (  # type: ignore[import-untyped]
        UnknownSystemEntity,
        success_status_factory,
    )
    from saml2.server import Server  # type: ignore[import-untyped]
    from saml2.time_util import instant  # type: ignore[import-untyped]

__all__ = ["saml_idp", "saml_idp_server"]

IDP_ENTITY_ID = "https://idp.example.com/metadata"
IDP_SSO_URL = "https://idp.example.com/sso"
IDP_SLO_URL = "https://idp.example.com/slo"
#: A second service provider the IdP always knows: assertions issued to it are the material of
#: the wrong-audience attack.
OTHER_SP_ENTITY_ID = "https://other-sp.example/metadata"
OTHER_SP_ACS_URL = "https://other-sp.example/acs"

NAME_ID_FORMATS = {
    "email": saml_types.NAMEID_FORMAT_EMAILADDRESS,
    "persistent": saml_types.NAMEID_FORMAT_PERSISTENT,
    "transient": saml_types.NAMEID_FORMAT_TRANSIENT,
    "unspecified": saml_types.NAMEID_FORMAT_UNSPECIFIED,
}

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}

# (signature, digest) per ``sign_alg``, for XML signatures and for the redirect binding.
_XML_ALGS = {
    "sha256": (xmlsec.constants.TransformRsaSha256, xmlsec.constants.TransformSha256),
    "sha1": (xmlsec.constants.TransformRsaSha1, xmlsec.constants.TransformSha1),
}
_SIG_ALG_URIS = {
    "sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "sha1": "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
}
_REDIRECT_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    _SIG_ALG_URIS["sha256"]: hashes.SHA256,
    _SIG_ALG_URIS["sha1"]: hashes.SHA1,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
}

_OTHER_SP_METADATA = f"""\
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    entityID="{OTHER_SP_ENTITY_ID}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" Location="{OTHER_SP_ACS_URL}"
        index="1"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"""

SignAlg = Literal["sha256", "sha1"]


@dataclass(frozen=True)
class KeyPair:
    """An RSA key and its self-signed certificate, both PEM."""

    cert_pem: str
    key_pem: str

    @property
    def cert_b64(self) -> str:
        """The certificate as metadata and python3-saml's ``x509cert`` carry it."""
        return "".join(self.cert_pem.strip().splitlines()[1:-1])

    @cached_property
    def xmlsec_key(self) -> xmlsec.Key:
        key = xmlsec.Key.from_memory(self.key_pem, xmlsec.constants.KeyDataFormatPem)
        key.load_cert_from_memory(self.cert_pem, xmlsec.constants.KeyDataFormatCertPem)
        return key


def make_keypair(common_name: str) -> KeyPair:
    """A fresh RSA 2048 key and a ten-year self-signed certificate for ``common_name``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode())


def sp_keypair() -> tuple[str, str]:
    """A fresh ``(cert_pem, key_pem)`` for Gatehouse's service provider."""
    pair = make_keypair("gatehouse.test")
    return pair.cert_pem, pair.key_pem


@dataclass(frozen=True)
class AuthnRequestInfo:
    """What the IdP read from an AuthnRequest sent by the HTTP-Redirect binding."""

    id: str
    issuer: str
    #: The ACS the request names, or else the SP's first HTTP-POST ACS in its metadata.
    acs_url: str
    relay_state: str | None
    destination: str | None
    force_authn: bool
    #: The URL carried ``SigAlg`` and ``Signature``.
    signed: bool
    #: ... and the signature verifies with a signing certificate of the SP's metadata.
    signature_valid: bool
    sig_alg: str | None
    xml: str


@dataclass(frozen=True)
class LogoutRequestInfo:
    """What the IdP read from a LogoutRequest sent by the HTTP-Redirect binding."""

    id: str
    issuer: str
    name_id: str
    session_indexes: list[str]
    relay_state: str | None
    signed: bool
    signature_valid: bool


class SamlIdp:
    """The identity provider ``https://idp.example.com``, answering trusted SPs only."""

    entity_id = IDP_ENTITY_ID
    sso_url = IDP_SSO_URL
    slo_url = IDP_SLO_URL

    def __init__(self) -> None:
        self.key = make_keypair("idp.example.com")
        #: An attacker's key, in no metadata, under the same subject name as the IdP's.
        self.other_key = make_keypair("idp.example.com")
        self._dir = tempfile.TemporaryDirectory(prefix="saml-idp-")
        cert_file = Path(self._dir.name, "idp.crt")
        key_file = Path(self._dir.name, "idp.key")
        cert_file.write_text(self.key.cert_pem)
        key_file.write_text(self.key.key_pem)
        self._config = IdPConfig().load(_config(cert_file, key_file))
        self._server = Server(config=self._config)
        #: The IdP's metadata, with its signing certificate: give it to Gatehouse.
        self.metadata_xml: str = create_metadata_string(None, config=self._config).decode()

    @property
    def cert_pem(self) -> str:
        return self.key.cert_pem

    @property
    def key_pem(self) -> str:
        return self.key.key_pem

    def close(self) -> None:
        self._dir.cleanup()

    def reset(self) -> None:
        """Forget every service provider but ``OTHER_SP_ENTITY_ID``."""
        self._server.metadata.metadata.clear()
        self._server.metadata.load("inline", _OTHER_SP_METADATA)

    def trust_sp(self, sp_metadata_xml: str | bytes) -> None:
        """Accept requests from, and issue assertions to, the SP this metadata describes."""
        if isinstance(sp_metadata_xml, bytes):
            sp_metadata_xml = sp_metadata_xml.decode()
        self._server.metadata.load("inline", sp_metadata_xml)

    def read_request(self, redirect_url: str) -> AuthnRequestInfo:
        """Parse an AuthnRequest from a trusted SP, as the browser brings it to the SSO URL."""
        raw, params = _split_redirect(redirect_url, self.sso_url)
        request = self._server.parse_authn_request(params["SAMLRequest"], BINDING_HTTP_REDIRECT)
        message = request.message
        issuer = message.issuer.text.strip()
        acs_urls = self._acs_urls(issuer)
        acs_url = message.assertion_consumer_service_url or acs_urls[0]
        if acs_url not in acs_urls:
            raise ValueError(f"{acs_url} is not an HTTP-POST ACS of {issuer} in its metadata")
        return AuthnRequestInfo(
            id=message.id,
            issuer=issuer,
            acs_url=acs_url,
            relay_state=params.get("RelayState"),
            destination=message.destination,
            force_authn=message.force_authn == "true",
            signed="Signature" in raw,
            signature_valid=self._redirect_signature_ok(raw, "SAMLRequest", issuer),
            sig_alg=params.get("SigAlg"),
            xml=request.xmlstr if isinstance(request.xmlstr, str) else request.xmlstr.decode(),
        )

    def response(
        self,
        *,
        acs_url: str,
        audience: str,
        in_response_to: str | None,
        name_id: str,
        attributes: Mapping[str, Sequence[str]] | None = None,
        name_id_format: str = "email",
        sign_assertion: bool = True,
        sign_response: bool = False,
        sign_alg: SignAlg = "sha256",
        not_on_or_after_seconds: int = 300,
        issuer: str | None = None,
        session_index: str | None = None,
    ) -> str:
        """A base64 ``SAMLResponse`` for an HTTP-POST to ``acs_url``.

        ``audience`` must be a trusted SP (or ``OTHER_SP_ENTITY_ID``). ``name_id_format`` is
        a key of ``NAME_ID_FORMATS`` or a format URI. Attribute names are used as given (URI
        name format when they contain a colon, else basic). A negative
        ``not_on_or_after_seconds`` makes an expired assertion (python3-saml allows 300 s of
        clock drift on Conditions, none on SubjectConfirmationData). ``issuer`` replaces the
        IdP's entity id in the Response and the Assertion.
        """
        self._acs_urls(audience)
        message = self._server.create_authn_response(
            identity={},
            in_response_to=in_response_to,
            destination=acs_url,
            sp_entity_id=audience,
            name_id=saml_types.NameID(
                format=NAME_ID_FORMATS.get(name_id_format, name_id_format), text=name_id
            ),
            authn={"class_ref": saml_types.AUTHN_PASSWORD_PROTECTED},
            issuer=issuer,
            release_policy=Policy({"default": {"lifetime": {"seconds": not_on_or_after_seconds}}}),
            sign_assertion=False,
            sign_response=False,
        )
        assertion = message.assertion
        if session_index is not None:
            assertion.authn_statement[0].session_index = session_index
        if attributes:
            assertion.attribute_statement = [_attribute_statement(attributes)]
        root = etree.fromstring(message.to_string())
        if sign_assertion:
            _sign(root.find("saml:Assertion", NS), self.key, sign_alg)
        if sign_response:
            _sign(root, self.key, sign_alg)
        return _encode(root)

    def post_for(
        self,
        request: AuthnRequestInfo,
        *,
        name_id: str,
        attributes: Mapping[str, Sequence[str]] | None = None,
        **options: Any,
    ) -> dict[str, str]:
        """The form fields answering ``request``; ``options`` are ``response()``'s, overriding."""
        answer = {
            "acs_url": request.acs_url,
            "audience": request.issuer,
            "in_response_to": request.id,
            **options,
        }
        fields = {"SAMLResponse": self.response(name_id=name_id, attributes=attributes, **answer)}
        if request.relay_state is not None:
            fields["RelayState"] = request.relay_state
        return fields

    # Attacks on a genuine response. Each takes and returns a base64 SAMLResponse.

    def tampered(self, response_b64: str, old: str, new: str) -> str:
        """``old`` replaced by ``new`` in transit; the signatures are left as they were."""
        return _b64(_replace(_decode_text(response_b64), old, new))

    def resigned_by_other_key(self, response_b64: str, old: str, new: str) -> str:
        """``old`` replaced by ``new``, then every signed element re-signed with ``other_key``.

        The signatures are sound and carry their certificate in KeyInfo; only the trust in that
        certificate is missing (an SP that trusts KeyInfo is fooled).
        """
        root = etree.fromstring(_replace(_decode_text(response_b64), old, new).encode())
        signed = [sig.getparent() for sig in root.iter(f"{{{NS['ds']}}}Signature")]
        for element in reversed(signed):  # the assertion before the response enclosing it
            _sign(element, self.other_key, "sha256")
        return _encode(root)

    def comment_injected(self, response_b64: str, prefix: str) -> str:
        """CVE-2017-11427: ``<!---->`` after ``prefix`` in every signed text starting with it.

        Sign a response for ``victim@example.com.evil.example`` (an address the attacker may
        register at the IdP) and inject after ``victim@example.com``. Exclusive c14n drops
        comments, so the signature still verifies; a parser reading the first text node
        (``element.text``) sees ``victim@example.com``.
        """
        root = _decode(response_b64)
        hits = 0
        for element in root.iter("{*}NameID", "{*}AttributeValue"):
            text = element.text or ""
            if text.startswith(prefix) and text != prefix:
                comment = etree.Comment("")
                comment.tail = text[len(prefix) :]
                element.text = prefix
                element.insert(0, comment)
                hits += 1
        if not hits:
            raise ValueError(f"no NameID or AttributeValue extends {prefix!r}")
        return _encode(root)

    def wrapped(
        self,
        response_b64: str,
        old: str,
        new: str,
        *,
        placement: Literal["extensions", "before"] = "extensions",
    ) -> str:
        """XML signature wrapping: a forged, unsigned assertion where a naive SP reads.

        The forgery is a copy of the signed assertion with ``old`` replaced by ``new``, no
        signature and a fresh ID. The signed original stays in the document so that "some
        signature verifies": with ``placement="extensions"`` it moves into the Response's
        ``samlp:Extensions`` and the forgery takes its place; with ``"before"`` the forgery is
        inserted before it (XSW3). Meant for responses whose assertion alone is signed.
        """
        root = _decode(response_b64)
        original = root.find("saml:Assertion", NS)
        forged = etree.fromstring(_replace(etree.tostring(original).decode(), old, new).encode())
        forged.remove(forged.find("ds:Signature", NS))
        forged.set("ID", _new_id())
        original.addprevious(forged)
        if placement == "extensions":
            extensions = etree.Element(f"{{{NS['samlp']}}}Extensions")
            root.find("samlp:Status", NS).addprevious(extensions)
            extensions.append(original)
        return _encode(root)

    # Single logout, HTTP-Redirect binding.

    def logout_request(
        self,
        sp_entity_id: str,
        *,
        name_id: str,
        session_index: str | None = None,
        name_id_format: str = "email",
        relay_state: str | None = None,
        sign: bool = True,
    ) -> str:
        """The redirect URL of an IdP-initiated LogoutRequest to the SP's HTTP-Redirect SLS."""
        sls_url = self._sls(sp_entity_id)["location"]
        _id, request = self._server.create_logout_request(
            destination=sls_url,
            issuer_entity_id=sp_entity_id,
            name_id=saml_types.NameID(
                format=NAME_ID_FORMATS.get(name_id_format, name_id_format), text=name_id
            ),
            session_indexes=[session_index] if session_index else None,
            sign=False,
        )
        return self._redirect(sls_url, "SAMLRequest", str(request), relay_state, sign)

    def parse_logout_request(self, redirect_url: str) -> LogoutRequestInfo:
        """Parse an SP-initiated LogoutRequest from a trusted SP, sent to the SLO URL."""
        raw, params = _split_redirect(redirect_url, self.slo_url)
        request = self._server.parse_logout_request(params["SAMLRequest"], BINDING_HTTP_REDIRECT)
        message = request.message
        issuer = message.issuer.text.strip()
        self._acs_urls(issuer)
        return LogoutRequestInfo(
            id=message.id,
            issuer=issuer,
            name_id=message.name_id.text,
            session_indexes=[index.text for index in message.session_index],
            relay_state=params.get("RelayState"),
            signed="Signature" in raw,
            signature_valid=self._redirect_signature_ok(raw, "SAMLRequest", issuer),
        )

    def logout_response(self, request: LogoutRequestInfo, *, sign: bool = True) -> str:
        """The redirect URL of a successful LogoutResponse to ``request``, back to its SP."""
        service = self._sls(request.issuer)
        sls_url = service.get("response_location") or service["location"]
        response = samlp.LogoutResponse(
            id=_new_id(),
            version="2.0",
            issue_instant=instant(),
            destination=sls_url,
            in_response_to=request.id,
            issuer=saml_types.Issuer(text=self.entity_id, format=saml_types.NAMEID_FORMAT_ENTITY),
            status=success_status_factory(),
        )
        return self._redirect(sls_url, "SAMLResponse", str(response), request.relay_state, sign)

    # Helpers.

    def _acs_urls(self, sp_entity_id: str) -> list[str]:
        try:
            services = self._server.metadata.assertion_consumer_service(
                sp_entity_id, BINDING_HTTP_POST
            )
        except UnknownSystemEntity:
            raise ValueError(f"{sp_entity_id} is not a trusted SP: call trust_sp()") from None
        return [service["location"] for service in services]

    def _sls(self, sp_entity_id: str) -> dict[str, str]:
        self._acs_urls(sp_entity_id)
        services = self._server.metadata.single_logout_service(
            sp_entity_id, BINDING_HTTP_REDIRECT, "spsso"
        )
        if not services:
            raise ValueError(f"{sp_entity_id} has no HTTP-Redirect SingleLogoutService")
        service: dict[str, str] = services[0]
        return service

    def _redirect_signature_ok(self, raw: Mapping[str, str], kind: str, issuer: str) -> bool:
        """Check the redirect binding's signature over the query as sent (bindings §3.4.4.1)."""
        if "Signature" not in raw or "SigAlg" not in raw:
            return False
        algorithm = _REDIRECT_HASHES.get(unquote_plus(raw["SigAlg"]))
        if algorithm is None:
            return False
        names = [kind, "RelayState", "SigAlg"]
        signed = "&".join(f"{name}={raw[name]}" for name in names if name in raw).encode()
        signature = base64.b64decode(unquote_plus(raw["Signature"]))
        for _name, cert in self._server.metadata.certs(issuer, "spsso", "signing"):
            public_key = x509.load_der_x509_certificate(base64.b64decode(cert)).public_key()
            assert isinstance(public_key, rsa.RSAPublicKey)
            try:
                public_key.verify(signature, signed, padding.PKCS1v15(), algorithm())
            except InvalidSignature:
                continue
            return True
        return False

    def _redirect(self, url: str, kind: str, xml: str, relay_state: str | None, sign: bool) -> str:
        """``url`` carrying ``xml`` by the HTTP-Redirect binding, signed with RSA-SHA256."""
        deflater = zlib.compressobj(wbits=-15)
        encoded = base64.b64encode(deflater.compress(xml.encode()) + deflater.flush()).decode()
        params = {kind: encoded}
        if relay_state is not None:
            params["RelayState"] = relay_state
        if sign:
            params["SigAlg"] = _SIG_ALG_URIS["sha256"]
            query = urlencode(params, quote_via=quote_plus).encode()
            private_key = serialization.load_pem_private_key(self.key.key_pem.encode(), None)
            assert isinstance(private_key, rsa.RSAPrivateKey)
            signature = private_key.sign(query, padding.PKCS1v15(), hashes.SHA256())
            params["Signature"] = base64.b64encode(signature).decode()
        return f"{url}?{urlencode(params, quote_via=quote_plus)}"


def _config(cert_file: Path, key_file: Path) -> dict[str, Any]:
    sso = [(IDP_SSO_URL, BINDING_HTTP_REDIRECT), (IDP_SSO_URL, BINDING_HTTP_POST)]
    return {
        "entityid": IDP_ENTITY_ID,
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "cert_file": str(cert_file),
        "key_file": str(key_file),
        "metadata": {"inline": [_OTHER_SP_METADATA]},
        "service": {
            "idp": {
                "endpoints": {
                    "single_sign_on_service": sso,
                    "single_logout_service": [(IDP_SLO_URL, BINDING_HTTP_REDIRECT)],
                },
                "name_id_format": list(NAME_ID_FORMATS.values()),
            }
        },
    }


def _attribute_statement(attributes: Mapping[str, Sequence[str]]) -> Any:
    return saml_types.AttributeStatement(
        attribute=[
            saml_types.Attribute(
                name=name,
                name_format=saml_types.NAME_FORMAT_URI
                if ":" in name
                else saml_types.NAME_FORMAT_BASIC,
                attribute_value=[saml_types.AttributeValue(text=value) for value in values],
            )
            for name, values in attributes.items()
        ]
    )


def _sign(element: Any, key: KeyPair, sign_alg: SignAlg) -> None:
    """Sign ``element`` (enveloped, exclusive c14n, certificate in KeyInfo), after its Issuer."""
    old = element.find("ds:Signature", NS)
    if old is not None:
        element.remove(old)
    sign_method, digest_method = _XML_ALGS[sign_alg]
    signature = xmlsec.template.create(element, xmlsec.constants.TransformExclC14N, sign_method)
    element.find("saml:Issuer", NS).addnext(signature)
    reference = xmlsec.template.add_reference(signature, digest_method, uri="#" + element.get("ID"))
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    context = xmlsec.SignatureContext()
    context.key = key.xmlsec_key
    context.register_id(element, "ID")
    context.sign(signature)


def _split_redirect(url: str, endpoint: str) -> tuple[dict[str, str], dict[str, str]]:
    """The query of an HTTP-Redirect binding URL: raw (as signed) and decoded."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}{parts.path}" != endpoint:
        raise ValueError(f"{url} is not addressed to {endpoint}")
    raw = dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
    return raw, dict(parse_qsl(parts.query))


def _replace(xml: str, old: str, new: str) -> str:
    if old not in xml:
        raise ValueError(f"{old!r} is not in the response")
    return xml.replace(old, new)


def _new_id() -> str:
    return "_" + secrets.token_hex(16)


def _decode_text(response_b64: str) -> str:
    return base64.b64decode(response_b64).decode()


def _decode(response_b64: str) -> Any:
    return etree.fromstring(base64.b64decode(response_b64))


def _b64(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def _encode(root: Any) -> str:
    return base64.b64encode(etree.tostring(root, xml_declaration=True, encoding="UTF-8")).decode()


@pytest.fixture(scope="session")
def saml_idp_server() -> Iterator[SamlIdp]:
    """The identity provider of the whole run."""
    idp = SamlIdp()
    idp.reset()
    try:
        yield idp
    finally:
        idp.close()


@pytest.fixture
def saml_idp(saml_idp_server: SamlIdp) -> SamlIdp:
    """The identity provider, trusting no SP but ``OTHER_SP_ENTITY_ID``."""
    saml_idp_server.reset()
    return saml_idp_server
