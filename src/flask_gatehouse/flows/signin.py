"""Signing in and out behind the views: lockout, password check, audit, sessions."""

from dataclasses import dataclass
from typing import Any

from flask import current_app, session
from flask_login import logout_user

from ..services import audit, mail, sessions, throttle, tokens, users
from . import signup
from ..models import User, UserSession


@dataclass(frozen=True)
class SignIn:
    """How a login attempt ended: a user, or None and, when locked, seconds to wait, or
    whether the right password was refused because the address is not confirmed yet."""

    user: User | None
    retry_after: int | None = None
    unconfirmed: bool = False


def sign_in(raw_email: str, password: str, *, remember: bool) -> SignIn:
    """Try the credentials and, on success, open a session for this browser.

    The attempt is counted against the account before the password is checked, so a locked
    account costs no hashing and parallel guesses cannot overrun the limit. Attempts on a
    locked account are audited once per five minutes, not once each, so an attack on one
    cannot turn into a flood of database writes.
    """
    wait = throttle.reserve_login_attempt(raw_email)
    if wait is not None:
        if throttle.first_refusal(raw_email):
            audit.record(
                "login", "blocked", identifier=audit.typed_address(raw_email), detail="locked out"
            )
        return SignIn(None, retry_after=wait)
    user = users.authenticate(raw_email, password)
    if user is None:
        audit.record("login", "failure", identifier=audit.typed_address(raw_email))
        return SignIn(None)
    throttle.clear_lockout(raw_email)
    if registration.needs_confirmation(user):
        audit.record("login", "failure", user=user, detail="email not confirmed")
        return SignIn(None, unconfirmed=True)
    new_device = not throttle.is_known_device(raw_email)
    throttle.remember_device(raw_email)
    # A fresh Flask session (and so a fresh CSRF token) for the signed-in browser.
    session.clear()
    record = sessions.start(user, remember=remember)
    # Never on an account's first login: every browser is new then.
    notify = (
        new_device
        and user.last_login_at is not None
        and current_app.config["GATEHOUSE_NOTIFY_NEW_DEVICE"]
    )
    user.last_login_at = record.created_at
    notice = _new_device_notice(user, record) if notify else None
    audit.record("login", "success", user=user)  # commits the session, event and notice link
    if notice is not None:
        mail.send("new_device", **notice)
    return SignIn(user)


def _new_device_notice(user: User, record: UserSession) -> dict[str, Any]:
    """The "new sign-in" mail for a browser never used on the account (recipient and
    context), with a link that signs that session out and starts a password reset if it was
    not the owner. The link joins the transaction."""
    token = tokens.issue("secure", user, session_id=record.id)
    return {
        "to": user.email,
        "username": user.username,
        "device": record.device,
        "ip": record.ip,
        "time": record.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        "secure_link": mail.link("gatehouse.secure_account", token=token),
    }


def sign_out(user: User) -> None:
    """End this browser's session: the record, the cookie, Flask-Login's state and Flask's
    session (with its CSRF token), and audit it."""
    audit.record("logout", "success", user=user)
    sessions.end_current()
    logout_user()
    session.clear()
