"""SAML 2.0 identity providers (GATEHOUSE_SAML_PROVIDERS): their settings, the AuthnRequests
a browser started (server-side, found by a cookie of its own), and the assertions already
used.

The protocol itself is python3-saml's (``services/saml_toolkit``), imported only when a
provider is configured: python3-saml loads the ``xmlsec`` binding, which fails to load when
its libxml2 is not lxml's, and a host without SAML must never meet that.

The IdP's POST to the assertion consumer service is cross-site, so the session cookie
(``SameSite=Lax``) does not come with it. The AuthnRequest a browser started is therefore
kept in the database and found by a dedicated cookie, ``SameSite=None`` (``Secure``, 10
minutes, ``__Host-`` prefixed and so for the whole host), that holds a random token; the
request's id is what the response's ``InResponseTo`` must name. ``RelayState`` carries
nothing Gatehouse trusts: the page to land on is kept with the request (and, for an
IdP-initiated sign-in a host allowed, read from ``RelayState`` only as a same-origin path).
"""

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from threading import Lock
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import Flask, current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from .. import state
from ..models import SamlAssertion, SamlRequest, User, utcnow
from . import sessions, transport
from .database import db

#: The cookie that finds a browser's pending AuthnRequests.
COOKIE = "gatehouse_saml"
#: How long a browser may take at the IdP.
REQUEST_LIFETIME = timedelta(minutes=10)
#: Seconds Gatehouse waits for an IdP's metadata.
TIMEOUT = 10

_KEYS = {
    "metadata_url",
    "metadata_xml",
    "email_attribute",
    "trust_email",
    "sp_cert",
    "sp_key",
    "name",
    "idp_initiated",
    "mfa_enforced",
    "subject_attribute",
}


@dataclass(eq=False)
class Provider:
    """One SAML identity provider. ``slug`` names it in the URLs (``/saml/<slug>/...``);
    ``key`` ("saml:<slug>") is what accounts linked through it record."""

    slug: str
    name: str
    #: The attribute holding the address (else the NameID, when it is an address).
    email_attribute: str
    #: Whether the IdP's addresses count as verified (a new account is then confirmed).
    trust_email: bool
    #: Whether a response nobody here asked for may sign in (off: every response must answer
    #: an AuthnRequest this browser started).
    idp_initiated: bool
    #: An attribute naming the user for good, used instead of the NameID (None: the NameID).
    subject_attribute: str | None
    sp_cert: str | None
    sp_key: str | None
    metadata_url: str | None
    #: The IdP's settings for python3-saml, parsed from its metadata (fetched at first use
    #: when given by URL).
    idp: dict[str, Any] | None
    #: The host vouches that the IdP enforces multi-factor authentication: no second factor
    #: is asked here after it.
    mfa_enforced: bool = False
    _lock: Lock = field(default_factory=Lock, repr=False)

    #: Accounts are never linked by address alone: the owner signs in to link.
    trusted = False

    @property
    def key(self) -> str:
        return f"saml:{self.slug}"

    @property
    def method(self) -> str:
        return "saml_mfa" if self.mfa_enforced else "saml"


class ProviderError(Exception):
    """The IdP's metadata could not be had (a 503 for the user)."""


class ResponseRefusedError(Exception):
    """A SAML response that proves nothing; str() says why (for the audit trail)."""


@dataclass(frozen=True)
class Assertion:
    """What a valid response says: who signed in at ``issuer`` (the IdP's entity id)."""

    issuer: str
    assertion_id: str
    expires_at: datetime
    name_id: str
    name_id_format: str | None
    attributes: dict[str, list[str]]


def configure(app: Flask) -> dict[str, Provider]:
    """The providers of GATEHOUSE_SAML_PROVIDERS, checked at start-up (the libraries too) so
    a mistake fails with the fix in the message."""
    setting = app.config["GATEHOUSE_SAML_PROVIDERS"]
    if not isinstance(setting, dict):
        raise RuntimeError(
            "GATEHOUSE_SAML_PROVIDERS must map a short name to an identity provider's "
            'settings, e.g. {"corp": {"metadata_url": "https://idp.example.com/metadata"}}.'
        )
    if not setting:
        return {}
    check_libraries()
    return {slug: _provider(slug, settings) for slug, settings in setting.items()}


def check_libraries() -> None:
    """Load python3-saml's XML signature binding, or say how to fix the classic failure: the
    ``xmlsec`` wheel and ``lxml`` each bundle libxml2, and must bundle the same version."""
    try:
        from . import saml_toolkit  # noqa: F401 - loads xmlsec
    except Exception as error:  # xmlsec raises its own InternalError at import
        raise RuntimeError(
            f"SAML needs the xmlsec binding, which did not load ({error}). Install the "
            'versions Gatehouse pins together: pip install "xmlsec==1.3.17" "lxml==6.1.3" '
            "(both bundle libxml2 2.14; other pairs fail with 'lxml & xmlsec libxml2 "
            "library version mismatch')."
        ) from error


def _provider(slug: str, settings: object) -> Provider:
    from . import saml_toolkit

    where = f"GATEHOUSE_SAML_PROVIDERS[{slug!r}]"
    if not slug.replace("-", "").replace("_", "").isalnum() or not slug.isascii():
        raise RuntimeError(f"{where}: a provider's short name is letters, digits, - and _.")
    if not isinstance(settings, dict):
        raise RuntimeError(f"{where} must be a mapping of settings.")
    unknown = set(settings) - _KEYS
    if unknown:
        raise RuntimeError(f"{where} has unknown settings: {', '.join(sorted(unknown))}.")
    if bool(settings.get("metadata_url")) == bool(settings.get("metadata_xml")):
        raise RuntimeError(f"{where} needs one of metadata_url or metadata_xml.")
    if bool(settings.get("sp_cert")) != bool(settings.get("sp_key")):
        raise RuntimeError(f"{where}: sp_cert and sp_key go together (or neither).")
    if settings.get("sp_cert") and not _key_pair_matches(settings["sp_cert"], settings["sp_key"]):
        raise RuntimeError(
            f"{where}: sp_cert and sp_key must be a PEM certificate and its own private key."
        )
    idp = None
    if settings.get("metadata_xml"):
        try:
            idp = saml_toolkit.parse_metadata(str(settings["metadata_xml"]))
        except saml_toolkit.MetadataError as error:
            raise RuntimeError(f"{where}: its metadata_xml cannot be used: {error}") from error
    return Provider(
        slug=slug,
        name=str(settings.get("name") or slug),
        email_attribute=str(settings.get("email_attribute") or "email"),
        trust_email=bool(settings.get("trust_email", False)),
        idp_initiated=bool(settings.get("idp_initiated", False)),
        subject_attribute=settings.get("subject_attribute"),
        sp_cert=settings.get("sp_cert"),
        sp_key=settings.get("sp_key"),
        metadata_url=settings.get("metadata_url"),
        idp=idp,
        mfa_enforced=bool(settings.get("mfa_enforced", False)),
    )


def _key_pair_matches(cert: object, key: object) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(str(cert).encode())
        private = serialization.load_pem_private_key(str(key).encode(), password=None)
    except (ValueError, TypeError):
        return False
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.PEM
    return bool(
        certificate.public_key().public_bytes(encoding, public)
        == private.public_key().public_bytes(encoding, public)
    )


def find(slug: str) -> Provider | None:
    return state.get().saml_providers.get(slug)


def providers() -> list[Provider]:
    return list(state.get().saml_providers.values())


def idp_settings(provider: Provider) -> dict[str, Any]:
    """The IdP's settings, fetching its metadata the first time when given by URL."""
    from . import saml_toolkit

    with provider._lock:
        if provider.idp is None:
            assert provider.metadata_url is not None
            try:
                provider.idp = saml_toolkit.fetch_metadata(provider.metadata_url, TIMEOUT)
            except saml_toolkit.MetadataError as error:
                current_app.logger.error("SAML metadata of %s: %s", provider.slug, error)
                raise ProviderError(str(error)) from error
        return provider.idp


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def remember_request(
    provider: Provider, request_id: str, *, purpose: str, user: User | None, next_url: str | None
) -> None:
    """Keep the AuthnRequest this browser is sent to the IdP with, and give the browser the
    cookie that finds it. A link's request is tied to the session that asked for it: signing
    out deletes it with the session. Joins the caller's transaction."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db().session.add(
        SamlRequest(
            request_id=request_id,
            provider=provider.slug,
            browser_digest=_digest(token),
            purpose=purpose,
            user_id=user.id if user is not None else None,
            session_id=sessions.current_id() if user is not None else None,
            next_url=next_url,
            created_at=now,
            expires_at=now + REQUEST_LIFETIME,
        )
    )
    transport.keep(COOKIE, token, max_age=REQUEST_LIFETIME, cross_site=True)


def take_request(provider: Provider) -> SamlRequest | None:
    """The newest live AuthnRequest this browser started at ``provider``, spent (a response
    answers one request, once); None without one. Joins the caller's transaction."""
    token = transport.read(COOKIE)
    if token is None:
        return None
    session = db().session
    found = session.scalar(
        select(SamlRequest)
        .where(
            SamlRequest.browser_digest == _digest(token),
            SamlRequest.provider == provider.slug,
            SamlRequest.expires_at > utcnow(),
        )
        .order_by(SamlRequest.id.desc())
        .limit(1)
    )
    if found is None:
        return None
    spent = session.execute(delete(SamlRequest).where(SamlRequest.id == found.id))
    if not spent.rowcount:  # type: ignore[attr-defined]
        return None  # a parallel request spent it first
    return found


def first_use(issuer: str, assertion_id: str, expires_at: datetime) -> bool:
    """Record that the assertion ``assertion_id`` was used; False when it already was. It is
    kept until it expires (after that, python3-saml refuses it anyway). Joins the caller's
    transaction (the unique index decides races, inside a savepoint)."""
    session = db().session
    now = utcnow()
    session.execute(delete(SamlAssertion).where(SamlAssertion.expires_at <= now))
    try:
        with session.begin_nested():
            session.add(
                SamlAssertion(issuer=issuer, assertion_id=assertion_id, expires_at=expires_at)
            )
    except IntegrityError:
        return False
    return True


def login_url(provider: Provider) -> tuple[str, str]:
    """The IdP's URL with a new AuthnRequest, and the request's id. Raises ProviderError."""
    from . import saml_toolkit

    return saml_toolkit.authn_request(provider, idp_settings(provider))


def sp_metadata(provider: Provider) -> str:
    """The SP's metadata for the IdP's administrator (nothing in it comes from the IdP)."""
    from . import saml_toolkit

    return saml_toolkit.sp_metadata(provider)


def read_response(provider: Provider, form: dict[str, str], request_id: str | None) -> Assertion:
    """The assertion of a valid response to ``request_id``. Raises ResponseRefusedError (and
    ProviderError)."""
    from . import saml_toolkit

    return saml_toolkit.read_response(provider, idp_settings(provider), form, request_id)


def logout_request(provider: Provider, query: dict[str, str]) -> tuple[str, str]:
    """The NameID an IdP's signed LogoutRequest signs out, and where the browser goes back to
    the IdP. Raises ResponseRefusedError (and ProviderError)."""
    from . import saml_toolkit

    return saml_toolkit.logout_request(provider, idp_settings(provider), query)
