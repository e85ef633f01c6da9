"""Signing up, in and out through the API: the same flows and stages as the pages.

A sign-in that waits at a stage answers 401 with ``pending`` (``replies.pending``); the client
completes the stage at the URL given, and the last step answers the user. An app client
sends the token each answer gives it (``meta.session_token``) in ``X-Session-Token``: first
the pending sign-in's, then the session's.
"""

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from .. import messages, state
from ..access import login_required, signed_in_user, signup_limits
from ..flows import signin, signup
from ..forms import (
    CodeForm,
    LoginForm,
    NewPasswordForm,
    ReauthenticateForm,
    TwoFactorLoginForm,
    code_refusal,
    locked_message,
)
from ..services import json_body, pending_logins, second_factor, sessions
from ..services.passkeys import mode
from .guard import api_route, form
from .replies import account, invalid, locked, pending, refusal, reply, timestamp

#: Each stage with a step in the API: what the client must do, and the endpoint that does it.
_STEPS = {
    "two_factor": (
        "Enter the code from your authenticator app or a recovery code (or answer with a "
        "passkey or security key).",
        "gatehouse.api_two_factor",
    ),
    "two_factor_enrolment": (
        "This site asks for two-factor authentication: set up an authenticator app to sign in.",
        "gatehouse.api_two_factor_setup",
    ),
    "password_change": ("Choose a new password to sign in.", "gatehouse.api_new_password"),
}
_ALREADY = "Already signed in: sign out first."


def _waiting(stage: str) -> ResponseReturnValue:
    message, endpoint = _STEPS[stage]
    return pending(stage, message, endpoint)


def _signed_in(result: signin.SignIn) -> ResponseReturnValue:
    """The answer to a sign-in step: the user, the next stage, a lock or a refusal."""
    if result.user is not None:
        return reply({"user": account(result.user)})
    if result.waiting_at is not None:
        return _waiting(result.waiting_at)
    if result.retry_after is not None:
        return locked(result.retry_after, locked_message(result.retry_after))
    if result.stopped_at == "email_confirmation":
        return refusal(401, messages.CONFIRM_FIRST)
    return refusal(401, messages.login_refusal())


@login_required(scopes=["read"])
def account_of_any_credential() -> ResponseReturnValue:
    """The signed-in user, to any credential: a browser's session, an app's session token,
    or a personal access token with "read"."""
    return jsonify(account(signed_in_user()))


@api_route
def session() -> ResponseReturnValue:
    """The signed-in user and session; else 401, with ``pending`` when a sign-in waits at a
    stage. A browser client's first call, for its CSRF token."""
    if current_user.is_authenticated:
        return reply(
            {
                "user": account(signed_in_user()),
                "session": {
                    "id": sessions.current_id(),
                    "recently_authenticated": sessions.is_recently_authenticated(),
                },
            }
        )
    waiting = pending_logins.current()
    if waiting is not None:
        return _waiting(waiting.stage)
    return reply({"error": {"code": 401, "message": "Not signed in."}}, 401)


@api_route
@login_required
def sign_out() -> ResponseReturnValue:
    signin.sign_out(signed_in_user())
    return reply({})


@api_route
@signup_limits("register")
def sign_up() -> ResponseReturnValue:
    """The sign-up form's fields (the host's own included); the same answer whether or not
    the address was taken, as on the page."""
    if current_user.is_authenticated:
        return refusal(409, _ALREADY)
    found = form(state.get().register_form)
    if not found.validate_on_submit():
        return invalid(found)
    signup.sign_up(
        email=found.clean_email,
        username=found.clean_username,
        password=found.password.data or "",
        save_host_data=found.save_host_data,
    )
    return reply({"message": messages.signed_up_message()}, 202)


@api_route
def log_in() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return refusal(409, _ALREADY)
    found = form(LoginForm)
    if not found.validate_on_submit():
        signin.record_invalid_form()
        return invalid(found)
    result = signin.sign_in_with_password(
        found.typed_email, found.password.data or "", remember=found.remember.data, next_url=None
    )
    return _signed_in(result)


def _code_checked(check: signin.CodeCheck) -> ResponseReturnValue:
    if check.outcome == "expired":
        return refusal(401, messages.SIGN_IN_EXPIRED)
    if check.outcome == "discarded":
        return refusal(401, messages.TOO_MANY_CODES)
    if check.sign_in is not None:
        return _signed_in(check.sign_in)
    message, status, headers = code_refusal(check.retry_after)
    return refusal(status, message, fields={"code": message}, headers=headers)


@api_route
def two_factor() -> ResponseReturnValue:
    """The two-factor stage: a code from the app or a recovery code. ``trust_browser`` is
    for browser clients (an app keeps no cookie to trust)."""
    found = form(TwoFactorLoginForm)
    if not found.validate_on_submit():
        return invalid(found)
    check = signin.pass_two_factor(found.code.data or "", trust_browser=found.trust_browser.data)
    return _code_checked(check)


@api_route
def two_factor_passkey_options() -> ResponseReturnValue:
    """Options for answering the two-factor stage with a passkey or security key."""
    if mode() == "off":
        return refusal(404, messages.PASSKEYS_OFF)
    options = signin.second_factor_options()
    if options is None:
        return refusal(401, messages.SIGN_IN_EXPIRED)
    return reply({"publicKey": options})


@api_route
def two_factor_passkey() -> ResponseReturnValue:
    if mode() == "off":
        return refusal(404, messages.PASSKEYS_OFF)
    credential = json_body.credential(json_body.read())
    check = signin.pass_two_factor("", trust_browser=False, assertion=credential)
    return _code_checked(check)


@api_route
def two_factor_setup() -> ResponseReturnValue:
    """The enrolment stage (GATEHOUSE_MFA_REQUIRED): GET a fresh secret for the app, POST
    its first code; the answer then holds the recovery codes, shown this once."""
    if request.method == "POST":
        found = form(CodeForm)
        if not found.validate_on_submit():
            return invalid(found)
        enrolled = signin.enrol_at_sign_in(found.code.data or "")
        if enrolled is None:
            return refusal(401, messages.SIGN_IN_EXPIRED)
        if enrolled.codes is None or enrolled.sign_in is None:
            message = messages.WRONG_ENROLMENT_CODE
            return refusal(400, message, fields={"code": message})
        answer = _signed_in(enrolled.sign_in)
        if enrolled.sign_in.user is None:
            return answer
        return reply({"user": account(enrolled.sign_in.user), "recovery_codes": enrolled.codes})
    shown = signin.enrolment_stage(fresh=True)
    if shown is None:
        return refusal(401, messages.SIGN_IN_EXPIRED)
    return reply(
        {
            "secret": "".join(shown.enrolment.key_groups),
            "otpauth_uri": shown.enrolment.uri,
            "postpone_until": timestamp(shown.postpone_until),
        }
    )


@api_route
def postpone_two_factor() -> ResponseReturnValue:
    result = signin.postpone_enrolment()
    if result == "expired":
        return refusal(401, messages.SIGN_IN_EXPIRED)
    if result == "grace_over":
        return refusal(403, messages.GRACE_OVER)
    return _signed_in(result)


@api_route
def new_password() -> ResponseReturnValue:
    """The password-change stage: a new password before any session starts."""
    user = signin.pending_user("password_change")
    if user is None:
        return refusal(401, messages.SIGN_IN_EXPIRED)
    found = form(NewPasswordForm, user)
    if not found.validate_on_submit():
        return invalid(found)
    result = signin.change_required_password(found.password.data or "")
    if result is None:
        return refusal(401, messages.SIGN_IN_EXPIRED)
    return _signed_in(result)


@api_route
def passkey_options() -> ResponseReturnValue:
    """Options for signing in with a passkey (no address needed: a discoverable one)."""
    if mode() != "on":
        return refusal(404, messages.PASSKEY_SIGN_IN_OFF)
    return reply({"publicKey": signin.passkey_options("sign_in", None)})


@api_route
def passkey_login() -> ResponseReturnValue:
    if mode() != "on":
        return refusal(404, messages.PASSKEY_SIGN_IN_OFF)
    if current_user.is_authenticated:
        return refusal(409, _ALREADY)
    credential = json_body.credential(json_body.read())
    return _signed_in(signin.sign_in_with_passkey(credential, next_url=None))


@api_route
@login_required
def reauthenticate() -> ResponseReturnValue:
    """The password again, and for a two-factor account a code or a passkey's ``credential``
    (options from ``reauthenticate_second_factor_options``): the session counts as freshly
    signed in for GATEHOUSE_REAUTHENTICATE_AFTER, and an app client gets a new session
    token."""
    user = signed_in_user()
    found = form(ReauthenticateForm, needs_code=second_factor.is_enabled(user))
    if not found.validate_on_submit():
        return invalid(found)
    assertion = json_body.optional_credential(json_body.read())
    result = signin.reauthenticate(user, found.password.data or "", found.code.data, assertion)
    if result.ok:
        return reply({"user": account(user)})
    if result.code is not None:
        message, status, headers = code_refusal(result.code.retry_after)
        return refusal(status, message, fields={"code": message}, headers=headers)
    if result.password.retry_after is not None:
        message = locked_message(result.password.retry_after)
        return locked(result.password.retry_after, message)
    return refusal(400, "Incorrect password.", fields={"password": "Incorrect password."})


@api_route
@login_required
def reauthenticate_second_factor_options() -> ResponseReturnValue:
    """Options for a passkey or security key in place of the code at re-authentication."""
    if mode() == "off":
        return refusal(404, messages.PASSKEYS_OFF)
    return reply({"publicKey": signin.passkey_options("second_factor", signed_in_user())})


@api_route
@login_required
def reauthenticate_passkey_options() -> ResponseReturnValue:
    """Options for re-authenticating with one of the account's passkeys alone (no password:
    an account without one has no other way)."""
    if mode() != "on":
        return refusal(404, messages.PASSKEY_SIGN_IN_OFF)
    return reply({"publicKey": signin.passkey_options("reauthenticate", signed_in_user())})


@api_route
@login_required
def reauthenticate_with_passkey() -> ResponseReturnValue:
    if mode() != "on":
        return refusal(404, messages.PASSKEY_SIGN_IN_OFF)
    user = signed_in_user()
    if not signin.reauthenticate_with_passkey(user, json_body.credential(json_body.read())):
        return refusal(400, messages.PASSKEY_REFUSED)
    return reply({"user": account(user)})
