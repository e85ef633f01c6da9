"""Social login: a provider's account as a first factor, and linking such accounts.

A sign-in through a provider is a first factor like a password: the stages (two-factor
included) run after it. Who signed in is the provider account (issuer, subject) linked to a
user, never an address: an address the provider vouches for only creates an account no one
has, or, at a provider the host marked trusted, links an existing one. Anywhere else the
owner links it from the account page after signing in to the account (allauth's rule against
pre-account takeover). An address the provider has not verified creates an account that
signs in only once its confirmation link is followed.
"""

from dataclasses import dataclass
from typing import Literal

from flask import current_app
from flask_login import current_user

from .. import messages, signals
from ..models import SocialIdentity, User
from ..services import (
    address_claim,
    audit,
    identities,
    mail,
    oidc,
    passkeys,
    sessions,
    throttle,
    users,
)
from ..services.identity import InvalidIdentity, normalize_email, normalize_username
from ..services.redirects import safe_next
from ..services.transaction import commit
from . import signup
from .signin import SignIn, proven_identity

Purpose = Literal["sign_in", "link"]

#: Keys of what ``begin`` keeps about a flow, beside Authlib's state, nonce and verifier.
_PURPOSE, _NEXT, _USER = "gatehouse_purpose", "gatehouse_next", "gatehouse_user"


@dataclass(frozen=True)
class Finished:
    """How a provider's callback ended. ``outcome``:

    - "signed_in": ``sign_in`` says where the sign-in went (a session, or a stage's page);
    - "linked" / "already_linked": a signed-in user linked the provider account (or had);
    - "confirm_email": the account waits for its address to be confirmed (a link was mailed);
    - "refused": nobody signs in; ``message`` says why, ``status`` is the page's status
      (400 a callback that proves nothing, 403 a refused account, 409 an address or a
      provider account that belongs to another account, 503 the provider unreachable).
    """

    outcome: Literal["signed_in", "linked", "already_linked", "confirm_email", "refused"]
    sign_in: SignIn | None = None
    message: str = ""
    status: int = 400
    #: For an address that has an account: offer to sign in to it and link from there.
    offer_link: bool = False


def begin(
    provider: oidc.Provider, purpose: Purpose, *, redirect_uri: str, next_url: str | None
) -> str:
    """The provider's authorization URL for a sign-in (or, for the signed-in user, a link),
    with the flow's purpose kept in this browser's session beside its state."""
    keep = {_PURPOSE: purpose, _NEXT: safe_next(next_url)}
    if purpose == "link":
        keep[_USER] = current_user.get_id()
    return oidc.authorization_url(provider, redirect_uri, **keep)


def finish(provider: oidc.Provider, state_value: str | None) -> Finished:
    """The provider's callback: check it belongs to a flow this browser started, read who
    signed in there, then sign in or link. A failed callback counts against this client's
    failed logins, as a wrong password does (GATEHOUSE_LOGIN_IP_LIMIT)."""
    throttle.refuse_failing_ip()
    started = oidc.started_flow(provider, state_value)
    if started is None:
        return _refused(provider, messages.SOCIAL_FLOW_INVALID)
    try:
        found = oidc.identity(provider)
    except oidc.ProviderError as error:
        if error.unreachable:
            return Finished("refused", message=str(error), status=503)
        return _refused(provider, str(error))
    if started.get(_PURPOSE) == "link":
        finished = _link(provider, found, started.get(_USER))
    else:
        finished = _sign_in(provider, found, started.get(_NEXT))
    user = finished.sign_in.user if finished.sign_in is not None else None
    if finished.outcome == "linked":
        user = current_user._get_current_object()
    if user is not None:
        signals.provider_token.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user=user,
            provider=provider.key,
            token=provider.client.token,
        )
    return finished


def _refused(
    provider: oidc.Provider,
    message: str,
    *,
    user: User | None = None,
    status: int = 400,
    detail: str | None = None,
    offer_link: bool = False,
) -> Finished:
    throttle.count_failing_ip()
    audit.record("login", "failure", user=user, detail=detail or f"{provider.key}: {message}"[:200])
    commit()
    return Finished("refused", message=message, status=status, offer_link=offer_link)


def _sign_in(
    provider: oidc.Provider, found: oidc.ProviderIdentity, next_url: str | None
) -> Finished:
    linked = identities.find(found.issuer, found.subject)
    if linked is not None:
        return _sign_in_linked(provider, linked, found, next_url)
    email = _address(found)
    if email is None:
        return _refused(provider, messages.provider_gave_no_address(provider.name))
    owner = users.find_by_email(email)
    if owner is None:
        return _sign_up(provider, found, email, next_url)
    if not (provider.trusted and found.email_verified):
        return _refused(
            provider,
            messages.address_has_account(email, provider.name),
            user=owner,
            status=409,
            detail=f"{provider.key}: address of an unlinked account",
            offer_link=True,
        )
    record = identities.link(owner, provider.key, found)
    if record is None:
        return _refused(provider, messages.SOCIAL_RETRY, status=409)
    if owner.email_confirmed_at is None:
        address_claim.claim(owner, by=f"trusted provider {provider.key}")
    _announce_link(owner, provider, record, detail="linked at sign-in (trusted provider)")
    return _sign_in_linked(provider, record, found, next_url)


def _address(found: oidc.ProviderIdentity) -> str | None:
    try:
        return normalize_email(found.email) if found.email else None
    except InvalidIdentity:
        return None


def _sign_in_linked(
    provider: oidc.Provider,
    record: SocialIdentity,
    found: oidc.ProviderIdentity,
    next_url: str | None,
) -> Finished:
    user = users.find_by_id(record.user_id)
    if user is None or not user.active:
        return _refused(provider, messages.SOCIAL_ACCOUNT_REFUSED, user=user, status=403)
    identities.used(record, found)
    result = proven_identity(user, method="social", next_url=next_url)
    if result.stopped_at is not None:
        # The one stage that stops a sign-in outright: the address is not confirmed yet (a
        # fresh link was mailed).
        return Finished(
            "confirm_email", message=messages.confirm_address_first(user.email), status=403
        )
    return Finished("signed_in", result)


def _sign_up(
    provider: oidc.Provider, found: oidc.ProviderIdentity, email: str, next_url: str | None
) -> Finished:
    """A provider account no one has, with an address no account has: a new account, its
    address confirmed when the provider verified it. No password: it signs in through the
    provider (or sets one with a reset)."""
    throttle.count_accepted("signup", email)
    user = users.register(
        email=email, username=_username(found, email), password=None, confirmed=found.email_verified
    )
    record = identities.link(user, provider.key, found) if user is not None else None
    if user is None or record is None:
        # A sign-up took the address (or the provider account) meanwhile.
        return _refused(provider, messages.SOCIAL_RETRY, status=409)
    audit.record("register", "success", user=user, detail=provider.key)
    if not found.email_verified:
        signup.send_confirmation(user)
        commit()
        return Finished("confirm_email", message=messages.confirm_address_first(email), status=403)
    return Finished("signed_in", proven_identity(user, method="social", next_url=next_url))


def _username(found: oidc.ProviderIdentity, email: str) -> str:
    """The provider's username, else the address's local part, as Gatehouse's rules allow."""
    for candidate in (found.username, email.partition("@")[0], "user"):
        try:
            return normalize_username((candidate or "")[:64])
        except InvalidIdentity:
            continue
    return "user"


def _link(provider: oidc.Provider, found: oidc.ProviderIdentity, started_by: object) -> Finished:
    """Link the provider account to the signed-in user who started the flow, while their
    re-authentication is recent (the page that started it asked for it)."""
    if not current_user.is_authenticated or current_user.get_id() != started_by:
        return _refused(provider, messages.SOCIAL_LINK_SIGNED_OUT, status=403)
    if not sessions.is_recently_authenticated():
        return _refused(provider, messages.SOCIAL_LINK_NOT_RECENT, status=403)
    user: User = current_user._get_current_object()
    linked = identities.find(found.issuer, found.subject)
    if linked is not None and linked.user_id == user.id:
        commit()
        return Finished("already_linked")
    if linked is not None:
        return _refused(
            provider,
            messages.provider_account_taken(provider.name),
            user=user,
            status=409,
        )
    record = identities.link(user, provider.key, found)
    if record is None:
        return _refused(provider, messages.SOCIAL_RETRY, status=409)
    _announce_link(user, provider, record, detail="linked")
    commit()
    return Finished("linked")


def _announce_link(
    user: User, provider: oidc.Provider, record: SocialIdentity, *, detail: str
) -> None:
    audit.record("identity_linked", "success", user=user, detail=f"{provider.key}: {detail}")
    mail.send(
        "identity_linked",
        to=user.email,
        username=user.username,
        provider=provider.name,
        account=record.email or record.subject,
        account_link=mail.link("gatehouse.account"),
        reset_link=mail.link("gatehouse.forgot_password"),
    )


def other_way_in(user: User, *, without: int | None = None) -> bool:
    """Whether ``user`` can still sign in without the linked account ``without``: a password,
    a passkey, or another linked provider account."""
    if user.password_hash is not None:
        return True
    if passkeys.mode() == "on" and passkeys.count(user, kind="passkey") > 0:
        return True
    return any(record.id != without for record in identities.of_user(user))


def unlink(user: User, identity_id: int) -> Literal["unlinked", "gone", "last_way_in"]:
    """Unlink one of ``user``'s provider accounts, unless it is their last way to sign in."""
    if not any(record.id == identity_id for record in identities.of_user(user)):
        return "gone"
    if not other_way_in(user, without=identity_id):
        return "last_way_in"
    record = identities.remove(user, identity_id)
    if record is None:
        commit()
        return "gone"
    name = oidc.label(record.provider)
    audit.record("identity_unlinked", "success", user=user, detail=record.provider)
    mail.send(
        "identity_unlinked",
        to=user.email,
        username=user.username,
        provider=name,
        account=record.email or record.subject,
        reset_link=mail.link("gatehouse.forgot_password"),
    )
    commit()
    return "unlinked"
