"""Account operations shared by the views and the CLI: register, authenticate, (de)activate."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import audit, mail, sessions, throttle, tokens
from .database import db
from .identity import InvalidIdentity, normalize_email
from .models import User, utcnow
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
