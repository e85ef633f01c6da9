"""The signed-in owner's account through the API: the twins of the account pages
(``views.settings``, ``views.profile``), with the same flows, limits and messages.

The changes behind a recent sign-in answer 401 without one: the client re-authenticates
(``auth/reauthenticate``) and sends the request again. A new password ends every other
session and starts a fresh one for this client: an app gets its new token in
``meta.session_token``, a browser a new cookie and CSRF token.
"""

from flask.typing import ResponseReturnValue

from .. import messages
from ..access import account_change_limits, login_required, recent_login_required, signed_in_user
from ..flows import account, email_change
from ..forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    DeleteAccountForm,
    LinkForm,
    locked_message,
)
from .guard import api_route, form
from .replies import invalid, locked, refusal, reply, timestamp

_INCORRECT = "Incorrect password."


def _refused(field: str, check: account.PasswordCheck) -> ResponseReturnValue:
    """A wrong password on ``field`` (400), or the account's lockout (429), as on the page."""
    if check.retry_after is not None:
        return locked(check.retry_after, locked_message(check.retry_after))
    return refusal(400, _INCORRECT, fields={field: _INCORRECT})


@api_route
@account_change_limits("password")
@recent_login_required
def change_password() -> ResponseReturnValue:
    """``{current_password, password}``; an account without a password (passkeys only)
    sends ``password`` alone."""
    user = signed_in_user()
    found = form(ChangePasswordForm, user)
    if not found.validate_on_submit():
        return invalid(found)
    current = found.current_password.data if "current_password" in found else ""
    check = account.change_password(user, current or "", found.password.data or "")
    if not check.ok:
        return _refused("current_password", check)
    return reply({"message": messages.PASSWORD_CHANGED})


@api_route
@account_change_limits("email")
@recent_login_required
def change_email() -> ResponseReturnValue:
    """Mail a link to the new address: the same answer when it has an account (its link
    will fail), so the form tells nobody who has one."""
    user = signed_in_user()
    found = form(ChangeEmailForm)
    if not found.validate_on_submit():
        return invalid(found)
    if found.clean_email == user.email:
        message = messages.SAME_EMAIL
        return refusal(400, message, fields={"email": message})
    check = email_change.request_change(user, found.current_password.data or "", found.clean_email)
    if not check.ok:
        return _refused("current_password", check)
    return reply({"message": messages.EMAIL_CHANGE_SENT}, 202)


@api_route
def confirm_email_change() -> ResponseReturnValue:
    """Use a change link's token. No sign-in needed: the link may be opened on another
    device than the one that asked."""
    found = form(LinkForm)
    if not found.validate_on_submit():
        return invalid(found)
    try:
        user = email_change.confirm(found.token.data or "")
    except email_change.AddressTaken:
        return refusal(
            400,
            "That address is already used by another account, so your email address was "
            "not changed.",
        )
    if user is None:
        return refusal(400, messages.link_invalid("email change link"))
    return reply({"message": messages.EMAIL_CHANGED})


@api_route
@login_required
def sessions() -> ResponseReturnValue:
    """The account's live sessions, as its page lists them (apps', browsers' and pages'
    alike), most recently used first."""
    found = account.signed_in_devices(signed_in_user())
    return reply(
        {
            "sessions": [
                {
                    "id": record.id,
                    "device": record.device,
                    "ip": record.ip,
                    "created_at": timestamp(record.created_at),
                    "last_seen_at": timestamp(record.last_seen_at),
                    "expires_at": timestamp(record.expires_at),
                    "remembered": record.remembered,
                    "current": record.id == found.current_session_id,
                }
                for record in found.sessions
            ]
        }
    )


@api_route
@login_required
def revoke_session(session_id: int) -> ResponseReturnValue:
    """End one of the account's sessions; this client's own is a sign-out."""
    ended = account.revoke_session(signed_in_user(), session_id)
    if ended == "gone":
        return refusal(404, messages.SESSION_GONE)
    if ended == "this":
        return reply({"message": messages.SIGNED_OUT})
    return reply({"message": messages.SESSION_REVOKED})


@api_route
@login_required
def revoke_other_sessions() -> ResponseReturnValue:
    return reply({"revoked": account.revoke_other_sessions(signed_in_user())})


@api_route
@account_change_limits("delete")
@recent_login_required
def delete_account() -> ResponseReturnValue:
    """Delete the account for good: ``{password}`` (``{}`` for an account without one)."""
    user = signed_in_user()
    found = form(DeleteAccountForm, user)
    if not found.validate_on_submit():
        return invalid(found)
    password = found.password.data if "password" in found else ""
    check = account.delete_account(user, password or "")
    if not check.ok:
        return _refused("password", check)
    return reply({"message": messages.ACCOUNT_DELETED})


@api_route
@recent_login_required
def account_data() -> ResponseReturnValue:
    """Everything stored about the account (no password or token hashes), under ``data``."""
    return reply({"data": account.export_data(signed_in_user())})
