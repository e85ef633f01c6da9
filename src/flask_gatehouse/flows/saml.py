"""SAML single sign-on: the flow from the button to the identity provider and back to the
assertion consumer service. ``services/saml`` keeps the requests and used assertions and
speaks the protocol; the account rules are ``flows/provider_accounts``'s (a SAML sign-in
is a first factor, and the stages run after it).
"""

from .. import messages
from ..models import User
from ..services import audit, identities, saml, throttle, users
from ..services.identities import ProviderIdentity
from ..services.redirects import safe_next
from ..services.transaction import commit
from . import provider_accounts, signin
from .provider_accounts import Finished


def begin(provider: saml.Provider, *, user: User | None, next_url: str | None) -> str:
    """The IdP's URL with a new AuthnRequest, kept for this browser: to sign in, or (with
    ``user``, whose sign-in is recent) to link the IdP's account to ``user``. Raises
    ``saml.ProviderError``. Commits."""
    url, request_id = saml.login_url(provider)
    saml.remember_request(
        provider,
        request_id,
        purpose="link" if user is not None else "sign_in",
        user=user,
        next_url=safe_next(next_url),
    )
    commit()
    return url


def consume(provider: saml.Provider, form: dict[str, str]) -> Finished:
    """The IdP's POST to the assertion consumer service: it must answer a request this
    browser started (unless the host allowed IdP-initiated sign-ins), be valid, and be used
    once; then sign in or link. Refusals count against this client's failed logins."""
    throttle.refuse_failing_ip()
    pending = saml.take_request(provider)
    if pending is None and not provider.idp_initiated:
        return provider_accounts.refused(
            provider, messages.SAML_UNSOLICITED, detail=f"{provider.key}: no request pending"
        )
    try:
        assertion = saml.read_response(provider, form, pending.request_id if pending else None)
    except saml.ProviderError:
        commit()  # the request stays spent: the browser starts again
        return Finished("refused", message=messages.SAML_UNREACHABLE, status=503)
    except saml.ResponseRefusedError as refused:
        return provider_accounts.refused(
            provider, messages.SAML_REFUSED, detail=f"{provider.key}: {refused}"[:200]
        )
    if not saml.first_use(assertion.issuer, assertion.assertion_id, assertion.expires_at):
        return provider_accounts.refused(
            provider, messages.SAML_REFUSED, detail=f"{provider.key}: assertion replayed"
        )
    found = _identity(provider, assertion)
    if found is None:
        return provider_accounts.refused(provider, messages.saml_no_subject(provider.name))
    if found.email is None:
        return provider_accounts.refused(provider, messages.provider_gave_no_address(provider.name))
    if pending is not None and pending.purpose == "link":
        user = users.find_by_id(pending.user_id) if pending.user_id is not None else None
        if user is None or not user.active:
            return provider_accounts.refused(provider, messages.SOCIAL_LINK_SIGNED_OUT, status=403)
        return provider_accounts.link(provider, found, user)
    next_url = pending.next_url if pending is not None else safe_next(form.get("RelayState"))
    return provider_accounts.sign_in(provider, found, next_url)


def _identity(provider: saml.Provider, assertion: saml.Assertion) -> ProviderIdentity | None:
    """Who the assertion names: the NameID (or the configured persistent attribute) at the
    IdP, and the address from the configured attribute (else an address-shaped NameID).
    None when it names nobody for good (a transient NameID, a missing attribute)."""
    subject = assertion.name_id
    if provider.subject_attribute is None and assertion.name_id_format == _TRANSIENT_FORMAT:
        return None  # a new name at every sign-in: no account could be found again
    if provider.subject_attribute is not None:
        values = assertion.attributes.get(provider.subject_attribute) or []
        if not values:
            return None
        subject = values[0]
    emails = assertion.attributes.get(provider.email_attribute) or []
    email = emails[0] if emails else None
    if email is None and assertion.name_id_format == _EMAIL_FORMAT:
        email = assertion.name_id
    return ProviderIdentity(
        issuer=assertion.issuer,
        subject=subject,
        email=email,
        email_verified=provider.trust_email,
        username=None,
    )


_EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
_TRANSIENT_FORMAT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"


def single_logout(provider: saml.Provider, query: dict[str, str], user: User | None) -> str | None:
    """The IdP signs a user out everywhere (its LogoutRequest, through this browser): sign
    this browser out when its session is the account that IdP account is linked to. The URL
    of the IdP's answer, or None when the request is refused. Raises ``saml.ProviderError``."""
    try:
        name_id, back = saml.logout_request(provider, query)
    except saml.ResponseRefusedError as refused:
        audit.record("logout", "failure", user=user, detail=f"{provider.key}: {refused}"[:200])
        commit()
        return None
    issuer = str(saml.idp_settings(provider)["entityId"])
    linked = identities.find(issuer, name_id)
    if user is not None and linked is not None and linked.user_id == user.id:
        signin.sign_out(user)
    else:
        commit()
    return back
