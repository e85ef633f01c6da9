"""Sign-up and email confirmation: the flows behind /register and /confirm.

A taken address gets the same answer as a new one and its owner is emailed instead, so the
sign-up page tells a stranger nothing about which addresses have accounts. Confirmation
links are single use and bound to the address they were sent to: a link sent before an
email change does not confirm the new address.
"""

from typing import Any

from flask import current_app

from ..services import audit, mail, tokens, users
from ..services.database import db
from ..models import User, utcnow


def sign_up(*, email: str, username: str, password: str) -> None:
    """Create the account and mail its confirmation link, or mail the owner of a taken
    address. ``email`` and ``username`` must already be normalised."""
    user = users.register(email=email, username=username, password=password)
    if user is None:
        owner = users.find_by_email(email)
        audit.record("register", "failure", identifier=email, detail="email taken")
        if owner is not None:
            mail.send(
                "already_registered",
                owner.email,
                username=owner.username,
                login_link=mail.link("gatehouse.login"),
                reset_link=mail.link("gatehouse.forgot_password"),
            )
        return
    confirming = current_app.config["GATEHOUSE_EMAIL_CONFIRMATION"] != "off"
    message = _confirmation_message(user) if confirming else None
    audit.record("register", "success", user=user)  # commits the link too
    if message is not None:
        mail.send("confirm_email", **message)


def resend_confirmation(raw_email: str) -> None:
    """Mail a new link when the address has an unconfirmed account. Every request is
    audited (with the link, in one commit), so the work and the time it takes differ little
    whether or not a link goes out; the page answers the same either way."""
    user = users.find_by_email(raw_email)
    if user is None or not user.active or user.email_confirmed_at is not None:
        detail = "no unconfirmed account" if user is None else "nothing to confirm"
        audit.record(
            "confirmation_requested",
            "failure",
            identifier=audit.typed_address(raw_email),
            detail=detail,
        )
        return
    message = _confirmation_message(user)
    audit.record("confirmation_requested", "success", user=user)  # commits the link too
    mail.send("confirm_email", **message)


def _confirmation_message(user: User) -> dict[str, Any]:
    """Issue ``user`` a new confirmation link (earlier ones stop working; joins the
    transaction) and return the mail's recipient and context, read before the commit
    expires ``user``."""
    tokens.void(user, "confirm")
    token = tokens.issue("confirm", user)
    return {
        "to": user.email,
        "username": user.username,
        "link": mail.link("gatehouse.confirm_email", token=token),
        "valid_for": mail.duration(current_app.config["GATEHOUSE_CONFIRM_MAX_AGE"]),
    }


def confirm(token: str) -> User | None:
    """Use a confirmation link; the confirmed user, or None when the link is not valid
    (unknown, expired, used, or sent to an address the account no longer has)."""
    found = tokens.consume("confirm", token)
    session = db().session
    user = session.get(User, found.user_id) if found is not None else None
    if found is None or user is None or user.email != found.email:
        session.commit()  # a link for an old address is spent all the same
        return None
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    session.commit()
    audit.record("email_confirmed", "success", user=user)
    return user


def needs_confirmation(user: User) -> bool:
    """True when ``user`` may not sign in until the address is confirmed."""
    required = current_app.config["GATEHOUSE_EMAIL_CONFIRMATION"] == "required"
    return required and user.email_confirmed_at is None
