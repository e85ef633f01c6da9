"""Forgot password, reset links and "this wasn't me" links: thin views over the recovery flow.

Emailed links open a page and only its POST acts, so mail scanners that fetch every link
cannot spend them. (Pages with a token in their URL get ``Referrer-Policy: no-referrer``
from ``headers.apply``.)
"""

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from .. import messages
from ..flows import recovery
from ..forms import (
    ConfirmForm,
    EmailRequestForm,
    ResetPasswordForm,
    code_refusal,
    password_rules,
)
from ..services import passkeys, second_factor
from ..services.passkeys import mode


def _link_invalid(what: str) -> ResponseReturnValue:
    page = render_template(
        "gatehouse/link_invalid.html",
        what=what,
        retry_label="Send a new reset link",
        retry_form=EmailRequestForm(formdata=None),
        retry_url=url_for("gatehouse.forgot_password"),
    )
    return page, 400


def forgot_password() -> ResponseReturnValue:
    """One answer whether or not the address has an account."""
    form = EmailRequestForm()
    if form.validate_on_submit():
        recovery.request_reset(form.typed_email)
        flash(
            messages.RESET_LINK_SENT,
            "success",
        )
        return redirect(url_for("gatehouse.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/forgot_password.html", form=form), status


def reset_password(token: str) -> ResponseReturnValue:
    """The form is checked before the link is used: a refused password leaves it usable."""
    user = recovery.reset_target(token)
    if user is None:
        return _link_invalid("password reset link")
    form = ResetPasswordForm(user, needs_code=second_factor.is_enabled(user))
    status, headers = (400 if form.is_submitted() else 200), dict[str, str]()
    if form.validate_on_submit():
        result = recovery.reset_password(
            token, form.password.data or "", form.code.data, form.assertion
        )
        if result.user is not None:
            flash(messages.PASSWORD_RESET, "success")
            return redirect(url_for("gatehouse.login"))
        if result.code is None:
            return _link_invalid("password reset link")
        message, status, headers = code_refusal(result.code.retry_after)
        form.code.errors = [message]
    page = render_template(
        "gatehouse/reset_password.html",
        form=form,
        email=user.email,
        rules=password_rules(),
        token=token,
        security_keys=mode() != "off" and passkeys.count(user) > 0,
    )
    return page, status, headers


def secure_account(token: str) -> ResponseReturnValue:
    form = ConfirmForm()
    if form.validate_on_submit():
        secured = recovery.secure_account(token)
        if secured is None:
            return _link_invalid("link")
        if secured.reset_sent:
            flash(messages.ACCOUNT_SECURED, "success")
        else:
            flash(messages.ACCOUNT_SECURED_ADDRESS_TAKEN, "error")
        return redirect(url_for("gatehouse.login"))
    link = recovery.secure_target(token)
    if link is None:
        return _link_invalid("link")
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/secure_account.html", form=form, link=link), status
