"""The account page: profile, email, password, sessions, activity, data and deletion in one
place; and signing sessions out from it."""

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from .. import audit, email_change, sessions
from ..access import login_required
from ..forms import ConfirmForm
from ..models import User
from ..signin import sign_out


def _user() -> User:
    user: User = current_user._get_current_object()
    return user


@login_required
def account() -> ResponseReturnValue:
    return render_template(
        "gatehouse/account.html",
        pending_email=email_change.pending(_user()),
        sessions=sessions.active_for(_user()),
        current_session_id=sessions.current_id(),
        events=audit.recent(user=_user(), limit=20),
        form=ConfirmForm(),
    )


@login_required
def revoke_session(session_id: int) -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("That form expired. Please try again.", "error")
        return redirect(url_for("gatehouse.account"))
    if session_id == sessions.current_id():
        sign_out(_user())
        flash("You have been signed out.", "success")
        return redirect(url_for("gatehouse.login"))
    if sessions.revoke(_user(), session_id):
        audit.record("session_revoked", "success", user=_user(), detail=f"session {session_id}")
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
    count = sessions.revoke_all(_user(), keep=sessions.current_id())
    audit.record("session_revoked", "success", user=_user(), detail=f"{count} other sessions")
    flash(f"Signed out {count} other session{'s' if count != 1 else ''}.", "success")
    return redirect(url_for("gatehouse.account"))
