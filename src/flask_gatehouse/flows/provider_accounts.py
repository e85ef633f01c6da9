"""The rules for accounts at outside providers (social login's OpenID Connect and OAuth 2.0,
SAML): signing in as the account a provider account is linked to, making accounts, linking
and unlinking. ``flows/social`` and ``flows/saml`` prove who signed in at the provider, each
its own way, then hand over here.

Who signed in is the provider account (issuer, subject) linked to a user, never an address:
an address the provider vouches for only creates an account no one has, or, at a provider the
host marked trusted, links an existing one. Anywhere else the owner links it from the account
page after signing in to the account (allauth's rule against pre-account takeover). An
address the provider has not verified creates an account that signs in only once its
confirmation link is followed.
"""

from dataclasses import dataclass
from typing import Literal

from .. import messages
from ..models import SocialIdentity, User
from ..services import address_claim, audit, identities, mail, passkeys, throttle, users
from ..services.identities import IdentityProvider, ProviderIdentity
from ..services.identity import InvalidIdentity, normalize_email, normalize_username
from ..services.transaction import commit
from . import signup
from .signin import SignIn, proven_identity


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
    #: The account that was linked (outcomes "linked", "already_linked").
    user: User | None = None

    @property
    def signed_in_user(self) -> User | None:
        """The account a session started for, or that was linked."""
        return self.sign_in.user if self.sign_in is not None else self.user


def refused(
    provider: IdentityProvider,
    message: str,
    *,
    user: User | None = None,
    status: int = 400,
    detail: str | None = None,
    offer_link: bool = False,
) -> Finished:
    """Nobody signs in: audit it as a failed login and count it against this client's failed
    logins (GATEHOUSE_LOGIN_IP_LIMIT), as a wrong password is. Commits."""
    throttle.count_failing_ip()
    audit.record("login", "failure", user=user, detail=detail or f"{provider.key}: {message}"[:200])
    commit()
    return Finished("refused", message=message, status=status, offer_link=offer_link)


def sign_in(provider: IdentityProvider, found: ProviderIdentity, next_url: str | None) -> Finished:
    """Sign in as the account the provider account ``found`` is linked to; else make an
    account, or (at a trusted provider, for a verified address) link the account that has
    the address. Commits."""
    linked = identities.find(found.issuer, found.subject)
    if linked is not None:
        return _sign_in_linked(provider, linked, found, next_url)
    email = _address(found)
    if email is None:
        return refused(provider, messages.provider_gave_no_address(provider.name))
    owner = users.find_by_email(email)
    if owner is None:
        return _sign_up(provider, found, email, next_url)
    if not (provider.trusted and found.email_verified):
        return refused(
            provider,
            messages.address_has_account(email, provider.name),
            user=owner,
            status=409,
            detail=f"{provider.key}: address of an unlinked account",
            offer_link=True,
        )
    record = identities.link(owner, provider.key, found)
    if record is None:
        return refused(provider, messages.SOCIAL_RETRY, status=409)
    if owner.email_confirmed_at is None:
        address_claim.claim(owner, by=f"trusted provider {provider.key}")
    _announce_link(owner, provider, record, detail="linked at sign-in (trusted provider)")
    return _sign_in_linked(provider, record, found, next_url)


def _address(found: ProviderIdentity) -> str | None:
    try:
        return normalize_email(found.email) if found.email else None
    except InvalidIdentity:
        return None


def _sign_in_linked(
    provider: IdentityProvider,
    record: SocialIdentity,
    found: ProviderIdentity,
    next_url: str | None,
) -> Finished:
    user = users.find_by_id(record.user_id)
    if user is None or not user.active:
        return refused(provider, messages.SOCIAL_ACCOUNT_REFUSED, user=user, status=403)
    identities.used(record, found)
    result = proven_identity(user, method=provider.method, next_url=next_url)
    if result.stopped_at is not None:
        # The one stage that stops a sign-in outright: the address is not confirmed yet (a
        # fresh link was mailed).
        return Finished(
            "confirm_email", message=messages.confirm_address_first(user.email), status=403
        )
    return Finished("signed_in", result)


def _sign_up(
    provider: IdentityProvider, found: ProviderIdentity, email: str, next_url: str | None
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
        return refused(provider, messages.SOCIAL_RETRY, status=409)
    audit.record("register", "success", user=user, detail=provider.key)
    if not found.email_verified:
        signup.send_confirmation(user)
        commit()
        return Finished("confirm_email", message=messages.confirm_address_first(email), status=403)
    return Finished("signed_in", proven_identity(user, method=provider.method, next_url=next_url))


def _username(found: ProviderIdentity, email: str) -> str:
    """The provider's username, else the address's local part, as Gatehouse's rules allow."""
    for candidate in (found.username, email.partition("@")[0], "user"):
        try:
            return normalize_username((candidate or "")[:64])
        except InvalidIdentity:
            continue
    return "user"


def link(provider: IdentityProvider, found: ProviderIdentity, user: User) -> Finished:
    """Link the provider account ``found`` to ``user``, whose flow (the caller checked)
    started behind a recent sign-in. Commits."""
    linked = identities.find(found.issuer, found.subject)
    if linked is not None and linked.user_id == user.id:
        commit()
        return Finished("already_linked", user=user)
    if linked is not None:
        return refused(
            provider,
            messages.provider_account_taken(provider.name),
            user=user,
            status=409,
        )
    record = identities.link(user, provider.key, found)
    if record is None:
        return refused(provider, messages.SOCIAL_RETRY, status=409)
    _announce_link(user, provider, record, detail="linked")
    commit()
    return Finished("linked", user=user)


def _announce_link(
    user: User, provider: IdentityProvider, record: SocialIdentity, *, detail: str
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


def _other_way_in(user: User, *, another_link: bool) -> bool:
    """Whether ``user`` can still sign in without one of their linked accounts: a password, a
    passkey, or ``another_link``ed provider account."""
    if user.password_hash is not None or another_link:
        return True
    return passkeys.mode() == "on" and passkeys.count(user, kind="passkey") > 0


def unlink(user: User, identity_id: int) -> Literal["unlinked", "gone", "last_way_in"]:
    """Unlink one of ``user``'s provider accounts, unless it is their last way to sign in."""
    linked = identities.of_user(user)
    record = next((found for found in linked if found.id == identity_id), None)
    if record is None:
        return "gone"
    if not _other_way_in(user, another_link=len(linked) > 1):
        return "last_way_in"
    identities.remove(record)
    name = identities.label(record.provider)
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
