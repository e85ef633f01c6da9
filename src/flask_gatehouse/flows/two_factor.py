"""Two-factor authentication on the signed-in owner's account: enrol an authenticator app,
switch it off, make new recovery codes. Every change is audited and mailed to the owner.

Signing in with a code is the sign-in flow's stage (``signin.pass_two_factor``).
"""

from dataclasses import dataclass
from datetime import datetime

from ..models import User
from ..services import audit, mail, recovery_codes, totp
from ..services.transaction import commit


@dataclass(frozen=True)
class Status:
    """What the two-factor page and the account page show."""

    enabled: bool
    enabled_at: datetime | None
    unused_recovery_codes: int


def status(user: User) -> Status:
    record = totp.factor(user)
    enabled_at = record.confirmed_at if record is not None else None
    unused = recovery_codes.remaining(user) if enabled_at is not None else 0
    return Status(
        enabled=enabled_at is not None, enabled_at=enabled_at, unused_recovery_codes=unused
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
    record = totp.factor(user)
    if record is None or record.confirmed_at is not None:
        return None
    if not totp.verify(record, code, confirm=True):
        audit.record("two_factor_enabled", "failure", user=user, detail="wrong code")
        commit()
        return None
    return _new_recovery_codes(user, "two_factor_enabled")


def disable(user: User) -> bool:
    """Remove the authenticator app and the recovery codes; False when two-factor was off."""
    enabled = totp.remove(user)
    recovery_codes.remove(user)
    if enabled:
        audit.record("two_factor_disabled", "success", user=user)
        _notify(user, "two_factor_disabled")
    commit()
    return enabled


def regenerate_recovery_codes(user: User) -> list[str] | None:
    """A new set of recovery codes voiding the old one (to show once); None when two-factor
    is off."""
    if not totp.is_enabled(user):
        return None
    return _new_recovery_codes(user, "recovery_codes_regenerated")


def _new_recovery_codes(user: User, event: str) -> list[str]:
    """A new set of codes (voiding the old), the ``event`` audited and mailed; commits."""
    codes = recovery_codes.generate(user)
    audit.record(event, "success", user=user)
    _notify(user, event)
    commit()
    return codes


def _notify(user: User, template: str) -> None:
    mail.send(
        template,
        to=user.email,
        username=user.username,
        reset_link=mail.link("gatehouse.forgot_password"),
    )
