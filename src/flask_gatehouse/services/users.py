"""Accounts: find, create, check a password, store a new one, (de)activate, delete.

Every function joins the caller's transaction (the flow commits). Addresses arrive already
normalised (``identity.normalize_email``, once, at the form or the CLI's argument).
"""

from dataclasses import dataclass

from sqlalchemy import delete as delete_rows
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..models import User, utcnow
from . import audit, mail, sessions, throttle, tokens, trusted_browsers
from .database import db
from .passwords import hash_password, password_problems, verify_password


def find_by_email(email: str | None) -> User | None:
    """The account with this normalised address (None finds nothing)."""
    if email is None:
        return None
    return db().session.scalar(select(User).where(User.email == email))


def register(
    *, email: str, username: str, password: str | None, confirmed: bool = False
) -> User | None:
    """Add an account; None when the address is taken. ``password`` None makes an account
    that signs in with a passkey (or a password set later through a reset).

    ``confirmed`` marks the address as proven (an operator vouches for it) instead of
    waiting for the confirmation link. The password is hashed before the insert, so a taken
    address costs the same time as a new one, and the database's unique constraint (not a
    prior SELECT) decides races between parallel sign-ups: the insert is flushed inside a
    savepoint, so a refusal leaves the rest of the transaction intact.
    """
    user = User(
        email=email,
        username=username,
        password_hash=hash_password(password) if password is not None else None,
        email_confirmed_at=utcnow() if confirmed else None,
    )
    session = db().session
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        return None
    return user


def authenticate(email: str | None, password: str) -> User | None:
    """The active user these credentials belong to, or None.

    Unknown addresses and accounts without a usable password still run one hash verify
    (``verify_password`` uses a dummy hash), so response time does not reveal them. A hash
    with outdated parameters or a legacy werkzeug hash is replaced on success; such a
    password was never checked against today's policy (the tutorial's had none), so when it
    breaks it the owner must choose a new one at this sign-in (the password-change stage).
    """
    user = find_by_email(email)
    matches, new_hash = verify_password(user.password_hash if user else None, password)
    if user is None or not matches or not user.active:
        return None
    if new_hash is not None:
        user.password_hash = new_hash
        if password_problems(password, email=user.email, username=user.username):
            user.password_change_required = True
    return user


@dataclass(frozen=True)
class PasswordCheck:
    """A signed-in user's password asked again: right or wrong, or refused unchecked while
    the account is locked (``retry_after`` seconds to wait)."""

    ok: bool
    retry_after: int | None = None


def check_password(user: User, password: str, *, action: str) -> PasswordCheck:
    """Check the password before a sensitive ``action`` (the kind its audit events get).

    The attempt takes its place in the account's login lockout before the hash is checked,
    so guessing through these forms is throttled exactly like guessing at the login page.
    """
    with throttle.LoginAttempt(user.email) as attempt:
        if attempt.retry_after is not None:
            if throttle.first_refusal(user.email):
                audit.record(action, "blocked", user=user, detail="locked out")
            return PasswordCheck(False, retry_after=attempt.retry_after)
        matches, new_hash = verify_password(user.password_hash, password)
        if not matches:
            attempt.failed()
            audit.record(action, "failure", user=user, detail="wrong password")
            return PasswordCheck(False)
        attempt.succeeded()
    if new_hash is not None:
        user.password_hash = new_hash
    return PasswordCheck(True)


def set_password(user: User, password_hash: str, *, event: str = "password_changed") -> None:
    """Store a new password (hashed by the caller with ``passwords.hash_password`` before
    its transaction takes any lock), void outstanding reset links, end every session, stop
    trusting every browser for two-factor, lift any lockout of the account (passwords and
    codes) and any required change, and tell the owner by email.
    ``event`` is the one audit event this records (a reset link's use: "password_reset")."""
    user.password_hash = password_hash
    user.password_change_required = False
    tokens.void(user, "reset")
    sessions.revoke_all(user)
    trusted_browsers.revoke_all(user)
    throttle.clear_lockout(user.email)
    throttle.clear_lockout(user.email, factor="code")
    audit.record(event, "success", user=user)
    mail.send(
        "password_changed",
        user.email,
        username=user.username,
        reset_link=mail.link("gatehouse.forgot_password"),
    )


def set_active(user: User, active: bool) -> None:
    """Activate or deactivate; deactivation ends every session at once."""
    user.active = active
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
    session.expunge(user)
    audit.record("account_deleted", "success", identifier=email, detail=f"user {user_id}")
    mail.send("account_deleted", email, username=username)


def find_by_id(user_id: int) -> User | None:
    """The account with this id."""
    return db().session.get(User, user_id)
