"""Password recovery: the flows behind /forgot, /reset and the "this wasn't me" links.

A reset request answers the same whether or not the address has an account, does nearly the
same database work either way, and mails only the address stored on the account, never the
variant that was typed (Django CVE-2019-19844). A reset link is bound to the account's
address when it was sent: an email change since makes it void, and any password change
voids every outstanding one (``users.set_password``). A newer request does not void the
earlier links: each stays usable until it is used, expires or a password change ends it,
so mail arriving out of order cannot leave the owner with a dead link, and a stranger who
knows the address cannot keep killing the owner's link by asking for new ones.
"""

from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..models import Token, User
from ..services import (
    access_tokens,
    address_claim,
    audit,
    mail,
    passkeys,
    second_factor,
    sessions,
    throttle,
    tokens,
    trusted_browsers,
    users,
)
from ..services.database import db
from ..services.identity import TypedEmail
from ..services.passwords import hash_password
from ..services.transaction import commit


@dataclass(frozen=True)
class SecureLink:
    """What a "this wasn't me" link will do: ``restores`` is the address it puts back when
    an email change replaced it since the link was sent (None when nothing changed)."""

    user: User
    restores: str | None


@dataclass(frozen=True)
class Secured:
    """How securing an account ended. ``reset_sent`` is False only when the address the
    link was sent to could not be put back (another account took it meanwhile): the reset
    link then goes nowhere rather than to an address the link's holder never proved."""

    reset_sent: bool


def request_reset(email: TypedEmail) -> None:
    """Mail a reset link when the typed address belongs to an active account; otherwise
    only record the request. Both paths look the user up and record the event in one
    commit; storing the link is the only extra work, and the per-address rate limit
    leaves too few samples to measure it. Over the limits (per IP, per address) it raises
    TooManyRequests first."""
    throttle.count_accepted("reset", email.key)
    user = users.find_by_email(email.canonical)
    if user is None or not user.active:
        detail = "unknown address" if user is None else "inactive account"
        audit.record(
            "password_reset_requested", "failure", identifier=email.canonical, detail=detail
        )
    else:
        audit.record("password_reset_requested", "success", user=user)
        _send_reset_link(user)
    commit()


def _send_reset_link(user: User) -> None:
    """Mail ``user`` a new reset link at the address stored on the account."""
    token = tokens.issue("reset", user)
    mail.send(
        "reset_password",
        user.email,
        username=user.username,
        link=mail.link("gatehouse.reset_password", token=token),
        valid_for=mail.duration(current_app.config["GATEHOUSE_RESET_MAX_AGE"]),
    )


def _holder(found: Token | None) -> User | None:
    """The active account a link belongs to (a deactivated one is the operator's to handle)."""
    user = users.find_by_id(found.user_id) if found is not None else None
    return user if user is not None and user.active else None


def reset_target(token: str) -> User | None:
    """The account a reset link would give a new password, without using the link; None
    when the link is unknown, expired, used, or sent to an address the account no longer has."""
    found = tokens.peek("reset", token)
    user = _holder(found)
    return user if found is not None and user is not None and user.email == found.email else None


@dataclass(frozen=True)
class Reset:
    """How using a reset link ended: ``user`` when the password was set; else ``code`` says
    why the second-factor code was refused (the link stays usable); neither when the link is
    not valid."""

    user: User | None = None
    code: second_factor.Check | None = None


def reset_password(
    token: str, password: str, code: str | None, assertion: dict[str, Any] | None = None
) -> Reset:
    """Use a reset link to set ``password`` (already checked against the policy), with a
    second-factor ``code`` when the account has two-factor: a mailbox alone must not be
    enough to take over such an account. A wrong code counts towards the account's lockout
    for codes and leaves the link usable.

    The password is hashed first, outside any lock; then spending the link (a DELETE that
    one request alone can make), the new password and its consequences are one commit, so
    of parallel requests exactly one gets through, and a failure leaves the link usable and
    the old password in place. The address counts as confirmed (the link proved the
    mailbox): an account someone pre-registered with the owner's address loses that
    person's password as it becomes usable. ``users.set_password`` ends every session,
    voids the other reset links, lifts the lockout, tells the owner and records the one
    ``password_reset`` event (the account's activity shows one row for one reset).
    """
    password_hash = hash_password(password)
    target = reset_target(token)
    if target is not None and second_factor.is_enabled(target):
        check = second_factor.check(
            target, code or "", action="password_reset", assertion=assertion
        )
        if check.passed_by is None:
            commit()
            return Reset(code=check)
    found = tokens.consume("reset", token)
    user = _holder(found)
    if found is None or user is None or user.email != found.email or user != target:
        commit()  # a link for an old address is spent all the same
        return Reset()
    if user.email_confirmed_at is None:
        address_claim.claim(user, by="a password reset")
    users.set_password(user, password_hash, event="password_reset")
    commit()
    return Reset(user=user)


def second_factor_options(token: str) -> dict[str, Any] | None:
    """Options for a passkey or security key of the account a reset link belongs to, to
    stand for the second factor on the reset page; None when the link is not valid or the
    account has none."""
    user = reset_target(token)
    if user is None or passkeys.count(user) == 0:
        return None
    options = passkeys.authentication_options("second_factor", user)
    commit()
    return options


def secure_target(token: str) -> SecureLink | None:
    """What the "this wasn't me" link ``token`` would do, without using it."""
    found = tokens.peek("secure", token)
    user = _holder(found)
    if found is None or user is None:
        return None
    return SecureLink(user, found.email if found.email != user.email else None)


def secure_account(token: str) -> Secured | None:
    """Use a "this wasn't me" link; None when it is not valid.

    Puts back the address the link was sent to when an email change replaced it (unless
    another account has it now), cancels pending email changes, clears the password, ends
    every session (the one a new-device notice named among them), and mails a reset link to
    the address the link was sent to, all in one commit.
    """
    found = tokens.consume("secure", token)
    user = _holder(found)
    if found is None or user is None:
        commit()
        return None
    replaced = found.email != user.email
    restored = replaced and _restore_address(user, found.email)
    tokens.void(user, "change_email")
    # Whoever was in knows the password: it stops working now, not once the owner resets it.
    user.password_hash = None
    sessions.revoke_all(user)
    trusted_browsers.revoke_all(user)
    # Whoever was in may have made tokens: they stop too (a reset alone keeps them).
    access_tokens.revoke_all(user)
    if not replaced:
        audit.record("account_secured", "success", user=user)
    elif restored:
        audit.record("account_secured", "success", user=user, detail="old address restored")
    else:
        audit.record("account_secured", "failure", user=user, detail="old address taken")
    proven = not replaced or restored
    if proven:
        _send_reset_link(user)
    commit()
    return Secured(reset_sent=proven)


def _restore_address(user: User, email: str) -> bool:
    """Give ``user`` back ``email``; False when another account holds it. The database's
    unique constraint decides (no race between a check and the write), inside a savepoint
    so the rest of the transaction survives a refusal."""
    try:
        with db().session.begin_nested():
            user.email = email
    except IntegrityError:
        return False
    return True
