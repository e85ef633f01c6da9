"""Two-factor authentication on the account (behind a recent password entry): enrol an
authenticator app, switch it off, make new recovery codes."""

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from .. import messages
from ..access import account_change_limits, recent_login_required, signed_in_user
from ..flows import two_factor
from ..forms import CodeForm, ConfirmForm


def recovery_codes_page(codes: list[str], continue_url: str | None = None) -> ResponseReturnValue:
    """The new codes, shown this once (the page is never cached: it is a Gatehouse page),
    with a link on to ``continue_url`` (by default the two-factor page)."""
    return render_template(
        "gatehouse/recovery_codes.html",
        codes=codes,
        download="\r\n".join([*codes, ""]),
        continue_url=continue_url or url_for("gatehouse.two_factor"),
    )


@account_change_limits("two_factor_enrol")
@recent_login_required
def two_factor_page() -> ResponseReturnValue:
    """The status; when off, a fresh secret to enrol and the form for its first code."""
    user = signed_in_user()
    form = CodeForm()
    if user.email_confirmed_at is None:
        page = render_template("gatehouse/two_factor.html", unconfirmed=True, form=form)
        return page, 400 if form.is_submitted() else 200
    found = two_factor.status(user)
    if found.enabled:
        page = render_template("gatehouse/two_factor.html", status=found, form=ConfirmForm())
        return page, 400 if form.is_submitted() else 200
    if form.validate_on_submit():
        codes = two_factor.confirm_enrolment(user, form.code.data or "")
        if codes is not None:
            flash("Two-factor authentication is on.", "success")
            return recovery_codes_page(codes)
        form.code.errors = [messages.WRONG_ENROLMENT_CODE]
    enrolment = two_factor.pending_enrolment(user) if form.is_submitted() else None
    if enrolment is None:
        enrolment = two_factor.start_enrolment(user)
    page = render_template(
        "gatehouse/two_factor.html", status=found, enrolment=enrolment, form=form
    )
    return page, 400 if form.is_submitted() else 200


@account_change_limits("two_factor_disable")
@recent_login_required
def disable_two_factor() -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(messages.FORM_EXPIRED, "error")
    else:
        outcome = two_factor.disable(signed_in_user())
        if outcome == "required":
            flash(messages.TWO_FACTOR_REQUIRED, "error")
        elif outcome == "off":
            flash(messages.TWO_FACTOR_OFF, "success")
    return redirect(url_for("gatehouse.two_factor"))


@account_change_limits("recovery_codes")
@recent_login_required
def regenerate_recovery_codes() -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(messages.FORM_EXPIRED, "error")
        return redirect(url_for("gatehouse.two_factor"))
    codes = two_factor.regenerate_recovery_codes(signed_in_user())
    if codes is None:
        return redirect(url_for("gatehouse.two_factor"))
    flash("New recovery codes made: the old ones no longer work.", "success")
    return recovery_codes_page(codes)
