"""The signed-in owner's account: its overview, password, sessions, deletion and data.

Every change that needs the password counts the attempt against the account's lockout
(``users.check_password``) before hashing anything.
"""

from dataclasses import dataclass
from typing import Any, Literal

from flask import session
from flask_login import logout_user

from ..models import Event, SocialIdentity, User, UserSession
from ..services import audit, identities, passkeys, sessions, users
from ..services.export import account_data
from ..services.passwords import hash_password
from ..services.transaction import commit
from ..services.users import PasswordCheck
from . import email_change, two_factor
from .signin import sign_out

__all__ = [
    "Overview",
    "PasswordCheck",
    "SignedInDevices",
    "change_password",
    "delete_account",
    "export_data",
    "overview",
    "revoke_other_sessions",
    "revoke_session",
    "signed_in_devices",
]


@dataclass(frozen=True)
class Overview:
    """What the account page shows."""

    pending_email: str | None
    sessions: list[UserSession]
    current_session_id: int | None
    events: list[Event]
    two_factor: two_factor.Status
    #: GATEHOUSE_PASSKEYS is not "off", and how many the account has.
    passkeys_enabled: bool
    passkey_count: int
    #: The accounts at social-login providers linked to this one.
    connections: list[SocialIdentity]


@dataclass(frozen=True)
class SignedInDevices:
    """The account's live sessions, most recently used first, and which one is this
    request's."""

    sessions: list[UserSession]
    current_session_id: int | None


def signed_in_devices(user: User) -> SignedInDevices:
    return SignedInDevices(sessions.active_for(user), sessions.current_id())


def overview(user: User) -> Overview:
    enabled = passkeys.mode() != "off"
    return Overview(
        two_factor=two_factor.status(user),
        passkeys_enabled=enabled,
        passkey_count=passkeys.count(user) if enabled else 0,
        pending_email=email_change.pending(user),
        sessions=sessions.active_for(user),
        current_session_id=sessions.current_id(),
        events=audit.recent(user=user, limit=20),
        connections=identities.of_user(user),
    )


def change_password(user: User, current_password: str, new_password: str) -> PasswordCheck:
    """After the current password, store the new one: every session ends, remembered ones
    too, and this browser gets a fresh one (with a fresh Flask session and CSRF token). An
    account without a password (passkeys only) sets its first one: the page needs a recent
    re-authentication, which was a passkey."""
    check = _current_password(user, current_password, action="password_changed")
    if check.ok:
        users.set_password(user, hash_password(new_password))
        session.clear()
        sessions.start(user, remember=False)
    commit()
    return check


def _current_password(user: User, password: str, *, action: str) -> PasswordCheck:
    """The password asked again on a page behind a recent re-authentication; an account
    without one has nothing to ask (its re-authentication was a passkey)."""
    if user.password_hash is None:
        return PasswordCheck(True)
    return users.check_password(user, password, action=action)


def delete_account(user: User, password: str) -> PasswordCheck:
    """After the password (if the account has one), delete the account for good and sign
    this browser out."""
    check = _current_password(user, password, action="account_deleted")
    if check.ok:
        users.delete(user)
        # The session row goes with the account; forget the cookie.
        sessions.end_current()
    commit()
    if check.ok:
        logout_user()
        session.clear()
    return check


def export_data(user: User) -> dict[str, Any]:
    """Everything stored about the account (no password or token hashes), audited."""
    data = account_data(user)
    audit.record("data_exported", "success", user=user)
    commit()
    return data


def revoke_session(user: User, session_id: int) -> Literal["this", "revoked", "gone"]:
    """Sign one of the owner's sessions out: "this" when it was the current browser's (signed
    out like a logout), "gone" when it had already ended or is not theirs."""
    if session_id == sessions.current_id():
        sign_out(user)
        return "this"
    if not sessions.revoke(user, session_id):
        commit()
        return "gone"
    audit.record("session_revoked", "success", user=user, detail=f"session {session_id}")
    commit()
    return "revoked"


def revoke_other_sessions(user: User) -> int:
    """Sign out every session of the owner but this browser's; how many ended."""
    count = sessions.revoke_all(user, keep=sessions.current_id())
    audit.record("session_revoked", "success", user=user, detail=f"{count} other sessions")
    commit()
    return count
