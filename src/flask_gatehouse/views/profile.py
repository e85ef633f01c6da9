"""The account page: profile, email, password, sessions, activity, data and deletion in one
place; and signing sessions out from it."""

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from ..services import audit, sessions
from ..flows import email_change
from ..access import login_required, signed_in_user
from ..forms import ConfirmForm
from ..flows.signin import sign_out


@login_required
def account() -> ResponseReturnValue:
    user = signed_in_user()
    return render_template(
        "gatehouse/account.html",
        pending_email=email_change.pending(user),
        sessions=sessions.active_for(user),
        current_session_id=sessions.current_id(),
        events=audit.recent(user=user, limit=20),
        form=ConfirmForm(),
    )


@login_required
def revoke_session(session_id: int) -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("That form expired. Please try again.", "error")
        return redirect(url_for("gatehouse.account"))
    user = signed_in_user()
    if session_id == sessions.current_id():
        sign_out(user)
        flash("You have been signed out.", "success")
        return redirect(url_for("gatehouse.login"))
    if sessions.revoke(user, session_id):
        audit.record("session_revoked", "success", user=user, detail=f"session {session_id}")
        flash("That session has been signed out.", "success")
    else:
        flash("That session had already ended.", "info")
    return redirect(url_for("gatehouse.account"))


@login_required
def revoke_other_sessions() -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("That form expired. Please try again.", "error")
        return redirect(url_for("gatehouse.account"))
    user = signed_in_user()
    count = sessions.revoke_all(user, keep=sessions.current_id())
    audit.record("session_revoked", "success", user=user, detail=f"{count} other sessions")
    flash(f"Signed out {count} other session{'s' if count != 1 else ''}.", "success")
    return redirect(url_for("gatehouse.account"))
