"""The operator's actions (``flask gatehouse ...``): accounts created, changed or signed out
from the shell. Each commits once, with its audit event and mail."""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .. import state
from ..models import OutboxMessage, User
from ..services import (
    audit,
    mail,
    outbox,
    recovery_codes,
    sessions,
    totp,
    trusted_browsers,
    users,
)
from ..services.passwords import hash_password
from ..services.transaction import commit
from ..services.tutorial import ImportReport, import_tutorial_db


def create_user(*, email: str, username: str, password: str) -> User | None:
    """An active account whose address counts as confirmed (the operator vouches for it);
    None when the address is taken. ``email`` and ``username`` are normalised."""
    user = users.register(email=email, username=username, password=password, confirmed=True)
    if user is not None:
        audit.record("register", "success", user=user, detail="by CLI")
    commit()
    return user


def set_password(user: User, password: str, *, temporary: bool) -> None:
    """A new password (checked against the policy by the caller); every session ends and
    the owner is told. ``temporary``: the next sign-in must choose another."""
    users.set_password(user, hash_password(password))
    user.password_change_required = temporary
    commit()


def set_active(user: User, active: bool) -> None:
    users.set_active(user, active)
    commit()


def revoke_sessions(user: User) -> int:
    count = sessions.revoke_all(user)
    audit.record("session_revoked", "success", user=user, detail=f"{count} sessions, by CLI")
    commit()
    return count


def reset_two_factor(user: User) -> bool:
    """Switch two-factor off for an owner who lost both the app and the recovery codes;
    False (no event, no mail) when it was off. The owner is mailed: an operator talked
    into this by someone else leaves the account guarded by the password alone."""
    enabled = totp.remove(user)
    recovery_codes.remove(user)
    # So that none skips the code once two-factor is back on.
    trusted_browsers.revoke_all(user)
    if enabled:
        audit.record("two_factor_reset", "success", user=user, detail="by operator")
        mail.send(
            "two_factor_reset",
            to=user.email,
            username=user.username,
            reset_link=mail.link("gatehouse.forgot_password"),
        )
    commit()
    return enabled


def import_tutorial(path: Path, *, trust_emails: bool) -> ImportReport:
    """Every usable user of a tutorial ``data.db``, in one transaction."""
    report = import_tutorial_db(path, trust_emails=trust_emails)
    commit()
    return report


@dataclass(frozen=True)
class MailQueue:
    """The outbox as ``flask gatehouse mail`` shows it."""

    counts: dict[str, int]
    unfinished: list[OutboxMessage]


def mail_queue() -> MailQueue:
    return MailQueue(outbox.counts(), outbox.unfinished())


def retry_failed_mail() -> int:
    """Queue every message given up again; how many."""
    requeued = outbox.requeue_failed()
    commit()
    return requeued


def send_due_mail() -> Counter[str]:
    """Send the due messages from this process now (the worker commits each result)."""
    return state.get().outbox.deliver_due()
