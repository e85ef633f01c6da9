"""Changing an account's email address: prove the new address, tell the old one.

The address changes only when the link mailed to the new address is used, so a typo or a
hijacked session cannot move the account to an address its owner does not read. The old
address hears of the request and of the change, each time with a "this wasn't me" link that
puts it back (``/secure/<token>``).

A change link is valid only while the account still has the address it was requested from.
Nothing extra is stored for that: every change of address voids the account's outstanding
change links (here, and in the "this wasn't me" flow). A new address that belongs to another
account gets the same answer as a free one, so the form tells nobody who has an account; the
database's unique constraint refuses it when the link is used, and so decides races too.
"""

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..models import Token, User, utcnow
from ..services import audit, mail, tokens, users
from ..services.database import db
from ..services.transaction import commit


class AddressTaken(Exception):  # noqa: N818 - it names the situation, like InvalidIdentity
    """The new address belongs to another account (which may have signed up meanwhile)."""


def request_change(user: User, current_password: str, new_email: str) -> users.PasswordCheck:
    """After the current password, mail a link to ``new_email`` (normalised) and tell the
    current address, with a link that cancels the change. A pending earlier request stops
    working."""
    check = users.check_password(user, current_password, action="email_change_requested")
    if check.ok:
        old_email = user.email
        tokens.void(user, "change_email")
        confirm_token = tokens.issue("change_email", user, email=new_email)
        secure_token = tokens.issue("secure", user)
        audit.record("email_change_requested", "success", user=user, detail=f"to {new_email}"[:255])
        valid_for = mail.duration(current_app.config["GATEHOUSE_CONFIRM_MAX_AGE"])
        mail.send(
            "email_change_confirm",
            new_email,
            username=user.username,
            link=mail.link("gatehouse.confirm_email_change", token=confirm_token),
            valid_for=valid_for,
        )
        mail.send(
            "email_change_requested",
            old_email,
            username=user.username,
            new_email=new_email,
            secure_link=mail.link("gatehouse.secure_account", token=secure_token),
            valid_for=valid_for,
        )
    commit()
    return check


def change_target(token: str) -> Token | None:
    """The live change link behind ``token``, without using it (for its page)."""
    return tokens.peek("change_email", token)


def confirm(token: str) -> User | None:
    """Use a change link: the account, now with its new address, or None when the link is
    not valid (unknown, expired, used, or requested before the address last changed).

    Raises ``AddressTaken`` when another account has the address; the link is spent then too.
    """
    found = tokens.consume("change_email", token)
    session = db().session
    user = users.find_by_id(found.user_id) if found is not None else None
    if found is None or user is None or not user.active:
        commit()
        return None
    old_email = user.email
    try:
        # A savepoint, so that a refusal keeps the link spent.
        with session.begin_nested():
            user.email = found.email
    except IntegrityError:
        audit.record("email_changed", "failure", user=user, detail="address taken")
        commit()
        raise AddressTaken from None
    user.email_confirmed_at = utcnow()
    # Links mailed to the old address (a password reset above all) must not outlive it.
    tokens.void(user, "reset", "change_email")
    secure_token = tokens.issue("secure", user, email=old_email)
    audit.record("email_changed", "success", user=user, detail=f"from {old_email}"[:255])
    mail.send(
        "email_changed",
        old_email,
        username=user.username,
        new_email=user.email,
        secure_link=mail.link("gatehouse.secure_account", token=secure_token),
        valid_for=mail.duration(current_app.config["GATEHOUSE_SECURE_ACCOUNT_MAX_AGE"]),
    )
    commit()
    return user


def pending(user: User) -> str | None:
    """The new address waiting for its link to be used, if any (for the account page)."""
    email: str | None = db().session.scalar(
        select(Token.email).where(
            Token.user_id == user.id,
            Token.purpose == "change_email",
            Token.expires_at > utcnow(),
        )
    )
    return email
