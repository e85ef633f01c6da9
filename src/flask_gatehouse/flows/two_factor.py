"""Two-factor authentication on the signed-in owner's account: enrol an authenticator app,
switch it off, make new recovery codes. Every change is audited and mailed to the owner.

Signing in with a code is the sign-in flow's stage (``signin.pass_two_factor``).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ..models import TrustedBrowser, User
from ..services import audit, passkeys, recovery_codes, second_factor, totp, trusted_browsers
from ..services.transaction import commit


@dataclass(frozen=True)
class Status:
    """What the two-factor page and the account page show."""

    enabled: bool
    enabled_at: datetime | None
    unused_recovery_codes: int
    #: GATEHOUSE_MFA_REQUIRED asks this user for a second factor (it cannot be switched off).
    required: bool
    trusted_browsers: list[TrustedBrowser]


def status(user: User) -> Status:
    record = totp.factor(user)
    enabled_at = record.confirmed_at if record is not None else None
    any_factor = second_factor.is_enabled(user)
    return Status(
        enabled=enabled_at is not None,
        enabled_at=enabled_at,
        unused_recovery_codes=recovery_codes.remaining(user) if any_factor else 0,
        required=second_factor.is_required(user),
        trusted_browsers=trusted_browsers.active_for(user) if any_factor else [],
    )


def start_enrolment(user: User) -> totp.Enrolment:
    """A fresh secret for the owner to add to an app (two-factor must be off)."""
    enrolment = totp.enrolment(totp.start_enrolment(user), user.email)
    commit()
    return enrolment


def pending_enrolment(user: User) -> totp.Enrolment | None:
    """The enrolment under way, to show again beside a refused code."""
    record = totp.factor(user)
    if record is None or record.confirmed_at is not None:
        return None
    return totp.enrolment(record, user.email)


def confirm_enrolment(user: User, code: str) -> list[str] | None:
    """Switch two-factor on with the first code from the app: the new recovery codes (to
    show once), or None when the code is wrong or no enrolment is under way."""
    codes = second_factor.enable(user, code)
    commit()
    return codes


def disable(user: User) -> Literal["off", "was_off", "required"]:
    """Remove the authenticator app, the recovery codes and the trusted browsers: "off", or
    "was_off" when two-factor was off, or "required" (nothing changes) while
    GATEHOUSE_MFA_REQUIRED asks this user for a second factor."""
    if second_factor.is_required(user) and second_factor.is_enabled(user):
        return "required"
    enabled = second_factor.is_enabled(user)
    totp.remove(user)
    passkeys.remove_all(user, kind="security_key")
    recovery_codes.remove(user)
    trusted_browsers.revoke_all(user)
    if enabled:
        audit.record("two_factor_disabled", "success", user=user)
        second_factor.notify(user, "two_factor_disabled")
    commit()
    return "off" if enabled else "was_off"


def regenerate_recovery_codes(user: User) -> list[str] | None:
    """A new set of recovery codes voiding the old one (to show once); None when two-factor
    is off."""
    if not second_factor.is_enabled(user):
        return None
    codes = second_factor.new_recovery_codes(user, "recovery_codes_regenerated")
    commit()
    return codes


def forget_browser(user: User, browser_id: int) -> bool:
    """Stop trusting one of the owner's browsers (its next sign-in asks for a code); False
    when it is not theirs or already gone."""
    revoked = trusted_browsers.revoke(user, browser_id)
    if revoked:
        detail = f"browser {browser_id}"
        audit.record("trusted_browser_revoked", "success", user=user, detail=detail)
    commit()
    return revoked
