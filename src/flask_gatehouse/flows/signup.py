"""Sign-up and email confirmation: the flows behind /register and /confirm.

A taken address gets the same answer as a new one and its owner is emailed instead, so the
sign-up page tells a stranger nothing about which addresses have accounts. Confirmation
links are single use and bound to the address they were sent to: a link sent before an
email change does not confirm the new address.
"""

from collections.abc import Callable
from typing import Any

from flask import current_app

from ..models import Token, User, utcnow
from ..services import audit, identities, mail, passkeys, throttle, tokens, users
from ..services.identity import TypedEmail
from ..services.transaction import commit


def sign_up(
    *,
    email: str,
    username: str,
    password: str,
    save_host_data: Callable[[User], None] | None = None,
) -> User | None:
    """Create the account and mail its confirmation link, or mail the owner of a taken
    address (then None). ``email`` and ``username`` are normalised; ``save_host_data`` adds
    the host's rows for a new account. One commit: the account, the host's rows, its link,
    its event and its mail exist together or not at all. Over the sign-up limits (per IP,
    per address, new or taken alike) it raises TooManyRequests before any of it."""
    throttle.count_accepted("signup", email)
    user = users.register(email=email, username=username, password=password)
    if user is None:
        _tell_the_owner(email)
        commit()
        return None
    if save_host_data is not None:
        save_host_data(user)
    audit.record("register", "success", user=user)
    if current_app.config["GATEHOUSE_EMAIL_CONFIRMATION"] != "off":
        send_confirmation(user)
    commit()
    return user


def _tell_the_owner(email: str) -> None:
    """A sign-up for a taken address: audit it and mail the owner, who may have forgotten
    the account (the page answers as for a new one)."""
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


def passkey_sign_up_options(email: str, username: str) -> dict[str, Any]:
    """Options to create the passkey of a new account (``email`` and ``username``
    normalised), the same whether or not the address is taken. Commits the challenge."""
    options = passkeys.sign_up_options(email, username)
    commit()
    return options


def sign_up_with_passkey(credential: dict[str, Any]) -> bool:
    """Create an account with no password around the passkey the browser made, and mail its
    confirmation link; for a taken address mail the owner instead (the passkey is dropped),
    with the same answer. False when no passkey sign-up is under way in this browser or its
    answer does not verify. Over the sign-up limits it raises TooManyRequests first."""
    pending = passkeys.pending_sign_up()
    if pending is None:
        return False
    email, username, handle = pending
    throttle.count_accepted("signup", email)
    try:
        record = passkeys.verify_new(credential, "sign_up", None, "passkey")
    except passkeys.RefusedError as refused:
        audit.record("register", "failure", identifier=email, detail=f"passkey: {refused}")
        commit()
        return False
    user = users.register(email=email, username=username, password=None)
    if user is None:
        _tell_the_owner(email)
        commit()
        return True
    user.webauthn_user_handle = handle
    passkeys.attach(user, record, "Passkey 1")
    audit.record("register", "success", user=user, detail="passkey")
    if current_app.config["GATEHOUSE_EMAIL_CONFIRMATION"] != "off":
        send_confirmation(user)
    commit()
    return True


def resend_confirmation(email: TypedEmail) -> None:
    """Mail a new link when the address has an unconfirmed account. Every request is
    audited (with the link, in one commit), so the work and the time it takes differ little
    whether or not a link goes out; the page answers the same either way. Over the limits
    (per IP, per address) it raises TooManyRequests first."""
    throttle.count_accepted("confirmation", email.key)
    user = users.find_by_email(email.canonical)
    if user is None or not user.active or user.email_confirmed_at is not None:
        detail = "no unconfirmed account" if user is None else "nothing to confirm"
        audit.record("confirmation_requested", "failure", identifier=email.canonical, detail=detail)
    else:
        audit.record("confirmation_requested", "success", user=user)
        send_confirmation(user)
    commit()


def remind_to_confirm(user: User) -> None:
    """The right password for an address still waiting for its confirmation: mail a fresh
    link, unless the address had its share of mail (GATEHOUSE_EMAIL_REQUEST_ADDRESS_LIMIT).
    Joins the sign-in's transaction."""
    if throttle.count_for_address("confirmation", user.email):
        # Earlier links keep working: the owner may well open the first mail after all.
        send_confirmation(user, void_earlier=False)


def send_confirmation(user: User, *, void_earlier: bool = True) -> None:
    """Issue ``user`` a new confirmation link (earlier ones stop working unless not
    ``void_earlier``) and mail it, worded for a moved account when it was imported from
    the tutorial, and for an account made by a social-login provider's sign-in: that mail
    names the provider account, since confirming hands the account to whoever controls it
    (someone else may have typed this address at a provider that does not verify it)."""
    if void_earlier:
        tokens.void(user, "confirm")
    token = tokens.issue("confirm", user)
    linked = [
        (identities.label(record.provider), record.email or record.subject)
        for record in identities.of_user(user)
    ]
    template = "confirm_email"
    if user.imported_at is not None:
        template = "confirm_moved_account"
    elif linked:
        template = "confirm_provider_account"
    mail.send(
        template,
        user.email,
        username=user.username,
        link=mail.link("gatehouse.confirm_email", token=token),
        valid_for=mail.duration(current_app.config["GATEHOUSE_CONFIRM_MAX_AGE"]),
        linked=linked,
    )


def confirmation_target(token: str) -> Token | None:
    """The live confirmation link behind ``token``, without using it (for its page)."""
    return tokens.peek("confirm", token)


def confirm_email(token: str) -> User | None:
    """Use a confirmation link; the confirmed user, or None when the link is not valid
    (unknown, expired, used, or sent to an address the account no longer has: such a link
    is spent all the same)."""
    found = tokens.consume("confirm", token)
    user = users.find_by_id(found.user_id) if found is not None else None
    if found is None or user is None or user.email != found.email:
        commit()
        return None
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    tokens.void(user, "confirm")  # any other link mailed for it is spent too
    audit.record("email_confirmed", "success", user=user)
    commit()
    return user
