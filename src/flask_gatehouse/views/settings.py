"""Account settings behind a recent password entry: re-authenticate, change the password or
the email address, delete the account, download its data."""

import json

from flask import Response, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, logout_user
from wtforms import Field

from ..services import audit, sessions, throttle, tokens, users
from ..flows import email_change
from ..access import login_required, recent_login_required, signed_in_user
from ..services.database import db
from ..services.export import account_data
from ..forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    ConfirmForm,
    CurrentPasswordForm,
    GatehouseForm,
)
from ..services.passwords import password_rules
from ..services.redirects import safe_next

#: Password, email and deletion forms a signed-in account may submit (each has its counter).
_account_change_limit = throttle.limiter.limit(
    throttle.account_change_limit, key_func=throttle.account_key, methods=["POST"]
)


def _refuse(field: Field, check: users.PasswordCheck) -> tuple[int, dict[str, str]]:
    """Say on the password field why it was refused: the status and headers of the page."""
    if check.retry_after is None:
        field.errors = [*field.errors, "Incorrect password."]
        return 400, {}
    field.errors = [*field.errors, throttle.locked_message(check.retry_after)]
    return 429, {"Retry-After": str(check.retry_after)}


def _shown(form: GatehouseForm) -> tuple[int, dict[str, str]]:
    """The status and headers of a form page: 200 when asked for, 400 when refused."""
    return (400 if form.is_submitted() else 200), {}


@login_required
def reauthenticate() -> ResponseReturnValue:
    """Enter the password again; then back to ``next`` with a rotated session token."""
    form = CurrentPasswordForm()
    status, headers = _shown(form)
    if form.validate_on_submit():
        user = signed_in_user()
        check = users.check_password(user, form.password.data or "", action="reauthenticated")
        if check.ok:
            sessions.reauthenticated()
            audit.record("reauthenticated", "success", user=user)
            return redirect(safe_next(request.args.get("next")) or url_for("gatehouse.account"))
        status, headers = _refuse(form.password, check)
    return render_template("gatehouse/reauthenticate.html", form=form), status, headers


@_account_change_limit
@recent_login_required
def change_password() -> ResponseReturnValue:
    """A new password ends every session, remembered ones too; this browser gets a fresh one."""
    user = signed_in_user()
    form = ChangePasswordForm(user)
    status, headers = _shown(form)
    if form.validate_on_submit():
        check = users.check_password(
            user, form.current_password.data or "", action="password_changed"
        )
        if check.ok:
            users.set_password(user, form.password.data or "")
            # A fresh Flask session (and CSRF token) with the new server-side session.
            session.clear()
            sessions.start(user, remember=False)
            db().session.commit()
            flash("Your password has been changed and every other device signed out.", "success")
            return redirect(url_for("gatehouse.account"))
        status, headers = _refuse(form.current_password, check)
    page = render_template("gatehouse/change_password.html", form=form, rules=password_rules())
    return page, status, headers


@_account_change_limit
@recent_login_required
def change_email() -> ResponseReturnValue:
    """Ask for a new address; it takes effect when the link mailed to it is used."""
    user = signed_in_user()
    form = ChangeEmailForm()
    status, headers = _shown(form)
    if form.validate_on_submit():
        if form.clean_email == user.email:
            form.email.errors = ["That is already your email address."]
        else:
            check = users.check_password(
                user, form.current_password.data or "", action="email_change_requested"
            )
            if check.ok:
                # The same answer when the address has an account: its link will fail.
                email_change.request_change(user, form.clean_email)
                flash("We sent a confirmation link to the new address.", "success")
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
            flash("Your email address has been changed.", "success")
            signed_in = current_user.is_authenticated
            return redirect(url_for("gatehouse.account" if signed_in else "gatehouse.login"))
    elif form.is_submitted():
        page = render_template("gatehouse/confirm_email_change.html", form=form, email=None)
        return page, 400
    else:
        found = tokens.peek("change_email", token)
        if found is not None:
            return render_template(
                "gatehouse/confirm_email_change.html", form=form, email=found.email
            )
    page = render_template("gatehouse/link_invalid.html", what="email change link")
    return page, 400


@_account_change_limit
@recent_login_required
def delete_account() -> ResponseReturnValue:
    """Delete the account for good once the password is entered; GET shows the warning."""
    form = CurrentPasswordForm()
    status, headers = _shown(form)
    if form.validate_on_submit():
        user = signed_in_user()
        check = users.check_password(user, form.password.data or "", action="account_deleted")
        if check.ok:
            users.delete(user)
            # The session row went with the account; forget the cookie and this browser's state.
            sessions.end_current()
            logout_user()
            session.clear()
            flash("Your account has been deleted. Goodbye!", "success")
            return redirect(url_for("gatehouse.login"))
        status, headers = _refuse(form.password, check)
    return render_template("gatehouse/delete_account.html", form=form), status, headers


@recent_login_required
def download_data() -> ResponseReturnValue:
    """Everything stored about the account as a JSON file (no password or token hashes)."""
    user = signed_in_user()
    data = account_data(user)
    audit.record("data_exported", "success", user=user)
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="account-data.json"'},
    )
