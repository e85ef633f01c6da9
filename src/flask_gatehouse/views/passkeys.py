"""Passkeys: the account's passkeys page, and the JSON endpoints that static/gatehouse/passkeys.js
calls for each WebAuthn ceremony (options, then the browser's answer).

The JSON endpoints take the page's CSRF token in the ``X-CSRFToken`` header (the body is the
credential, an object the forms' text fields cannot carry) and answer ``{"publicKey": ...}``,
``{"redirect": url}`` or the usual ``{"error": {"code", "message"}}``. A ceremony the
configuration switches off (GATEHOUSE_PASSKEYS) is a 404.
"""

from typing import Any

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from werkzeug.exceptions import BadRequest
from wtforms import ValidationError

from .. import messages
from ..access import (
    account_change_limits,
    login_required,
    recent_login_required,
    signed_in_user,
    signup_limits,
)
from ..flows import passkeys, recovery, signin, signup
from ..forms import ConfirmForm, PasskeyNameForm, PasskeySignUpForm, code_refusal
from ..services import json_body
from ..services.passkeys import mode
from .auth import flash_signed_up, next_url_of, passkey_sign_up_offered


def _require(*modes: str) -> None:
    if mode() not in modes:
        abort(404)


def _body() -> dict[str, Any]:
    """The JSON body (an object) of a ceremony's request, after its CSRF token."""
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except ValidationError as error:
            raise BadRequest(f"The CSRF token is missing or wrong: {error}") from None
    body = json_body.read()
    if not isinstance(body, dict):
        raise BadRequest("Send a JSON object.")
    return body


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be text.")
    return value


def _refused(message: str = messages.PASSKEY_REFUSED, status: int = 400) -> ResponseReturnValue:
    return jsonify(error={"code": status, "message": message}), status


def _options(options: dict[str, Any] | None) -> ResponseReturnValue:
    if options is None:
        return _refused(messages.SIGN_IN_EXPIRED)
    return jsonify(publicKey=options)


# --- the account's passkeys ------------------------------------------------------------------


@recent_login_required
def passkeys_page() -> ResponseReturnValue:
    _require("on", "second-factor-only")
    user = signed_in_user()
    if user.email_confirmed_at is None:
        flash("Confirm your email address first: then you can add a passkey.", "info")
        return redirect(url_for("gatehouse.account"))
    found = passkeys.overview(user)
    return render_template(
        "gatehouse/passkeys.html",
        passkeys=found.passkeys,
        limit=found.limit,
        second_factor_only=found.second_factor_only,
        form=ConfirmForm(),
        rename_form=PasskeyNameForm(formdata=None),
    )


@recent_login_required
def add_options() -> ResponseReturnValue:
    _require("on", "second-factor-only")
    _body()
    user = signed_in_user()
    if user.email_confirmed_at is None:
        return _refused("Confirm your email address first.")
    options = passkeys.add_options(user)
    if options is None:
        return _refused(messages.PASSKEYS_FULL)
    return jsonify(publicKey=options)


@account_change_limits("passkey_add")
@recent_login_required
def add() -> ResponseReturnValue:
    _require("on", "second-factor-only")
    body = _body()
    user = signed_in_user()
    if user.email_confirmed_at is None:
        return _refused("Confirm your email address first.")
    added = passkeys.add(user, json_body.credential(body), _text(body, "name"))
    if added.passkey is None:
        return _refused(messages.PASSKEY_NOT_ADDED)
    if added.needs_recovery_codes:
        flash("Security key added. Make recovery codes now, in case you lose it.", "success")
        return jsonify(redirect=url_for("gatehouse.two_factor"))
    flash("Passkey added.", "success")
    return jsonify(redirect=url_for("gatehouse.passkeys"))


@account_change_limits("passkey_rename")
@recent_login_required
def rename(passkey_id: int) -> ResponseReturnValue:
    _require("on", "second-factor-only")
    form = PasskeyNameForm()
    if not form.validate_on_submit():
        flash("Give the passkey a name of 1 to 64 characters.", "error")
    elif passkeys.rename(signed_in_user(), passkey_id, form.name.data or ""):
        flash("Renamed.", "success")
    else:
        flash(messages.PASSKEY_GONE, "info")
    return redirect(url_for("gatehouse.passkeys"))


@account_change_limits("passkey_remove")
@recent_login_required
def remove(passkey_id: int) -> ResponseReturnValue:
    _require("on", "second-factor-only")
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(messages.FORM_EXPIRED, "error")
        return redirect(url_for("gatehouse.passkeys"))
    outcome = passkeys.remove(signed_in_user(), passkey_id)
    if outcome == "required":
        flash(messages.LAST_FACTOR_REQUIRED, "error")
    elif outcome == "removed":
        flash(messages.PASSKEY_REMOVED, "success")
    else:
        flash(messages.PASSKEY_GONE, "info")
    return redirect(url_for("gatehouse.passkeys"))


# --- signing up without a password ------------------------------------------------------------


@signup_limits("passkey_sign_up_options")
def sign_up_options() -> ResponseReturnValue:
    if not passkey_sign_up_offered():
        abort(404)
    _body()
    if current_user.is_authenticated:
        return jsonify(redirect=signin.landing_url(request.args.get("next")))
    form = PasskeySignUpForm(meta={"csrf": False})  # the header's token was checked
    if not form.validate():
        fields = {name: errors[0] for name, errors in form.errors.items()}
        message = " ".join(fields.values())
        return jsonify(error={"code": 400, "message": message, "fields": fields}), 400
    return jsonify(publicKey=signup.passkey_sign_up_options(form.clean_email, form.clean_username))


@signup_limits("passkey_sign_up")
def sign_up() -> ResponseReturnValue:
    if not passkey_sign_up_offered():
        abort(404)
    body = _body()
    # A taken address gets the same answer as a new one (its owner is mailed instead).
    if not signup.sign_up_with_passkey(json_body.credential(body)):
        return _refused(messages.PASSKEY_SIGN_UP_REFUSED)
    flash_signed_up()
    return jsonify(redirect=url_for("gatehouse.login"))


# --- signing in, the second factor and re-authentication --------------------------------------


def login_options() -> ResponseReturnValue:
    _require("on")
    _body()
    return jsonify(publicKey=signin.passkey_options("sign_in", None))


def login() -> ResponseReturnValue:
    _require("on")
    body = _body()
    if current_user.is_authenticated:
        return jsonify(redirect=signin.landing_url(request.args.get("next")))
    credential = json_body.credential(body)
    result = signin.sign_in_with_passkey(credential, next_url=request.args.get("next"))
    if result.user is not None or result.next_page is not None:
        return jsonify(redirect=next_url_of(result))
    if result.stopped_at == "email_confirmation":
        return _refused(messages.CONFIRM_FIRST)
    return _refused()


def two_factor_options() -> ResponseReturnValue:
    _require("on", "second-factor-only")
    _body()
    return _options(signin.second_factor_options())


def two_factor() -> ResponseReturnValue:
    _require("on", "second-factor-only")
    body = _body()
    trust = body.get("trust_browser", False)
    if not isinstance(trust, bool):
        raise BadRequest("trust_browser must be true or false.")
    check = signin.pass_two_factor("", trust_browser=trust, assertion=json_body.credential(body))
    if check.outcome == "expired":
        return _refused(messages.SIGN_IN_EXPIRED)
    if check.outcome == "discarded":
        return _refused("Too many failed attempts. Please sign in again.")
    if check.outcome == "locked":
        message, status, headers = code_refusal(check.retry_after)
        return jsonify(error={"code": status, "message": message}), status, headers
    if check.sign_in is None:
        return _refused()
    return jsonify(redirect=next_url_of(check.sign_in))


def reset_options(token: str) -> ResponseReturnValue:
    """A passkey or security key in place of the code on a reset page."""
    _require("on", "second-factor-only")
    _body()
    options = recovery.second_factor_options(token)
    if options is None:
        return _refused(messages.NO_PASSKEY_FOR_LINK)
    return jsonify(publicKey=options)


@login_required
def second_factor_options() -> ResponseReturnValue:
    """A passkey or security key in place of the code on the re-authentication page."""
    _require("on", "second-factor-only")
    _body()
    return jsonify(publicKey=signin.passkey_options("second_factor", signed_in_user()))


@login_required
def reauthenticate_options() -> ResponseReturnValue:
    _require("on")
    _body()
    return jsonify(publicKey=signin.passkey_options("reauthenticate", signed_in_user()))


@login_required
def reauthenticate() -> ResponseReturnValue:
    _require("on")
    body = _body()
    if not signin.reauthenticate_with_passkey(signed_in_user(), json_body.credential(body)):
        return _refused()
    return jsonify(
        redirect=signin.landing_url(request.args.get("next"), url_for("gatehouse.account"))
    )
