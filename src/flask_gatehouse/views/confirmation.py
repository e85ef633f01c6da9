"""Email confirmation pages: open a link, confirm with a button, ask for a new link."""

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from .. import messages
from ..flows import signup
from ..forms import ConfirmForm, EmailRequestForm


def confirm_email(token: str) -> ResponseReturnValue:
    """GET shows a button and POST confirms: mail scanners that fetch every link in a
    message must not spend it."""
    form = ConfirmForm()
    if form.validate_on_submit():
        if signup.confirm_email(token) is not None:
            flash(messages.EMAIL_CONFIRMED, "success")
            return redirect(url_for("gatehouse.login"))
    elif form.is_submitted():
        return render_template("gatehouse/confirm_email.html", form=form, email=None), 400
    else:
        found = signup.confirmation_target(token)
        if found is not None:
            return render_template("gatehouse/confirm_email.html", form=form, email=found.email)
    page = render_template(
        "gatehouse/link_invalid.html",
        what="confirmation link",
        retry_label="Send a new confirmation link",
        retry_form=EmailRequestForm(),
        retry_url=url_for("gatehouse.resend_confirmation"),
    )
    return page, 400


def resend_confirmation() -> ResponseReturnValue:
    """One answer whether or not the address has an unconfirmed account."""
    form = EmailRequestForm()
    if form.validate_on_submit():
        signup.resend_confirmation(form.typed_email)
        flash(
            "If that address belongs to an account waiting for confirmation, a new link "
            "is on its way.",
            "success",
        )
        return redirect(url_for("gatehouse.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/resend_confirmation.html", form=form), status
