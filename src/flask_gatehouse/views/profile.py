"""The account page: profile, email, password, sessions, activity, data and deletion in one
place; and signing sessions out from it."""

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from .. import messages
from ..access import login_required, signed_in_user
from ..flows import account, two_factor
from ..forms import ConfirmForm
from ..services.passkeys import mode


@login_required
def account_page() -> ResponseReturnValue:
    found = account.overview(signed_in_user())
    return render_template(
        "gatehouse/account.html",
        pending_email=found.pending_email,
        sessions=found.sessions,
        current_session_id=found.current_session_id,
        events=found.events,
        two_factor=found.two_factor,
        passkeys_enabled=found.passkeys_enabled,
        passkey_count=found.passkey_count,
        connections=found.connections,
        second_factor_only=mode() == "second-factor-only",
        form=ConfirmForm(),
    )


@login_required
def revoke_session(session_id: int) -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(messages.FORM_EXPIRED, "error")
        return redirect(url_for("gatehouse.account"))
    ended = account.revoke_session(signed_in_user(), session_id)
    if ended == "this":
        flash(messages.SIGNED_OUT, "success")
        return redirect(url_for("gatehouse.login"))
    if ended == "revoked":
        flash(messages.SESSION_REVOKED, "success")
    else:
        flash(messages.SESSION_GONE, "info")
    return redirect(url_for("gatehouse.account"))


@login_required
def revoke_other_sessions() -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(messages.FORM_EXPIRED, "error")
        return redirect(url_for("gatehouse.account"))
    count = account.revoke_other_sessions(signed_in_user())
    flash(f"Signed out {count} other session{'s' if count != 1 else ''}.", "success")
    return redirect(url_for("gatehouse.account"))


@login_required
def forget_trusted_browser(browser_id: int) -> ResponseReturnValue:
    """Stop trusting a browser: its next sign-in asks for the two-factor code again."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(messages.FORM_EXPIRED, "error")
    elif two_factor.forget_browser(signed_in_user(), browser_id):
        flash(messages.BROWSER_FORGOTTEN, "success")
    else:
        flash(messages.BROWSER_WAS_NOT_TRUSTED, "info")
    return redirect(url_for("gatehouse.account"))
