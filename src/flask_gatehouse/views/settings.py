"""Account settings behind a recent password entry: re-authenticate, change the password or
the email address, delete the account, download its data."""

import json

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from wtforms import Field

from .. import messages
from ..access import account_change_limits, login_required, recent_login_required, signed_in_user
from ..flows import account, email_change, signin
from ..forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    ConfirmForm,
    DeleteAccountForm,
    GatehouseForm,
    ReauthenticateForm,
    code_refusal,
    locked_message,
    password_rules,
)
from ..services import passkeys, second_factor
from ..services.passkeys import mode


def _refuse(field: Field, check: account.PasswordCheck) -> tuple[int, dict[str, str]]:
    """Say on the password field why it was refused: the status and headers of the page."""
    if check.retry_after is None:
        field.errors = [*field.errors, "Incorrect password."]
        return 400, {}
    field.errors = [*field.errors, locked_message(check.retry_after)]
    return 429, {"Retry-After": str(check.retry_after)}


def _shown(form: GatehouseForm) -> tuple[int, dict[str, str]]:
    """The status and headers of a form page: 200 when asked for, 400 when refused."""
    return (400 if form.is_submitted() else 200), {}


@login_required
def reauthenticate() -> ResponseReturnValue:
    """Enter the password again; then back to ``next`` with a rotated session token."""
    user = signed_in_user()
    form = ReauthenticateForm(needs_code=second_factor.is_enabled(user))
    status, headers = _shown(form)
    if form.validate_on_submit():
        result = signin.reauthenticate(
            user, form.password.data or "", form.code.data, form.assertion
        )
        if result.ok:
            back = signin.landing_url(request.args.get("next"), url_for("gatehouse.account"))
            return redirect(back)
        if result.code is None:
            status, headers = _refuse(form.password, result.password)
        else:
            message, status, headers = code_refusal(result.code.retry_after)
            form.code.errors = [message]
    keys = passkeys.count(user) if mode() != "off" else 0
    with_passkey = mode() == "on" and passkeys.count(user, kind="passkey") > 0
    page = render_template(
        "gatehouse/reauthenticate.html",
        form=form,
        passkeys_enabled=with_passkey,
        security_keys=keys > 0,
    )
    return page, status, headers


@account_change_limits("password")
@recent_login_required
def change_password() -> ResponseReturnValue:
    """A new password ends every session, remembered ones too; this browser gets a fresh one."""
    user = signed_in_user()
    form = ChangePasswordForm(user)
    status, headers = _shown(form)
    if form.validate_on_submit():
        current = form.current_password.data if "current_password" in form else ""
        check = account.change_password(user, current or "", form.password.data or "")
        if check.ok:
            flash(messages.PASSWORD_CHANGED, "success")
            return redirect(url_for("gatehouse.account"))
        status, headers = _refuse(form.current_password, check)
    page = render_template("gatehouse/change_password.html", form=form, rules=password_rules())
    return page, status, headers


@account_change_limits("email")
@recent_login_required
def change_email() -> ResponseReturnValue:
    """Ask for a new address; it takes effect when the link mailed to it is used."""
    user = signed_in_user()
    form = ChangeEmailForm()
    status, headers = _shown(form)
    if form.validate_on_submit():
        if form.clean_email == user.email:
            form.email.errors = [messages.SAME_EMAIL]
        else:
            # The same answer when the address has an account: its link will fail.
            check = email_change.request_change(
                user, form.current_password.data or "", form.clean_email
            )
            if check.ok:
                flash(messages.EMAIL_CHANGE_SENT, "success")
                return redirect(url_for("gatehouse.account"))
            status, headers = _refuse(form.current_password, check)
    return render_template("gatehouse/change_email.html", form=form), status, headers


def confirm_email_change(token: str) -> ResponseReturnValue:
    """GET shows a button and POST changes the address, so mail scanners that fetch links
    cannot spend one. No sign-in needed: the link may be opened on another device."""
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            user = email_change.confirm(token)
        except email_change.AddressTaken:
            page = render_template("gatehouse/confirm_email_change.html", form=form, taken=True)
            return page, 400
        if user is not None:
            flash(messages.EMAIL_CHANGED, "success")
            signed_in = current_user.is_authenticated
            return redirect(url_for("gatehouse.account" if signed_in else "gatehouse.login"))
    elif form.is_submitted():
        page = render_template("gatehouse/confirm_email_change.html", form=form, email=None)
        return page, 400
    else:
        found = email_change.change_target(token)
        if found is not None:
            return render_template(
                "gatehouse/confirm_email_change.html", form=form, email=found.email
            )
    page = render_template("gatehouse/link_invalid.html", what="email change link")
    return page, 400


@account_change_limits("delete")
@recent_login_required
def delete_account() -> ResponseReturnValue:
    """Delete the account for good once the password is entered; GET shows the warning."""
    user = signed_in_user()
    form = DeleteAccountForm(user)
    status, headers = _shown(form)
    if form.validate_on_submit():
        password = form.password.data if "password" in form else ""
        check = account.delete_account(user, password or "")
        if check.ok:
            flash(messages.ACCOUNT_DELETED, "success")
            return redirect(url_for("gatehouse.login"))
        status, headers = _refuse(form.password, check)
    return render_template("gatehouse/delete_account.html", form=form), status, headers


@recent_login_required
def download_data() -> ResponseReturnValue:
    """Everything stored about the account as a JSON file (no password or token hashes)."""
    data = account.export_data(signed_in_user())
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="account-data.json"'},
    )
