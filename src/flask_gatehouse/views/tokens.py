"""Personal access tokens: the account's page (behind a recent sign-in: a token is a
credential)."""

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from .. import messages
from ..access import account_change_limits, login_required, recent_login_required, signed_in_user
from ..flows import access_tokens
from ..forms import AccessTokenForm, ConfirmForm


@account_change_limits("access_token")
@recent_login_required
def tokens_page() -> ResponseReturnValue:
    """The tokens, and the form for a new one; its answer shows the new token once."""
    user = signed_in_user()
    found = access_tokens.overview(user)
    form = AccessTokenForm(
        scopes=found.scopes, lifetimes=found.lifetimes, may_not_expire=found.may_not_expire
    )
    created = None
    if form.validate_on_submit():
        created = access_tokens.create(
            user,
            name=form.clean_name,
            scopes=form.scopes.data or [],
            lifetime_days=form.lifetime_days,
        )
        found = access_tokens.overview(user)
        form = AccessTokenForm(
            formdata=None,
            scopes=found.scopes,
            lifetimes=found.lifetimes,
            may_not_expire=found.may_not_expire,
        )
    status = 400 if form.is_submitted() and created is None else 200
    page = render_template(
        "gatehouse/access_tokens.html",
        tokens=found.tokens,
        form=form,
        revoke_form=ConfirmForm(),
        created=created,
    )
    return page, status


@login_required
def revoke_token(token_id: int) -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(messages.FORM_EXPIRED, "error")
    elif access_tokens.revoke(signed_in_user(), token_id):
        flash(messages.TOKEN_REVOKED, "success")
    else:
        flash(messages.TOKEN_GONE, "info")
    return redirect(url_for("gatehouse.access_tokens"))
