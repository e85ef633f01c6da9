"""Checking a second-factor code, wherever one is asked for (signing in, re-authenticating,
resetting the password): a code from the authenticator app or a recovery code, under the
account's own lockout for codes.

One place, so the rules cannot differ between the three: wrong codes count towards
GATEHOUSE_TWO_FACTOR_LOCKOUT_LIMITS (only codes that were checked, and counted before the
check so parallel guesses cannot overrun it), the failure that locks the second step mails the
owner (their password was right, so it is time to change it), and a spent recovery code
mails a notice that warns when few remain.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from flask import current_app
from limits import parse_many
from sqlalchemy import exists, or_, select

from ..models import TotpFactor, User, WebAuthnCredential, utcnow
from . import audit, mail, passkeys, recovery_codes, throttle, totp
from .database import db

#: A recovery code's notice warns when this many or fewer are left.
RECOVERY_CODES_LOW = 3


PassedBy = Literal["authenticator app", "recovery code", "passkey"]


@dataclass(frozen=True)
class Check:
    """How a code ended: ``passed_by`` says which kind passed; ``retry_after`` (seconds) is
    set when the account's second step is locked and the code was not checked; neither for a
    wrong code."""

    passed_by: PassedBy | None = None
    retry_after: int | None = None


def is_enabled(user: User) -> bool:
    """Whether ``user`` has a second factor to ask for: an authenticator app, or a security
    key (a passkey signs in on its own and does not make the password ask for more). One
    query: every password sign-in asks it."""
    app = select(TotpFactor.id).where(
        TotpFactor.user_id == user.id, TotpFactor.confirmed_at.is_not(None)
    )
    key = select(WebAuthnCredential.id).where(
        WebAuthnCredential.user_id == user.id, WebAuthnCredential.kind == "security_key"
    )
    return bool(db().session.scalar(select(or_(exists(app), exists(key)))))


def is_required(user: User) -> bool:
    """Whether GATEHOUSE_MFA_REQUIRED asks ``user`` to have a second factor."""
    policy = current_app.config["GATEHOUSE_MFA_REQUIRED"]
    if callable(policy):
        return bool(policy(user))
    return bool(policy == "all")


def grace_ends(user: User) -> datetime:
    """Until when ``user`` may postpone a required enrolment: GATEHOUSE_MFA_GRACE after the
    first sign-in that asked (that sign-in's time is recorded now if this is it). Joins the
    current transaction."""
    if user.two_factor_asked_at is None:
        user.two_factor_asked_at = utcnow()
    ends: datetime = user.two_factor_asked_at + current_app.config["GATEHOUSE_MFA_GRACE"]
    return ends


def check(user: User, code: str, *, action: str, assertion: dict[str, Any] | None = None) -> Check:
    """Check ``code`` for ``user`` (spending it when right), or, when the browser answered a
    second-factor passkey request instead, its ``assertion`` (any of the account's passkeys
    or security keys); audit a wrong one as a failure of ``action``. Joins the current
    transaction; the caller commits."""
    with throttle.LoginAttempt(user.email, factor="code") as attempt:
        if attempt.retry_after is not None:
            audit.record(action, "blocked", user=user, detail="second step locked")
            return Check(retry_after=attempt.retry_after)
        passed_by = _spend(user, code, assertion)
        if passed_by is None:
            locked = attempt.failed()
            detail = "passkey refused" if assertion is not None else "wrong code"
            audit.record(action, "failure", user=user, detail=detail)
            if locked:
                audit.record("two_factor_locked", "success", user=user)
                mail.send(
                    "two_factor_locked",
                    to=user.email,
                    username=user.username,
                    locked_for=mail.duration(_longest_window()),
                    reset_link=mail.link("gatehouse.forgot_password"),
                )
            return Check()
        attempt.succeeded()
    if passed_by == "recovery code":
        remaining = recovery_codes.remaining(user)
        mail.send(
            "recovery_code_used",
            to=user.email,
            username=user.username,
            remaining=remaining,
            running_out=remaining <= RECOVERY_CODES_LOW,
            two_factor_link=mail.link("gatehouse.two_factor"),
            reset_link=mail.link("gatehouse.forgot_password"),
        )
    return Check(passed_by=passed_by)


def enable(user: User, code: str) -> list[str] | None:
    """Switch two-factor on with the first code from the app being enrolled: the new
    recovery codes (to show once), or None when the code is wrong or no enrolment is under
    way. Audited and mailed. Joins the current transaction."""
    record = totp.factor(user)
    if record is None or record.confirmed_at is not None:
        return None
    if not totp.verify(record, code, confirm=True):
        audit.record("two_factor_enabled", "failure", user=user, detail="wrong code")
        return None
    return new_recovery_codes(user, "two_factor_enabled")


def new_recovery_codes(user: User, event: str) -> list[str]:
    """A new set of recovery codes (voiding the old), the ``event`` audited and mailed.
    Joins the current transaction."""
    codes = recovery_codes.generate(user)
    audit.record(event, "success", user=user)
    notify(user, event)
    return codes


def notify(user: User, template: str) -> None:
    """Mail the owner a notice of a change to their second factor."""
    mail.send(
        template,
        to=user.email,
        username=user.username,
        reset_link=mail.link("gatehouse.forgot_password"),
    )


def _longest_window() -> timedelta:
    """How long a lock of the second step lasts at most: the longest window of its limits."""
    tiers = parse_many(current_app.config["GATEHOUSE_TWO_FACTOR_LOCKOUT_LIMITS"])
    return timedelta(seconds=max(tier.get_expiry() for tier in tiers))


def _spend(user: User, code: str, assertion: dict[str, Any] | None) -> PassedBy | None:
    if assertion is not None:
        try:
            passkeys.authenticate(assertion, "second_factor", user)
        except passkeys.RefusedError:
            return None
        return "passkey"
    record = totp.factor(user)
    if record is not None and record.confirmed_at is not None and totp.verify(record, code):
        return "authenticator app"
    if recovery_codes.use(user, code):
        return "recovery code"
    return None
