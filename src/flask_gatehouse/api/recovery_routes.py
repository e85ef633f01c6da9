"""Getting into an account without signing in, through the API: a forgotten password, the
links mailed to confirm an address or to secure an account, and signing up with a passkey.
The twins of ``views.password_reset``, ``views.confirmation`` and the sign-up part of
``views.passkeys``: the same flows, limits and messages.

A mailed link's token (the end of ``/reset/<token>``, ``/confirm/<token>`` or
``/secure/<token>``) travels in the body. Requests for a link answer 202 and the same
whether or not the address has an account.
"""

from flask.typing import ResponseReturnValue
from flask_login import current_user

from .. import messages
from ..access import signup_limits
from ..flows import recovery, signup
from ..forms import (
    EmailRequestForm,
    LinkForm,
    PasskeySignUpForm,
    ResetPasswordForm,
    code_refusal,
)
from ..services import json_body, second_factor
from ..services.passkeys import mode
from ..views.auth import passkey_sign_up_offered
from .guard import api_route, form
from .replies import invalid, refusal, reply


def _link_invalid(what: str) -> ResponseReturnValue:
    """What the page of a spent, expired or unknown link says."""
    return refusal(400, messages.link_invalid(what))


@api_route
def forgot_password() -> ResponseReturnValue:
    """``{email}``: mail a reset link; one answer whether or not the address has an account."""
    found = form(EmailRequestForm)
    if not found.validate_on_submit():
        return invalid(found)
    recovery.request_reset(found.typed_email)
    message = messages.RESET_LINK_SENT
    return reply({"message": message}, 202)


@api_route
def reset_password() -> ResponseReturnValue:
    """``{token, password}``, and for a two-factor account ``code`` or a passkey's
    ``credential``. The body is checked before the link is used: a refused password or code
    leaves it usable."""
    link = form(LinkForm)
    if not link.validate_on_submit():
        return invalid(link)
    token = link.token.data or ""
    user = recovery.reset_target(token)
    if user is None:
        return _link_invalid("password reset link")
    credential = json_body.optional_credential(json_body.read())
    needs_code = credential is None and second_factor.is_enabled(user)
    found = form(ResetPasswordForm, user, needs_code=needs_code)
    if not found.validate_on_submit():
        return invalid(found)
    result = recovery.reset_password(token, found.password.data or "", found.code.data, credential)
    if result.user is not None:
        return reply({"message": messages.PASSWORD_RESET})
    if result.code is None:
        return _link_invalid("password reset link")
    message, status, headers = code_refusal(result.code.retry_after)
    return refusal(status, message, fields={"code": message}, headers=headers)


@api_route
def reset_passkey_options() -> ResponseReturnValue:
    """``{token}``: options for a passkey or security key of the link's account, to send as
    ``credential`` in place of the code."""
    if mode() == "off":
        return refusal(404, messages.PASSKEYS_OFF)
    link = form(LinkForm)
    if not link.validate_on_submit():
        return invalid(link)
    options = recovery.second_factor_options(link.token.data or "")
    if options is None:
        return refusal(400, messages.NO_PASSKEY_FOR_LINK)
    return reply({"publicKey": options})


@api_route
def confirm_email() -> ResponseReturnValue:
    """``{token}`` of a confirmation link."""
    link = form(LinkForm)
    if not link.validate_on_submit():
        return invalid(link)
    if signup.confirm_email(link.token.data or "") is None:
        return _link_invalid("confirmation link")
    return reply({"message": messages.EMAIL_CONFIRMED})


@api_route
def resend_confirmation() -> ResponseReturnValue:
    """``{email}``: one answer whether or not the address has an unconfirmed account."""
    found = form(EmailRequestForm)
    if not found.validate_on_submit():
        return invalid(found)
    signup.resend_confirmation(found.typed_email)
    message = (
        "If that address belongs to an account waiting for confirmation, a new link is on its way."
    )
    return reply({"message": message}, 202)


@api_route
def secure_account() -> ResponseReturnValue:
    """``{token}`` of a "this wasn't me" link: every session ends, the password stops working,
    and a reset link goes to the address the link was sent to (when it is still the owner's)."""
    link = form(LinkForm)
    if not link.validate_on_submit():
        return invalid(link)
    secured = recovery.secure_account(link.token.data or "")
    if secured is None:
        return _link_invalid("link")
    if secured.reset_sent:
        return reply({"message": messages.ACCOUNT_SECURED})
    return reply({"message": messages.ACCOUNT_SECURED_ADDRESS_TAKEN})


_NO_PASSKEY_SIGN_UP = "Signing up with a passkey is off on this site."


@api_route
@signup_limits("passkey_sign_up_options")
def passkey_sign_up_options() -> ResponseReturnValue:
    """``{email, username}``: options to create the new account's passkey, the same whether or
    not the address is taken. The answer goes to ``auth/signup/passkey`` from this client."""
    if not passkey_sign_up_offered():
        return refusal(404, _NO_PASSKEY_SIGN_UP)
    if current_user.is_authenticated:
        return refusal(409, "Already signed in: sign out first.")
    found = form(PasskeySignUpForm)
    if not found.validate_on_submit():
        return invalid(found)
    options = signup.passkey_sign_up_options(found.clean_email, found.clean_username)
    return reply({"publicKey": options})


@api_route
@signup_limits("passkey_sign_up")
def passkey_sign_up() -> ResponseReturnValue:
    """``{credential}``: the account, made around the new passkey (for a taken address its
    owner is mailed instead, with the same answer)."""
    if not passkey_sign_up_offered():
        return refusal(404, _NO_PASSKEY_SIGN_UP)
    if not signup.sign_up_with_passkey(json_body.credential(json_body.read())):
        return refusal(400, messages.PASSKEY_SIGN_UP_REFUSED)
    return reply({"message": messages.signed_up_message()}, 202)
