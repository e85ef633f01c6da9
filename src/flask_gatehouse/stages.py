"""Sign-in as stages (in the spirit of django-allauth's login stages).

A first factor (a password today; a passkey, social login or SAML later) proves who is
signing in. The stages below then run in order, before any session exists; only when every
one is satisfied does ``flows.signin`` start the session. A stage either stops the sign-in
(``page`` None: the first factor's form says why) or holds it as a pending sign-in
(``services.pending_logins``) while the browser completes the stage on its ``page``; that
page's flow continues with the stages after it. A second factor is one more stage here.
"""

from dataclasses import dataclass
from typing import Protocol

from flask import current_app

from .models import User
from .services import second_factor, trusted_browsers

#: Sign-ins through an outside provider: social login, SAML (and SAML from an IdP the host
#: says enforces multi-factor authentication).
PROVIDER_METHODS = frozenset({"social", "saml", "saml_mfa"})
#: First factors that are the second too: a passkey that verified its user, and an IdP the
#: host vouches asks for a second factor itself (GATEHOUSE_SAML_PROVIDERS "mfa_enforced").
BOTH_FACTORS = frozenset({"passkey", "saml_mfa"})


class Stage(Protocol):
    """One step between a proven identity and a session."""

    @property
    def key(self) -> str:
        """A name for the stage ("email_confirmation", "password_change", ...)."""

    @property
    def page(self) -> str | None:
        """The endpoint of the page that completes the stage, or None when it stops the
        sign-in."""

    def is_needed(self, user: User, method: str) -> bool:
        """Whether ``user``, who proved who they are by ``method`` ("password", "passkey",
        "social", "saml", "saml_mfa"),
        must pass this stage now."""


@dataclass(frozen=True)
class EmailConfirmation:
    """No sign-in before the address is confirmed (GATEHOUSE_EMAIL_CONFIRMATION "required"):
    the login page says so and offers a new link. A sign-in through a social-login provider
    always waits for it: the provider did not vouch for the address (it would be confirmed
    if it had), and the account must not open to whoever typed it there."""

    key: str = "email_confirmation"
    page: str | None = None

    def is_needed(self, user: User, method: str) -> bool:
        required = current_app.config["GATEHOUSE_EMAIL_CONFIRMATION"] == "required"
        return (required or method in PROVIDER_METHODS) and user.email_confirmed_at is None


@dataclass(frozen=True)
class PasswordChange:
    """An operator asked for a new password at the next sign-in
    (``flask gatehouse set-password --temporary``): choose it before a session starts."""

    key: str = "password_change"
    page: str | None = "gatehouse.login_new_password"

    def is_needed(self, user: User, method: str) -> bool:
        return user.password_change_required


@dataclass(frozen=True)
class TwoFactor:
    """The account has an authenticator app: a code from it (or a recovery code) before a
    session starts, unless the user trusted this browser at an earlier sign-in."""

    key: str = "two_factor"
    page: str | None = "gatehouse.login_two_factor"

    def is_needed(self, user: User, method: str) -> bool:
        if method in BOTH_FACTORS:
            return False
        return second_factor.is_enabled(user) and not trusted_browsers.vouches_for(user)


@dataclass(frozen=True)
class TwoFactorEnrolment:
    """GATEHOUSE_MFA_REQUIRED asks this user for a second factor they do not have: enrol one
    (or, within GATEHOUSE_MFA_GRACE of the first time they were asked, postpone it)."""

    key: str = "two_factor_enrolment"
    page: str | None = "gatehouse.login_two_factor_setup"

    def is_needed(self, user: User, method: str) -> bool:
        if method in BOTH_FACTORS:
            return False
        return second_factor.is_required(user) and not second_factor.is_enabled(user)


#: Every stage, in the order they run.
#: The second factor comes before the password change: nothing about the account changes until
#: the sign-in is proved in full.
STAGES: tuple[Stage, ...] = (
    EmailConfirmation(),
    TwoFactor(),
    TwoFactorEnrolment(),
    PasswordChange(),
)


def stopping_stage(user: User, *, method: str) -> Stage | None:
    """The first stage that stops ``user``'s sign-in outright (no page of its own), asking
    only those: a first factor checks them before it counts as passed, and the stages with
    pages are asked once, afterwards. The stopping stages run first in STAGES, so this is
    the stage ``next_stage`` would find when it stops."""
    return next(
        (stage for stage in STAGES if stage.page is None and stage.is_needed(user, method)),
        None,
    )


def next_stage(user: User, *, method: str, after: str | None = None) -> Stage | None:
    """The first stage ``user`` (proved by ``method``) still needs, looking only past the
    stage ``after``."""
    keys = [stage.key for stage in STAGES]
    start = keys.index(after) + 1 if after is not None else 0
    return next((stage for stage in STAGES[start:] if stage.is_needed(user, method)), None)


def page_of(key: str) -> str | None:
    """The endpoint of the page that completes the stage ``key``."""
    return next(stage.page for stage in STAGES if stage.key == key)
