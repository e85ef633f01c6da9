"""Account operations shared by the views and the CLI: register, authenticate, re-check a
password, (de)activate, delete."""

from dataclasses import dataclass

from sqlalchemy import delete as delete_rows
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import audit, mail, sessions, throttle, tokens
from .database import db
from .identity import InvalidIdentity, normalize_email
from ..models import User, utcnow
from .passwords import hash_password, verify_password


def find_by_email(raw_email: str) -> User | None:
    """The account for an address as typed, matched through ``normalize_email``."""
    try:
        email = normalize_email(raw_email)
    except InvalidIdentity:
        return None
    return db().session.scalar(select(User).where(User.email == email))


def register(*, email: str, username: str, password: str, confirmed: bool = False) -> User | None:
    """Create an account; None when the address is taken.

    ``email`` and ``username`` must already be normalised; ``confirmed`` marks the address
    as proven (an operator vouches for it) instead of waiting for the confirmation link.
    The password is hashed before the insert, so a taken address costs the same time as a
    new one, and the database's unique constraint (not a prior SELECT) decides races
    between parallel sign-ups.
    """
    user = User(
        email=email,
        username=username,
        password_hash=hash_password(password),
        email_confirmed_at=utcnow() if confirmed else None,
    )
    session = db().session
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return None
    return user


def authenticate(raw_email: str, password: str) -> User | None:
    """The active user these credentials belong to, or None.

    Unknown addresses and accounts without a usable password still run one hash verify
    (``verify_password`` uses a dummy hash), so response time does not reveal them. A hash
    with outdated parameters or a legacy werkzeug hash is replaced on success.
    """
    user = find_by_email(raw_email)
    matches, new_hash = verify_password(user.password_hash if user else None, password)
    if user is None or not matches or not user.active:
        return None
    if new_hash is not None:
        user.password_hash = new_hash
        db().session.commit()
    return user


@dataclass(frozen=True)
class PasswordCheck:
    """A signed-in user's password asked again: right or wrong, or refused unchecked while
    the account is locked (``retry_after`` seconds to wait)."""

    ok: bool
    retry_after: int | None = None


def check_password(user: User, password: str, *, action: str) -> PasswordCheck:
    """Check the password before a sensitive ``action`` (the kind its audit events get).

    The attempt is counted against the account's login lockout before the hash is checked,
    so guessing through these forms is throttled exactly like guessing at the login page.
    """
    wait = throttle.reserve_login_attempt(user.email)
    if wait is not None:
        if throttle.first_refusal(user.email):
            audit.record(action, "blocked", user=user, detail="locked out")
        return PasswordCheck(False, retry_after=wait)
    matches, new_hash = verify_password(user.password_hash, password)
    if not matches:
        audit.record(action, "failure", user=user, detail="wrong password")
        return PasswordCheck(False)
    throttle.clear_lockout(user.email)
    if new_hash is not None:
        user.password_hash = new_hash
        db().session.commit()
    return PasswordCheck(True)


def set_password(user: User, password: str) -> None:
    """Store a new password, void outstanding reset links, end every session, lift any
    lockout of the account, and tell the owner by email."""
    user.password_hash = hash_password(password)
    tokens.void(user, "reset")
    db().session.commit()
    sessions.revoke_all(user)
    throttle.clear_lockout(user.email)
    audit.record("password_changed", "success", user=user)
    mail.send(
        "password_changed",
        user.email,
        username=user.username,
        reset_link=mail.link("gatehouse.forgot_password"),
    )


def set_active(user: User, active: bool) -> None:
    """Activate or deactivate; deactivation ends every session at once."""
    user.active = active
    db().session.commit()
    if not active:
        sessions.revoke_all(user)
    audit.record("activated" if active else "deactivated", "success", user=user)


def delete(user: User) -> None:
    """Delete the account and say goodbye by email.

    One DELETE: the database removes its sessions and links with it (ON DELETE CASCADE) and
    keeps its security events, unlinked (SET NULL); the ``account_deleted`` event names the
    address and the former id, so the record outlives the account.
    """
    user_id, email, username = user.id, user.email, user.username
    session = db().session
    session.execute(delete_rows(User).where(User.id == user_id))
    session.commit()
    audit.record("account_deleted", "success", identifier=email, detail=f"user {user_id}")
    mail.send("account_deleted", email, username=username)
